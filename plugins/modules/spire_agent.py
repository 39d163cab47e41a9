#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: spire_agent
short_description: Evict or ban a SPIRE agent, or purge long-expired agents
version_added: 0.1.0
description:
  - >-
    V(evicted) deletes the agent's record with C(spire-server agent evict): the agent must attest again
    (an agent that can re-attest does so by itself; a join token agent needs a new token). Evicting an
    agent the server does not know changes nothing. Evicting a banned agent lifts the ban.
  - >-
    V(banned) bans an attested agent with C(spire-server agent ban): the server keeps its record and refuses
    its SVID renewals and re-attestation until the agent is evicted. Banning an already banned agent changes
    nothing; banning an agent the server does not know is an error.
  - V(purged) deletes every re-attestable agent whose X.509 SVID expired more than O(expired_for) ago, with
    C(spire-server agent purge). In check mode the module runs C(agent purge -dryRun) and returns the agents
    that would be purged. Agents that cannot re-attest (join token) are never purged by SPIRE.
options:
  state:
    description: What to do.
    type: str
    required: true
    choices: [evicted, banned, purged]
  spiffe_id:
    description:
      - SPIFFE ID of the agent (C(spiffe://<trust domain>/spire/agent/...)), in the server's trust domain.
      - Required with V(evicted) and V(banned).
    type: str
  expired_for:
    description:
      - With V(purged), how long an agent's SVID must have been expired to be purged.
      - Seconds, or a duration such as V(720h), V(30d), V(1h30m).
    type: str
    default: 720h
extends_documentation_fragment:
  - trustroot.ops.spire_server
attributes:
  check_mode:
    support: full
    description: Reads the agent (and runs C(agent purge -dryRun)) and reports what would change.
  diff_mode:
    support: full
    description: The agent's state (absent / attested / banned) before and after; for V(purged) the agents purged.
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Evict a decommissioned node's agent
  trustroot.ops.spire_agent:
    spiffe_id: spiffe://example.org/spire/agent/x509pop/4f2c...
    state: evicted

- name: Ban a compromised node's agent
  trustroot.ops.spire_agent:
    spiffe_id: spiffe://example.org/spire/agent/x509pop/4f2c...
    state: banned

- name: Purge agents whose SVID expired more than 30 days ago
  trustroot.ops.spire_agent:
    state: purged
    expired_for: 30d
  register: purge

- name: Show them
  ansible.builtin.debug:
    var: purge.purged
'''

RETURN = r'''
agent:
  description:
    - The agent as it was before the task (keys as in M(trustroot.ops.spire_agent_info)), or null when the server
      did not know it.
  returned: with O(state=evicted) or O(state=banned)
  type: dict
state_before:
  description: V(absent), V(attested) or V(banned).
  returned: with O(state=evicted) or O(state=banned)
  type: str
state_after:
  description: V(absent), V(attested) or V(banned) (predicted in check mode).
  returned: with O(state=evicted) or O(state=banned)
  type: str
purged:
  description:
    - With O(state=purged), the expired agents SPIRE selected; in check mode the ones that would be purged.
  returned: with O(state=purged)
  type: list
  elements: dict
  contains:
    spiffe_id: {description: The agent's SPIFFE ID., type: str, returned: always}
    deleted: {description: Whether the agent was deleted (always false in check mode)., type: bool, returned: always}
    error: {description: Why it could not be deleted (empty on success)., type: str, returned: always}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._spire_cli import server_trust_domain
from ansible_collections.trustroot.ops.plugins.module_utils._spire import (
    SpireError, SpireServerCLI, server_argument_spec)
from ansible_collections.trustroot.ops.plugins.module_utils._spire_agents import (
    agent_state, agent_view, check_agent_id, duration_seconds, go_duration, plan_agent, purge_view)
from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError


def read_agent(cli, spiffe_id):
    try:
        return agent_view(cli.run_json(['agent', 'show', '-spiffeID', spiffe_id]))
    except SpireError as exc:
        if exc.grpc_code == 'NotFound':
            return None
        raise


def purge(module, cli):
    seconds = duration_seconds(module.params['expired_for'], 'expired_for')
    args = ['agent', 'purge', '-expiredFor', go_duration(seconds)]
    if module.check_mode:
        args.append('-dryRun')
    agents, errors = purge_view(cli.run_json(args))
    changed = bool(agents) if module.check_mode else any(a['deleted'] for a in agents)
    result = dict(changed=changed, purged=agents)
    if module._diff:
        result['diff'] = {'before': {'expired_agents': sorted(a['spiffe_id'] for a in agents)},
                          'after': {'expired_agents': sorted(a['spiffe_id'] for a in agents if not a['deleted']
                                                             and not module.check_mode)}}
    if errors:
        raise TrustrootError('%d expired agents could not be purged: %s' % (
            len(errors), '; '.join('%s: %s' % (e['spiffe_id'], e['error']) for e in errors)), results=result)
    return result


def run(module):
    params = module.params
    if params['state'] == 'purged':
        if params['spiffe_id']:
            raise InputError('spiffe_id is not used with state=purged: SPIRE selects the agents by expiry')
        duration_seconds(params['expired_for'], 'expired_for')
    else:
        check_agent_id(params['spiffe_id'])

    cli = SpireServerCLI(module)
    if params['state'] == 'purged':
        return purge(module, cli)
    trust_domain = server_trust_domain(cli)
    check_agent_id(params['spiffe_id'], trust_domain=trust_domain)
    current = read_agent(cli, params['spiffe_id'])
    action, after = plan_agent(params['state'], current, params['spiffe_id'])
    result = dict(changed=action is not None, agent=current, state_before=agent_state(current), state_after=after)
    if module._diff:
        result['diff'] = {'before': {'spiffe_id': params['spiffe_id'], 'state': agent_state(current)},
                          'after': {'spiffe_id': params['spiffe_id'], 'state': after}}
    if action and not module.check_mode:
        try:
            cli.run_json(['agent', action, '-spiffeID', params['spiffe_id']])
        except SpireError as exc:
            # Evicted between our read and the call (for example by a concurrent purge): nothing left to do.
            if not (action == 'evict' and exc.grpc_code == 'NotFound'):
                raise
            result['changed'] = False
    return result


def main():
    argument_spec = server_argument_spec()
    argument_spec.update(
        state=dict(type='str', required=True, choices=['evicted', 'banned', 'purged']),
        spiffe_id=dict(type='str'),
        expired_for=dict(type='str', default='720h'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('state', 'evicted', ['spiffe_id']), ('state', 'banned', ['spiffe_id'])])
    run_module(module, run)


if __name__ == '__main__':
    main()

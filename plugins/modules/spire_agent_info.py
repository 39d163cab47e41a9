#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: spire_agent_info
short_description: List the agents attested to a SPIRE server, or show one
version_added: 0.1.0
description:
  - Lists attested agents with C(spire-server agent list -output json), optionally filtered by selectors,
    attestation type, re-attestability, ban status and expiry; or shows one agent by SPIFFE ID with
    C(spire-server agent show).
  - Never changes anything.
  - Agents attested with a join token have the (consumed, single-use) token in their SPIFFE ID.
options:
  spiffe_id:
    description:
      - SPIFFE ID of one agent to show (C(spiffe://<trust domain>/spire/agent/...)).
      - An agent the server does not know gives RV(agents=[]) and RV(agent=null), not a failure.
      - Cannot be combined with the list filters.
    type: str
  selectors:
    description: List only agents with these node selectors (C(type:value)), compared as O(match) says.
    type: list
    elements: str
  match:
    description: How O(selectors) are compared with an agent's selectors.
    type: str
    choices: [exact, any, superset, subset]
    default: superset
  attestation_type:
    description: List only agents attested with this node attestor (for example V(join_token), V(x509pop)).
    type: str
  can_reattest:
    description: List only agents that can (V(true)) or cannot (V(false)) re-attest. Omit for both.
    type: bool
  banned:
    description: List only banned (V(true)) or not banned (V(false)) agents. Omit for both.
    type: bool
  expires_before:
    description:
      - List only agents whose X.509 SVID expires before this time.
      - An ISO 8601 time (V(2026-01-31T12:00:00Z), V(2026-01-31)), Unix seconds, or V(+<duration>) from now
        (V(+24h), V(+7d)).
    type: str
extends_documentation_fragment:
  - trustroot.ops.spire_server
attributes:
  check_mode:
    support: full
    description: Reads only.
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Agents whose SVID expires within a day
  trustroot.ops.spire_agent_info:
    expires_before: +24h
  register: expiring

- name: Banned agents
  trustroot.ops.spire_agent_info:
    banned: true
  register: banned_agents

- name: Agents attested by x509pop with a given certificate subject
  trustroot.ops.spire_agent_info:
    attestation_type: x509pop
    selectors:
      - x509pop:subject:cn:node1.example.org
    match: any

- name: One agent
  trustroot.ops.spire_agent_info:
    spiffe_id: spiffe://example.org/spire/agent/x509pop/4f2c...
  register: one

- name: Fail when it is banned
  ansible.builtin.assert:
    that: not one.agent.banned
'''

RETURN = r'''
agents:
  description: The agents found, in the server's order.
  returned: always
  type: list
  elements: dict
  contains:
    spiffe_id: {description: The agent's SPIFFE ID., type: str, returned: always}
    trust_domain: {description: The agent's trust domain., type: str, returned: always}
    attestation_type: {description: Node attestor that attested the agent., type: str, returned: always}
    x509svid_serial_number: {description: Serial number of the agent's current X.509 SVID (empty when banned)., type: str, returned: always}
    x509svid_expires_at: {description: Expiry of the agent's X.509 SVID in Unix seconds., type: int, returned: always}
    x509svid_expires_at_iso: {description: The same expiry as ISO 8601 UTC text., type: str, returned: always}
    banned: {description: Whether the agent is banned., type: bool, returned: always}
    can_reattest: {description: Whether the agent can re-attest (non-TOFU attestors)., type: bool, returned: always}
    selectors: {description: "Node selectors, C(type:value).", type: list, elements: str, returned: always}
    agent_version: {description: Version the agent reported., type: str, returned: always}
count:
  description: Number of agents in RV(agents).
  returned: always
  type: int
agent:
  description: The agent shown with O(spiffe_id) (same keys as an element of RV(agents)), or null when unknown.
  returned: when O(spiffe_id) is given
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import run_module
from ansible_collections.trustroot.ops.plugins.module_utils._spire import (
    SpireError, SpireServerCLI, server_argument_spec)
from ansible_collections.trustroot.ops.plugins.module_utils._spire_agents import (
    MATCH_MODES, agent_view, agents_view, check_agent_id, list_args)
from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError


def read_one(cli, spiffe_id):
    """The agent, or None when the server does not know it."""
    try:
        return agent_view(cli.run_json(['agent', 'show', '-spiffeID', spiffe_id]))
    except SpireError as exc:
        if exc.grpc_code == 'InvalidArgument':
            raise InputError('spiffe_id %s was refused by the server: %s' % (spiffe_id, exc.stderr or exc.message))
        if exc.grpc_code != 'NotFound':
            raise
        return None


def run(module):
    params = module.params
    if params['spiffe_id']:
        check_agent_id(params['spiffe_id'])
        agent = read_one(SpireServerCLI(module), params['spiffe_id'])
        agents = [agent] if agent else []
        return dict(changed=False, agents=agents, count=len(agents), agent=agent)
    args = list_args(params)
    agents = agents_view(SpireServerCLI(module).run_json(args))
    return dict(changed=False, agents=agents, count=len(agents))


def main():
    argument_spec = server_argument_spec()
    argument_spec.update(
        spiffe_id=dict(type='str'),
        selectors=dict(type='list', elements='str'),
        match=dict(type='str', choices=list(MATCH_MODES), default='superset'),
        attestation_type=dict(type='str'),
        can_reattest=dict(type='bool'),
        banned=dict(type='bool'),
        expires_before=dict(type='str'),
    )
    module = AnsibleModule(
        argument_spec=argument_spec, supports_check_mode=True,
        mutually_exclusive=[('spiffe_id', name) for name in
                            ('selectors', 'attestation_type', 'can_reattest', 'banned', 'expires_before')])
    run_module(module, run)


if __name__ == '__main__':
    main()

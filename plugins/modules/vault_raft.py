#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: vault_raft
short_description: Read, join and shrink the integrated storage (raft) cluster of Vault / OpenBao
version_added: 0.1.0
description:
  - O(state=show) reads the raft peers (C(sys/storage/raft/configuration)) and the autopilot state
    (C(sys/storage/raft/autopilot/state)) through the node at O(url). Needs O(token).
  - O(state=joined) joins the node at O(url) to the cluster led by O(leader_api_addr)
    (C(sys/storage/raft/join)). The node's C(sys/seal-status) is read first; a node whose storage is
    already initialized is a member already and nothing is sent. No token is needed.
  - O(state=removed) removes the peer O(server_id) (C(sys/storage/raft/remove-peer)) through the node at
    O(url). Needs O(token). A O(server_id) that is not a peer is no change.
  - 'Removal rule: unless O(force=true), the module refuses to remove the current leader, and refuses to
    remove a voter when the voters that would remain and are healthy (the leader, and every other voter
    autopilot reports healthy) are fewer than a quorum (a strict majority) of the voters that would
    remain. Removing a non-voter is always allowed. Example: of three voters with one stopped, removing
    the stopped one is allowed (two healthy of two remaining, quorum two); removing a running one is
    refused (one healthy of two remaining).'
options:
  state:
    description:
      - V(show) reads, V(joined) makes the node at O(url) a member, V(removed) makes O(server_id) not a peer.
    type: str
    choices: [show, joined, removed]
    default: show
  server_id:
    description:
      - Raft node ID of the peer to remove (the C(node_id) of the server's raft storage stanza).
      - Required with O(state=removed); only for that state.
    type: str
  force:
    description:
      - Remove O(server_id) even when it is the leader or when the removal breaks the quorum rule above.
      - Only for O(state=removed).
    type: bool
    default: false
  leader_api_addr:
    description:
      - API address of a node of the cluster to join, for example V(https://vault1.example.com:8200).
      - Required with O(state=joined) unless O(auto_join) is given. The node at O(url) must reach it.
    type: str
  leader_ca_cert:
    description:
      - PEM text of the CA that signs the leader's certificate (not a file name; use
        C(lookup('file', ...))). Only for O(state=joined).
    type: str
  leader_client_cert:
    description: PEM text of a client certificate for the leader. Needs O(leader_client_key).
    type: str
  leader_client_key:
    description: PEM text of the key of O(leader_client_cert). Never logged or returned.
    type: str
  leader_tls_servername:
    description: TLS server name to check in the leader's certificate.
    type: str
  auto_join:
    description: Cloud auto-join configuration (go-discover syntax) to find the leader instead of O(leader_api_addr).
    type: str
  auto_join_scheme:
    description: URL scheme for addresses found by O(auto_join).
    type: str
    choices: [http, https]
  auto_join_port:
    description: Port for addresses found by O(auto_join).
    type: int
  retry:
    description:
      - Ask the node to keep retrying the join in the background. The call then returns at once, so
        a leader that cannot be reached is not reported as an error; the next run joins again while the
        node is still uninitialized.
    type: bool
    default: false
  non_voter:
    description: Join as a non-voting member.
    type: bool
    default: false
extends_documentation_fragment:
  - trustroot.ops.vault_connection
attributes:
  check_mode:
    support: full
    description: Reads only, and reports the join or removal that would happen.
  diff_mode:
    support: full
    description: Peers before and after a removal; the node's join status before and after a join.
notes:
  - A node joined to a Shamir-sealed cluster stays sealed (C(join_status=pending_unseal)) until it is
    given the cluster's unseal keys, for example with M(trustroot.ops.vault_unseal).
  - A sealed node that reports initialized storage is taken as a member; its cluster can only be
    compared with the leader's once it is unsealed, and a node of another cluster is then an error.
  - Options that belong to another state (for example O(server_id) with O(state=joined)) fail the task and
    name the option. The read-only state is V(show), because ansible-test rejects V(info), V(list) and V(get) as states.
  - When the autopilot state cannot be read, only the leader counts as a healthy voter for the removal rule.
    After a removal the peers are read again, and the task fails if the peer is still there.
  - The TLS material for the leader (O(leader_ca_cert), O(leader_client_cert), O(leader_client_key)) is PEM
    text, as the API takes it, not file names.
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Read peers and autopilot health
  trustroot.ops.vault_raft:
    url: https://vault1.example.com:8200
    token: "{{ vault_token }}"
  register: raft

- name: Join a new node to the cluster
  trustroot.ops.vault_raft:
    state: joined
    url: https://vault4.example.com:8200
    leader_api_addr: https://vault1.example.com:8200
    leader_ca_cert: "{{ lookup('ansible.builtin.file', '/etc/vault/ca.pem') }}"

- name: Remove a node that is gone for good
  trustroot.ops.vault_raft:
    state: removed
    url: https://vault1.example.com:8200
    token: "{{ vault_token }}"
    server_id: vault3
'''

RETURN = r'''
peers:
  description: Raft peers (after the change for O(state=removed); predicted in check mode).
  returned: when O(state=show) or O(state=removed)
  type: list
  elements: dict
  contains:
    node_id: {description: Raft node ID., type: str, returned: always}
    address: {description: Raft cluster address., type: str, returned: always}
    leader: {description: Whether the peer leads., type: bool, returned: always}
    voter: {description: Whether the peer votes., type: bool, returned: always}
leader:
  description: node_id of the raft leader.
  returned: when O(state=show) or O(state=removed)
  type: str
autopilot:
  description: Autopilot state, or null when it cannot be read (see RV(autopilot_error)).
  returned: when O(state=show) or O(state=removed)
  type: dict
  contains:
    healthy: {description: Whether autopilot reports the cluster healthy., type: bool, returned: always}
    failure_tolerance: {description: Voters that can fail without losing quorum., type: int, returned: always}
    leader: {description: Leader's node ID., type: str, returned: always}
    voters: {description: Node IDs of the voters., type: list, elements: str, returned: always}
    servers:
      description: Per-server status (id, name, address, node_status, status, node_type, healthy, last_contact,
        last_term, last_index, stable_since, version), sorted by id.
      type: list
      elements: dict
      returned: always
autopilot_error:
  description: Why the autopilot state could not be read.
  returned: when O(state=show) or O(state=removed)
  type: str
removed:
  description: The server_id removed (or that would be removed in check mode), else null.
  returned: when O(state=removed)
  type: str
reason:
  description: Why the removal is or is not needed, or was allowed.
  returned: when O(state=removed)
  type: str
node:
  description: URL of the node joined.
  returned: when O(state=joined)
  type: str
join_status:
  description:
    - V(not_joined), V(pending_unseal) (joined, sealed, waiting for unseal keys) or V(joined) (unsealed
      member), after the run (before it in check mode).
  returned: when O(state=joined)
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._vault import (
    VaultError, VaultNode, connection_argument_spec, ensure_connection, require_token)
from ansible_collections.trustroot.ops.plugins.module_utils._vault_raft import (
    JOIN_JOINED, JOIN_NOT_JOINED, JOIN_OTHER_CLUSTER, JOIN_PENDING_UNSEAL, join, join_payload, join_status,
    leader_peer, peers_diff, read_autopilot, read_peers, remove_peer, removal_decision, state_option_errors)


def run_show(module, node):
    require_token(node, 'read the raft configuration')
    peers = read_peers(node)
    autopilot, autopilot_error = read_autopilot(node)
    return dict(changed=False, peers=peers, leader=leader_peer(peers), autopilot=autopilot,
                autopilot_error=autopilot_error)


def run_removed(module, node):
    require_token(node, 'remove a raft peer')
    server_id = module.params['server_id']
    peers = read_peers(node)
    autopilot, autopilot_error = read_autopilot(node)
    decision = removal_decision(peers, server_id, autopilot, force=module.params['force'])
    result = dict(changed=False, peers=peers, leader=leader_peer(peers), autopilot=autopilot,
                  autopilot_error=autopilot_error, removed=None, reason=decision['reason'])
    if decision['action'] == 'refuse':
        raise TrustrootError(decision['reason'], results=result)
    if decision['action'] == 'none':
        return result
    result.update(changed=True, removed=server_id, peers=decision['peers_after'])
    if module._diff:
        result['diff'] = peers_diff(peers, decision['peers_after'])
    if module.check_mode:
        return result
    remove_peer(node, server_id)
    after = read_peers(node)
    result.update(peers=after, leader=leader_peer(after))
    if module._diff:
        result['diff'] = peers_diff(peers, after)
    if any(p['node_id'] == server_id for p in after):
        raise TrustrootError('remove-peer for %s returned but %s is still a peer' % (server_id, server_id),
                             results=result)
    return result


def run_joined(module, node):
    params = module.params
    node_seal = node.seal_status()
    if node_seal.get('storage_type') and node_seal['storage_type'] != 'raft':
        raise TrustrootError('url %s does not use raft storage (storage_type is %s)' % (
            node.url, node_seal['storage_type']))
    leader_seal = None
    if params['leader_api_addr']:
        try:
            leader_seal = VaultNode.from_params(params, params['leader_api_addr']).seal_status()
        except VaultError as exc:
            # The controller may not reach the leader while the node does; the join call decides.
            module.warn('cannot read the seal status of leader_api_addr: %s' % exc)
    before = join_status(node_seal, leader_seal)
    result = dict(changed=False, node=node.url, join_status=before)
    if before == JOIN_OTHER_CLUSTER:
        raise TrustrootError('url %s already belongs to cluster %s, not to the cluster of leader_api_addr '
                             '(%s); its storage must be wiped before it can join' % (
                                 node.url, node_seal.get('cluster_id'), leader_seal.get('cluster_id')),
                             results=result)
    if before in (JOIN_PENDING_UNSEAL, JOIN_JOINED):
        return result
    result['changed'] = True
    if module._diff:
        result['diff'] = {'before': {'node': node.url, 'join_status': before},
                          'after': {'node': node.url, 'join_status': JOIN_PENDING_UNSEAL}}
    if module.check_mode:
        return result
    try:
        answer = join(node, join_payload(params))
    except VaultError as exc:
        target = params['leader_api_addr'] or 'auto_join'
        raise TrustrootError('joining %s to leader_api_addr %s failed: %s' % (node.url, target, exc.reason),
                             results=dict(result, changed=False))
    if not answer.get('joined'):
        raise TrustrootError('join of %s was not accepted: %s' % (node.url, answer), results=dict(result, changed=False))
    after = join_status(node.seal_status(), leader_seal)
    result['join_status'] = after
    if module._diff:
        result['diff']['after']['join_status'] = after
    if after == JOIN_NOT_JOINED and not params['retry']:
        raise TrustrootError('join of %s returned but the node is still not initialized' % node.url, results=result)
    return result


def run(module):
    ensure_connection(module)
    if not module.params['url']:
        raise InputError('url is required (or set VAULT_ADDR / BAO_ADDR)')
    errors = state_option_errors(module.params)
    if errors:
        raise InputError('; '.join(errors))
    node = VaultNode.from_params(module.params)
    runners = {'show': run_show, 'removed': run_removed, 'joined': run_joined}
    return runners[module.params['state']](module, node)


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        state=dict(type='str', default='show', choices=['show', 'joined', 'removed']),
        server_id=dict(type='str'),
        force=dict(type='bool', default=False),
        leader_api_addr=dict(type='str'),
        leader_ca_cert=dict(type='str'),
        leader_client_cert=dict(type='str'),
        leader_client_key=dict(type='str', no_log=True),
        leader_tls_servername=dict(type='str'),
        auto_join=dict(type='str'),
        auto_join_scheme=dict(type='str', choices=['http', 'https']),
        auto_join_port=dict(type='int'),
        retry=dict(type='bool', default=False),
        non_voter=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, run)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: vault_status_info
short_description: Read the seal, HA and raft state of Vault / OpenBao nodes
version_added: 0.1.0
description:
  - Reads seal status, initialization, health role, HA leader and version of one node or of a list of
    nodes, and the raft peers when a token is given.
  - Never changes anything. An unreachable node is reported in its entry, not as a task failure,
    unless O(fail_on_unreachable=true).
options:
  nodes:
    description:
      - URLs of the nodes to read. When omitted, O(url) is read.
    type: list
    elements: str
  raft_peers:
    description: Read the raft peer list (needs O(token)).
    type: bool
    default: true
  fail_on_unreachable:
    description: Fail the task when a node does not answer.
    type: bool
    default: false
extends_documentation_fragment:
  - trustroot.ops.vault_connection
attributes:
  check_mode:
    support: full
    description: Reads only.
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Read the state of the whole cluster
  trustroot.ops.vault_status_info:
    nodes:
      - https://vault1.example.com:8200
      - https://vault2.example.com:8200
      - https://vault3.example.com:8200
    ca_cert: /etc/ssl/vault-ca.pem
  register: vault_state

- name: Stop when any node is sealed
  ansible.builtin.assert:
    that: vault_state.all_unsealed
    fail_msg: "Sealed: {{ vault_state.sealed_nodes | join(', ') }}"
'''

RETURN = r'''
nodes:
  description: One entry per node, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    url: {description: The node's URL., type: str, returned: always}
    reachable: {description: Whether the node answered., type: bool, returned: always}
    error: {description: Why the node could not be read in full., type: str, returned: always}
    flavour: {description: V(openbao) or V(vault)., type: str, returned: always}
    version: {description: Server version., type: str, returned: always}
    initialized: {description: Whether the node's storage is initialized., type: bool, returned: always}
    sealed: {description: Whether the node is sealed., type: bool, returned: always}
    seal_type: {description: "Seal type: shamir, transit, awskms, ...", type: str, returned: always}
    recovery_seal: {description: Whether the node uses recovery keys (auto-unseal)., type: bool, returned: always}
    threshold: {description: Keys needed to unseal., type: int, returned: always}
    shares: {description: Key shares., type: int, returned: always}
    progress: {description: Keys submitted toward the current unseal., type: int, returned: always}
    migration: {description: Whether a seal migration is in progress., type: bool, returned: always}
    storage_type: {description: Storage backend., type: str, returned: always}
    cluster_name: {description: Cluster name once unsealed., type: str, returned: always}
    cluster_id: {description: Cluster ID once unsealed., type: str, returned: always}
    state: {description: "Health role: active, standby, performance_standby, sealed, uninitialized, ...", type: str, returned: always}
    ha_enabled: {description: Whether HA is enabled (unsealed nodes)., type: bool, returned: always}
    is_leader: {description: Whether this node is the active node., type: bool, returned: always}
    leader_address: {description: API address of the active node., type: str, returned: always}
    raft_peers:
      description: Raft peers (with a token, on an unsealed raft node).
      type: list
      elements: dict
      returned: always
all_reachable: {description: Every node answered., type: bool, returned: always}
all_initialized: {description: Every node is initialized., type: bool, returned: always}
all_unsealed: {description: Every node answered and is unsealed., type: bool, returned: always}
sealed_nodes: {description: URLs of sealed nodes., type: list, elements: str, returned: always}
unreachable_nodes: {description: URLs of nodes that did not answer., type: list, elements: str, returned: always}
leader: {description: URL of the node that reports itself active., type: str, returned: always}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._vault import (
    VaultNode, connection_argument_spec, ensure_connection, nodes_from_params)
from ansible_collections.trustroot.ops.plugins.module_utils._vault_status import read_node, summarize


def run(module):
    ensure_connection(module)
    states = [read_node(VaultNode.from_params(module.params, url), with_raft=module.params['raft_peers'])
              for url in nodes_from_params(module.params)]
    result = dict(changed=False, nodes=states, **summarize(states))
    if module.params['fail_on_unreachable'] and result['unreachable_nodes']:
        raise TrustrootError('unreachable: %s' % '; '.join(n['error'] for n in states if not n['reachable']),
                             results=result)
    return result


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        nodes=dict(type='list', elements='str'),
        raft_peers=dict(type='bool', default=True),
        fail_on_unreachable=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[('url', 'nodes')])
    run_module(module, run)


if __name__ == '__main__':
    main()

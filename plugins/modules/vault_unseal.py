#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: vault_unseal
short_description: Unseal Vault / OpenBao nodes with Shamir keys
version_added: 0.1.0
description:
  - Unseals one node or many. Unsealed nodes are left alone (V(changed=false)); a sealed node gets one
    key at a time until it unseals, so no more keys than needed are sent.
  - Raft followers that join through C(retry_join) are uninitialized until a leader is unsealed, and report
    C(sealed=true) right after their last key while they join. The module waits for both (up to
    O(wait_timeout)) and never sends keys again for them.
  - A wrong key or an unreachable node fails that node and the task, naming the node; the other nodes are
    still unsealed.
  - Keys come from O(keys), from the key material file written by M(trustroot.ops.vault_init) or
    M(trustroot.ops.vault_rekey), or from the Kubernetes Secret they wrote it to (O(material_secret)).
    They are never logged or returned.
options:
  nodes:
    description: URLs of the nodes to unseal. When omitted, O(url) is unsealed.
    type: list
    elements: str
  keys:
    description: Unseal keys (base64 or hex). Needs at least the threshold.
    type: list
    elements: str
  key_material_path:
    description: Key material file (as written by M(trustroot.ops.vault_init)) to read the keys from.
    type: path
  material_secret:
    description:
      - Kubernetes Secret that holds the key material (as written by M(trustroot.ops.vault_init) or
        M(trustroot.ops.vault_rekey) with their C(output_secret) option), instead of O(key_material_path).
      - The account of the kubeconfig needs C(get) on that Secret.
    type: dict
    suboptions:
      namespace:
        description: Namespace of the Secret.
        type: str
        required: true
      name:
        description: Name of the Secret.
        type: str
        required: true
      key:
        description: Data key that holds the material.
        type: str
        default: material.json
      kubeconfig:
        description:
          - Kubeconfig file of the cluster. Defaults to C(~/.kube/config), or the in-cluster service account
            when the module runs in a pod.
        type: path
      context:
        description: Context of O(material_secret.kubeconfig) to use (its current context when omitted).
        type: str
  age_identity:
    description: age identity file that decrypts age-encrypted material (O(key_material_path) or O(material_secret)).
    type: path
  use_recovery_keys:
    description:
      - Read the recovery keys from O(key_material_path) or O(material_secret) instead of the unseal keys (seal migration from
        auto-unseal back to Shamir).
    type: bool
    default: false
  migrate:
    description: Send the keys with C(migrate=true), for a seal migration.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for nodes to join and unseal.
    type: int
    default: 120
extends_documentation_fragment:
  - trustroot.ops.vault_connection
attributes:
  check_mode:
    support: full
    description: Reports which nodes would be unsealed; sends no key.
  diff_mode:
    support: full
    description: Shows each node's sealed state before and after.
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Unseal the whole cluster from the init material (age-encrypted)
  trustroot.ops.vault_unseal:
    nodes: "{{ groups['vault_servers'] | map('extract', hostvars, 'vault_api_url') | list }}"
    key_material_path: /secure/vault-init.json.age
    age_identity: /secure/operator.agekey
    ca_cert: /etc/ssl/vault-ca.pem

- name: Unseal from the material in a Kubernetes Secret
  trustroot.ops.vault_unseal:
    url: https://vault1.example.com:8200
    material_secret:
      namespace: vault
      name: vault-init
      kubeconfig: /secure/vault-material.kubeconfig
    age_identity: /secure/operator.agekey

- name: Unseal one node with keys from a vaulted variable
  trustroot.ops.vault_unseal:
    url: https://vault2.example.com:8200
    keys: "{{ vault_unseal_keys }}"
  no_log: true
'''

RETURN = r'''
nodes:
  description: One entry per node.
  returned: always
  type: list
  elements: dict
  contains:
    url: {description: The node., type: str, returned: always}
    sealed_before: {description: Sealed when the module started., type: bool, returned: always}
    sealed: {description: Sealed at the end., type: bool, returned: always}
    initialized: {description: Initialized at the end., type: bool, returned: always}
    changed: {description: Keys were sent (or would be in check mode)., type: bool, returned: always}
    keys_submitted: {description: "How many keys were sent to this node: the count, never the keys.", type: int, returned: always}
    waited_for_join: {description: The node was waited for while it joined the raft cluster., type: bool, returned: always}
    error: {description: Why this node failed., type: str, returned: always}
all_unsealed: {description: Every node ended unsealed., type: bool, returned: always}
failed_nodes: {description: URLs of nodes that failed., type: list, elements: str, returned: always}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._material import load_key_shares
from ansible_collections.trustroot.ops.plugins.module_utils._material_secret import (
    load_key_shares_from_secret, secret_option)
from ansible_collections.trustroot.ops.plugins.module_utils._vault import (
    VaultNode, connection_argument_spec, ensure_connection, nodes_from_params)
from ansible_collections.trustroot.ops.plugins.module_utils._vault_unseal import (
    UnsealClient, UnsealRun, summarize_unseal)


def run(module):
    ensure_connection(module)
    if module.params['wait_timeout'] < 0:
        raise InputError('wait_timeout must be 0 or more seconds')

    if module.params['material_secret']:
        keys = load_key_shares_from_secret(module, 'material_secret', recovery=module.params['use_recovery_keys'])
    else:
        keys = load_key_shares(module, recovery=module.params['use_recovery_keys'])

    nodes = [UnsealClient(VaultNode.from_params(module.params, url)) for url in nodes_from_params(module.params)]
    results = UnsealRun(nodes, keys, migrate=module.params['migrate'], wait_timeout=module.params['wait_timeout'],
                        check_mode=module.check_mode).run()
    summary = summarize_unseal(results)
    result = dict(changed=summary['changed'], nodes=results, all_unsealed=summary['all_unsealed'],
                  failed_nodes=summary['failed_nodes'])
    if module._diff:
        result['diff'] = {
            'before': {r['url']: {'sealed': r['sealed_before']} for r in results},
            'after': {r['url']: {'sealed': False if (module.check_mode and r['changed']) else r['sealed']}
                      for r in results},
        }
    if summary['failed_nodes']:
        raise TrustrootError('vault_unseal failed on %d node(s): %s' % (len(summary['failed_nodes']),
                                                                        summary['message']), results=result)
    return result


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        nodes=dict(type='list', elements='str'),
        keys=dict(type='list', elements='str', no_log=True),
        key_material_path=dict(type='path', no_log=False),
        material_secret=secret_option(),
        age_identity=dict(type='path'),
        use_recovery_keys=dict(type='bool', default=False),
        migrate=dict(type='bool', default=False),
        wait_timeout=dict(type='int', default=120),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[('url', 'nodes'), ('keys', 'key_material_path', 'material_secret')],
                           mutually_exclusive=[('keys', 'key_material_path', 'material_secret')])
    run_module(module, run)


if __name__ == '__main__':
    main()

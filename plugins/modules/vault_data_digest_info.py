#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: vault_data_digest_info
short_description: Digest the content of a Vault / OpenBao cluster (KV secrets, policies, mounts) without reading it out
version_added: 0.1.0
description:
  - Reads the KV secrets, ACL policies, secret engines and auth methods of a cluster and returns sha256
    digests, counts and names. No secret value is ever returned or logged.
  - KV mounts (version 1 and 2) come from C(sys/mounts); each is walked with C(LIST) recursively and every
    secret is read (KV v2 the latest version's data, a deleted latest version counts as null). The digest of a
    mount is the sha256 over the canonical JSON (sorted keys, no whitespace) of C([mount, path, data]), one
    line per secret in sorted path order; O(ignore:kv_sha256) covers every mount digested in sorted order.
  - Policies are listed with C(sys/policies/acl) and each policy's text is read; C(root) has no text and
    counts with an empty one.
  - Secret engines (C(sys/mounts)) and auth methods (C(sys/auth)) are digested by path and type (and the KV
    version of KV mounts); their accessors and UUIDs, which differ between clusters, are left out.
  - Two clusters with the same content give the same digests, so a backup's digest can be compared with
    the cluster it was restored into (see M(trustroot.ops.backup_restore_check)).
  - The active node is found with C(sys/leader) when O(nodes) is given; otherwise O(url) is read.
options:
  nodes:
    description:
      - URLs of the cluster's nodes, in the order to ask for the leader. When omitted, O(url) is read.
    type: list
    elements: str
  kv_mounts:
    description:
      - KV mounts to digest, for example V(secret) or V(kv/). Default is every KV mount.
      - A mount that does not exist or is not a KV mount is an error.
    type: list
    elements: str
extends_documentation_fragment:
  - trustroot.ops.vault_connection
attributes:
  check_mode:
    support: full
    description: Reads only; the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
notes:
  - The token needs C(read) on C(sys/mounts), C(sys/auth) and C(sys/policies/acl/*), and C(list) and
    C(read) on every KV path digested (for KV v2 C(<mount>/metadata/*) and C(<mount>/data/*)).
  - Digests of small secrets can be checked against guesses by whoever holds them; treat the result as
    internal information, not as public.
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Digest the cluster's content
  trustroot.ops.vault_data_digest_info:
    nodes:
      - https://vault1.example.com:8200
      - https://vault2.example.com:8200
      - https://vault3.example.com:8200
    token: "{{ vault_token }}"
  register: vault_digest

- name: Only two KV mounts
  trustroot.ops.vault_data_digest_info:
    url: https://vault1.example.com:8200
    token: "{{ vault_token }}"
    kv_mounts: [secret, apps]
  register: kv_digest

- name: Same content as before the change window
  ansible.builtin.assert:
    that: vault_digest.kv_sha256 == previous_digest.kv_sha256
'''

RETURN = r'''
kv:
  description: Per KV mount digested (name without the trailing slash), the number of secrets and their sha256.
  returned: always
  type: dict
  sample: {"secret": {"secrets": 12, "sha256": "3f0a..."}}
kv_secrets:
  description: Number of secrets in all KV mounts digested.
  returned: always
  type: int
kv_sha256:
  description: sha256 over the secrets of every KV mount digested.
  returned: always
  type: str
policies:
  description: Names of the ACL policies, sorted.
  returned: always
  type: list
  elements: str
policies_sha256:
  description: sha256 over every policy's name and text.
  returned: always
  type: str
mounts:
  description: Secret engines, sorted by path (C(path), C(type), and C(version) for KV mounts).
  returned: always
  type: list
  elements: dict
mounts_sha256:
  description: sha256 over O(ignore:mounts).
  returned: always
  type: str
auth_methods:
  description: Auth methods, sorted by path (C(path), C(type)).
  returned: always
  type: list
  elements: dict
auth_sha256:
  description: sha256 over O(ignore:auth_methods).
  returned: always
  type: str
leader:
  description: URL of the node read.
  returned: always
  type: str
skipped_nodes:
  description: Nodes asked for the leader that were unreachable, sealed or standby, with the reason.
  returned: when O(nodes) is given
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._vault import (
    VaultNode, connection_argument_spec, ensure_connection, nodes_from_params)
from ansible_collections.trustroot.ops.plugins.module_utils._vault_digest import cluster_digest, node_callables
from ansible_collections.trustroot.ops.plugins.module_utils._vault_raft import find_leader


def option_errors(params):
    errors = []
    if not nodes_from_params(params):
        errors.append('url or nodes is required (or set VAULT_ADDR / BAO_ADDR)')
    if not params['token']:
        errors.append('token is required to read the cluster\'s content (set token or VAULT_TOKEN)')
    if params['kv_mounts'] is not None:
        if any(not (m or '').strip().strip('/') for m in params['kv_mounts']):
            errors.append('kv_mounts holds an empty mount path')
    return errors


def run(module):
    ensure_connection(module)
    errors = option_errors(module.params)
    if errors:
        raise InputError('; '.join(errors))
    result = dict(changed=False)
    try:
        if module.params['nodes']:
            node, notes = find_leader(nodes_from_params(module.params),
                                      lambda url: VaultNode.from_params(module.params, url))
            result['skipped_nodes'] = notes
        else:
            node = VaultNode.from_params(module.params)
        list_keys, read = node_callables(node)
        result.update(cluster_digest(list_keys, read, module.params['kv_mounts']))
    except TrustrootError as exc:
        raise TrustrootError(exc.user_message, results=result)
    result['leader'] = node.url
    return result


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        nodes=dict(type='list', elements='str'),
        kv_mounts=dict(type='list', elements='str'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, run)


if __name__ == '__main__':
    main()

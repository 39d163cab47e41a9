#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: vault_init
short_description: Initialize a Vault / OpenBao cluster once, keeping its keys out of every log
version_added: 0.1.0
description:
  - Initializes the node at O(url) when it is not initialized yet; an initialized node is left alone
    (V(changed=false)) and its material file is not touched.
  - Shamir servers get O(secret_shares) / O(secret_threshold). Auto-unseal servers (transit, KMS, HSM)
    get recovery shares (O(recovery_shares) / O(recovery_threshold), defaulting to the secret values).
  - The unseal or recovery keys and the root token are written to O(output_path) on the host that runs
    the module (the controller when delegated to localhost), mode 0600, atomically, optionally encrypted
    to age recipients. They are never returned, logged or shown in a diff.
  - Every input is checked, and O(output_path) is checked writable, before the server is initialized.
options:
  secret_shares:
    description: Unseal key shares (Shamir servers).
    type: int
    default: 5
  secret_threshold:
    description: Shares needed to unseal.
    type: int
    default: 3
  recovery_shares:
    description: Recovery key shares (auto-unseal servers). Defaults to O(secret_shares). OpenBao accepts V(0).
    type: int
  recovery_threshold:
    description: Recovery shares needed. Defaults to O(secret_threshold).
    type: int
  pgp_keys:
    description:
      - Base64 PGP public keys (binary export, base64-encoded), one per unseal share; each share is then
        encrypted to its key. Material from PGP-encrypted shares cannot be used by
        M(trustroot.ops.vault_unseal) directly.
    type: list
    elements: str
  recovery_pgp_keys:
    description: As O(pgp_keys), for recovery shares.
    type: list
    elements: str
  root_token_pgp_key:
    description: Base64 PGP public key that encrypts the initial root token.
    type: str
  output_path:
    description: File that receives the key material (JSON, or age armor with O(age_recipients)).
    type: path
    required: true
  age_recipients:
    description: age recipients (public keys) to encrypt the material file to. Needs the C(age) command.
    type: list
    elements: str
  overwrite_output:
    description:
      - Replace an existing O(output_path) when the server is initialized. Off by default so the material
        of another cluster is never overwritten.
    type: bool
    default: false
extends_documentation_fragment:
  - trustroot.ops.vault_connection
attributes:
  check_mode:
    support: full
    description: Validates everything and reports whether the node would be initialized.
  diff_mode:
    support: full
    description: Shows initialized and the share layout before and after (never keys).
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Initialize the cluster, material encrypted to two operators
  trustroot.ops.vault_init:
    url: https://vault1.example.com:8200
    ca_cert: /etc/ssl/vault-ca.pem
    secret_shares: 5
    secret_threshold: 3
    output_path: /secure/vault-init.json.age
    age_recipients:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
      - age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg
  delegate_to: localhost

- name: Initialize an auto-unseal (transit) server with recovery keys
  trustroot.ops.vault_init:
    url: https://vault1.example.com:8200
    recovery_shares: 3
    recovery_threshold: 2
    output_path: /secure/vault-recovery.json
  delegate_to: localhost
'''

RETURN = r'''
initialized:
  description: The node is initialized at the end (always true unless check mode).
  returned: always
  type: bool
output_path:
  description: Where the material was written (only when this run initialized the node).
  returned: always
  type: str
seal_type:
  description: The server's seal type (shamir, transit, ...).
  returned: always
  type: str
shares:
  description: Key shares of the layout (unseal or recovery).
  returned: always
  type: int
threshold:
  description: Key threshold of the layout.
  returned: always
  type: int
flavour:
  description: V(openbao) or V(vault).
  returned: always
  type: str
version:
  description: Server version.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._material import (
    MaterialError, check_material_output, material_from_init, secrets_in, write_material)
from ansible_collections.trustroot.ops.plugins.module_utils._vault import (
    VaultError, VaultNode, connection_argument_spec, ensure_hvac, require_url)
from ansible_collections.trustroot.ops.plugins.module_utils._vault_init import (
    InitInputError, build_init_request, is_auto_unseal)


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        secret_shares=dict(type='int', default=5, no_log=False),
        secret_threshold=dict(type='int', default=3, no_log=False),
        recovery_shares=dict(type='int', no_log=False),
        recovery_threshold=dict(type='int', no_log=False),
        pgp_keys=dict(type='list', elements='str', no_log=False),
        recovery_pgp_keys=dict(type='list', elements='str', no_log=False),
        root_token_pgp_key=dict(type='str', no_log=False),
        output_path=dict(type='path', required=True),
        age_recipients=dict(type='list', elements='str'),
        overwrite_output=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_hvac(module)
    require_url(module)
    params = module.params
    node = VaultNode.from_params(params)

    try:
        status = node.seal_status()
        flavour, _version, version = node.flavour()
    except VaultError as exc:
        module.fail_json(msg=str(exc))
    auto_unseal = is_auto_unseal(status)
    try:
        request = build_init_request(params, auto_unseal)
    except InitInputError as exc:
        module.fail_json(msg=str(exc))

    layout_key = 'recovery' if auto_unseal else 'secret'
    result = dict(changed=False, initialized=bool(status.get('initialized')), output_path=None,
                  seal_type=status.get('type'), flavour=flavour, version=version,
                  shares=request['%s_shares' % layout_key], threshold=request['%s_threshold' % layout_key])
    if status.get('initialized'):
        # Report the layout the server has, not the one asked for.
        result.update(shares=status.get('n'), threshold=status.get('t'))
        module.exit_json(**result)

    check_material_output(module)
    result['changed'] = True
    if module._diff:
        result['diff'] = {'before': {'initialized': False},
                          'after': {'initialized': True, 'shares': result['shares'], 'threshold': result['threshold']}}
    if module.check_mode:
        module.exit_json(**result)

    try:
        response = node.call('PUT', 'sys/init', auth=False, json=request)
    except VaultError as exc:
        module.fail_json(msg='init failed: %s' % exc)
    material = material_from_init(response, request, node.url, flavour, version)
    module.no_log_values.update(secrets_in(material))
    try:
        write_material(module, params['output_path'], material, params['age_recipients'])
    except MaterialError as exc:
        # The server is initialized and the only copy of its keys is in this process: say so plainly.
        module.fail_json(msg='the server was initialized but output_path could not be written (%s); '
                             'the keys are lost: wipe the storage and initialize again' % exc)
    result.update(initialized=True, output_path=params['output_path'])
    module.exit_json(**result)


if __name__ == '__main__':
    main()

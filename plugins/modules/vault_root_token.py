#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: vault_root_token
short_description: Generate a Vault / OpenBao root token from key shares, or revoke one
version_added: 0.1.0
description:
  - O(state=present) generates a new root token from a threshold of the unseal keys (Shamir seal) or of
    the recovery keys (auto-unseal; chosen from the server's seal status). The token is written to
    O(output_path) on the host that runs the module (kind C(root_token) in the material format of
    M(trustroot.ops.vault_init)), mode 0600, atomically, optionally encrypted to age recipients. It is never
    returned, logged or shown in a diff.
  - Without O(pgp_key) the server encodes the token with a one-time password it hands out when the attempt
    starts; the module decodes it (base64, then XOR with the OTP), checks the token is a working root token
    and writes it. With O(pgp_key) the PGP-encrypted token (base64) is written instead.
  - Takes the API the server supports. OpenBao 2.6.0 and later have the token-authenticated
    C(sys/generate-root-token) endpoints, used when O(token) is set. Otherwise the unauthenticated
    C(sys/generate-root) endpoints are used (HashiCorp Vault; OpenBao before 2.5.3). OpenBao 2.5.3 and later
    turn those off by default; they answer "unsupported operation" unless the server's listener stanza sets
    C(disable_unauthed_generate_root_endpoints = false), and the module then fails saying so.
  - Generating a root token is an action, not a state; every run that is not refused makes a new token and
    reports V(changed=true). By default an existing O(output_path) is refused, which stops a second run
    before it touches the server. Revoke root tokens when done with O(state=absent).
  - O(state=absent) revokes a root token (O(token_to_revoke), or the C(root_token) of
    O(token_material_path)), with C(auth/token/revoke) when O(token) is another token allowed to, or with
    C(auth/token/revoke-self) using the token itself. A token that is already invalid gives
    V(changed=false). A valid token without the C(root) policy is refused. Revoking a token also revokes the
    tokens it created.
  - The attempt runs on the active node; when O(url) is a standby, the module follows its C(sys/leader)
    answer to the active node.
  - Every input is checked before an attempt starts. A failure after the attempt started cancels it; a new
    token that cannot be written is revoked before the module fails.
options:
  state:
    description: V(present) generates a new root token; V(absent) revokes one.
    type: str
    choices: [present, absent]
    default: present
  keys:
    description:
      - Unseal keys, or recovery keys on an auto-unseal server (base64 or hex), at least the threshold.
        Never logged. For O(state=present).
    type: list
    elements: str
  key_material_path:
    description:
      - Key material file to read the keys from (as written by M(trustroot.ops.vault_init) or
        M(trustroot.ops.vault_rekey)); the recovery keys are read when the server uses auto-unseal.
    type: path
  age_identity:
    description: age identity file that decrypts an age-encrypted O(key_material_path) or O(token_material_path).
    type: path
  pgp_key:
    description:
      - Base64 PGP public key (binary export, base64) to encrypt the new token to, instead of the OTP
        encoding. The material then holds the encrypted token, and the module cannot check it works.
    type: str
  output_path:
    description: File that receives the new token (required with O(state=present)).
    type: path
  age_recipients:
    description: age recipients (public keys) to encrypt the material file to. Needs the C(age) command.
    type: list
    elements: str
  overwrite_output:
    description: Replace an existing O(output_path).
    type: bool
    default: false
  cancel_stale:
    description:
      - Cancel a generation attempt already in progress before starting. Without it, an attempt in progress
        is an error.
    type: bool
    default: false
  api:
    description:
      - Which endpoints generate the token. V(auto) picks V(generate_root_token) on OpenBao 2.6.0 and later
        when O(token) is set, V(generate_root) otherwise.
      - V(generate_root) forces C(sys/generate-root) (no token needed).
      - V(generate_root_token) forces C(sys/generate-root-token) (needs O(token)).
    type: str
    choices: [auto, generate_root, generate_root_token]
    default: auto
  token_to_revoke:
    description: The root token to revoke, for O(state=absent). Never logged.
    type: str
  token_material_path:
    description: Material file whose C(root_token) is the token to revoke, for O(state=absent).
    type: path
extends_documentation_fragment:
  - trustroot.ops.vault_connection
attributes:
  check_mode:
    support: full
    description:
      - O(state=present) validates every input, reads the seal and the attempt status and reports
        V(changed=true) without starting an attempt.
      - O(state=absent) looks the token up and reports whether it would be revoked.
  diff_mode:
    support: full
    description: Shows whether a new root token is made, or whether the token is valid, before and after.
notes:
  - On OpenBao 2.5.3 and later the unauthenticated C(sys/generate-root) endpoints are off unless the server's
    C(listener "tcp") stanza sets C(disable_unauthed_generate_root_endpoints = false) (per listener). The
    token given for C(sys/generate-root-token) does not have to be a root token; a policy allowing
    C(sys/generate-root-token/*) is enough.
  - The OTP encoding is the one of OpenBao and of HashiCorp Vault since 1.10 (the token's bytes XOR the OTP's,
    base64 without padding); servers that need a client-supplied OTP are not supported.
  - With O(pgp_key), C(base64 -d | gpg --decrypt) turns the material's encrypted token into the token.
  - An attempt already in progress is an error unless O(cancel_stale=true).
seealso:
  - module: trustroot.ops.vault_init
  - module: trustroot.ops.vault_rekey
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Generate a root token from the unseal keys (OpenBao >= 2.6 with an admin token)
  trustroot.ops.vault_root_token:
    url: https://vault1.example.com:8200
    token: "{{ vault_admin_token }}"
    key_material_path: /secure/vault-keys.json.age
    age_identity: /secure/operator.agekey
    output_path: /secure/vault-root-token.json.age
    age_recipients:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  delegate_to: localhost

- name: Generate a root token encrypted to the security officer's PGP key
  trustroot.ops.vault_root_token:
    url: https://vault1.example.com:8200
    keys: "{{ vault_unseal_keys }}"
    pgp_key: "{{ officer_pgp_key }}"
    output_path: /secure/vault-root-token-pgp.json
  no_log: true
  delegate_to: localhost

- name: Revoke the root token when the maintenance is over
  trustroot.ops.vault_root_token:
    url: https://vault1.example.com:8200
    state: absent
    token_material_path: /secure/vault-root-token.json.age
    age_identity: /secure/operator.agekey
  delegate_to: localhost
'''

RETURN = r'''
state:
  description: The requested state.
  returned: always
  type: str
api:
  description: Endpoints used to generate, V(generate_root) or V(generate_root_token) (O(state=present)).
  returned: success
  type: str
output_path:
  description: Where the new token was written (V(null) in check mode).
  returned: success
  type: str
nonce:
  description: Nonce of the generation attempt (not a secret).
  returned: success
  type: str
pgp_fingerprint:
  description: Fingerprint of O(pgp_key), when the token is PGP-encrypted.
  returned: success
  type: str
verified:
  description: The new token was looked up and has the C(root) policy (not possible with O(pgp_key)).
  returned: success
  type: bool
stale_cancelled:
  description: An attempt already in progress was cancelled (or would be, in check mode).
  returned: success
  type: bool
recovery_keys:
  description: The token was generated from recovery keys (auto-unseal server).
  returned: success
  type: bool
revoked:
  description: The token was revoked by this run (O(state=absent)).
  returned: success
  type: bool
method:
  description: C(auth/token/revoke) or C(auth/token/revoke-self) (O(state=absent)).
  returned: success
  type: str
active_node:
  description: URL of the active node the attempt ran on (O(state=present)).
  returned: success
  type: str
flavour:
  description: V(openbao) or V(vault).
  returned: success
  type: str
version:
  description: Server version.
  returned: success
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import run_module
from ansible_collections.trustroot.ops.plugins.module_utils._vault import connection_argument_spec
from ansible_collections.trustroot.ops.plugins.module_utils._vault_root_token import manage_root_token


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        state=dict(type='str', default='present', choices=['present', 'absent']),
        keys=dict(type='list', elements='str', no_log=True),
        key_material_path=dict(type='path', no_log=False),
        age_identity=dict(type='path'),
        pgp_key=dict(type='str', no_log=False),
        output_path=dict(type='path'),
        age_recipients=dict(type='list', elements='str'),
        overwrite_output=dict(type='bool', default=False),
        cancel_stale=dict(type='bool', default=False),
        api=dict(type='str', default='auto', choices=['auto', 'generate_root', 'generate_root_token']),
        token_to_revoke=dict(type='str', no_log=True),
        token_material_path=dict(type='path', no_log=False),
    )
    module = AnsibleModule(
        argument_spec=argument_spec, supports_check_mode=True,
        required_if=[('state', 'present', ('output_path',)),
                     ('state', 'present', ('keys', 'key_material_path'), True),
                     ('state', 'absent', ('token_to_revoke', 'token_material_path'), True)],
        mutually_exclusive=[('keys', 'key_material_path'), ('token_to_revoke', 'token_material_path')])
    run_module(module, manage_root_token)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: vault_rekey
short_description: Rotate the unseal keys or recovery keys of a Vault / OpenBao cluster
version_added: 0.1.0
description:
  - Replaces the unseal key shares (O(target=unseal), Shamir seal) or the recovery key shares
    (O(target=recovery), auto-unseal) with a new set, authorized by a threshold of the current keys.
  - Takes the API the server supports. HashiCorp Vault and OpenBao before 2.5.0 use the unauthenticated
    C(sys/rekey) endpoints (C(sys/rekey-recovery-key) for recovery keys). OpenBao 2.5.0 and later turn
    those off by default and use the token-authenticated C(sys/rotate/root) (C(sys/rotate/recovery))
    endpoints, so O(token) is required there. O(api) overrides the choice.
  - The new keys are written to O(output_path) on the host that runs the module, mode 0600, atomically,
    optionally encrypted to age recipients, in the material format of M(trustroot.ops.vault_init), so
    M(trustroot.ops.vault_unseal) and a later rekey can read them. They are never returned, logged or
    shown in a diff.
  - With O(output_secret) the new keys go to a Kubernetes Secret instead (the same bytes as the file - JSON,
    or age armor with O(age_recipients)), and with O(material_secret) the current keys are read from one.
    Before the attempt starts the Secret is created, or updated, with a reservation that holds no key
    (labels and annotations only), so a namespace that is missing or not writable fails the task with nothing
    sent to the server (check mode makes the same write as a server-side dry run). With verification the new
    keys are staged in the Secret under C(pending-<UTC stamp>.json) before the verify phase, then moved to
    O(output_secret.key); the material they replace is kept in the same Secret under
    C(previous-<UTC stamp>.json), in the same update. If the Secret cannot be written once the rekey took
    effect, the new keys are saved to a new 0600 file in a private directory under the system temp directory
    (else C(/dev/shm)) and the task fails giving its path.
  - With O(require_verification=true) (the default) the new keys are written first, then submitted to the
    server's verify phase; only when that completes do they replace the old ones. A failure at any step
    after the attempt started cancels the attempt, so the current keys stay valid and nothing is left in
    progress.
  - Before the attempt starts (and in check mode), O(output_path) is proven with real bytes (write-ahead) -
    a hidden 0600 placeholder beside it receives, and fsyncs, at least as many bytes as the new material
    can take. A full or read-only disk fails the task naming O(output_path) and the system error, with
    nothing sent to the server, so the current keys stay the valid ones.
  - The new keys are written into the blocks reserved for them, then renamed onto O(output_path). Should
    that fail once the rekey took effect, they are saved, mode 0600 and encrypted as asked, beside
    O(output_path) (C(<output_path>.rescued-<UTC stamp>)), else in a private directory under C(/dev/shm)
    or the system temp directory; the task fails and its message gives the path (never the keys).
  - The answer that carries the new keys is checked (C(keys_base64) or C(keys), as many as O(secret_shares));
    with verification an unusable answer cancels the attempt, without it what the answer held is saved to
    C(<output_path>.partial-<UTC stamp>).
  - The attempt runs on the active node; when O(url) is a standby, the module follows its C(sys/leader)
    answer to the active node.
  - Every input is checked before the attempt starts (the share layout, the number of PGP keys, the
    current keys' format and count against the current threshold, O(output_path), the age recipients).
  - A rekey is an action, not a state. Every run that is not refused makes new keys and reports
    V(changed=true). Guard the task in the playbook (for example, run it only when the material file is
    older than your rotation period); by default an existing O(output_path) is refused, which stops an
    accidental second run before it touches the server.
options:
  target:
    description:
      - V(unseal) rotates the unseal keys of a Shamir-sealed cluster.
      - V(recovery) rotates the recovery keys of an auto-unseal cluster.
    type: str
    choices: [unseal, recovery]
    default: unseal
  secret_shares:
    description: Number of new key shares. Defaults to the current number of shares of O(target).
    type: int
  secret_threshold:
    description:
      - Shares needed to unseal (or to authorize recovery operations) with the new keys. Between 1 and
        O(secret_shares), and more than 1 when there is more than one share (the server's rule).
      - Defaults to the current threshold of O(target).
    type: int
  keys:
    description:
      - Current key shares of O(target) (base64 or hex), at least the current threshold. Never logged.
      - Mutually exclusive with O(key_material_path) and O(material_secret).
    type: list
    elements: str
  key_material_path:
    description:
      - Key material file to read the current keys from, as written by M(trustroot.ops.vault_init) or by
        an earlier run of this module. The recovery keys are read when O(target=recovery).
    type: path
  material_secret:
    description:
      - Kubernetes Secret that holds the current key material (as written by M(trustroot.ops.vault_init) or
        an earlier run of this module with O(output_secret)), instead of O(key_material_path).
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
        description: Context of the kubeconfig to use (its current context when omitted).
        type: str
  age_identity:
    description: age identity file that decrypts age-encrypted material (O(key_material_path) or O(material_secret)).
    type: path
  pgp_keys:
    description:
      - Base64 PGP public keys (binary export, base64-encoded), one per new share, in order; each new share
        is encrypted to its key and the material holds the encrypted shares.
      - The number of keys must equal O(secret_shares).
      - Needs O(require_verification=false), since encrypted shares cannot be submitted for verification.
    type: list
    elements: str
  backup:
    description:
      - With O(pgp_keys), ask the server to also store the PGP-encrypted shares (readable at
        C(sys/rotate/root/backup) or C(sys/rekey/backup)).
    type: bool
    default: false
  require_verification:
    description:
      - Run the verify phase. The new keys are written to O(output_path) and submitted back to the server
        before the old keys stop working; if writing or verifying fails, the attempt is cancelled and the
        old keys stay valid.
      - With V(false) the rekey takes effect when the last current key is submitted, and the new keys are
        written afterwards, into the space reserved for them before the attempt started (see above).
    type: bool
    default: true
  output_path:
    description:
      - File that receives the new key material (JSON, or age armor with O(age_recipients)).
      - One of O(output_path) and O(output_secret) is required.
    type: path
  output_secret:
    description:
      - Kubernetes Secret that receives the new key material instead of O(output_path) (see the description).
        It may be the Secret of O(material_secret); the current material is then kept under
        C(previous-<UTC stamp>.json) (this needs O(overwrite_output=true)).
      - The account of the kubeconfig needs C(get), C(create) and C(update) on Secrets in its namespace
        (C(delete) too, to remove a reservation it created when the run fails before the attempt starts).
      - The key defaults to C(material.json); keys starting with C(previous-), C(pending-) and C(partial-) are
        kept for earlier and unfinished material.
    type: dict
    suboptions:
      namespace:
        description: Namespace of the Secret (it must exist).
        type: str
        required: true
      name:
        description: Name of the Secret; created when it does not exist.
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
        description: Context of the kubeconfig to use (its current context when omitted).
        type: str
  age_recipients:
    description: age recipients (public keys) to encrypt the material file to. Needs the C(age) command.
    type: list
    elements: str
  overwrite_output:
    description:
      - Replace an existing O(output_path). Off by default, so earlier key material is never lost.
      - With O(output_secret), replace material already under its key; the replaced material is kept in the
        same Secret under C(previous-<UTC stamp>.json). A key that holds something that is not key material
        is never replaced.
    type: bool
    default: false
  cancel_stale:
    description:
      - Cancel a rekey attempt already in progress on the server before starting. Without it, an attempt
        in progress (started elsewhere, or left by an interrupted run) is an error.
    type: bool
    default: false
  api:
    description:
      - Which endpoints to use. V(auto) picks V(rotate_root) on OpenBao 2.5.0 and later and V(rekey)
        elsewhere.
      - V(rekey) forces C(sys/rekey) (no token needed; on OpenBao 2.5.0 and later only when the listener
        sets C(disable_unauthed_rekey_endpoints = false)).
      - V(rotate_root) forces C(sys/rotate/root) (OpenBao 2.4.0 and later; needs O(token)).
    type: str
    choices: [auto, rekey, rotate_root]
    default: auto
extends_documentation_fragment:
  - trustroot.ops.vault_connection
attributes:
  check_mode:
    support: full
    description: Validates every input, reads the seal and the attempt status, and reports V(changed=true)
      without starting an attempt or cancelling one.
  diff_mode:
    support: full
    description: Shows the share layout (shares and threshold) before and after, never keys.
notes:
  - On OpenBao 2.5.0 and later the unauthenticated C(sys/rekey) endpoints answer "unsupported operation" unless
    a listener sets C(disable_unauthed_rekey_endpoints = false); O(api=rekey) uses them on such a listener,
    and the module names that setting when they are off.
  - Rekey attempts live in the memory of the active node, so the whole attempt runs there; an attempt started
    through a standby was seen to answer "no rotation in progress" on its next update (OpenBao 2.7.2).
  - O(pgp_keys) come from C(gpg --export <id> | base64 -w0); C(base64 -d | gpg --decrypt) turns an encrypted
    share of the material back into the hex share.
  - If a write of the new keys fails and the rescue copies fail too, the message says the keys are lost; a
    cancel that fails is reported with a pointer to O(cancel_stale).
seealso:
  - module: trustroot.ops.vault_init
  - module: trustroot.ops.vault_unseal
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Rotate the unseal keys to 5 shares / threshold 3, material encrypted to the operators
  trustroot.ops.vault_rekey:
    url: https://vault1.example.com:8200
    token: "{{ vault_admin_token }}"
    ca_cert: /etc/ssl/vault-ca.pem
    key_material_path: /secure/vault-init.json.age
    age_identity: /secure/operator.agekey
    secret_shares: 5
    secret_threshold: 3
    output_path: /secure/vault-keys-2026-06.json.age
    age_recipients:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  delegate_to: localhost

- name: Rotate only when the current material is older than 90 days
  block:
    - name: Read the age of the material file
      ansible.builtin.stat:
        path: /secure/vault-keys.json
      register: vault_keys_file
    - name: Rotate the keys
      trustroot.ops.vault_rekey:
        url: https://vault1.example.com:8200
        token: "{{ vault_admin_token }}"
        key_material_path: /secure/vault-keys.json
        output_path: /secure/vault-keys.json
        overwrite_output: true
      when: (ansible_date_time.epoch | int) - (vault_keys_file.stat.mtime | int) > 90 * 86400
  delegate_to: localhost

- name: Rotate the unseal keys kept in a Kubernetes Secret (the old material stays in it as previous-<stamp>.json)
  trustroot.ops.vault_rekey:
    url: https://vault1.example.com:8200
    token: "{{ vault_admin_token }}"
    material_secret: &vault_keys_secret
      namespace: vault
      name: vault-init
      kubeconfig: /secure/vault-material.kubeconfig
    age_identity: /secure/operator.agekey
    output_secret: *vault_keys_secret
    overwrite_output: true
    age_recipients:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  delegate_to: localhost

- name: Rotate the recovery keys of an auto-unseal cluster, each new share encrypted to one officer
  trustroot.ops.vault_rekey:
    url: https://vault1.example.com:8200
    token: "{{ vault_admin_token }}"
    target: recovery
    keys: "{{ vault_recovery_keys }}"
    secret_shares: 3
    secret_threshold: 2
    pgp_keys: "{{ officer_pgp_keys }}"
    require_verification: false
    output_path: /secure/vault-recovery-2026-06.json
  no_log: true
  delegate_to: localhost
'''

RETURN = r'''
target:
  description: Which keys were rotated, V(unseal) or V(recovery).
  returned: always
  type: str
api:
  description: The endpoints used, V(rekey) (C(sys/rekey*)) or V(rotate_root) (C(sys/rotate/*)).
  returned: success
  type: str
shares:
  description: Shares of the new layout.
  returned: success
  type: int
threshold:
  description: Threshold of the new layout.
  returned: success
  type: int
previous_shares:
  description: Shares of the layout before the run.
  returned: success
  type: int
previous_threshold:
  description: Threshold of the layout before the run.
  returned: success
  type: int
verified:
  description: The new keys went through the server's verify phase.
  returned: success
  type: bool
output_path:
  description: Where the new material was written (V(null) in check mode).
  returned: success
  type: str
output_secret:
  description:
    - The Secret (namespace, name, key) the new material was written to (V(null) in check mode), and
      C(previous), the key the material it replaced is kept under (V(null) when there was none).
  returned: success, when O(output_secret) is set
  type: dict
  sample: {namespace: vault, name: vault-init, key: material.json, previous: previous-20260604T101500Z.json}
nonce:
  description: Nonce of the rekey attempt (not a secret; V(null) in check mode).
  returned: success
  type: str
pgp_fingerprints:
  description: Fingerprints of the PGP keys the new shares are encrypted to.
  returned: success
  type: list
  elements: str
stale_cancelled:
  description: An attempt already in progress was cancelled (or would be, in check mode).
  returned: success
  type: bool
active_node:
  description: URL of the active node the attempt ran on (O(url), or the active node O(url) names when it is a standby).
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
from ansible_collections.trustroot.ops.plugins.module_utils._material_secret import secret_option
from ansible_collections.trustroot.ops.plugins.module_utils._vault import connection_argument_spec
from ansible_collections.trustroot.ops.plugins.module_utils._vault_rekey import rekey_keys


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        target=dict(type='str', default='unseal', choices=['unseal', 'recovery']),
        secret_shares=dict(type='int', no_log=False),
        secret_threshold=dict(type='int', no_log=False),
        keys=dict(type='list', elements='str', no_log=True),
        key_material_path=dict(type='path', no_log=False),
        material_secret=secret_option(),
        age_identity=dict(type='path'),
        pgp_keys=dict(type='list', elements='str', no_log=False),
        backup=dict(type='bool', default=False),
        require_verification=dict(type='bool', default=True),
        output_path=dict(type='path'),
        output_secret=secret_option(),
        age_recipients=dict(type='list', elements='str'),
        overwrite_output=dict(type='bool', default=False),
        cancel_stale=dict(type='bool', default=False),
        api=dict(type='str', default='auto', choices=['auto', 'rekey', 'rotate_root']),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[('keys', 'key_material_path', 'material_secret'),
                                            ('output_path', 'output_secret')],
                           mutually_exclusive=[('keys', 'key_material_path', 'material_secret'),
                                               ('output_path', 'output_secret')])
    run_module(module, rekey_keys)


if __name__ == '__main__':
    main()

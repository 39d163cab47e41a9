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
  - Or, with O(output_secret), to a Kubernetes Secret (the same bytes as the file - JSON, or age armor with
    O(age_recipients)). Before the server is initialized the Secret is created, or updated, with a reservation
    that holds no key (labels and annotations only), so a namespace that is missing or not writable fails
    the task with nothing sent to the server; check mode makes the same write as a server-side dry run.
    Material replaced with O(overwrite_output=true) is kept in the same Secret under
    C(previous-<UTC stamp>.json). If the Secret cannot be written after the server was initialized, the
    material is saved to a new 0600 file in a private directory under the system temp directory (else
    C(/dev/shm)) and the task fails giving its path.
  - Every input is checked before the server is initialized, and O(output_path) is proven with real
    bytes (write-ahead) - a hidden 0600 placeholder beside it receives, and fsyncs, at least as many bytes as
    the material can take (shares, PGP-encrypted shares, root token, age armor). A full or read-only disk
    fails the task naming O(output_path) and the system error, with nothing sent to the server. Check
    mode makes the same proof and removes the placeholder.
  - The material is then written into the blocks reserved for it and renamed onto O(output_path), so a
    disk filled in between does not lose it (on filesystems that overwrite in place; copy-on-write ones,
    btrfs and ZFS, may still need free blocks).
  - If it cannot reach O(output_path) all the same, it is saved, mode 0600 and encrypted as asked, beside
    O(output_path) (C(<output_path>.rescued-<UTC stamp>)), else in a private directory under C(/dev/shm)
    or the system temp directory (preferring another filesystem); the task fails and its message gives
    the path (never the keys) and what to do. Only when every attempt fails does it say the keys are lost.
  - The answer of C(sys/init) is checked - the requested number of keys (C(keys_base64), or
    C(recovery_keys_base64) on auto-unseal servers) and a root token - else the task fails naming the node and
    the call. The server may be initialized all the same - the message says so, and what the answer did
    hold is saved to C(<output_path>.partial-<UTC stamp>).
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
    description:
      - File that receives the key material (JSON, or age armor with O(age_recipients)).
      - One of O(output_path) and O(output_secret) is required.
    type: path
  output_secret:
    description:
      - Kubernetes Secret that receives the key material instead of O(output_path) (see the description).
      - The account of the kubeconfig needs C(get), C(create) and C(update) on Secrets in O(output_secret.namespace)
        (C(delete) too, to remove a reservation it created when the run fails before the server is initialized).
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
        description:
          - Data key that holds the material. Keys starting with C(previous-), C(pending-) and C(partial-) are
            kept for earlier and unfinished material.
        type: str
        default: material.json
      kubeconfig:
        description:
          - Kubeconfig file of the cluster. Defaults to C(~/.kube/config), or the in-cluster service account
            when the module runs in a pod.
        type: path
      context:
        description: Context of O(output_secret.kubeconfig) to use (its current context when omitted).
        type: str
  age_recipients:
    description: age recipients (public keys) to encrypt the material file to. Needs the C(age) command.
    type: list
    elements: str
  overwrite_output:
    description:
      - Replace an existing O(output_path) when the server is initialized. Off by default so the material
        of another cluster is never overwritten.
      - With O(output_secret), replace material already under O(output_secret.key); the replaced material is
        kept in the same Secret under C(previous-<UTC stamp>.json). A key that holds something that is not
        key material is never replaced.
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

- name: Initialize the cluster, material (age armor) in a Kubernetes Secret
  trustroot.ops.vault_init:
    url: https://vault1.example.com:8200
    output_secret:
      namespace: vault
      name: vault-init
      kubeconfig: /secure/vault-material.kubeconfig
    age_recipients:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
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
output_secret:
  description: The Secret (namespace, name, key) the material was written to (only when this run initialized the node).
  returned: when O(output_secret) is set
  type: dict
  sample: {namespace: vault, name: vault-init, key: material.json}
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

from ansible_collections.trustroot.ops.plugins.module_utils._errors import run_module
from ansible_collections.trustroot.ops.plugins.module_utils._material_secret import secret_option
from ansible_collections.trustroot.ops.plugins.module_utils._vault import connection_argument_spec
from ansible_collections.trustroot.ops.plugins.module_utils._vault_init import initialize


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
        output_path=dict(type='path'),
        output_secret=secret_option(),
        age_recipients=dict(type='list', elements='str'),
        overwrite_output=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[('output_path', 'output_secret')],
                           mutually_exclusive=[('output_path', 'output_secret')])
    run_module(module, initialize)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: vault_seal_material
short_description: Move the key shares of a Vault / OpenBao key material file after a seal migration
version_added: 0.1.0
description:
  - A seal migration keeps the key shares but changes their role. Shamir to auto-unseal - the unseal keys
    become the recovery keys. Auto-unseal to Shamir - the recovery keys become the unseal keys.
  - This module moves the keys in the key material file (as written by M(trustroot.ops.vault_init) or
    M(trustroot.ops.vault_rekey)) to the fields named by O(keys_as). Material whose keys are there already
    is left alone (V(changed=false)).
  - The file is replaced atomically with mode 0600, age-encrypted to O(age_recipients). The previous file is
    first copied next to it with a UTC timestamp suffix (O(backup)); that copy is kept.
  - Keys are never logged or returned.
  - Runs where the material file is (usually the controller).
options:
  path:
    description: Key material file.
    type: path
    required: true
  age_identity:
    description: age identity file that decrypts an age-encrypted O(path).
    type: path
  age_recipients:
    description: age recipients (public keys or recipient files) the new material is encrypted to. Empty writes plain JSON.
    type: list
    elements: str
    default: []
  keys_as:
    description: Where the key shares must end up - V(recovery) (the seal is now an auto seal) or V(unseal) (Shamir).
    type: str
    required: true
    choices: [recovery, unseal]
  backup:
    description: Copy the previous file to O(path) plus a UTC timestamp suffix before replacing it.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Reports whether the keys would move; writes nothing.
  diff_mode:
    support: full
    description: Shows which fields hold the keys before and after (never the keys).
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: After Shamir -> transit, the unseal keys are the recovery keys
  trustroot.ops.vault_seal_material:
    path: /secure/vault-init.json.age
    age_identity: /secure/operator.agekey
    age_recipients: [age1examplerecipient]
    keys_as: recovery
  delegate_to: localhost
'''

RETURN = r'''
keys_as: {description: Fields that hold the keys now (V(unseal) or V(recovery))., type: str, returned: always}
shares: {description: Number of key shares., type: int, returned: always}
threshold: {description: Shares needed., type: int, returned: always}
backup_file: {description: Copy of the previous material (empty when nothing changed or in check mode)., type: str, returned: always}
'''

import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._material import (
    MaterialError, read_material, secrets_in, write_material)
from ansible_collections.trustroot.ops.plugins.module_utils._vault_seal_migration import (
    SealMigrationError, archive_name, key_layout, material_for_seal)


def keep_a_copy(path):
    """The material as it was, beside it: created 0600 (never readable by others, not even for a moment), never
    over an existing file. Returns its path."""
    backup_file = archive_name(path, exists=os.path.exists)
    try:
        fd = os.open(backup_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'wb') as target, open(path, 'rb') as source:
            shutil.copyfileobj(source, target)
    except (IOError, OSError) as exc:
        raise TrustrootError('backup of %s failed: %s' % (path, exc))
    return backup_file


def run(module):
    params = module.params
    try:
        material = read_material(module, params['path'], params['age_identity'])
    except MaterialError as exc:
        raise InputError('path: %s' % exc)
    module.no_log_values.update(secrets_in(material))
    keys_before = 'recovery' if params['keys_as'] == 'unseal' else 'unseal'
    try:
        new, changed = material_for_seal(material, params['keys_as'])
    except SealMigrationError as exc:
        raise InputError('path: %s' % exc)
    result = dict(changed=changed, keys_as=params['keys_as'], backup_file='', **key_layout(new, params['keys_as']))
    if module._diff:
        result['diff'] = {'before': {'keys_as': keys_before if changed else params['keys_as']},
                          'after': {'keys_as': params['keys_as']}}
    if not changed or module.check_mode:
        return result
    if params['backup']:
        result['backup_file'] = keep_a_copy(params['path'])
    try:
        write_material(module, params['path'], new, params['age_recipients'])
    except MaterialError as exc:
        raise TrustrootError('path: %s' % exc, results=result)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            age_identity=dict(type='path'),
            age_recipients=dict(type='list', elements='str', default=[]),
            keys_as=dict(type='str', required=True, choices=['recovery', 'unseal']),
            backup=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    run_module(module, run)


if __name__ == '__main__':
    main()

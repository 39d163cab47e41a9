#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_info
short_description: The newest verified backup of each root of trust, and whether it is recent enough
version_added: 0.1.0
description:
  - Reads the sidecars under O(backup_dir), the controller directory C(backup.yml) writes to (C(vault/),
    C(spire-server/<host>/)), and reports the newest Vault / OpenBao backup and the newest SPIRE server backup that
    were proven after they were written (C(verify_backup.yml) restores them; the check made as an archive is written
    does not count).
  - RV(ready) says whether both are younger than O(max_age). C(upgrade.yml) checks that before any change, so that there
    is a way back.
  - Never changes anything. Runs on the controller.
options:
  backup_dir:
    description: The controller directory C(backup.yml) writes to.
    type: path
    required: true
  max_age:
    description: Seconds a verified backup may be old (counted from when it was taken) and still be ready.
    type: int
    default: 86400
attributes:
  check_mode:
    support: full
    description: Reads only.
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Require verified backups of both systems from the last 6 hours
  trustroot.ops.backup_info:
    backup_dir: /srv/backups
    max_age: 21600
  delegate_to: localhost
  register: backups
  failed_when: not backups.ready
'''

RETURN = r'''
ready:
  description: Both systems have a verified backup no older than O(max_age).
  returned: always
  type: bool
problems:
  description: One line per system that is not ready (no verified backup, or too old).
  returned: always
  type: list
  elements: str
systems:
  description: Per system (V(vault), V(spire-server)) - ready, why, age_seconds and name of its newest verified backup.
  returned: always
  type: dict
newest:
  description: Per system, its newest verified backup (name, path, created_unix, verified_how, verified_at), or null.
  returned: always
  type: dict
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import BackupError
from ansible_collections.trustroot.ops.plugins.module_utils._backup.retention import (
    backup_readiness, newest_verified_backups)


def run(module):
    backup_dir = module.params['backup_dir']
    if not os.path.isdir(backup_dir):
        raise InputError('backup_dir %s is not a directory' % backup_dir)
    try:
        newest = newest_verified_backups(backup_dir)
        readiness = backup_readiness(newest, module.params['max_age'], time.time())
    except BackupError as err:
        raise TrustrootError('backup_dir %s: %s' % (backup_dir, err))
    return dict(readiness, changed=False, newest=newest)


def main():
    module = AnsibleModule(argument_spec=dict(backup_dir=dict(type='path', required=True),
                                              max_age=dict(type='int', default=86400)),
                           supports_check_mode=True)
    run_module(module, run)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: posture_report
short_description: Judge the security posture of both roots of trust and write the report
version_added: 0.1.0
description:
  - Runs on the controller. Turns what C(trustroot.ops.vault_posture_info), C(trustroot.ops.spire_posture_info)
    and the hosts showed into findings (id, system, status C(PASS), C(WARN) or C(FAIL), summary, remediation),
    adds the age of the newest verified backup of each system (the sidecars under O(backup_dir)), and writes the
    JSON report to O(report_path) (mode 0600, replaced atomically).
  - Never fails on findings; C(playbooks/posture.yml) asserts on RV(passed) after the report is written.
  - The report is the check's output on the controller, so it is written in check mode too and C(changed) is
    always false (nothing on the servers changes).
options:
  vault:
    description: The RV(trustroot.ops.vault_posture_info#module:posture) answer; omitted when there is no Vault.
    type: dict
  vault_inventory:
    description: Inventory names of the Vault / OpenBao nodes (raft node IDs are compared with them).
    type: list
    elements: str
    default: []
  vault_audit_files:
    description: Per Vault host, per audit file path, C(exists), C(owner), C(mode), C(avail_bytes), C(size_bytes).
    type: dict
    default: {}
  spire:
    description: Per SPIRE server host, its RV(trustroot.ops.spire_posture_info#module:posture) answer.
    type: dict
    default: {}
  spire_agents:
    description: Per SPIRE agent host, C(insecure_bootstrap) as read from its configuration.
    type: dict
    default: {}
  backup_dir:
    description: The controller directory C(backup.yml) writes to (C(vault/), C(spire-server/<host>/)); empty
      to skip the backup checks (they are then a C(WARN)).
    type: path
  thresholds:
    description: Overrides of the default thresholds (see C(playbooks/posture.yml) and docs/security.md).
    type: dict
    default: {}
  report_path:
    description: Where to write the JSON report.
    type: path
    required: true
  now:
    description: Unix time to judge at (tests); default the current time.
    type: float
author:
  - trustroot.ops maintainers (@trustroot)
attributes:
  check_mode:
    support: full
    description: The report is written in check mode too (it is output on the controller).
  diff_mode:
    support: none
    description: Nothing on the servers changes.
'''

EXAMPLES = r'''
- name: Judge and write the report
  trustroot.ops.posture_report:
    vault: "{{ vault_posture.posture }}"
    vault_inventory: "{{ groups['vault_servers'] }}"
    backup_dir: /srv/backups
    report_path: /srv/reports/posture.json
  register: posture
'''

RETURN = r'''
passed:
  description: Whether no finding is a C(FAIL).
  returned: always
  type: bool
counts:
  description: Findings per status.
  returned: always
  type: dict
findings:
  description: Every finding, grouped by system, FAIL and WARN first.
  returned: always
  type: list
  elements: dict
summary:
  description: The readable summary, one line per check (and one remediation line under each FAIL or WARN).
  returned: always
  type: list
  elements: str
report_path:
  description: Where the JSON report was written.
  returned: always
  type: str
'''

import datetime
import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import BackupError
from ansible_collections.trustroot.ops.plugins.module_utils._backup.retention import newest_verified_backups
from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._files import atomic_write
from ansible_collections.trustroot.ops.plugins.module_utils._posture import (
    backup_findings, render, report, spire_findings, thresholds_with_defaults, vault_findings)


def run(module):
    params = module.params
    thresholds = thresholds_with_defaults(params['thresholds'])
    if params['backup_dir'] and not os.path.isdir(params['backup_dir']):
        raise InputError('backup_dir %s is not a directory' % params['backup_dir'])
    now = params['now'] or time.time()
    findings = []
    if params['vault'] is not None:
        facts = dict(params['vault'], inventory=params['vault_inventory'], audit_files=params['vault_audit_files'])
        findings += vault_findings(facts, thresholds, now)
    for host in sorted(params['spire']):
        findings += spire_findings(params['spire'][host] or {}, params['spire_agents'], thresholds, now,
                                   host if len(params['spire']) > 1 else None)
    try:
        backups = newest_verified_backups(params['backup_dir']) if params['backup_dir'] else None
        findings += backup_findings(backups, thresholds, now)
    except BackupError as err:
        raise TrustrootError('backup_dir: %s' % err)
    stamp = datetime.datetime.fromtimestamp(int(now), datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    document = report(findings, thresholds, stamp)
    try:
        atomic_write(params['report_path'], (json.dumps(document, indent=2, sort_keys=True) + '\n').encode('utf-8'))
    except (IOError, OSError) as err:
        raise TrustrootError('report_path %s cannot be written: %s' % (params['report_path'], err))
    return dict(changed=False, passed=document['passed'], counts=document['counts'], findings=document['findings'],
                summary=render(document['findings']), report_path=params['report_path'])


def main():
    module = AnsibleModule(argument_spec=dict(
        vault=dict(type='dict'), vault_inventory=dict(type='list', elements='str', default=[]),
        vault_audit_files=dict(type='dict', default={}), spire=dict(type='dict', default={}),
        spire_agents=dict(type='dict', default={}), backup_dir=dict(type='path'),
        thresholds=dict(type='dict', default={}), report_path=dict(type='path', required=True),
        now=dict(type='float')), supports_check_mode=True)
    run_module(module, run)


if __name__ == '__main__':
    main()

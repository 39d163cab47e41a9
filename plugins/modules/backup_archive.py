#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_archive
short_description: Write and verify trustroot.ops backup archives (local, encrypted, S3, retention, metrics)
version_added: 0.1.0
description:
  - Handles backup archives of the collection's one format on the host that runs the module (the controller or
    the host where the files are). An archive is a C(tar.gz) whose first member C(manifest.json) records the
    format, system, creation time, facts (O(info)) and the sha256 and size of every part; the parts follow.
    A sidecar C(<archive>.json) next to it records the archive's own sha256 and size and its last verification.
  - O(state=present) packs O(parts) into a new archive in O(dest_dir) (encrypted with C(age) when
    O(age_recipients) is set), reads it back and checks it, writes its sidecar, then uploads both to O(s3),
    applies O(keep_count) and O(max_age) (locally and in S3) and writes the metric file in
    O(metric_textfile_dir). Writing a backup is an action; every run writes a new archive (changed).
  - O(state=verified) checks an archive (O(path), or the latest of O(system) in O(dest_dir)) against its sidecar
    (sha256 and size, which catch tampering and truncation) and against its manifest (every part's sha256 and size, no extra,
    missing, linked or empty member), decrypting with O(age_identity) when it is encrypted. With O(extract_to) the
    parts are written there; with O(mark_verified) the verification is recorded in the sidecar. Verifying is
    read-only (not changed) otherwise.
options:
  state:
    description: V(present) writes a new archive; V(verified) checks an existing one.
    type: str
    choices: [present, verified]
    default: present
  system:
    description:
      - What the backup is of (archive names start with it), for example V(spire) or V(vault). Lowercase letters,
        digits, C(-) and C(_).
      - Required with O(state=present); with O(state=verified) and O(dest_dir), the latest archive of this system is
        verified.
    type: str
  parts:
    description:
      - With O(state=present), the files to archive. Each must exist and be non-empty (an empty file is never a
        backup) and must not change while it is archived.
    type: list
    elements: dict
    suboptions:
      name:
        description: Member name in the archive, a plain file name (C([A-Za-z0-9._-]), unique, not C(manifest.json)).
        type: str
        required: true
      path:
        description: File to archive.
        type: path
        required: true
  info:
    description:
      - With O(state=present), facts about the backup recorded in the manifest and the sidecar (versions, trust
        domain, counts, cluster ID, ...). Never put secrets here; the sidecar is not encrypted.
    type: dict
    default: {}
  path:
    description: With O(state=verified), the archive to verify (its sidecar is C(<path>.json)).
    type: path
  age_identity:
    description: With O(state=verified), an age identity file that decrypts an encrypted archive.
    type: path
  extract_to:
    description:
      - With O(state=verified), an existing directory where the verified parts are written (mode 0600), each
        through a temporary file, and only after every part checked. Parts already there with the same content
        are left alone.
    type: path
  mark_verified:
    description: With O(state=verified), record the verification (time and O(verified_how)) in the sidecar.
    type: bool
    default: false
  verified_how:
    description: With O(mark_verified), how the archive was verified, for example V(verified) or V(restored).
    type: str
    default: verified
extends_documentation_fragment:
  - trustroot.ops.backup
attributes:
  check_mode:
    support: full
    description:
      - O(state=present) checks every input (parts exist and are non-empty, directories writable, recipients,
        S3 bucket reachable) and reports the archive, uploads and deletions it would make, writing nothing.
      - O(state=verified) verifies fully and writes nothing (no extraction, no sidecar update).
  diff_mode:
    support: full
    description: The backups of the system in O(dest_dir) before and after.
requirements:
  - The C(age) command on the host that runs the module, to encrypt (O(age_recipients)) or verify an encrypted
    archive.
notes:
  - Archive names are C(<system>-<YYYYmmddTHHMMSSZ>.tar.gz) (C(.tar.gz.age) when encrypted, binary age, not armored),
    with one-second resolution; a second backup of the same system in the same second fails rather than overwrite.
  - An error or an interruption (Ctrl-C, SIGTERM) at any step of a write removes every file of that run; a part
    that changes while it is archived fails the backup.
  - With O(s3) the archive is uploaded before its sidecar (path-style requests, Signature V4), so a sidecar in the
    bucket always has its archive.
  - Retention never deletes the newest backup, nor the newest one verified after it was written (C(verified.how)
    other than C(written), for example a restore test by C(playbooks/verify_backup.yml)).
  - The metric file C(trustroot_backup_<system>.prom) holds C(trustroot_backup_last_success_timestamp_seconds) and
    C(trustroot_backup_last_size_bytes) (label C(system)) for node_exporter's textfile collector; alert on
    C(time() - trustroot_backup_last_success_timestamp_seconds) to catch backups that stopped.
  - The same format is written by M(trustroot.ops.spire_server_backup) and by the backup command the role
    R(trustroot.ops.backup,ansible_collections.trustroot.ops.backup_role) installs on hosts.
seealso:
  - module: trustroot.ops.vault_raft_snapshot
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Archive a SPIRE datastore copy and its keys, encrypted, off-site, 14 kept
  trustroot.ops.backup_archive:
    system: spire
    parts:
      - name: datastore.sqlite3
        path: /var/lib/spire/backup/datastore.sqlite3
      - name: keys.json
        path: /var/lib/spire/server/keys.json
    info:
      trust_domain: example.org
      spire_version: 1.15.3
    dest_dir: /var/backups/trustroot
    age_recipients:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
    keep_count: 14
    s3:
      endpoint: https://s3.example.com
      bucket: trustroot-backups
      prefix: spire/
      access_key: "{{ s3_access_key }}"
      secret_key: "{{ s3_secret_key }}"
    metric_textfile_dir: /var/lib/prometheus/node-exporter
  register: spire_backup

- name: Verify the latest SPIRE backup and unpack it for a restore test
  trustroot.ops.backup_archive:
    state: verified
    dest_dir: /var/backups/trustroot
    system: spire
    age_identity: /root/.config/trustroot/backup.agekey
    extract_to: /var/tmp/spire-restore
    mark_verified: true
'''

RETURN = r'''
path:
  description: The archive written (or that would be written in check mode) or verified.
  returned: always
  type: str
sha256:
  description: sha256 of the archive file (null in check mode for O(state=present)).
  returned: always
  type: str
size:
  description: Size of the archive file in bytes (null in check mode for O(state=present)).
  returned: always
  type: int
sidecar:
  description:
    - The sidecar (format, system, name, archive, created, sha256, size, encrypted, info, parts, verified).
  returned: when an archive was written or verified
  type: dict
manifest:
  description: The archive's inner manifest (format, system, name, created, info, parts).
  returned: when O(state=verified)
  type: dict
uploaded:
  description: S3 keys uploaded (archive, then sidecar), relative to O(s3.prefix).
  returned: when O(state=present)
  type: list
  elements: str
deleted:
  description: Local archives deleted (or that would be deleted) by retention.
  returned: when O(state=present)
  type: list
  elements: str
deleted_s3:
  description: S3 archive keys deleted (or that would be deleted) by retention.
  returned: when O(state=present)
  type: list
  elements: str
metric_path:
  description: The metric file written (null when O(metric_textfile_dir) is not set).
  returned: when O(state=present)
  type: str
extracted:
  description: Parts written to O(extract_to) (those missing there or different).
  returned: when O(state=verified)
  type: list
  elements: str
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._runner import module_runner
from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._backup.archive import write_archive
from ansible_collections.trustroot.ops.plugins.module_utils._backup.finish import finish_backup
from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import archive_name, BackupError, iso, utcnow
from ansible_collections.trustroot.ops.plugins.module_utils._backup.metrics import metric_path
from ansible_collections.trustroot.ops.plugins.module_utils._backup.options import (
    archive_option_errors, backup_argument_spec)
from ansible_collections.trustroot.ops.plugins.module_utils._backup.remote import s3_backups, s3_store
from ansible_collections.trustroot.ops.plugins.module_utils._backup.retention import mark_verified, retention_plan
from ansible_collections.trustroot.ops.plugins.module_utils._backup.verify import (
    extraction_changes, latest_backup, list_backups, read_sidecar, verify_archive)
from ansible_collections.trustroot.ops.plugins.module_utils._s3 import S3Error


def run_present(module):
    params = module.params
    system = params['system']
    dest = params['dest_dir']
    now = utcnow()
    name = archive_name(system, now)
    archive = name + ('.tar.gz.age' if params['age_recipients'] else '.tar.gz')
    before = [b['archive'] for b in list_backups(dest, system)]
    result = dict(changed=True, path=os.path.join(dest, archive), sha256=None, size=None, uploaded=[], deleted=[],
                  deleted_s3=[], metric_path=None)
    if module.check_mode:
        store = s3_store(params['s3']) if params['s3'] else None
        if store is not None and not store.bucket_exists():
            raise BackupError('s3.bucket %s does not exist at %s' % (store.bucket, store.endpoint))
        planned = {'name': name, 'archive': archive, 'created': iso(now), 'verified': {'how': 'written'},
                   'path': result['path'], 'key': archive}
        limits = (params['keep_count'], params['max_age'])
        if limits != (None, None):
            existing = list_backups(dest, system)
            result['deleted'] = [b['path'] for b in retention_plan(existing + [planned], *limits, now=now)[1]]
            if store is not None:
                result['deleted_s3'] = [b['key'] for b in
                                        retention_plan(s3_backups(store, system) + [planned], *limits, now=now)[1]]
        if store is not None:
            result['uploaded'] = [archive, archive + '.json']
        if params['metric_textfile_dir']:
            result['metric_path'] = metric_path(params['metric_textfile_dir'], system)
    else:
        parts = [(p['name'], p['path']) for p in params['parts']]
        sidecar = write_archive(dest, system, parts, params['info'], recipients=params['age_recipients'],
                                run=module_runner(module), now=now)
        result.update(sha256=sidecar['sha256'], size=sidecar['size'], sidecar=sidecar)
        try:
            result.update(finish_backup(params, sidecar, run=module_runner(module), now=now))
        except (BackupError, S3Error, IOError, OSError) as exc:
            raise TrustrootError('the archive %s was written, then: %s' % (result['path'], exc), results=result)
    if module._diff:
        gone = set(os.path.basename(p) for p in result['deleted'])
        after = [b for b in before if b not in gone] + [archive]
        result['diff'] = {'before': {'backups': before}, 'after': {'backups': after}}
    return result


def run_verified(module):
    params = module.params
    path = params['path']
    if not path:
        latest = latest_backup(params['dest_dir'], params['system'])
        if latest is None:
            raise BackupError('dest_dir %s holds no backup of %s' % (params['dest_dir'], params['system']))
        path = latest['path']
    sidecar = read_sidecar(path)
    if sidecar['encrypted']:
        if not params['age_identity']:
            raise BackupError('age_identity is required to verify the encrypted archive %s' % path)
        if not module.get_bin_path('age'):
            raise BackupError('verifying the encrypted archive %s needs the age command on the host that runs '
                              'the module' % path)
    extract_to = params['extract_to']
    pending = extraction_changes(sidecar, extract_to) if extract_to else []
    write_parts = bool(pending) and not module.check_mode
    manifest = verify_archive(path, identity=params['age_identity'], extract_to=extract_to if write_parts else None,
                              run=module_runner(module))
    result = dict(changed=bool(pending), path=path, sha256=sidecar['sha256'], size=sidecar['size'],
                  manifest=manifest, sidecar=sidecar, extracted=pending)
    if params['mark_verified']:
        result['changed'] = True
        before = sidecar.get('verified')
        if not module.check_mode:
            result['sidecar'] = mark_verified(path, params['verified_how'])
        if module._diff:
            result['diff'] = {'before': {'verified': before},
                              'after': {'verified': result['sidecar'].get('verified') if not module.check_mode
                                        else {'how': params['verified_how'], 'at': '(now)'}}}
    return result


def run(module):
    errors = archive_option_errors(module.params, bool(module.get_bin_path('age')))
    if errors:
        raise InputError('; '.join(errors))
    return run_present(module) if module.params['state'] == 'present' else run_verified(module)


def main():
    argument_spec = backup_argument_spec()
    argument_spec.update(
        state=dict(type='str', default='present', choices=['present', 'verified']),
        system=dict(type='str'),
        parts=dict(type='list', elements='dict', options=dict(
            name=dict(type='str', required=True),
            path=dict(type='path', required=True),
        )),
        info=dict(type='dict', default={}),
        path=dict(type='path'),
        age_identity=dict(type='path'),
        extract_to=dict(type='path'),
        mark_verified=dict(type='bool', default=False),
        verified_how=dict(type='str', default='verified'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, run)


if __name__ == '__main__':
    main()

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The two states of spire_server_backup: ``saved`` (one archive through save_spire_backup) and ``restored``
(verify the archive, plan, stop the unit, put the files back, start it, check the server against the backup).
``module`` is duck-typed: ``params``, ``check_mode``, ``_diff``, ``warn`` and ``run_command``/``get_bin_path``
(through _runner.module_runner). Failures raise SpireBackupError with the result reached so far."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd
import shutil
import tempfile
import time

from ansible_collections.trustroot.ops.plugins.module_utils import _runner
from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import BackupError
from ansible_collections.trustroot.ops.plugins.module_utils._backup.options import backup_option_errors
from ansible_collections.trustroot.ops.plugins.module_utils._backup.verify import latest_backup, verify_archive
from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError
from ansible_collections.trustroot.ops.plugins.module_utils._files import sha256_file
from ansible_collections.trustroot.ops.plugins.module_utils._runner import module_runner
from ansible_collections.trustroot.ops.plugins.module_utils._spire_backup import (
    DATASTORE_PART, PART_KEYS, SYSTEM, SpireBackupError, SpireCLI, bundle_summary, check_restored,
    connection_string_problem, entries_digest, find_spire_server, parts_pair_problems, restore_files, restore_plan,
    save_spire_backup, state_view)

SAVED_ONLY = ('age_recipients', 'keep_count', 'max_age', 'metric_textfile_dir', 's3')
RESTORED_ONLY = ('path', 'age_identity', 'force', 'force_key_mismatch')


def option_errors(params):
    errors = []
    state = params['state']
    if params['datastore'] == 'postgres':
        problem = connection_string_problem(params['connection_string'], 'datastore=postgres')
        if problem:
            errors.append(problem)
    elif params['connection_string']:
        errors.append('connection_string applies only to datastore=postgres')
    if state == 'saved':
        errors += backup_option_errors(params)
        for name in RESTORED_ONLY:
            if params[name]:
                errors.append('%s applies only to state=restored' % name)
        if params['datastore'] == 'sqlite3' and not os.path.isfile(params['sqlite_path']):
            errors.append('sqlite_path: %s does not exist' % params['sqlite_path'])
        if not os.path.isfile(params['keys_path']):
            errors.append('keys_path: %s does not exist' % params['keys_path'])
    else:
        for name in SAVED_ONLY:
            if params[name]:
                errors.append('%s applies only to state=saved' % name)
        if not params['path'] and not params['dest_dir']:
            errors.append('path (an archive) or dest_dir (its newest backup) is required with state=restored')
        if params['path'] and not os.path.isfile(params['path']):
            errors.append('path: %s does not exist' % params['path'])
        if params['dest_dir'] and not params['path'] and not os.path.isdir(params['dest_dir']):
            errors.append('dest_dir: %s is not a directory' % params['dest_dir'])
        if params['age_identity'] and not os.access(params['age_identity'], os.R_OK):
            errors.append('age_identity: %s is not a readable file' % params['age_identity'])
        if params['wait_timeout'] <= 0:
            errors.append('wait_timeout must be a positive number of seconds, got %s' % params['wait_timeout'])
        targets = [('keys_path', params['keys_path'])]
        if params['datastore'] == 'sqlite3':
            targets.append(('sqlite_path', params['sqlite_path']))
        for name, value in targets:
            if not os.path.isdir(os.path.dirname(os.path.abspath(value))):
                errors.append('%s: directory %s does not exist' % (name, os.path.dirname(os.path.abspath(value))))
        for name, lookup in (('owner', pwd.getpwnam), ('group', grp.getgrnam)):
            try:
                lookup(params[name])
            except KeyError:
                errors.append('%s: %s does not exist on this host' % (name, params[name]))
    return errors


def spire_cli(module):
    return SpireCLI(find_spire_server(module.params['spire_server_path']), module.params['socket_path'],
                    _runner.subprocess_runner(module.params['timeout']))


# --- saved ---

def run_saved(module):
    params = module.params
    cli = spire_cli(module)
    previous = latest_backup(params['dest_dir'], SYSTEM)
    before = {'archive': previous['archive'] if previous else None}
    result = dict(changed=True, archive=None)
    if module.check_mode:
        cli.json(['bundle', 'show'])     # the server answers
        if module._diff:
            result['diff'] = {'before': before, 'after': {'archive': '(a new archive)'}}
        return result
    saved = save_spire_backup(dict(params), run=module_runner(module), spire_cli=cli)
    sidecar = saved['sidecar']
    result.update(archive=os.path.join(params['dest_dir'], sidecar['archive']), sidecar=sidecar,
                  info=saved['info'], uploaded=saved['finish'].get('uploaded') or [],
                  deleted=saved['finish'].get('deleted') or [], metric_path=saved['finish'].get('metric_path'))
    if module._diff:
        result['diff'] = {'before': before, 'after': {'archive': sidecar['archive']}}
    return result


# --- restored ---

def current_state(cli, params):
    keys_sha = sha256_file(params['keys_path']) if os.path.isfile(params['keys_path']) else None
    try:
        bundle = bundle_summary(cli.json(['bundle', 'show']))
        entry_count = int(cli.json(['entry', 'count']).get('count') or 0)
    except SpireBackupError:
        bundle, entry_count = None, None
    return {'datastore': params['datastore'], 'keys_sha256': keys_sha, 'bundle': bundle, 'entry_count': entry_count}


def systemctl(module, action, unit):
    _runner.systemctl(module_runner(module), action, unit, error=SpireBackupError)


def wait_healthy(cli, timeout):
    deadline = time.monotonic() + timeout
    while True:
        if cli.healthy():
            return
        if time.monotonic() > deadline:
            raise SpireBackupError('the SPIRE server was not healthy (spire-server healthcheck, socket_path %s) '
                                   '%ss after the start' % (cli.socket_path, timeout))
        time.sleep(1)


def verify_after(cli, info):
    bundle = bundle_summary(cli.json(['bundle', 'show']))
    entry_count = int(cli.json(['entry', 'count']).get('count') or 0)
    digest = entries_digest(cli.json(['entry', 'show'])) if info.get('entries_sha256') else None
    problems = check_restored(info, bundle, entry_count, digest)
    checks = [{'name': 'healthcheck', 'ok': True}]
    for name, word in (('trust_domain', 'trust domain'), ('x509_authorities', 'X.509 authorities'),
                       ('entry_count', 'registration entries, the backup'),
                       ('entries_sha256', 'registration entries differ')):
        if name == 'entries_sha256' and digest is None:
            continue
        checks.append({'name': name, 'ok': not any(word in p for p in problems)})
    return bundle, entry_count, problems, checks


def run_restored(module):
    params = module.params
    archive = params['path']
    if not archive:
        latest = latest_backup(params['dest_dir'], SYSTEM)
        if latest is None:
            raise SpireBackupError('dest_dir: %s holds no backup of the SPIRE server' % params['dest_dir'])
        archive = latest['path']
    cli = spire_cli(module)
    run = module_runner(module)
    data_dir = os.path.dirname(os.path.abspath(params['keys_path']))
    # Check mode extracts the parts too (keys.json is checked against the datastore), into a private temporary
    # directory rather than beside the server's files.
    workdir = tempfile.mkdtemp(prefix='.spire-server-restore-', dir=None if module.check_mode else data_dir)
    try:
        manifest = verify_archive(archive, identity=params['age_identity'], extract_to=workdir, run=run)
        info = manifest.get('info') or {}
        current = current_state(cli, params)
        plan = restore_plan(manifest, current, force=params['force'])
        result = dict(changed=False, archive=archive, info=info, restored=False, reason=plan['reason'], checks=[])
        if plan['errors']:
            raise SpireBackupError('%s: %s' % (archive, '; '.join(plan['errors'])), results=result)
        if not plan['restore']:
            return result
        store_part = DATASTORE_PART[params['datastore']]
        mismatch = parts_pair_problems(params['datastore'], os.path.join(workdir, store_part),
                                       os.path.join(workdir, PART_KEYS), run)
        result['key_mismatch'] = mismatch
        if mismatch and not params['force_key_mismatch']:
            raise SpireBackupError('%s: its keys.json does not belong to its %s, so SPIRE would start with a new CA; '
                                   'nothing was changed (force_key_mismatch=true restores it anyway): %s' % (
                                       archive, store_part, '; '.join(mismatch)), results=result)
        if mismatch:
            module.warn('force_key_mismatch: restoring %s although its keys.json does not belong to its %s, so SPIRE '
                        'starts with a new CA: %s' % (archive, store_part, '; '.join(mismatch)))
        result['changed'] = True
        if module._diff:
            result['diff'] = {
                'before': state_view(current['keys_sha256'], current['bundle'], current['entry_count']),
                'after': state_view(manifest['parts'][PART_KEYS]['sha256'], info, info.get('entry_count'))}
        if module.check_mode:
            return result
        uid = pwd.getpwnam(params['owner']).pw_uid
        gid = grp.getgrnam(params['group']).gr_gid
        systemctl(module, 'stop', params['service_name'])
        try:
            try:
                restore_files(workdir, params['datastore'], params['sqlite_path'], params['connection_string'],
                              params['keys_path'], uid, gid, workdir, run)
                result['restored'] = True
            finally:
                # The service runs again whatever happened to the files.
                systemctl(module, 'start', params['service_name'])
            wait_healthy(cli, params['wait_timeout'])
            _bundle, _count, problems, checks = verify_after(cli, info)
        except (SpireBackupError, BackupError, IOError, OSError) as exc:
            raise SpireBackupError('restoring %s: %s' % (archive, getattr(exc, 'strerror', None) or exc), results=result)
        result['checks'] = checks
        if problems:
            raise SpireBackupError('the restored server does not match the backup %s: %s' % (archive, '; '.join(problems)),
                                   results=result)
        return result
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def run(module):
    """The module's work: option checks first (nothing called), then the state's flow."""
    errors = option_errors(module.params)
    if errors:
        raise InputError('; '.join(errors))
    return run_saved(module) if module.params['state'] == 'saved' else run_restored(module)

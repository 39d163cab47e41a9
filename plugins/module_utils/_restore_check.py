# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""backup_restore_check's run: each archive verified, then restored into a scratch server of its own (``bao
server`` with raft storage, ``spire-server`` with the archived datastore and keys) on loopback, checked against
the manifest, and every scratch process stopped and every scratch file removed, whatever happens.

The pure parts (scratch configurations, the checks, option rules) are in ``_scratch``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import tempfile

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError
from ansible_collections.trustroot.ops.plugins.module_utils._files import write_new_file
from ansible_collections.trustroot.ops.plugins.module_utils._runner import module_runner
from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import (
    BackupError, sigterm_raises, Terminated)
from ansible_collections.trustroot.ops.plugins.module_utils._backup.verify import latest_backup, verify_archive
from ansible_collections.trustroot.ops.plugins.module_utils._material import MaterialError, read_material, secrets_in
from ansible_collections.trustroot.ops.plugins.module_utils._scratch import (
    SPIRE_CONFIG_PART, SPIRE_KEYS_PART, SPIRE_SYSTEM, VAULT_SNAPSHOT_PART, VAULT_SYSTEM, ScratchError,
    ScratchProcess, check, digest_mounts, digest_token_error, federated_domains, free_port, material_errors,
    option_errors, select_archives, server_conf_settings, spire_checks, spire_config, spire_datastore, summarize,
    vault_checks, vault_config, wait_until)
from ansible_collections.trustroot.ops.plugins.module_utils._spire_backup import (
    SpireBackupError, SpireCLI, bundle_summary, entries_digest, find_spire_server, pg_restore_from)
from ansible_collections.trustroot.ops.plugins.module_utils._vault import (
    LEADER, SEAL_STATUS, VaultError, VaultNode, ensure_hvac, shape_problem)
from ansible_collections.trustroot.ops.plugins.module_utils._vault_digest import (
    DigestError, cluster_digest, node_callables)
from ansible_collections.trustroot.ops.plugins.module_utils._vault_raft import restore_snapshot

STEP_ERRORS = (ScratchError, VaultError, SpireBackupError, BackupError, DigestError, ValueError, IOError, OSError)


def private_dir(parent, name):
    path = os.path.join(parent, name)
    os.mkdir(path, 0o700)
    return path


# --- Vault ---------------------------------------------------------------------------------------------

def answers(node, proc):
    error = proc.exited_error()
    if error:
        raise error
    node.seal_status()
    return True


def leads(node):
    status, body = node.raw('GET', 'sys/leader', auth=False, ok_statuses=(503,))
    if status != 200:
        return False
    problem = shape_problem(body, LEADER)
    if problem:
        raise VaultError(node.url, 'GET sys/leader answered %s' % problem)
    return body['is_self']


def vault_restore(module, ctx, manifest, extracted, material, token):
    """Restore into a scratch bao server, unseal with the original keys, digest; return the checks."""
    timeout = module.params['timeout']
    base = private_dir(ctx['workdir'], 'vault-server')
    data_dir = private_dir(base, 'data')
    api_port, cluster_port = free_port(), free_port()
    config = os.path.join(base, 'server.hcl')
    write_new_file(config, vault_config(data_dir, api_port, cluster_port).encode('utf-8'))
    env = dict(os.environ, HOME=base)
    proc = ScratchProcess('bao server', [ctx['bao'], 'server', '-config', config], os.path.join(base, 'server.log'),
                          env=env, cwd=base)
    ctx['processes'].append(proc)
    url = 'http://127.0.0.1:%d' % api_port
    anonymous = VaultNode(url, timeout=30)
    proc.start()
    wait_until(lambda: answers(anonymous, proc), timeout, 'the scratch bao server to answer')

    init = anonymous.call('PUT', 'sys/init', auth=False, json={'secret_shares': 1, 'secret_threshold': 1},
                          expect={'keys_base64': [str], 'root_token': str})
    scratch_key, scratch_token = init['keys_base64'][0], init['root_token']
    module.no_log_values.update([scratch_key, scratch_token] + list(init.get('keys') or []))
    anonymous.call('PUT', 'sys/unseal', auth=False, json={'key': scratch_key}, expect=SEAL_STATUS)
    scratch = VaultNode(url, token=scratch_token, timeout=max(60, timeout))
    wait_until(lambda: leads(scratch), timeout, 'the scratch bao server to become active')
    restore_snapshot(scratch, os.path.join(extracted, VAULT_SNAPSHOT_PART), force=True)
    # The restored keyring is the original cluster's: the server seals itself; a restart makes sure.
    try:
        wait_until(lambda: anonymous.seal_status().get('sealed'), min(timeout, 30), 'the scratch server to seal')
    except ScratchError:
        pass
    proc.stop()
    proc.start()
    wait_until(lambda: answers(anonymous, proc), timeout, 'the restarted scratch bao server to answer')

    keys = material.get('unseal_keys_b64') or material.get('unseal_keys_hex')
    threshold = material['unseal_threshold']
    status = anonymous.seal_status()
    for key in keys[:threshold]:
        if not status.get('sealed'):
            break
        status = anonymous.call('PUT', 'sys/unseal', auth=False, json={'key': key}, expect=SEAL_STATUS)
    if status.get('sealed'):
        return vault_checks(manifest.get('info') or {}, status, None,
                            'still sealed after %d of the original keys' % threshold)
    original = VaultNode(url, token=token, timeout=max(60, timeout))
    wait_until(lambda: leads(original), timeout, 'the restored scratch server to become active')
    seal_status = anonymous.seal_status()
    expected = (manifest.get('info') or {}).get('digest') or {}
    list_keys, read = node_callables(original)
    try:
        digest = cluster_digest(list_keys, read, digest_mounts(expected))
        problem = None
    except (VaultError, DigestError) as exc:
        digest, problem = None, str(exc)
    return vault_checks(manifest.get('info') or {}, seal_status, digest, problem)


# --- SPIRE ---------------------------------------------------------------------------------------------

def spire_healthy(cli, proc):
    error = proc.exited_error()
    if error:
        raise error
    return cli.healthy()


def spire_restore(module, ctx, manifest, extracted, datastore, part):
    info = manifest.get('info') or {}
    timeout = module.params['timeout']
    base = private_dir(ctx['workdir'], 'spire-server')
    data_dir = private_dir(base, 'data')
    ctx['socket_dir'] = tempfile.mkdtemp(prefix='trustroot-scratch-', dir='/tmp')
    socket_path = os.path.join(ctx['socket_dir'], 'api.sock')
    if datastore == 'postgres':
        connection = module.params['scratch_postgres_connection_string']
        pg_restore_from(connection, os.path.join(extracted, part), base, ctx['run'])
    else:
        connection = os.path.join(extracted, part)
    settings = {}
    conf_part = os.path.join(extracted, SPIRE_CONFIG_PART)
    if os.path.isfile(conf_part):
        with open(conf_part) as handle:
            settings = server_conf_settings(handle.read())
    config = os.path.join(base, 'server.conf')
    write_new_file(config, spire_config(info['trust_domain'], data_dir, socket_path, free_port(),
                                        os.path.join(extracted, SPIRE_KEYS_PART), datastore, connection,
                                        settings).encode('utf-8'))
    proc = ScratchProcess('spire-server', [ctx['spire'], 'run', '-config', config], os.path.join(base, 'server.log'),
                          cwd=base)
    ctx['processes'].append(proc)
    cli = SpireCLI(ctx['spire'], socket_path, ctx['run'])
    proc.start()
    try:
        healthy = wait_until(lambda: spire_healthy(cli, proc), timeout, 'the scratch spire-server health check')
    except ScratchError as exc:
        return [check(SPIRE_SYSTEM, 'healthcheck', True, str(exc), ok=False)]
    bundle = bundle_summary(cli.json(['bundle', 'show']))
    entries = cli.json(['entry', 'show'])
    agents = cli.json(['agent', 'count'])
    bundles = cli.json(['bundle', 'list'])
    return spire_checks(info, healthy, bundle, entry_count=len(entries.get('entries') or []),
                        entries_sha256=entries_digest(entries), agent_count=int(agents.get('count') or 0),
                        federated_trust_domains=federated_domains(bundles, bundle['trust_domain']))


def prepare(module):
    """Everything checked before the first archive is read: options, archives, binaries, key material."""
    params = module.params
    errors = option_errors(params)
    if errors:
        raise InputError('; '.join(errors))
    try:
        archives = select_archives(params['vault_archive'], params['spire_archive'], params['backup_dir'],
                                   latest_backup)
    except BackupError as exc:
        raise InputError('backup_dir: %s' % exc)
    if not archives:
        raise InputError('backup_dir: no vault or spire-server backup in %s' % params['backup_dir'])
    ctx = {'archives': archives, 'run': module_runner(module), 'processes': [], 'socket_dir': None, 'workdir': None,
           'material': None, 'token': None}
    if VAULT_SYSTEM in archives:
        ensure_hvac()
        if not params['key_material_path']:
            errors.append('key_material_path is required to check a Vault archive (its unseal keys open the copy)')
        else:
            try:
                material = read_material(module, params['key_material_path'], params['material_age_identity'])
            except MaterialError as exc:
                raise InputError('key_material_path: %s' % exc)
            module.no_log_values.update(secrets_in(material))
            errors += material_errors(material)
            problem = digest_token_error(material, params['vault_token'])
            if problem:
                errors.append(problem)
            ctx['material'] = material
            ctx['token'] = params['vault_token'] or material.get('root_token')
        ctx['bao'] = params['bao_path'] or module.get_bin_path('bao')
        if not ctx['bao'] or not os.access(ctx['bao'], os.X_OK):
            errors.append('bao_path: the bao binary was not found%s' % (
                ' at %s' % params['bao_path'] if params['bao_path'] else ' on PATH (set bao_path)'))
    if SPIRE_SYSTEM in archives:
        try:
            ctx['spire'] = find_spire_server(params['spire_server_path'])
        except SpireBackupError as exc:
            errors.append(str(exc))
    if errors:
        raise InputError('; '.join(errors))
    return ctx


def verify_all(module, ctx):
    """Verify (and outside check mode extract) every archive; fail before anything starts on a bad one."""
    checks, manifests, summary = [], {}, {}
    for system, path in sorted(ctx['archives'].items()):
        extract = None if module.check_mode else private_dir(ctx['workdir'], system + '-parts')
        try:
            manifest = verify_archive(path, identity=module.params['age_identity'], extract_to=extract,
                                      run=ctx['run'])
        except BackupError as exc:
            raise BackupError('%s archive: %s' % (system, exc), results=dict(
                passed=False, checks=checks + [check(system, 'archive', 'intact', str(exc), ok=False)]))
        if manifest.get('system') != system:
            raise BackupError('%s archive %s is a backup of %s' % (system, path, manifest.get('system')),
                              results=dict(passed=False, checks=checks))
        if system == SPIRE_SYSTEM:
            try:
                ctx['spire_datastore'] = spire_datastore(manifest, module.params['scratch_postgres_connection_string'])
            except ScratchError as exc:
                raise ScratchError('spire_archive %s: %s' % (path, exc), results=dict(passed=False, checks=checks))
        manifests[system] = (manifest, extract)
        summary[system] = {'path': path, 'name': manifest.get('name'), 'created': manifest.get('created')}
        checks.append(check(system, 'archive', 'intact', 'intact'))
    return checks, manifests, summary


def run_checks(module, ctx):
    checks, manifests, summary = verify_all(module, ctx)
    if module.check_mode:
        return checks, summary
    for system, (manifest, extracted) in sorted(manifests.items(), reverse=True):
        try:
            if system == VAULT_SYSTEM:
                checks += vault_restore(module, ctx, manifest, extracted, ctx['material'], ctx['token'])
            else:
                datastore, part = ctx['spire_datastore']
                checks += spire_restore(module, ctx, manifest, extracted, datastore, part)
        except STEP_ERRORS as exc:
            checks.append(check(system, 'restore', 'restored', str(exc), ok=False))
        finally:
            for proc in ctx['processes']:
                proc.stop()
    return checks, summary


def check_restores(module):
    """The whole run; every scratch process is stopped and every scratch path removed however it ends."""
    ctx = prepare(module)
    try:
        with sigterm_raises():
            ctx['workdir'] = tempfile.mkdtemp(prefix='trustroot-restore-check-', dir=module.params['workdir'])
            checks, archives = run_checks(module, ctx)
    except Terminated:
        raise TrustrootError('terminated by SIGTERM; every scratch server was stopped', results=dict(passed=False))
    finally:
        for proc in ctx['processes']:
            proc.stop()
        for path in (ctx['workdir'], ctx['socket_dir']):
            if path:
                shutil.rmtree(path, ignore_errors=True)
    passed, message = summarize(checks)
    result = dict(changed=False, passed=passed, checks=checks, archives=archives)
    if not passed:
        raise TrustrootError(message, results=result)
    return dict(result, msg=message)

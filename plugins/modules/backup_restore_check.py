#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_restore_check
short_description: Prove that Vault / OpenBao and SPIRE backups restore, in scratch servers
version_added: 0.1.0
description:
  - Restores backup archives (written by C(playbooks/backup.yml) and M(trustroot.ops.spire_server_backup))
    into throwaway servers started on the host that runs the module, and compares what they hold with what
    the archive's manifest recorded at backup time. Nothing outside the scratch servers is touched.
  - Every archive is verified first (sha256 against its sidecar, the manifest and every part; decrypted
    with O(age_identity) when encrypted). A tampered, truncated or undecryptable archive fails the task
    before any server is started.
  - "Vault / OpenBao: a scratch C(bao server) (raft storage in the work directory) is initialized with one
    key, the snapshot is restored with C(sys/storage/raft/snapshot-force), the server is restarted so that
    it is sealed, and it is unsealed with the B(original) cluster's unseal keys from O(key_material_path)
    (as many as its threshold) - proof that the keys kept open the backup. The content is then digested
    with the original cluster's root token (or O(vault_token)) the same way as
    M(trustroot.ops.vault_data_digest_info) and compared with the digest in the manifest, and the cluster ID
    with the one recorded."
  - "SPIRE: a scratch C(spire-server) runs with the archive's trust domain, the restored datastore and the
    restored C(keys.json) (disk KeyManager). It must pass its health check; its trust bundle must hold every
    X.509 authority and JWT key of the backup; the number and the digest of the registration entries, the
    number of agents, and the federated trust domains' bundles are compared with the manifest."
  - Every scratch process is stopped by its PID and the work directory removed, whatever happens.
  - The scratch servers listen on 127.0.0.1 only. The Vault one uses plain HTTP on loopback (C(tls_disable));
    it holds a copy of production data for the length of the check, so run the module on a host whose
    local users are trusted, normally the controller that keeps the backups.
options:
  vault_archive:
    description: A Vault / OpenBao backup archive (system C(vault), part C(raft.snap)).
    type: path
  spire_archive:
    description: A SPIRE server backup archive (system C(spire-server)).
    type: path
  backup_dir:
    description:
      - Directory of archives; the newest verified backup of each system not given by O(vault_archive) or
        O(spire_archive) is checked. A system without a backup there is not checked.
    type: path
  age_identity:
    description: age identity file that decrypts encrypted archives.
    type: path
  key_material_path:
    description:
      - The key material file of the backed-up cluster (as M(trustroot.ops.vault_init) writes it), with its
        unseal keys, threshold and root token. Required to check a Vault archive.
    type: path
  material_age_identity:
    description: age identity file that decrypts O(key_material_path) when it is encrypted.
    type: path
  vault_token:
    description:
      - Token of the backed-up cluster used to digest the restored content, when the key material holds no
        usable root token. Never logged or returned.
    type: str
  bao_path:
    description: The C(bao) binary. Default is C(bao) from the PATH.
    type: path
  spire_server_path:
    description: The C(spire-server) binary. Default is C(spire-server) from the PATH, /opt/spire/bin, /usr/local/bin, /usr/bin.
    type: path
  scratch_postgres_connection_string:
    description:
      - A PostgreSQL database the check may overwrite, for a SPIRE backup of a C(postgres) datastore; the dump
        is restored into it with C(pg_restore) and the scratch server uses it. Without it such an archive fails
        the task. Never logged or returned.
    type: str
  workdir:
    description:
      - Existing directory in which a private temporary work directory is made (and removed afterwards).
        Default is the system temporary directory. It needs room for the extracted archives.
    type: path
  timeout:
    description: Seconds to wait for each scratch server to start, unseal or become healthy.
    type: int
    default: 180
attributes:
  check_mode:
    support: full
    description: Verifies the archives (checksums, decryption, manifest) without extracting them or starting a server.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
notes:
  - Needs the C(bao) binary for a Vault archive and the C(spire-server) binary (same or newer version than the
    backed-up server; SPIRE migrates a datastore forward only) for a SPIRE archive, C(age) for encrypted
    archives or key material, and C(pg_restore) for a postgres datastore.
  - A Vault cluster with auto-unseal cannot be checked this way; its restored copy needs the seal.
  - A scratch SPIRE server may try to refresh the bundles of its federation relationships from their
    endpoints, as the original does; it serves nothing beyond 127.0.0.1.
  - Secrets (unseal keys, tokens, the scratch server's own key and token, the connection string) are never
    returned or logged. The checks hold digests, counts, names, fingerprints and identifiers only.
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Restore the newest backups into scratch servers and compare
  trustroot.ops.backup_restore_check:
    backup_dir: /srv/backups
    age_identity: /etc/trustroot/backup-age-identity.txt
    key_material_path: /srv/secure/vault-init.json.age
    material_age_identity: /etc/trustroot/material-age-identity.txt
    bao_path: /usr/local/bin/bao
    spire_server_path: /usr/local/bin/spire-server
  register: restore_check

- name: One Vault archive
  trustroot.ops.backup_restore_check:
    vault_archive: /srv/backups/vault-20260101T020000Z.tar.gz.age
    age_identity: /etc/trustroot/backup-age-identity.txt
    key_material_path: /srv/secure/vault-init.json
'''

RETURN = r'''
passed:
  description: Whether every check passed.
  returned: always
  type: bool
checks:
  description: One entry per comparison, without secrets.
  returned: always
  type: list
  elements: dict
  contains:
    system: {description: V(vault) or V(spire-server)., type: str, returned: always}
    check:
      description:
        - "What was compared: archive, unsealed_with_original_keys, cluster_id, kv_sha256, kv[<mount>],
          policies_sha256, healthcheck, trust_domain, x509_authorities, entry_count, entries_sha256, ..."
        - V(restore) when a step of the restore failed (the error is in RV(checks[].actual)).
      type: str
      returned: always
    expected: {description: The value recorded in the archive., type: raw, returned: always}
    actual: {description: The value read from the scratch server (or the error)., type: raw, returned: always}
    ok: {description: Whether this check passed., type: bool, returned: always}
archives:
  description: Per system, the archive checked (C(path), C(name), C(created)).
  returned: always
  type: dict
'''

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._runner import module_runner
from ansible_collections.trustroot.ops.plugins.module_utils._backup import (
    BackupError, Terminated, latest_backup, sigterm_raises, verify_archive)
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


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as handle:
        handle.write(text)


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
    write_private(config, vault_config(data_dir, api_port, cluster_port))
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
    write_private(config, spire_config(info['trust_domain'], data_dir, socket_path, free_port(),
                                       os.path.join(extracted, SPIRE_KEYS_PART), datastore, connection, settings))
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


# --- main ----------------------------------------------------------------------------------------------

def prepare(module):
    """Everything checked before the first archive is read: options, archives, binaries, key material."""
    params = module.params
    errors = option_errors(params)
    if errors:
        module.fail_json(msg='; '.join(errors))
    try:
        archives = select_archives(params['vault_archive'], params['spire_archive'], params['backup_dir'],
                                   latest_backup)
    except BackupError as exc:
        module.fail_json(msg='backup_dir: %s' % exc)
    if not archives:
        module.fail_json(msg='backup_dir: no vault or spire-server backup in %s' % params['backup_dir'])
    ctx = {'archives': archives, 'run': module_runner(module), 'processes': [], 'socket_dir': None, 'workdir': None,
           'material': None, 'token': None}
    if VAULT_SYSTEM in archives:
        ensure_hvac(module)
        if not params['key_material_path']:
            errors.append('key_material_path is required to check a Vault archive (its unseal keys open the copy)')
        else:
            try:
                material = read_material(module, params['key_material_path'], params['material_age_identity'])
            except MaterialError as exc:
                module.fail_json(msg='key_material_path: %s' % exc)
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
        module.fail_json(msg='; '.join(errors))
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
            module.fail_json(msg='%s archive: %s' % (system, exc), passed=False, changed=False,
                             checks=checks + [check(system, 'archive', 'intact', str(exc), ok=False)])
        if manifest.get('system') != system:
            module.fail_json(msg='%s archive %s is a backup of %s' % (system, path, manifest.get('system')),
                             passed=False, changed=False, checks=checks)
        if system == SPIRE_SYSTEM:
            try:
                ctx['spire_datastore'] = spire_datastore(manifest, module.params['scratch_postgres_connection_string'])
            except ScratchError as exc:
                module.fail_json(msg='spire_archive %s: %s' % (path, exc), passed=False, changed=False, checks=checks)
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


def main():
    module = AnsibleModule(
        argument_spec=dict(
            vault_archive=dict(type='path'),
            spire_archive=dict(type='path'),
            backup_dir=dict(type='path'),
            age_identity=dict(type='path'),
            key_material_path=dict(type='path', no_log=False),
            material_age_identity=dict(type='path'),
            vault_token=dict(type='str', no_log=True),
            bao_path=dict(type='path'),
            spire_server_path=dict(type='path'),
            scratch_postgres_connection_string=dict(type='str', no_log=True),
            workdir=dict(type='path'),
            timeout=dict(type='int', default=180),
        ),
        supports_check_mode=True,
    )
    ctx = prepare(module)
    try:
        with sigterm_raises():
            ctx['workdir'] = tempfile.mkdtemp(prefix='trustroot-restore-check-', dir=module.params['workdir'])
            checks, archives = run_checks(module, ctx)
    except Terminated:
        module.fail_json(msg='terminated by SIGTERM; every scratch server was stopped', passed=False, changed=False)
    finally:
        for proc in ctx['processes']:
            proc.stop()
        for path in (ctx['workdir'], ctx['socket_dir']):
            if path:
                shutil.rmtree(path, ignore_errors=True)
    passed, message = summarize(checks)
    result = dict(changed=False, passed=passed, checks=checks, archives=archives)
    if not passed:
        module.fail_json(msg=message, **result)
    module.exit_json(msg=message, **result)


if __name__ == '__main__':
    main()

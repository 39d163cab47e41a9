# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""trustroot-backup: one backup of one system on this host, as the trustroot.ops.backup role's timer runs it.

/usr/local/sbin/trustroot-backup runs this file:

    trustroot-backup --config /etc/trustroot-backup/spire-server.json
    trustroot-backup --config /etc/trustroot-backup/vault.json

The archive format, retention, S3 upload and the metric file are the collection's own code
(plugins/module_utils, installed next to this program by the role), the same the modules use.
Secrets come from the environment (the unit's EnvironmentFile, mode 0600):
TRUSTROOT_BACKUP_VAULT_TOKEN, TRUSTROOT_BACKUP_S3_ACCESS_KEY, TRUSTROOT_BACKUP_S3_SECRET_KEY.
Prints one JSON line (never a secret); exit status 0 on success or when a Vault node is not the
active one (only the leader takes the snapshot), 1 on failure.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

# The role installs this program next to the collection's code (<lib>/ansible_collections/trustroot/ops/...).
sys.path.insert(0, os.environ.get('TRUSTROOT_BACKUP_LIB') or os.path.dirname(os.path.abspath(__file__)))

from ansible_collections.trustroot.ops.plugins.module_utils._runner import subprocess_run  # noqa: E402
from ansible_collections.trustroot.ops.plugins.module_utils._backup.archive import write_archive  # noqa: E402
from ansible_collections.trustroot.ops.plugins.module_utils._backup.finish import finish_backup  # noqa: E402
from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import BackupError  # noqa: E402
from ansible_collections.trustroot.ops.plugins.module_utils._spire_backup import (  # noqa: E402
    SpireBackupError, save_spire_backup)


class Failure(Exception):
    pass


def load_config(path):
    with open(path) as handle:
        config = json.load(handle)
    if config.get('system') not in ('spire-server', 'vault'):
        raise Failure('%s: system must be spire-server or vault' % path)
    if config.get('s3'):
        config['s3'] = dict(config['s3'], access_key=os.environ.get('TRUSTROOT_BACKUP_S3_ACCESS_KEY', ''),
                            secret_key=os.environ.get('TRUSTROOT_BACKUP_S3_SECRET_KEY', ''))
    else:
        config['s3'] = None
    for name in ('age_recipients', 'keep_count', 'max_age', 'metric_textfile_dir'):
        config.setdefault(name, None)
    return config


def read_env_file(path):
    """KEY=value lines of a systemd EnvironmentFile (the SPIRE server's, for its datastore connection string)."""
    values = {}
    if not path or not os.path.exists(path):
        return values
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith('#') or '=' not in line:
                continue
            key, _sep, value = line.partition('=')
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in '"\'':
                value = value[1:-1].replace('\\' + value[0], value[0]).replace('\\\\', '\\')
            values[key.strip()] = value
    return values


def spire_backup(config):
    spire = config['spire']
    params = dict(config, **spire)
    if spire.get('datastore') == 'postgres':
        params['connection_string'] = read_env_file(spire.get('env_file')).get('SPIRE_SERVER_DATASTORE_CONNECTION_STRING')
        if not params['connection_string']:
            raise Failure('no SPIRE_SERVER_DATASTORE_CONNECTION_STRING in %s' % spire.get('env_file'))
    done = save_spire_backup(params, run=subprocess_run)
    return done['sidecar'], done['finish']


def vault_env(vault):
    env = dict(os.environ, BAO_ADDR=vault['url'], VAULT_ADDR=vault['url'])
    if vault.get('ca_cert'):
        env.update(BAO_CACERT=vault['ca_cert'], VAULT_CACERT=vault['ca_cert'])
    token = os.environ.get('TRUSTROOT_BACKUP_VAULT_TOKEN', '')
    env.update(BAO_TOKEN=token, VAULT_TOKEN=token)
    return env


def vault_cli(vault, args, env):
    import subprocess
    proc = subprocess.run([vault.get('binary', 'bao')] + args, env=env, capture_output=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def vault_parts(config, workdir):
    """(parts, info) from this node when it is the active one; (None, reason) on a standby."""
    vault = config['vault']
    env = vault_env(vault)
    _rc, out, err = vault_cli(vault, ['status', '-format=json'], env)  # rc 2 means sealed: the JSON tells
    try:
        status = json.loads(out)
    except ValueError:
        raise Failure('%s status: %s' % (vault.get('binary', 'bao'), err.decode('utf-8', 'replace').strip()))
    if status.get('sealed'):
        raise Failure('this node is sealed: no snapshot')
    if not status.get('is_self'):
        return None, 'not the active node (leader: %s)' % status.get('leader_address')
    # A periodic token lives as long as it is renewed: every backup renews it.
    vault_cli(vault, ['token', 'renew', '-format=json'], env)
    snapshot = os.path.join(workdir, 'raft.snap')
    rc, _out, err = vault_cli(vault, ['operator', 'raft', 'snapshot', 'save', snapshot], env)
    if rc != 0:
        raise Failure('raft snapshot failed: %s' % err.decode('utf-8', 'replace').strip())
    info = {key: status.get(key) for key in ('cluster_id', 'cluster_name', 'version')}
    info.update(flavour='openbao' if os.path.basename(vault.get('binary', 'bao')) == 'bao' else 'vault',
                leader=status.get('leader_address'), taken_on=os.uname()[1])
    return [('raft.snap', snapshot)], info


def vault_backup(config):
    """(sidecar, finish) of a snapshot taken here, or (None, reason) on a node that is not the active one."""
    workdir = tempfile.mkdtemp(prefix='.trustroot-backup-', dir=config['dest_dir'])
    try:
        parts, info = vault_parts(config, workdir)
        if parts is None:
            return None, info
        sidecar = write_archive(config['dest_dir'], 'vault', parts, info, recipients=config.get('age_recipients') or ())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return sidecar, finish_backup(config, sidecar)


def run_backup(config):
    os.makedirs(config['dest_dir'], mode=0o700, exist_ok=True)
    if config['system'] == 'spire-server':
        sidecar, done = spire_backup(config)
    else:
        sidecar, done = vault_backup(config)
        if sidecar is None:
            return {'system': 'vault', 'skipped': done}
    return {'system': config['system'], 'archive': sidecar['archive'], 'sha256': sidecar['sha256'],
            'size': sidecar['size'], 'uploaded': done.get('uploaded', []), 'deleted': done.get('deleted', [])}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='trustroot-backup', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--config', required=True, help='JSON written by the trustroot.ops.backup role')
    args = parser.parse_args(argv)
    try:
        result = run_backup(load_config(args.config))
    except (Failure, BackupError, SpireBackupError, OSError, ValueError, KeyError) as exc:
        print(json.dumps({'failed': True, 'msg': str(exc)}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())

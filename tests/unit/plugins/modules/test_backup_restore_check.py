"""backup_restore_check through main(): what is decided before any scratch server starts (options, archives, key
material, check mode), with real archives written by _backup. The restores themselves run against real bao and
spire-server binaries in tests/integration/test_backup_restore_check.py."""
import json
import os
import tarfile

from ansible_collections.trustroot.ops.plugins.module_utils._backup.archive import write_archive
from ansible_collections.trustroot.ops.plugins.module_utils._material import material_from_init, serialize
from ansible_collections.trustroot.ops.plugins.modules import backup_restore_check

from .conftest import assert_no_secret

INIT = {'keys': ['aa', 'bb', 'cc'], 'keys_base64': ['qg==', 'uw==', 'zA=='], 'root_token': 's.scripted-root'}
INFO = {'cluster_id': 'c-1', 'digest': {}}


def vault_archive(tmp_path):
    snap = tmp_path / 'raft.snap'
    snap.write_bytes(b'not really a snapshot: the check-mode run never restores it')
    backups = tmp_path / 'backups'
    backups.mkdir()
    sidecar = write_archive(str(backups), 'vault', [('raft.snap', str(snap))], INFO)
    return os.path.join(str(backups), sidecar['archive'])


def key_material(tmp_path):
    path = tmp_path / 'vault-init.json'
    material = material_from_init(INIT, {'secret_shares': 3, 'secret_threshold': 2}, 'http://a', 'openbao', '2.7.2')
    path.write_bytes(serialize(material))
    return str(path)


def args(tmp_path, **extra):
    base = {'vault_archive': vault_archive(tmp_path), 'key_material_path': key_material(tmp_path),
            'bao_path': '/bin/true', 'workdir': str(tmp_path)}
    base.update(extra)
    return base


def test_check_mode_verifies_the_archive_and_starts_nothing(run_main, tmp_path):
    ended = run_main(backup_restore_check.main, args(tmp_path), check_mode=True)
    assert not ended.failed, ended.result
    assert ended.result['passed'] is True and ended.result['changed'] is False
    assert [(c['system'], c['check'], c['ok']) for c in ended.result['checks']] == [('vault', 'archive', True)]
    assert sorted(os.listdir(str(tmp_path))) == ['backups', 'raft.snap', 'vault-init.json']
    assert_no_secret(ended.result, *(INIT['keys'] + INIT['keys_base64'] + [INIT['root_token']]))


def test_no_archive_fails_naming_the_options(run_main, tmp_path):
    ended = run_main(backup_restore_check.main, {'workdir': str(tmp_path), 'timeout': 0})
    assert ended.failed
    assert ended.result['msg'] == ('one of vault_archive, spire_archive or backup_dir is required; timeout must be '
                                   'a positive number of seconds, got 0')


def test_an_empty_backup_dir_fails_naming_it(run_main, tmp_path):
    ended = run_main(backup_restore_check.main, {'backup_dir': str(tmp_path)})
    assert ended.failed and ended.result['msg'] == 'backup_dir: no vault or spire-server backup in %s' % tmp_path


def test_a_vault_archive_without_key_material_or_bao_fails_before_anything_starts(run_main, tmp_path):
    ended = run_main(backup_restore_check.main, args(tmp_path, key_material_path=None,
                                                     bao_path=str(tmp_path / 'no-bao')))
    assert ended.failed
    assert 'key_material_path is required to check a Vault archive' in ended.result['msg']
    assert 'bao_path: the bao binary was not found at %s' % (tmp_path / 'no-bao') in ended.result['msg']


def test_a_tampered_archive_fails_with_its_check(run_main, tmp_path):
    options = args(tmp_path)
    with tarfile.open(options['vault_archive'], 'w:gz') as archive:
        manifest = tmp_path / 'manifest.json'
        manifest.write_text(json.dumps({'format': 'forged'}))
        archive.add(str(manifest), arcname='manifest.json')
    ended = run_main(backup_restore_check.main, options)
    assert ended.failed and ended.result['passed'] is False and ended.result['changed'] is False
    assert ended.result['msg'].startswith('vault archive: ')
    assert [(c['check'], c['ok']) for c in ended.result['checks']] == [('archive', False)]
    assert not [name for name in os.listdir(str(tmp_path)) if name.startswith('trustroot-restore-check-')]

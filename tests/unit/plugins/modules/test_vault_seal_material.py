"""vault_seal_material through main(), on real material files (no age: plain JSON material)."""
import json
import os

from ansible_collections.trustroot.ops.plugins.module_utils._material import material_from_init, serialize
from ansible_collections.trustroot.ops.plugins.modules import vault_seal_material

from .conftest import assert_no_secret

INIT = {'keys': ['aa11', 'bb22', 'cc33'], 'keys_base64': ['qhE=', 'uyI=', 'zDM='], 'root_token': 's.rootsecret'}
SECRETS = INIT['keys'] + INIT['keys_base64'] + [INIT['root_token']]


def material_file(tmp_path):
    path = tmp_path / 'material.json'
    material = material_from_init(INIT, {'secret_shares': 3, 'secret_threshold': 2}, 'http://a', 'openbao', '2.7.2')
    path.write_bytes(serialize(material))
    os.chmod(str(path), 0o600)
    return path


def test_a_missing_file_fails_naming_the_option(run_main, tmp_path):
    ended = run_main(vault_seal_material.main, {'path': str(tmp_path / 'none.json'), 'keys_as': 'recovery'})
    assert ended.failed and ended.result['msg'].startswith('path: cannot read key material')


def test_check_mode_changes_no_file(run_main, tmp_path):
    path = material_file(tmp_path)
    before = path.read_bytes()
    ended = run_main(vault_seal_material.main, {'path': str(path), 'keys_as': 'recovery'}, check_mode=True, diff=True)
    assert not ended.failed and ended.result['changed'] is True
    assert ended.result['diff'] == {'before': {'keys_as': 'unseal'}, 'after': {'keys_as': 'recovery'}}
    assert path.read_bytes() == before and os.listdir(str(tmp_path)) == ['material.json']
    assert_no_secret(ended.result, *SECRETS)


def test_the_keys_move_with_a_copy_kept_then_nothing_changes(run_main, tmp_path):
    path = material_file(tmp_path)
    before = path.read_bytes()
    ended = run_main(vault_seal_material.main, {'path': str(path), 'keys_as': 'recovery'})
    assert not ended.failed, ended.result
    assert ended.result['changed'] is True and ended.result['shares'] == 3 and ended.result['threshold'] == 2
    with open(ended.result['backup_file'], 'rb') as handle:
        assert handle.read() == before
    assert os.stat(ended.result['backup_file']).st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())['recovery_keys_b64'] == INIT['keys_base64']
    assert_no_secret(ended.result, *SECRETS)
    again = run_main(vault_seal_material.main, {'path': str(path), 'keys_as': 'recovery'})
    assert not again.failed and again.result['changed'] is False and again.result['backup_file'] == ''

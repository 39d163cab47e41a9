"""vault_init through main(), with the Vault HTTP API scripted at the transport and the material written to a
real file."""
import json
import os
import stat

from ansible_collections.trustroot.ops.plugins.modules import vault_init

from ._vault_fake import SEALED, URL
from .conftest import assert_no_secret

UNINITIALIZED = dict(SEALED, initialized=False, t=0, n=0)
KEYS_HEX = ['a1' * 32, 'b2' * 32, 'c3' * 32]
KEYS_B64 = ['obKz' + 'A' * 40, 'srPD' + 'B' * 40, 'w9Tl' + 'C' * 40]
ROOT_TOKEN = 's.scripted-root-token-value'
INIT_ANSWER = {'keys': KEYS_HEX, 'keys_base64': KEYS_B64, 'root_token': ROOT_TOKEN}
SECRETS = KEYS_HEX + KEYS_B64 + [ROOT_TOKEN]


def args(tmp_path, **extra):
    base = {'url': URL, 'secret_shares': 3, 'secret_threshold': 2, 'output_path': str(tmp_path / 'init.json')}
    base.update(extra)
    return base


def test_an_uninitialized_node_is_initialized_and_its_material_written_0600(run_main, vault, tmp_path):
    vault.routes = {('GET', 'sys/seal-status'): (200, UNINITIALIZED), ('PUT', 'sys/init'): (200, INIT_ANSWER)}
    ended = run_main(vault_init.main, args(tmp_path))
    assert not ended.failed, ended.result
    assert ended.result['changed'] and ended.result['initialized']
    assert (ended.result['shares'], ended.result['threshold']) == (3, 2)
    assert vault.calls[-1]['json'] == {'secret_shares': 3, 'secret_threshold': 2}
    output = tmp_path / 'init.json'
    assert stat.S_IMODE(os.stat(str(output)).st_mode) == 0o600
    material = json.loads(output.read_text())
    assert material['unseal_keys_b64'] == KEYS_B64 and material['root_token'] == ROOT_TOKEN
    assert_no_secret(ended.result, *SECRETS)


def test_an_initialized_node_is_left_alone_reporting_its_own_layout(run_main, vault, tmp_path):
    vault.routes = {('GET', 'sys/seal-status'): (200, dict(SEALED, t=3, n=5))}
    ended = run_main(vault_init.main, args(tmp_path))
    assert not ended.failed and not ended.result['changed']
    assert (ended.result['shares'], ended.result['threshold']) == (5, 3)
    assert vault.writes() == [] and not (tmp_path / 'init.json').exists()


def test_check_mode_predicts_the_change_and_leaves_nothing(run_main, vault, tmp_path):
    vault.routes = {('GET', 'sys/seal-status'): (200, UNINITIALIZED)}
    ended = run_main(vault_init.main, args(tmp_path), check_mode=True, diff=True)
    assert not ended.failed and ended.result['changed']
    assert ended.result['diff']['after'] == {'initialized': True, 'shares': 3, 'threshold': 2}
    assert vault.writes() == [] and os.listdir(str(tmp_path)) == []


def test_a_bad_threshold_fails_naming_the_field_before_any_write(run_main, vault, tmp_path):
    vault.routes = {('GET', 'sys/seal-status'): (200, UNINITIALIZED)}
    ended = run_main(vault_init.main, args(tmp_path, secret_threshold=4))
    assert ended.failed and 'secret_threshold' in ended.result['msg']
    assert vault.writes() == []


def test_an_existing_output_fails_before_the_server_makes_keys(run_main, vault, tmp_path):
    (tmp_path / 'init.json').write_text('{"kept": true}')
    vault.routes = {('GET', 'sys/seal-status'): (200, UNINITIALIZED)}
    ended = run_main(vault_init.main, args(tmp_path))
    assert ended.failed and ended.result['msg'].startswith('output_path:')
    assert 'overwrite_output' in ended.result['msg']
    assert vault.writes() == [] and (tmp_path / 'init.json').read_text() == '{"kept": true}'


def test_a_refused_init_fails_with_the_server_answer_and_writes_nothing(run_main, vault, tmp_path):
    vault.routes = {('GET', 'sys/seal-status'): (200, UNINITIALIZED),
                    ('PUT', 'sys/init'): (400, {'errors': ['invalid seal configuration']})}
    ended = run_main(vault_init.main, args(tmp_path))
    assert ended.failed and 'invalid seal configuration' in ended.result['msg']
    assert os.listdir(str(tmp_path)) == []


def test_an_answer_without_the_root_token_keeps_the_keys_beside_the_output(run_main, vault, tmp_path):
    vault.routes = {('GET', 'sys/seal-status'): (200, UNINITIALIZED),
                    ('PUT', 'sys/init'): (200, {'keys': KEYS_HEX, 'keys_base64': KEYS_B64})}
    ended = run_main(vault_init.main, args(tmp_path))
    assert ended.failed and ended.result['changed']
    assert 'root_token' in ended.result['msg'] and 'may be initialized' in ended.result['msg']
    kept = [name for name in os.listdir(str(tmp_path)) if name != 'init.json']
    assert len(kept) == 1 and kept[0] in ended.result['msg']
    assert json.loads((tmp_path / kept[0]).read_text())['unseal_keys_b64'] == KEYS_B64
    assert_no_secret(ended.result, *SECRETS)


def test_a_url_with_a_path_fails_naming_url_before_any_call(run_main, vault, tmp_path):
    ended = run_main(vault_init.main, args(tmp_path, url=URL + '/ui/'))
    assert ended.failed and ended.result['msg'].startswith('url')
    assert vault.calls == []


def test_without_hvac_it_fails_saying_so_before_any_call(run_main, vault, tmp_path, monkeypatch):
    from ansible_collections.trustroot.ops.plugins.module_utils import _vault
    monkeypatch.setattr(_vault, 'HAS_HVAC', False)
    monkeypatch.setattr(_vault, 'HVAC_IMPORT_ERROR', 'ModuleNotFoundError: hvac')
    ended = run_main(vault_init.main, args(tmp_path))
    assert ended.failed and 'hvac' in ended.result['msg']
    assert ended.result['exception'] == 'ModuleNotFoundError: hvac'
    assert vault.calls == []

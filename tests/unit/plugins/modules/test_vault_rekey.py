"""vault_rekey through main(), with the Vault HTTP API scripted at the transport (the unauthenticated sys/rekey
family of an OpenBao before 2.4) and the new keys written to a real file."""
import json
import os

from ansible_collections.trustroot.ops.plugins.modules import vault_rekey

from ._vault_fake import UNSEALED, URL
from .conftest import assert_no_secret

CURRENT_KEYS = ['a' * 44, 'b' * 44, 'c' * 44]
NEW_HEX = ['d4' * 32, 'e5' * 32, 'f6' * 32, '07' * 32]
NEW_B64 = ['1NTU' + 'D' * 40, '5eXl' + 'E' * 40, '9vb2' + 'F' * 40, 'BwcH' + 'G' * 40]
LEADER = {'ha_enabled': False, 'is_self': True, 'leader_address': ''}
IDLE = {'started': False, 'progress': 0, 'required': 2, 'nonce': ''}
STARTED = {'started': True, 'progress': 0, 'required': 2, 'nonce': 'rekey-1'}
COMPLETED = {'complete': True, 'nonce': 'rekey-1', 'keys': NEW_HEX, 'keys_base64': NEW_B64,
             'verification_required': True, 'verification_nonce': 'verify-1'}


def seal_status(vault):
    """The old layout (2 of 3) until the verify phase completes, then the new one (3 of 4)."""
    def answer(_call):
        verified = [c for c in vault.calls if c['path'] == 'sys/rekey/verify']
        return (200, dict(UNSEALED, t=3, n=4) if len(verified) >= 3 else UNSEALED)
    return answer


def rekey_routes(vault, overrides=None):
    routes = {('GET', 'sys/seal-status'): seal_status(vault), ('GET', 'sys/leader'): (200, LEADER),
              ('GET', 'sys/rekey/init'): (200, IDLE), ('PUT', 'sys/rekey/init'): (200, STARTED),
              ('DELETE', 'sys/rekey/init'): (204, None),
              ('PUT', 'sys/rekey/update'): [(200, dict(STARTED, progress=1)), (200, COMPLETED)],
              ('PUT', 'sys/rekey/verify'): [(200, {'complete': False, 'progress': 1}),
                                            (200, {'complete': False, 'progress': 2}), (200, {'complete': True})]}
    routes.update(overrides or {})
    return routes


def args(tmp_path, **extra):
    base = {'url': URL, 'keys': CURRENT_KEYS, 'secret_shares': 4, 'secret_threshold': 3,
            'output_path': str(tmp_path / 'rekeyed.json')}
    base.update(extra)
    return base


def test_a_verified_rekey_saves_the_new_keys_before_they_take_effect(run_main, vault, tmp_path):
    vault.routes = rekey_routes(vault)
    ended = run_main(vault_rekey.main, args(tmp_path))
    assert not ended.failed, ended.result
    result = ended.result
    assert result['changed'] and result['verified'] and result['api'] == 'rekey'
    assert (result['previous_shares'], result['previous_threshold'], result['shares'], result['threshold']) == (
        3, 2, 4, 3)
    assert [c['json'] for c in vault.calls if (c['method'], c['path']) == ('PUT', 'sys/rekey/init')] == [
        {'secret_shares': 4, 'secret_threshold': 3, 'require_verification': True}]
    assert [c['json']['key'] for c in vault.calls if c['path'] == 'sys/rekey/update'] == CURRENT_KEYS[:2]
    assert [c['json']['key'] for c in vault.calls if c['path'] == 'sys/rekey/verify'] == NEW_B64[:3]
    saved = json.loads((tmp_path / 'rekeyed.json').read_text())
    assert saved['unseal_keys_b64'] == NEW_B64 and saved['unseal_threshold'] == 3
    assert_no_secret(result, *(CURRENT_KEYS + NEW_HEX + NEW_B64))


def test_check_mode_reads_the_attempt_and_starts_nothing(run_main, vault, tmp_path):
    vault.routes = rekey_routes(vault)
    ended = run_main(vault_rekey.main, args(tmp_path), check_mode=True, diff=True)
    assert not ended.failed and ended.result['changed']
    assert ended.result['diff'] == {'before': {'shares': 3, 'threshold': 2}, 'after': {'shares': 4, 'threshold': 3}}
    assert vault.writes() == [] and os.listdir(str(tmp_path)) == []


def test_a_failed_verification_cancels_the_attempt_and_keeps_the_current_keys(run_main, vault, tmp_path):
    vault.routes = rekey_routes(vault, {('PUT', 'sys/rekey/verify'): (400, {'errors': ['incorrect key']})})
    ended = run_main(vault_rekey.main, args(tmp_path))
    assert ended.failed and not ended.result['changed']
    assert 'verification with the new keys failed' in ended.result['msg']
    assert 'the attempt was cancelled, the current keys stay valid' in ended.result['msg']
    assert vault.writes()[-1] == ('DELETE', 'sys/rekey/init')
    assert not (tmp_path / 'rekeyed.json').exists()
    assert_no_secret(ended.result, *(CURRENT_KEYS + NEW_HEX + NEW_B64))


def test_an_attempt_in_progress_fails_without_cancel_stale(run_main, vault, tmp_path):
    vault.routes = rekey_routes(vault, {('GET', 'sys/rekey/init'): (200, dict(STARTED, progress=1))})
    ended = run_main(vault_rekey.main, args(tmp_path))
    assert ended.failed and 'cancel_stale' in ended.result['msg'] and 'rekey-1' in ended.result['msg']
    assert vault.writes() == []


def test_too_few_current_keys_fail_naming_keys_before_any_attempt(run_main, vault, tmp_path):
    vault.routes = rekey_routes(vault)
    ended = run_main(vault_rekey.main, args(tmp_path, keys=CURRENT_KEYS[:1]))
    assert ended.failed
    assert ended.result['msg'] == 'keys: 1 current key(s) given, the current threshold of the unseal keys is 2'
    assert vault.writes() == []


def test_a_bad_layout_fails_naming_the_field_before_any_call(run_main, vault, tmp_path):
    ended = run_main(vault_rekey.main, args(tmp_path, secret_threshold=5))
    assert ended.failed and 'secret_threshold' in ended.result['msg']
    assert vault.calls == []


SHORT = dict(COMPLETED, keys=NEW_HEX[:2], keys_base64=NEW_B64[:2])


def test_too_few_new_keys_with_verification_cancel_the_attempt_and_keep_the_current_keys(run_main, vault, tmp_path):
    vault.routes = rekey_routes(vault, {('PUT', 'sys/rekey/update'): [(200, dict(STARTED, progress=1)), (200, SHORT)]})
    ended = run_main(vault_rekey.main, args(tmp_path))
    assert ended.failed and not ended.result['changed']
    assert 'the attempt was cancelled, the current keys stay valid' in ended.result['msg']
    assert vault.writes()[-1] == ('DELETE', 'sys/rekey/init')
    assert 'sys/rekey/verify' not in vault.paths('PUT')
    assert os.listdir(str(tmp_path)) == []
    assert_no_secret(ended.result, *(CURRENT_KEYS + NEW_HEX + NEW_B64))


def test_too_few_new_keys_without_verification_fail_saying_the_rekey_took_effect(run_main, vault, tmp_path):
    unverified = dict(SHORT, verification_required=False, verification_nonce='')
    vault.routes = rekey_routes(vault, {('PUT', 'sys/rekey/update'): [(200, dict(STARTED, progress=1)),
                                                                      (200, unverified)]})
    ended = run_main(vault_rekey.main, args(tmp_path, require_verification=False))
    assert ended.failed and ended.result['changed']
    assert 'the rekey completed on %s (the old keys no longer work)' % URL in ended.result['msg']
    assert 'what the answer held (incomplete) could not be saved anywhere' in ended.result['msg']
    assert ('DELETE', 'sys/rekey/init') not in vault.writes(), 'nothing is left to cancel'
    assert os.listdir(str(tmp_path)) == []
    assert_no_secret(ended.result, *(CURRENT_KEYS + NEW_HEX + NEW_B64))

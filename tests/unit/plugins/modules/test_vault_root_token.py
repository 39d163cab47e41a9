"""vault_root_token through main(), with the Vault HTTP API scripted at the transport: a generation with the
one-time password, its failures, and revocation."""
import base64
import json
import os

from ansible_collections.trustroot.ops.plugins.modules import vault_root_token

from ._vault_fake import UNSEALED, URL
from .conftest import assert_no_secret

KEYS = ['a' * 44, 'b' * 44, 'c' * 44]
NEW_TOKEN = 's.generated-root-token-0123456789'
OTP = 'o' * len(NEW_TOKEN)
ENCODED = base64.b64encode(bytes(a ^ b for a, b in zip(NEW_TOKEN.encode(), OTP.encode()))).decode().rstrip('=')
LEADER = {'ha_enabled': False, 'is_self': True, 'leader_address': ''}
IDLE = {'started': False, 'progress': 0, 'required': 2, 'nonce': ''}
STARTED = {'started': True, 'progress': 0, 'required': 2, 'nonce': 'nonce-1', 'otp': OTP}


def generation_routes(overrides=None):
    routes = {('GET', 'sys/seal-status'): (200, UNSEALED), ('GET', 'sys/leader'): (200, LEADER),
              ('GET', 'sys/generate-root/attempt'): (200, IDLE), ('PUT', 'sys/generate-root/attempt'): (200, STARTED),
              ('PUT', 'sys/generate-root/update'): [(200, dict(STARTED, progress=1, complete=False)),
                                                    (200, {'complete': True, 'encoded_token': ENCODED})],
              ('GET', 'auth/token/lookup-self'): (200, {'data': {'policies': ['root']}})}
    routes.update(overrides or {})
    return routes


def present_args(tmp_path, **extra):
    args = {'url': URL, 'keys': KEYS, 'output_path': str(tmp_path / 'root-token.json')}
    args.update(extra)
    return args


def test_a_root_token_is_generated_decoded_verified_and_saved(run_main, vault, tmp_path):
    vault.routes = generation_routes()
    ended = run_main(vault_root_token.main, present_args(tmp_path))
    assert not ended.failed, ended.result
    assert ended.result['changed'] and ended.result['verified'] and ended.result['api'] == 'generate_root'
    assert [c['json']['key'] for c in vault.calls if c['path'] == 'sys/generate-root/update'] == KEYS[:2]
    lookup = [c for c in vault.calls if c['path'] == 'auth/token/lookup-self']
    assert lookup and lookup[0]['token'] == NEW_TOKEN
    saved = json.loads((tmp_path / 'root-token.json').read_text())
    assert saved['kind'] == 'root_token' and saved['root_token'] == NEW_TOKEN
    assert_no_secret(ended.result, NEW_TOKEN, OTP, ENCODED, *KEYS)


def test_check_mode_reads_the_attempt_and_starts_nothing(run_main, vault, tmp_path):
    vault.routes = generation_routes()
    ended = run_main(vault_root_token.main, present_args(tmp_path), check_mode=True)
    assert not ended.failed and ended.result['changed']
    assert vault.writes() == [] and os.listdir(str(tmp_path)) == []


def test_an_attempt_in_progress_fails_without_cancel_stale(run_main, vault, tmp_path):
    vault.routes = generation_routes({('GET', 'sys/generate-root/attempt'): (200, dict(STARTED, progress=1))})
    ended = run_main(vault_root_token.main, present_args(tmp_path))
    assert ended.failed and 'cancel_stale' in ended.result['msg'] and 'nonce-1' in ended.result['msg']
    assert vault.writes() == []


def test_too_few_keys_fail_naming_keys_before_any_attempt(run_main, vault, tmp_path):
    vault.routes = generation_routes()
    ended = run_main(vault_root_token.main, present_args(tmp_path, keys=KEYS[:1]))
    assert ended.failed and ended.result['msg'] == 'keys: 1 unseal key(s) given, the threshold is 2'
    assert vault.writes() == []


def test_a_sealed_server_fails_naming_the_node(run_main, vault, tmp_path):
    vault.routes = generation_routes({('GET', 'sys/seal-status'): (200, dict(UNSEALED, sealed=True))})
    ended = run_main(vault_root_token.main, present_args(tmp_path))
    assert ended.failed and ended.result['msg'].startswith(URL) and 'sealed' in ended.result['msg']


def test_a_token_that_does_not_decode_to_root_fails_and_saves_nothing(run_main, vault, tmp_path):
    vault.routes = generation_routes({('GET', 'auth/token/lookup-self'): (200, {'data': {'policies': ['default']}})})
    ended = run_main(vault_root_token.main, present_args(tmp_path))
    assert ended.failed and 'does not look up as a root token' in ended.result['msg']
    assert ended.result['changed'] and ended.result['nonce'] == 'nonce-1'
    assert os.listdir(str(tmp_path)) == []
    assert_no_secret(ended.result, NEW_TOKEN, OTP)


def test_revoking_a_root_token_revokes_it_and_confirms_it_is_gone(run_main, vault):
    vault.routes = {('GET', 'auth/token/lookup-self'): [(200, {'data': {'policies': ['root']}}),
                                                        (403, {'errors': ['permission denied']})],
                    ('PUT', 'auth/token/revoke-self'): (204, None)}
    ended = run_main(vault_root_token.main, {'url': URL, 'state': 'absent', 'token_to_revoke': NEW_TOKEN})
    assert not ended.failed, ended.result
    assert ended.result['changed'] and ended.result['revoked']
    assert ended.result['method'] == 'auth/token/revoke-self'
    assert vault.writes() == [('PUT', 'auth/token/revoke-self')]
    assert_no_secret(ended.result, NEW_TOKEN)


def test_a_token_already_gone_is_left_alone(run_main, vault):
    vault.routes = {('GET', 'auth/token/lookup-self'): (403, {'errors': ['permission denied']})}
    ended = run_main(vault_root_token.main, {'url': URL, 'state': 'absent', 'token_to_revoke': NEW_TOKEN})
    assert not ended.failed and not ended.result['changed'] and not ended.result['revoked']
    assert vault.writes() == []


def test_a_token_that_is_not_root_is_refused(run_main, vault):
    vault.routes = {('GET', 'auth/token/lookup-self'): (200, {'data': {'policies': ['default']}})}
    ended = run_main(vault_root_token.main, {'url': URL, 'state': 'absent', 'token_to_revoke': NEW_TOKEN})
    assert ended.failed and ended.result['msg'].startswith('token_to_revoke: is not a root token')
    assert vault.writes() == []


def test_an_empty_token_to_revoke_fails_naming_the_field(run_main, vault):
    ended = run_main(vault_root_token.main, {'url': URL, 'state': 'absent', 'token_to_revoke': '  '})
    assert ended.failed and ended.result['msg'] == 'token_to_revoke: is empty'
    assert vault.calls == []

"""Pure logic of vault_root_token: OTP decoding, API choice, generation sequence, revocation lookups."""

import base64

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._vault import VaultError, shape_problem
from ansible_collections.trustroot.ops.plugins.module_utils._vault_rekey import OperationError
from ansible_collections.trustroot.ops.plugins.module_utils._vault_root_token import (
    DecodeError, GenerateRootRun, api_paths, choose_api, decode_token, lookup_state, material_from_root_token,
    revoke, stale_attempt_message, unsupported_message)

KEY_A = base64.b64encode(b'a' * 33).decode()
KEY_B = base64.b64encode(b'b' * 33).decode()


def encode(token, otp, padding=False):
    """What the server does: token bytes XOR OTP bytes, base64 without padding."""
    raw = bytes(a ^ b for a, b in zip(token.encode(), otp.encode()))
    encoded = base64.b64encode(raw).decode()
    return encoded if padding else encoded.rstrip('=')


class ScriptedNode(object):
    def __init__(self, script, url='http://node1:8200'):
        self.url = url
        self.script = {key: list(value) for key, value in script.items()}
        self.calls = []

    def call(self, method, path, auth=True, json=None, expect=None):
        self.calls.append((method, path, auth, json))
        queue = self.script.get((method, path))
        if not queue:
            raise AssertionError('unexpected call %s %s' % (method, path))
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        if expect is not None and shape_problem(answer, expect):
            raise VaultError(self.url, '%s %s answered %s' % (method, path, shape_problem(answer, expect)))
        return answer


# --- OTP decoding ---

def test_decode_a_real_openbao_answer():
    # Seen from OpenBao 2.7.2 (sys/generate-root/update and the otp from the attempt's start).
    otp = 'DecAbJDfwpzTIq140FDl4iAbpV'
    encoded = 'N0sscigpDTVPBBMneEZje0EEMg0GGjEAChA'
    token = decode_token(encoded, otp)
    assert token == 's.O3JcIS8tis17ROqBva2spbzF'  # what sys/decode-token answered for the same pair


@pytest.mark.parametrize('padding', [False, True])
def test_decode_round_trip(padding):
    token, otp = 's.O3JcIS8tis17ROqBva2spbzF', 'xlNlDLydtmyjOpydR4FGACNk7y'
    assert decode_token(encode(token, otp, padding), otp) == token


@pytest.mark.parametrize('encoded,otp,expected', [
    ('', 'abc', 'no encoded token'),
    ('YWJj', '', 'no encoded token'),
    ('not base64 !', 'abcdefghi', 'not base64'),
    ('YWJjZA', 'abc', 'has 4 bytes but the OTP has 3'),
])
def test_decode_errors(encoded, otp, expected):
    with pytest.raises(DecodeError) as err:
        decode_token(encoded, otp)
    assert expected in str(err.value)


def test_decode_with_the_wrong_otp_is_caught():
    encoded = encode('s.O3JcIS8tis17ROqBva2spbzF', 'xlNlDLydtmyjOpydR4FGACNk7y')
    with pytest.raises(DecodeError):
        decode_token(encoded, '\x80' * 26)


# --- API choice ---

@pytest.mark.parametrize('requested,flavour,version,has_token,expected', [
    ('auto', 'openbao', (2, 7, 2), True, 'generate_root_token'),
    ('auto', 'openbao', (2, 6, 0), True, 'generate_root_token'),
    ('auto', 'openbao', (2, 7, 2), False, 'generate_root'),
    ('auto', 'openbao', (2, 5, 3), True, 'generate_root'),
    ('auto', 'vault', (1, 17, 0), True, 'generate_root'),
    ('generate_root', 'openbao', (2, 7, 2), True, 'generate_root'),
    ('generate_root_token', 'openbao', (2, 5, 0), False, 'generate_root_token'),
])
def test_choose_api(requested, flavour, version, has_token, expected):
    assert choose_api(requested, flavour, version, has_token) == expected


def test_api_paths():
    assert api_paths('generate_root') == {'attempt': 'sys/generate-root/attempt',
                                          'update': 'sys/generate-root/update', 'auth': False}
    assert api_paths('generate_root_token')['update'] == 'sys/generate-root-token/update'
    assert api_paths('generate_root_token')['auth'] is True


def test_unsupported_message_names_the_listener_setting():
    message = unsupported_message('generate_root', 'http://n1', 'openbao', (2, 7, 2), '2.7.2')
    assert 'disable_unauthed_generate_root_endpoints = false' in message and 'listener' in message
    assert 'sys/generate-root-token' in message  # the authenticated way exists on 2.7.2
    older = unsupported_message('generate_root', 'http://n1', 'openbao', (2, 5, 3), '2.5.3')
    assert 'sys/generate-root-token' not in older
    assert 'api=generate_root' in unsupported_message('generate_root_token', 'http://n1', 'openbao', (2, 5, 0),
                                                      '2.5.0')


def test_material_and_stale_message():
    material = material_from_root_token('s.x', False, 'http://n1', 'openbao', '2.7.2')
    assert material['kind'] == 'root_token' and material['root_token'] == 's.x'
    assert material['format'] == 'trustroot.ops/vault-init/v1' and material['root_token_pgp_encrypted'] is False
    assert 'cancel_stale=true' in stale_attempt_message('http://n1', {'nonce': 'n', 'required': 2})


# --- the generation sequence ---

def test_generation_with_otp():
    otp, token = 'xlNlDLydtmyjOpydR4FGACNk7y', 's.O3JcIS8tis17ROqBva2spbzF'
    node = ScriptedNode({
        ('PUT', 'sys/generate-root-token/attempt'): [{'started': True, 'nonce': 'g1', 'otp': otp, 'required': 2}],
        ('PUT', 'sys/generate-root-token/update'): [{'progress': 1, 'complete': False},
                                                    {'progress': 2, 'complete': True,
                                                     'encoded_token': encode(token, otp)}],
    })
    secrets = []
    run = GenerateRootRun(node, 'generate_root_token', register_secret=secrets.append)
    run.start()
    assert node.calls[0][3] == {}  # the server makes the OTP
    encoded, fingerprint = run.submit_keys([KEY_A, KEY_B, 'unused'], 2)
    assert decode_token(encoded, run.otp) == token and fingerprint is None
    assert otp in secrets and encoded in secrets
    assert [c[3] for c in node.calls[1:]] == [{'key': KEY_A, 'nonce': 'g1'}, {'key': KEY_B, 'nonce': 'g1'}]


def test_generation_with_pgp_key_sends_it():
    node = ScriptedNode({
        ('PUT', 'sys/generate-root/attempt'): [{'started': True, 'nonce': 'g1', 'otp': '', 'required': 1}],
        ('PUT', 'sys/generate-root/update'): [{'complete': True, 'encoded_token': 'wcBMA...',
                                               'pgp_fingerprint': 'abcd'}],
    })
    run = GenerateRootRun(node, 'generate_root')
    run.start(' PGPKEY ')
    assert node.calls[0][3] == {'pgp_key': 'PGPKEY'} and node.calls[0][2] is False
    assert run.submit_keys([KEY_A], 1) == ('wcBMA...', 'abcd')


def test_rejected_key_cancels():
    node = ScriptedNode({
        ('PUT', 'sys/generate-root-token/attempt'): [{'nonce': 'g1', 'otp': 'o' * 26}],
        ('PUT', 'sys/generate-root-token/update'): [
            VaultError('u', 'HTTP 500: root generation aborted: unable to authenticate', status=500)],
        ('DELETE', 'sys/generate-root-token/attempt'): [None],
    })
    run = GenerateRootRun(node, 'generate_root_token')
    run.start()
    with pytest.raises(OperationError) as err:
        run.submit_keys([KEY_A, KEY_B], 2)
    assert 'rejected the key shares (at key 1 of 2)' in str(err.value) and 'cancelled' in str(err.value)
    assert node.calls[-1][:2] == ('DELETE', 'sys/generate-root-token/attempt')


def test_missing_otp_cancels():
    node = ScriptedNode({('PUT', 'sys/generate-root/attempt'): [{'nonce': 'g1', 'otp': ''}],
                         ('DELETE', 'sys/generate-root/attempt'): [None]})
    with pytest.raises(OperationError) as err:
        GenerateRootRun(node, 'generate_root').start()
    assert 'no OTP' in str(err.value)


def test_turned_off_endpoint_is_explained():
    node = ScriptedNode({('GET', 'sys/generate-root/attempt'): [
        VaultError('u', 'HTTP 405 from sys/generate-root/attempt: unsupported operation', status=405)]})
    with pytest.raises(OperationError) as err:
        GenerateRootRun(node, 'generate_root', 'openbao', (2, 7, 2), '2.7.2').status()
    assert 'disable_unauthed_generate_root_endpoints' in str(err.value)


# --- revocation ---

def test_lookup_with_another_token():
    valid = ScriptedNode({('PUT', 'auth/token/lookup'): [{'policies': ['root']}]})
    assert lookup_state(valid, 's.x', self_lookup=False) == (True, ['root'])
    assert valid.calls[0][3] == {'token': 's.x'}
    gone = ScriptedNode({('PUT', 'auth/token/lookup'): [
        VaultError('u', 'HTTP 403 from auth/token/lookup: bad token', status=403)]})
    assert lookup_state(gone, 's.x', self_lookup=False) == (False, [])
    denied = ScriptedNode({('PUT', 'auth/token/lookup'): [
        VaultError('u', 'HTTP 403 from auth/token/lookup: permission denied', status=403)]})
    with pytest.raises(OperationError) as err:
        lookup_state(denied, 's.x', self_lookup=False)
    assert str(err.value).startswith('token: permission denied')


def test_lookup_self():
    gone = ScriptedNode({('GET', 'auth/token/lookup-self'): [
        VaultError('u', 'HTTP 403 from auth/token/lookup-self: permission denied', status=403)]})
    assert lookup_state(gone, 's.x', self_lookup=True) == (False, [])
    down = ScriptedNode({('GET', 'auth/token/lookup-self'): [VaultError('u', 'unreachable (ConnectionError)')]})
    with pytest.raises(OperationError) as err:
        lookup_state(down, 's.x', self_lookup=True)
    assert 'unreachable' in str(err.value)


def test_revoke_paths():
    node = ScriptedNode({('PUT', 'auth/token/revoke'): [None], ('PUT', 'auth/token/revoke-self'): [None]})
    revoke(node, 's.x', self_revoke=False)
    revoke(node, 's.x', self_revoke=True)
    assert [c[:2] for c in node.calls] == [('PUT', 'auth/token/revoke'), ('PUT', 'auth/token/revoke-self')]
    assert node.calls[0][3] == {'token': 's.x'} and node.calls[1][3] is None


class FakeClock(object):
    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_confirm_revoked_waits_for_a_lookup_that_follows_the_revocation():
    from ansible_collections.trustroot.ops.plugins.module_utils._vault_root_token import confirm_revoked
    answers = iter([(True, ['root']), (True, ['root']), (False, [])])
    time_ = FakeClock()
    assert confirm_revoked(lambda: next(answers), clock=time_.clock, sleep=time_.sleep) is True
    assert time_.now == 0.5


def test_confirm_revoked_fails_on_a_token_still_valid_after_the_settle_time():
    from ansible_collections.trustroot.ops.plugins.module_utils._vault_root_token import confirm_revoked
    calls = []
    time_ = FakeClock()

    def lookup():
        calls.append(time_.now)
        return True, ['root']
    assert confirm_revoked(lookup, settle=5.0, clock=time_.clock, sleep=time_.sleep) is False
    assert calls[0] == 0.0 and calls[-1] >= 5.0 and len(calls) == 21

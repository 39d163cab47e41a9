"""Pure logic of vault_rekey: input rules, API choice, and the attempt sequence against a scripted node."""

import base64

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._vault import VaultError, shape_problem
from ansible_collections.trustroot.ops.plugins.module_utils._vault_rekey import (
    OperationError, RekeyRun, active_url, api_paths, check_target, choose_api, clean_server_message,
    find_active_node, init_payload, is_unsupported, resolve_layout, stale_attempt_message,
    validate_key_shares, validate_layout, validate_options)

KEY_A = base64.b64encode(b'a' * 33).decode()
KEY_B = base64.b64encode(b'b' * 33).decode()
KEY_C = (b'c' * 33).hex()
PGP = base64.b64encode(b'\x99\x01fake-public-key').decode()


class ScriptedNode(object):
    """Answers (method, path) from queues; a queued exception is raised. Records every call."""

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

    def paths_called(self):
        return [(m, p) for m, p, _a, _j in self.calls]


# --- input rules ---

@pytest.mark.parametrize('shares,threshold,expected', [
    (5, 3, None),
    (1, 1, None),
    (255, 2, None),
    (0, 0, 'secret_shares: must be at least 1'),
    (256, 3, 'secret_shares: must be at most 255'),
    (3, 0, 'secret_threshold: must be at least 1'),
    (3, 4, 'secret_threshold: must not be larger than secret_shares (4 > 3)'),
    (3, 1, 'secret_threshold: must be greater than 1 when secret_shares is more than 1'),
])
def test_validate_layout(shares, threshold, expected):
    problem = validate_layout(shares, threshold)
    if expected is None:
        assert problem is None
    else:
        assert problem.startswith(expected)


@pytest.mark.parametrize('params,expected', [
    ({}, None),
    ({'secret_shares': 3, 'secret_threshold': 2, 'pgp_keys': [PGP] * 3, 'require_verification': False}, None),
    ({'secret_shares': 3, 'secret_threshold': 5}, 'secret_threshold'),
    ({'secret_shares': 0}, 'secret_shares: must be at least 1'),
    ({'secret_threshold': 0}, 'secret_threshold: must be at least 1'),
    ({'secret_shares': 3, 'secret_threshold': 2, 'pgp_keys': [PGP] * 2, 'require_verification': False},
     'pgp_keys: needs one key per share (2 given, secret_shares is 3)'),
    ({'pgp_keys': ['not base64!'], 'require_verification': False}, 'pgp_keys[0] is not a base64'),
    ({'pgp_keys': [''], 'require_verification': False}, 'pgp_keys[0] is not a base64'),
    ({'backup': True}, 'backup: only applies with pgp_keys'),
    ({'pgp_keys': [PGP], 'require_verification': True}, 'require_verification: cannot be used with pgp_keys'),
    ({'keys': []}, 'keys is empty'),
    ({'keys': [KEY_A, '%%']}, 'keys[1] is neither hex nor base64'),
    ({'keys': [KEY_A, KEY_A]}, 'keys holds the same key more than once'),
])
def test_validate_options(params, expected):
    problem = validate_options(params)
    if expected is None:
        assert problem is None
    else:
        assert expected in problem


def test_key_validation_never_echoes_a_key():
    secret = 'not-a-key-but-secret!'
    assert secret not in validate_key_shares([KEY_A, secret])
    assert validate_key_shares([KEY_A, KEY_B, KEY_C]) is None


def test_resolve_layout_defaults_to_the_current_layout():
    status = {'n': 5, 't': 3}
    assert resolve_layout({}, status) == (5, 3)
    assert resolve_layout({'secret_shares': 7}, status) == (7, 3)
    assert resolve_layout({'secret_threshold': 2}, status) == (5, 2)


def test_resolve_layout_explains_a_default_that_breaks_the_rules():
    with pytest.raises(OperationError) as err:
        resolve_layout({'secret_shares': 2}, {'n': 5, 't': 3})
    assert 'secret_threshold' in str(err.value) and 'current layout 3/5' in str(err.value)
    with pytest.raises(OperationError) as err:
        resolve_layout({'pgp_keys': [PGP] * 2}, {'n': 3, 't': 2})
    assert 'pgp_keys' in str(err.value) and 'secret_shares is 3' in str(err.value)


@pytest.mark.parametrize('target,status,expected', [
    ('unseal', {'initialized': True, 'sealed': False, 'recovery_seal': False, 'type': 'shamir'}, None),
    ('recovery', {'initialized': True, 'sealed': False, 'recovery_seal': True, 'type': 'transit'}, None),
    ('unseal', {'initialized': True, 'sealed': False, 'recovery_seal': True, 'type': 'transit'},
     'use target=recovery'),
    ('recovery', {'initialized': True, 'sealed': False, 'recovery_seal': False, 'type': 'shamir'},
     'use target=unseal'),
    ('unseal', {'initialized': False}, 'not initialized'),
    ('unseal', {'initialized': True, 'sealed': True}, 'sealed'),
])
def test_check_target(target, status, expected):
    problem = check_target(target, status)
    if expected is None:
        assert problem is None
    else:
        assert expected in problem


# --- API choice ---

@pytest.mark.parametrize('requested,flavour,version,expected', [
    ('auto', 'openbao', (2, 7, 2), 'rotate_root'),
    ('auto', 'openbao', (2, 5, 0), 'rotate_root'),
    ('auto', 'openbao', (2, 4, 4), 'rekey'),
    ('auto', 'vault', (1, 17, 0), 'rekey'),
    ('auto', 'openbao', (), 'rekey'),
    ('rekey', 'openbao', (2, 7, 2), 'rekey'),
    ('rotate_root', 'openbao', (2, 4, 0), 'rotate_root'),
])
def test_choose_api(requested, flavour, version, expected):
    assert choose_api(requested, flavour, version) == expected


def test_api_paths():
    assert api_paths('rotate_root', 'unseal')['attempt'] == 'sys/rotate/root/init'
    assert api_paths('rotate_root', 'recovery')['verify'] == 'sys/rotate/recovery/verify'
    assert api_paths('rotate_root', 'unseal')['auth'] is True
    assert api_paths('rekey', 'unseal')['update'] == 'sys/rekey/update'
    assert api_paths('rekey', 'recovery')['attempt'] == 'sys/rekey-recovery-key/init'
    assert api_paths('rekey', 'recovery')['auth'] is False


def test_init_payload():
    assert init_payload(5, 3) == {'secret_shares': 5, 'secret_threshold': 3, 'require_verification': False}
    payload = init_payload(2, 2, [' %s ' % PGP, PGP], backup=True)
    assert payload['pgp_keys'] == [PGP, PGP] and payload['backup'] is True


def test_clean_server_message_removes_go_debris():
    raw = ('invalid rotate seal configuration: %!w(*errors.errorString=&{threshold cannot be larger than '
           'shares})')
    assert clean_server_message(raw) == 'invalid rotate seal configuration: threshold cannot be larger than shares'
    assert clean_server_message('plain') == 'plain'


def test_unsupported_detection():
    assert is_unsupported(VaultError('u', 'HTTP 405 from sys/rekey/init: unsupported operation', status=405))
    assert not is_unsupported(VaultError('u', 'permission denied', status=403))


def test_stale_attempt_message_names_the_option():
    message = stale_attempt_message('http://n1', {'nonce': 'abc', 'progress': 1, 'required': 2})
    assert 'abc' in message and '1/2' in message and 'cancel_stale=true' in message


@pytest.mark.parametrize('leader,expected', [
    ({'ha_enabled': True, 'is_self': True, 'leader_address': 'http://n1:8200'}, 'http://n1:8200'),
    ({'ha_enabled': True, 'is_self': False, 'leader_address': 'http://n2:8200/'}, 'http://n2:8200'),
    ({'ha_enabled': False}, 'http://n1:8200'),
])
def test_active_url(leader, expected):
    assert active_url(leader, 'http://n1:8200') == expected


def test_active_url_without_a_leader():
    with pytest.raises(OperationError) as err:
        active_url({'ha_enabled': True, 'is_self': False, 'leader_address': ''}, 'http://n3:8200')
    assert 'standby' in str(err.value)


def test_find_active_node_follows_the_leader():
    standby = ScriptedNode({('GET', 'sys/leader'): [{'ha_enabled': True, 'is_self': False,
                                                     'leader_address': 'http://n2:8200'}]}, url='http://n3:8200')
    made = []
    node = find_active_node(standby, lambda url: made.append(url) or ScriptedNode({}, url=url))
    assert node.url == 'http://n2:8200' and made == ['http://n2:8200']


# --- the sequence ---

def started(nonce='n1', required=2):
    return {'started': True, 'nonce': nonce, 'progress': 0, 'required': required, 't': 3, 'n': 5}


def test_full_rotation_with_verification():
    new = [base64.b64encode(bytes([i]) * 33).decode() for i in range(5)]
    node = ScriptedNode({
        ('PUT', 'sys/rotate/root/init'): [started()],
        ('PUT', 'sys/rotate/root/update'): [dict(started(), progress=1),
                                            {'complete': True, 'keys_base64': new, 'keys': ['h'] * 5,
                                             'verification_required': True, 'verification_nonce': 'v1'}],
        ('PUT', 'sys/rotate/root/verify'): [{'progress': 1}, {'progress': 2}, {'complete': True, 'nonce': 'v1'}],
    })
    secrets = []
    run = RekeyRun(node, 'rotate_root', 'unseal', register_secret=secrets.append)
    run.start(init_payload(5, 3, require_verification=True))
    answer = run.submit_current_keys([KEY_A, KEY_B, KEY_C], 2)
    assert answer['verification_nonce'] == 'v1'
    assert set(new) <= set(secrets)
    assert run.verify(new, 3, 'v1')['complete'] is True
    updates = [c for c in node.calls if c[1] == 'sys/rotate/root/update']
    assert [c[3]['key'] for c in updates] == [KEY_A, KEY_B]  # only the threshold of current keys is sent
    verifies = [c for c in node.calls if c[1] == 'sys/rotate/root/verify']
    assert [c[3] for c in verifies] == [{'key': k, 'nonce': 'v1'} for k in new[:3]]
    assert all(c[2] is True for c in node.calls)  # the token goes with every call


def test_legacy_api_calls_are_unauthenticated():
    node = ScriptedNode({
        ('PUT', 'sys/rekey/init'): [started()],
        ('PUT', 'sys/rekey/update'): [dict(started(), progress=1), {'complete': True, 'keys_base64': [KEY_C]}],
    })
    run = RekeyRun(node, 'rekey', 'unseal')
    run.start(init_payload(1, 1))
    run.submit_current_keys([KEY_A, KEY_B], 2)
    assert all(auth is False for _m, _p, auth, _j in node.calls)


def test_rejected_key_cancels_the_attempt():
    node = ScriptedNode({
        ('PUT', 'sys/rotate/root/init'): [started()],
        ('PUT', 'sys/rotate/root/update'): [
            dict(started(), progress=1),
            VaultError('http://node1:8200', 'HTTP 400 from sys/rotate/root/update: failed to read root key: '
                       '%!w(*vault.ErrInvalidKey=&{cipher: message authentication failed})', status=400)],
        ('DELETE', 'sys/rotate/root/init'): [None],
    })
    run = RekeyRun(node, 'rotate_root', 'unseal')
    run.start(init_payload(5, 3))
    with pytest.raises(OperationError) as err:
        run.submit_current_keys([KEY_A, KEY_B], 2)
    message = str(err.value)
    assert 'keys: the server rejected the current keys (at key 2 of 2)' in message
    assert 'message authentication failed' in message and '%!w' not in message
    assert 'the attempt was cancelled' in message
    assert node.paths_called()[-1] == ('DELETE', 'sys/rotate/root/init')
    assert KEY_A not in message and KEY_B not in message


def test_failed_cancel_is_reported():
    node = ScriptedNode({
        ('PUT', 'sys/rotate/root/init'): [started()],
        ('PUT', 'sys/rotate/root/update'): [VaultError('u', 'boom', status=500)],
        ('DELETE', 'sys/rotate/root/init'): [VaultError('u', 'unreachable (ConnectionError)')],
    })
    run = RekeyRun(node, 'rotate_root', 'unseal')
    run.start(init_payload(5, 3))
    with pytest.raises(OperationError) as err:
        run.submit_current_keys([KEY_A, KEY_B], 2)
    assert 'cancelling the attempt failed too' in str(err.value) and 'cancel_stale=true' in str(err.value)


def test_failed_verification_cancels():
    node = ScriptedNode({
        ('PUT', 'sys/rotate/recovery/verify'): [VaultError('u', 'rotation verification failed', status=400)],
        ('DELETE', 'sys/rotate/recovery/init'): [None],
    })
    run = RekeyRun(node, 'rotate_root', 'recovery')
    with pytest.raises(OperationError) as err:
        run.verify([KEY_A, KEY_B], 2, 'v1')
    assert 'verification with the new keys failed' in str(err.value) and 'cancelled' in str(err.value)
    assert node.paths_called()[-1] == ('DELETE', 'sys/rotate/recovery/init')


def test_incomplete_after_all_keys_cancels():
    node = ScriptedNode({
        ('PUT', 'sys/rotate/root/init'): [started(required=3)],
        ('PUT', 'sys/rotate/root/update'): [dict(started(), progress=1)],
        ('DELETE', 'sys/rotate/root/init'): [None],
    })
    run = RekeyRun(node, 'rotate_root', 'unseal')
    run.start(init_payload(5, 3))
    with pytest.raises(OperationError) as err:
        run.submit_current_keys([KEY_A], 3)
    assert 'did not complete' in str(err.value)


def test_status_errors_are_explained():
    turned_off = ScriptedNode({('GET', 'sys/rekey/init'): [
        VaultError('u', 'HTTP 405 from sys/rekey/init: unsupported operation', status=405)]})
    with pytest.raises(OperationError) as err:
        RekeyRun(turned_off, 'rekey', 'unseal', version='2.7.2').status()
    assert 'disable_unauthed_rekey_endpoints = false' in str(err.value) and '2.7.2' in str(err.value)
    denied = ScriptedNode({('GET', 'sys/rotate/root/init'): [
        VaultError('u', 'HTTP 403 from sys/rotate/root/init: permission denied', status=403)]})
    with pytest.raises(OperationError) as err:
        RekeyRun(denied, 'rotate_root', 'unseal').status()
    assert str(err.value).startswith('token: permission denied')


def test_start_without_nonce_cancels():
    node = ScriptedNode({('PUT', 'sys/rekey/init'): [{'started': True}], ('DELETE', 'sys/rekey/init'): [None]})
    with pytest.raises(OperationError):
        RekeyRun(node, 'rekey', 'unseal').start(init_payload(1, 1))
    assert ('DELETE', 'sys/rekey/init') in node.paths_called()


# --- a completion without keys ---

def completion_without_keys(**extra):
    node = ScriptedNode({
        ('PUT', 'sys/rotate/root/init'): [started(required=1)],
        ('PUT', 'sys/rotate/root/update'): [dict({'nonce': 'n1', 'complete': True}, **extra)],
        ('DELETE', 'sys/rotate/root/init'): [None],
    })
    run = RekeyRun(node, 'rotate_root', 'unseal')
    run.start(init_payload(3, 2))
    with pytest.raises(OperationError) as err:
        run.submit_current_keys([KEY_A], 1)
    return node, str(err.value)


def test_a_completion_without_keys_before_verification_is_cancelled():
    node, message = completion_without_keys(verification_nonce='v1')
    assert 'completed without returning new keys' in message and 'the current keys stay valid' in message
    assert ('DELETE', 'sys/rotate/root/init') in node.paths_called()


def test_a_completion_without_keys_and_without_verification_says_the_old_keys_are_void():
    node, message = completion_without_keys()
    assert 'the previous keys no longer work and the new ones were not received' in message
    assert 'stay valid' not in message and ('DELETE', 'sys/rotate/root/init') not in node.paths_called()


def test_the_status_of_no_attempt_is_readable():
    """OpenBao 2.7.2's GET sys/rotate/root/init with no attempt under way: no progress, no nonce."""
    from ansible_collections.trustroot.ops.plugins.module_utils._vault_rekey import ATTEMPT_STATUS
    assert shape_problem({'n': 0, 'required': 1, 'started': False, 't': 0}, ATTEMPT_STATUS) is None


class _Run(object):
    def __init__(self, status):
        self._status = status

    def status(self):
        return self._status


def test_open_attempt_gives_the_attempt_and_the_shares_it_needs():
    from ansible_collections.trustroot.ops.plugins.module_utils._vault_rekey import open_attempt
    attempt = {'started': False, 'required': 0}
    assert open_attempt(_Run(attempt), 'https://a', {'t': 3}, False) == (attempt, False, 3)
    assert open_attempt(_Run({'started': False, 'required': 2}), 'https://a', {'t': 3}, False)[2] == 2


def test_open_attempt_refuses_a_stale_attempt_unless_told_to_cancel_it():
    from ansible_collections.trustroot.ops.plugins.module_utils._vault_rekey import OperationError, open_attempt
    stale = {'started': True, 'nonce': 'n1', 'progress': 1, 'required': 3}
    with pytest.raises(OperationError, match='https://a: a rekey attempt is already in progress .nonce n1'):
        open_attempt(_Run(stale), 'https://a', {'t': 3}, False)
    assert open_attempt(_Run(stale), 'https://a', {'t': 3}, True) == (stale, True, 3)
    with pytest.raises(OperationError, match='other'):
        open_attempt(_Run(stale), 'https://a', {}, False, lambda url, status: 'other %s' % url)

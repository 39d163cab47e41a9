import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._vault_init import (
    InitInputError, build_init_request, is_auto_unseal)


def params(**overrides):
    base = dict(secret_shares=5, secret_threshold=3, recovery_shares=None, recovery_threshold=None,
                pgp_keys=None, recovery_pgp_keys=None, root_token_pgp_key=None)
    base.update(overrides)
    return base


def test_shamir_request():
    assert build_init_request(params(), auto_unseal=False) == {'secret_shares': 5, 'secret_threshold': 3}
    req = build_init_request(params(secret_shares=2, secret_threshold=2, pgp_keys=['k1', 'k2'],
                                    root_token_pgp_key='r'), auto_unseal=False)
    assert req['pgp_keys'] == ['k1', 'k2'] and req['root_token_pgp_key'] == 'r'


def test_auto_unseal_request_defaults_and_zero():
    assert build_init_request(params(), auto_unseal=True) == {'recovery_shares': 5, 'recovery_threshold': 3}
    assert build_init_request(params(recovery_shares=0), auto_unseal=True) == {
        'recovery_shares': 0, 'recovery_threshold': 0}


@pytest.mark.parametrize('overrides, auto, field', [
    (dict(secret_threshold=6), False, 'secret_threshold'),
    (dict(secret_shares=3, secret_threshold=1), False, 'secret_threshold'),
    (dict(secret_shares=0), False, 'secret_shares'),
    (dict(pgp_keys=['only-one']), False, 'pgp_keys'),
    (dict(recovery_shares=3), False, 'recovery_shares'),
    (dict(recovery_shares=3, recovery_threshold=4), True, 'recovery_threshold'),
    (dict(recovery_shares=0, recovery_threshold=1), True, 'recovery_threshold'),
    (dict(recovery_pgp_keys=['x']), True, 'recovery_pgp_keys'),
])
def test_bad_layouts_name_the_field(overrides, auto, field):
    with pytest.raises(InitInputError, match=field):
        build_init_request(params(**overrides), auto_unseal=auto)


def test_is_auto_unseal():
    assert is_auto_unseal({'type': 'shamir'}) is False
    assert is_auto_unseal({'type': 'transit'}) is True
    assert is_auto_unseal({'type': 'shamir', 'recovery_seal': True}) is True

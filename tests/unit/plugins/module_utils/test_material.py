import os
import stat

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._files import atomic_write, atomic_writer, sha256_file
from ansible_collections.trustroot.ops.plugins.module_utils._material import (
    FORMAT, MaterialError, keys_from_material, material_from_init, parse_material, secrets_in, serialize,
    validate_key_shares)

INIT = {'keys': ['aa', 'bb', 'cc'], 'keys_base64': ['qg==', 'uw==', 'zA=='], 'root_token': 's.root'}


def test_material_from_init_and_back():
    material = material_from_init(INIT, {'secret_shares': 3, 'secret_threshold': 2}, 'http://a', 'openbao', '2.7.2')
    assert material['format'] == FORMAT and material['unseal_threshold'] == 2
    parsed = parse_material(serialize(material))
    assert keys_from_material(parsed) == ['qg==', 'uw==', 'zA==']
    assert sorted(secrets_in(parsed)) == sorted(INIT['keys'] + INIT['keys_base64'] + ['s.root'])


def test_pgp_keys_and_missing_keys_are_errors():
    material = material_from_init(INIT, {'secret_shares': 3, 'secret_threshold': 2, 'pgp_keys': ['p'] * 3},
                                  'http://a', 'openbao', '2.7.2')
    with pytest.raises(MaterialError, match='PGP-encrypted'):
        keys_from_material(material)
    with pytest.raises(MaterialError, match='no recovery keys'):
        keys_from_material(material, recovery=True)


@pytest.mark.parametrize('data', [b'not json', b'{"format": "other"}', b'[]'])
def test_parse_rejects_foreign_files(data):
    with pytest.raises(MaterialError, match='not a key material file'):
        parse_material(data)


def test_atomic_write_mode_and_no_leftovers_on_failure(tmp_path):
    target = tmp_path / 'secret.json'
    atomic_write(str(target), b'{}')
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600 and target.read_bytes() == b'{}'
    with pytest.raises(RuntimeError):
        with atomic_writer(str(target)) as handle:
            handle.write(b'half')
            raise RuntimeError('interrupted')
    assert target.read_bytes() == b'{}', 'an interrupted write must not replace the file'
    assert os.listdir(tmp_path) == ['secret.json'], 'no temp file may be left behind'
    assert sha256_file(str(target)) == '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'


@pytest.mark.parametrize('keys, problem', [
    ([], 'keys is empty'),
    (['   '], 'keys[0] is empty'),
    (['abc!'], 'keys[0] is neither hex nor base64'),
    (['a2V5MQ==', 'a2V5MQ=='], 'keys holds the same key more than once'),
])
def test_validate_key_shares(keys, problem):
    assert validate_key_shares(keys) == problem


def test_validate_key_shares_accepts_hex_and_base64():
    assert validate_key_shares(['deadbeef', 'a2V5MQ==']) is None

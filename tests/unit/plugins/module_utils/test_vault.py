from ansible_collections.trustroot.ops.plugins.module_utils._vault import (
    api_errors, detect_flavour, keyring_rotate_path, nodes_from_params, parse_version, uses_rotate_root_api)


def test_detect_flavour_from_seal_status():
    assert detect_flavour({'version': '2.7.2', 'commit_date': 'x'})[:2] == ('openbao', (2, 7, 2))
    assert detect_flavour({'version': '1.15.4', 'build_date': 'x'})[:2] == ('vault', (1, 15, 4))
    assert detect_flavour({'version': '1.18.0+ent'})[0] == 'vault'
    # OpenBao's version alone is enough when commit_date is missing.
    assert detect_flavour({'version': '2.4.1'})[0] == 'openbao'


def test_parse_version():
    assert parse_version('v2.5.0-beta1') == (2, 5, 0)
    assert parse_version('garbage') == ()


def test_api_paths_by_flavour():
    assert keyring_rotate_path('openbao') == 'sys/rotate/keyring'
    assert keyring_rotate_path('vault') == 'sys/rotate'
    assert uses_rotate_root_api('openbao', (2, 5, 0)) is True
    assert uses_rotate_root_api('openbao', (2, 4, 9)) is False
    assert uses_rotate_root_api('vault', (1, 19, 0)) is False
    assert uses_rotate_root_api('openbao', ()) is False


def test_api_errors_and_nodes():
    assert api_errors({'errors': ['a', 'b']}) == 'a; b'
    assert api_errors({'data': {}}) is None
    assert nodes_from_params({'nodes': ['http://a/', 'http://b'], 'url': 'http://c'}) == ['http://a', 'http://b']
    assert nodes_from_params({'nodes': None, 'url': 'http://c/'}) == ['http://c']

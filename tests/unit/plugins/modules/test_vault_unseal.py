"""vault_unseal through main(), with the Vault HTTP API scripted at the transport."""
from ansible_collections.trustroot.ops.plugins.modules import vault_unseal

from ._vault_fake import SEALED, UNSEALED, URL
from .conftest import assert_no_secret

KEYS = ['a' * 66, 'b' * 66, 'c' * 66]


def test_a_sealed_node_gets_keys_until_it_unseals_and_no_more(run_main, vault):
    vault.routes = {('GET', 'sys/seal-status'): [(200, SEALED)],
                    ('PUT', 'sys/unseal'): [(200, dict(SEALED, progress=1)), (200, UNSEALED)]}
    ended = run_main(vault_unseal.main, {'url': URL, 'keys': KEYS})
    assert not ended.failed, ended.result
    assert ended.result['changed'] and ended.result['all_unsealed']
    assert vault.paths('PUT') == ['sys/unseal', 'sys/unseal']
    assert_no_secret(ended.result, *KEYS)


def test_an_unsealed_node_is_left_alone(run_main, vault):
    vault.routes = {('GET', 'sys/seal-status'): (200, UNSEALED)}
    ended = run_main(vault_unseal.main, {'url': URL, 'keys': KEYS})
    assert not ended.failed and not ended.result['changed']
    assert vault.writes() == []


def test_check_mode_sends_no_key(run_main, vault):
    vault.routes = {('GET', 'sys/seal-status'): (200, SEALED)}
    ended = run_main(vault_unseal.main, {'url': URL, 'keys': KEYS}, check_mode=True, diff=True)
    assert not ended.failed and ended.result['changed']
    assert ended.result['diff'] == {'before': {URL: {'sealed': True}}, 'after': {URL: {'sealed': False}}}
    assert vault.writes() == []


def test_a_negative_wait_timeout_fails_naming_the_field_before_any_call(run_main, vault):
    ended = run_main(vault_unseal.main, {'url': URL, 'keys': KEYS, 'wait_timeout': -1})
    assert ended.failed and 'wait_timeout' in ended.result['msg']
    assert vault.calls == []


def test_a_page_instead_of_the_api_fails_naming_the_node(run_main, vault):
    vault.routes = {('GET', 'sys/seal-status'): (200, None)}
    ended = run_main(vault_unseal.main, {'url': URL, 'keys': KEYS})
    assert ended.failed and URL in ended.result['msg']
    assert_no_secret(ended.result, *KEYS)

"""vault_keyring_rotate through main(), with the Vault HTTP API scripted at the transport."""
import datetime

from ansible_collections.trustroot.ops.plugins.modules import vault_keyring_rotate

from ._vault_fake import UNSEALED, URL
from .conftest import assert_no_secret

TOKEN = 's.keyring-operator'
OLD = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=40)).strftime('%Y-%m-%dT%H:%M:%SZ')
NEW = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def routes(terms):
    return {('GET', 'sys/seal-status'): (200, UNSEALED),
            ('GET', 'sys/key-status'): [(200, {'data': {'term': term, 'install_time': when}}) for term, when in terms],
            ('PUT', 'sys/rotate/keyring'): (204, None)}


def test_a_key_older_than_min_age_is_rotated_on_openbao_s_path(run_main, vault):
    vault.routes = routes([(3, OLD), (4, NEW)])
    ended = run_main(vault_keyring_rotate.main, {'url': URL, 'token': TOKEN, 'min_age': '30d'})
    assert not ended.failed, ended.result
    assert ended.result['changed'] and ended.result['rotated']
    assert (ended.result['term_before'], ended.result['term']) == (3, 4)
    assert vault.writes() == [('PUT', 'sys/rotate/keyring')]
    assert_no_secret(ended.result, TOKEN)


def test_a_young_key_is_left_alone(run_main, vault):
    vault.routes = routes([(4, NEW)])
    ended = run_main(vault_keyring_rotate.main, {'url': URL, 'token': TOKEN, 'min_age': '30d'})
    assert not ended.failed and not ended.result['changed'] and ended.result['term'] == 4
    assert vault.writes() == []


def test_check_mode_shows_the_next_term_and_rotates_nothing(run_main, vault):
    vault.routes = routes([(3, OLD)])
    ended = run_main(vault_keyring_rotate.main, {'url': URL, 'token': TOKEN}, check_mode=True, diff=True)
    assert not ended.failed and ended.result['changed'] and not ended.result['rotated']
    assert ended.result['diff'] == {'before': {'term': 3}, 'after': {'term': 4}}
    assert vault.writes() == []


def test_a_bad_min_age_fails_naming_it_before_any_call(run_main, vault):
    ended = run_main(vault_keyring_rotate.main, {'url': URL, 'token': TOKEN, 'min_age': 'monthly'})
    assert ended.failed and ended.result['msg'].startswith('min_age ') and vault.calls == []


def test_a_key_status_of_the_wrong_shape_names_the_node(run_main, vault):
    vault.routes = routes([(3, OLD)])
    vault.routes[('GET', 'sys/key-status')] = (200, {'data': {'term': 'three'}})
    ended = run_main(vault_keyring_rotate.main, {'url': URL, 'token': TOKEN})
    assert ended.failed and ended.result['msg'].startswith(URL) and 'sys/key-status' in ended.result['msg']
    assert vault.writes() == []

"""vault_data_digest_info through main(), with a small cluster's content scripted at the HTTP transport."""
from ansible_collections.trustroot.ops.plugins.modules import vault_data_digest_info

from ._vault_fake import URL

TOKEN = 's.digest-reader'
SECRET = {'password': 'hunter2-do-not-show'}


def content(secret=None):
    secret = secret or SECRET
    return {('GET', 'sys/mounts'): (200, {'data': {'secret/': {'type': 'kv', 'options': {'version': '2'}},
                                                   'sys/': {'type': 'system'}}}),
            ('GET', 'sys/auth'): (200, {'data': {'token/': {'type': 'token'}}}),
            ('LIST', 'secret/metadata/'): (200, {'data': {'keys': ['app/']}}),
            ('LIST', 'secret/metadata/app/'): (200, {'data': {'keys': ['db']}}),
            ('GET', 'secret/data/app/db'): (200, {'data': {'data': secret, 'metadata': {'version': 1}}}),
            ('LIST', 'sys/policies/acl'): (200, {'data': {'keys': ['default', 'root']}}),
            ('GET', 'sys/policies/acl/default'): (200, {'data': {'name': 'default', 'policy': 'path "x" {}'}})}


def test_the_digest_counts_the_content_and_never_shows_it(run_main, vault):
    vault.routes = content()
    ended = run_main(vault_data_digest_info.main, {'url': URL, 'token': TOKEN})
    assert not ended.failed, ended.result
    assert not ended.result['changed'] and ended.result['leader'] == URL
    assert ended.result['kv_secrets'] == 1 and ended.result['policies'] == ['default', 'root']
    assert len(ended.result['kv_sha256']) == 64 and vault.writes() == []
    assert 'hunter2-do-not-show' not in str(ended.result) and TOKEN not in str(ended.result)


def test_a_changed_secret_changes_the_digest(run_main, vault):
    vault.routes = content()
    first = run_main(vault_data_digest_info.main, {'url': URL, 'token': TOKEN}).result
    vault.routes = content({'password': 'other'})
    second = run_main(vault_data_digest_info.main, {'url': URL, 'token': TOKEN}).result
    assert first['kv_sha256'] != second['kv_sha256'] and first['policies_sha256'] == second['policies_sha256']


def test_options_fail_naming_them_before_any_call(run_main, vault):
    ended = run_main(vault_data_digest_info.main, {'url': URL, 'kv_mounts': ['']})
    assert ended.failed and ended.result['msg'] == (
        'token is required to read the cluster\'s content (set token or VAULT_TOKEN); kv_mounts holds an empty mount path')
    assert vault.calls == []


def test_a_listing_of_the_wrong_shape_names_the_node_and_the_call(run_main, vault):
    vault.routes = content()
    vault.routes[('LIST', 'sys/policies/acl')] = (200, {'data': {'keys': 'default'}})
    ended = run_main(vault_data_digest_info.main, {'url': URL, 'token': TOKEN})
    assert ended.failed and ended.result['msg'].startswith('%s: LIST sys/policies/acl' % URL)

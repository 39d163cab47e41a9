"""vault_kubernetes_auth through main(), with the Vault HTTP API scripted at the transport."""
from ansible_collections.trustroot.ops.plugins.modules import vault_kubernetes_auth

from ._vault_fake import UNSEALED, URL
from .conftest import assert_no_secret

TOKEN = 's.k8s-auth-admin'
JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXZpZXdlciJ9.c2lnbmF0dXJl'
HOST = 'https://kubernetes.example.com:6443'
VAULT_STATUS = dict(UNSEALED, version='1.15.0')  # Vault: no kubernetes_ca_cert rule of OpenBao's
ARGS = {'url': URL, 'token': TOKEN, 'kubernetes_host': HOST}
SERVER_CONFIG = {'kubernetes_host': HOST, 'kubernetes_ca_cert': '', 'issuer': '', 'disable_iss_validation': True,
                 'pem_keys': [], 'disable_local_ca_jwt': True, 'token_reviewer_jwt_set': True}


def routes(mounts, config=None):
    return {('GET', 'sys/seal-status'): (200, VAULT_STATUS),
            ('GET', 'sys/auth'): (200, {'data': mounts}),
            ('GET', 'auth/kubernetes/config'): (200, {'data': config}) if config else (404, {'errors': []}),
            ('POST', 'sys/auth/kubernetes'): (204, None),
            ('POST', 'auth/kubernetes/config'): (204, None)}


def test_a_new_method_is_enabled_and_configured_with_the_jwt_never_returned(run_main, vault):
    vault.routes = routes({})
    vault.routes[('GET', 'sys/auth')] = [(200, {'data': {}}), (200, {'data': {'kubernetes/': {'type': 'kubernetes'}}})]
    vault.routes[('GET', 'auth/kubernetes/config')] = (200, {'data': SERVER_CONFIG})
    ended = run_main(vault_kubernetes_auth.main, dict(ARGS, token_reviewer_jwt=JWT))
    assert not ended.failed, ended.result
    assert [a['action'] for a in ended.result['actions']] == ['enable', 'configure']
    assert vault.writes() == [('POST', 'sys/auth/kubernetes'), ('POST', 'auth/kubernetes/config')]
    sent = [c['json'] for c in vault.calls if c['path'] == 'auth/kubernetes/config' and c['method'] == 'POST'][0]
    assert sent['token_reviewer_jwt'] == JWT and sent['kubernetes_host'] == HOST
    assert ended.result['token_reviewer_jwt_written'] and ended.result['enabled']
    assert_no_secret(ended.result, JWT, TOKEN)


def test_a_configured_method_changes_nothing(run_main, vault):
    vault.routes = routes({'kubernetes/': {'type': 'kubernetes'}}, dict(SERVER_CONFIG, token_reviewer_jwt_set=False))
    ended = run_main(vault_kubernetes_auth.main, ARGS)
    assert not ended.failed and ended.result['actions'] == [] and not ended.result['changed']
    assert vault.writes() == []


def test_check_mode_shows_the_diff_and_writes_nothing(run_main, vault):
    vault.routes = routes({'kubernetes/': {'type': 'kubernetes'}}, dict(SERVER_CONFIG, issuer='https://old', token_reviewer_jwt_set=False))
    ended = run_main(vault_kubernetes_auth.main, ARGS, check_mode=True, diff=True)
    assert not ended.failed and ended.result['changed']
    assert ended.result['diff']['before']['config']['issuer'] == 'https://old'
    assert ended.result['diff']['after']['config']['issuer'] == ''
    assert vault.writes() == []


def test_a_bad_host_fails_naming_the_field_before_any_call(run_main, vault):
    ended = run_main(vault_kubernetes_auth.main, dict(ARGS, kubernetes_host='kubernetes:6443'))
    assert ended.failed and ended.result['msg'].startswith('kubernetes_host must be an http:// or https:// address')
    assert vault.calls == []


def test_a_malformed_jwt_fails_without_showing_it(run_main, vault):
    ended = run_main(vault_kubernetes_auth.main, dict(ARGS, token_reviewer_jwt='not-a-jwt-secret'))
    assert ended.failed and 'token_reviewer_jwt must be a JSON Web Token' in ended.result['msg']
    assert_no_secret(ended.result, 'not-a-jwt-secret')
    assert vault.calls == []


def test_another_method_at_the_mount_is_never_replaced(run_main, vault):
    vault.routes = routes({'kubernetes/': {'type': 'approle'}})
    ended = run_main(vault_kubernetes_auth.main, ARGS)
    assert ended.failed and 'mount_point kubernetes is a approle auth method' in ended.result['msg']
    assert vault.writes() == []


def test_an_answer_of_the_wrong_shape_fails_naming_the_node(run_main, vault):
    vault.routes = routes({'kubernetes/': {'type': 'kubernetes'}}, dict(SERVER_CONFIG, kubernetes_host=7))
    ended = run_main(vault_kubernetes_auth.main, ARGS)
    assert ended.failed and ended.result['msg'].startswith(URL) and 'auth/kubernetes/config' in ended.result['msg']
    assert vault.writes() == []

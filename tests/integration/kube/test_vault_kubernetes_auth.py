"""vault_kubernetes_auth against a real OpenBao and a real Kubernetes API server: check mode changes nothing, the method
is configured with a reviewer service account bound to system:auth-delegator (made by kubernetes_access), a second
run changes nothing; a token bound to a pod of the bound service account logs in with exactly the role's policy and
reads what it allows and nothing more; another service account's token, and a token whose pod is gone, are refused;
the reviewer JWT never reaches the output at -vvvv; state=absent disables the method."""

from tests.lab.common import wait_for
from tests.lab.openbao import api, http, mount_kv

NS = 'vault-auth-app'
REVIEW_NS = 'vault-auth-review'
MOUNT = 'k8s'
AUDIENCE = 'vault'
APP_READ = 'path "secret/data/app/*" {\n  capabilities = ["read"]\n}\n'


def initialized(server):
    """Initialize and unseal a fresh single-node server; it comes back active, its root token set."""
    status, init = http('PUT', server.url + '/v1/sys/init', {'secret_shares': 1, 'secret_threshold': 1})
    assert status == 200, init
    http('PUT', server.url + '/v1/sys/unseal', {'key': init['keys'][0]})
    wait_for(lambda: http('GET', server.url + '/v1/sys/health', timeout=2)[0] == 200, timeout=30,
             what='the server to be active')
    server.token = init['root_token']
    return server


def login(server, jwt):
    return http('POST', '%s/v1/auth/%s/login' % (server.url, MOUNT), {'role': 'app', 'jwt': jwt})


def auth_methods(server):
    return api(server.url, server.token, 'GET', 'sys/auth')['data']


def test_pods_log_in_with_exactly_the_role_policy(ansible, bao_single, kube_cluster, tmp_path):
    kube = kube_cluster
    server = initialized(bao_single)
    mount_kv(server.url, server.token, 'secret')
    api(server.url, server.token, 'PUT', 'sys/policies/acl/app-read', {'policy': APP_READ})
    for path, value in (('app/config', 'app-value'), ('other/config', 'other-value')):
        api(server.url, server.token, 'POST', 'secret/data/' + path, {'data': {'value': value}})
    kube.node('vault-auth-node')
    kube.pod(NS, 'web', 'app', 'vault-auth-node')
    kube.pod(NS, 'intruder', 'intruder', 'vault-auth-node')
    # A pod of app that goes away before its token is ever used: that token is refused at once.
    kube.pod(NS, 'gone', 'app', 'vault-auth-node')
    gone_jwt = kube.token(NS, 'app', pod='gone', audience=AUDIENCE)
    kube.delete_pod(NS, 'gone')

    token_file = str(tmp_path / 'reviewer.jwt')
    reviewer = ('kubernetes_access', {
        'kubeconfig': kube.admin_kubeconfig, 'namespace': REVIEW_NS, 'service_account': 'vault-reviewer',
        'cluster_roles': ['system:auth-delegator'], 'token_dest': token_file})
    conn = {'url': server.url, 'token': server.token}

    def auth(renewed_from, **extra):
        args = dict(conn, mount_point=MOUNT, kubernetes_host=kube.url, kubernetes_ca_cert=kube.ca_pem.decode(),
                    token_reviewer_jwt="{{ lookup('file', '%s') }}" % token_file,
                    token_reviewer_jwt_update="{{ 'always' if %s.token_renewed else 'on_create' }}" % renewed_from,
                    roles=[{'name': 'app', 'bound_service_account_names': ['app'],
                            'bound_service_account_namespaces': [NS], 'audience': AUDIENCE,
                            'token_policies': ['app-read'], 'token_ttl': '1h'},
                           {'name': 'stale', 'bound_service_account_names': ['old'],
                            'bound_service_account_namespaces': [NS]}])
        args.update(extra)
        return ('vault_kubernetes_auth', args)

    app_only = [auth('r0')[1]['roles'][0]]
    closed = 'http://127.0.0.1:1'  # nothing listens: a refusal naming the field proves no call was made
    bad_role = dict(auth('r0')[1]['roles'][0])
    results, output = ansible.modules([
        reviewer,                                                              # r0: reviewer made, new token
        auth('r0') + ({'check_mode': True, 'diff': True},),                    # r1: check mode
        auth('r0') + ({'diff': True},),                                        # r2: applied (JWT: new token)
        reviewer,                                                              # r3: token kept
        auth('r3'),                                                            # r4: nothing to do
        auth('r3', roles=app_only, purge_roles=True),                          # r5: stale role purged
        auth('r3', url=closed, roles=[dict(bad_role, policies=['app-read'])]),  # r6: refused, nothing sent
    ], verbosity=4)
    access, checked, applied, kept, again, purged, unknown = results
    with open(token_file) as handle:
        reviewer_jwt = handle.read().strip()

    assert access['changed'] is True and access['token_renewed'] is True, access
    assert checked['changed'] is True and not checked.get('failed'), checked
    assert [(a['action'], a['target']) for a in checked['actions']] == [
        ('enable', 'auth method'), ('configure', 'config'), ('write', 'role app'), ('write', 'role stale')]
    assert checked['token_reviewer_jwt_written'] is True
    assert checked['diff']['before'] == {'enabled': False, 'config': None, 'roles': {}}
    assert checked['diff']['after']['config']['token_reviewer_jwt_set'] is True
    # What the applied run found is what check mode left: nothing.
    assert applied['diff']['before'] == {'enabled': False, 'config': None, 'roles': {}}, applied['diff']['before']
    assert applied['changed'] is True and applied['token_reviewer_jwt_written'] is True, applied
    assert applied['config']['kubernetes_host'] == kube.url and applied['config']['disable_local_ca_jwt'] is True
    assert applied['config']['token_reviewer_jwt_set'] is True  # read back from the server after the run
    assert applied['roles']['app']['token_policies'] == ['app-read'] and applied['roles']['app']['token_ttl'] == 3600
    assert applied['diff']['after']['roles']['stale']['bound_service_account_names'] == ['old']
    assert kept['token_renewed'] is False, kept
    assert again['changed'] is False and again['actions'] == [] and again['token_reviewer_jwt_written'] is False, again
    assert [(a['action'], a['target']) for a in purged['actions']] == [('delete', 'role stale')], purged
    assert sorted(purged['roles']) == ['app']
    # Refused before any call: the url is closed, yet the message is about the field (unit tests cover the others).
    assert unknown['failed'] is True and unknown['msg'].startswith('roles[0]: unknown field policies'), unknown
    assert reviewer_jwt.count('.') == 2 and reviewer_jwt not in output
    assert 'token_reviewer_jwt_set' in output  # the output is the verbose one that would show it
    assert sorted(m for m in auth_methods(server) if m.startswith(MOUNT)) == [MOUNT + '/']
    roles = api(server.url, server.token, 'LIST', 'auth/%s/role' % MOUNT)['data']['keys']
    assert roles == ['app']

    # A token bound to a pod of app, for the role's audience: exactly app-read (and default), reads only app/*.
    web_jwt = kube.token(NS, 'app', pod='web', audience=AUDIENCE)
    status, body = login(server, web_jwt)
    assert status == 200, body
    assert body['auth']['token_policies'] == ['app-read', 'default'], body['auth']
    assert body['auth']['metadata']['service_account_name'] == 'app'
    client = body['auth']['client_token']
    status, secret = http('GET', server.url + '/v1/secret/data/app/config', token=client)
    assert status == 200 and secret['data']['data'] == {'value': 'app-value'}, secret
    assert http('GET', server.url + '/v1/secret/data/other/config', token=client)[0] == 403
    assert http('POST', server.url + '/v1/secret/data/app/config', {'data': {'value': 'x'}}, token=client)[0] == 403
    assert http('GET', server.url + '/v1/sys/auth', token=client)[0] == 403

    # Another service account of the same namespace, with a valid bound token: refused.
    status, body = login(server, kube.token(NS, 'intruder', pod='intruder', audience=AUDIENCE))
    assert status == 403 and body['errors'] == ['service account name not authorized'], (status, body)

    # Pods deleted: a token never used is refused at once; the web pod's token, which just logged in, once the API
    # server's token review cache (~10 s) lets it go.
    kube.delete_pod(NS, 'web')
    assert login(server, gone_jwt) == (403, {'errors': ['permission denied']})
    wait_for(lambda: login(server, web_jwt)[0] == 403, timeout=30, interval=1,
             what='the token of the deleted web pod refused')
    assert login(server, web_jwt) == (403, {'errors': ['permission denied']})

    # Disabled: check mode first, then for real, then nothing left to do.
    absent = ('vault_kubernetes_auth', dict(conn, mount_point=MOUNT, state='absent'))
    (planned, disabled, gone), _output = ansible.modules([
        (absent[0], absent[1], {'check_mode': True}), absent, absent])
    assert planned['changed'] is True and [a['action'] for a in planned['actions']] == ['disable'], planned
    assert disabled['changed'] is True and gone['changed'] is False, (disabled, gone)
    assert MOUNT + '/' not in auth_methods(server)

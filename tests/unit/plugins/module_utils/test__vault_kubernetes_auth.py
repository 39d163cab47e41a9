import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._vault import shape_problem
from ansible_collections.trustroot.ops.plugins.module_utils._vault_kubernetes_auth import (
    CONFIG, ROLE, ROLE_LIST, KubernetesAuthError, check_jwt, check_mount, config_payload, current_config,
    current_role, normalize_config, normalize_roles, parse_duration, plan, role_payload, state_after)

CA = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n'
JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl'
# auth/<mount>/config and auth/<mount>/role/<name> answers' data as OpenBao 2.7.2 gives them.
CONFIG_ANSWER = {'disable_iss_validation': True, 'disable_local_ca_jwt': True, 'issuer': '',
                 'kubernetes_ca_cert': CA.strip(), 'kubernetes_host': 'https://10.0.0.1:6443', 'pem_keys': [],
                 'token_reviewer_jwt_set': True}
ROLE_ANSWER = {'alias_name_source': 'serviceaccount_uid', 'audience': 'vault', 'bound_service_account_names': ['app'],
               'bound_service_account_namespace_selector': '', 'bound_service_account_namespaces': ['shop'],
               'token_bound_cidrs': [], 'token_explicit_max_ttl': 0, 'token_max_ttl': 0,
               'token_no_default_policy': False, 'token_num_uses': 0, 'token_period': 0,
               'token_policies': ['app-read'], 'token_strictly_bind_ip': False, 'token_ttl': 3600,
               'token_type': 'default'}


def config(**fields):
    params = dict(kubernetes_host='https://10.0.0.1:6443', kubernetes_ca_cert=CA, disable_local_ca_jwt=True)
    params.update(fields)
    return normalize_config(params)


def role(**fields):
    base = dict(name='app', bound_service_account_names=['app'], bound_service_account_namespaces=['shop'],
                audience='vault', token_policies=['app-read'], token_ttl='1h')
    base.update(fields)
    return normalize_roles([base])


def run_plan(desired_roles=None, current_cfg='same', roles='same', jwt=True, update='on_create', purge=False,
             names=(), enabled=True, desired_config=None, state='present'):
    current_cfg = current_config(CONFIG_ANSWER) if current_cfg == 'same' else current_cfg
    roles = {'app': current_role(ROLE_ANSWER)} if roles == 'same' else roles
    return plan(state, enabled, desired_config or config(), jwt, update, current_cfg,
                role() if desired_roles is None else desired_roles, roles, list(names), purge)


# --- plan --------------------------------------------------------------------------------------------------


def test_matching_server_plans_nothing():
    assert run_plan() == []


def test_nothing_there_enables_configures_and_writes_the_role():
    actions = run_plan(current_cfg=None, roles={}, enabled=False)
    assert [(a['action'], a['target']) for a in actions] == [
        ('enable', 'auth method'), ('configure', 'config'), ('write', 'role app')]


def test_jwt_written_when_the_server_has_none_or_always():
    missing = current_config(dict(CONFIG_ANSWER, token_reviewer_jwt_set=False))
    assert [a['reason'] for a in run_plan(current_cfg=missing)] == ['the server has no token_reviewer_jwt']
    assert [a['reason'] for a in run_plan(update='always')] == ['token_reviewer_jwt_update is always']


def test_no_jwt_given_and_server_has_one_reconfigures():
    assert [a['reason'] for a in run_plan(jwt=False)] == ['the server has a token_reviewer_jwt and the task gives none']
    unset = current_config(dict(CONFIG_ANSWER, token_reviewer_jwt_set=False))
    assert run_plan(jwt=False, current_cfg=unset) == []


def test_config_fields_left_out_are_compared_with_server_defaults():
    with_issuer = current_config(dict(CONFIG_ANSWER, issuer='https://kubernetes.default.svc'))
    assert [a['reason'] for a in run_plan(current_cfg=with_issuer)] == ['issuer differs']
    assert run_plan(desired_config=config(issuer='https://kubernetes.default.svc'), current_cfg=with_issuer) == []
    changed = run_plan(desired_config=config(kubernetes_host='https://10.0.0.2:6443', disable_iss_validation=False))
    assert changed[0]['reason'] == 'kubernetes_host, disable_iss_validation differ'


def test_pem_compared_without_trailing_white_space():
    assert run_plan(desired_config=config(kubernetes_ca_cert='\n' + CA + '\n\n')) == []


def test_role_fields_not_given_are_not_compared_and_lists_are_sets():
    assert run_plan(desired_roles=normalize_roles([dict(
        name='app', bound_service_account_names=['app', 'app'], bound_service_account_namespaces=['shop'])])) == []
    changed = run_plan(desired_roles=role(token_policies=['app-read', 'other'], token_ttl=7200))
    assert [(a['target'], a['reason']) for a in changed] == [('role app', 'token_policies, token_ttl differ')]


def test_role_absent_and_purge():
    absent = normalize_roles([dict(name='app', state='absent')])
    assert [(a['action'], a['target']) for a in run_plan(desired_roles=absent)] == [('delete', 'role app')]
    assert run_plan(desired_roles=absent, roles={}) == []
    purged = run_plan(purge=True, names=['app', 'old', 'legacy'])
    assert [(a['action'], a['target'], a['reason']) for a in purged] == [
        ('delete', 'role legacy', 'not in roles (purge_roles)'), ('delete', 'role old', 'not in roles (purge_roles)')]
    assert [a['target'] for a in run_plan(purge=False, names=['app', 'old'])] == []


def test_state_absent_disables_only_an_enabled_method():
    assert run_plan(state='absent', desired_roles=[]) == [
        dict(action='disable', target='auth method', reason='state is absent')]
    assert run_plan(state='absent', enabled=False, desired_roles=[]) == []


# --- what is sent, and the diff -----------------------------------------------------------------------------


def test_config_payload_has_every_field_and_the_jwt_only_when_given():
    payload = config_payload(config(), JWT)
    assert payload['token_reviewer_jwt'] == JWT and payload['disable_local_ca_jwt'] is True
    assert payload['issuer'] == '' and payload['pem_keys'] == [] and payload['disable_iss_validation'] is True
    assert 'token_reviewer_jwt' not in config_payload(config(), None)


def test_role_payload_sends_only_given_fields_with_durations_in_seconds():
    assert role_payload(role()[0]) == dict(bound_service_account_names=['app'], bound_service_account_namespaces=[
        'shop'], audience='vault', token_policies=['app-read'], token_ttl=3600)


def test_state_after_never_holds_the_jwt():
    current = current_config(dict(CONFIG_ANSWER, token_reviewer_jwt_set=False))
    actions = run_plan(current_cfg=current, desired_roles=role(token_ttl=60), roles={})
    after = state_after('present', True, current, {}, actions, config(), JWT, role(token_ttl=60))
    assert after['config']['token_reviewer_jwt_set'] is True and JWT not in repr(after)
    assert after['roles']['app']['token_ttl'] == 60 and after['roles']['app']['alias_name_source'] == ''
    assert state_after('absent', True, current, {}, [], None, None, []) == dict(enabled=False, config=None, roles={})


# --- input checks --------------------------------------------------------------------------------------------


@pytest.mark.parametrize('roles, message', [
    ([dict(name='app', policies=['x'], bound_service_account_names=['a'])], 'roles[0]: unknown field policies'),
    ([dict(name='', bound_service_account_names=['a'])], 'roles[0].name must be a non-empty string'),
    ([dict(bound_service_account_names=['a'])], 'roles[0].name must be a non-empty string'),
    ([dict(name='a b')], 'roles[0].name must be letters'),
    ([dict(name='app', bound_service_account_names=['a'], bound_service_account_namespaces=['n'],
           token_policies='app-read')], 'roles[0] (app).token_policies must be a list of strings'),
    ([dict(name='app', bound_service_account_names=['a'], bound_service_account_namespaces=['n'],
           token_policies=['']), ], 'roles[0] (app).token_policies must not contain empty strings'),
    ([dict(name='app', bound_service_account_namespaces=['n'])], 'roles[0] (app).bound_service_account_names is required'),
    ([dict(name='app', bound_service_account_names=['a'])], 'roles[0] (app).bound_service_account_namespaces'),
    ([dict(name='app', bound_service_account_names=['a'], bound_service_account_namespaces=['n'], token_ttl='1y')],
     'roles[0] (app).token_ttl must be a number of seconds or a duration'),
    ([dict(name='app', bound_service_account_names=['a'], bound_service_account_namespaces=['n'], token_ttl='2h',
           token_max_ttl='1h')], 'roles[0] (app).token_ttl (7200s) must not be more than token_max_ttl (3600s)'),
    ([dict(name='app', bound_service_account_names=['a'], bound_service_account_namespaces=['n'],
           alias_name_source='uid')], 'roles[0] (app).alias_name_source must be one of'),
    ([dict(name='app', bound_service_account_names=['a'], bound_service_account_namespaces=['n'],
           token_no_default_policy='yes')], 'roles[0] (app).token_no_default_policy must be a boolean'),
    ([dict(name='app', bound_service_account_names=['a'], bound_service_account_namespaces=['n'], token_num_uses=True)],
     'roles[0] (app).token_num_uses must be a number'),
    ([dict(name='a', state='absent'), dict(name='a', state='absent')], 'roles[1].name a is given twice'),
    (['app'], 'roles[0] must be a dictionary'),
    ('app', 'roles must be a list'),
])
def test_bad_roles_name_the_field(roles, message):
    with pytest.raises(KubernetesAuthError) as caught:
        normalize_roles(roles)
    assert message in str(caught.value)


def test_templated_numbers_arrive_as_strings():
    [parsed] = role(token_num_uses='5', token_ttl='3600')
    assert parsed['fields']['token_num_uses'] == 5 and parsed['fields']['token_ttl'] == 3600


def test_absent_role_needs_only_a_name():
    assert normalize_roles([dict(name='old', state='absent')]) == [dict(name='old', state='absent', fields={})]


@pytest.mark.parametrize('value, seconds', [(0, 0), (90, 90), ('90', 90), ('90s', 90), ('30m', 1800), ('1h', 3600),
                                            ('1h30m', 5400), ('2d', 172800)])
def test_durations(value, seconds):
    assert parse_duration(value, 'x') == seconds


@pytest.mark.parametrize('value', [True, -1, '1.5h', 'h', '', None, [1]])
def test_bad_durations(value):
    with pytest.raises(KubernetesAuthError):
        parse_duration(value, 'token_ttl')


@pytest.mark.parametrize('params, message', [
    (dict(kubernetes_host=None), 'kubernetes_host is required'),
    (dict(kubernetes_host='10.0.0.1:6443'), 'kubernetes_host must be an http:// or https:// address'),
    (dict(kubernetes_host='https://k', kubernetes_ca_cert='/etc/ca.crt'), 'kubernetes_ca_cert must be PEM'),
    (dict(kubernetes_host='https://k', pem_keys=['not a key']), 'pem_keys must be a list of PEM public keys'),
])
def test_bad_config_names_the_field(params, message):
    with pytest.raises(KubernetesAuthError) as caught:
        normalize_config(params)
    assert message in str(caught.value)


@pytest.mark.parametrize('jwt', ['', 'abc', 'a.b', 'a.b.c d', 12])
def test_bad_jwt_is_refused_without_showing_it(jwt):
    with pytest.raises(KubernetesAuthError) as caught:
        check_jwt(jwt)
    assert 'token_reviewer_jwt must be a JSON Web Token' in str(caught.value)
    if isinstance(jwt, str) and jwt:
        assert jwt not in str(caught.value)


def test_jwt_accepted_and_stripped():
    assert check_jwt(' %s\n' % JWT) == JWT and check_jwt(None) is None


@pytest.mark.parametrize('mount, expected', [('kubernetes', 'kubernetes'), ('/k8s/prod/', 'k8s/prod')])
def test_mount(mount, expected):
    assert check_mount(mount) == expected


@pytest.mark.parametrize('mount', ['', '/', 'a b', '../x', 'a//b'])
def test_bad_mount(mount):
    with pytest.raises(KubernetesAuthError) as caught:
        check_mount(mount)
    assert 'mount_point' in str(caught.value)


# --- answer shapes -------------------------------------------------------------------------------------------


def test_real_answers_follow_the_shapes():
    assert shape_problem(CONFIG_ANSWER, CONFIG) is None
    assert shape_problem(ROLE_ANSWER, ROLE) is None
    assert shape_problem(dict(ROLE_ANSWER, audience=None), ROLE) is None  # a role without an audience
    assert shape_problem({'keys': ['app', 'old']}, ROLE_LIST) is None


@pytest.mark.parametrize('answer, shape, problem', [
    ('<html>', CONFIG, 'a string instead of a JSON object'),
    (dict(CONFIG_ANSWER, kubernetes_host=None), CONFIG, '"kubernetes_host" is null'),
    (dict((k, v) for k, v in CONFIG_ANSWER.items() if k != 'token_reviewer_jwt_set'), CONFIG,
     'no "token_reviewer_jwt_set" field'),
    (dict(CONFIG_ANSWER, token_reviewer_jwt_set='true'), CONFIG, '"token_reviewer_jwt_set" is a string, not a boolean'),
    (dict(CONFIG_ANSWER, pem_keys='x'), CONFIG, '"pem_keys" is a string, not a list'),
    (dict(ROLE_ANSWER, token_policies='app-read'), ROLE, '"token_policies" is a string, not a list'),
    (dict(ROLE_ANSWER, token_ttl='1h'), ROLE, '"token_ttl" is a string, not a number'),
    (dict(ROLE_ANSWER, token_ttl=True), ROLE, '"token_ttl" is a boolean, not a number'),
    (dict(ROLE_ANSWER, bound_service_account_names=[1]), ROLE, '"bound_service_account_names[0]" is a number'),
    ({'keys': 'app'}, ROLE_LIST, '"keys" is a string, not a list'),
])
def test_unexpected_answers_are_named(answer, shape, problem):
    assert problem in shape_problem(answer, shape)


def test_roles_written_before_a_field_existed_read_as_defaults():
    old = dict((k, v) for k, v in ROLE_ANSWER.items() if k not in ('audience', 'token_type'))
    current = current_role(old)
    assert current['audience'] == '' and current['token_type'] == ''

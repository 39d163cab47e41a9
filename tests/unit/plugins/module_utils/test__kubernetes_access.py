"""Unit tests for the pure parts of kubernetes_access and the shared Kubernetes helpers."""

import base64
import json

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._kubernetes import (
    KubernetesError, api_error_text, encode_data, jwt_claims)
from ansible_collections.trustroot.ops.plugins.module_utils._kubernetes_access import (
    AccessInputError, desired_objects, kubeconfig_document, normalize_rules, plan_changes, token_from_kubeconfig,
    token_status, token_times)

SUBJECT = 'system:serviceaccount:spire:spire-server'


def params(**extra):
    base = {'namespace': 'spire', 'service_account': 'spire-server', 'name': None, 'cluster_rules': [],
            'namespace_rules': [], 'cluster_roles': [], 'config_maps': [], 'token_ttl': 3600, 'token_renew_before': None}
    base.update(extra)
    return base


def b64url_json(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip('=')


def jwt(claims):
    return '%s.%s.sig' % (b64url_json({'alg': 'RS256'}), b64url_json(claims))


def claims(**extra):
    base = {'sub': SUBJECT, 'aud': ['https://kubernetes.default.svc'], 'exp': 10000,
            'kubernetes.io': {'serviceaccount': {'name': 'spire-server', 'uid': 'uid-1'}}}
    base.update(extra)
    return base


def test_rules_are_normalized_and_checked():
    assert normalize_rules([{'resources': ['pods', 'nodes', 'pods'], 'verbs': ['get']}], 'cluster_rules') == [
        {'apiGroups': [''], 'resources': ['nodes', 'pods'], 'verbs': ['get']}]
    assert normalize_rules([{'resources': ['configmaps'], 'verbs': ['patch', 'get'], 'resource_names': ['b']}], 'x') == [
        {'apiGroups': [''], 'resources': ['configmaps'], 'verbs': ['get', 'patch'], 'resourceNames': ['b']}]


@pytest.mark.parametrize('rule, message', [
    ({'resources': ['pods'], 'verb': ['get']}, 'cluster_rules[0]: unknown field(s) verb'),
    ({'resources': ['pods'], 'verbs': []}, 'cluster_rules[0].verbs must not be empty'),
    ({'resources': 'pods', 'verbs': ['get']}, 'cluster_rules[0].resources must be a list of strings'),
    ('pods', 'cluster_rules[0] must be a dict'),
])
def test_bad_rules_name_the_field(rule, message):
    with pytest.raises(AccessInputError, match=message.replace('[', r'\[').replace(']', r'\]').replace('(', r'\(')
                       .replace(')', r'\)').replace('.', r'\.')):
        desired_objects(params(cluster_rules=[rule]))


def test_desired_objects_cover_roles_bindings_and_config_maps():
    objects = desired_objects(params(
        cluster_rules=[{'resources': ['pods'], 'verbs': ['get']}],
        namespace_rules=[{'namespace': 'spire', 'rules': [{'resources': ['configmaps'], 'verbs': ['get']}]}],
        cluster_roles=['system:auth-delegator'], config_maps=[{'namespace': 'spire', 'name': 'spire-bundle'}]))
    subject = {'kind': 'ServiceAccount', 'name': 'spire-server', 'namespace': 'spire'}
    assert sorted(objects) == sorted([
        ('ServiceAccount', 'spire', 'spire-server'), ('ClusterRole', None, 'trustroot:spire:spire-server'),
        ('ClusterRoleBinding', None, 'trustroot:spire:spire-server'), ('Role', 'spire', 'trustroot:spire:spire-server'),
        ('RoleBinding', 'spire', 'trustroot:spire:spire-server'),
        ('ClusterRoleBinding', None, 'trustroot:spire:spire-server:system:auth-delegator'),
        ('ConfigMap', 'spire', 'spire-bundle')])
    assert objects[('ClusterRoleBinding', None, 'trustroot:spire:spire-server:system:auth-delegator')] == {
        'role': ('ClusterRole', 'system:auth-delegator'), 'subject': subject}


@pytest.mark.parametrize('entry, message', [
    ({'namespace': '', 'rules': []}, r'namespace_rules\[0\]\.namespace must be a non-empty string'),
    ({'namespace': 'a', 'rules': []}, r'namespace_rules\[0\]\.rules must not be empty'),
    ({'namespace': 'a', 'rules': [], 'extra': 1}, r'unknown field\(s\) extra'),
])
def test_bad_namespace_rules(entry, message):
    with pytest.raises(AccessInputError, match=message):
        desired_objects(params(namespace_rules=[entry]))


def test_bad_config_map_and_token_times():
    with pytest.raises(AccessInputError, match=r'config_maps\[0\] must be a dict with exactly namespace and name'):
        desired_objects(params(config_maps=[{'name': 'x'}]))
    with pytest.raises(AccessInputError, match='token_ttl must be at least 600'):
        token_times(params(token_ttl=60))
    with pytest.raises(AccessInputError, match='token_renew_before'):
        token_times(params(token_renew_before=3600))
    assert token_times(params()) == (3600, 1200)


def test_plan_creates_missing_and_updates_only_what_differs():
    desired = desired_objects(params(cluster_rules=[{'resources': ['pods'], 'verbs': ['get', 'list']}]))
    current = {('ServiceAccount', 'spire', 'spire-server'): None,
               ('ClusterRole', None, 'trustroot:spire:spire-server'): [
                   {'apiGroups': [''], 'resources': ['pods'], 'verbs': ['get']}]}
    assert plan_changes(desired, current) == [
        ('update', ('ClusterRole', None, 'trustroot:spire:spire-server')),
        ('create', ('ClusterRoleBinding', None, 'trustroot:spire:spire-server'))]
    current[('ClusterRole', None, 'trustroot:spire:spire-server')] = desired[('ClusterRole', None, 'trustroot:spire:spire-server')]
    current[('ClusterRoleBinding', None, 'trustroot:spire:spire-server')] = dict(
        desired[('ClusterRoleBinding', None, 'trustroot:spire:spire-server')])
    assert plan_changes(desired, current) == []


@pytest.mark.parametrize('token, uid, audiences, server_on_disk, reason', [
    (None, 'uid-1', [], 'https://a', 'no token yet'),
    (jwt(claims()), 'uid-1', [], 'https://b', 'the API server address changed'),
    ('not-a-jwt', 'uid-1', [], 'https://a', 'the token on disk is unreadable'),
    (jwt(claims(sub='system:serviceaccount:x:y')), 'uid-1', [], 'https://a', 'the token is for system:serviceaccount:x:y'),
    (jwt(claims()), 'uid-2', [], 'https://a', 'the ServiceAccount was re-created'),
    (jwt(claims()), 'uid-1', ['vault'], 'https://a', 'the audiences changed'),
    (jwt(claims(exp=None)), 'uid-1', [], 'https://a', 'the token has no expiry'),
    (jwt(claims(exp=1500)), 'uid-1', [], 'https://a', 'the token expires within 600 s'),
    (jwt(claims(exp=1700)), 'uid-1', [], 'https://a', None),
])
def test_token_status(token, uid, audiences, server_on_disk, reason):
    status = token_status(token, SUBJECT, uid, audiences, 'https://a', server_on_disk, 600, now=1000)
    if reason is None:
        assert status is None
    else:
        assert status is not None and status.startswith(reason), status


def test_kubeconfig_round_trip_and_jwt_claims():
    document = kubeconfig_document('https://10.0.0.1:6443', b'PEM', 'a.b.c', 'spire-server')
    assert token_from_kubeconfig(document) == ('a.b.c', 'https://10.0.0.1:6443')
    assert document['clusters'][0]['cluster']['certificate-authority-data'] == base64.b64encode(b'PEM').decode()
    assert token_from_kubeconfig({'users': []}) == (None, None)
    assert jwt_claims(jwt({'sub': 'x'})) == {'sub': 'x'}
    with pytest.raises(KubernetesError, match='not a JWT'):
        jwt_claims('a.b')
    with pytest.raises(KubernetesError, match='not base64url JSON'):
        jwt_claims('a.!!!.c')
    assert encode_data({'k': b'v', 's': 'w'}) == {'k': 'dg==', 's': 'dw=='}


def test_api_error_text_prefers_the_status_message():
    class Exc(object):
        status, reason = 403, 'Forbidden'
        body = json.dumps({'kind': 'Status', 'message': 'configmaps "x" is forbidden'})
    assert api_error_text(Exc()) == 'HTTP 403 Forbidden: configmaps "x" is forbidden'
    Exc.body = 'plain text'
    assert api_error_text(Exc()) == 'HTTP 403 Forbidden: plain text'

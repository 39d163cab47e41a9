"""kubernetes_access against a real API server: the ServiceAccount, RBAC and ConfigMap it makes, and a kubeconfig that
grants exactly the listed rules; check mode, idempotency, token renewal, absent."""

import os
import stat

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

NS = 'access-spire'


def spire_server_access(kube, dest, **extra):
    args = {
        'kubeconfig': kube.admin_kubeconfig, 'namespace': NS, 'service_account': 'spire-server',
        'cluster_rules': [{'api_groups': ['authentication.k8s.io'], 'resources': ['tokenreviews'], 'verbs': ['create']},
                          {'resources': ['pods', 'nodes'], 'verbs': ['get']}],
        'namespace_rules': [{'namespace': NS, 'rules': [
            {'resources': ['configmaps'], 'resource_names': ['spire-bundle'], 'verbs': ['get', 'patch']}]}],
        'config_maps': [{'namespace': NS, 'name': 'spire-bundle'}],
        'kubeconfig_dest': dest,
    }
    args.update(extra)
    return ('kubernetes_access', args)


def kubeconfig_token(path):
    with open(path) as handle:
        [user] = yaml.safe_load(handle)['users']
    return user['user']['token']


def forbidden(call, *args):
    with pytest.raises(ApiException) as caught:
        call(*args)
    return caught.value.status == 403


def test_access_is_exactly_the_rules_and_converges(kube_cluster, ansible, tmp_path):
    kube = kube_cluster
    dest = str(tmp_path / 'spire-server.kubeconfig')
    core = kube.core()

    # Check mode plans everything and creates nothing; a bad rule is refused naming the field, before any call.
    bad = spire_server_access(kube, dest, cluster_rules=[{'resources': ['pods'], 'verb': ['get']}])
    (planned, refused), _out = ansible.modules([spire_server_access(kube, dest), bad], check=True, diff=True)
    assert planned['changed'] is True and planned['token_renewed'] is True, planned
    assert 'create ServiceAccount %s/spire-server' % NS in planned['actions'], planned['actions']
    assert 'create ClusterRole trustroot:%s:spire-server' % NS in planned['actions']
    assert 'create ConfigMap %s/spire-bundle' % NS in planned['actions']
    assert refused['failed'] and "cluster_rules[0]: unknown field(s) verb" in refused['msg'], refused
    assert NS not in [item.metadata.name for item in core.list_namespace().items]
    assert not os.path.exists(dest)

    # Apply, at -vvvv: the token never reaches the output.
    applied = ansible.module(*spire_server_access(kube, dest), verbosity=4)
    assert applied['changed'] is True and applied['token_renewed'] is True, applied
    assert applied['service_account']['uid'] == core.read_namespaced_service_account('spire-server', NS).metadata.uid
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    scoped = config.new_client_from_config(config_file=dest)
    token = kubeconfig_token(dest)
    assert token not in applied['_stdout'] and token not in ansible.runs[-1].stderr

    # The kubeconfig can do what a SPIRE server needs, and nothing else.
    node_uid = kube.node('access-node')
    kube.pod(NS, 'agent', 'agent', 'access-node')
    scoped_core = client.CoreV1Api(scoped)
    assert scoped_core.read_node('access-node').metadata.uid == node_uid
    assert scoped_core.read_namespaced_pod('agent', NS).spec.node_name == 'access-node'
    review = client.AuthenticationV1Api(scoped).create_token_review({'spec': {'token': kube.token(NS, 'agent')}})
    assert review.status.authenticated is True
    scoped_core.patch_namespaced_config_map('spire-bundle', NS, {'data': {'bundle.crt': 'x'}})
    kube.core().create_namespaced_config_map(NS, {'metadata': {'name': 'other'}})
    assert forbidden(scoped_core.patch_namespaced_config_map, 'other', NS, {'data': {'a': 'b'}})
    assert forbidden(scoped_core.list_namespaced_secret, NS)
    assert forbidden(scoped_core.list_pod_for_all_namespaces)
    assert forbidden(scoped_core.delete_namespaced_pod, 'agent', NS)

    # Same input: nothing changes, the token is kept and the ConfigMap's data is left alone. A shorter renewal
    # window renews; a changed rule updates the ClusterRole in place.
    widened = spire_server_access(kube, dest, cluster_rules=[
        {'api_groups': ['authentication.k8s.io'], 'resources': ['tokenreviews'], 'verbs': ['create']},
        {'resources': ['pods', 'nodes'], 'verbs': ['get', 'list']}])
    (again, renew, update), _out = ansible.modules([
        spire_server_access(kube, dest), spire_server_access(kube, dest, token_renew_before=2592000 - 1), widened],
        diff=True)
    assert again['changed'] is False and again['token_renewed'] is False and again['actions'] == [], again
    assert renew['changed'] is True and renew['token_renewed'] is True
    assert renew['actions'] == ['renew the token: the token expires within 2591999 s'], renew['actions']
    assert update['actions'] == ['update ClusterRole trustroot:%s:spire-server' % NS], update['actions']
    assert update['diff']['after']['ClusterRole trustroot:%s:spire-server' % NS][1]['verbs'] == ['get', 'list']
    assert core.read_namespaced_config_map('spire-bundle', NS).data == {'bundle.crt': 'x'}
    assert kubeconfig_token(dest) != token
    assert len(client.CoreV1Api(config.new_client_from_config(config_file=dest)).list_namespaced_pod(NS).items) == 1

    # absent: the bindings, roles, ServiceAccount and file go; the ConfigMap stays.
    gone = ansible.module(*spire_server_access(kube, dest, state='absent'))
    assert gone['changed'] is True and 'delete ClusterRoleBinding trustroot:%s:spire-server' % NS in gone['actions']
    assert not os.path.exists(dest)
    with pytest.raises(ApiException):
        core.read_namespaced_service_account('spire-server', NS)
    with pytest.raises(ApiException):
        client.RbacAuthorizationV1Api(kube.api).read_cluster_role('trustroot:%s:spire-server' % NS)
    assert core.read_namespaced_config_map('spire-bundle', NS).data == {'bundle.crt': 'x'}
    assert ansible.module(*spire_server_access(kube, dest, state='absent'))['changed'] is False

"""The test bed itself: a real API server that authenticates bound tokens and refuses them once their pod is gone."""

from tests.lab.common import wait_for


def review(kube, token):
    from kubernetes import client
    body = {'spec': {'token': token, 'audiences': ['spire-server']}}
    return client.AuthenticationV1Api(kube.api).create_token_review(body).status


def test_bound_token_names_pod_and_node_until_the_pod_is_deleted(kube_cluster):
    kube = kube_cluster
    node_uid = kube.node('bed-node-1')
    pod_uid = kube.pod('test-bed', 'agent', 'agent', 'bed-node-1')
    token = kube.token('test-bed', 'agent', pod='agent', audience='spire-server')

    status = review(kube, token)
    assert status.authenticated is True, status
    assert status.user.username == 'system:serviceaccount:test-bed:agent'
    extra = status.user.extra or {}
    assert extra.get('authentication.kubernetes.io/pod-uid') == [pod_uid]
    assert extra.get('authentication.kubernetes.io/node-name') == ['bed-node-1']
    assert extra.get('authentication.kubernetes.io/node-uid') == [node_uid]

    kube.delete_pod('test-bed', 'agent')
    # The authenticator reads pods through the API server's informer cache: the deletion reaches it shortly after.
    wait_for(lambda: not review(kube, token).authenticated, timeout=30, what='the bound token refused')
    assert kube.core().list_namespaced_pod('test-bed').items == []

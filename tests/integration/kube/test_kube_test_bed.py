"""The test bed itself: a real API server whose bound tokens name their pod and node when reviewed."""


def review(kube, token):
    from kubernetes import client
    body = {'spec': {'token': token, 'audiences': ['spire-server']}}
    return client.AuthenticationV1Api(kube.api).create_token_review(body).status


def test_bound_token_names_its_pod_and_node(kube_cluster):
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
    # Tokens bound to a deleted pod are refused: proven where it matters, by SPIRE's k8s_psat and Vault's
    # Kubernetes auth (tests/integration/kube/test_spire_k8s_psat.py, test_vault_kubernetes_auth.py).

"""vault_status_info against real OpenBao servers."""


def test_uninitialized_single_node(ansible, bao_single):
    result = ansible.module('vault_status_info', {'url': bao_single.url})
    assert not result.get('failed'), result
    assert result['changed'] is False
    node = result['nodes'][0]
    assert node['reachable'] and node['flavour'] == 'openbao'
    assert node['initialized'] is False and node['state'] == 'uninitialized'
    assert result['all_initialized'] is False


def test_sealed_cluster_then_unsealed_with_peers(ansible, bao_cluster):
    sealed = ansible.module('vault_status_info', {'nodes': bao_cluster.urls})
    assert sealed['sealed_nodes'] == bao_cluster.urls
    assert [n['threshold'] for n in sealed['nodes']] == [2, 2, 2]
    assert sealed['leader'] is None

    bao_cluster.unseal_all()
    unsealed = ansible.module('vault_status_info', {'nodes': bao_cluster.urls, 'token': bao_cluster.root_token})
    assert unsealed['all_unsealed'] is True
    assert unsealed['leader'] in bao_cluster.urls
    peers = unsealed['nodes'][0]['raft_peers']
    assert sorted(p['node_id'] for p in peers) == ['node1', 'node2', 'node3']
    assert sum(p['leader'] for p in peers) == 1
    assert bao_cluster.root_token not in unsealed['_stdout']


def test_stopped_node_is_reported_not_fatal(ansible, bao_unsealed):
    bao_unsealed.nodes[2].stop()
    result = ansible.module('vault_status_info', {'nodes': bao_unsealed.urls})
    assert not result.get('failed'), result
    assert result['unreachable_nodes'] == [bao_unsealed.urls[2]]
    assert 'unreachable' in result['nodes'][2]['error']
    assert result['all_reachable'] is False


def test_fail_on_unreachable(ansible, bao_single):
    bao_single.stop()
    result = ansible.module('vault_status_info', {'url': bao_single.url, 'fail_on_unreachable': True})
    assert result['failed'] is True
    assert bao_single.url in result['msg']


def test_url_or_nodes_required(ansible):
    result = ansible.module('vault_status_info', {})
    assert result['failed'] is True
    assert 'url' in result['msg'] and 'nodes' in result['msg']

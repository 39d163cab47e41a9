from ansible_collections.trustroot.ops.plugins.module_utils._vault_status import (
    shape_node, summarize, unreachable_node)

SEALED = {'type': 'shamir', 'initialized': True, 'sealed': True, 't': 2, 'n': 3, 'progress': 1,
          'version': '2.7.2', 'commit_date': 'x', 'storage_type': 'raft'}
UNSEALED = dict(SEALED, sealed=False, progress=0, cluster_id='c1', cluster_name='n')
RAFT = {'config': {'servers': [{'node_id': 'node1', 'address': 'a:1', 'leader': True, 'voter': True},
                               {'node_id': 'node2', 'address': 'a:2', 'leader': False, 'voter': True}]}}


def test_shape_sealed_and_active_nodes():
    sealed = shape_node('http://a', SEALED, 503)
    assert sealed['state'] == 'sealed' and sealed['progress'] == 1 and sealed['is_leader'] is None
    leader = {'ha_enabled': True, 'is_self': True, 'leader_address': 'http://b'}
    active = shape_node('http://b', UNSEALED, 200, leader, RAFT)
    assert active['state'] == 'active' and active['is_leader'] is True
    assert [p['node_id'] for p in active['raft_peers']] == ['node1', 'node2']
    assert active['raft_peers'][0]['leader'] is True


def test_summary_over_mixed_nodes():
    nodes = [shape_node('http://a', UNSEALED, 200, {'is_self': True}),
             shape_node('http://b', SEALED, 503),
             unreachable_node('http://c', 'unreachable (ConnectionError)')]
    summary = summarize(nodes)
    assert summary['leader'] == 'http://a'
    assert summary['sealed_nodes'] == ['http://b']
    assert summary['unreachable_nodes'] == ['http://c']
    assert summary['all_unsealed'] is False and summary['all_reachable'] is False
    assert summarize([nodes[0]])['all_unsealed'] is True
    assert summarize([])['all_unsealed'] is False


def test_unreachable_node_has_every_key():
    node = unreachable_node('http://c', 'down')
    assert set(node) == set(shape_node('x', SEALED))
    assert node['reachable'] is False and node['error'] == 'down'

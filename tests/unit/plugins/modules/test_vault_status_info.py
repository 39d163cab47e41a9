"""vault_status_info through main(), with the Vault HTTP API scripted at the transport for two nodes."""
import requests

from ansible_collections.trustroot.ops.plugins.modules import vault_status_info

from ._vault_fake import SEALED, UNSEALED

NODE1, NODE2 = 'http://node1:8200', 'http://node2:8200'
TOKEN = 's.status-reader'
PEERS = {'config': {'servers': [{'node_id': 'n1', 'address': 'node1:8201', 'leader': True, 'voter': True}]}}


def leader_node():
    return {(NODE1, 'GET', 'sys/seal-status'): (200, UNSEALED),
            (NODE1, 'GET', 'sys/health'): (200, {'initialized': True, 'sealed': False}),
            (NODE1, 'GET', 'sys/leader'): (200, {'ha_enabled': True, 'is_self': True, 'leader_address': NODE1}),
            (NODE1, 'GET', 'sys/storage/raft/configuration'): (200, {'data': PEERS})}


def test_a_leader_and_a_sealed_node(run_main, vault):
    vault.routes = dict(leader_node())
    vault.routes[(NODE2, 'GET', 'sys/seal-status')] = (200, SEALED)
    vault.routes[(NODE2, 'GET', 'sys/health')] = (503, {'initialized': True, 'sealed': True})
    ended = run_main(vault_status_info.main, {'nodes': [NODE1, NODE2], 'token': TOKEN})
    assert not ended.failed, ended.result
    assert not ended.result['changed'] and ended.result['leader'] == NODE1
    assert ended.result['sealed_nodes'] == [NODE2] and not ended.result['all_unsealed']
    assert [n['url'] for n in ended.result['nodes']] == [NODE1, NODE2]
    assert vault.writes() == [] and TOKEN not in str(ended.result)


def test_an_unreachable_node_is_reported_and_fails_only_when_asked(run_main, vault):
    vault.routes = dict(leader_node())
    vault.routes[(NODE2, 'GET', 'sys/seal-status')] = requests.exceptions.ConnectionError('connection refused')
    ended = run_main(vault_status_info.main, {'nodes': [NODE1, NODE2]})
    assert not ended.failed and ended.result['unreachable_nodes'] == [NODE2]
    ended = run_main(vault_status_info.main, {'nodes': [NODE1, NODE2], 'fail_on_unreachable': True})
    assert ended.failed and ended.result['msg'].startswith('unreachable: %s' % NODE2)
    assert ended.result['unreachable_nodes'] == [NODE2] and ended.result['leader'] == NODE1


def test_a_seal_status_of_the_wrong_shape_makes_the_node_unreachable_naming_it(run_main, vault):
    vault.routes = {(NODE1, 'GET', 'sys/seal-status'): (200, {'sealed': 'no'})}
    ended = run_main(vault_status_info.main, {'url': NODE1})
    assert not ended.failed and ended.result['unreachable_nodes'] == [NODE1]
    assert ended.result['nodes'][0]['error'].startswith(NODE1)


def test_a_malformed_url_fails_naming_the_option_before_any_call(run_main, vault):
    ended = run_main(vault_status_info.main, {'url': 'http://node1:8200/ui/'})
    assert ended.failed and ended.result['msg'].startswith('url ') and vault.calls == []

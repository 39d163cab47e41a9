"""vault_raft through main(), with the Vault HTTP API scripted at the transport."""
from ansible_collections.trustroot.ops.plugins.modules import vault_raft

from ._vault_fake import SEALED, URL
from .conftest import assert_no_secret

TOKEN = 's.raft-operator'


def peer(node_id, leader=False, voter=True):
    return {'node_id': node_id, 'address': '%s:8201' % node_id, 'leader': leader, 'voter': voter}


THREE = [peer('n1', leader=True), peer('n2'), peer('n3')]
HEALTHY = {'healthy': True, 'failure_tolerance': 1, 'leader': 'n1', 'voters': ['n1', 'n2', 'n3'],
           'servers': dict((n, {'healthy': True, 'id': n}) for n in ('n1', 'n2', 'n3'))}


def routes(peers_before, peers_after=None):
    configuration = [(200, {'data': {'config': {'servers': peers_before}}})]
    if peers_after is not None:
        configuration.append((200, {'data': {'config': {'servers': peers_after}}}))
    return {('GET', 'sys/storage/raft/configuration'): configuration,
            ('GET', 'sys/storage/raft/autopilot/state'): (200, {'data': HEALTHY}),
            ('POST', 'sys/storage/raft/remove-peer'): (204, None)}


def test_show_reads_peers_leader_and_autopilot(run_main, vault):
    vault.routes = routes(THREE)
    ended = run_main(vault_raft.main, {'url': URL, 'token': TOKEN})
    assert not ended.failed and not ended.result['changed'] and ended.result['leader'] == 'n1'
    assert [p['node_id'] for p in ended.result['peers']] == ['n1', 'n2', 'n3']
    assert ended.result['autopilot']['failure_tolerance'] == 1
    assert_no_secret(ended.result, TOKEN)


def test_a_healthy_follower_is_removed_and_a_second_run_changes_nothing(run_main, vault):
    vault.routes = routes(THREE, THREE[:2])
    ended = run_main(vault_raft.main, {'url': URL, 'token': TOKEN, 'state': 'removed', 'server_id': 'n3'})
    assert not ended.failed and ended.result['changed'] and ended.result['removed'] == 'n3'
    assert [c['json'] for c in vault.calls if c['method'] == 'POST'] == [{'server_id': 'n3'}]
    vault.routes = routes(THREE[:2])
    vault.calls = []
    ended = run_main(vault_raft.main, {'url': URL, 'token': TOKEN, 'state': 'removed', 'server_id': 'n3'})
    assert not ended.failed and not ended.result['changed'] and vault.writes() == []


def test_check_mode_shows_the_peers_after_and_removes_nothing(run_main, vault):
    vault.routes = routes(THREE)
    ended = run_main(vault_raft.main, {'url': URL, 'token': TOKEN, 'state': 'removed', 'server_id': 'n2'},
                     check_mode=True, diff=True)
    assert not ended.failed and ended.result['changed']
    assert [p['node_id'] for p in ended.result['peers']] == ['n1', 'n3'] and 'diff' in ended.result
    assert vault.writes() == []


def test_the_leader_is_never_removed(run_main, vault):
    vault.routes = routes(THREE)
    ended = run_main(vault_raft.main, {'url': URL, 'token': TOKEN, 'state': 'removed', 'server_id': 'n1'})
    assert ended.failed and 'leader' in ended.result['msg'] and ended.result['removed'] is None
    assert [p['node_id'] for p in ended.result['peers']] == ['n1', 'n2', 'n3'] and vault.writes() == []


def test_a_peer_still_listed_after_removal_fails(run_main, vault):
    vault.routes = routes(THREE, THREE)
    ended = run_main(vault_raft.main, {'url': URL, 'token': TOKEN, 'state': 'removed', 'server_id': 'n3'})
    assert ended.failed and ended.result['msg'] == 'remove-peer for n3 returned but n3 is still a peer'
    assert ended.result['changed']


def test_options_of_another_state_fail_naming_them_before_any_call(run_main, vault):
    ended = run_main(vault_raft.main, {'url': URL, 'token': TOKEN, 'server_id': 'n3'})
    assert ended.failed and ended.result['msg'] == 'server_id applies only to state=removed, not state=show'
    assert vault.calls == []


def test_a_node_on_other_storage_is_not_joined(run_main, vault):
    vault.routes = {('GET', 'sys/seal-status'): (200, dict(SEALED, storage_type='file', initialized=False))}
    ended = run_main(vault_raft.main, {'url': URL, 'state': 'joined', 'leader_api_addr': 'http://leader:8200'})
    assert ended.failed and 'does not use raft storage (storage_type is file)' in ended.result['msg']
    assert vault.writes() == []


def test_a_configuration_of_the_wrong_shape_names_the_node(run_main, vault):
    vault.routes = routes([{'node_id': 'n1'}])
    ended = run_main(vault_raft.main, {'url': URL, 'token': TOKEN})
    assert ended.failed and ended.result['msg'].startswith(URL)
    assert 'sys/storage/raft/configuration answered' in ended.result['msg']

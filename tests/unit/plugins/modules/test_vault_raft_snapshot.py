"""vault_raft_snapshot through main(), with the Vault HTTP API scripted at the transport and files in tmp_path."""
import gzip
import hashlib
import json

from ansible_collections.trustroot.ops.plugins.modules import vault_raft_snapshot

from ._vault_fake import UNSEALED, URL
from .conftest import assert_no_secret

TOKEN = 's.snapshot-token'
SNAPSHOT = gzip.compress(b'raft snapshot bytes ' * 1000)  # a snapshot is gzip data
LEADER = {'ha_enabled': True, 'is_self': True, 'leader_address': URL, 'leader_cluster_address': ''}
STATUS = dict(UNSEALED, cluster_id='cluster-a')


def routes():
    return {('GET', 'sys/leader'): (200, LEADER),
            ('GET', 'sys/seal-status'): (200, STATUS),
            ('GET', 'sys/storage/raft/configuration'): (403, {'errors': ['permission denied']}),
            ('GET', 'sys/storage/raft/snapshot'): (200, SNAPSHOT),
            ('POST', 'sys/storage/raft/snapshot'): (204, None),
            ('POST', 'sys/storage/raft/snapshot-force'): (204, None)}


def test_a_snapshot_is_saved_with_its_metadata(run_main, vault, tmp_path):
    vault.routes = routes()
    path = tmp_path / 'raft.snap'
    ended = run_main(vault_raft_snapshot.main, {'url': URL, 'token': TOKEN, 'path': str(path)})
    assert not ended.failed, ended.result
    assert path.read_bytes() == SNAPSHOT and ended.result['changed']
    assert ended.result['sha256'] == hashlib.sha256(SNAPSHOT).hexdigest() and ended.result['size'] == len(SNAPSHOT)
    metadata = json.loads((tmp_path / 'raft.snap.json').read_text())
    assert metadata['sha256'] == ended.result['sha256'] and metadata['cluster_id'] == 'cluster-a'
    assert_no_secret(ended.result, TOKEN)


def test_a_recent_snapshot_is_kept_without_a_call(run_main, vault, tmp_path):
    vault.routes = routes()
    path = str(tmp_path / 'raft.snap')
    run_main(vault_raft_snapshot.main, {'url': URL, 'token': TOKEN, 'path': path})
    vault.calls = []
    ended = run_main(vault_raft_snapshot.main, {'url': URL, 'token': TOKEN, 'path': path, 'skip_if_newer_than': 3600})
    assert not ended.failed and not ended.result['changed'] and ended.result['kept_recent']
    assert vault.calls == []


def test_check_mode_finds_the_leader_and_writes_no_file(run_main, vault, tmp_path):
    vault.routes = routes()
    path = tmp_path / 'raft.snap'
    ended = run_main(vault_raft_snapshot.main, {'url': URL, 'token': TOKEN, 'path': str(path)}, check_mode=True,
                     diff=True)
    assert not ended.failed and ended.result['changed'] and ended.result['leader'] == URL
    assert ended.result['diff']['after']['sha256'] == '(new snapshot)'
    assert not path.exists() and ('GET', 'sys/storage/raft/snapshot') not in vault.paths()


def test_options_are_checked_naming_them_before_any_call(run_main, vault, tmp_path):
    ended = run_main(vault_raft_snapshot.main, {'url': URL, 'path': str(tmp_path / 's'), 'force': True})
    assert ended.failed and ended.result['msg'] == (
        'force applies only to state=restored; token is required to take or restore a raft snapshot '
        '(set token or VAULT_TOKEN)')
    assert vault.calls == []


def test_a_file_that_is_not_the_snapshot_asked_for_is_never_sent(run_main, vault, tmp_path):
    path = tmp_path / 'raft.snap'
    path.write_bytes(SNAPSHOT)
    ended = run_main(vault_raft_snapshot.main, {'url': URL, 'token': TOKEN, 'path': str(path), 'state': 'restored',
                                                'sha256': '0' * 64})
    assert ended.failed and ended.result['path'] == str(path) and not ended.result['changed']
    assert vault.calls == []


def test_another_clusters_snapshot_needs_force(run_main, vault, tmp_path):
    vault.routes = routes()
    path = str(tmp_path / 'raft.snap')
    run_main(vault_raft_snapshot.main, {'url': URL, 'token': TOKEN, 'path': path})
    vault.routes[('GET', 'sys/seal-status')] = (200, dict(STATUS, cluster_id='cluster-b'))
    vault.calls = []
    ended = run_main(vault_raft_snapshot.main, {'url': URL, 'token': TOKEN, 'path': path, 'state': 'restored'})
    assert ended.failed and 'the snapshot is from cluster cluster-a, the target is cluster cluster-b' in ended.result['msg']
    assert not ended.result['changed'] and vault.writes() == []
    ended = run_main(vault_raft_snapshot.main, {'url': URL, 'token': TOKEN, 'path': path, 'state': 'restored',
                                                'force': True})
    assert not ended.failed and ended.result['endpoint'] == 'sys/storage/raft/snapshot-force'
    assert vault.writes() == [('POST', 'sys/storage/raft/snapshot-force')]


def test_a_leader_answer_of_the_wrong_shape_names_the_node(run_main, vault, tmp_path):
    vault.routes = routes()
    vault.routes[('GET', 'sys/leader')] = (200, {'ha_enabled': 'yes'})
    ended = run_main(vault_raft_snapshot.main, {'url': URL, 'token': TOKEN, 'path': str(tmp_path / 's')})
    assert ended.failed and URL in ended.result['msg'] and 'sys/leader' in ended.result['msg']

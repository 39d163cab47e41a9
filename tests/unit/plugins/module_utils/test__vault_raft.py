"""Pure logic of vault_raft and vault_raft_snapshot: option rules, removal safety, join status, snapshot
files and metadata, leader search order."""

import gzip
import hashlib
import json
import os
import stat

import pytest
import requests

from ansible_collections.trustroot.ops.plugins.module_utils import _vault_raft as raft
from ansible_collections.trustroot.ops.plugins.module_utils._vault import VaultError

PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
KEY = '-----BEGIN PRIVATE KEY-----\nsecretkeymaterial\n-----END PRIVATE KEY-----\n'


def params(**kwargs):
    base = dict(state='show', server_id=None, force=False, leader_api_addr=None, leader_ca_cert=None,
                leader_client_cert=None, leader_client_key=None, leader_tls_servername=None, auto_join=None,
                auto_join_scheme=None, auto_join_port=None, retry=False, non_voter=False)
    base.update(kwargs)
    return base


def peer(node_id, leader=False, voter=True):
    return {'node_id': node_id, 'address': '127.0.0.1:%d' % (8200 + int(node_id[-1])), 'leader': leader,
            'voter': voter}


def autopilot(*healthy_ids, **kwargs):
    ids = kwargs.get('ids', ['node1', 'node2', 'node3'])
    return {'servers': [{'id': i, 'healthy': i in healthy_ids} for i in ids]}


THREE = [peer('node1', leader=True), peer('node2'), peer('node3')]


# --- options per state ---

def test_valid_combinations_have_no_errors():
    assert raft.state_option_errors(params()) == []
    assert raft.state_option_errors(params(state='removed', server_id='node3', force=True)) == []
    assert raft.state_option_errors(params(state='joined', leader_api_addr='https://v1:8200', retry=True,
                                           leader_ca_cert=PEM, leader_client_cert=PEM,
                                           leader_client_key=KEY)) == []
    assert raft.state_option_errors(params(state='joined', auto_join='provider=aws', auto_join_port=8200)) == []


def test_options_of_other_states_are_named():
    errors = raft.state_option_errors(params(state='joined', leader_api_addr='http://v1:8200', server_id='x'))
    assert errors == ['server_id applies only to state=removed, not state=joined']
    errors = raft.state_option_errors(params(state='show', force=True, retry=True))
    assert 'force applies only to state=removed, not state=show' in errors
    assert 'retry applies only to state=joined, not state=show' in errors
    errors = raft.state_option_errors(params(state='removed', server_id='n', leader_api_addr='http://v1'))
    assert errors == ['leader_api_addr applies only to state=joined, not state=removed']


def test_required_options_per_state():
    assert raft.state_option_errors(params(state='removed')) == ['server_id is required with state=removed']
    assert raft.state_option_errors(params(state='joined')) == [
        'leader_api_addr (or auto_join) is required with state=joined']


def test_join_option_formats():
    errors = raft.state_option_errors(params(state='joined', leader_api_addr='vault1:8200'))
    assert errors == ["leader_api_addr must start with http:// or https:// (got 'vault1:8200')"]
    errors = raft.state_option_errors(params(state='joined', leader_api_addr='https://v1:8200/ui/'))
    assert len(errors) == 1 and errors[0].startswith('leader_api_addr must be the server address without a path')
    errors = raft.state_option_errors(params(state='joined', leader_api_addr='http://v1:8200',
                                             leader_client_cert=PEM, leader_client_key='/etc/key.pem'))
    assert len(errors) == 1 and errors[0].startswith('leader_client_key must be PEM text')
    assert '/etc/key.pem' not in errors[0]
    errors = raft.state_option_errors(params(state='joined', leader_api_addr='http://v1:8200',
                                             leader_client_cert=PEM))
    assert errors == ['leader_client_cert and leader_client_key must be given together']
    errors = raft.state_option_errors(params(state='joined', auto_join='provider=x', auto_join_port=70000))
    assert errors == ['auto_join_port must be between 1 and 65535, got 70000']


def test_join_payload_has_only_set_options():
    payload = raft.join_payload(params(state='joined', leader_api_addr='https://v1:8200/', leader_ca_cert=PEM))
    assert payload == {'leader_api_addr': 'https://v1:8200', 'leader_ca_cert': PEM, 'retry': False,
                       'non_voter': False}
    payload = raft.join_payload(params(state='joined', auto_join='provider=aws', auto_join_scheme='http',
                                       auto_join_port=8201, retry=True, non_voter=True))
    assert payload == {'auto_join': 'provider=aws', 'auto_join_scheme': 'http', 'auto_join_port': 8201,
                       'retry': True, 'non_voter': True}


# --- peers, autopilot, removal ---

def test_shape_autopilot_sorts_servers_and_keeps_health():
    shaped = raft.shape_autopilot({
        'healthy': True, 'failure_tolerance': 1, 'leader': 'node1', 'voters': ['node1', 'node2'],
        'servers': {'node2': {'id': 'node2', 'healthy': False, 'status': 'voter', 'node_status': 'alive'},
                    'node1': {'id': 'node1', 'healthy': True, 'status': 'leader'}}})
    assert [s['id'] for s in shaped['servers']] == ['node1', 'node2']
    assert shaped['servers'][1]['healthy'] is False and shaped['servers'][1]['node_status'] == 'alive'
    assert shaped['failure_tolerance'] == 1 and shaped['voters'] == ['node1', 'node2']


@pytest.mark.parametrize('voters,needed', [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3)])
def test_quorum_is_a_strict_majority(voters, needed):
    assert raft.quorum(voters) == needed


def test_removing_an_absent_peer_is_no_change():
    decision = raft.removal_decision(THREE, 'node9', autopilot('node1', 'node2', 'node3'))
    assert decision['action'] == 'none'
    assert decision['peers_after'] == THREE


def test_removing_a_dead_voter_keeps_quorum():
    decision = raft.removal_decision(THREE, 'node3', autopilot('node1', 'node2'))
    assert decision['action'] == 'remove'
    assert [p['node_id'] for p in decision['peers_after']] == ['node1', 'node2']


def test_removing_a_healthy_voter_while_another_is_dead_is_refused():
    decision = raft.removal_decision(THREE, 'node2', autopilot('node1', 'node2'))
    assert decision['action'] == 'refuse'
    assert 'server_id node2' in decision['reason'] and 'quorum of 2' in decision['reason']
    assert 'force=true' in decision['reason']
    assert raft.removal_decision(THREE, 'node2', autopilot('node1', 'node2'), force=True)['action'] == 'remove'


def test_removing_the_leader_is_refused_unless_forced():
    decision = raft.removal_decision(THREE, 'node1', autopilot('node1', 'node2', 'node3'))
    assert decision['action'] == 'refuse' and 'leader' in decision['reason']
    forced = raft.removal_decision(THREE, 'node1', autopilot('node1', 'node2', 'node3'), force=True)
    assert forced['action'] == 'remove' and forced['reason'] == 'forced'


def test_removing_a_non_voter_is_always_allowed():
    peers = [peer('node1', leader=True), peer('node2', voter=False), peer('node3', voter=False)]
    decision = raft.removal_decision(peers, 'node3', autopilot('node1'))
    assert decision['action'] == 'remove' and 'non-voter' in decision['reason']


def test_without_autopilot_only_the_leader_counts_as_healthy():
    decision = raft.removal_decision(THREE, 'node3', None)
    assert decision['action'] == 'refuse' and 'autopilot state unavailable' in decision['reason']
    two = [peer('node1', leader=True), peer('node2')]
    assert raft.removal_decision(two, 'node2', None)['action'] == 'remove'


def test_five_voters_tolerate_two_removals_of_dead_peers():
    five = [peer('node1', leader=True)] + [peer('node%d' % i) for i in range(2, 6)]
    ids = ['node%d' % i for i in range(1, 6)]
    health = autopilot('node1', 'node2', 'node3', ids=ids)
    assert raft.removal_decision(five, 'node5', health)['action'] == 'remove'
    # Removing a healthy one while two are dead: 2 healthy of 4 remaining < quorum 3.
    assert raft.removal_decision(five, 'node3', health)['action'] == 'refuse'


# --- join status ---

def test_join_status():
    fresh = {'initialized': False, 'sealed': True}
    assert raft.join_status(fresh) == raft.JOIN_NOT_JOINED
    assert raft.join_status({'initialized': True, 'sealed': True}) == raft.JOIN_PENDING_UNSEAL
    member = {'initialized': True, 'sealed': False, 'cluster_id': 'c1'}
    assert raft.join_status(member, {'cluster_id': 'c1'}) == raft.JOIN_JOINED
    assert raft.join_status(member, None) == raft.JOIN_JOINED
    assert raft.join_status(member, {'sealed': True}) == raft.JOIN_JOINED
    assert raft.join_status(member, {'cluster_id': 'c2'}) == raft.JOIN_OTHER_CLUSTER


# --- snapshot files and metadata ---

def snapshot_bytes(size=4096):
    return gzip.compress(os.urandom(size))


def write_snapshot(tmp_path, data, created=None, name='raft.snap'):
    path = str(tmp_path / name)
    with open(path, 'wb') as handle:
        handle.write(data)
    metadata = raft.build_metadata(hashlib.sha256(data).hexdigest(), len(data),
                                   {'cluster_id': 'cid', 'cluster_name': 'cn', 'version': '2.7.2',
                                    'commit_date': 'x'}, 'http://127.0.0.1:8200', 'node1', created=created,
                                   path=path)
    with open(raft.metadata_path(path), 'wb') as handle:
        handle.write(raft.serialize_metadata(metadata))
    return path, metadata


def test_metadata_fields(tmp_path):
    path, metadata = write_snapshot(tmp_path, snapshot_bytes())
    assert metadata['flavour'] == 'openbao' and metadata['version'] == '2.7.2'
    assert metadata['cluster_id'] == 'cid' and metadata['leader_node_id'] == 'node1'
    assert metadata['file'] == 'raft.snap'
    assert raft.metadata_errors(metadata) == []
    read, problem = raft.read_metadata(path)
    assert problem is None and read == metadata


def test_metadata_errors_name_each_field():
    errors = raft.metadata_errors({'format': 'x', 'sha256': 'abc', 'size': 0, 'created': 'yesterday'})
    assert len(errors) == 4
    assert raft.metadata_errors([]) == ['not a JSON object']
    assert raft.metadata_errors({'format': raft.METADATA_FORMAT, 'sha256': 'a' * 64, 'size': True,
                                 'created': '2026-01-01T00:00:00Z'}) == ['size is not a positive integer']


def test_read_metadata_reports_missing_and_garbage(tmp_path):
    path = str(tmp_path / 'x.snap')
    assert raft.read_metadata(path)[0] is None
    with open(raft.metadata_path(path), 'w') as handle:
        handle.write('{not json')
    metadata, problem = raft.read_metadata(path)
    assert metadata is None and 'not JSON' in problem


def test_timestamps_round_trip():
    assert raft.parse_timestamp(raft.utc_timestamp(1700000000)) == 1700000000
    assert raft.parse_timestamp('nope') is None
    assert raft.parse_timestamp(None) is None


def test_fresh_snapshot_by_age_and_integrity(tmp_path):
    data = snapshot_bytes()
    path, metadata = write_snapshot(tmp_path, data, created='2026-01-01T00:00:00Z')
    now = raft.parse_timestamp('2026-01-01T00:10:00Z')
    recent, reason = raft.fresh_snapshot(path, 3600, now=now)
    assert recent == metadata and reason is None
    old, reason = raft.fresh_snapshot(path, 300, now=now)
    assert old is None and '600 seconds old' in reason
    # A tampered byte makes a young snapshot not count.
    with open(path, 'r+b') as handle:
        handle.seek(len(data) - 1)
        handle.write(bytes([data[-1] ^ 0xff]))
    tampered, reason = raft.fresh_snapshot(path, 3600, now=now)
    assert tampered is None and 'sha256 mismatch' in reason
    assert raft.fresh_snapshot(str(tmp_path / 'none.snap'), 3600)[0] is None


def test_verify_snapshot_file(tmp_path):
    data = snapshot_bytes()
    path, metadata = write_snapshot(tmp_path, data)
    assert raft.verify_snapshot_file(path, metadata['sha256'], metadata['size']) is None
    assert raft.verify_snapshot_file(path, metadata['sha256'].upper()) is None
    assert 'sha256 mismatch' in raft.verify_snapshot_file(path, '0' * 64)
    assert 'size mismatch' in raft.verify_snapshot_file(path, metadata['sha256'], metadata['size'] + 1)
    empty = tmp_path / 'empty.snap'
    empty.write_bytes(b'')
    assert '0 bytes' in raft.verify_snapshot_file(str(empty), '0' * 64)
    text = tmp_path / 'text.snap'
    text.write_bytes(b'hello')
    assert 'not gzip' in raft.verify_snapshot_file(str(text), '0' * 64)
    assert 'cannot read' in raft.verify_snapshot_file(str(tmp_path / 'missing'), '0' * 64)


def chunks_of(data, size=1000):
    for start in range(0, len(data), size):
        yield data[start:start + size]


def leftovers(tmp_path):
    return sorted(name for name in os.listdir(str(tmp_path)) if name.endswith('.part'))


def test_stream_to_file_writes_atomically_with_mode_0600(tmp_path):
    data = snapshot_bytes(50000)
    path = str(tmp_path / 'out.snap')
    seen = {}
    sha256, size = raft.stream_to_file(chunks_of(data), path,
                                       before_commit=lambda s, n: seen.update(sha=s, size=n,
                                                                              exists=os.path.exists(path)))
    assert sha256 == hashlib.sha256(data).hexdigest() and size == len(data)
    assert seen == {'sha': sha256, 'size': size, 'exists': False}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, 'rb') as handle:
        assert handle.read() == data
    assert leftovers(tmp_path) == []


def test_empty_stream_leaves_no_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / 'out.snap'
    with pytest.raises(raft.RaftError, match='empty'):
        raft.stream_to_file(iter([b'', b'']), str(path))
    assert not path.exists()
    path.write_bytes(b'previous')
    with pytest.raises(raft.RaftError):
        raft.stream_to_file(iter([]), str(path))
    assert path.read_bytes() == b'previous'
    assert leftovers(tmp_path) == []


def test_interrupted_stream_leaves_the_old_file(tmp_path):
    path = tmp_path / 'out.snap'
    path.write_bytes(b'previous')

    def broken():
        yield snapshot_bytes()[:500]
        raise IOError('connection reset')

    with pytest.raises(IOError):
        raft.stream_to_file(broken(), str(path))
    assert path.read_bytes() == b'previous'
    assert leftovers(tmp_path) == []


class CutResponse(object):
    """A snapshot answer whose connection breaks after some chunks, as when the node is killed mid-stream."""

    def __init__(self, data):
        self.data = data
        self.closed = False

    def iter_content(self, size):
        yield self.data[:size]
        raise requests.exceptions.ChunkedEncodingError('Connection broken: IncompleteRead')

    def close(self):
        self.closed = True


class StreamingNode(object):
    url = 'http://10.0.0.1:8200'

    def __init__(self, response):
        self.response = response

    def stream(self, method, path):
        assert (method, path) == ('GET', 'sys/storage/raft/snapshot')
        return self.response


def test_a_download_cut_off_names_node_and_call_and_keeps_the_old_file(tmp_path):
    path = tmp_path / 'out.snap'
    path.write_bytes(b'previous')
    (tmp_path / 'out.snap.json').write_bytes(b'{}')
    response = CutResponse(snapshot_bytes() * 4)
    with pytest.raises(raft.RaftError) as exc:
        raft.save_snapshot(StreamingNode(response), str(path), {'cluster_id': 'c'})
    assert str(exc.value) == (
        'http://10.0.0.1:8200: GET sys/storage/raft/snapshot was cut off before the end of the snapshot '
        '(ChunkedEncodingError); %s was left as it was and no partial file was kept' % path)
    assert response.closed
    assert path.read_bytes() == b'previous' and (tmp_path / 'out.snap.json').read_bytes() == b'{}'
    assert leftovers(tmp_path) == []


def test_non_gzip_stream_and_failing_commit_hook_leave_nothing(tmp_path):
    path = tmp_path / 'out.snap'
    with pytest.raises(raft.RaftError, match='not a raft snapshot'):
        raft.stream_to_file(iter([b'<html>error</html>']), str(path))
    assert not path.exists()

    def hook(sha256, size):
        raise OSError(28, 'No space left on device')

    with pytest.raises(OSError):
        raft.stream_to_file(chunks_of(snapshot_bytes()), str(path), before_commit=hook)
    assert not path.exists() and leftovers(tmp_path) == []


def test_snapshot_target_errors(tmp_path):
    assert raft.snapshot_target_errors(str(tmp_path / 'a.snap')) == []
    missing = str(tmp_path / 'no' / 'a.snap')
    errors = raft.snapshot_target_errors(missing)
    assert errors and errors[0].startswith('path %s:' % missing) and 'does not exist' in errors[0]
    (tmp_path / 'dir.snap').mkdir()
    assert 'is a directory' in raft.snapshot_target_errors(str(tmp_path / 'dir.snap'))[0]
    (tmp_path / 'b.snap.json').mkdir()
    assert 'b.snap.json' in raft.snapshot_target_errors(str(tmp_path / 'b.snap'))[0]


# --- leader search order ---

class FakeNode(object):
    """Stands for a server's sys/leader answer; records which URLs were asked."""

    def __init__(self, url, answers, asked):
        self.url = url
        self.answers = answers
        self.asked = asked

    def raw(self, method, path, auth=True, ok_statuses=()):
        self.asked.append(self.url)
        answer = self.answers.get(self.url)
        if answer is None:
            raise VaultError(self.url, 'unreachable (ConnectionError)')
        if answer == 'sealed':
            return 503, {'errors': ['Vault is sealed']}
        return 200, answer


def search(urls, answers):
    asked = []
    node, notes = raft.find_leader(urls, lambda url: FakeNode(url, answers, asked))
    return node.url, asked, notes


def leader_answers(leader, followers, extra=None):
    answers = {leader: {'ha_enabled': True, 'is_self': True, 'leader_address': leader}}
    for url in followers:
        answers[url] = {'ha_enabled': True, 'is_self': False, 'leader_address': leader}
    answers.update(extra or {})
    return answers


def test_a_standby_points_the_search_at_the_leader():
    urls = ['http://n1', 'http://n2', 'http://n3']
    leader, asked, notes = search(urls, leader_answers('http://n3', ['http://n1', 'http://n2']))
    assert leader == 'http://n3'
    assert asked == ['http://n1', 'http://n3']
    assert notes == ['http://n1: standby (leader is http://n3)']


def test_stopped_and_sealed_nodes_are_skipped():
    urls = ['http://n1/', 'http://n2', 'http://n3']
    answers = leader_answers('http://n3', [], {'http://n2': 'sealed'})
    leader, asked, notes = search(urls, answers)
    assert leader == 'http://n3' and asked == ['http://n1', 'http://n2', 'http://n3']
    assert 'unreachable' in notes[0] and notes[1] == 'http://n2: sealed'


def test_a_leader_outside_the_list_is_followed():
    answers = leader_answers('http://internal-leader', ['http://n1'])
    leader, asked, _notes = search(['http://n1'], answers)
    assert leader == 'http://internal-leader' and asked == ['http://n1', 'http://internal-leader']


def test_no_leader_is_an_error_listing_every_node():
    with pytest.raises(raft.RaftError) as err:
        search(['http://n1', 'http://n2'], {'http://n2': 'sealed'})
    assert 'http://n1' in str(err.value) and 'http://n2: sealed' in str(err.value)
    # Two standbys pointing at a leader that does not answer: each URL is asked once.
    answers = {'http://n1': {'ha_enabled': True, 'is_self': False, 'leader_address': 'http://n9'},
               'http://n2': {'ha_enabled': True, 'is_self': False, 'leader_address': 'http://n9'}}
    asked = []
    with pytest.raises(raft.RaftError):
        raft.find_leader(['http://n1', 'http://n2'], lambda url: FakeNode(url, answers, asked))
    assert asked == ['http://n1', 'http://n9', 'http://n2']


def test_metadata_is_json_with_sorted_keys(tmp_path):
    _path, metadata = write_snapshot(tmp_path, snapshot_bytes())
    text = raft.serialize_metadata(metadata).decode()
    assert json.loads(text) == metadata and text.endswith('\n')

"""vault_posture_info through main(): the API scripted at the transport; TLS and metrics probes hit a closed port."""
from ansible_collections.trustroot.ops.plugins.modules import vault_posture_info

from ._vault_fake import SEALED, UNSEALED
from .conftest import assert_no_secret

URL = 'http://127.0.0.1:1'  # nothing listens: the TLS probe and the metrics probe find no answer
TOKEN = 's.posture-reader'
ROOT_ROUTES = {
    ('GET', 'sys/seal-status'): (200, UNSEALED),
    ('GET', 'auth/token/lookup-self'): (200, {'data': {'accessor': 'own'}}),
    ('LIST', 'auth/token/accessors'): (200, {'data': {'keys': ['own', 'other', 'gone']}}),
    ('GET', 'sys/audit'): (200, {'data': {'file/': {'type': 'file', 'options': {'file_path': '/var/log/a.log'}}}}),
    ('GET', 'sys/storage/raft/autopilot/state'): (200, {'data': {
        'healthy': True, 'failure_tolerance': 1, 'voters': ['n1', 'n2', 'n3'], 'servers': {'n1': {'healthy': True}}}}),
    ('GET', 'sys/storage/raft/configuration'): (200, {'data': {'config': {'servers': [{'node_id': 'n2'},
                                                                                      {'node_id': 'n1'}]}}}),
}


def lookup(call):
    accessor = call['json']['accessor']
    if accessor == 'gone':
        return 400, {'errors': ['invalid accessor']}
    policies = ['root'] if accessor in ('own', 'other') else ['default']
    return 200, {'data': {'policies': policies, 'accessor': accessor, 'display_name': 'token-' + accessor}}


def test_the_cluster_view_comes_from_the_first_unsealed_node(run_main, vault):
    vault.routes = dict(ROOT_ROUTES)
    vault.routes[('POST', 'auth/token/lookup-accessor')] = lookup
    ended = run_main(vault_posture_info.main, {'url': URL, 'token': TOKEN})
    assert not ended.failed, ended.result
    posture = ended.result['posture']
    assert not ended.result['changed'] and posture['flavour'] == 'openbao'
    assert posture['seal'] == {'type': 'shamir', 't': 2, 'n': 3, 'recovery_seal': False}
    assert [(t['display_name'], t['init']) for t in posture['root_tokens']] == [('token-own', True), ('token-other', False)]
    assert posture['audit_devices'] == [{'path': 'file', 'type': 'file', 'file_path': '/var/log/a.log'}]
    assert posture['autopilot']['failure_tolerance'] == 1 and posture['raft_peers'] == ['n1', 'n2']
    assert posture['tls'][URL] == {'accepted_versions': []} and posture['metrics'][URL] is None
    assert vault.writes() == [('POST', 'auth/token/lookup-accessor')] * 3  # lookups only, nothing changed
    assert_no_secret(ended.result, TOKEN)


def test_a_sealed_cluster_is_reported_without_a_token(run_main, vault):
    vault.routes = {('GET', 'sys/seal-status'): (200, SEALED)}
    ended = run_main(vault_posture_info.main, {'url': URL})
    assert not ended.failed and ended.result['posture']['error'] == 'no unsealed node answered'
    assert ended.result['posture']['nodes'] == [{'url': URL, 'reachable': True, 'sealed': True}]


def test_without_nodes_or_url_it_fails_naming_them(run_main, vault):
    ended = run_main(vault_posture_info.main, {})
    assert ended.failed and ended.result['msg'] == 'nodes (or url) is required'
    assert vault.calls == []


def test_an_unsealed_cluster_needs_a_token(run_main, vault):
    vault.routes = {('GET', 'sys/seal-status'): (200, UNSEALED)}
    ended = run_main(vault_posture_info.main, {'url': URL})
    assert ended.failed and ended.result['msg'].startswith('token is required to read audit devices')


def test_a_read_of_the_wrong_shape_is_reported_in_place_not_as_a_finding(run_main, vault):
    vault.routes = dict(ROOT_ROUTES)
    vault.routes[('POST', 'auth/token/lookup-accessor')] = lookup
    vault.routes[('GET', 'sys/storage/raft/configuration')] = (200, {'data': {'config': {}}})
    ended = run_main(vault_posture_info.main, {'url': URL, 'token': TOKEN})
    assert not ended.failed and ended.result['posture']['raft_peers'] is None
    assert 'sys/storage/raft/configuration answered' in ended.result['posture']['raft_error']

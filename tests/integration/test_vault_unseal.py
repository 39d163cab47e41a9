"""vault_unseal against a real 3-node OpenBao raft cluster."""
import json
import os

from tests.integration.conftest import VENV_BIN
from tests.integration.probes import command_probe, json_of, play, task
from tests.lab.openbao import BaoServer, http


# A command that prints the sealed flags of the nodes whose URLs it is given, as a JSON list.
SEALED_FLAGS = ('import json, sys, urllib.request\n'
                'print(json.dumps([json.load(urllib.request.urlopen(url + "/v1/sys/seal-status", timeout=10))["sealed"]'
                ' for url in sys.argv[1:]]))')


def sealed_flags(cluster):
    return [node.seal_status()['sealed'] for node in cluster.nodes]


def test_check_mode_then_unseal_then_idempotent(ansible, bao_cluster, tmp_path):
    material = bao_cluster.write_init_file(tmp_path / 'init.json')
    args = {'nodes': bao_cluster.urls, 'key_material_path': material}
    # Every node's sealed flag, in one task.
    sealed_probe = command_probe([os.path.join(VENV_BIN, 'python'), '-c', SEALED_FLAGS] + bao_cluster.urls)

    # Check mode, the unseal and its re-run in one playbook run; the nodes' sealed flags read after the first two.
    checked, after_check, done, after_done, again = play(ansible, tmp_path, [
        task('vault_unseal', args, check_mode=True, diff=True), sealed_probe, task('vault_unseal', args), sealed_probe,
        task('vault_unseal', args)])
    assert checked['changed'] is True and not checked.get('failed'), checked
    assert json_of(after_check) == [True, True, True], 'check mode unsealed'
    assert all(n['keys_submitted'] == 0 for n in checked['nodes'])
    assert checked['diff']['after'] == {url: {'sealed': False} for url in bao_cluster.urls}

    assert done['changed'] is True and done['all_unsealed'] is True, done
    assert json_of(after_done) == [False, False, False]
    # Threshold is 2: never more than two keys per node.
    assert all(n['keys_submitted'] <= 2 for n in done['nodes'])
    for key in bao_cluster.keys + [bao_cluster.root_token]:
        assert key not in done['_stdout']

    assert again['changed'] is False and again['all_unsealed'] is True
    assert all(n['keys_submitted'] == 0 for n in again['nodes'])
    assert sealed_flags(bao_cluster) == [False, False, False]


def test_followers_listed_first_wait_for_the_leader(ansible, bao_cluster):
    """Order must not matter: followers that cannot finish before a leader exists are waited for."""
    reordered = list(reversed(bao_cluster.urls))
    done = ansible.module('vault_unseal', {'nodes': reordered, 'keys': bao_cluster.keys[:2]})
    assert done['all_unsealed'] is True, done
    assert sealed_flags(bao_cluster) == [False, False, False]


def test_partial_progress_only_needed_keys_sent(ansible, bao_cluster):
    node = bao_cluster.nodes[0]
    http('PUT', node.url + '/v1/sys/unseal', {'key': bao_cluster.keys[0]})
    assert node.seal_status()['progress'] == 1
    done = ansible.module('vault_unseal', {'url': node.url, 'keys': bao_cluster.keys[1:2]})
    assert done['all_unsealed'] is True and done['nodes'][0]['keys_submitted'] == 1, done


def test_fresh_cluster_followers_join_then_unseal(ansible, bao_cluster_fresh, tmp_path):
    """First bring-up: followers are uninitialized until the leader is unsealed, then join."""
    out = str(tmp_path / 'init.json')
    init = ansible.module('vault_init', {'url': bao_cluster_fresh.urls[0], 'secret_shares': 3,
                                         'secret_threshold': 2, 'output_path': out})
    assert init['changed'] is True, init
    done = ansible.module('vault_unseal', {'nodes': bao_cluster_fresh.urls, 'key_material_path': out})
    assert done['all_unsealed'] is True, done
    assert any(n['waited_for_join'] for n in done['nodes'][1:])
    token = json.load(open(out))['root_token']
    bao_cluster_fresh.wait_peers(token, count=3)


def test_wrong_key_fails_that_node_only(ansible, bao_cluster, tmp_path):
    """A node given wrong keys fails by name; the others are unsealed anyway."""
    other = BaoServer(str(tmp_path), 'other').start()
    try:
        status, other_init = http('PUT', other.url + '/v1/sys/init', {'secret_shares': 2, 'secret_threshold': 2})
        assert status == 200
        result = ansible.module('vault_unseal', {'nodes': [other.url] + bao_cluster.urls,
                                                 'keys': bao_cluster.keys[:2]})
        assert result['failed'] is True
        assert result['failed_nodes'] == [other.url]
        assert other.url in result['msg']
        assert sealed_flags(bao_cluster) == [False, False, False]
        assert other.seal_status()['sealed'] is True
    finally:
        other.stop()


def test_stopped_node_named_others_unsealed(ansible, bao_cluster):
    bao_cluster.nodes[2].stop()
    result = ansible.module('vault_unseal', {'nodes': bao_cluster.urls, 'keys': bao_cluster.keys,
                                             'wait_timeout': 30})
    assert result['failed'] is True
    assert result['failed_nodes'] == [bao_cluster.urls[2]]
    assert 'unreachable' in result['msg'] and bao_cluster.urls[2] in result['msg']
    assert [bao_cluster.nodes[i].seal_status()['sealed'] for i in (0, 1)] == [False, False]


def test_bad_inputs(ansible, bao_cluster, tmp_path):
    url = bao_cluster.urls[0]
    # Every refusal in one playbook run; none may send a key.
    (not_key, too_few, missing, both), output = ansible.modules([
        ('vault_unseal', {'url': url, 'keys': ['***not a key***']}),
        ('vault_unseal', {'url': url, 'keys': bao_cluster.keys[:1]}),
        ('vault_unseal', {'url': url, 'key_material_path': str(tmp_path / 'absent.json')}),
        ('vault_unseal', {'url': url, 'keys': bao_cluster.keys, 'key_material_path': str(tmp_path / 'x.json')})])
    assert not_key['failed'] is True and 'keys[0]' in not_key['msg']
    assert '***not a key***' not in output

    assert too_few['failed'] is True and 'needs 2 more key(s), 1 given' in too_few['msg']
    assert bao_cluster.nodes[0].seal_status()['progress'] == 0, 'no key may be sent when too few are given'

    assert missing['failed'] is True and 'key_material_path' in missing['msg']

    assert both['failed'] is True and 'mutually exclusive' in both['msg']
    assert sealed_flags(bao_cluster) == [True, True, True]

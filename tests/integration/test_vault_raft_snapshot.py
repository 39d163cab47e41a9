"""vault_raft_snapshot against a real 3-node OpenBao raft cluster."""

import base64
import hashlib
import json
import os
import stat

from tests.lab.openbao import http, wait_for

from tests.integration.conftest import VENV_BIN
from tests.integration.probes import play, stat_of, stat_probe, task

EMPTY_SHA256 = hashlib.sha256(b'').hexdigest()


def leader_of(cluster):
    """(leader BaoServer, running followers) as the nodes report them."""
    return cluster.leader_and_followers()


def active_node(cluster):
    return leader_of(cluster)[0]


def sha256_of(path):
    with open(path, 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def kv_enable(url, token, mount='kv'):
    status, body = http('POST', url + '/v1/sys/mounts/%s' % mount, {'type': 'kv', 'options': {'version': '1'}},
                        token=token)
    assert status in (200, 204), body


def kv_put(url, token, name, data, mount='kv'):
    status, body = http('POST', url + '/v1/%s/%s' % (mount, name), data, token=token, timeout=60)
    assert status in (200, 204), body


def kv_get(url, token, name, mount='kv'):
    status, body = http('GET', url + '/v1/%s/%s' % (mount, name), token=token)
    return body['data'] if status == 200 else None


def run_tasks(ansible, arg_list):
    """One vault_raft_snapshot task per entry of ``arg_list`` in one playbook; return their results."""
    return ansible.modules([('vault_raft_snapshot', args) for args in arg_list])[0]


def test_a_stopped_node_in_nodes_is_skipped(ansible, bao_unsealed, tmp_path):
    leader, followers = leader_of(bao_unsealed)
    stopped = followers[0]
    stopped.stop()
    path = str(tmp_path / 'raft.snap')
    result = ansible.module('vault_raft_snapshot', {'nodes': [stopped.url, followers[1].url, leader.url],
                                                    'token': bao_unsealed.root_token, 'path': path})
    assert not result.get('failed'), result
    assert result['leader'] == leader.url and result['changed'] is True
    assert result['skipped_nodes'][0].startswith(stopped.url) and 'unreachable' in result['skipped_nodes'][0]
    assert sha256_of(path) == result['sha256']


def test_restore_brings_a_secret_back(ansible, bao_unsealed, tmp_path):
    token = bao_unsealed.root_token
    leader = active_node(bao_unsealed)
    kv_enable(leader.url, token)
    kv_put(leader.url, token, 'app', {'password': 'before-snapshot'})
    kv_put(leader.url, token, 'other', {'value': 'kept'})
    path = str(tmp_path / 'raft.snap')
    saved = ansible.module('vault_raft_snapshot', {'url': bao_unsealed.urls[0], 'token': token, 'path': path})
    assert not saved.get('failed'), saved

    kv_put(leader.url, token, 'app', {'password': 'after-snapshot'})
    status = http('DELETE', leader.url + '/v1/kv/other', token=token)[0]
    assert status == 204 and kv_get(leader.url, token, 'other') is None

    args = {'state': 'restored', 'url': bao_unsealed.urls[0], 'token': token, 'path': path}
    check = ansible.module('vault_raft_snapshot', args, check=True)
    assert not check.get('failed'), check
    assert check['changed'] is True and check['sha256'] == saved['sha256']
    assert check['endpoint'] == 'sys/storage/raft/snapshot'
    assert kv_get(leader.url, token, 'app') == {'password': 'after-snapshot'}, 'check mode restored'

    restored = ansible.module('vault_raft_snapshot', args)
    assert not restored.get('failed'), restored
    assert restored['changed'] is True and restored['leader'] == leader.url
    assert restored['metadata_path'] == path + '.json'

    def secrets_back():
        active = active_node(bao_unsealed)
        return (kv_get(active.url, token, 'app') == {'password': 'before-snapshot'}
                and kv_get(active.url, token, 'other') == {'value': 'kept'})
    wait_for(secrets_back, timeout=60, what='the secrets of the snapshot')
    assert token not in restored['_stdout']


RSS_WRAPPER = '''#!{python}
import json, resource, subprocess, sys
rc = subprocess.call([{python!r}] + sys.argv[1:])
with open({log!r}, 'a') as handle:
    handle.write(json.dumps({{'argv': sys.argv[1:],
                              'max_rss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}}) + '\\n')
sys.exit(rc)
'''


def test_memory_does_not_grow_with_snapshot_size(ansible, bao_unsealed, tmp_path):
    """Peak RSS of the module process for a small and a ~10 MB snapshot, saving and restoring."""
    token = bao_unsealed.root_token
    leader = active_node(bao_unsealed)
    log = str(tmp_path / 'rss.jsonl')
    wrapper = str(tmp_path / 'rss-python')
    with open(wrapper, 'w') as handle:
        handle.write(RSS_WRAPPER.format(python=os.path.join(VENV_BIN, 'python'), log=log))
    os.chmod(wrapper, 0o700)
    env = {'ANSIBLE_PYTHON_INTERPRETER': wrapper, 'ANSIBLE_PIPELINING': 'False'}

    def module_peak(args):
        if os.path.exists(log):
            os.remove(log)
        result = ansible.module('vault_raft_snapshot', args, env=env)
        assert not result.get('failed'), result
        with open(log) as handle:
            runs = [json.loads(line) for line in handle]
        peaks = [r['max_rss_kb'] for r in runs if any('vault_raft_snapshot' in a for a in r['argv'])]
        assert len(peaks) == 1, runs
        return result, peaks[0] * 1024

    small_path, big_path = str(tmp_path / 'small.snap'), str(tmp_path / 'big.snap')
    small, small_save_rss = module_peak({'url': leader.url, 'token': token, 'path': small_path})

    kv_enable(leader.url, token, mount='blob')
    for index in range(24):
        kv_put(leader.url, token, 'chunk%02d' % index,
               {'data': base64.b64encode(os.urandom(384 * 1024)).decode()}, mount='blob')
    big, big_save_rss = module_peak({'url': leader.url, 'token': token, 'path': big_path})

    growth = big['size'] - small['size']
    print('snapshot sizes %d / %d bytes; save peak RSS %d / %d bytes' % (
        small['size'], big['size'], small_save_rss, big_save_rss))
    assert growth > 8 * 1024 * 1024, (small['size'], big['size'])
    # Reading the body whole would add at least the snapshot's size; streaming adds about nothing.
    assert big_save_rss - small_save_rss < growth / 4, (small_save_rss, big_save_rss, growth)

    small_restore_rss = module_peak({'state': 'restored', 'url': leader.url, 'token': token,
                                     'path': small_path})[1]
    active = active_node(bao_unsealed)
    big_restore_rss = module_peak({'state': 'restored', 'url': active.url, 'token': token,
                                   'path': big_path})[1]
    print('restore peak RSS %d / %d bytes' % (small_restore_rss, big_restore_rss))
    assert big_restore_rss - small_restore_rss < growth / 4, (small_restore_rss, big_restore_rss, growth)
    active = active_node(bao_unsealed)
    wait_for(lambda: kv_get(active.url, token, 'chunk23', mount='blob'), timeout=60,
             what='the large snapshot restored')


# --- one unsealed cluster shared by the tests below, which only read it, write a mount of their own or restore
# into another server (it holds the template cluster's ports: the tests above, on clusters of their own, run first) ---

def test_save_from_the_leader_when_a_follower_comes_first(ansible, bao_unsealed_shared, tmp_path):
    token = bao_unsealed_shared.root_token
    leader, followers = leader_of(bao_unsealed_shared)
    nodes = [f.url for f in followers] + [leader.url]
    path = str(tmp_path / 'backups' / 'raft.snap')
    os.makedirs(os.path.dirname(path))
    args = {'nodes': nodes, 'token': token, 'path': path}

    # Check mode, then the real run, in one playbook run, the directory listed between them.
    check, listed_after_check, result = play(ansible, tmp_path, [
        task('vault_raft_snapshot', args, check_mode=True),
        ('ansible.builtin.find', {'paths': os.path.dirname(path), 'hidden': True, 'file_type': 'any'}, {}),
        task('vault_raft_snapshot', args, diff=True)])
    assert not check.get('failed'), check
    assert check['changed'] is True and check['leader'] == leader.url
    assert 'files' in listed_after_check, listed_after_check
    assert [f['path'] for f in listed_after_check['files']] == [], 'check mode wrote a file'

    assert not result.get('failed'), result
    assert result['changed'] is True and result['leader'] == leader.url
    assert result['skipped_nodes'][0] == '%s: standby (leader is %s)' % (followers[0].url, leader.url)
    assert sorted(os.listdir(os.path.dirname(path))) == ['raft.snap', 'raft.snap.json']
    for written in (path, path + '.json'):
        assert stat.S_IMODE(os.stat(written).st_mode) == 0o600, written
    with open(path, 'rb') as handle:
        assert handle.read(2) == b'\x1f\x8b'
    assert result['sha256'] == sha256_of(path)
    assert result['size'] == os.path.getsize(path) > 0
    assert result['metadata_path'] == path + '.json'
    assert result['diff']['after']['sha256'] == result['sha256'] and result['diff']['before']['sha256'] is None

    with open(path + '.json') as handle:
        metadata = json.load(handle)
    seal = http('GET', leader.url + '/v1/sys/seal-status')[1]
    assert metadata == result['metadata']
    assert metadata['sha256'] == result['sha256'] and metadata['size'] == result['size']
    assert metadata['cluster_id'] == seal['cluster_id'] and metadata['cluster_name'] == seal['cluster_name']
    assert metadata['flavour'] == 'openbao' and metadata['version'] == seal['version']
    assert metadata['leader_url'] == leader.url and metadata['leader_node_id'] == leader.node_id
    assert metadata['created'].endswith('Z') and metadata['format'] == 'trustroot.ops/raft-snapshot/v1'
    assert token not in result['_stdout'] and token not in json.dumps(metadata)

    inode = os.stat(path).st_ino
    # A run that keeps the recent snapshot, then one that replaces it, in one playbook run, the file read between.
    recent, after_recent, again = play(ansible, tmp_path, [
        task('vault_raft_snapshot', dict(args, skip_if_newer_than=3600)), stat_probe(path),
        task('vault_raft_snapshot', args)])
    assert not recent.get('failed'), recent
    assert recent['changed'] is False and recent['kept_recent'] is True
    assert recent['sha256'] == result['sha256'] and stat_of(after_recent)['inode'] == inode

    assert not again.get('failed'), again
    assert again['changed'] is True and os.stat(path).st_ino != inode
    assert again['sha256'] == sha256_of(path)


def test_tampered_or_empty_snapshots_are_rejected_before_any_call(ansible, bao_unsealed_shared, tmp_path):
    token = bao_unsealed_shared.root_token
    leader = active_node(bao_unsealed_shared)
    kv_enable(leader.url, token)
    path = str(tmp_path / 'raft.snap')
    saved = ansible.module('vault_raft_snapshot', {'url': leader.url, 'token': token, 'path': path})
    assert not saved.get('failed'), saved
    kv_put(leader.url, token, 'app', {'password': 'after-snapshot'})

    tampered = str(tmp_path / 'tampered.snap')
    with open(path, 'rb') as handle:
        data = bytearray(handle.read())
    data[len(data) // 2] ^= 0x01
    with open(tampered, 'wb') as handle:
        handle.write(bytes(data))
    with open(path + '.json') as src, open(tampered + '.json', 'w') as dst:
        dst.write(src.read())
    empty = str(tmp_path / 'empty.snap')
    open(empty, 'wb').close()

    base = {'state': 'restored', 'url': leader.url, 'token': token}
    results = run_tasks(ansible, [
        dict(base, path=tampered),
        dict(base, path=path, sha256='0' * 64),
        dict(base, path=empty, sha256=EMPTY_SHA256),
        dict(base, path=str(tmp_path / 'nometa.snap')),
        dict(base, path=path, sha256='not-a-checksum'),
    ])
    assert results[0]['failed'] and 'sha256 mismatch for %s' % tampered in results[0]['msg']
    assert saved['sha256'] in results[0]['msg']
    assert results[1]['failed'] and 'sha256 mismatch' in results[1]['msg'] and '0' * 64 in results[1]['msg']
    assert results[2]['failed'] and '0 bytes' in results[2]['msg']
    assert results[3]['failed'] and results[3]['msg'].startswith('sha256 is required')
    assert results[4]['failed'] and 'sha256 must be 64 hexadecimal digits' in results[4]['msg']
    assert all(r['changed'] is False for r in results)
    assert kv_get(leader.url, token, 'app') == {'password': 'after-snapshot'}


def test_unwritable_paths_and_bad_inputs(ansible, bao_unsealed_shared, tmp_path):
    token = bao_unsealed_shared.root_token
    leader = active_node(bao_unsealed_shared)
    missing_dir = str(tmp_path / 'no-such-dir' / 'raft.snap')
    proc_path = '/proc/trustroot-raft-test.snap'
    results = run_tasks(ansible, [
        {'url': leader.url, 'token': token, 'path': missing_dir},
        {'url': leader.url, 'token': token, 'path': proc_path},
        {'url': leader.url, 'token': token, 'path': str(tmp_path)},
        {'url': leader.url, 'path': str(tmp_path / 'a.snap')},
        {'url': leader.url, 'token': token, 'path': str(tmp_path / 'b.snap'), 'skip_if_newer_than': -5},
        {'url': leader.url, 'token': token, 'path': str(tmp_path / 'c.snap'), 'force': True},
        {'url': leader.url, 'token': token, 'path': str(tmp_path / 'd.snap'), 'state': 'restored',
         'skip_if_newer_than': 60},
        {'token': token, 'path': str(tmp_path / 'e.snap')},
    ])
    messages = [r['msg'] for r in results]
    assert all(r['failed'] for r in results), messages
    assert messages[0] == 'path %s: directory %s does not exist' % (missing_dir, os.path.dirname(missing_dir))
    assert messages[1].startswith('path %s' % proc_path)
    assert 'is a directory' in messages[2]
    assert 'token is required' in messages[3]
    assert 'skip_if_newer_than must be a positive number' in messages[4]
    assert 'force applies only to state=restored' in messages[5]
    assert 'skip_if_newer_than applies only to state=saved' in messages[6]
    assert 'url or nodes is required' in messages[7]
    assert not os.path.exists(proc_path)
    assert os.listdir(str(tmp_path)) == ['ansible']


def test_restore_of_another_clusters_snapshot_needs_force(ansible, bao_unsealed_shared, bao_single, tmp_path):
    token = bao_unsealed_shared.root_token
    leader = active_node(bao_unsealed_shared)
    path = str(tmp_path / 'raft.snap')
    saved = ansible.module('vault_raft_snapshot', {'url': leader.url, 'token': token, 'path': path})
    assert not saved.get('failed'), saved

    # A second, single-node cluster with its own keys.
    status, init = http('PUT', bao_single.url + '/v1/sys/init', {'secret_shares': 1, 'secret_threshold': 1})
    assert status == 200, init
    http('PUT', bao_single.url + '/v1/sys/unseal', {'key': init['keys_base64'][0]})
    wait_for(lambda: http('GET', bao_single.url + '/v1/sys/leader')[1].get('is_self'), timeout=60,
             what='the second cluster to lead')
    other_token = init['root_token']
    args = {'state': 'restored', 'url': bao_single.url, 'token': other_token, 'path': path}

    refused = ansible.module('vault_raft_snapshot', args)
    assert refused['failed'] is True and 'force=true' in refused['msg']
    assert saved['metadata']['cluster_id'] in refused['msg']
    assert http('GET', bao_single.url + '/v1/sys/seal-status')[1]['n'] == 1

    forced = ansible.module('vault_raft_snapshot', dict(args, force=True))
    assert not forced.get('failed'), forced
    assert forced['changed'] is True and forced['endpoint'] == 'sys/storage/raft/snapshot-force'
    # The second cluster now holds the first one's data and keyring: it seals itself, and after a restart it
    # unseals with the first cluster's keys and answers to its root token.
    wait_for(lambda: http('GET', bao_single.url + '/v1/sys/seal-status')[1]['sealed'], timeout=60,
             what='the second cluster to seal after the forced restore')
    bao_single.restart()
    seal = http('GET', bao_single.url + '/v1/sys/seal-status')[1]
    assert (seal['n'], seal['t']) == (3, 2)
    for key in bao_unsealed_shared.keys[:bao_unsealed_shared.threshold]:
        http('PUT', bao_single.url + '/v1/sys/unseal', {'key': key})
    wait_for(lambda: http('GET', bao_single.url + '/v1/sys/leader')[1].get('is_self'), timeout=60,
             what='the second cluster to lead with the first cluster\'s keys')
    assert http('GET', bao_single.url + '/v1/sys/seal-status')[1]['cluster_id'] == saved['metadata']['cluster_id']
    assert http('GET', bao_single.url + '/v1/auth/token/lookup-self', token=token)[0] == 200
    assert other_token not in forced['_stdout'] and token not in forced['_stdout']

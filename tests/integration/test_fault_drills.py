"""Fault drills on real servers and a real filesystem: a node SIGKILLed in the middle of an unseal and of a raft
snapshot download, and a backup written into a filesystem that fills up.

Every kill is triggered by a state the test observes (a node's seal status, the destination's temporary file),
never by a sleep, so that the fault lands in the middle of the run whatever the speed of the machine."""

import base64
import ctypes
import json
import os
import select
import signal
import struct
import subprocess
import threading
import time

import pytest

from tests.lab.common import tmpfs
from tests.lab.openbao import http, mount_kv

IN_CREATE = 0x100


def listing(path):
    return sorted(os.listdir(str(path)))


def module_tasks(ansible, tasks):
    """Run (module, args, check_mode) tasks in ONE ansible-playbook run (one start instead of several), each
    ignore_errors; return their registered results in order."""
    out = os.path.join(ansible.workdir, 'tasks-%d.json' % len(ansible.runs))
    play = [{'name': 'task %d' % i, 'trustroot.ops.%s' % name: args, 'check_mode': check, 'register': 'task%d' % i,
             'ignore_errors': True} for i, (name, args, check) in enumerate(tasks)]
    play.append({'name': 'save results', 'ansible.builtin.copy': {
        'content': '{{ [%s] | to_json }}' % ', '.join('task%d' % i for i in range(len(tasks))), 'dest': out,
        'mode': '0600'}, 'check_mode': False})
    proc = ansible.playbook(ansible.write_playbook('tasks-%d.yml' % len(ansible.runs), json.dumps(
        [{'hosts': 'localhost', 'gather_facts': False, 'tasks': play}])))
    assert os.path.exists(out), proc.stdout + proc.stderr
    with open(out) as handle:
        results = json.load(handle)
    os.remove(out)
    return results


# --- a node killed in the middle of an unseal ---------------------------------------------------------------

def kill_once_reached(cluster, before, victim):
    """SIGSTOP ``victim`` now and start a thread that SIGKILLs it once every node of ``before`` is unsealed.

    The module unseals the nodes in the order given; with ``before`` listed ahead of ``victim`` it has finished
    them and reached the frozen victim (its call hangs there, or is about to be made) when the kill comes: the
    node dies in the middle of the run, between the module's calls, at the same point on every machine."""
    proc = victim.proc
    proc.send_signal(signal.SIGSTOP)
    record = {'killed': False}

    def watch():
        while not all(http('GET', node.url + '/v1/sys/seal-status')[1]['sealed'] is False for node in before):
            if record.get('stop'):
                break
            time.sleep(0.05)   # the victim is frozen: the module waits for it, however late the kill comes
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        record['killed'] = True
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, record


def test_node_killed_mid_unseal_is_named_and_a_rerun_converges(ansible, bao_cluster, tmp_path):
    material = bao_cluster.write_init_file(tmp_path / 'init.json')
    first, victim, last = bao_cluster.nodes
    args = {'nodes': bao_cluster.urls, 'key_material_path': material, 'wait_timeout': 30}

    thread, record = kill_once_reached(bao_cluster, [first], victim)
    try:
        cut = ansible.module('vault_unseal', args)
    finally:
        record['stop'] = True
        thread.join(timeout=30)
    assert record['killed'] is True
    assert cut.get('failed') is True, cut
    assert cut['all_unsealed'] is False and cut['failed_nodes'] == [victim.url]
    by_url = dict((n['url'], n) for n in cut['nodes'])
    error = by_url[victim.url]['error']
    assert error and ('refused' in error or 'closed the connection' in error or 'unreachable' in error), error
    assert '%s: %s' % (victim.url, error) in cut['msg']
    assert by_url[victim.url]['keys_submitted'] == 0
    # The nodes on either side of it were unsealed all the same.
    for node in (first, last):
        assert by_url[node.url]['sealed'] is False and by_url[node.url]['error'] is None
        assert node.seal_status()['sealed'] is False
    for key in bao_cluster.keys + [bao_cluster.root_token]:
        assert key not in cut['_stdout']

    victim.start()
    again = ansible.module('vault_unseal', args)
    assert not again.get('failed'), again.get('msg')
    assert again['all_unsealed'] is True and again['changed'] is True
    assert [n['url'] for n in again['nodes'] if n['changed']] == [victim.url]
    assert [n['keys_submitted'] for n in again['nodes']] == [0, 2, 0]
    assert victim.seal_status()['sealed'] is False


# --- a full disk during a backup ---------------------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs: room for one archive of a 600 KiB incompressible part, not for two."""
    if os.geteuid() != 0:
        pytest.skip('mounting a tmpfs needs root')
    with tmpfs(tmp_path / 'small', '1m') as mount:
        yield mount


def test_backup_into_a_full_disk_fails_and_keeps_the_last_good_archive(ansible, small_tmpfs, tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    (src / 'datastore.sqlite3').write_bytes(b'SQLite format 3\x00' + os.urandom(600 * 1024))
    (src / 'keys.json').write_text('{"keys": [{"id": "x509-CA-A"}]}\n')
    args = {'system': 'spire', 'dest_dir': str(small_tmpfs), 'keep_count': 1,
            'parts': [{'name': 'datastore.sqlite3', 'path': str(src / 'datastore.sqlite3')},
                      {'name': 'keys.json', 'path': str(src / 'keys.json')}]}

    good = ansible.module('backup_archive', args)
    assert not good.get('failed'), good.get('msg')
    before = listing(small_tmpfs)
    assert before == sorted([os.path.basename(good['path']), os.path.basename(good['path']) + '.json'])
    with open(good['path'] + '.json', 'rb') as handle:
        sidecar_bytes = handle.read()

    # The next archive cannot fit (names have one-second resolution: the next run starts in a later second). The
    # last good one is verified in the same playbook, after the failure.
    verify_args = {'state': 'verified', 'dest_dir': str(small_tmpfs), 'system': 'spire'}
    time.sleep(1.05 - (time.time() % 1))
    full, verified = module_tasks(ansible, [('backup_archive', args, False), ('backup_archive', verify_args, False)])
    assert full.get('failed') is True, full
    assert full['changed'] is False
    assert 'no space left on device' in full['msg'].lower(), full['msg']
    assert str(small_tmpfs) in full['msg'], full['msg']
    # Nothing half-written left, the last good archive and its sidecar untouched (retention did not run).
    assert listing(small_tmpfs) == before
    with open(good['path'] + '.json', 'rb') as handle:
        assert handle.read() == sidecar_bytes

    assert not verified.get('failed'), verified.get('msg')
    assert verified['path'] == good['path'] and verified['sha256'] == good['sha256']


# --- the leader killed in the middle of a raft snapshot download -------------------------------------------

def kill_when_part_file_appears(directory, server):
    """Start a thread that SIGKILLs ``server`` the moment a temporary file (*.part) is created in ``directory``
    (inotify: no polling, no sleep): the module creates it once the server's answer has started, so the kill lands
    in the middle of the stream. Returns (thread, record); record['part_size'] is the file's size at the kill."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    assert fd >= 0 and libc.inotify_add_watch(fd, directory.encode(), IN_CREATE) >= 0, ctypes.get_errno()
    record = {'part_size': None, 'stop': False}
    proc = server.proc

    def watch():
        try:
            while not record['stop'] and proc.poll() is None:
                if not select.select([fd], [], [], 0.5)[0]:
                    continue
                data = os.read(fd, 65536)
                while data:
                    _wd, _mask, _cookie, length = struct.unpack_from('iIII', data)
                    name = data[16:16 + length].rstrip(b'\0').decode()
                    data = data[16 + length:]
                    if name.endswith('.part'):
                        proc.send_signal(signal.SIGKILL)
                        proc.wait()
                        try:
                            record['part_size'] = os.path.getsize(os.path.join(directory, name))
                        except OSError:
                            record['part_size'] = 0   # already removed by the module
                        return
        finally:
            os.close(fd)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, record


def test_leader_killed_mid_snapshot_keeps_the_previous_snapshot(ansible, bao_unsealed, tmp_path):
    token = bao_unsealed.root_token
    leader, _followers = bao_unsealed.leader_and_followers()
    backups = tmp_path / 'backups'
    backups.mkdir()
    path = str(backups / 'raft.snap')
    args = {'nodes': bao_unsealed.urls, 'token': token, 'path': path}

    good = ansible.module('vault_raft_snapshot', args)
    assert not good.get('failed'), good.get('msg')
    with open(path, 'rb') as handle:
        good_bytes = handle.read()
    with open(path + '.json', 'rb') as handle:
        good_metadata = handle.read()

    # About 16 MB of KV data (12 MB of it random): the download is long enough to be cut in the middle.
    mount_kv(leader.url, token, 'blob', version='1')
    for index in range(32):
        status, body = http('POST', leader.url + '/v1/blob/chunk%02d' % index,
                            {'data': base64.b64encode(os.urandom(384 * 1024)).decode()}, token=token, timeout=60)
        assert status in (200, 204), body

    thread, record = kill_when_part_file_appears(str(backups), leader)
    try:
        cut = ansible.module('vault_raft_snapshot', args)
    finally:
        record['stop'] = True
        thread.join(timeout=30)
    assert record['part_size'] is not None, 'the leader was never killed: %s' % cut.get('msg')
    assert cut.get('failed') is True, cut
    assert cut['changed'] is False
    assert leader.url in cut['msg'] and 'sys/storage/raft/snapshot' in cut['msg'], cut['msg']
    # No partial file, no temporary file; the previous snapshot and its metadata untouched.
    assert listing(backups) == ['raft.snap', 'raft.snap.json']
    with open(path, 'rb') as handle:
        assert handle.read() == good_bytes
    with open(path + '.json', 'rb') as handle:
        assert handle.read() == good_metadata

    # The node back (sealed after the kill), unsealed, and a new leader among the three: the re-run succeeds.
    leader.start()
    for key in bao_unsealed.keys[:bao_unsealed.threshold]:
        http('PUT', leader.url + '/v1/sys/unseal', {'key': key})
    bao_unsealed.cluster.wait_unsealed()
    bao_unsealed.leader_and_followers()
    # The re-run, then the module's own check before a restore (the file against its metadata: sha256, size).
    again, verified = module_tasks(ansible, [
        ('vault_raft_snapshot', args, False),
        ('vault_raft_snapshot', {'state': 'restored', 'nodes': bao_unsealed.urls, 'token': token, 'path': path}, True)])
    assert not again.get('failed'), again.get('msg')
    assert again['changed'] is True and again['size'] > record['part_size'] and again['size'] > 8 * 1024 * 1024
    assert listing(backups) == ['raft.snap', 'raft.snap.json']
    assert subprocess.run(['gzip', '-t', path], capture_output=True, check=False).returncode == 0
    assert not verified.get('failed'), verified.get('msg')
    assert verified['sha256'] == again['sha256'] and verified['size'] == again['size']

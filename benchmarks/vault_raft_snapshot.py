"""Benchmark: trustroot.ops.vault_raft_snapshot against raw `bao operator raft snapshot save|restore`.

One real OpenBao raft cluster on loopback (tests/lab/openbao.py) is filled with KV secrets of random
values (written concurrently through the API) until its snapshot reaches each size of --sizes. At each
size, the module and the raw CLI save and then restore the same cluster in turn (module, raw, module,
raw ...), so drifts of the machine's speed hit both alike. Throughput is the snapshot's size over the wall
time of the process; the ratio module / raw is taken pair by pair and the median quoted (target >= 0.9x).
The module runs as Ansible runs it on the managed host (python module.py args.json), without a controller:
at these sizes the controller's fixed 1-2 s would measure Ansible, not the module. Its peak RSS (VmHWM, from
the kernel's accounting of the finished process) is reported at every size: it must not grow with the
snapshot (the module streams it in 64 KiB chunks, both ways).

    .venv/bin/python benchmarks/vault_raft_snapshot.py                       # sizes 100 and 500 MB, 3 pairs
    .venv/bin/python benchmarks/vault_raft_snapshot.py --sizes 50,200 --pairs 2

Prints a table and writes benchmarks/results/vault_raft_snapshot.json.
"""

import argparse
import base64
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.lab.openbao import BAO_BIN, BaoCluster, http  # noqa: E402

MODULE = os.path.join(ROOT, 'plugins', 'modules', 'vault_raft_snapshot.py')
PYTHON = os.path.join(ROOT, '.venv', 'bin', 'python')
COLLECTIONS_PATH = os.path.join(ROOT, '.cache', 'collections')
TARGET = 0.9
MB = 1000 * 1000
# One KV value: random bytes, base64 (the snapshot is gzip: random data keeps its size). Raft refuses
# entries over 1 MiB by default.
VALUE_BYTES = 512 * 1024


def timed_process(argv, env=None):
    """(wall seconds, peak RSS KiB of the process, CompletedProcess-like (rc, out, err)) of one command."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return elapsed, usage.ru_maxrss, (proc.returncode, out.read().decode(errors='replace'),
                                          err.read().decode(errors='replace'))


def check(result, what):
    rc, out, err = result
    if rc != 0:
        raise RuntimeError('%s failed (%d): %s %s' % (what, rc, out[-2000:], err[-2000:]))
    return out


class Lab(object):
    """A raft cluster, initialized and unsealed, with a KV v1 mount ``bench``."""

    def __init__(self, workdir, size):
        self.workdir = workdir
        self.cluster = BaoCluster(workdir, size=size).start()
        init = self.cluster.init(shares=1, threshold=1)
        self.token = init['root_token']
        self.cluster.unseal_raw(init['keys_base64'], 1)
        self.cluster.wait_leader(self.token)
        self.cluster.wait_peers(self.token, count=size)
        self.written = 0
        status, body = http('POST', self.leader_url() + '/v1/sys/mounts/bench', {'type': 'kv', 'options': {
            'version': '1'}}, token=self.token)
        if status not in (200, 204):
            raise RuntimeError('mount: %s %s' % (status, body))

    def leader_url(self):
        return self.cluster.leader_and_followers()[0].url

    def fill(self, total_bytes, workers=8):
        """Write random values until ``total_bytes`` of values have been written in all."""
        url = self.leader_url()
        first = self.written // VALUE_BYTES
        count = max(0, (total_bytes - self.written) // VALUE_BYTES)

        def put(index):
            value = base64.b64encode(os.urandom(VALUE_BYTES * 3 // 4)).decode()
            status, body = http('POST', '%s/v1/bench/s%06d' % (url, index), {'v': value}, token=self.token,
                                timeout=120)
            if status not in (200, 204):
                raise RuntimeError('KV write: %s %s' % (status, body))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(put, range(first, first + count)))
        self.written += count * VALUE_BYTES

    def env(self):
        env = dict((k, v) for k, v in os.environ.items() if not k.startswith(('VAULT_', 'BAO_')))
        env.update(BAO_ADDR=self.leader_url(), BAO_TOKEN=self.token, PYTHONPATH=COLLECTIONS_PATH)
        return env

    def raw_save(self, path):
        return timed_process([BAO_BIN, 'operator', 'raft', 'snapshot', 'save', path], env=self.env())

    def raw_restore(self, path):
        return timed_process([BAO_BIN, 'operator', 'raft', 'snapshot', 'restore', path], env=self.env())

    def module(self, args_dir, args):
        args = dict(args, url=self.leader_url(), token=self.token, timeout=1800)
        path = os.path.join(args_dir, 'args.json')
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
        seconds, kib, result = timed_process([PYTHON, MODULE, path], env=self.env())
        answer = json.loads(check(result, 'module %s' % args.get('state')))
        if answer.get('failed'):
            raise RuntimeError('module %s failed: %s' % (args.get('state'), answer.get('msg')))
        return seconds, kib, answer

    def wait_active(self):
        self.cluster.wait_unsealed(timeout=300)
        self.leader_url()

    def stop(self):
        self.cluster.stop()


def one_size(lab, work, size_mb, pairs):
    """Fill to ``size_mb`` of snapshot, then ``pairs`` x (module save, raw save, module restore, raw restore)."""
    probe = os.path.join(work, 'probe.snap')
    started = time.perf_counter()
    while True:
        check(lab.raw_save(probe)[2], 'raw save')
        have = os.path.getsize(probe)
        if have >= size_mb * MB:
            break
        # Values are base64 (6 bits of entropy a byte): the snapshot grows by about 3/4 of what is written.
        lab.fill(lab.written + int((size_mb * MB - have) * 4 / 3) + VALUE_BYTES)
    fill_seconds = time.perf_counter() - started
    module_path = os.path.join(work, 'module.snap')
    raw_path = os.path.join(work, 'raw.snap')
    rows = []
    for _pair in range(pairs):
        m_save_s, m_save_kib, saved = lab.module(work, {'state': 'saved', 'path': module_path})
        r_save_s, r_save_kib, result = lab.raw_save(raw_path)
        check(result, 'raw save')
        m_restore_s, m_restore_kib, _answer = lab.module(work, {'state': 'restored', 'path': module_path})
        lab.wait_active()
        r_restore_s, r_restore_kib, result = lab.raw_restore(raw_path)
        check(result, 'raw restore')
        lab.wait_active()
        module_mb, raw_mb = saved['size'] / MB, os.path.getsize(raw_path) / MB
        rows.append({
            'snapshot_mb_module': round(module_mb, 1), 'snapshot_mb_raw': round(raw_mb, 1),
            'save_s': [round(m_save_s, 2), round(r_save_s, 2)],
            'restore_s': [round(m_restore_s, 2), round(r_restore_s, 2)],
            'save_mb_s': [round(module_mb / m_save_s, 1), round(raw_mb / r_save_s, 1)],
            'restore_mb_s': [round(module_mb / m_restore_s, 1), round(raw_mb / r_restore_s, 1)],
            'save_ratio': round((module_mb / m_save_s) / (raw_mb / r_save_s), 3),
            'restore_ratio': round((module_mb / m_restore_s) / (raw_mb / r_restore_s), 3),
            'module_peak_mib': [round(m_save_kib / 1024, 1), round(m_restore_kib / 1024, 1)],
            'raw_peak_mib': [round(r_save_kib / 1024, 1), round(r_restore_kib / 1024, 1)],
            'load_average': os.getloadavg()[0]})
    return {'target_mb': size_mb, 'fill_seconds': round(fill_seconds, 1), 'pairs': rows,
            'median_save_ratio': statistics.median(r['save_ratio'] for r in rows),
            'median_restore_ratio': statistics.median(r['restore_ratio'] for r in rows),
            'module_peak_mib_max': max(max(r['module_peak_mib']) for r in rows)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='100,500', help='snapshot sizes in MB (10^6 bytes), ascending')
    parser.add_argument('--pairs', type=int, default=3)
    parser.add_argument('--nodes', type=int, default=1, help='raft nodes in the cluster')
    parser.add_argument('--output', default=os.path.join(ROOT, 'benchmarks', 'results'))
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(','))
    base = tempfile.mkdtemp(prefix='bench-raft-')
    report = {'started': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
              'cpus': os.cpu_count(), 'load_average_at_start': os.getloadavg(), 'parameters': vars(args),
              'target_ratio': TARGET, 'sizes': []}
    lab = Lab(os.path.join(base, 'cluster'), args.nodes)
    try:
        work = os.path.join(base, 'work')
        os.makedirs(work)
        for size in sizes:
            result = one_size(lab, work, size, args.pairs)
            report['sizes'].append(result)
            print('filled to %d MB in %.0fs' % (size, result['fill_seconds']), flush=True)
    finally:
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)
    print('\nper pair: module vs raw `bao operator raft snapshot` (MB/s; ratio = module/raw); peak RSS in MiB')
    print('%-9s %-22s %-22s %-13s %-13s' % ('snapshot', 'save MB/s (ratio)', 'restore MB/s (ratio)',
                                            'module peak', 'raw peak'))
    for size in report['sizes']:
        for row in size['pairs']:
            print('%6.0f MB %6.1f/%6.1f (%.2fx) %6.1f/%6.1f (%.2fx)  %5.1f/%5.1f   %5.1f/%5.1f' % (
                row['snapshot_mb_module'], row['save_mb_s'][0], row['save_mb_s'][1], row['save_ratio'],
                row['restore_mb_s'][0], row['restore_mb_s'][1], row['restore_ratio'], row['module_peak_mib'][0],
                row['module_peak_mib'][1], row['raw_peak_mib'][0], row['raw_peak_mib'][1]))
        print('  %d MB: median ratio save %.2fx, restore %.2fx (target >= %.1fx); module peak RSS %.1f MiB' % (
            size['target_mb'], size['median_save_ratio'], size['median_restore_ratio'], TARGET,
            size['module_peak_mib_max']))
    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, 'vault_raft_snapshot.json')
    with open(path, 'w') as handle:
        json.dump(report, handle, indent=2)
    print('written: %s' % path)
    return 0


if __name__ == '__main__':
    sys.exit(main())

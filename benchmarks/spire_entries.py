"""Benchmark: trustroot.ops.spire_entry against raw spire-server commands, on real SPIRE servers.

Every scenario runs on a fresh server started by the lab (tests/lab/spire.py); servers run one at a
time so they do not compete for the CPU. The module runs as the only task of a real ansible-playbook
run (local connection); the time compared is that of the whole ansible-playbook command. The entries
reach the module either inline (`entries`, read by the controller from a JSON file with the file
lookup) or through `entries_file`.

Scenarios
  floor      ansible-playbook with one ansible.builtin.ping task: Ansible's fixed cost, to read the others by
  create     N entries from empty: spire_entry (defaults, the earlier defaults batch 50, other batch_size /
             parallel settings) vs ONE raw `entry create -data -` of the same entries (target: <= 1.25x raw)
  noop       re-run of spire_entry with the same N entries vs ONE raw `entry show -output json`, best of
             --repeat runs for both. Targets: the whole ansible-playbook run with the entries inline <= 3x raw;
             the module process alone <= 1.5x raw (<= 1.2x in the large scenario)
  per-call   M entries created with one `spire-server entry create` per entry (how other tools do it)
             vs spire_entry creating the same M entries
  large      L entries on the server (seeded raw); spire_entry reconciles L desired entries of which 1%
             changed, 0.5% new and 0.5% to prune; then a no-op re-run. Peak RSS (VmHWM) of the module
             process (target <= 400 MiB at 250,000) and of the ansible-playbook controller, polled from /proc.

"module" is the wall time of the module process alone (first to last sight, polled every 50 ms); the rest of
an inline run beyond the floor is Ansible's own handling of the entries as task arguments (templating,
serialising them into the module's payload on the controller, and AnsibleModule's per-entry sub-option
checks in the module); entries_file skips all of it (the module streams the file).

    .venv/bin/python benchmarks/spire_entries.py                # N=10000 M=1000 L=100000
    .venv/bin/python benchmarks/spire_entries.py --entries 2000 --per-call 200 --large 20000

Prints a table and writes benchmarks/results/spire_entries-<UTC time>.json.
"""

import argparse
import collections
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.lab.spire import SpireServer  # noqa: E402

VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
COLLECTIONS_PATH = os.path.join(ROOT, '.cache', 'collections')
PREFIX = 'bench'
TARGETS = {'create': 1.25, 'noop': 3.0, 'noop_module': 1.5, 'noop_module_large': 1.2, 'large_module_mib': 400}


def make_entries(count, start=0, ttl=0):
    """Desired entries in the module's input shape."""
    return [{'spiffe_id': 'spiffe://example.org/bench/w%d' % i,
             'parent_id': 'spiffe://example.org/spire/agent/join_token/bench-agent-%d' % (i % 100),
             'selectors': ['unix:uid:%d' % (100000 + i), 'k8s:ns:ns%d' % (i % 50)],
             'x509_svid_ttl': ttl} for i in range(start, start + count)]


def to_data(entries):
    """The same entries in the `entry create -data` input shape."""
    return json.dumps({'entries': [{
        'spiffe_id': e['spiffe_id'], 'parent_id': e['parent_id'],
        'selectors': [dict(zip(('type', 'value'), s.split(':', 1))) for s in e['selectors']],
        'x509_svid_ttl': e.get('x509_svid_ttl', 0)} for e in entries]})


class Peak(object):
    """Polls /proc for the peak RSS (VmHWM) of the module process and of the controller process."""

    def __init__(self, controller_pid, marker='AnsiballZ_spire_entry'):
        self.controller_pid = controller_pid
        self.marker = marker.encode()
        self.module_kib = 0
        self.controller_kib = 0
        self.module_pids = set()
        self.module_first = None
        self.module_last = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def module_seconds(self):
        """Approximate wall time of the module process (first to last sight, polled every 50 ms)."""
        if self.module_first is None:
            return None
        return self.module_last - self.module_first

    @staticmethod
    def _hwm(pid):
        try:
            with open('/proc/%s/status' % pid) as handle:
                for line in handle:
                    if line.startswith('VmHWM:'):
                        return int(line.split()[1])
        except (OSError, IOError, ValueError):
            pass
        return 0

    def _run(self):
        while not self._stop.is_set():
            self.controller_kib = max(self.controller_kib, self._hwm(self.controller_pid))
            for pid in os.listdir('/proc'):
                if not pid.isdigit():
                    continue
                try:
                    with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                        cmdline = handle.read()
                except (OSError, IOError):
                    continue
                # The python process that runs the module (not the /bin/sh that starts it).
                if self.marker in cmdline and b'python' in cmdline.split(b'\0')[0]:
                    now = time.perf_counter()
                    self.module_first = self.module_first or now
                    self.module_last = now
                    self.module_pids.add(pid)
                    self.module_kib = max(self.module_kib, self._hwm(pid))
            self._stop.wait(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


Run = collections.namedtuple('Run', 'seconds counts module_kib controller_kib module_seconds')


def env(extra=None):
    result = dict(os.environ)
    result.update({
        'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS_PATH,
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_PYTHON_INTERPRETER': os.path.join(VENV_BIN, 'python'),
        'ANSIBLE_RETRY_FILES_ENABLED': '0',
        'ANSIBLE_LOCALHOST_WARNING': '0',
        'ANSIBLE_INVENTORY_UNPARSED_WARNING': '0',
        'PATH': VENV_BIN + os.pathsep + result.get('PATH', ''),
    })
    result.update(extra or {})
    return result


def run_floor(workdir):
    """ansible-playbook with one ansible.builtin.ping task (local connection): Ansible's fixed cost."""
    play_path = os.path.join(workdir, 'floor.yml')
    with open(play_path, 'w') as handle:
        json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': [{'ansible.builtin.ping': {}}]}], handle)
    argv = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', play_path]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=workdir,
                          env=env({'ANSIBLE_STDOUT_CALLBACK': 'ansible.builtin.minimal'}), check=False)
    if proc.returncode != 0:
        raise RuntimeError('ansible-playbook failed:\n%s' % proc.stdout[-4000:])


def run_module(workdir, server, entries, prune=False, name='run', mode='inline', batch_size=500, parallel=2):
    """One spire_entry task through ansible-playbook: (seconds, counts, module peak KiB, controller peak KiB).

    mode 'inline': the entries are the task's `entries`, read by the controller from a JSON file with the
    file lookup (Ansible parses it once as JSON; a vars_files of the same JSON goes through the YAML loader
    and costs the controller several times more). mode 'file': the module streams them from
    `entries_file` itself."""
    entries_path = os.path.join(workdir, '%s-entries.json' % name)
    with open(entries_path, 'w') as handle:
        json.dump(entries, handle)
    task = {'socket_path': server.socket_path, 'spire_server_path': server.binary, 'entry_id_prefix': PREFIX,
            'prune': prune, 'report_limit': 0, 'timeout': 600, 'batch_size': batch_size, 'parallel': parallel}
    if mode == 'file':
        task['entries_file'] = entries_path
    else:
        task['entries'] = "{{ lookup('ansible.builtin.file', '%s') | from_json }}" % entries_path
    # One task only; its result comes back through the minimal stdout callback.
    play = [{'hosts': 'localhost', 'gather_facts': False, 'tasks': [
        {'name': 'spire_entry', 'trustroot.ops.spire_entry': task}]}]
    play_path = os.path.join(workdir, '%s.yml' % name)
    with open(play_path, 'w') as handle:
        json.dump(play, handle)
    argv = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', play_path]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env({'ANSIBLE_STDOUT_CALLBACK': 'ansible.builtin.minimal'}), cwd=workdir)
    with Peak(proc.pid) as peak:
        out = proc.communicate()[0]
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError('ansible-playbook failed:\n%s' % out[-4000:])
    result = json.loads(out[out.index('=> {') + 3:])
    return Run(elapsed, result['counts'], peak.module_kib, peak.controller_kib, peak.module_seconds)


def best(times, func, *args):
    """The fastest of ``times`` runs of func(*args) (the machine may be shared): (seconds, last value)."""
    results = [timed(func, *args) for dummy in range(times)]
    return min(r[0] for r in results), results[-1][1]


def timed(func, *args):
    started = time.perf_counter()
    value = func(*args)
    return time.perf_counter() - started, value


def raw_create(server, entries, chunk=None):
    chunk = chunk or len(entries)
    for start in range(0, len(entries), chunk):
        proc = server.cli_raw(['entry', 'create', '-data', '-'], data=to_data(entries[start:start + chunk]),
                              timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)
        failed = [r for r in json.loads(proc.stdout)['results'] if r['status']['code'] != 0]
        if failed:
            raise RuntimeError('%d raw creations failed: %s' % (len(failed), failed[0]))


def raw_show(server):
    proc = server.cli_raw(['entry', 'show'], timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return len(json.loads(proc.stdout)['entries'])


def raw_per_call(server, entries):
    for entry in entries:
        argv = ['entry', 'create', '-spiffeID', entry['spiffe_id'], '-parentID', entry['parent_id']]
        for selector in entry['selectors']:
            argv += ['-selector', selector]
        proc = server.cli_raw(argv, output_json=False)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)


class Fresh(object):
    """A fresh lab server for one scenario, removed afterwards."""

    def __init__(self, base, name):
        self.base = base
        self.name = name

    def __enter__(self):
        self.server = SpireServer(self.base, name=self.name, log_level='WARN').start()
        return self.server

    def __exit__(self, *exc):
        self.server.cleanup()
        shutil.rmtree(self.server.workdir, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--entries', type=int, default=10000)
    parser.add_argument('--per-call', type=int, default=1000)
    parser.add_argument('--large', type=int, default=100000, help='0 skips the large scenario')
    parser.add_argument('--large-batch-size', type=int, default=500)
    parser.add_argument('--large-parallel', type=int, default=2)
    parser.add_argument('--large-modes', default='file,inline', help='how the large scenario passes its entries')
    parser.add_argument('--only-large', action='store_true', help='run the large scenario alone')
    parser.add_argument('--repeat', type=int, default=3, help='no-op and read timings: best of this many')
    parser.add_argument('--output', default=os.path.join(ROOT, 'benchmarks', 'results'))
    args = parser.parse_args(argv)

    base = tempfile.mkdtemp(prefix='spire-bench-')
    work = os.path.join(base, 'ansible')
    os.makedirs(work)
    rows = []
    scenarios = {}
    report = {'started': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
              'cpus': os.cpu_count(), 'load_average_at_start': os.getloadavg(),
              'spire_server': subprocess.run([os.path.join(ROOT, '.cache', 'bin', 'spire-server'), '--version'],
                                             capture_output=True, text=True, check=False).stderr.strip(),
              'parameters': vars(args), 'scenarios': scenarios}
    try:
        if args.only_large:
            run_large(args, base, work, rows, scenarios)
            return report_rows(args, report, rows, None)
        n = args.entries
        entries = make_entries(n)
        with Fresh(base, 'raw-create') as server:
            raw_seconds = timed(raw_create, server, entries)[0]
        scenarios['raw_create'] = {'entries': n, 'seconds': raw_seconds}
        floor_seconds = best(args.repeat, run_floor, work)[0]
        scenarios['floor'] = {'seconds': floor_seconds}
        # (label, mode, batch_size, parallel, followed by no-op re-runs)
        variants = (('inline, defaults: batch 500, parallel 2', 'inline', 500, 2, True),
                    ('inline, batch 50, parallel 2 (earlier defaults)', 'inline', 50, 2, False),
                    ('entries_file, defaults: batch 500, parallel 2', 'file', 500, 2, True),
                    ('entries_file, batch 1000, parallel 4', 'file', 1000, 4, False))
        for label, mode, batch_size, parallel, with_noop in variants:
            key = '%s_%d_%d' % (mode, batch_size, parallel)
            with Fresh(base, 'create-%s' % key) as server:
                create = run_module(work, server, entries, name='create-' + key, mode=mode, batch_size=batch_size,
                                    parallel=parallel)
                assert create.counts['created'] == n, create.counts
                if not with_noop:
                    scenarios['create_' + key] = dict(create._asdict(), entries=n, mode=mode, batch_size=batch_size,
                                                      parallel=parallel, raw_seconds=raw_seconds,
                                                      ratio=create.seconds / raw_seconds, target=TARGETS['create'])
                    rows.append(('create %d (%s)' % (n, label), create, '1 x entry create -data', raw_seconds,
                                 TARGETS['create'], None))
                    continue
                noops = [run_module(work, server, entries, name='noop-%s-%d' % (key, i), mode=mode,
                                    batch_size=batch_size) for i in range(args.repeat)]
                noop = min(noops, key=lambda r: r.seconds)
                assert noop.counts['unchanged'] == n and noop.counts['created'] == 0, noop.counts
                show_seconds, shown = best(args.repeat, raw_show, server)
                assert shown == n
            scenarios['create_' + key] = dict(create._asdict(), entries=n, mode=mode, batch_size=batch_size,
                                              parallel=parallel, raw_seconds=raw_seconds,
                                              ratio=create.seconds / raw_seconds, target=TARGETS['create'])
            scenarios['noop_' + key] = dict(noop._asdict(), entries=n, mode=mode, raw_seconds=show_seconds,
                                            ratio=noop.seconds / show_seconds, target=TARGETS['noop'],
                                            module_ratio=(noop.module_seconds or 0) / show_seconds,
                                            module_target=TARGETS['noop_module'])
            rows.append(('create %d (%s)' % (n, label), create, '1 x entry create -data', raw_seconds,
                         TARGETS['create'], None))
            rows.append(('no-op %d (%s)' % (n, mode if mode == 'inline' else 'entries_file'), noop,
                         '1 x entry show', show_seconds, TARGETS['noop'], TARGETS['noop_module']))

        m = args.per_call
        small = make_entries(m)
        with Fresh(base, 'per-call') as server:
            per_call_seconds = timed(raw_per_call, server, small)[0]
        with Fresh(base, 'module-small') as server:
            run = run_module(work, server, small, name='small')
            assert run.counts['created'] == m
        scenarios['per_call'] = dict(run._asdict(), entries=m, per_call_seconds=per_call_seconds,
                                     per_call_over_module=per_call_seconds / run.seconds)
        rows.append(('create %d (inline, defaults)' % m, run, '%d x entry create' % m, per_call_seconds, None, None))

        if args.large:
            run_large(args, base, work, rows, scenarios)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return report_rows(args, report, rows, floor_seconds)


def report_rows(args, report, rows, floor_seconds):
    """Print the table and write the JSON report."""
    print('\nratio = whole ansible-playbook run / baseline; "module" = wall time of the module process alone;')
    if floor_seconds is not None:
        print('ansible-playbook with one ping task (the floor): %.2f s' % floor_seconds)
    print('%-58s %8s %8s   %-24s %8s %7s %8s %8s %8s' % (
        'spire_entry scenario', 'seconds', 'module', 'baseline', 'seconds', 'ratio', 'target', 'module', 'target'))
    for label, run, baseline, base_s, target, module_target in rows:
        module_ratio = '%.2fx' % (run.module_seconds / base_s) if run.module_seconds and module_target else '-'
        print('%-58s %8.2f %8s   %-24s %8.2f %6.2fx %8s %8s %8s' % (
            label, run.seconds, '%.2f' % run.module_seconds if run.module_seconds else '-', baseline, base_s,
            run.seconds / base_s, '<=%.2fx' % target if target else '-', module_ratio,
            '<=%.2fx' % module_target if module_target else '-'))
    print('\npeak RSS (VmHWM) in MiB: module process / ansible-playbook controller')
    for label, run, baseline, base_s, target, module_target in rows:
        print('  %-58s %7.1f / %.1f' % (label, run.module_kib / 1024.0, run.controller_kib / 1024.0))
    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, 'spire_entries-%s.json' % report['started'].replace(':', ''))
    with open(path, 'w') as handle:
        json.dump(report, handle, indent=2)
    print('\nwritten: %s' % path)
    return 0


def run_large(args, base, work, rows, scenarios):
    """L owned entries on the server; reconcile L desired (1% changed, 0.5% new, 0.5% pruned), then a no-op."""
    big = args.large
    changed, added, pruned = big // 100, big // 200, big // 200
    desired = make_entries(big - pruned)
    for entry in desired[:changed]:
        entry['x509_svid_ttl'] = 1800
    desired += make_entries(added, start=big)
    expected = {'created': added, 'updated': changed, 'deleted': pruned, 'unchanged': big - pruned - changed,
                'conflicts': 0}
    with Fresh(base, 'large') as server:
        seed_seconds = seed_owned(server, big)
        snapshot = snapshot_datastore(server)
        for mode in args.large_modes.split(','):
            restore_datastore(server, snapshot)
            run = run_module(work, server, desired, prune=True, name='large-' + mode, mode=mode,
                             batch_size=args.large_batch_size, parallel=args.large_parallel)
            assert run.counts == expected, run.counts
            noop = run_module(work, server, desired, prune=True, name='large-noop-' + mode, mode=mode,
                              batch_size=args.large_batch_size)
            assert noop.counts['unchanged'] == len(desired), noop.counts
            show_seconds, shown = best(args.repeat, raw_show, server)
            assert shown == len(desired)
            scenarios['large_' + mode] = dict(run._asdict(), entries_on_server=big, desired=len(desired), mode=mode,
                                              batch_size=args.large_batch_size, seed_seconds=seed_seconds,
                                              raw_show_seconds=show_seconds)
            scenarios['large_noop_' + mode] = dict(noop._asdict(), entries=len(desired), mode=mode,
                                                   raw_seconds=show_seconds, ratio=noop.seconds / show_seconds,
                                                   target=TARGETS['noop'],
                                                   module_ratio=(noop.module_seconds or 0) / show_seconds,
                                                   module_target=TARGETS['noop_module_large'],
                                                   module_mib_target=TARGETS['large_module_mib'])
            label = 'entries_file' if mode == 'file' else 'inline'
            label_large = 'reconcile %d, 1%% changed (%s, batch %d, parallel %d)' % (
                big, label, args.large_batch_size, args.large_parallel)
            rows.append((label_large, run, '1 x entry show', show_seconds, None, None))
            rows.append(('no-op %d (%s)' % (big, label), noop, '1 x entry show', show_seconds, TARGETS['noop'],
                         TARGETS['noop_module_large']))


def snapshot_datastore(server):
    """Copy the stopped server's datastore and keys aside (the same state for each mode), then restart it."""
    server.stop()
    snapshot = os.path.join(server.workdir, 'snapshot')
    shutil.copytree(server.data_dir, snapshot)
    server.start()
    return snapshot


def restore_datastore(server, snapshot):
    server.stop()
    shutil.rmtree(server.data_dir)
    shutil.copytree(snapshot, server.data_dir)
    server.start()


def seed_owned(server, count):
    """``count`` entries with owned IDs (<prefix>.seed-N), created raw in chunks of 10,000."""
    data_entries = json.loads(to_data(make_entries(count)))['entries']
    for i, entry in enumerate(data_entries):
        entry['entry_id'] = '%s.seed-%08d' % (PREFIX, i)
    started = time.perf_counter()
    for start in range(0, count, 10000):
        proc = server.cli_raw(['entry', 'create', '-data', '-'],
                              data=json.dumps({'entries': data_entries[start:start + 10000]}), timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)
    return time.perf_counter() - started


if __name__ == '__main__':
    sys.exit(main())

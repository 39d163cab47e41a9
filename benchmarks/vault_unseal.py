"""Wall time of init and of unsealing a sealed 3-node OpenBao raft cluster, in one run, three ways:

- trustroot.ops (vault_init; one vault_unseal task over the node list),
- TerryHowe's ansible-modules-hashivault (hashivault_init; hashivault_unseal once per node),
- the raw HTTP API (urllib; baseline for the ratios).

Each figure is the median of --rounds runs, alternating the tools so load drifts hit them alike. For unseal,
two times are kept: when the tool returned, and when every node really reported unsealed (a tool that
returns while raft followers are still joining is not done). Results go to stdout and
benchmarks/results/vault_unseal.json.

    .venv/bin/python benchmarks/vault_unseal.py [--rounds 5]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.lab.openbao import BaoCluster, http, wait_for  # noqa: E402

VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
SHARES, THRESHOLD = 5, 3


def hashivault_library():
    import ansible
    path = os.path.join(os.path.dirname(ansible.__file__), 'modules', 'hashivault')
    if not os.path.isdir(path):
        sys.exit('ansible-modules-hashivault is not installed in .venv (requirements-dev.txt)')
    return path


def ansible_env():
    env = dict(os.environ)
    env.update(ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.cache', 'collections'),
               ANSIBLE_PYTHON_INTERPRETER=os.path.join(VENV_BIN, 'python'),
               ANSIBLE_LIBRARY=hashivault_library(), ANSIBLE_LOCALHOST_WARNING='0',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='0', ANSIBLE_NOCOLOR='1')
    for name in ('VAULT_ADDR', 'VAULT_TOKEN', 'BAO_ADDR'):
        env.pop(name, None)
    return env


def run_play(workdir, tasks, extra_vars):
    play = [{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}]
    play_path = os.path.join(workdir, 'play.json')
    vars_path = os.path.join(workdir, 'vars.json')
    with open(play_path, 'w') as handle:
        json.dump(play, handle)
    with open(vars_path, 'w') as handle:
        json.dump(extra_vars, handle)
    start = time.perf_counter()
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                           play_path, '-e', '@' + vars_path], capture_output=True, text=True, env=ansible_env(),
                          check=False)
    elapsed = time.perf_counter() - start
    os.remove(vars_path)
    if proc.returncode != 0:
        raise RuntimeError('playbook failed:\n%s\n%s' % (proc.stdout[-2000:], proc.stderr[-2000:]))
    return elapsed


# --- init ---------------------------------------------------------------------------------------------

def init_collection(cluster, workdir):
    return run_play(workdir, [{'trustroot.ops.vault_init': {
        'url': cluster.urls[0], 'secret_shares': SHARES, 'secret_threshold': THRESHOLD,
        'output_path': os.path.join(workdir, 'init.json')}}], {})


def init_hashivault(cluster, workdir):
    task = {'hashivault_init': {'url': cluster.urls[0], 'secret_shares': SHARES, 'secret_threshold': THRESHOLD},
            'no_log': True}
    return run_play(workdir, [task], {})


def init_raw(cluster, _workdir):
    start = time.perf_counter()
    status = http('PUT', cluster.urls[0] + '/v1/sys/init', {'secret_shares': SHARES, 'secret_threshold': THRESHOLD},
                  timeout=60)[0]
    if status != 200:
        raise RuntimeError('raw init failed: HTTP %s' % status)
    return time.perf_counter() - start


# --- unseal -------------------------------------------------------------------------------------------

def unseal_collection(cluster, workdir, keys):
    return run_play(workdir, [{'trustroot.ops.vault_unseal': {'nodes': '{{ nodes }}', 'keys': '{{ keys }}'},
                               'no_log': True}], {'nodes': cluster.urls, 'keys': keys})


def unseal_hashivault(cluster, workdir, keys):
    return run_play(workdir, [{'hashivault_unseal': {'url': '{{ item }}', 'keys': '{{ keys | join(" ") }}'},
                               'loop': '{{ nodes }}', 'no_log': True}], {'nodes': cluster.urls, 'keys': keys})


def unseal_raw(cluster, _workdir, keys):
    start = time.perf_counter()
    for url in cluster.urls:
        for key in keys[:THRESHOLD]:
            body = http('PUT', url + '/v1/sys/unseal', {'key': key})[1]
            if body and not body.get('sealed'):
                break
    return time.perf_counter() - start


def all_unsealed(cluster):
    return all(not (node.seal_status() or {'sealed': True})['sealed'] for node in cluster.nodes)


def measure_unseal(tool, cluster, workdir, keys):
    cluster.restart()
    start = time.perf_counter()
    returned = tool(cluster, workdir, keys)
    wait_for(lambda: all_unsealed(cluster), timeout=120, interval=0.05, what='every node unsealed')
    return returned, time.perf_counter() - start


def prepare_cluster(workdir):
    cluster = BaoCluster(workdir, size=3).start()
    init = http('PUT', cluster.urls[0] + '/v1/sys/init', {'secret_shares': SHARES, 'secret_threshold': THRESHOLD})[1]
    cluster.unseal_raw(init['keys_base64'], THRESHOLD)
    cluster.wait_peers(init['root_token'], count=3)
    return cluster, init['keys_base64']


def median(values):
    return round(statistics.median(values), 3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--rounds', type=int, default=5)
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix='bench-unseal-')
    init_tools = {'trustroot.ops': init_collection, 'hashivault': init_hashivault, 'raw API': init_raw}
    unseal_tools = {'trustroot.ops': unseal_collection, 'hashivault': unseal_hashivault, 'raw API': unseal_raw}
    init_times = {name: [] for name in init_tools}
    unseal_returned = {name: [] for name in unseal_tools}
    unseal_done = {name: [] for name in unseal_tools}
    try:
        for round_no in range(args.rounds):
            for name, tool in init_tools.items():
                workdir = tempfile.mkdtemp(dir=base)
                cluster = BaoCluster(workdir, size=3).start()
                try:
                    init_times[name].append(tool(cluster, workdir))
                finally:
                    cluster.stop()
                    shutil.rmtree(workdir, ignore_errors=True)
            workdir = tempfile.mkdtemp(dir=base)
            cluster, keys = prepare_cluster(workdir)
            try:
                for name, tool in unseal_tools.items():
                    returned, done = measure_unseal(tool, cluster, workdir, keys)
                    unseal_returned[name].append(returned)
                    unseal_done[name].append(done)
            finally:
                cluster.stop()
            print('round %d/%d done' % (round_no + 1, args.rounds), file=sys.stderr)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    raw_init, raw_done = median(init_times['raw API']), median(unseal_done['raw API'])
    report = {'rounds': args.rounds, 'cluster': '3-node OpenBao raft on loopback, %d shares / threshold %d'
              % (SHARES, THRESHOLD), 'init_seconds': {}, 'unseal_seconds': {}}
    for name in init_tools:
        report['init_seconds'][name] = {'median': median(init_times[name]),
                                        'vs_raw': round(median(init_times[name]) / raw_init, 2)}
        report['unseal_seconds'][name] = {
            'tool_returned': median(unseal_returned[name]),
            'all_nodes_unsealed': median(unseal_done[name]),
            'vs_raw': round(median(unseal_done[name]) / raw_done, 2)}
    header = ('tool', 'init (s)', 'vs raw', 'unseal returned', 'all unsealed (s)', 'vs raw')
    print('%-15s %12s %10s | %16s %18s %10s' % header)
    for name in init_tools:
        i, u = report['init_seconds'][name], report['unseal_seconds'][name]
        row = (name, i['median'], i['vs_raw'], u['tool_returned'], u['all_nodes_unsealed'], u['vs_raw'])
        print('%-15s %12.3f %10.2f | %16.3f %18.3f %10.2f' % row)
    os.makedirs(os.path.join(ROOT, 'benchmarks', 'results'), exist_ok=True)
    with open(os.path.join(ROOT, 'benchmarks', 'results', 'vault_unseal.json'), 'w') as handle:
        json.dump(report, handle, indent=2)


if __name__ == '__main__':
    main()

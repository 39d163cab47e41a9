"""Recovery time of playbooks/disaster_recovery.yml onto fresh lab hosts, next to a plain install of the
same hosts in the same run: 3 OpenBao nodes, 1 SPIRE server, 1 SPIRE agent, populated with KV secrets,
policies, 1,000 registration entries and a federated bundle. Target: recovery <= 120 s with cached binaries.

One round: install + populate (timed: the install is the reference), backup.yml (timed), destroy every
host, create fresh hosts (timed apart: lab creation is not recovery), disaster_recovery.yml (timed), and a
check that the entries and the KV digest came back. The recovery is broken down by phase (install,
restore, unseal, SPIRE restore, re-attestation, health) from the start time of each task (a callback in
benchmarks/callback_plugins). The load average at the start and end of the recovery is recorded: the
target is for a quiet machine. Results go to stdout and benchmarks/results/disaster_recovery.json.

    .venv/bin/python benchmarks/disaster_recovery.py [--rounds 1] [--entries 1000] [--name bench-dr]
"""

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, '.cache', 'collections'))

from ansible_collections.trustroot.ops.plugins.module_utils._spire_backup import canonical_entries  # noqa: E402
from tests.lab.dr import Drill  # noqa: E402

TARGET_S = 120.0
CALLBACKS = os.path.join(ROOT, 'benchmarks', 'callback_plugins')
PHASES = ('choose archives', 'install OpenBao', 'restore OpenBao', 'unseal OpenBao', 'install SPIRE server',
          'SPIRE restore', 're-attestation (agents)', 'health')


def phase_of(play, path):
    """The recovery phase of a task of disaster_recovery.yml, from its play and its task file (pure)."""
    path = (path or '').rsplit(':', 1)[0]
    name = os.path.basename(path)
    if play == 'Choose the archives':
        return 'choose archives'
    if play == 'Vault / OpenBao servers':
        if '/vault_server/tasks/' in path and name == 'restore.yml':
            return 'restore OpenBao'
        if '/vault_server/tasks/' in path and name == 'unseal.yml':
            return 'unseal OpenBao'
        return 'install OpenBao'
    if play == 'SPIRE servers':
        return 'SPIRE restore' if name == 'restore.yml' else 'install SPIRE server'
    if play and play.startswith('SPIRE agents'):
        return 're-attestation (agents)'
    return 'health'


def phase_breakdown(lines):
    """Seconds per phase from the callback's JSON lines (each task lasts until the next one starts). Within
    vault_server's restore.yml, the tasks from the restart after the restore on are the unseal (pure)."""
    records = [json.loads(line) for line in lines if line.strip()]
    seconds = collections.OrderedDict((phase, 0.0) for phase in PHASES)
    unsealing = False
    for record, following in zip(records, records[1:]):
        if record['task'] is None:
            continue
        phase = phase_of(record['play'], record['path'])
        if phase == 'restore OpenBao' and (record['task'] or '').startswith('Restart every node'):
            unsealing = True
        if phase == 'restore OpenBao' and unsealing:
            phase = 'unseal OpenBao'
        seconds[phase] += following['t'] - record['t']
    return collections.OrderedDict((phase, round(value, 1)) for phase, value in seconds.items())


def slowest_tasks(lines, count=12):
    """The ``count`` tasks that took longest, as (seconds, phase, task name, task file:line), slowest first (pure)."""
    records = [json.loads(line) for line in lines if line.strip()]
    timed = [(round(following['t'] - record['t'], 1), phase_of(record['play'], record['path']), record['task'],
              record['path']) for record, following in zip(records, records[1:]) if record['task'] is not None]
    return sorted(timed, key=lambda item: -item[0])[:count]


def one_round(entries, name):
    with tempfile.TemporaryDirectory(prefix='bench-dr-') as workdir:
        drill = Drill(name, workdir, entries=entries)
        phases_path = os.path.join(workdir, 'phases.jsonl')
        try:
            drill.destroy()
            started = time.monotonic()
            drill.build(from_layer=False)
            build_s = time.monotonic() - started
            before = drill.observe()
            started = time.monotonic()
            drill.backup()
            backup_s = time.monotonic() - started
            drill.destroy_source()
            os.environ.update(ANSIBLE_CALLBACK_PLUGINS=CALLBACKS, ANSIBLE_CALLBACKS_ENABLED='phase_times',
                              PHASE_TIMES_PATH=phases_path)
            load_before = os.getloadavg()
            try:
                recovery_s, _proc = drill.recover()
            finally:
                for variable in ('ANSIBLE_CALLBACK_PLUGINS', 'ANSIBLE_CALLBACKS_ENABLED', 'PHASE_TIMES_PATH'):
                    os.environ.pop(variable, None)
            load_after = os.getloadavg()
            with open(phases_path) as handle:
                lines = handle.readlines()
            phases, slowest = phase_breakdown(lines), slowest_tasks(lines)
            after = drill.observe()
        finally:
            drill.destroy()
    restored = [e for e in canonical_entries(before['entries']) if e not in canonical_entries(after['entries'])]
    same = after['vault']['kv_sha256'] == before['vault']['kv_sha256'] and not restored
    if not same:
        sys.exit('the recovered stack differs from the backed-up one')
    return {'entries': entries, 'install_and_populate_s': round(build_s, 2), 'backup_s': round(backup_s, 2),
            'recovery_s': round(recovery_s, 2), 'recovery_within_target': recovery_s <= TARGET_S,
            'phases_s': phases, 'slowest_tasks': slowest, 'load_average_before': load_before, 'load_average_after': load_after}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--rounds', type=int, default=1)
    parser.add_argument('--entries', type=int, default=1000)
    parser.add_argument('--name', default='bench-dr', help='lab name (hosts <name>-a, then <name>-b)')
    args = parser.parse_args()
    rounds = [one_round(args.entries, args.name) for _round in range(args.rounds)]
    for number, result in enumerate(rounds, 1):
        print('round %d: install+populate %.1fs, backup %.1fs, disaster recovery %.1fs (target %.0fs: %s)' % (
            number, result['install_and_populate_s'], result['backup_s'], result['recovery_s'], TARGET_S,
            'met' if result['recovery_within_target'] else 'MISSED'))
        print('  load average (1, 5, 15 min) before %s, after %s' % (
            ', '.join('%.2f' % v for v in result['load_average_before']),
            ', '.join('%.2f' % v for v in result['load_average_after'])))
        for phase, seconds in result['phases_s'].items():
            print('  %-26s %6.1fs' % (phase, seconds))
        print('  slowest tasks:')
        for seconds, phase, task, path in result['slowest_tasks']:
            print('    %6.1fs  %-24s %s (%s)' % (seconds, phase, task, os.path.relpath(path or '-', ROOT)))
    summary = {'rounds': rounds, 'median_recovery_s': statistics.median(r['recovery_s'] for r in rounds),
               'target_s': TARGET_S}
    os.makedirs(os.path.join(ROOT, 'benchmarks', 'results'), exist_ok=True)
    with open(os.path.join(ROOT, 'benchmarks', 'results', 'disaster_recovery.json'), 'w') as handle:
        json.dump(summary, handle, indent=2)
    print('median recovery: %.1fs' % summary['median_recovery_s'])


if __name__ == '__main__':
    main()

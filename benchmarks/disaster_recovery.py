"""Recovery time of playbooks/disaster_recovery.yml onto fresh lab hosts, next to a plain install of the
same hosts in the same run: 3 OpenBao nodes, 1 SPIRE server, 1 SPIRE agent, populated with KV secrets,
policies, 1,000 registration entries and a federated bundle. Target: recovery <= 120 s with cached binaries.

One round: install + populate (timed: the install is the reference), backup.yml (timed), destroy every
host, create fresh hosts (timed apart: lab creation is not recovery), disaster_recovery.yml (timed), and a
check that the entries and the KV digest came back. Results go to stdout and
benchmarks/results/disaster_recovery.json.

    .venv/bin/python benchmarks/disaster_recovery.py [--rounds 1] [--entries 1000]
"""

import argparse
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


def one_round(entries):
    with tempfile.TemporaryDirectory(prefix='bench-dr-') as workdir:
        drill = Drill('bench-dr', workdir, entries=entries)
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
            recovery_s, _proc = drill.recover()
            after = drill.observe()
        finally:
            drill.destroy()
    restored = [e for e in canonical_entries(before['entries']) if e not in canonical_entries(after['entries'])]
    same = after['vault']['kv_sha256'] == before['vault']['kv_sha256'] and not restored
    if not same:
        sys.exit('the recovered stack differs from the backed-up one')
    return {'entries': entries, 'install_and_populate_s': round(build_s, 2), 'backup_s': round(backup_s, 2),
            'recovery_s': round(recovery_s, 2), 'recovery_within_target': recovery_s <= TARGET_S}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--rounds', type=int, default=1)
    parser.add_argument('--entries', type=int, default=1000)
    args = parser.parse_args()
    rounds = [one_round(args.entries) for _round in range(args.rounds)]
    for number, result in enumerate(rounds, 1):
        print('round %d: install+populate %.1fs, backup %.1fs, disaster recovery %.1fs (target %.0fs: %s)' % (
            number, result['install_and_populate_s'], result['backup_s'], result['recovery_s'], TARGET_S,
            'met' if result['recovery_within_target'] else 'MISSED'))
    summary = {'rounds': rounds, 'median_recovery_s': statistics.median(r['recovery_s'] for r in rounds),
               'target_s': TARGET_S}
    os.makedirs(os.path.join(ROOT, 'benchmarks', 'results'), exist_ok=True)
    with open(os.path.join(ROOT, 'benchmarks', 'results', 'disaster_recovery.json'), 'w') as handle:
        json.dump(summary, handle, indent=2)
    print('median recovery: %.1fs' % summary['median_recovery_s'])


if __name__ == '__main__':
    main()

"""Wall time of playbooks/install.yml on new lab hosts (first converge) and again on the converged stack
(second converge), in the same run: 3 OpenBao nodes, 1 SPIRE server, 2 SPIRE agents, the demo
registration. Target: second <= 40% of first.

Each round creates a new lab, converges twice, then a third time with --check --diff (what a GitOps
pull request runs), and destroys the lab. Results go to stdout and benchmarks/results/install_converge.json.

    .venv/bin/python benchmarks/install_converge.py [--rounds 1]
"""

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.lab import hosts as labhosts  # noqa: E402
from tests.lab.stack import DEMO_GROUPS, Stack, total  # noqa: E402

LAB = 'bench-install'


def timed_run(stack, args=()):
    started = time.monotonic()
    proc = stack.run('install', args)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit('install failed:\n%s\n%s' % (proc.stdout[-4000:], proc.stderr[-2000:]))
    return elapsed, total(proc.stdout)


def one_round():
    labhosts.destroy(LAB)
    started = time.monotonic()
    stack = Stack.up(LAB, groups=DEMO_GROUPS)
    lab_s = time.monotonic() - started
    try:
        first_s, first_changed = timed_run(stack)
        second_s, second_changed = timed_run(stack)
        check_s, check_changed = timed_run(stack, ['--check', '--diff'])
    finally:
        labhosts.destroy(LAB)
    return {'lab_create_s': round(lab_s, 2), 'first_s': round(first_s, 2), 'first_changed': first_changed,
            'second_s': round(second_s, 2), 'second_changed': second_changed,
            'check_diff_s': round(check_s, 2), 'check_diff_changed': check_changed,
            'second_over_first': round(second_s / first_s, 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--rounds', type=int, default=1)
    args = parser.parse_args()
    rounds = [one_round() for _round in range(args.rounds)]
    for number, result in enumerate(rounds, 1):
        print('round %d: lab %.1fs, first converge %.1fs (changed=%d), second %.1fs (changed=%d), '
              'check+diff %.1fs (changed=%d): second/first = %.0f%%' % (
                  number, result['lab_create_s'], result['first_s'], result['first_changed'], result['second_s'],
                  result['second_changed'], result['check_diff_s'], result['check_diff_changed'],
                  100 * result['second_over_first']))
    summary = {'hosts': sum(len(v) for v in DEMO_GROUPS.values()), 'rounds': rounds,
               'median_second_over_first': statistics.median(r['second_over_first'] for r in rounds),
               'target_second_over_first': 0.40}
    print('median second/first: %.0f%% (target <= 40%%)' % (100 * summary['median_second_over_first']))
    out_dir = os.path.join(ROOT, 'benchmarks', 'results')
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'install_converge.json'), 'w') as handle:
        json.dump(summary, handle, indent=2)


if __name__ == '__main__':
    main()

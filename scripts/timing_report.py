"""The gate's timing table: where `make test` spent its time, printed and written as JSON.

    python3 scripts/timing_report.py RUN_DIR OUT_DIR [EXIT_STATUS]

RUN_DIR holds what the gate recorded while it ran: phases.tsv (name, start, end, exit status: one line a phase),
integration.json (per test file, from tests/timing/pytest_files.py) and molecule/*.json (per scenario, from
scripts/molecule.sh). EXIT_STATUS is the gate's own (default 0): a run stopped before its end (a signal, a step outside
any phase) recorded no failed phase, and is a failure all the same. OUT_DIR receives <UTC start time>.json and
latest.json, so that any two runs can be compared.
Standard library only: it must run even when the bootstrap failed.
"""

import glob
import json
import os
import sys
import time


def read_phases(path):
    phases = []
    try:
        with open(path) as handle:
            for line in handle:
                name, start, end, status = line.rstrip('\n').split('\t')
                phases.append({'name': name, 'start': float(start), 'end': float(end), 'status': int(status)})
    except FileNotFoundError:
        pass
    return phases


def read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (FileNotFoundError, ValueError):
        return None


def build_report(phases, integration, molecule, exit_status=0):
    """The report as a dict (pure): phases in order, then the detail of the two long phases. It passed only when
    every phase passed and the gate itself exited with 0."""
    started = min((p['start'] for p in phases), default=time.time())
    ended = max((p['end'] for p in phases), default=started)
    return {
        'format': 'trustroot.ops/test-timing/v1',
        'started_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(started)),
        'total_s': round(ended - started, 1),
        'passed': bool(phases) and all(p['status'] == 0 for p in phases) and exit_status == 0,
        'exit_status': exit_status,
        'phases': {p['name']: round(p['end'] - p['start'], 1) for p in phases},
        'failed_phases': [p['name'] for p in phases if p['status'] != 0],
        'integration_files': (integration or {}).get('files', {}),
        'molecule_scenarios': molecule,
    }


def render_table(report):
    if report['passed']:
        verdict = 'passed'
    elif report['failed_phases']:
        verdict = 'FAILED: ' + ', '.join(report['failed_phases'])
    else:
        verdict = 'FAILED: stopped with exit status %s, no phase failed' % report.get('exit_status')
    lines = ['', 'make test timing (%s, %s)' % (report['started_at'], verdict)]
    lines.append('  %-58s %8s' % ('phase', 'seconds'))
    for name, seconds in report['phases'].items():
        lines.append('  %-58s %8.1f' % (name, seconds))
    lines.append('  %-58s %8.1f  (%.1f min)' % ('total', report['total_s'], report['total_s'] / 60))
    files = report['integration_files']
    if files:
        lines.append('  integration files, by worker time (wall span where files ran side by side):')
        for name, entry in sorted(files.items(), key=lambda item: -item[1]['seconds']):
            span = entry.get('span_s')
            lines.append('    %-56s %8.1f  span %6s  %s%s' % (
                name, entry['seconds'], '-' if span is None else '%.1f' % span, entry.get('worker') or '',
                '  FAILED' if entry.get('failed') else ''))
    if report['molecule_scenarios']:
        lines.append('  molecule scenarios:')
        for name, entry in sorted(report['molecule_scenarios'].items(), key=lambda item: -item[1]['seconds']):
            lines.append('    %-56s %8.1f%s' % (name, entry['seconds'], '' if entry.get('passed') else '  FAILED'))
    return '\n'.join(lines) + '\n'


def main(argv):
    run_dir, out_dir = argv[1], argv[2]
    exit_status = int(argv[3]) if len(argv) > 3 else 0
    molecule = {}
    for path in sorted(glob.glob(os.path.join(run_dir, 'molecule', '*.json'))):
        entry = read_json(path)
        if entry:
            molecule[os.path.basename(path)[:-5]] = entry
    report = build_report(read_phases(os.path.join(run_dir, 'phases.tsv')),
                          read_json(os.path.join(run_dir, 'integration.json')), molecule, exit_status)
    os.makedirs(out_dir, exist_ok=True)
    name = os.path.join(out_dir, report['started_at'].replace(':', '') + '.json')
    for path in (name, os.path.join(out_dir, 'latest.json')):
        with open(path + '.tmp', 'w') as handle:
            json.dump(report, handle, indent=1)
        os.replace(path + '.tmp', path)
    sys.stdout.write(render_table(report))
    sys.stdout.write('  written to %s\n' % name)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))

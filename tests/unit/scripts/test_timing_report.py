"""scripts/timing_report.py: the gate's timing table from what a run recorded."""

import importlib.util
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
spec = importlib.util.spec_from_file_location('timing_report', os.path.join(ROOT, 'scripts', 'timing_report.py'))
timing_report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(timing_report)


def write_run(run_dir, phases, integration=None, molecule=None):
    with open(os.path.join(run_dir, 'phases.tsv'), 'w') as handle:
        for name, start, end, status in phases:
            handle.write('%s\t%s\t%s\t%d\n' % (name, start, end, status))
    if integration is not None:
        with open(os.path.join(run_dir, 'integration.json'), 'w') as handle:
            json.dump(integration, handle)
    os.makedirs(os.path.join(run_dir, 'molecule'), exist_ok=True)
    for name, entry in (molecule or {}).items():
        with open(os.path.join(run_dir, 'molecule', name + '.json'), 'w') as handle:
            json.dump(entry, handle)


def test_report_of_a_passed_run(tmp_path, capsys):
    run, out = tmp_path / 'run', tmp_path / 'out'
    run.mkdir()
    write_run(str(run), [('bootstrap', 1000.0, 1010.5, 0), ('unit tests', 1010.5, 1100.0, 0)],
              {'files': {'tests/integration/a.py': {'seconds': 80.0, 'span_s': 81.0, 'tests': 3, 'failed': 0,
                                                    'worker': 'gw0'}}},
              {'vault_server': {'seconds': 150, 'passed': True}})
    assert timing_report.main(['timing_report.py', str(run), str(out)]) == 0
    report = json.loads((out / 'latest.json').read_text())
    assert report['total_s'] == 100.0 and report['passed'] is True
    assert report['phases'] == {'bootstrap': 10.5, 'unit tests': 89.5}
    assert report['integration_files']['tests/integration/a.py']['seconds'] == 80.0
    assert report['molecule_scenarios'] == {'vault_server': {'seconds': 150, 'passed': True}}
    assert len(list(out.glob('*.json'))) == 2  # latest.json and the run's own, by its start time
    table = capsys.readouterr().out
    assert 'tests/integration/a.py' in table and 'vault_server' in table and '(1.7 min)' in table


def test_a_failed_phase_is_named(tmp_path, capsys):
    run = tmp_path / 'run'
    run.mkdir()
    write_run(str(run), [('bootstrap', 0.0, 5.0, 0), ('ansible-lint', 5.0, 9.0, 2)])
    timing_report.main(['timing_report.py', str(run), str(tmp_path / 'out')])
    report = json.loads((tmp_path / 'out' / 'latest.json').read_text())
    assert report['passed'] is False and report['failed_phases'] == ['ansible-lint']
    assert 'FAILED: ansible-lint' in capsys.readouterr().out


def test_a_run_stopped_before_its_end_is_not_passed(tmp_path, capsys):
    run = tmp_path / 'run'
    run.mkdir()
    write_run(str(run), [('bootstrap', 0.0, 5.0, 0), ('collection build', 5.0, 9.0, 0)])
    timing_report.main(['timing_report.py', str(run), str(tmp_path / 'out'), '143'])
    report = json.loads((tmp_path / 'out' / 'latest.json').read_text())
    assert report['passed'] is False and report['exit_status'] == 143 and report['failed_phases'] == []
    assert 'FAILED: stopped with exit status 143, no phase failed' in capsys.readouterr().out

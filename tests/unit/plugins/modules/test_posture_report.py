"""posture_report through main(): findings from given facts, the report file written, input errors named."""
import json

from ansible_collections.trustroot.ops.plugins.modules import posture_report

NOW = 1800000000.0


def test_an_empty_backup_directory_is_a_finding_and_the_report_is_written(run_main, tmp_path):
    report_path = tmp_path / 'posture.json'
    ended = run_main(posture_report.main, {'backup_dir': str(tmp_path), 'report_path': str(report_path), 'now': NOW})
    assert not ended.failed, ended.result
    assert not ended.result['changed'] and ended.result['report_path'] == str(report_path)
    document = json.loads(report_path.read_text())
    assert document['generated'] == '2027-01-15T08:00:00Z' and document['findings'] == ended.result['findings']
    assert document['passed'] is ended.result['passed'] and document['counts'] == ended.result['counts']
    assert any('backup' in finding['id'] for finding in ended.result['findings'])
    assert ended.result['summary']


def test_the_same_facts_give_the_same_report(run_main, tmp_path):
    args = {'backup_dir': str(tmp_path), 'report_path': str(tmp_path / 'posture.json'), 'now': NOW}
    first = run_main(posture_report.main, args).result
    second = run_main(posture_report.main, args).result
    assert first['findings'] == second['findings'] and not second['changed']


def test_an_unknown_threshold_fails_naming_it(run_main, tmp_path):
    ended = run_main(posture_report.main, {'report_path': str(tmp_path / 'r.json'), 'thresholds': {'bogus': 1}})
    assert ended.failed and ended.result['msg'].startswith('thresholds.bogus is not a known threshold')
    assert not (tmp_path / 'r.json').exists()


def test_a_backup_dir_that_is_not_a_directory_fails_naming_it(run_main, tmp_path):
    ended = run_main(posture_report.main, {'report_path': str(tmp_path / 'r.json'),
                                           'backup_dir': str(tmp_path / 'missing')})
    assert ended.failed and ended.result['msg'] == 'backup_dir %s is not a directory' % (tmp_path / 'missing')


def test_a_report_path_that_cannot_be_written_fails_naming_it(run_main, tmp_path):
    target = tmp_path / 'no-such-dir' / 'r.json'
    ended = run_main(posture_report.main, {'report_path': str(target), 'now': NOW})
    assert ended.failed and ended.result['msg'].startswith('report_path %s cannot be written' % target)

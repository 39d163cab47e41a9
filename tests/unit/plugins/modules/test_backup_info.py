"""backup_info through main(): argument errors and the readiness of a real (empty) backup directory."""
from ansible_collections.trustroot.ops.plugins.modules import backup_info


def test_missing_backup_dir_fails_naming_it(run_main):
    ended = run_main(backup_info.main, {})
    assert ended.failed
    assert 'backup_dir' in ended.result['msg']


def test_a_path_that_is_not_a_directory_fails_naming_it(run_main, tmp_path):
    path = tmp_path / 'file'
    path.write_text('x')
    ended = run_main(backup_info.main, {'backup_dir': str(path)})
    assert ended.failed
    assert ended.result['msg'] == 'backup_dir %s is not a directory' % path


def test_an_empty_directory_is_not_ready_and_changes_nothing(run_main, tmp_path):
    ended = run_main(backup_info.main, {'backup_dir': str(tmp_path)}, check_mode=True)
    assert not ended.failed, ended.result
    assert ended.result['changed'] is False
    assert ended.result['newest'] == {'vault': None, 'spire-server': None}
    assert ended.result['ready'] is False
    assert ended.result['systems']['vault']['why'] == 'no verified vault backup'

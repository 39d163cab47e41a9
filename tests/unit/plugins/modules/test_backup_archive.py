"""backup_archive through main(): a real archive written, listed, verified and extracted in tmp_path (no age)."""
import json
import os

from ansible_collections.trustroot.ops.plugins.modules import backup_archive


def parts(tmp_path):
    data = tmp_path / 'data'
    data.mkdir(exist_ok=True)
    (data / 'snapshot.snap').write_bytes(b'raft snapshot' * 100)
    (data / 'info.txt').write_text('cluster a')
    return [{'name': 'snapshot.snap', 'path': str(data / 'snapshot.snap')},
            {'name': 'info.txt', 'path': str(data / 'info.txt')}]


def present(tmp_path, **extra):
    dest = tmp_path / 'backups'
    dest.mkdir(exist_ok=True)
    return dict({'state': 'present', 'system': 'vault', 'dest_dir': str(dest), 'parts': parts(tmp_path),
                 'info': {'cluster_id': 'a'}}, **extra)


def test_an_archive_is_written_with_its_sidecar_and_verifies(run_main, tmp_path):
    ended = run_main(backup_archive.main, present(tmp_path))
    assert not ended.failed, ended.result
    path = ended.result['path']
    assert ended.result['changed'] and os.path.isfile(path) and path.endswith('.tar.gz')
    sidecar = json.loads(open(path + '.json').read())
    assert sidecar['sha256'] == ended.result['sha256'] and sidecar['size'] == os.path.getsize(path)
    extract = tmp_path / 'out'
    extract.mkdir()
    verified = run_main(backup_archive.main, {'state': 'verified', 'path': path, 'extract_to': str(extract)})
    assert not verified.failed, verified.result
    assert (extract / 'snapshot.snap').read_bytes() == b'raft snapshot' * 100
    assert sorted(verified.result['extracted']) == ['info.txt', 'snapshot.snap']
    again = run_main(backup_archive.main, {'state': 'verified', 'path': path, 'extract_to': str(extract)})
    assert not again.failed and not again.result['changed'] and again.result['extracted'] == []


def test_check_mode_plans_the_archive_and_writes_nothing(run_main, tmp_path):
    ended = run_main(backup_archive.main, present(tmp_path), check_mode=True, diff=True)
    assert not ended.failed and ended.result['changed'] and ended.result['sha256'] is None
    assert os.listdir(str(tmp_path / 'backups')) == []
    assert ended.result['diff']['before'] == {'backups': []} and len(ended.result['diff']['after']['backups']) == 1


def test_a_corrupted_archive_fails_verification(run_main, tmp_path):
    path = run_main(backup_archive.main, present(tmp_path)).result['path']
    with open(path, 'r+b') as handle:
        handle.seek(40)
        handle.write(b'\x00' * 8)
    ended = run_main(backup_archive.main, {'state': 'verified', 'path': path})
    assert ended.failed and path in ended.result['msg']


def test_options_of_the_other_state_fail_naming_them(run_main, tmp_path):
    ended = run_main(backup_archive.main, present(tmp_path, path='/x', mark_verified=True))
    assert ended.failed and ended.result['msg'] == (
        'path applies only to state=verified; mark_verified applies only to state=verified')
    assert not ended.result['changed'] and os.listdir(str(tmp_path / 'backups')) == []

"""backup_archive through real ansible-playbook runs: real files, the real age CLI, a real MinIO server, promtool."""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import ROOT
from tests.integration.probes import play, task
from tests.lab.common import COLLECTIONS_PATH
from tests.lab.minio import MINIO_BIN, MinioServer

sys.path.insert(0, COLLECTIONS_PATH)
from ansible_collections.trustroot.ops.plugins.module_utils._backup.remote import download_backup  # noqa: E402
from ansible_collections.trustroot.ops.plugins.module_utils._backup.verify import (  # noqa: E402
    list_backups, read_sidecar, verify_archive)


@pytest.fixture
def parts(tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    (src / 'datastore.sqlite3').write_bytes(b'SQLite format 3\x00' + os.urandom(512 * 1024))
    (src / 'keys.json').write_text('{"keys": [{"id": "x509-CA-A"}]}\n')
    return src


def part_args(src):
    return [{'name': 'datastore.sqlite3', 'path': str(src / 'datastore.sqlite3')},
            {'name': 'keys.json', 'path': str(src / 'keys.json')}]


def dest(tmp_path, name='backups'):
    path = tmp_path / name
    path.mkdir()
    return path


def listing(path):
    return sorted(os.listdir(str(path)))


def next_second():
    """Archive names have one-second resolution: start the next backup in a later second."""
    time.sleep(1.05 - (time.time() % 1))


@pytest.fixture
def age_keys(tmp_path):
    keys = {}
    for name in ('right', 'wrong'):
        path = tmp_path / ('%s.agekey' % name)
        subprocess.run(['age-keygen', '-o', str(path)], check=True, capture_output=True)
        public = subprocess.run(['age-keygen', '-y', str(path)], check=True, capture_output=True, text=True)
        keys[name] = (str(path), public.stdout.strip())
    return keys


@pytest.fixture
def minio(tmp_path):
    if not os.path.exists(MINIO_BIN):
        pytest.fail('minio missing at %s: run scripts/bootstrap.sh (make test does)' % MINIO_BIN)
    server = MinioServer(str(tmp_path)).start()
    yield server
    server.stop()


def test_pack_check_mode_verify_and_tamper(ansible, parts, tmp_path):
    out = dest(tmp_path)
    args = {'system': 'spire', 'parts': part_args(parts), 'info': {'trust_domain': 'example.org'},
            'dest_dir': str(out)}

    check = ansible.module('backup_archive', args, check=True, diff=True)
    assert not check.get('failed'), check
    assert check['changed'] is True and check['path'].startswith(str(out / 'spire-'))
    assert check['sha256'] is None and check['diff']['before'] == {'backups': []}
    assert listing(out) == [], 'check mode wrote a file'

    result = ansible.module('backup_archive', args)
    assert not result.get('failed'), result
    archive = result['path']
    assert result['changed'] is True and archive.endswith('.tar.gz')
    assert listing(out) == [os.path.basename(archive), os.path.basename(archive) + '.json']
    assert stat.S_IMODE(os.stat(archive).st_mode) == 0o600
    with open(archive, 'rb') as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == result['sha256']
    assert result['sidecar']['info'] == {'trust_domain': 'example.org'}
    assert result['sidecar']['verified']['how'] == 'written' and result['deleted'] == []

    verified = ansible.module('backup_archive', {'state': 'verified', 'dest_dir': str(out), 'system': 'spire'})
    assert not verified.get('failed'), verified
    assert verified['changed'] is False and verified['path'] == archive
    assert verified['manifest']['parts'] == result['sidecar']['parts']
    assert verified['manifest']['info'] == {'trust_domain': 'example.org'}

    data = bytearray(open(archive, 'rb').read())
    data[len(data) // 2] ^= 0x40
    with open(archive, 'wb') as handle:
        handle.write(bytes(data))
    tampered = ansible.module('backup_archive', {'state': 'verified', 'path': archive})
    assert tampered.get('failed') and tampered['changed'] is False
    assert 'checksum mismatch' in tampered['msg'] and result['sha256'] in tampered['msg'], tampered['msg']


def test_encrypted_wrong_identity_extract_and_mark(ansible, parts, tmp_path, age_keys):
    out = dest(tmp_path)
    identity, recipient = age_keys['right']
    restore = tmp_path / 'restore'
    restore.mkdir()
    # The later tasks verify the archive the first one wrote (its path is known once it ran: they take it from the
    # first task's registered result, r0).
    archive_of_r0 = '{{ r0.path }}'
    args = {'state': 'verified', 'path': archive_of_r0, 'age_identity': identity, 'extract_to': str(restore)}
    # Every step in one playbook run, the restore directory listed after check mode.
    result, wrong, missing, check, listed_after_check, first, again, last = play(ansible, tmp_path, [
        task('backup_archive', {'system': 'vault', 'parts': part_args(parts), 'dest_dir': str(out),
                                'age_recipients': [recipient]}),
        task('backup_archive', {'state': 'verified', 'path': archive_of_r0, 'age_identity': age_keys['wrong'][0]}),
        task('backup_archive', {'state': 'verified', 'path': archive_of_r0}),
        task('backup_archive', args, check_mode=True),
        ('ansible.builtin.find', {'paths': str(restore), 'hidden': True, 'file_type': 'any'}, {}),
        task('backup_archive', args),
        task('backup_archive', dict(args, mark_verified=True, verified_how='restored'), diff=True),
        task('backup_archive', args)])
    assert not result.get('failed'), result
    archive = result['path']
    assert archive.endswith('.tar.gz.age') and result['sidecar']['encrypted'] is True
    with open(archive, 'rb') as handle:
        assert handle.read(21) == b'age-encryption.org/v1'

    assert wrong.get('failed')
    assert 'could not decrypt %s with identity %s: no identity matched' % (archive, age_keys['wrong'][0]) \
        in wrong['msg'], wrong['msg']
    assert missing.get('failed') and 'age_identity is required' in missing['msg']

    assert not check.get('failed'), check
    assert 'files' in listed_after_check, listed_after_check
    assert check['changed'] is True and listed_after_check['files'] == [], 'check mode extracted'
    assert not first.get('failed'), first
    assert first['changed'] is True and first['extracted'] == ['datastore.sqlite3', 'keys.json']
    for name in ('datastore.sqlite3', 'keys.json'):
        assert (restore / name).read_bytes() == (parts / name).read_bytes()
        assert stat.S_IMODE((restore / name).stat().st_mode) == 0o600
    assert not again.get('failed'), again
    assert again['changed'] is True and again['extracted'] == []
    assert again['sidecar']['verified']['how'] == 'restored'
    assert read_sidecar(archive)['verified']['how'] == 'restored'
    assert not last.get('failed') and last['changed'] is False


def test_bad_input_writes_nothing(ansible, parts, tmp_path):
    out = dest(tmp_path)
    (parts / 'keys.json').write_bytes(b'')
    # Both refusals in one playbook run.
    (result, bad), _output = ansible.modules([
        ('backup_archive', {'system': 'spire', 'parts': part_args(parts), 'dest_dir': str(out)}),
        ('backup_archive', {'system': 'spire', 'parts': part_args(parts)[:1], 'dest_dir': str(out), 'keep_count': 0,
                            'age_recipients': ['not-a-key'], 'extract_to': str(tmp_path)})])
    assert result.get('failed') and result['changed'] is False
    assert 'parts[1].path %s is empty (zero bytes)' % (parts / 'keys.json') in result['msg'], result['msg']

    assert bad.get('failed')
    for text in ('keep_count must be an integer of at least 1', 'age_recipients[0] must be an age public key',
                 'extract_to applies only to state=verified'):
        assert text in bad['msg'], bad['msg']
    assert listing(out) == []


def test_retention(ansible, parts, tmp_path):
    out = dest(tmp_path)
    args = {'system': 'spire', 'parts': part_args(parts), 'dest_dir': str(out)}
    written = []
    for _round in range(3):
        next_second()
        result = ansible.module('backup_archive', args)
        assert not result.get('failed'), result
        written.append(result['path'])

    plan = ansible.module('backup_archive', dict(args, keep_count=2), check=True)
    assert not plan.get('failed'), plan
    assert plan['deleted'] == written[:2]
    assert len(listing(out)) == 6

    next_second()
    result = ansible.module('backup_archive', dict(args, keep_count=2), diff=True)
    assert not result.get('failed'), result
    assert result['deleted'] == written[:2]
    assert result['diff']['after']['backups'] == [os.path.basename(written[2]), os.path.basename(result['path'])]
    assert [b['path'] for b in list_backups(str(out), 'spire')] == [written[2], result['path']]

    # Older than max_age: everything but the backup just written, which is the newest (always kept). Times have
    # one-second resolution and "older" means more than max_age: two second boundaries make the last one 2 s old.
    next_second()
    next_second()
    aged = ansible.module('backup_archive', dict(args, max_age=1))
    assert not aged.get('failed'), aged
    assert aged['deleted'] == [written[2], result['path']]
    assert listing(out) == [os.path.basename(aged['path']), os.path.basename(aged['path']) + '.json']


@pytest.mark.skipif(not shutil.which('promtool'), reason='promtool (Debian package prometheus) not installed')
def test_s3_upload_retention_download_and_metric(ansible, parts, tmp_path, minio):
    minio.make_bucket('backups')
    out = dest(tmp_path)
    metrics = dest(tmp_path, 'textfile')
    s3 = {'endpoint': minio.endpoint, 'bucket': 'backups', 'prefix': 'site-a/spire', 'access_key': minio.access_key,
          'secret_key': minio.secret_key}
    args = {'system': 'spire', 'parts': part_args(parts), 'dest_dir': str(out), 's3': s3, 'keep_count': 2,
            'metric_textfile_dir': str(metrics)}

    check = ansible.module('backup_archive', args, check=True, verbosity=4)
    assert not check.get('failed'), check
    name = os.path.basename(check['path'])
    assert check['uploaded'] == [name, name + '.json'] and listing(out) == [] and listing(metrics) == []
    assert minio.store('backups').list() == []

    results = []
    for _round in range(3):
        next_second()
        result = ansible.module('backup_archive', args, verbosity=4)
        assert not result.get('failed'), result
        results.append(result)
        assert '"secret_key": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"' in result['_stdout']  # the arguments are shown
        assert minio.secret_key not in result['_stdout']
        assert minio.secret_key not in json.dumps({k: v for k, v in result.items() if k != '_stdout'})
    archives = [os.path.basename(r['path']) for r in results]
    assert results[0]['uploaded'] == [archives[0], archives[0] + '.json']
    assert results[2]['deleted'] == [results[0]['path']] and results[2]['deleted_s3'] == [archives[0]]

    store = minio.store('backups', prefix='site-a/spire')
    objects = store.list()
    assert sorted(o['key'] for o in objects) == sorted(
        [archives[1], archives[1] + '.json', archives[2], archives[2] + '.json'])
    assert {o['key']: o['size'] for o in objects}[archives[2]] == results[2]['size']
    assert [o['key'] for o in minio.store('backups').list()][0].startswith('site-a/spire/')

    fetched = dest(tmp_path, 'fetched')
    path = download_backup(store, archives[2], str(fetched))
    manifest = verify_archive(path)
    assert manifest['parts'] == results[2]['sidecar']['parts']
    assert open(path, 'rb').read() == open(results[2]['path'], 'rb').read()
    assert read_sidecar(path) == results[2]['sidecar']

    metric = results[2]['metric_path']
    assert metric == str(metrics / 'trustroot_backup_spire.prom')
    assert stat.S_IMODE(os.stat(metric).st_mode) == 0o644
    text = open(metric).read()
    assert 'trustroot_backup_last_size_bytes{system="spire"} %d' % results[2]['size'] in text
    with open(metric, 'rb') as handle:
        lint = subprocess.run(['promtool', 'check', 'metrics'], stdin=handle, capture_output=True, text=True,
                              check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    for written in os.listdir(str(out)):
        assert minio.secret_key not in open(os.path.join(str(out), written), 'rb').read().decode('latin-1')

    wrong = ansible.module('backup_archive', dict(args, s3=dict(s3, secret_key='not-the-secret-key')))
    assert wrong.get('failed') and 'SignatureDoesNotMatch' in wrong['msg'], wrong['msg']
    assert 'not-the-secret-key' not in wrong['_stdout']


def test_collection_path_is_this_checkout():
    assert os.path.realpath(verify_archive.__code__.co_filename).startswith(os.path.realpath(ROOT))

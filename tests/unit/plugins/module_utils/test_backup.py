"""The backup archive format: writing, verification, tampering, encryption with the real age CLI, listing,
retention rules, verification records, metrics and the shared destination options."""

import datetime
import errno
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._backup import archive as archive_writer
from ansible_collections.trustroot.ops.plugins.module_utils._backup.archive import write_archive
from ansible_collections.trustroot.ops.plugins.module_utils._backup.finish import finish_backup
from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import (
    FORMAT, BackupError, Terminated, archive_name, iso, part_errors, sigterm_raises)
from ansible_collections.trustroot.ops.plugins.module_utils._backup.metrics import (
    metric_text, verified_metric_text, write_metric, write_verified_metric)
from ansible_collections.trustroot.ops.plugins.module_utils._backup.options import (
    backup_argument_spec, backup_option_errors)
from ansible_collections.trustroot.ops.plugins.module_utils._backup.retention import (
    apply_retention, backup_readiness, mark_verified, newest_verified_backups, retention_plan)
from ansible_collections.trustroot.ops.plugins.module_utils._backup.verify import (
    extraction_changes, latest_backup, list_backups, read_sidecar, verify_archive)

UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 11, 30, 23, 15, 0, tzinfo=UTC)
HAVE_AGE = shutil.which('age') and shutil.which('age-keygen')


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


@pytest.fixture
def files(tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    (src / 'datastore.sqlite3').write_bytes(b'SQLite format 3\x00' + os.urandom(3 * 1024 * 1024))
    (src / 'keys.json').write_bytes(b'{"keys": "x"}\n')
    dest = tmp_path / 'dest'
    dest.mkdir()
    return src, dest


def parts_of(src):
    return [('datastore.sqlite3', str(src / 'datastore.sqlite3')), ('keys.json', str(src / 'keys.json'))]


def listing(directory):
    return sorted(os.listdir(str(directory)))


@pytest.fixture
def age_keys(tmp_path):
    if not HAVE_AGE:
        pytest.skip('age not installed')
    keys = {}
    for name in ('right', 'wrong'):
        path = tmp_path / ('%s.key' % name)
        subprocess.run(['age-keygen', '-o', str(path)], check=True, capture_output=True)
        public = subprocess.run(['age-keygen', '-y', str(path)], check=True, capture_output=True, text=True)
        keys[name] = (str(path), public.stdout.strip())
    return keys


# --- names ---

def test_archive_name():
    assert archive_name('spire', T0) == 'spire-20261130T231500Z'
    other = datetime.datetime(2026, 12, 1, 0, 15, 0, 999, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert archive_name('vault', other) == 'vault-20261130T231500Z'


@pytest.mark.parametrize('system', ['', 'Spire', 'sp ire', 'a/b', None, '../x'])
def test_archive_name_rejects_system(system):
    with pytest.raises(BackupError, match='system'):
        archive_name(system, T0)


def test_archive_name_needs_aware_time():
    with pytest.raises(BackupError, match='timezone-aware'):
        archive_name('spire', datetime.datetime(2026, 1, 1))


# --- write and verify ---

def test_write_and_verify_round_trip(files, tmp_path):
    src, dest = files
    sidecar = write_archive(str(dest), 'spire', parts_of(src), {'trust_domain': 'example.org'}, now=T0)
    archive = dest / 'spire-20261130T231500Z.tar.gz'
    assert listing(dest) == ['spire-20261130T231500Z.tar.gz', 'spire-20261130T231500Z.tar.gz.json']
    for path in (archive, dest / 'spire-20261130T231500Z.tar.gz.json'):
        assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    assert sidecar['archive'] == archive.name and sidecar['encrypted'] is False
    assert sidecar['sha256'] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert sidecar['size'] == archive.stat().st_size
    assert sidecar['created'] == '2026-11-30T23:15:00Z' and sidecar['verified']['how'] == 'written'
    assert sidecar['parts']['keys.json'] == {'sha256': hashlib.sha256(b'{"keys": "x"}\n').hexdigest(), 'size': 14}
    assert json.loads((dest / (archive.name + '.json')).read_text()) == sidecar
    with tarfile.open(str(archive)) as tar:
        assert tar.getnames() == ['manifest.json', 'datastore.sqlite3', 'keys.json']
        assert all(m.mode == 0o600 and m.uid == 0 for m in tar.getmembers())
    manifest = verify_archive(str(archive))
    assert manifest['info'] == {'trust_domain': 'example.org'} and manifest['format'] == FORMAT
    assert manifest['parts'] == sidecar['parts'] and manifest['name'] == sidecar['name']
    assert read_sidecar(str(archive)) == sidecar

    out = tmp_path / 'out'
    out.mkdir()
    assert extraction_changes(manifest, str(out)) == ['datastore.sqlite3', 'keys.json']
    verify_archive(str(archive), extract_to=str(out))
    assert listing(out) == ['datastore.sqlite3', 'keys.json']
    assert (out / 'keys.json').read_bytes() == (src / 'keys.json').read_bytes()
    assert (out / 'datastore.sqlite3').read_bytes() == (src / 'datastore.sqlite3').read_bytes()
    assert stat.S_IMODE(os.stat(str(out / 'keys.json')).st_mode) == 0o600
    assert extraction_changes(manifest, str(out)) == []


def test_same_second_twice_is_refused(files):
    src, dest = files
    write_archive(str(dest), 'spire', parts_of(src), {}, now=T0)
    with pytest.raises(BackupError, match='already exists'):
        write_archive(str(dest), 'spire', parts_of(src), {}, now=T0)
    assert len(listing(dest)) == 2


@pytest.mark.parametrize('mutate, message', [
    (lambda src: (src / 'keys.json').write_bytes(b''), r'parts\[1\].path .*keys.json is empty \(zero bytes\)'),
    (lambda src: (src / 'keys.json').unlink(), r'parts\[1\].path .*keys.json does not exist'),
])
def test_bad_part_leaves_no_file(files, mutate, message):
    src, dest = files
    mutate(src)
    with pytest.raises(BackupError, match=message):
        write_archive(str(dest), 'spire', parts_of(src), {}, now=T0)
    assert listing(dest) == []


def test_part_errors_name_the_field(files):
    src, _dest = files
    good = str(src / 'keys.json')
    errors = part_errors([('a/b', good), ('manifest.json', good), ('x', good), ('x', good),
                          ('d', str(src)), ('..', good)])
    text = '; '.join(errors)
    assert "parts[0].name 'a/b' must be a plain file name" in text
    assert 'parts[1].name must not be manifest.json' in text
    assert 'parts[3].name x is used twice' in text
    assert 'parts[4].path %s is not a regular file' % src in text
    assert "parts[5].name '..'" in text
    assert part_errors([]) == ['parts must list at least one file']


def test_write_validates_everything_first(files):
    src, dest = files
    with pytest.raises(BackupError) as exc:
        write_archive(str(dest / 'missing'), 'spire', parts_of(src), {'x': object()}, recipients=['ssh-rsa A'])
    text = str(exc.value)
    assert 'age_recipients[0] must be an age public key starting with age1' in text
    assert 'directory %s does not exist' % (dest / 'missing') in text
    assert 'info must be JSON-serializable' in text


@pytest.mark.parametrize('exc_type', [KeyboardInterrupt, Terminated, RuntimeError])
def test_interrupt_leaves_nothing(files, monkeypatch, exc_type):
    src, dest = files
    real = archive_writer.write_tar

    def interrupted(handle, manifest, parts, mtime):
        handle.write(b'partial data')
        raise exc_type('stop')
    monkeypatch.setattr(archive_writer, 'write_tar', interrupted)
    with pytest.raises(exc_type):
        write_archive(str(dest), 'spire', parts_of(src), {}, now=T0)
    assert listing(dest) == []
    monkeypatch.setattr(archive_writer, 'write_tar', real)


@pytest.mark.parametrize('where', ['archive', 'sidecar'])
def test_full_disk_names_the_archive_and_leaves_nothing(files, monkeypatch, where):
    src, dest = files

    def no_space(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if where == 'archive':
        def full(handle, manifest, parts, mtime):
            handle.write(b'partial data')
            no_space()
        monkeypatch.setattr(archive_writer, 'write_tar', full)
    else:
        monkeypatch.setattr(archive_writer, 'atomic_writer', no_space)
    with pytest.raises(BackupError) as exc:
        write_archive(str(dest), 'spire', parts_of(src), {}, now=T0)
    final = dest / (archive_name('spire', T0) + '.tar.gz')
    assert str(exc.value) == 'cannot write the archive %s: No space left on device (nothing of it is left in %s)' % (
        final, dest)
    assert listing(dest) == []


def test_interrupt_in_sidecar_write_removes_archive(files, monkeypatch):
    src, dest = files

    def boom(*_args, **_kwargs):
        raise KeyboardInterrupt()
    monkeypatch.setattr(archive_writer, 'atomic_writer', boom)
    with pytest.raises(KeyboardInterrupt):
        write_archive(str(dest), 'spire', parts_of(src), {}, now=T0)
    assert listing(dest) == []


def test_sigterm_raises_terminated():
    import signal
    with sigterm_raises():
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_tampered_byte_is_a_checksum_mismatch(files):
    src, dest = files
    sidecar = write_archive(str(dest), 'spire', parts_of(src), {}, now=T0)
    archive = dest / sidecar['archive']
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    with pytest.raises(BackupError, match='checksum mismatch: the sidecar expected sha256 %s' % sidecar['sha256']):
        verify_archive(str(archive))


def test_truncated_archive_is_a_checksum_mismatch(files):
    src, dest = files
    sidecar = write_archive(str(dest), 'spire', parts_of(src), {}, now=T0)
    archive = dest / sidecar['archive']
    archive.write_bytes(archive.read_bytes()[:1000])
    with pytest.raises(BackupError, match=r'checksum mismatch.*got [0-9a-f]{64} \(1000 bytes\)'):
        verify_archive(str(archive))


def test_missing_or_invalid_sidecar(files):
    src, dest = files
    sidecar = write_archive(str(dest), 'spire', parts_of(src), {}, now=T0)
    archive = str(dest / sidecar['archive'])
    with open(archive + '.json', 'w') as handle:
        json.dump(dict(sidecar, size=0), handle)
    with pytest.raises(BackupError, match='field size must be a positive integer'):
        verify_archive(archive)
    with open(archive + '.json', 'w') as handle:
        json.dump(dict(sidecar, format='other'), handle)
    with pytest.raises(BackupError, match='format must be'):
        read_sidecar(archive)
    os.unlink(archive + '.json')
    with pytest.raises(BackupError, match='sidecar .*json cannot be read'):
        verify_archive(archive)


def forge(dest, members, manifest_parts=None, name='spire-20261130T231500Z', manifest_extra=None):
    """An archive with arbitrary members and a sidecar that matches its bytes (so only the inner checks catch it)."""
    buf = io.BytesIO()
    parts = {}
    for member in members:
        if member.get('data') is not None:
            parts[member['name']] = {'sha256': hashlib.sha256(member['data']).hexdigest(), 'size': len(member['data'])}
    manifest = {'format': FORMAT, 'system': 'spire', 'name': name, 'created': '2026-11-30T23:15:00Z',
                'info': {}, 'parts': manifest_parts if manifest_parts is not None else parts}
    manifest.update(manifest_extra or {})
    with tarfile.open(fileobj=buf, mode='w:gz') as tar:
        raw = json.dumps(manifest).encode()
        info = tarfile.TarInfo('manifest.json')
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
        for member in members:
            info = tarfile.TarInfo(member['name'])
            info.type = member.get('type', tarfile.REGTYPE)
            if info.type == tarfile.SYMTYPE:
                info.linkname = '/etc/passwd'
            data = member.get('data') or b''
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    path = dest / (name + '.tar.gz')
    path.write_bytes(buf.getvalue())
    sidecar = {'format': FORMAT, 'system': 'spire', 'name': name, 'archive': path.name,
               'created': '2026-11-30T23:15:00Z', 'sha256': hashlib.sha256(buf.getvalue()).hexdigest(),
               'size': len(buf.getvalue()), 'encrypted': False, 'info': {},
               'parts': manifest_parts if manifest_parts is not None else parts}
    (dest / (path.name + '.json')).write_text(json.dumps(sidecar))
    return str(path)


GOOD = hashlib.sha256(b'abc').hexdigest()


@pytest.mark.parametrize('members, manifest_parts, message', [
    ([{'name': 'a', 'data': b'abc'}, {'name': 'b', 'data': b'xyz'}], {'a': {'sha256': GOOD, 'size': 3}},
     'member b is not listed'),
    ([{'name': 'a', 'data': b'abc'}], {'a': {'sha256': GOOD, 'size': 3}, 'b': {'sha256': GOOD, 'size': 3}},
     'parts listed in the manifest are missing: b'),
    ([{'name': 'a', 'data': b'abd'}], {'a': {'sha256': GOOD, 'size': 3}}, 'part a checksum mismatch'),
    ([{'name': '../evil', 'data': b'abc'}], {'a': {'sha256': GOOD, 'size': 3}}, "member name '../evil'"),
    ([{'name': 'link', 'type': tarfile.SYMTYPE}], {'a': {'sha256': GOOD, 'size': 3}}, 'not a regular file'),
    ([{'name': 'dir', 'type': tarfile.DIRTYPE}], {'a': {'sha256': GOOD, 'size': 3}}, 'not a regular file'),
    ([{'name': 'a', 'data': b''}], {'a': {'sha256': hashlib.sha256(b'').hexdigest(), 'size': 0}},
     'part a is empty'),
    ([{'name': 'a', 'data': b'abc'}, {'name': 'a', 'data': b'abc'}], {'a': {'sha256': GOOD, 'size': 3}},
     'member a appears twice'),
])
def test_inner_checks(tmp_path, members, manifest_parts, message):
    out = tmp_path / 'out'
    out.mkdir()
    path = forge(tmp_path, members, manifest_parts)
    with pytest.raises(BackupError, match=message):
        verify_archive(path, extract_to=str(out))
    assert listing(out) == [], 'a failed verification placed files'


def test_manifest_must_match_sidecar(tmp_path):
    path = forge(tmp_path, [{'name': 'a', 'data': b'abc'}], manifest_extra={'system': 'vault'})
    with pytest.raises(BackupError, match="manifest's system does not match the sidecar"):
        verify_archive(path)


def test_not_a_tar(tmp_path):
    path = tmp_path / 'spire-20261130T231500Z.tar.gz'
    path.write_bytes(b'not gzip at all')
    sidecar = {'format': FORMAT, 'system': 'spire', 'name': 'spire-20261130T231500Z', 'archive': path.name,
               'created': '2026-11-30T23:15:00Z', 'sha256': hashlib.sha256(path.read_bytes()).hexdigest(),
               'size': path.stat().st_size, 'encrypted': False, 'info': {}, 'parts': {}}
    (tmp_path / (path.name + '.json')).write_text(json.dumps(sidecar))
    with pytest.raises(BackupError, match='not a readable tar.gz archive'):
        verify_archive(str(path))


def test_extract_to_must_exist(files, tmp_path):
    src, dest = files
    sidecar = write_archive(str(dest), 'spire', parts_of(src), {}, now=T0)
    with pytest.raises(BackupError, match='extract_to .* does not exist'):
        verify_archive(str(dest / sidecar['archive']), extract_to=str(tmp_path / 'nope'))


# --- encryption with the real age CLI ---

def test_encrypted_round_trip(files, age_keys, tmp_path):
    src, dest = files
    identity, recipient = age_keys['right']
    sidecar = write_archive(str(dest), 'vault', parts_of(src), {}, recipients=[recipient], now=T0)
    archive = dest / 'vault-20261130T231500Z.tar.gz.age'
    assert listing(dest) == [archive.name, archive.name + '.json']
    assert sidecar['encrypted'] is True and archive.read_bytes().startswith(b'age-encryption.org/v1')
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert b'SQLite format 3' not in archive.read_bytes()
    with pytest.raises(BackupError, match='identity .* is required to verify the encrypted archive'):
        verify_archive(str(archive))
    wrong = age_keys['wrong'][0]
    with pytest.raises(BackupError, match='could not decrypt .* with identity %s: no identity matched' % wrong):
        verify_archive(str(archive), identity=wrong)
    out = tmp_path / 'out'
    out.mkdir()
    manifest = verify_archive(str(archive), identity=identity, extract_to=str(out))
    assert manifest['system'] == 'vault'
    assert (out / 'keys.json').read_bytes() == (src / 'keys.json').read_bytes()


def test_encryption_failure_leaves_nothing(files):
    src, dest = files

    def failing(argv, data=None):
        assert argv[0] == 'age' and '--recipient' in argv
        return 1, b'', b'age: error: boom'
    with pytest.raises(BackupError, match='age could not encrypt .* boom'):
        write_archive(str(dest), 'vault', parts_of(src), {}, recipients=['age1abc'], run=failing, now=T0)
    assert listing(dest) == []


# --- listing ---

def test_list_and_latest(files):
    src, dest = files
    write_archive(str(dest), 'spire', parts_of(src), {}, now=at(60))
    write_archive(str(dest), 'spire', parts_of(src), {}, now=at(0))
    write_archive(str(dest), 'vault', parts_of(src), {}, now=at(30))
    (dest / '.spire-20261130T231700Z.tar.gz.abc.part').write_bytes(b'x')
    (dest / 'spire-20261130T231800Z.tar.gz.json').write_text('{}')  # sidecar without archive
    (dest / 'notes.json').write_text('{}')
    names = [b['name'] for b in list_backups(str(dest))]
    assert names == ['spire-20261130T231500Z', 'vault-20261130T231530Z', 'spire-20261130T231600Z']
    spire = list_backups(str(dest), 'spire')
    assert [b['name'] for b in spire] == ['spire-20261130T231500Z', 'spire-20261130T231600Z']
    assert spire[0]['path'] == str(dest / 'spire-20261130T231500Z.tar.gz')
    assert latest_backup(str(dest), 'spire')['name'] == 'spire-20261130T231600Z'
    assert latest_backup(str(dest), 'other') is None


# --- retention (pure) ---

def sc(seconds, verified=True, name=None):
    """A sidecar; verified=True: proven by a restore after writing, False: only the write-time check."""
    created = at(seconds)
    entry = {'name': name or archive_name('spire', created), 'created': iso(created),
             'verified': {'at': iso(created), 'how': 'restored' if verified else 'written'}}
    if verified is None:
        del entry['verified']
    return entry


def names(entries):
    return [e['name'][-7:-1] for e in entries]


DAY = 86400


@pytest.mark.parametrize('backups, keep_count, max_age, now, kept, deleted', [
    ([], 3, None, 0, [], []),
    ([sc(0)], 1, None, 0, ['231500'], []),
    ([sc(0), sc(60), sc(120)], None, None, 0, ['231500', '231600', '231700'], []),
    ([sc(0), sc(60), sc(120)], 2, None, 0, ['231600', '231700'], ['231500']),
    ([sc(0), sc(60), sc(120)], 1, None, 0, ['231700'], ['231500', '231600']),
    ([sc(0), sc(60), sc(120)], 5, None, 0, ['231500', '231600', '231700'], []),
    # age: older than max_age goes, the newest stays even when it is old
    ([sc(0), sc(60), sc(120)], None, 100, 150, ['231600', '231700'], ['231500']),
    ([sc(0), sc(60), sc(120)], None, 10, DAY, ['231700'], ['231500', '231600']),
    # either rule deletes
    ([sc(0), sc(60), sc(120), sc(180)], 3, 100, 200, ['231700', '231800'], ['231500', '231600']),
    # the newest verified backup survives both rules while newer ones are unverified
    ([sc(0), sc(60), sc(120, False), sc(180, False)], 1, None, 0, ['231600', '231800'],
     ['231500', '231700']),
    ([sc(0), sc(60), sc(120, False), sc(180, False)], None, 10, DAY, ['231600', '231800'],
     ['231500', '231700']),
    # nothing proven after writing (the write-time check does not count): only the newest is protected
    ([sc(0, False), sc(60, False)], 1, None, 0, ['231600'], ['231500']),
    ([sc(0, None), sc(60, None), sc(120, None)], 1, None, 0, ['231700'], ['231500', '231600']),
    # a later verification of an older archive protects it
    ([sc(0, False), sc(60), sc(120, False), sc(180, False)], 2, None, 0, ['231600', '231700', '231800'],
     ['231500']),
    # an unsorted input is ordered by created
    ([sc(120), sc(0), sc(60)], 2, None, 0, ['231600', '231700'], ['231500']),
])
def test_retention_plan(backups, keep_count, max_age, now, kept, deleted):
    keep, delete = retention_plan(backups, keep_count, max_age, now=at(now))
    assert names(keep) == kept and names(delete) == deleted


def test_retention_boundary_is_strictly_older():
    keep, delete = retention_plan([sc(0), sc(60)], max_age_seconds=60, now=at(60))
    assert names(delete) == [] and len(keep) == 2
    keep, delete = retention_plan([sc(0), sc(60)], max_age_seconds=59, now=at(60))
    assert names(delete) == ['231500']


@pytest.mark.parametrize('keep_count, max_age, message', [
    (0, None, 'keep_count must be an integer of at least 1'),
    (-1, None, 'keep_count'),
    (True, None, 'keep_count'),
    (None, 0, 'max_age must be a positive number of seconds'),
    (None, -5, 'max_age'),
])
def test_retention_rejects_limits(keep_count, max_age, message):
    with pytest.raises(BackupError, match=message):
        retention_plan([sc(0)], keep_count, max_age, now=T0)


def test_retention_rejects_bad_created():
    with pytest.raises(BackupError, match='created of x'):
        retention_plan([{'name': 'x', 'created': 'yesterday'}], 1, now=T0)


def test_apply_retention_and_mark_verified(files):
    src, dest = files
    for seconds in (0, 60, 120):
        write_archive(str(dest), 'spire', parts_of(src), {}, now=at(seconds))
    write_archive(str(dest), 'vault', parts_of(src), {}, now=at(0))
    newest = str(dest / 'spire-20261130T231700Z.tar.gz')
    marked = mark_verified(newest, 'restored', now=at(500))
    assert marked['verified'] == {'at': '2026-11-30T23:23:20Z', 'how': 'restored'}
    assert [v['how'] for v in marked['verifications']] == ['written', 'restored']
    assert read_sidecar(newest) == marked
    assert stat.S_IMODE(os.stat(newest + '.json').st_mode) == 0o600
    with pytest.raises(BackupError, match='how must match'):
        mark_verified(newest, 'bad how')
    deleted = apply_retention(str(dest), 'spire', keep_count=1, now=at(600))
    assert deleted == [str(dest / 'spire-20261130T231500Z.tar.gz'), str(dest / 'spire-20261130T231600Z.tar.gz')]
    assert listing(dest) == ['spire-20261130T231700Z.tar.gz', 'spire-20261130T231700Z.tar.gz.json',
                             'vault-20261130T231500Z.tar.gz', 'vault-20261130T231500Z.tar.gz.json']
    assert apply_retention(str(dest), 'spire', keep_count=1, now=at(600)) == []


# --- metrics ---

def test_metric_text():
    text = metric_text('spire', {'created': '2026-11-30T23:15:00Z', 'size': 1234})
    assert 'trustroot_backup_last_success_timestamp_seconds{system="spire"} %d\n' % int(
        (T0 - datetime.datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) in text
    assert 'trustroot_backup_last_size_bytes{system="spire"} 1234\n' in text
    assert '# TYPE trustroot_backup_last_size_bytes gauge\n' in text
    with_host = metric_text('vault', {'created': '2026-11-30T23:15:00Z', 'size': 1}, host='a"b')
    assert '{system="vault",host="a\\"b"}' in with_host


PROMTOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', '.cache', 'bin', 'promtool')


def promtool_check_metrics(path):
    assert os.path.exists(PROMTOOL), 'promtool is missing: run scripts/bootstrap.sh'
    with open(path, 'rb') as handle:
        proc = subprocess.run([PROMTOOL, 'check', 'metrics'], stdin=handle, capture_output=True, text=True,
                              check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_metric_passes_promtool(tmp_path):
    path = write_metric(str(tmp_path), 'spire', {'created': '2026-11-30T23:15:00Z', 'size': 99})
    assert path == str(tmp_path / 'trustroot_backup_spire.prom')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    promtool_check_metrics(path)


def test_verified_metric_has_its_own_file_beside_the_backup_metric(tmp_path):
    write_metric(str(tmp_path), 'spire-server', {'created': '2026-11-30T23:15:00Z', 'size': 99})
    path = write_verified_metric(str(tmp_path), 'spire-server', '2026-12-01T08:00:00Z')
    assert path == str(tmp_path / 'trustroot_backup_spire-server_verified.prom')
    assert sorted(os.listdir(str(tmp_path))) == ['trustroot_backup_spire-server.prom',
                                                 'trustroot_backup_spire-server_verified.prom']
    with open(path) as handle:
        text = handle.read()
    epoch = int((datetime.datetime(2026, 12, 1, 8, tzinfo=UTC)
                 - datetime.datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
    assert 'trustroot_backup_last_verified_timestamp_seconds{system="spire-server"} %d\n' % epoch in text
    promtool_check_metrics(path)


def test_verified_metric_rejects_a_time_that_is_not_utc_iso():
    with pytest.raises(BackupError, match='verified_at must be a UTC time'):
        verified_metric_text('vault', '2026-12-01 08:00')


def test_write_metric_needs_directory(tmp_path):
    with pytest.raises(BackupError, match='metric_textfile_dir .* does not exist'):
        write_metric(str(tmp_path / 'nope'), 'spire', {'created': '2026-11-30T23:15:00Z', 'size': 1})


# --- shared destination options ---

def test_backup_argument_spec():
    spec = backup_argument_spec()
    assert sorted(spec) == ['age_recipients', 'dest_dir', 'keep_count', 'max_age', 'metric_textfile_dir', 's3']
    s3 = spec['s3']['options']
    assert s3['secret_key']['no_log'] is True and s3['region']['default'] == 'us-east-1'
    assert sorted(s3) == ['access_key', 'bucket', 'ca_file', 'endpoint', 'prefix', 'region', 'secret_key']


def params(dest, **kwargs):
    base = dict(dest_dir=str(dest), age_recipients=[], keep_count=None, max_age=None, metric_textfile_dir=None,
                s3=None)
    base.update(kwargs)
    return base


def test_backup_option_errors(tmp_path):
    assert backup_option_errors(params(tmp_path)) == []
    errors = backup_option_errors(params(
        tmp_path / 'missing', age_recipients=['age1ok', 'AGE-SECRET-KEY-1X'], keep_count=0, max_age=-1,
        metric_textfile_dir=str(tmp_path / 'nometrics'),
        s3={'endpoint': 'ftp://x', 'bucket': 'B', 'access_key': 'a', 'secret_key': '', 'prefix': '/abs'}))
    text = '; '.join(errors)
    for expected in ('dest_dir %s does not exist' % (tmp_path / 'missing'),
                     'age_recipients[1] must be an age public key starting with age1',
                     'keep_count must be an integer of at least 1', 'max_age must be a positive number',
                     'metric_textfile_dir %s does not exist' % (tmp_path / 'nometrics'),
                     's3.secret_key is required', 's3.endpoint must be http(s)://host[:port]',
                     's3.bucket B is not a valid bucket name', 's3.prefix must be relative'):
        assert expected in text, text
    assert 'AGE-SECRET-KEY' not in text
    assert backup_option_errors(params(tmp_path, dest_dir=None)) == ['dest_dir is required']


def test_finish_backup_local(files):
    src, dest = files
    metrics = dest.parent / 'metrics'
    metrics.mkdir()
    write_archive(str(dest), 'spire', parts_of(src), {}, now=at(0))
    sidecar = write_archive(str(dest), 'spire', parts_of(src), {}, now=at(60))
    result = finish_backup(params(dest, keep_count=1, metric_textfile_dir=str(metrics)), sidecar, now=at(61))
    assert result['uploaded'] == [] and result['deleted_s3'] == []
    assert result['deleted'] == [str(dest / 'spire-20261130T231500Z.tar.gz')]
    assert result['metric_path'] == str(metrics / 'trustroot_backup_spire.prom')
    assert 'last_size_bytes{system="spire"} %d' % sidecar['size'] in open(result['metric_path']).read()


# --- the newest verified backup of each system, and whether it is recent enough --------------------------------

def test_newest_verified_skips_unproven_and_picks_newest(files, tmp_path):
    src = files[0]
    vault_dir = tmp_path / 'backups' / 'vault'
    spire_dir = tmp_path / 'backups' / 'spire-server' / 'spire-server1'
    vault_dir.mkdir(parents=True)
    spire_dir.mkdir(parents=True)
    old = write_archive(str(vault_dir), 'vault', parts_of(src), {}, now=at(0))
    old_path = str(vault_dir / old['archive'])
    mark_verified(old_path, 'restored', now=at(10))
    # Newer, but only checked as it was written: it does not count.
    write_archive(str(vault_dir), 'vault', parts_of(src), {}, now=at(60))
    assert newest_verified_backups(str(tmp_path / 'backups')) == {
        'vault': {'name': old['name'], 'path': old_path, 'created_unix': at(0).timestamp(),
                  'verified_how': 'restored', 'verified_at': iso(at(10))},
        'spire-server': None}
    spire = write_archive(str(spire_dir), 'spire-server', parts_of(src), {}, now=at(120))
    mark_verified(str(spire_dir / spire['archive']), 'restored', now=at(130))
    assert newest_verified_backups(str(tmp_path / 'backups'))['spire-server']['name'] == spire['name']


def test_newest_verified_of_an_empty_directory(tmp_path):
    assert newest_verified_backups(str(tmp_path)) == {'vault': None, 'spire-server': None}


NEWEST = {'vault': {'name': 'vault-20261130T231500Z', 'created_unix': at(0).timestamp(), 'verified_how': 'restored'},
          'spire-server': {'name': 'spire-server-20261130T231500Z', 'created_unix': at(0).timestamp(),
                           'verified_how': 'restored'}}


def test_backup_readiness_both_recent():
    out = backup_readiness(NEWEST, 3600, at(3600).timestamp())
    assert out['ready'] is True and out['problems'] == []
    assert out['systems']['vault'] == {'ready': True, 'age_seconds': 3600, 'name': 'vault-20261130T231500Z',
                                       'why': 'vault-20261130T231500Z taken 3600 s ago and verified (restored)'}


def test_backup_readiness_names_what_is_missing_or_old():
    out = backup_readiness(dict(NEWEST, vault=None), 3600, at(3601).timestamp())
    assert out['ready'] is False
    assert out['problems'] == ['no verified vault backup',
                               'spire-server-20261130T231500Z taken 3601 s ago and verified (restored), '
                               'older than the 3600 s allowed']
    assert out['systems']['vault']['ready'] is False and out['systems']['spire-server']['age_seconds'] == 3601


@pytest.mark.parametrize('max_age', [0, -5, 'x', True])
def test_backup_readiness_refuses_a_bad_max_age(max_age):
    with pytest.raises(BackupError, match='max_age must be a positive number of seconds'):
        backup_readiness(NEWEST, max_age, at(0).timestamp())

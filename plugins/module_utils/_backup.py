# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup archive format of trustroot.ops, written and checked the same way everywhere.

An archive is ``<system>-<YYYYmmddTHHMMSSZ>.tar.gz`` (or ``.tar.gz.age`` when encrypted to age
recipients). Its first member is ``manifest.json`` (format, system, name, created, info, and the sha256
and size of every part); the parts follow, each a plain file. Next to the archive a sidecar
``<archive>.json`` records the archive's own sha256 and size, whether it is encrypted, the manifest's
facts, and the last verification. A sidecar is written only for an archive that was read back from disk
and checked, so listing sidecars lists usable backups.

Files are never half-written: archives, sidecars, extracted parts and metric files go through a
temporary file in the target directory (mode 0600, or the final mode, from the start) that replaces
the target only when complete; any error or interruption removes it.

This file runs in Ansible modules and, unchanged, in a plain Python 3 command on hosts (systemd timers):
it imports only the standard library and other host-shared files of this collection. Commands (``age``)
are argv lists run through a ``run(argv, data=None) -> (rc, stdout_bytes, stderr_bytes)`` callable.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import datetime
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading

from ansible_collections.trustroot.ops.plugins.module_utils._files import (
    atomic_writer, fsync_directory, fsync_path, sha256_and_size, sha256_file)
from ansible_collections.trustroot.ops.plugins.module_utils._s3 import S3Error, S3Store
from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError

FORMAT = 'trustroot.ops/backup/v1'
MANIFEST = 'manifest.json'
CHUNK = 1024 * 1024
MAX_MANIFEST_SIZE = 16 * 1024 * 1024
SYSTEM_RE = re.compile(r'^[a-z0-9_-]+$')
MEMBER_RE = re.compile(r'^[A-Za-z0-9._-]+$')
SHA256_RE = re.compile(r'^[0-9a-f]{64}$')
STAMP_FORMAT = '%Y%m%dT%H%M%SZ'
ISO_FORMAT = '%Y-%m-%dT%H:%M:%SZ'
ARCHIVE_SUFFIXES = ('.tar.gz', '.tar.gz.age')
AGE_MAGIC = b'age-encryption.org/'
METRIC_PREFIX = 'trustroot_backup'


class BackupError(TrustrootError):
    """A backup that cannot be written, read or trusted. The message names the file or field and the rule."""


class Terminated(BaseException):
    """SIGTERM received while a backup file was being written (handled like KeyboardInterrupt)."""


def subprocess_run(argv, data=None):
    """Run ``argv`` (a list, no shell); return (rc, stdout bytes, stderr bytes). A missing program is rc 127."""
    try:
        proc = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    except OSError as exc:
        return 127, b'', ('%s: %s' % (argv[0], exc.strerror or exc)).encode('utf-8')
    return proc.returncode, proc.stdout, proc.stderr


@contextlib.contextmanager
def sigterm_raises():
    """Within the block, SIGTERM raises Terminated (so cleanup runs) unless the caller installed its own handler."""
    installed = False
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None):
            def _raise(_signum, _frame):
                raise Terminated('terminated by SIGTERM')
            signal.signal(signal.SIGTERM, _raise)
            installed = True
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous)


# --- names and times ---

def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _aware_utc(value, field='created'):
    if not isinstance(value, datetime.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise BackupError('%s must be a timezone-aware datetime, got %r' % (field, value))
    return value.astimezone(datetime.timezone.utc).replace(microsecond=0)


def iso(value):
    return _aware_utc(value).strftime(ISO_FORMAT)


def parse_iso(text, field='created'):
    try:
        return datetime.datetime.strptime(text, ISO_FORMAT).replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        raise BackupError('%s must be a UTC time like 2026-11-30T23:15:00Z, got %r' % (field, text))


def check_system(system):
    if not isinstance(system, str) or not SYSTEM_RE.match(system):
        raise BackupError('system must match [a-z0-9_-]+, got %r' % (system,))
    return system


def archive_name(system, created):
    """Base name of the archive of ``system`` made at ``created`` (aware datetime): 'spire-20261130T231500Z'."""
    return '%s-%s' % (check_system(system), _aware_utc(created).strftime(STAMP_FORMAT))


def sidecar_path(archive_path):
    return archive_path + '.json'


def is_archive_name(name):
    return not name.startswith('.') and name.endswith(ARCHIVE_SUFFIXES)


# --- validation of inputs ---

def part_errors(parts):
    """Field-named problems of ``parts`` (list of (member_name, source_path)); [] when they can be archived."""
    errors = []
    seen = set()
    if not parts:
        return ['parts must list at least one file']
    for index, part in enumerate(parts):
        try:
            name, path = part
        except (TypeError, ValueError):
            errors.append('parts[%d] must be a (name, path) pair' % index)
            continue
        if not isinstance(name, str) or not MEMBER_RE.match(name) or name in ('.', '..'):
            errors.append('parts[%d].name %r must be a plain file name of [A-Za-z0-9._-]' % (index, name))
        elif name == MANIFEST:
            errors.append('parts[%d].name must not be %s (the archive\'s own manifest)' % (index, MANIFEST))
        elif name in seen:
            errors.append('parts[%d].name %s is used twice: member names must be unique' % (index, name))
        seen.add(name)
        if not isinstance(path, str) or not path:
            errors.append('parts[%d].path must be a file path' % index)
        elif not os.path.exists(path):
            errors.append('parts[%d].path %s does not exist' % (index, path))
        elif not os.path.isfile(path):
            errors.append('parts[%d].path %s is not a regular file' % (index, path))
        elif os.path.getsize(path) == 0:
            errors.append('parts[%d].path %s is empty (zero bytes): an empty file is never a backup' % (index, path))
        elif not os.access(path, os.R_OK):
            errors.append('parts[%d].path %s is not readable' % (index, path))
    return errors


def recipient_errors(recipients):
    errors = []
    for index, recipient in enumerate(recipients or ()):
        if not isinstance(recipient, str) or not recipient.startswith('age1') or any(c.isspace() for c in recipient):
            errors.append('age_recipients[%d] must be an age public key starting with age1' % index)
    return errors


def directory_errors(directory, field='dest_dir'):
    if not directory:
        return ['%s is required' % field]
    if not os.path.isdir(directory):
        return ['%s %s does not exist or is not a directory' % (field, directory)]
    if not os.access(directory, os.W_OK | os.X_OK):
        return ['%s %s is not writable' % (field, directory)]
    return []


# --- writing ---

class _HashingWriter(object):
    """File-like wrapper counting and hashing what goes through to ``handle``."""

    def __init__(self, handle):
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.digest.update(data)
        self.size += len(data)
        return self.handle.write(data)

    def flush(self):
        self.handle.flush()


class _HashingReader(object):
    """Reads at most ``size`` bytes of ``handle``, hashing them; tarfile reads parts through it."""

    def __init__(self, handle, size):
        self.handle = handle
        self.remaining = size
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, amount=-1):
        if amount is None or amount < 0 or amount > self.remaining:
            amount = self.remaining
        data = self.handle.read(min(amount, CHUNK) if amount else 0)
        self.remaining -= len(data)
        self.size += len(data)
        self.digest.update(data)
        return data


def _tarinfo(name, size, mtime):
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = mtime
    info.type = tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ''
    return info


def _json_bytes(value):
    return json.dumps(value, sort_keys=True, indent=2).encode('utf-8') + b'\n'


def _write_tar(handle, manifest, parts, mtime):
    """Stream manifest.json and each part into a gzipped tar on ``handle``; the parts are read in chunks and must
    still match the sha256 and size recorded in the manifest."""
    with tarfile.open(fileobj=handle, mode='w|gz', format=tarfile.PAX_FORMAT) as tar:
        data = _json_bytes(manifest)
        tar.addfile(_tarinfo(MANIFEST, len(data), mtime), io.BytesIO(data))
        for name, path in parts:
            expected = manifest['parts'][name]
            with open(path, 'rb') as source:
                reader = _HashingReader(source, expected['size'])
                try:
                    tar.addfile(_tarinfo(name, expected['size'], mtime), reader)
                except OSError:
                    if reader.size == expected['size']:
                        raise
                    raise BackupError('parts %s (%s) shrank while it was archived: stop writers or copy it first'
                                      % (name, path))
                grown = source.read(1)
            if reader.size != expected['size'] or grown or reader.digest.hexdigest() != expected['sha256']:
                raise BackupError('parts %s (%s) changed while it was archived: stop writers or copy it first'
                                  % (name, path))


def _temp_path(directory, name):
    fd, path = tempfile.mkstemp(dir=directory, prefix='.%s.' % name, suffix='.part')
    os.fchmod(fd, 0o600)
    os.close(fd)
    return path


def _text(value):
    return value.decode('utf-8', 'replace').strip() if isinstance(value, bytes) else (value or '').strip()


def write_archive(directory, system, parts, info, recipients=(), run=subprocess_run, now=None):
    """Write ``<directory>/<system>-<stamp>.tar.gz[.age]`` and its sidecar; return the sidecar dict.

    ``parts``: list of (member_name, source_path). ``info``: JSON-able facts (never secrets). ``recipients``:
    age public keys (age1...); when given the archive is encrypted with ``age`` (binary). Everything is checked
    before anything is written; the archive is read back from disk and checked before its sidecar exists.
    """
    check_system(system)
    parts = [tuple(part) if isinstance(part, (list, tuple)) else part for part in (parts or [])]
    errors = part_errors(parts) + recipient_errors(recipients) + directory_errors(directory, 'directory')
    try:
        json.dumps(info if info is not None else {})
    except (TypeError, ValueError) as exc:
        errors.append('info must be JSON-serializable: %s' % exc)
    if info is not None and not isinstance(info, dict):
        errors.append('info must be a dict')
    if errors:
        raise BackupError('; '.join(errors))
    created = _aware_utc(now, 'now') if now is not None else utcnow()
    name = archive_name(system, created)
    encrypted = bool(recipients)
    archive = name + ('.tar.gz.age' if encrypted else '.tar.gz')
    final = os.path.join(directory, archive)
    for existing in (final, sidecar_path(final)):
        if os.path.lexists(existing):
            raise BackupError('%s already exists: one backup of %s per second' % (existing, system))

    summary = {}
    for member, path in parts:
        digest, size = sha256_and_size(path)
        if size == 0:
            raise BackupError('part %s (%s) is empty (zero bytes): an empty file is never a backup' % (member, path))
        summary[member] = {'sha256': digest, 'size': size}
    manifest = {'format': FORMAT, 'system': system, 'name': name, 'created': iso(created), 'info': info or {},
                'parts': summary}

    temps = []
    placed = False
    try:
        with sigterm_raises():
            plain = _temp_path(directory, archive)
            temps.append(plain)
            with open(plain, 'wb') as handle:
                writer = _HashingWriter(handle)
                _write_tar(writer, manifest, parts, int(_epoch(created)))
                handle.flush()
                os.fsync(handle.fileno())
            written = (writer.digest.hexdigest(), writer.size)
            if encrypted:
                sealed = _temp_path(directory, archive)
                temps.append(sealed)
                argv = ['age', '--encrypt']
                for recipient in recipients:
                    argv += ['--recipient', recipient]
                rc, _out, err = run(argv + ['--output', sealed, plain])
                if rc != 0:
                    raise BackupError('age could not encrypt %s to age_recipients: %s' % (archive, _text(err)))
                os.unlink(plain)
                temps.remove(plain)
                fsync_path(sealed)
                source = sealed
            else:
                source = plain
            # No-clobber placement: link fails when another writer took the name in the meantime.
            try:
                os.link(source, final)
            except FileExistsError:
                raise BackupError('%s already exists: one backup of %s per second' % (final, system))
            placed = True
            os.unlink(source)
            temps.remove(source)
            fsync_directory(directory)

            digest, size = sha256_and_size(final)
            if encrypted:
                with open(final, 'rb') as handle:
                    if not handle.read(len(AGE_MAGIC)) == AGE_MAGIC:
                        raise BackupError('%s is not an age file after encryption' % final)
            else:
                if (digest, size) != written:
                    raise BackupError('%s read back from disk differs from what was written: checksum mismatch: '
                                      'expected %s, got %s' % (final, written[0], digest))
                _check_tar(final, final, manifest)
            sidecar = {
                'format': FORMAT, 'system': system, 'name': name, 'archive': archive, 'created': manifest['created'],
                'sha256': digest, 'size': size, 'encrypted': encrypted, 'info': manifest['info'],
                'parts': summary, 'verified': {'at': iso(utcnow()), 'how': 'written'},
            }
            with atomic_writer(sidecar_path(final), 0o600) as handle:
                handle.write(_json_bytes(sidecar))
            placed = False
            return sidecar
    except BaseException as exc:
        for path in temps + ([final] if placed else []):
            with contextlib.suppress(OSError):
                os.unlink(path)
        if isinstance(exc, (IOError, OSError)):
            # A full disk fails a write of a temporary file: name the archive and its directory instead.
            raise BackupError(write_failure(final, exc))
        raise


def write_failure(final, exc):
    """The message for a file error while writing the archive ``final``: what, where and the OS reason (pure)."""
    reason = getattr(exc, 'strerror', None) or str(exc)
    return 'cannot write the archive %s: %s (nothing of it is left in %s)' % (final, reason, os.path.dirname(final))


def _epoch(created):
    return (created - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)).total_seconds()


# --- reading ---

def validate_sidecar(sidecar, where):
    """Raise BackupError naming ``where`` and the field when ``sidecar`` is not a sidecar of this format."""
    if not isinstance(sidecar, dict):
        raise BackupError('%s: not a JSON object' % where)
    if sidecar.get('format') != FORMAT:
        raise BackupError('%s: format must be %s, got %r' % (where, FORMAT, sidecar.get('format')))
    for field, kind in (('system', str), ('name', str), ('archive', str), ('created', str), ('sha256', str),
                        ('parts', dict)):
        if not isinstance(sidecar.get(field), kind):
            raise BackupError('%s: field %s is missing or not a %s' % (where, field, kind.__name__))
    if not SYSTEM_RE.match(sidecar['system']):
        raise BackupError('%s: field system %r is not valid' % (where, sidecar['system']))
    parse_iso(sidecar['created'], '%s: field created' % where)
    if not SHA256_RE.match(sidecar['sha256']):
        raise BackupError('%s: field sha256 must be 64 lowercase hexadecimal digits' % where)
    size = sidecar.get('size')
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise BackupError('%s: field size must be a positive integer' % where)
    if not isinstance(sidecar.get('encrypted'), bool):
        raise BackupError('%s: field encrypted must be true or false' % where)
    expected = sidecar['name'] + ('.tar.gz.age' if sidecar['encrypted'] else '.tar.gz')
    if sidecar['archive'] != expected:
        raise BackupError('%s: field archive must be %s, got %s' % (where, expected, sidecar['archive']))
    return sidecar


def read_sidecar(archive_path):
    """The sidecar of ``archive_path`` (``<archive_path>.json``), checked; BackupError when missing or invalid."""
    path = sidecar_path(archive_path)
    try:
        with open(path, 'rb') as handle:
            data = handle.read(MAX_MANIFEST_SIZE + 1)
    except (IOError, OSError) as exc:
        raise BackupError('sidecar %s cannot be read: %s' % (path, exc.strerror or exc))
    try:
        sidecar = json.loads(data.decode('utf-8'))
    except ValueError as exc:
        raise BackupError('sidecar %s is not valid JSON: %s' % (path, exc))
    validate_sidecar(sidecar, 'sidecar %s' % path)
    if sidecar['archive'] != os.path.basename(archive_path):
        raise BackupError('sidecar %s: field archive is %s, not %s'
                          % (path, sidecar['archive'], os.path.basename(archive_path)))
    return sidecar


def _check_tar(path, label, expected, extract_to=None):
    """Read the tar.gz at ``path`` as a stream and check it against ``expected`` (format, system, name and parts
    of the sidecar or manifest); with ``extract_to`` place the parts there when everything checked. Returns the
    manifest."""
    manifest = None
    seen = {}
    temps = {}
    try:
        with tarfile.open(path, mode='r|gz') as tar:
            for member in tar:
                name = member.name
                if not member.isreg():
                    raise BackupError('%s: member %r is not a regular file (links and directories are refused)'
                                      % (label, name))
                if not MEMBER_RE.match(name) or name in ('.', '..'):
                    raise BackupError('%s: member name %r is not a plain file name' % (label, name))
                if manifest is None:
                    if name != MANIFEST:
                        raise BackupError('%s: first member must be %s, got %s' % (label, MANIFEST, name))
                    if member.size > MAX_MANIFEST_SIZE:
                        raise BackupError('%s: %s is larger than %d bytes' % (label, MANIFEST, MAX_MANIFEST_SIZE))
                    manifest = _parse_manifest(tar.extractfile(member).read(), label)
                    _compare(manifest, expected, label)
                    continue
                if name == MANIFEST or name in seen:
                    raise BackupError('%s: member %s appears twice' % (label, name))
                listed = manifest['parts'].get(name)
                if listed is None:
                    raise BackupError('%s: member %s is not listed in the manifest' % (label, name))
                handle = tar.extractfile(member)
                digest = hashlib.sha256()
                size = 0
                out = None
                if extract_to is not None:
                    temps[name] = _temp_path(extract_to, name)
                    out = open(temps[name], 'wb')
                try:
                    for chunk in iter(lambda: handle.read(CHUNK), b''):
                        digest.update(chunk)
                        size += len(chunk)
                        if out is not None:
                            out.write(chunk)
                    if out is not None:
                        out.flush()
                        os.fsync(out.fileno())
                finally:
                    if out is not None:
                        out.close()
                if size == 0:
                    raise BackupError('%s: part %s is empty (zero bytes)' % (label, name))
                if size != listed['size'] or digest.hexdigest() != listed['sha256']:
                    raise BackupError('%s: part %s checksum mismatch: expected sha256 %s (%d bytes), got %s (%d bytes)'
                                      % (label, name, listed['sha256'], listed['size'], digest.hexdigest(), size))
                seen[name] = True
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        for temp in temps.values():
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise BackupError('%s is not a readable tar.gz archive: %s' % (label, exc))
    except BaseException:
        for temp in temps.values():
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise
    missing = sorted(set(manifest['parts']) - set(seen)) if manifest else None
    if manifest is None or missing:
        for temp in temps.values():
            with contextlib.suppress(OSError):
                os.unlink(temp)
        if manifest is None:
            raise BackupError('%s: the archive is empty (no %s)' % (label, MANIFEST))
        raise BackupError('%s: parts listed in the manifest are missing: %s' % (label, ', '.join(missing)))
    for name, temp in temps.items():
        os.replace(temp, os.path.join(extract_to, name))
    if temps:
        fsync_directory(extract_to)
    return manifest


def _parse_manifest(data, label):
    try:
        manifest = json.loads(data.decode('utf-8'))
    except ValueError as exc:
        raise BackupError('%s: %s is not valid JSON: %s' % (label, MANIFEST, exc))
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT:
        raise BackupError('%s: %s format must be %s' % (label, MANIFEST, FORMAT))
    parts = manifest.get('parts')
    if not isinstance(parts, dict) or not parts:
        raise BackupError('%s: %s field parts must list the parts' % (label, MANIFEST))
    for name, entry in parts.items():
        if not MEMBER_RE.match(name) or name == MANIFEST:
            raise BackupError('%s: %s lists an invalid part name %r' % (label, MANIFEST, name))
        if not isinstance(entry, dict) or not SHA256_RE.match(str(entry.get('sha256', ''))) \
                or not isinstance(entry.get('size'), int) or isinstance(entry.get('size'), bool):
            raise BackupError('%s: %s part %s needs sha256 and size' % (label, MANIFEST, name))
        if entry['size'] <= 0:
            raise BackupError('%s: %s part %s is empty (zero bytes)' % (label, MANIFEST, name))
    return manifest


def _compare(manifest, expected, label):
    for field in ('format', 'system', 'name', 'created', 'parts'):
        if field in expected and manifest.get(field) != expected[field]:
            raise BackupError('%s: the manifest\'s %s does not match the sidecar (%r, expected %r)'
                              % (label, field, _short(manifest.get(field)), _short(expected[field])))


def _short(value):
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 200 else text[:200] + '...'


def verify_archive(archive_path, identity=None, extract_to=None, run=subprocess_run):
    """Check ``archive_path`` against its sidecar and its own manifest; return the manifest.

    1. The file's sha256 and size must match the sidecar (tampering, truncation).
    2. An encrypted archive is decrypted with ``age --decrypt --identity <identity>`` into a private temp file.
    3. manifest.json first, then exactly the listed parts (plain names, regular files), each matching its sha256
       and size, none empty.
    4. With ``extract_to`` (an existing directory) the parts are placed there (mode 0600), each atomically and only
       after every part checked; without it nothing is written.
    """
    sidecar = read_sidecar(archive_path)
    if extract_to is not None and not os.path.isdir(extract_to):
        raise BackupError('extract_to %s does not exist or is not a directory' % extract_to)
    try:
        digest, size = sha256_and_size(archive_path)
    except (IOError, OSError) as exc:
        raise BackupError('archive %s cannot be read: %s' % (archive_path, exc.strerror or exc))
    if digest != sidecar['sha256'] or size != sidecar['size']:
        raise BackupError('archive %s checksum mismatch: the sidecar expected sha256 %s (%d bytes), got %s (%d bytes)'
                          % (archive_path, sidecar['sha256'], sidecar['size'], digest, size))
    if not sidecar['encrypted']:
        return _check_tar(archive_path, 'archive %s' % archive_path, sidecar, extract_to)
    if not identity:
        raise BackupError('identity (an age identity file) is required to verify the encrypted archive %s'
                          % archive_path)
    if not os.path.isfile(identity) or not os.access(identity, os.R_OK):
        raise BackupError('identity %s is not a readable file' % identity)
    workdir = tempfile.mkdtemp(prefix='trustroot-backup-')
    try:
        with sigterm_raises():
            plain = os.path.join(workdir, 'archive.tar.gz')
            fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            rc, _out, err = run(['age', '--decrypt', '--identity', identity, '--output', plain, archive_path])
            if rc != 0:
                message = _text(err)
                if 'no identity matched' in message:
                    raise BackupError('could not decrypt %s with identity %s: no identity matched any of the '
                                      'archive\'s recipients' % (archive_path, identity))
                raise BackupError('could not decrypt %s with identity %s: %s' % (archive_path, identity, message))
            return _check_tar(plain, 'archive %s' % archive_path, sidecar, extract_to)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def extraction_changes(manifest, extract_to):
    """Names of the manifest's parts whose copy in ``extract_to`` is missing or differs (what extracting changes)."""
    changes = []
    for name, entry in sorted(manifest['parts'].items()):
        path = os.path.join(extract_to, name)
        if not os.path.isfile(path) or os.path.getsize(path) != entry['size'] or sha256_file(path) != entry['sha256']:
            changes.append(name)
    return changes


def list_backups(directory, system=None):
    """Sidecars (each with 'path', the archive) of the backups in ``directory``, oldest first.

    Temporary files, sidecars that do not check out and sidecars whose archive is gone are left out."""
    if system is not None:
        check_system(system)
    found = []
    try:
        names = os.listdir(directory)
    except (IOError, OSError) as exc:
        raise BackupError('directory %s cannot be listed: %s' % (directory, exc.strerror or exc))
    for entry in names:
        if not entry.endswith('.json') or not is_archive_name(entry[:-len('.json')]):
            continue
        archive = os.path.join(directory, entry[:-len('.json')])
        if not os.path.isfile(archive):
            continue
        try:
            sidecar = read_sidecar(archive)
        except BackupError:
            continue
        if system is not None and sidecar['system'] != system:
            continue
        found.append(dict(sidecar, path=archive))
    return sorted(found, key=lambda s: (s['created'], s['name']))


def latest_backup(directory, system):
    backups = list_backups(directory, system)
    return backups[-1] if backups else None


# --- retention ---

def retention_errors(keep_count=None, max_age_seconds=None):
    errors = []
    if keep_count is not None and (not isinstance(keep_count, int) or isinstance(keep_count, bool) or keep_count < 1):
        errors.append('keep_count must be an integer of at least 1, got %r' % (keep_count,))
    if max_age_seconds is not None and (not isinstance(max_age_seconds, (int, float))
                                        or isinstance(max_age_seconds, bool) or max_age_seconds <= 0):
        errors.append('max_age must be a positive number of seconds, got %r' % (max_age_seconds,))
    return errors


def proven_after_writing(sidecar):
    """Whether a backup's latest verification is more than the check made as it was written (pure)."""
    return (sidecar.get('verified') or {}).get('how') not in (None, 'written')


def newest_verified(directories, system):
    """The newest backup of ``system`` proven after it was written (see proven_after_writing), across
    ``directories`` (missing ones skipped), as {'name', 'path', 'created_unix', 'verified_how', 'verified_at'}, or None."""
    found = []
    for directory in directories:
        if os.path.isdir(directory):
            found += [s for s in list_backups(directory, system) if proven_after_writing(s)]
    if not found:
        return None
    newest = max(found, key=lambda s: s['created'])
    verified = newest.get('verified') or {}
    return {'name': newest['name'], 'path': newest['path'], 'created_unix': parse_iso(newest['created']).timestamp(),
            'verified_how': verified.get('how'), 'verified_at': verified.get('at')}


def newest_verified_backups(backup_dir):
    """{'vault': ..., 'spire-server': ...}: newest_verified of each system under the directory backup.yml writes
    (vault/ and spire-server/<host>/)."""
    spire_root = os.path.join(backup_dir, 'spire-server')
    spire_dirs = [os.path.join(spire_root, name) for name in sorted(os.listdir(spire_root))] if os.path.isdir(
        spire_root) else []
    return {'vault': newest_verified([os.path.join(backup_dir, 'vault')], 'vault'),
            'spire-server': newest_verified(spire_dirs, 'spire-server')}


def backup_readiness(newest, max_age_seconds, now, systems=('vault', 'spire-server')):
    """Whether each of ``systems`` has a verified backup no older than ``max_age_seconds`` at ``now`` (pure).

    ``newest``: newest_verified_backups' answer. Returns {'ready': bool, 'systems': {system: {'ready', 'why',
    'age_seconds', 'name'}}, 'problems': [text per system not ready]}: what a change that needs a way back (an
    upgrade) checks before it starts."""
    errors = retention_errors(max_age_seconds=max_age_seconds)
    if errors:
        raise BackupError(errors[0])
    out, problems = {}, []
    for system in systems:
        backup = (newest or {}).get(system)
        if not backup:
            entry = {'ready': False, 'why': 'no verified %s backup' % system, 'age_seconds': None, 'name': None}
        else:
            age = max(0, int(now - backup['created_unix']))
            ready = age <= max_age_seconds
            entry = {'ready': ready, 'age_seconds': age, 'name': backup['name'],
                     'why': '%s taken %d s ago and verified (%s)%s' % (
                         backup['name'], age, backup.get('verified_how'),
                         '' if ready else ', older than the %d s allowed' % max_age_seconds)}
        out[system] = entry
        if not entry['ready']:
            problems.append(entry['why'])
    return {'ready': not problems, 'systems': out, 'problems': problems}


def retention_plan(backups, keep_count=None, max_age_seconds=None, now=None):
    """Split ``backups`` (sidecar dicts, oldest first) into (keep, delete); pure.

    A backup is deleted when it is beyond the newest ``keep_count`` or older than ``max_age_seconds`` (its
    ``created``), except that the newest backup and the newest verified backup are always kept: retention
    never leaves zero backups or zero verified backups. Verified means proven after it was written (a restore
    test, a check of a copy: see proven_after_writing); the check every archive gets as it is written does
    not count, or the newest backup would always be the newest verified one. With neither limit nothing is
    deleted. Both lists keep the order oldest first.
    """
    errors = retention_errors(keep_count, max_age_seconds)
    if errors:
        raise BackupError('; '.join(errors))
    now = _aware_utc(now, 'now') if now is not None else utcnow()
    ordered = sorted(backups, key=lambda s: (parse_iso(s.get('created'), 'created of %s' % s.get('name')),
                                             s.get('name') or ''))
    protected = set()
    if ordered:
        protected.add(len(ordered) - 1)
    for index in range(len(ordered) - 1, -1, -1):
        if proven_after_writing(ordered[index]):
            protected.add(index)
            break
    keep, delete = [], []
    total = len(ordered)
    for index, backup in enumerate(ordered):
        expired = False
        if keep_count is not None and index < total - keep_count:
            expired = True
        if max_age_seconds is not None and (now - parse_iso(backup['created'])).total_seconds() > max_age_seconds:
            expired = True
        (delete if expired and index not in protected else keep).append(backup)
    return keep, delete


def apply_retention(directory, system, keep_count=None, max_age_seconds=None, now=None):
    """Delete the archives (and sidecars) of ``system`` in ``directory`` that retention_plan drops; return their
    archive paths. The sidecar goes last, so an interrupted deletion never leaves a sidecar without archive check."""
    _keep, delete = retention_plan(list_backups(directory, system), keep_count, max_age_seconds, now)
    deleted = []
    for backup in delete:
        path = backup['path']
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sidecar_path(path))
        deleted.append(path)
    if deleted:
        fsync_directory(directory)
    return deleted


def mark_verified(archive_path, how, now=None):
    """Record a later verification (for example 'restored') in the sidecar, atomically; return the new sidecar.

    ``verified`` holds the latest verification, ``verifications`` every one in order."""
    if not isinstance(how, str) or not re.match(r'^[a-z0-9_-]+$', how):
        raise BackupError('how must match [a-z0-9_-]+, got %r' % (how,))
    sidecar = read_sidecar(archive_path)
    record = {'at': iso(_aware_utc(now, 'now') if now is not None else utcnow()), 'how': how}
    history = list(sidecar.get('verifications') or ([sidecar['verified']] if sidecar.get('verified') else []))
    history.append(record)
    sidecar.update(verified=record, verifications=history)
    with atomic_writer(sidecar_path(archive_path), 0o600) as handle:
        handle.write(_json_bytes(sidecar))
    return sidecar


# --- metrics ---

def _label(value):
    return str(value).replace('\\', '\\\\').replace('\n', '\\n').replace('"', '\\"')


def _gauge(name, help_text, labels, value):
    return ('# HELP %s_%s %s\n# TYPE %s_%s gauge\n%s_%s{%s} %d\n'
            % (METRIC_PREFIX, name, help_text, METRIC_PREFIX, name, METRIC_PREFIX, name, labels, value))


def _metric_labels(system, host=None):
    labels = 'system="%s"' % _label(check_system(system))
    if host:
        labels += ',host="%s"' % _label(host)
    return labels


def metric_text(system, sidecar, host=None):
    """Prometheus text exposition (node_exporter textfile collector) of the last successful backup; pure."""
    labels = _metric_labels(system, host)
    return (_gauge('last_success_timestamp_seconds', 'Unix time of the last backup written and checked.', labels,
                   int(_epoch(parse_iso(sidecar['created']))))
            + _gauge('last_size_bytes', 'Size in bytes of the last backup archive.', labels, int(sidecar['size'])))


def verified_metric_text(system, verified_at, host=None):
    """The textfile exposition of the last backup proven by a restore (verify_backup.yml); pure.
    ``verified_at``: ISO 8601 UTC time of that verification."""
    return _gauge('last_verified_timestamp_seconds', 'Unix time of the last backup restored and compared.',
                  _metric_labels(system, host), int(_epoch(parse_iso(verified_at, 'verified_at'))))


def metric_path(textfile_dir, system, kind=''):
    return os.path.join(textfile_dir, '%s_%s%s.prom' % (METRIC_PREFIX, check_system(system), kind))


def _write_metric_file(textfile_dir, path, text):
    errors = directory_errors(textfile_dir, 'metric_textfile_dir')
    if errors:
        raise BackupError('; '.join(errors))
    with atomic_writer(path, 0o644) as handle:
        handle.write(text.encode('utf-8'))
    return path


def write_metric(textfile_dir, system, sidecar, host=None):
    """Write ``<textfile_dir>/trustroot_backup_<system>.prom`` atomically (mode 0644); return its path."""
    return _write_metric_file(textfile_dir, metric_path(textfile_dir, system), metric_text(system, sidecar, host))


def write_verified_metric(textfile_dir, system, verified_at, host=None):
    """Write ``<textfile_dir>/trustroot_backup_<system>_verified.prom`` atomically (mode 0644); return its path.
    Its own file: a backup run rewrites the backup metric and must not drop the verification time."""
    return _write_metric_file(textfile_dir, metric_path(textfile_dir, system, '_verified'),
                              verified_metric_text(system, verified_at, host))


# --- options shared by every module that writes backups (documented in the trustroot.ops.backup fragment) ---

S3_REQUIRED = ('endpoint', 'bucket', 'access_key', 'secret_key')


def backup_argument_spec():
    """The destination options, in AnsibleModule argument_spec form."""
    return dict(
        dest_dir=dict(type='path'),
        age_recipients=dict(type='list', elements='str', default=[]),
        keep_count=dict(type='int'),
        max_age=dict(type='int'),
        metric_textfile_dir=dict(type='path'),
        s3=dict(type='dict', options=dict(
            endpoint=dict(type='str', required=True),
            bucket=dict(type='str', required=True),
            access_key=dict(type='str', required=True, no_log=False),
            secret_key=dict(type='str', required=True, no_log=True),
            region=dict(type='str', default='us-east-1'),
            prefix=dict(type='str', default=''),
            ca_file=dict(type='path'),
        )),
    )


def backup_option_errors(params):
    """Field-named problems of the destination options in ``params``; [] when they are usable."""
    errors = directory_errors(params.get('dest_dir'), 'dest_dir')
    errors += recipient_errors(params.get('age_recipients'))
    errors += retention_errors(params.get('keep_count'), params.get('max_age'))
    if params.get('metric_textfile_dir'):
        errors += directory_errors(params['metric_textfile_dir'], 'metric_textfile_dir')
    s3 = params.get('s3')
    if s3 is not None:
        if not isinstance(s3, dict):
            errors.append('s3 must be a dict')
        else:
            for key in S3_REQUIRED:
                if not s3.get(key):
                    errors.append('s3.%s is required' % key)
            endpoint = s3.get('endpoint') or ''
            if endpoint and not re.match(r'^https?://[^/\s]+/?$', endpoint):
                errors.append('s3.endpoint must be http(s)://host[:port] (path-style requests), got %s' % endpoint)
            bucket = s3.get('bucket') or ''
            if bucket and not re.match(r'^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$', bucket):
                errors.append('s3.bucket %s is not a valid bucket name' % bucket)
            prefix = s3.get('prefix') or ''
            if prefix.startswith('/') or '..' in prefix.split('/'):
                errors.append('s3.prefix must be relative without .. (for example backups/spire/)')
            if s3.get('ca_file') and not os.path.isfile(s3['ca_file']):
                errors.append('s3.ca_file %s does not exist' % s3['ca_file'])
    return errors


# The options of backup_archive that belong to one state only.
PRESENT_ONLY = ('parts',)
VERIFIED_ONLY = ('path', 'age_identity', 'extract_to')


def archive_option_errors(params, age_available):
    """Pure. Field-named problems of backup_archive's options (``age_available``: the age command is on PATH)."""
    errors = []
    if params['state'] == 'present':
        for name in VERIFIED_ONLY:
            if params[name]:
                errors.append('%s applies only to state=verified' % name)
        if params['mark_verified']:
            errors.append('mark_verified applies only to state=verified')
        if not params['system']:
            errors.append('system is required with state=present')
        else:
            try:
                check_system(params['system'])
            except BackupError as exc:
                errors.append(str(exc))
        if not params['parts']:
            errors.append('parts must list at least one file with state=present')
        else:
            errors += part_errors([(p['name'], p['path']) for p in params['parts']])
        errors += backup_option_errors(params)
        if params['age_recipients'] and not age_available:
            errors.append('age_recipients needs the age command on the host that runs the module')
    else:
        for name in PRESENT_ONLY:
            if params[name]:
                errors.append('%s applies only to state=present' % name)
        if not params['path'] and not (params['dest_dir'] and params['system']):
            errors.append('state=verified needs path, or dest_dir and system (the latest backup there)')
        if params['path'] and params['dest_dir']:
            errors.append('path and dest_dir are mutually exclusive with state=verified')
        if params['system']:
            try:
                check_system(params['system'])
            except BackupError as exc:
                errors.append(str(exc))
        if params['extract_to'] and not os.path.isdir(params['extract_to']):
            errors.append('extract_to %s does not exist or is not a directory' % params['extract_to'])
        if not re.match(r'^[a-z0-9_-]+$', params['verified_how'] or ''):
            errors.append('verified_how must match [a-z0-9_-]+, got %r' % (params['verified_how'],))
        if params['age_identity'] and not os.path.isfile(params['age_identity']):
            errors.append('age_identity %s is not a file' % params['age_identity'])
    return errors


def s3_store(s3):
    return S3Store(s3['endpoint'], s3['bucket'], s3['access_key'], s3['secret_key'],
                   region=s3.get('region') or 'us-east-1', prefix=s3.get('prefix') or '', ca_file=s3.get('ca_file'))


def s3_backups(store, system):
    """Sidecars of ``system`` stored in S3 (each with 'key', the archive's key), oldest first."""
    found = []
    for obj in store.list('%s-' % check_system(system)):
        key = obj['key']
        if '/' in key or not key.endswith('.json') or not is_archive_name(key[:-len('.json')]):
            continue
        try:
            sidecar = validate_sidecar(json.loads(store.get_bytes(key).decode('utf-8')), 's3 object %s' % key)
        except (BackupError, ValueError):
            continue
        if sidecar['system'] != system or sidecar['archive'] != key[:-len('.json')]:
            continue
        found.append(dict(sidecar, key=sidecar['archive']))
    return sorted(found, key=lambda s: (s['created'], s['name']))


def upload_backup(store, archive_path):
    """Upload an archive, then its sidecar (so a sidecar in S3 always has its archive); return the keys."""
    archive = os.path.basename(archive_path)
    store.put_file(archive, archive_path)
    store.put_file(archive + '.json', sidecar_path(archive_path))
    return [archive, archive + '.json']


def download_backup(store, archive, directory):
    """Download ``archive`` (a key relative to the store's prefix) and its sidecar into ``directory``; return the
    local archive path. The sidecar is fetched first and the archive last, each atomically."""
    if not is_archive_name(archive) or '/' in archive:
        raise BackupError('archive %r is not an archive name' % (archive,))
    path = os.path.join(directory, archive)
    store.get_file(archive + '.json', sidecar_path(path))
    store.get_file(archive, path)
    read_sidecar(path)
    return path


def apply_s3_retention(store, system, keep_count=None, max_age_seconds=None, now=None):
    """Same rules as apply_retention on the sidecars stored in S3; return the deleted archive keys."""
    _keep, delete = retention_plan(s3_backups(store, system), keep_count, max_age_seconds, now)
    deleted = []
    for backup in delete:
        store.delete(backup['key'])
        store.delete(backup['key'] + '.json')
        deleted.append(backup['key'])
    return deleted


def finish_backup(params, sidecar, run=subprocess_run, now=None, host=None):
    """What follows a written backup, per the destination options in ``params``: S3 upload of archive and sidecar,
    retention locally (and in S3 with the same rules), metric file (last, so it reports only a backup that got
    everywhere it should). Returns dict(uploaded=[keys], deleted=[archive paths], deleted_s3=[keys], metric_path).
    S3 failures are raised as BackupError naming s3 and the operation."""
    del run  # the steps below run no command; the parameter keeps one signature for every step
    directory = params['dest_dir']
    system = sidecar['system']
    archive_path = os.path.join(directory, sidecar['archive'])
    result = dict(uploaded=[], deleted=[], deleted_s3=[], metric_path=None)
    keep_count, max_age = params.get('keep_count'), params.get('max_age')
    try:
        store = s3_store(params['s3']) if params.get('s3') else None
        if store is not None:
            result['uploaded'] = upload_backup(store, archive_path)
        if keep_count is not None or max_age is not None:
            result['deleted'] = apply_retention(directory, system, keep_count, max_age, now)
            if store is not None:
                result['deleted_s3'] = apply_s3_retention(store, system, keep_count, max_age, now)
    except S3Error as exc:
        raise BackupError('s3: %s' % exc)
    if params.get('metric_textfile_dir'):
        result['metric_path'] = write_metric(params['metric_textfile_dir'], system, sidecar, host)
    return result

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tar layer of an archive: members written while their sha256 is computed, and an archive read back member by
member against its manifest (optionally extracting the parts).

Stdlib only (and other host-shared files of this collection): it runs in modules and in the host program."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import hashlib
import io
import json
import os
import tarfile

from ansible_collections.trustroot.ops.plugins.module_utils._files import fsync_directory
from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import (
    BackupError, CHUNK, FORMAT, MANIFEST, MAX_MANIFEST_SIZE, MEMBER_RE, SHA256_RE, json_bytes, temp_path)


class HashingWriter(object):
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


def write_tar(handle, manifest, parts, mtime):
    """Stream manifest.json and each part into a gzipped tar on ``handle``; the parts are read in chunks and must
    still match the sha256 and size recorded in the manifest."""
    with tarfile.open(fileobj=handle, mode='w|gz', format=tarfile.PAX_FORMAT) as tar:
        data = json_bytes(manifest)
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


def check_tar(path, label, expected, extract_to=None):
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
                    manifest = parse_manifest(tar.extractfile(member).read(), label)
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
                    temps[name] = temp_path(extract_to, name)
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


def parse_manifest(data, label):
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
                              % (label, field, short(manifest.get(field)), short(expected[field])))


def short(value):
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 200 else text[:200] + '...'

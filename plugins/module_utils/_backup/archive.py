# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing an archive and its sidecar: never half-written (a temporary file in the target directory replaces the
target only when complete), read back from disk and checked before the sidecar exists.

Stdlib only (and other host-shared files of this collection): it runs in modules and in the host program."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json
import os

from ansible_collections.trustroot.ops.plugins.module_utils._files import (
    atomic_writer, fsync_directory, fsync_path, sha256_and_size)
from ansible_collections.trustroot.ops.plugins.module_utils._runner import subprocess_run
from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import (
    AGE_MAGIC, BackupError, FORMAT, archive_name, aware_utc, check_system, directory_errors, epoch_seconds, iso,
    json_bytes, part_errors, recipient_errors, sidecar_path, sigterm_raises, temp_path, text_of, utcnow)
from ansible_collections.trustroot.ops.plugins.module_utils._backup.tar import HashingWriter, check_tar, write_tar


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
    created = aware_utc(now, 'now') if now is not None else utcnow()
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
            plain = temp_path(directory, archive)
            temps.append(plain)
            with open(plain, 'wb') as handle:
                writer = HashingWriter(handle)
                write_tar(writer, manifest, parts, int(epoch_seconds(created)))
                handle.flush()
                os.fsync(handle.fileno())
            written = (writer.digest.hexdigest(), writer.size)
            if encrypted:
                sealed = temp_path(directory, archive)
                temps.append(sealed)
                argv = ['age', '--encrypt']
                for recipient in recipients:
                    argv += ['--recipient', recipient]
                rc, _out, err = run(argv + ['--output', sealed, plain])
                if rc != 0:
                    raise BackupError('age could not encrypt %s to age_recipients: %s' % (archive, text_of(err)))
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
                check_tar(final, final, manifest)
            sidecar = {
                'format': FORMAT, 'system': system, 'name': name, 'archive': archive, 'created': manifest['created'],
                'sha256': digest, 'size': size, 'encrypted': encrypted, 'info': manifest['info'],
                'parts': summary, 'verified': {'at': iso(utcnow()), 'how': 'written'},
            }
            with atomic_writer(sidecar_path(final), 0o600) as handle:
                handle.write(json_bytes(sidecar))
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

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading backups back: sidecars, the archive checked member by member against its manifest (and extracted when
asked), listing the usable backups of a directory.

Stdlib only (and other host-shared files of this collection): it runs in modules and in the host program."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import tempfile

from ansible_collections.trustroot.ops.plugins.module_utils._files import sha256_and_size, sha256_file
from ansible_collections.trustroot.ops.plugins.module_utils._runner import subprocess_run
from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import (
    BackupError, FORMAT, MAX_MANIFEST_SIZE, SHA256_RE, SYSTEM_RE, check_system, is_archive_name, parse_iso,
    sidecar_path, sigterm_raises, text_of)
from ansible_collections.trustroot.ops.plugins.module_utils._backup.tar import check_tar


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
        return check_tar(archive_path, 'archive %s' % archive_path, sidecar, extract_to)
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
                message = text_of(err)
                if 'no identity matched' in message:
                    raise BackupError('could not decrypt %s with identity %s: no identity matched any of the '
                                      'archive\'s recipients' % (archive_path, identity))
                raise BackupError('could not decrypt %s with identity %s: %s' % (archive_path, identity, message))
            return check_tar(plain, 'archive %s' % archive_path, sidecar, extract_to)
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

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which backups to keep (count and age), which were proven by a restore, and how ready the newest ones are.

Stdlib only (and other host-shared files of this collection): it runs in modules and in the host program."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import re

from ansible_collections.trustroot.ops.plugins.module_utils._files import atomic_writer, fsync_directory
from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import (
    BackupError, aware_utc, iso, json_bytes, parse_iso, sidecar_path, utcnow)
from ansible_collections.trustroot.ops.plugins.module_utils._backup.verify import list_backups, read_sidecar


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
    now = aware_utc(now, 'now') if now is not None else utcnow()
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
    record = {'at': iso(aware_utc(now, 'now') if now is not None else utcnow()), 'how': how}
    history = list(sidecar.get('verifications') or ([sidecar['verified']] if sidecar.get('verified') else []))
    history.append(record)
    sidecar.update(verified=record, verifications=history)
    with atomic_writer(sidecar_path(archive_path), 0o600) as handle:
        handle.write(json_bytes(sidecar))
    return sidecar

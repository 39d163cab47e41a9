# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups in S3: upload, listing, download and retention with the same rules as on disk.

Stdlib only (and other host-shared files of this collection): it runs in modules and in the host program."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.trustroot.ops.plugins.module_utils._s3 import S3Store
from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import (
    BackupError, check_system, is_archive_name, sidecar_path)
from ansible_collections.trustroot.ops.plugins.module_utils._backup.retention import retention_plan
from ansible_collections.trustroot.ops.plugins.module_utils._backup.verify import read_sidecar, validate_sidecar


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

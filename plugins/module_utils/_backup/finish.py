# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What follows a written backup: S3 upload, retention, the metric file.

Stdlib only (and other host-shared files of this collection): it runs in modules and in the host program."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.trustroot.ops.plugins.module_utils._s3 import S3Error
from ansible_collections.trustroot.ops.plugins.module_utils._runner import subprocess_run
from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import BackupError
from ansible_collections.trustroot.ops.plugins.module_utils._backup.metrics import write_metric
from ansible_collections.trustroot.ops.plugins.module_utils._backup.remote import (
    apply_s3_retention, s3_store, upload_backup)
from ansible_collections.trustroot.ops.plugins.module_utils._backup.retention import apply_retention


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

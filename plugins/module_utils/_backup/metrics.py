# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus textfile metrics of backups (written atomically, read by node_exporter).

Stdlib only (and other host-shared files of this collection): it runs in modules and in the host program."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.trustroot.ops.plugins.module_utils._files import atomic_writer
from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import (
    BackupError, check_system, directory_errors, epoch_seconds, parse_iso)


METRIC_PREFIX = 'trustroot_backup'


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
                   int(epoch_seconds(parse_iso(sidecar['created']))))
            + _gauge('last_size_bytes', 'Size in bytes of the last backup archive.', labels, int(sidecar['size'])))


def verified_metric_text(system, verified_at, host=None):
    """The textfile exposition of the last backup proven by a restore (verify_backup.yml); pure.
    ``verified_at``: ISO 8601 UTC time of that verification."""
    return _gauge('last_verified_timestamp_seconds', 'Unix time of the last backup restored and compared.',
                  _metric_labels(system, host), int(epoch_seconds(parse_iso(verified_at, 'verified_at'))))


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

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup role filter: backup_verified_metric (documented in backup_verified_metric.yml next to this file)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import BackupError
from ansible_collections.trustroot.ops.plugins.module_utils._backup.metrics import verified_metric_text


def backup_verified_metric(verified_at, system):
    """The textfile metric of a backup of ``system`` proven by a restore at ``verified_at`` (the collection's one
    writer of the backup metrics' format)."""
    try:
        return verified_metric_text(system, verified_at)
    except BackupError as err:
        raise AnsibleFilterError('backup_verified_metric: %s' % err)


class FilterModule(object):
    def filters(self):
        return {'backup_verified_metric': backup_verified_metric}

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Monitoring role filters: monitoring_cap_for and monitoring_backup_max_age (documented in monitoring_cap_for.yml
and monitoring_backup_max_age.yml next to this file)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.trustroot.ops.plugins.module_utils._monitoring import (
    MonitoringError, backup_max_age_seconds, cap_rule_for)


def monitoring_cap_for(rules, cap):
    """A Prometheus rule file document whose ``for:`` durations are at most ``cap`` (empty: unchanged)."""
    try:
        return cap_rule_for(rules, cap)
    except MonitoringError as err:
        raise AnsibleFilterError('monitoring_cap_for: %s' % err)


def monitoring_backup_max_age(schedule, randomized_delay='0', grace='0'):
    """Seconds after which the last backup of a timer with this OnCalendar schedule is late."""
    try:
        return backup_max_age_seconds(schedule, randomized_delay, grace)
    except MonitoringError as err:
        raise AnsibleFilterError('monitoring_backup_max_age: %s' % err)


class FilterModule(object):
    def filters(self):
        return {
            'monitoring_cap_for': monitoring_cap_for,
            'monitoring_backup_max_age': monitoring_backup_max_age,
        }

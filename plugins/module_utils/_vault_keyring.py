# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Encryption keyring rotation decisions (pure): durations and whether the key is old enough."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

DURATION = re.compile(r'^\s*(\d+)\s*([smhdw]?)\s*$')
UNIT_SECONDS = {'': 1, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}
# What is read from sys/key-status (checked with _vault.shape_problem by VaultNode.call).
KEY_STATUS = {'term': int, 'install_time': str}


def parse_duration(value):
    """'90d', '720h', '3600', 3600 -> seconds. Raises ValueError on anything else."""
    if isinstance(value, int):
        if value < 0:
            raise ValueError('must not be negative')
        return value
    match = DURATION.match(str(value))
    if not match:
        raise ValueError('must be a whole number with an optional unit s, m, h, d or w (e.g. 90d)')
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def parse_install_time(value):
    """Vault's RFC 3339 time with nanoseconds ('2026-11-22T11:08:59.134616185Z') -> aware datetime."""
    match = re.match(r'^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$', value or '')
    if not match:
        raise ValueError('unreadable install_time %r' % value)
    base, fraction, zone = match.groups()
    micro = int((fraction or '0')[:6].ljust(6, '0'))
    parsed = datetime.datetime.strptime(base, '%Y-%m-%dT%H:%M:%S').replace(microsecond=micro)
    if zone == 'Z':
        return parsed.replace(tzinfo=datetime.timezone.utc)
    sign = 1 if zone[0] == '+' else -1
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    return parsed.replace(tzinfo=datetime.timezone(sign * datetime.timedelta(hours=hours, minutes=minutes)))


def key_age_seconds(install_time, now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return (now - parse_install_time(install_time)).total_seconds()


def rotation_due(key_status, min_age_seconds, now=None):
    """True when the current key is at least ``min_age_seconds`` old (always, when no minimum)."""
    if not min_age_seconds:
        return True
    return key_age_seconds(key_status['install_time'], now) >= min_age_seconds


def rotation_seen(before, after):
    """True when ``after`` (sys/key-status read after the rotation) shows a newer term than ``before``. A standby
    answers key-status from its own copy of the keyring, which reaches it a moment after the active node rotated."""
    return int(after['term']) > int(before['term'])

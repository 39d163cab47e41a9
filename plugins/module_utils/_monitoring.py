# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers of the monitoring role: Prometheus durations, capping the ``for:`` of alert rules, and the longest
gap a systemd ``OnCalendar`` schedule leaves between two runs (no I/O)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError

DURATION_UNITS = (('y', 365 * 86400), ('w', 7 * 86400), ('d', 86400), ('h', 3600), ('m', 60), ('s', 1), ('ms', 0.001))
_DURATION_RE = re.compile(r'^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$')
# systemd time spans (RandomizedDelaySec): "15min", "1h 30min", "90" (seconds).
_SPAN_UNITS = {'': 1, 's': 1, 'sec': 1, 'second': 1, 'seconds': 1, 'm': 60, 'min': 60, 'minute': 60, 'minutes': 60,
               'h': 3600, 'hr': 3600, 'hour': 3600, 'hours': 3600, 'd': 86400, 'day': 86400, 'days': 86400,
               'w': 604800, 'week': 604800, 'weeks': 604800, 'ms': 0.001, 'msec': 0.001}
_SHORTHANDS = {'minutely': 60, 'hourly': 3600, 'daily': 86400, 'weekly': 7 * 86400, 'monthly': 31 * 86400,
               'quarterly': 92 * 86400, 'semiannually': 184 * 86400, 'yearly': 366 * 86400, 'annually': 366 * 86400}
_WEEKDAY_RE = re.compile(r'^[A-Za-z]{3}[A-Za-z]*([,.][A-Za-z]{3}[A-Za-z]*)*$')


class MonitoringError(TrustrootError, ValueError):
    """Bad input; the message names the field and the rule."""


def duration_seconds(value, field='duration'):
    """Seconds of a Prometheus duration (``1h30m``, ``90s``, ``500ms``); 0 for ``0``."""
    text = str(value).strip()
    if text == '0':
        return 0
    match = _DURATION_RE.match(text)
    if not text or not match or not any(match.groups()):
        raise MonitoringError('%s: %r is not a Prometheus duration (such as 30s, 5m, 1h30m)' % (field, value))
    total = 0
    for number, (_unit, factor) in zip(match.groups(), DURATION_UNITS):
        if number:
            total += int(number) * factor
    return total


def format_duration(seconds):
    """The shortest Prometheus duration for a whole number of seconds (``0s`` for 0)."""
    seconds = int(seconds)
    if seconds <= 0:
        return '0s'
    out = ''
    for unit, factor in DURATION_UNITS[:-1]:
        if seconds >= factor:
            out += '%d%s' % (seconds // factor, unit)
            seconds %= factor
    return out


def cap_rule_for(groups_doc, cap):
    """A copy of a Prometheus rule file document (``{'groups': [...]}``) in which no rule's ``for:`` (nor
    ``keep_firing_for:``) exceeds ``cap``. An empty cap returns the document unchanged."""
    if cap in (None, ''):
        return groups_doc
    limit = duration_seconds(cap, 'monitoring_alert_for_cap')
    if not isinstance(groups_doc, dict) or not isinstance(groups_doc.get('groups'), list):
        raise MonitoringError('rule file: expected a mapping with a list of groups')
    out = copy.deepcopy(groups_doc)
    for group in out['groups']:
        if not isinstance(group, dict) or not isinstance(group.get('rules', []), list):
            raise MonitoringError('rule file: group %r must be a mapping with a list of rules' % (group,))
        for rule in group.get('rules', []):
            if not isinstance(rule, dict):
                raise MonitoringError('rule file: rule %r must be a mapping' % (rule,))
            for key in ('for', 'keep_firing_for'):
                if key in rule and duration_seconds(rule[key], '%s of %s' % (key, rule.get('alert', '?'))) > limit:
                    rule[key] = format_duration(limit)
    return out


def span_seconds(value, field='span'):
    """Seconds of a systemd time span (``15min``, ``1h 30min``, ``90``)."""
    text = str(value).strip()
    parts = re.findall(r'(\d+(?:\.\d+)?)\s*([a-z]*)', text)
    if not text or not parts or re.sub(r'(\d+(?:\.\d+)?)\s*([a-z]*)', '', text).strip():
        raise MonitoringError('%s: %r is not a systemd time span (such as 15min, 1h, 90)' % (field, value))
    total = 0
    for number, unit in parts:
        if unit not in _SPAN_UNITS:
            raise MonitoringError('%s: unknown unit %r in %r' % (field, unit, value))
        total += float(number) * _SPAN_UNITS[unit]
    return int(total)


def _field_step(field, wildcard_step):
    """Gap of one OnCalendar field: ``*`` repeats each unit, ``a/n`` every n units, a list at least once."""
    if field == '*':
        return wildcard_step
    if '/' in field:
        return int(field.split('/', 1)[1]) * wildcard_step
    return None


def calendar_period_seconds(expression, field='backup_schedule'):
    """The longest gap in seconds between two runs of a systemd ``OnCalendar`` expression (an upper bound:
    ``*-*-* 02:30:00`` -> 86400, ``Mon *-*-* 02:00`` -> 604800, ``*:0/5`` -> 300, ``hourly`` -> 3600)."""
    text = ' '.join(str(expression).split())
    if text.lower() in _SHORTHANDS:
        return _SHORTHANDS[text.lower()]
    parts = text.split(' ')
    if parts and _WEEKDAY_RE.match(parts[0]):
        weekdays, parts = parts[0], parts[1:]
    else:
        weekdays = None
    if len(parts) > 1 and re.match(r'^[A-Za-z][A-Za-z_+]*(/[A-Za-z_+]+)*$', parts[-1]):
        parts = parts[:-1]  # a time zone
    date, time = '*-*-*', '00:00:00'
    if len(parts) == 2:
        date, time = parts
    elif len(parts) == 1 and ':' in parts[0]:
        time = parts[0]
    elif len(parts) == 1:
        date = parts[0]
    else:
        raise MonitoringError('%s: %r is not an OnCalendar expression this role understands' % (field, expression))
    times = time.split(':')
    dates = date.split('-')
    if len(times) == 2:
        times.append('00')
    if len(times) != 3 or len(dates) not in (2, 3) or not all(times) or not all(dates):
        raise MonitoringError('%s: %r is not an OnCalendar expression this role understands' % (field, expression))
    hour, minute, second = times
    day = dates[-1]
    month = dates[-2]
    try:
        for value, step in ((second.split('.')[0], 1), (minute, 60), (hour, 3600)):
            gap = _field_step(value, step)
            if gap is not None:
                return gap
        if weekdays is not None:
            return 7 * 86400
        for value, step in ((day, 86400), (month, 31 * 86400)):
            gap = _field_step(value, step)
            if gap is not None:
                return gap
    except ValueError:
        raise MonitoringError('%s: %r has a repetition that is not a number' % (field, expression))
    return 366 * 86400


def backup_max_age_seconds(schedule, randomized_delay='0', grace='0'):
    """How old the last successful backup may be before it is late: the schedule's longest gap, plus the timer's
    randomized delay, plus a grace (a Prometheus duration) for the backup itself."""
    return (calendar_period_seconds(schedule) + span_seconds(randomized_delay or '0', 'backup_randomized_delay')
            + duration_seconds(grace or '0', 'monitoring_backup_grace'))

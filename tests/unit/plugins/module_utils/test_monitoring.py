"""Pure helpers of the monitoring role: durations, capping for:, OnCalendar gaps, backup max age; and the filters."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.trustroot.ops.plugins.filter.monitoring import monitoring_backup_max_age, monitoring_cap_for
from ansible_collections.trustroot.ops.plugins.module_utils._monitoring import (
    MonitoringError, backup_max_age_seconds, calendar_period_seconds, cap_rule_for, duration_seconds,
    format_duration, span_seconds)


@pytest.mark.parametrize('text, seconds', [('0', 0), ('5s', 5), ('1m', 60), ('1h30m', 5400), ('2d', 172800),
                                           ('1w', 604800), ('1y', 31536000), ('1m30s', 90)])
def test_duration_seconds(text, seconds):
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize('text', ['', '5', '5 m', 'm', '1.5h', '5sec', '-1s', '1s1h'])
def test_duration_rejects_bad_input_naming_the_field(text):
    with pytest.raises(MonitoringError, match='monitoring_alert_for_cap'):
        duration_seconds(text, 'monitoring_alert_for_cap')


@pytest.mark.parametrize('seconds, text', [(0, '0s'), (5, '5s'), (90, '1m30s'), (3600, '1h'), (90061, '1d1h1m1s')])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
    assert duration_seconds(text) == seconds


RULES = {'groups': [{'name': 'g', 'rules': [
    {'alert': 'Long', 'expr': 'up == 0', 'for': '15m', 'labels': {'severity': 'critical'}},
    {'alert': 'Short', 'expr': 'up == 0', 'for': '2s'},
    {'alert': 'None', 'expr': 'up == 0'},
    {'alert': 'Keep', 'expr': 'up == 0', 'for': '1h', 'keep_firing_for': '10m'},
    {'record': 'job:up:sum', 'expr': 'sum by (job) (up)'},
]}]}


def test_cap_shortens_only_longer_fors_and_leaves_the_input_alone():
    capped = cap_rule_for(RULES, '5s')
    rules = capped['groups'][0]['rules']
    assert [rule.get('for') for rule in rules] == ['5s', '2s', None, '5s', None]
    assert rules[3]['keep_firing_for'] == '5s'
    assert rules[0]['labels'] == {'severity': 'critical'} and rules[4] == RULES['groups'][0]['rules'][4]
    assert RULES['groups'][0]['rules'][0]['for'] == '15m'


@pytest.mark.parametrize('cap', ['', None])
def test_empty_cap_changes_nothing(cap):
    assert cap_rule_for(RULES, cap) is RULES


def test_cap_rejects_bad_documents_and_durations():
    with pytest.raises(MonitoringError, match='monitoring_alert_for_cap'):
        cap_rule_for(RULES, 'soon')
    with pytest.raises(MonitoringError, match='groups'):
        cap_rule_for({'rules': []}, '5s')
    with pytest.raises(MonitoringError, match='for of Bad'):
        cap_rule_for({'groups': [{'name': 'g', 'rules': [{'alert': 'Bad', 'expr': '1', 'for': '5 minutes'}]}]}, '5s')


@pytest.mark.parametrize('expression, seconds', [
    ('*-*-* 02:30:00', 86400), ('daily', 86400), ('hourly', 3600), ('weekly', 604800), ('minutely', 60),
    ('Mon *-*-* 02:00', 604800), ('Mon,Thu *-*-* 02:00:00', 604800), ('*:0/5', 300), ('*:*:0/5', 5),
    ('*-*-* 0/6:00:00', 21600), ('*-*-* *:15:00', 3600), ('*-*-01 00:00:00', 31 * 86400),
    ('*-*-* 02:30:00 UTC', 86400), ('*-*-* 02:30:00 Europe/Berlin', 86400), ('02:30', 86400)])
def test_calendar_period(expression, seconds):
    assert calendar_period_seconds(expression) == seconds


@pytest.mark.parametrize('expression', ['', 'every day', '*-*-* 1:2:3:4', '*-*-* *:0/x'])
def test_calendar_rejects_what_it_does_not_understand(expression):
    with pytest.raises(MonitoringError, match='backup_schedule'):
        calendar_period_seconds(expression)


@pytest.mark.parametrize('span, seconds', [('15min', 900), ('1h 30min', 5400), ('90', 90), ('0', 0), ('2d', 172800)])
def test_span_seconds(span, seconds):
    assert span_seconds(span) == seconds


def test_span_rejects_unknown_units():
    with pytest.raises(MonitoringError, match='backup_randomized_delay'):
        span_seconds('15 fortnights', 'backup_randomized_delay')


def test_backup_max_age_is_the_gap_plus_delay_plus_grace():
    assert backup_max_age_seconds('*-*-* 02:30:00', '15min', '1h') == 86400 + 900 + 3600
    assert backup_max_age_seconds('hourly') == 3600


def test_filters_turn_errors_into_filter_errors():
    assert monitoring_cap_for(RULES, '1m')['groups'][0]['rules'][0]['for'] == '1m'
    assert monitoring_backup_max_age('daily', '0', '0') == 86400
    with pytest.raises(AnsibleFilterError, match='monitoring_cap_for'):
        monitoring_cap_for(RULES, 'x')
    with pytest.raises(AnsibleFilterError, match='monitoring_backup_max_age'):
        monitoring_backup_max_age('nonsense here', '0')

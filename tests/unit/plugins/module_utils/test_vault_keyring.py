import datetime

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._vault_keyring import (
    key_age_seconds, parse_duration, parse_install_time, rotation_due, rotation_seen)

NOW = datetime.datetime(2026, 11, 22, 12, 0, 0, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize('value, seconds', [('90d', 90 * 86400), ('720h', 720 * 3600), ('3600', 3600),
                                            (45, 45), ('2w', 1209600), (' 5m ', 300)])
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize('value', ['ten days', '5y', '-3', '', '1.5h'])
def test_parse_duration_rejects(value):
    with pytest.raises(ValueError):
        parse_duration(value)


def test_install_time_with_nanoseconds_and_offsets():
    assert parse_install_time('2026-11-22T11:08:59.134616185Z') == datetime.datetime(
        2026, 11, 22, 11, 8, 59, 134616, tzinfo=datetime.timezone.utc)
    assert key_age_seconds('2026-11-22T13:00:00+02:00', NOW) == 3600
    with pytest.raises(ValueError):
        parse_install_time('yesterday')


def test_rotation_due():
    status = {'install_time': '2026-11-21T12:00:00Z'}
    assert rotation_due(status, None, NOW) is True
    assert rotation_due(status, 86400, NOW) is True
    assert rotation_due(status, 86401, NOW) is False


def test_rotation_seen_only_with_a_newer_term():
    assert rotation_seen({'term': 1}, {'term': 2})
    assert not rotation_seen({'term': 2}, {'term': 2})  # a standby that has not caught up yet
    assert rotation_seen({'term': '3'}, {'term': 4})

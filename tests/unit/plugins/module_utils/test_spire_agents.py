"""Unit tests for plugins/module_utils/_spire_agents.py: agent list filters, readable agents, evict/ban
decisions, purge answers, durations and times, join token inputs."""

import datetime

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._spire_agents import (
    InputError, agent_state, agent_view, agents_view, check_agent_id, check_selectors, check_token_spiffe_id,
    check_token_ttl, duration_seconds, go_duration, go_expires_before, list_args, parse_time, plan_agent,
    purge_view, token_view)

# `spire-server agent list -output json` of SPIRE v1.15.3 (one join token agent, one x509pop agent)
LIST_ANSWER = {
    'agents': [
        {'agent_version': '1.15.3', 'attestation_type': 'join_token', 'banned': False, 'can_reattest': False,
         'id': {'path': '/spire/agent/join_token/c2a99776-bdb6-434c-a1e1-13ea63590f94', 'trust_domain': 'example.org'},
         'selectors': [], 'x509svid_expires_at': '1795350431',
         'x509svid_serial_number': '65901330258247751215491950160502970521'},
        {'agent_version': '1.15.3', 'attestation_type': 'x509pop', 'banned': True, 'can_reattest': True,
         'id': {'path': '/spire/agent/x509pop/abc', 'trust_domain': 'example.org'},
         'selectors': [{'type': 'x509pop', 'value': 'subject:cn:node1'}, {'type': 'x509pop', 'value': 'ca:fingerprint:ff'}],
         'x509svid_expires_at': '0', 'x509svid_serial_number': ''},
    ],
    'next_page_token': '',
}


def params(**kwargs):
    base = {'selectors': None, 'match': 'superset', 'attestation_type': None, 'can_reattest': None, 'banned': None,
            'expires_before': None}
    base.update(kwargs)
    return base


def test_agent_view():
    agents = agents_view(LIST_ANSWER)
    assert agents[0] == {
        'spiffe_id': 'spiffe://example.org/spire/agent/join_token/c2a99776-bdb6-434c-a1e1-13ea63590f94',
        'trust_domain': 'example.org', 'attestation_type': 'join_token',
        'x509svid_serial_number': '65901330258247751215491950160502970521',
        'x509svid_expires_at': 1795350431, 'x509svid_expires_at_iso': '2026-11-22T12:27:11Z',
        'banned': False, 'can_reattest': False, 'selectors': [], 'agent_version': '1.15.3'}
    assert agents[1]['selectors'] == ['x509pop:subject:cn:node1', 'x509pop:ca:fingerprint:ff']
    assert agents[1]['banned'] and agents[1]['x509svid_expires_at'] == 0
    assert agents[1]['x509svid_expires_at_iso'] is None
    assert agents_view({'agents': None}) == [] and agents_view(None) == []
    assert agent_view({'id': 'spiffe://td/spire/agent/x'})['trust_domain'] == 'td'


def test_list_args_without_filters():
    assert list_args(params()) == ['agent', 'list']


def test_list_args_all_filters():
    args = list_args(params(selectors=['unix:uid:0', 'x509pop:subject:cn:a'], match='any', attestation_type='x509pop',
                            can_reattest=True, banned=False, expires_before='2026-01-31T12:00:00+02:00'))
    assert args == ['agent', 'list', '-selector', 'unix:uid:0', '-selector', 'x509pop:subject:cn:a',
                    '-matchSelectorsOn', 'any', '-attestationType', 'x509pop', '-canReattest', 'true',
                    '-banned', 'false', '-expiresBefore', '2026-01-31 10:00:00 +0000 +00']


def test_list_args_match_only_with_selectors():
    assert '-matchSelectorsOn' not in list_args(params(match='exact'))


@pytest.mark.parametrize('bad,needle', [
    (params(selectors=['nocolon']), 'selectors[0] must be "type:value"'),
    (params(selectors=['ok:1', ':value']), 'selectors[1] must be "type:value" with a non-empty type'),
    (params(selectors=['type:']), 'non-empty type and value'),
    (params(match='fuzzy'), 'match must be one of'),
    (params(expires_before='yesterday'), 'expires_before must be an ISO 8601 time'),
])
def test_list_args_errors(bad, needle):
    with pytest.raises(InputError) as info:
        list_args(bad)
    assert needle in str(info.value)


def test_check_selectors_passthrough():
    assert check_selectors(None) == []
    assert check_selectors(['a:b:c']) == ['a:b:c']


def test_parse_time_forms():
    utc = datetime.timezone.utc
    assert parse_time('2026-01-31', 'f') == datetime.datetime(2026, 1, 31, tzinfo=utc)
    assert parse_time('2026-01-31T12:00:00Z', 'f') == datetime.datetime(2026, 1, 31, 12, tzinfo=utc)
    assert parse_time('2026-01-31 12:00:00', 'f') == datetime.datetime(2026, 1, 31, 12, tzinfo=utc)
    assert parse_time(0, 'f') == datetime.datetime(1970, 1, 1, tzinfo=utc)
    assert parse_time('1700000000', 'f').year == 2023
    now = datetime.datetime(2026, 1, 1, tzinfo=utc)
    assert parse_time('+24h', 'f', now=now) == datetime.datetime(2026, 1, 2, tzinfo=utc)
    assert parse_time('+7d', 'f', now=now) == datetime.datetime(2026, 1, 8, tzinfo=utc)
    with pytest.raises(InputError, match='^f must be a time'):
        parse_time(True, 'f')
    with pytest.raises(InputError, match='^f must be seconds or a duration'):
        parse_time('+soon', 'f')


def test_go_expires_before_layout():
    moment = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.timezone(datetime.timedelta(hours=-5)))
    # SPIRE parses "2006-01-02 15:04:05 -0700 -07"
    assert go_expires_before(moment) == '2026-03-04 10:06:07 +0000 +00'


@pytest.mark.parametrize('value,seconds', [
    (3600, 3600), ('3600', 3600), ('720h', 2592000), ('30d', 2592000), ('1h30m', 5400), ('90s', 90), ('0s', 0),
    ('1.5h', 5400), ('500ms', 0.5),
])
def test_duration_seconds(value, seconds):
    assert duration_seconds(value, 'expired_for') == seconds


@pytest.mark.parametrize('value', ['', '1 h', '1y', 'h', '-5s', True, '1h-2m'])
def test_duration_seconds_errors(value):
    with pytest.raises(InputError, match='^expired_for must'):
        duration_seconds(value, 'expired_for')


def test_go_duration():
    assert go_duration(2592000) == '2592000s'
    assert go_duration(0.5) == '0s'


def test_check_agent_id():
    good = 'spiffe://example.org/spire/agent/join_token/abc'
    assert check_agent_id(good, trust_domain='example.org') == good
    with pytest.raises(InputError, match='^spiffe_id must be an agent ID'):
        check_agent_id('spiffe://example.org/workload')
    with pytest.raises(InputError, match="^spiffe_id spiffe://other.example/spire/agent/x is not in the server's trust domain example.org"):
        check_agent_id('spiffe://other.example/spire/agent/x', trust_domain='example.org')
    with pytest.raises(InputError, match="^spiffe_id: SPIFFE ID 'example.org/spire/agent/x' must start with spiffe://"):
        check_agent_id('example.org/spire/agent/x')
    with pytest.raises(InputError, match=r"^spiffe_id: SPIFFE ID .*: path '/spire//agent' has an empty segment"):
        check_agent_id('spiffe://example.org/spire//agent')


def test_plan_agent():
    attested = agents_view(LIST_ANSWER)[0]
    banned = agents_view(LIST_ANSWER)[1]
    sid = attested['spiffe_id']
    assert plan_agent('evicted', None, sid) == (None, 'absent')
    assert plan_agent('evicted', attested, sid) == ('evict', 'absent')
    assert plan_agent('evicted', banned, sid) == ('evict', 'absent')
    assert plan_agent('banned', attested, sid) == ('ban', 'banned')
    assert plan_agent('banned', banned, sid) == (None, 'banned')
    with pytest.raises(InputError, match='is not an attested agent of this server'):
        plan_agent('banned', None, sid)
    with pytest.raises(InputError, match='state must be one of'):
        plan_agent('gone', attested, sid)
    assert [agent_state(a) for a in (None, attested, banned)] == ['absent', 'attested', 'banned']


def test_purge_view():
    answer = {'expired_agents': [
        {'agent_id': 'spiffe://example.org/spire/agent/x509pop/a', 'deleted': True},
        {'agent_id': 'spiffe://example.org/spire/agent/x509pop/b', 'deleted': False, 'error': 'rpc error: boom'},
    ]}
    agents, errors = purge_view(answer)
    assert agents[0] == {'spiffe_id': 'spiffe://example.org/spire/agent/x509pop/a', 'deleted': True, 'error': ''}
    assert [e['spiffe_id'] for e in errors] == ['spiffe://example.org/spire/agent/x509pop/b']
    assert purge_view({'expired_agents': []}) == ([], [])


@pytest.mark.parametrize('ttl', [0, -1, 2 ** 31, '600', True, None])
def test_token_ttl_errors(ttl):
    with pytest.raises(InputError, match='^ttl must be a whole number of seconds between 1 and 2147483647'):
        check_token_ttl(ttl)


def test_token_ttl_ok():
    assert check_token_ttl(1) == 1 and check_token_ttl(2 ** 31 - 1) == 2 ** 31 - 1


def test_token_spiffe_id():
    assert check_token_spiffe_id('spiffe://example.org/node/a', 'example.org') == 'spiffe://example.org/node/a'
    with pytest.raises(InputError, match='^spiffe_id must not be under the reserved /spire/ path'):
        check_token_spiffe_id('spiffe://example.org/spire/agent/x')
    with pytest.raises(InputError, match="^spiffe_id spiffe://other.example/node is not in the server's trust domain"):
        check_token_spiffe_id('spiffe://other.example/node', 'example.org')
    with pytest.raises(InputError, match='^spiffe_id: spiffe://example.org has no path'):
        check_token_spiffe_id('spiffe://example.org')


def test_token_view():
    assert token_view({'value': 'f450318f', 'expires_at': '1795346891'}) == ('f450318f', 1795346891)
    assert token_view({}) == (None, 0)

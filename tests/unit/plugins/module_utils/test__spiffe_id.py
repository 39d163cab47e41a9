"""Unit tests for SPIFFE ID, trust domain, selector and DNS name validation."""

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._spiffe_id import (
    SpiffeError, check_dns_name, check_spiffe_id, dns_name_error, is_spiffe_id, normalize_trust_domain,
    parse_selector, parse_spiffe_id, selector_error, spiffe_id_error, trust_domain_error)


@pytest.mark.parametrize('value', [
    'spiffe://example.org',
    'spiffe://example.org/workload',
    'spiffe://a-b_c.d9/Path/With.Dots/and-hyphens_under',
    'spiffe://example.org/...x/a..b',
    'spiffe://td/' + 'a' * 2000,
])
def test_valid_ids(value):
    assert spiffe_id_error(value) is None
    assert is_spiffe_id(value)


@pytest.mark.parametrize('value, rule', [
    ('', 'non-empty'),
    (None, 'non-empty'),
    ('example.org/w', 'must start with spiffe://'),
    ('SPIFFE://example.org/w', 'scheme must be lowercase'),
    ('spiffe:///w', 'no trust domain'),
    ('spiffe://', 'no trust domain'),
    ('spiffe://Example.org/w', 'lowercase letters'),
    ('spiffe://exa mple.org/w', '[a-z0-9._-]'),
    ('spiffe://example.org:8443/w', 'port'),
    ('spiffe://user@example.org/w', 'user info'),
    ('spiffe://example.org/w/', 'must not end with /'),
    ('spiffe://example.org/', 'must not end with /'),
    ('spiffe://example.org//w', 'empty segment'),
    ('spiffe://example.org/a/./b', "'.' segment"),
    ('spiffe://example.org/a/..', "'..' segment"),
    ('spiffe://example.org/a b', '[A-Za-z0-9._-]'),
    ('spiffe://example.org/a%20b', '[A-Za-z0-9._-]'),
    ('spiffe://example.org/w?x=1', 'query'),
    ('spiffe://example.org/w#f', 'fragment'),
    ('spiffe://example.org/' + 'a' * 2048, 'longer than 2048'),
])
def test_invalid_ids(value, rule):
    error = spiffe_id_error(value)
    assert error is not None and rule in error, error
    with pytest.raises(SpiffeError) as info:
        parse_spiffe_id(value, 'entries[2].spiffe_id')
    assert str(info.value).startswith('entries[2].spiffe_id: ')


def test_parse():
    assert parse_spiffe_id('spiffe://example.org/ns/prod/sa/api') == {
        'id': 'spiffe://example.org/ns/prod/sa/api', 'trust_domain': 'example.org', 'path': '/ns/prod/sa/api',
        'segments': ['ns', 'prod', 'sa', 'api']}
    assert parse_spiffe_id('spiffe://example.org')['segments'] == []


def test_check_spiffe_id_rules():
    assert check_spiffe_id('spiffe://example.org/w', 'f', trust_domain='example.org')['path'] == '/w'
    with pytest.raises(SpiffeError) as info:
        check_spiffe_id('spiffe://other.org/w', 'entries[0].parent_id', trust_domain='example.org')
    assert "entries[0].parent_id" in str(info.value) and "'other.org'" in str(info.value)
    with pytest.raises(SpiffeError, match='has no path'):
        check_spiffe_id('spiffe://example.org', 'f')
    with pytest.raises(SpiffeError, match='/spire namespace'):
        check_spiffe_id('spiffe://example.org/spire/agent/x', 'f', workload=True)
    check_spiffe_id('spiffe://example.org/spire/agent/x', 'f')
    check_spiffe_id('spiffe://example.org/spirex', 'f', workload=True)


def test_trust_domains():
    assert trust_domain_error('example.org') is None
    assert 'lowercase' in trust_domain_error('Example.org')
    assert normalize_trust_domain('spiffe://other.example') == 'other.example'
    assert normalize_trust_domain('other.example') == 'other.example'
    with pytest.raises(SpiffeError, match='with a path'):
        normalize_trust_domain('spiffe://other.example/x', 'federates_with[0]')
    with pytest.raises(SpiffeError, match='federates_with'):
        normalize_trust_domain('bad domain', 'federates_with')


def test_selectors():
    assert parse_selector('unix:uid:1000') == ('unix', 'uid:1000')
    assert parse_selector('k8s:ns:default') == ('k8s', 'ns:default')
    assert parse_selector({'type': 'unix', 'value': 'gid:0'}) == ('unix', 'gid:0')
    for bad, rule in (('unix', 'type:value'), (':x', 'empty type'), ('unix:', 'empty value'), ('', 'non-empty'),
                      (' :x', 'empty type')):
        assert rule in selector_error(bad)
        with pytest.raises(SpiffeError, match=r'^selectors\[1\]: '):
            parse_selector(bad, 'selectors[1]')
    with pytest.raises(SpiffeError, match='type'):
        parse_selector({'type': 'a:b', 'value': 'x'})
    with pytest.raises(SpiffeError, match='value'):
        parse_selector({'type': 'a', 'value': ''})


@pytest.mark.parametrize('name', ['example.org', 'api.payments.example.org', '*.example.org', 'a', 'xn--bcher-kva.de',
                                  'a-b.c1', 'A.Example.org'])
def test_dns_valid(name):
    assert dns_name_error(name) is None


@pytest.mark.parametrize('name, rule', [
    ('', 'non-empty'), ('  ', 'non-empty'), ('bad_name.org', 'label'), ('-a.org', 'label'), ('a-.org', 'label'),
    ('a..org', 'label'), ('example.org.', 'dot'), ('*.*.org', 'more than one'), ('a.*.org', 'first label'),
    ('*', 'first label'), ('b\u00fccher.de', 'ASCII'), ('a' * 64 + '.org', 'label'), ('.'.join(['a' * 60] * 5), '253'),
])
def test_dns_invalid(name, rule):
    error = dns_name_error(name)
    assert error is not None and rule in error, error
    with pytest.raises(SpiffeError, match=r'^dns_names\[0\]: '):
        check_dns_name(name, 'dns_names[0]')

"""Unit tests for the spiffe_id_parse / spiffe_id_valid filters."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.trustroot.ops.plugins.filter.spiffe import FilterModule, spiffe_id_parse, spiffe_id_valid


def test_registered():
    assert set(FilterModule().filters()) == {'spiffe_id_parse', 'spiffe_id_valid'}


def test_parse():
    assert spiffe_id_parse('spiffe://example.org/ns/prod') == {
        'id': 'spiffe://example.org/ns/prod', 'trust_domain': 'example.org', 'path': '/ns/prod',
        'segments': ['ns', 'prod']}
    assert spiffe_id_parse('spiffe://example.org', 'example.org')['path'] == ''


@pytest.mark.parametrize('value, rule', [
    ('spiffe://example.org/a//b', 'empty segment'),
    ('http://example.org/a', 'spiffe://'),
    ('spiffe://EXAMPLE.org', 'lowercase'),
])
def test_parse_errors_name_the_rule(value, rule):
    with pytest.raises(AnsibleFilterError) as info:
        spiffe_id_parse(value)
    assert rule in str(info.value)


def test_parse_trust_domain_and_type():
    with pytest.raises(AnsibleFilterError, match="not in the server's trust domain 'example.org'"):
        spiffe_id_parse('spiffe://other.org/x', 'example.org')
    with pytest.raises(AnsibleFilterError, match='expected a string'):
        spiffe_id_parse(42)


def test_valid():
    assert spiffe_id_valid('spiffe://example.org/w') is True
    assert spiffe_id_valid('spiffe://example.org') is True
    assert spiffe_id_valid('spiffe://example.org', require_path=True) is False
    assert spiffe_id_valid('spiffe://example.org/w', 'other.org') is False
    assert spiffe_id_valid('spiffe://example.org/w', 'example.org', True) is True
    for bad in ('spiffe://example.org/w/', 'spiffe://exa_mple.org:80/', None, 12, ['x'], ''):
        assert spiffe_id_valid(bad) is False

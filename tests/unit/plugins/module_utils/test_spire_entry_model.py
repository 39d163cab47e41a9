"""The one definition of a SPIRE registration entry (module_utils/_spire_entry_model.py)."""
from ansible_collections.trustroot.ops.plugins.module_utils._spire_entry_model import (
    ALL_FIELDS, DEFAULTS, KEY_FIELDS, SET_ONLY_FIELDS, VALUE_FIELDS, canonical_entry, selector_text, spiffe_id_text,
    trust_domain_name)

EVERY_FIELD_SET = {
    'id': 'e1', 'revision_number': 4, 'created_at': 1700000000,
    'spiffe_id': {'trust_domain': 'example.org', 'path': '/w'}, 'parent_id': 'spiffe://example.org/node/a',
    'selectors': [{'type': 'unix', 'value': 'uid:2'}, 'unix:uid:1'], 'x509_svid_ttl': '60', 'jwt_svid_ttl': 30,
    'federates_with': ['spiffe://B.example/', 'a.example'], 'dns_names': ['b', 'a'], 'admin': True,
    'downstream': True, 'hint': 'h', 'store_svid': True, 'expires_at': '1900000000',
    'disable_x509_svid_prefetch': True, 'jwt_svid_include_jti': True}


def test_the_canonical_form_holds_every_field_registration_compares_and_nothing_else():
    canonical = canonical_entry(EVERY_FIELD_SET)
    assert tuple(sorted(canonical)) == tuple(sorted(ALL_FIELDS))
    assert canonical == {
        'spiffe_id': 'spiffe://example.org/w', 'parent_id': 'spiffe://example.org/node/a',
        'selectors': ['unix:uid:1', 'unix:uid:2'], 'x509_svid_ttl': 60, 'jwt_svid_ttl': 30,
        'federates_with': ['a.example', 'b.example'], 'dns_names': ['a', 'b'], 'admin': True, 'downstream': True,
        'hint': 'h', 'store_svid': True, 'expires_at': 1900000000, 'disable_x509_svid_prefetch': True,
        'jwt_svid_include_jti': True}


def test_later_fields_count_only_when_set_so_older_digests_stay_valid():
    canonical = canonical_entry({'spiffe_id': 'spiffe://example.org/w', 'parent_id': 'spiffe://example.org/n',
                                 'selectors': ['unix:uid:1'], 'store_svid': False, 'expires_at': 0})
    assert set(canonical) == set(ALL_FIELDS) - set(name for name, _kind in SET_ONLY_FIELDS)


def test_fields_and_defaults_agree():
    assert ALL_FIELDS == KEY_FIELDS + VALUE_FIELDS and len(set(ALL_FIELDS)) == len(ALL_FIELDS)
    assert set(DEFAULTS) == set(VALUE_FIELDS)
    assert set(name for name, _kind in SET_ONLY_FIELDS) <= set(VALUE_FIELDS)


def test_spellings():
    assert spiffe_id_text({'trust_domain': 'td', 'path': '/p'}) == 'spiffe://td/p'
    assert spiffe_id_text(None) == '' and spiffe_id_text('spiffe://td/p') == 'spiffe://td/p'
    assert trust_domain_name('spiffe://Example.ORG/') == 'example.org' and trust_domain_name(None) == ''
    assert selector_text({'type': 'k8s', 'value': 'ns:a'}) == 'k8s:ns:a' and selector_text('unix:uid:0') == 'unix:uid:0'

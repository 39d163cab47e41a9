"""Unit tests for plugins/module_utils/_spire_backup.py: canonical entries and their digest, bundle summary,
argv building, info parsing from recorded SPIRE v1.15.3 JSON, restore plans and post-restore checks."""

import base64
import copy
import hashlib
import json

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._spire_backup import (
    bundle_summary, canonical_entries, canonical_entry, entries_digest)

TD = 'example.org'
SERVER_CA_ASN1 = (
    'MIICAjCCAaigAwIBAgIRAPVELhoWGzTwB+c0z5hLIC0wCgYIKoZIzj0EAwIwUDELMAkGA1UEBhMCVVMxDzANBgNVBAoTBlNQSUZG'
    'RTEwMC4GA1UEBRMnMzI2MDE0ODcwMjExMzAwMzExNjkxOTI5NDM3ODgwMzgyNTk1MTE3MB4XDTI2MTEyMjExMjcwMFoXDTI2MTEy'
    'MzExMjcxMFowUDELMAkGA1UEBhMCVVMxDzANBgNVBAoTBlNQSUZGRTEwMC4GA1UEBRMnMzI2MDE0ODcwMjExMzAwMzExNjkxOTI5'
    'NDM3ODgwMzgyNTk1MTE3MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEIV7/6nUrguioMRrLsNubJjSfE93yN1iIEcH05BhJtSP2'
    'sEe/27pNWxqK6OnxURnXdx/eeiaHRrWknsmJnbU0XqNjMGEwDgYDVR0PAQH/BAQDAgEGMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0O'
    'BBYEFLW1a6Wo3qN/G2+ndZaUqSHFtqe0MB8GA1UdEQQYMBaGFHNwaWZmZTovL2V4YW1wbGUub3JnMAoGCCqGSM49BAMCA0gAMEUC'
    'IQCtXp4M3qprjKZPo2kre0P/imSQANFgEyKS/osbuOWgswIgQfHhrKw7UOaysETIOx7PxlxHpPZoMxeXLb1Y3USflWQ='
)
SERVER_CA_SHA256 = hashlib.sha256(base64.b64decode(SERVER_CA_ASN1)).hexdigest()
# `spire-server bundle show -output json` of one SPIRE v1.15.3 server.
SERVER_BUNDLE_TEXT = '''{"jwt_authorities": [{"expires_at": "1795433230", "key_id": "c6WQ5OEEY0SnsobN0WsboZOyiDMMyWh2",
"public_key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELZpYejY72Sl8/cH1pSiw4DTLytuXGP2rPnA9Cac8vt7YHhgVG0K3VS8JyBcpCU8u6JTCBFHNVwq2u60CQNLmxg==",
"tainted": false}], "refresh_hint": "0", "sequence_number": "1", "trust_domain": "example.org", "wit_authorities": [],
"x509_authorities": [{"asn1": "%s",
"tainted": false}]}''' % SERVER_CA_ASN1
SERVER_BUNDLE = json.loads(SERVER_BUNDLE_TEXT)


def shown(i, entry_id='e%d', **extra):
    """An entry in the `entry show -output json` shape."""
    entry = {'id': entry_id % i if '%' in entry_id else entry_id,
             'spiffe_id': {'trust_domain': TD, 'path': '/w%d' % i},
             'parent_id': {'trust_domain': TD, 'path': '/spire/agent/join_token/abc'},
             'selectors': [{'type': 'unix', 'value': 'uid:%d' % i}, {'type': 'unix', 'value': 'gid:%d' % i}],
             'x509_svid_ttl': 0, 'jwt_svid_ttl': 0, 'federates_with': [], 'dns_names': [], 'admin': False,
             'downstream': False, 'hint': '', 'store_svid': False, 'expires_at': '0', 'revision_number': '0',
             'created_at': '1795346797'}
    entry.update(extra)
    return entry


def show(*entries):
    return {'entries': list(entries), 'next_page_token': ''}


# --- entries_digest -------------------------------------------------------------------------------------------

def test_canonical_entry_fields():
    entry = shown(1, federates_with=['spiffe://B.example', 'a.example'], dns_names=['b', 'a'], x509_svid_ttl=60,
                  jwt_svid_ttl='30', admin=True, hint='h')
    assert canonical_entry(entry) == {
        'spiffe_id': 'spiffe://example.org/w1', 'parent_id': 'spiffe://example.org/spire/agent/join_token/abc',
        'selectors': ['unix:gid:1', 'unix:uid:1'], 'x509_svid_ttl': 60, 'jwt_svid_ttl': 30,
        'federates_with': ['a.example', 'b.example'], 'dns_names': ['a', 'b'], 'admin': True, 'downstream': False,
        'hint': 'h'}


def test_digest_ignores_ids_timestamps_order_and_selector_order():
    one = show(shown(1), shown(2), shown(3))
    other = show(shown(3, entry_id='x', created_at='1', revision_number='4'), shown(1, entry_id='y'),
                 shown(2, selectors=[{'type': 'unix', 'value': 'gid:2'}, {'type': 'unix', 'value': 'uid:2'}]))
    assert entries_digest(one) == entries_digest(other)


def test_digest_accepts_text_bytes_dict_and_list():
    data = show(shown(1), shown(2))
    text = json.dumps(data)
    digest = entries_digest(data)
    assert len(digest) == 64
    assert entries_digest(text) == digest
    assert entries_digest(text.encode()) == digest
    assert entries_digest(data['entries']) == digest


def test_digest_missing_defaults_equal_explicit_defaults():
    full = shown(1)
    sparse = {'id': 'z', 'spiffe_id': full['spiffe_id'], 'parent_id': full['parent_id'],
              'selectors': full['selectors']}
    assert entries_digest([full]) == entries_digest([sparse])


@pytest.mark.parametrize('change', [
    {'x509_svid_ttl': 1}, {'jwt_svid_ttl': 1}, {'admin': True}, {'downstream': True}, {'hint': 'x'},
    {'dns_names': ['a.example']}, {'federates_with': ['other.example']},
    {'selectors': [{'type': 'unix', 'value': 'uid:1'}]},
    {'spiffe_id': {'trust_domain': TD, 'path': '/other'}},
    {'parent_id': {'trust_domain': TD, 'path': '/spire/agent/x509pop/abc'}},
])
def test_digest_changes_with_every_restored_field(change):
    assert entries_digest([shown(1)]) != entries_digest([shown(1, **change)])


def test_digest_counts_duplicates_and_empty():
    assert entries_digest([shown(1)]) != entries_digest([shown(1), shown(1, entry_id='dup')])
    assert entries_digest(show()) == entries_digest([]) == hashlib.sha256(b'[]').hexdigest()
    assert entries_digest({'entries': None}) == entries_digest([])


def test_digest_is_sha256_of_canonical_json():
    entries = [shown(2), shown(1)]
    canonical = canonical_entries(entries)
    assert [e['spiffe_id'] for e in canonical] == ['spiffe://example.org/w1', 'spiffe://example.org/w2']
    text = '[' + ','.join(json.dumps(e, sort_keys=True, separators=(',', ':')) for e in canonical) + ']'
    assert entries_digest(entries) == hashlib.sha256(text.encode()).hexdigest()


def test_digest_rejects_other_json():
    with pytest.raises(ValueError):
        entries_digest('"text"')


# --- bundle_summary ---------------------------------------------------------------------------------------

def test_bundle_summary_recorded_shape():
    expected = {'trust_domain': 'example.org', 'x509_authorities': [SERVER_CA_SHA256],
                'jwt_key_ids': ['c6WQ5OEEY0SnsobN0WsboZOyiDMMyWh2']}
    assert bundle_summary(SERVER_BUNDLE) == expected
    assert bundle_summary(SERVER_BUNDLE_TEXT) == expected
    assert bundle_summary(SERVER_BUNDLE_TEXT.encode()) == expected


def test_bundle_summary_sorted_and_empty():
    bundle = copy.deepcopy(SERVER_BUNDLE)
    second = base64.b64encode(b'\x30\x03\x02\x01\x01').decode()
    bundle['x509_authorities'].append({'asn1': second, 'tainted': True})
    bundle['jwt_authorities'].append({'key_id': 'A', 'public_key': 'x'})
    summary = bundle_summary(bundle)
    assert summary['x509_authorities'] == sorted([SERVER_CA_SHA256, hashlib.sha256(base64.b64decode(second)).hexdigest()])
    assert summary['jwt_key_ids'] == ['A', 'c6WQ5OEEY0SnsobN0WsboZOyiDMMyWh2']
    assert bundle_summary({'trust_domain': 'td'}) == {'trust_domain': 'td', 'x509_authorities': [], 'jwt_key_ids': []}


def test_bundle_summary_rejects_bad_asn1():
    with pytest.raises(ValueError):
        bundle_summary({'trust_domain': 'td', 'x509_authorities': [{'asn1': 'not base64!'}]})
    with pytest.raises(ValueError):
        bundle_summary({'trust_domain': 'td', 'x509_authorities': [{'asn1': ''}]})
    with pytest.raises(ValueError):
        bundle_summary('[]')

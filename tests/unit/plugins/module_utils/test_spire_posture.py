"""Unit tests for plugins/module_utils/_spire_posture.py: the server settings, entries, agents, bundles and
relationships spire_posture_info returns, and the key set read from a peer's bundle endpoint answer, which is
refused (never read as fewer keys) when it is not a SPIFFE bundle."""

import base64
import copy
import json

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils import _posture as posture
from ansible_collections.trustroot.ops.plugins.module_utils._spire_posture import (
    MAX_BUNDLE, agents_view, bundles_view, config_settings, entries_view, parse_served, read_config, relationships,
    served_keys, stored_keys)

URL = 'https://peer.test:8443/'

SERVER_CA_ASN1 = (
    'MIICAjCCAaigAwIBAgIRAPVELhoWGzTwB+c0z5hLIC0wCgYIKoZIzj0EAwIwUDELMAkGA1UEBhMCVVMxDzANBgNVBAoTBlNQSUZG'
    'RTEwMC4GA1UEBRMnMzI2MDE0ODcwMjExMzAwMzExNjkxOTI5NDM3ODgwMzgyNTk1MTE3MB4XDTI2MTEyMjExMjcwMFoXDTI2MTEy'
    'MzExMjcxMFowUDELMAkGA1UEBhMCVVMxDzANBgNVBAoTBlNQSUZGRTEwMC4GA1UEBRMnMzI2MDE0ODcwMjExMzAwMzExNjkxOTI5'
    'NDM3ODgwMzgyNTk1MTE3MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEIV7/6nUrguioMRrLsNubJjSfE93yN1iIEcH05BhJtSP2'
    'sEe/27pNWxqK6OnxURnXdx/eeiaHRrWknsmJnbU0XqNjMGEwDgYDVR0PAQH/BAQDAgEGMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0O'
    'BBYEFLW1a6Wo3qN/G2+ndZaUqSHFtqe0MB8GA1UdEQQYMBaGFHNwaWZmZTovL2V4YW1wbGUub3JnMAoGCCqGSM49BAMCA0gAMEUC'
    'IQCtXp4M3qprjKZPo2kre0P/imSQANFgEyKS/osbuOWgswIgQfHhrKw7UOaysETIOx7PxlxHpPZoMxeXLb1Y3USflWQ='
)
# `spire-server bundle show -output json` and `bundle show -format spiffe` of one SPIRE v1.15.3 server.
SERVER_BUNDLE = json.loads('''{"jwt_authorities": [{"expires_at": "1795433230", "key_id": "c6WQ5OEEY0SnsobN0WsboZOyiDMMyWh2",
"public_key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELZpYejY72Sl8/cH1pSiw4DTLytuXGP2rPnA9Cac8vt7YHhgVG0K3VS8JyBcpCU8u6JTCBFHNVwq2u60CQNLmxg==",
"tainted": false}], "refresh_hint": "0", "sequence_number": "1", "trust_domain": "example.org", "wit_authorities": [],
"x509_authorities": [{"asn1": "%s",
"tainted": false}]}''' % SERVER_CA_ASN1)
SERVER_BUNDLE_SPIFFE = json.loads('''{"keys": [{"use": "x509-svid", "kty": "EC", "crv": "P-256",
"x": "IV7_6nUrguioMRrLsNubJjSfE93yN1iIEcH05BhJtSM", "y": "9rBHv9u6TVsaiujp8VEZ13cf3nomh0a1pJ7JiZ21NF4",
"x5c": ["%s"]}, {"use": "jwt-svid", "kty": "EC", "kid": "c6WQ5OEEY0SnsobN0WsboZOyiDMMyWh2", "crv": "P-256",
"x": "LZpYejY72Sl8_cH1pSiw4DTLytuXGP2rPnA9Cac8vt4", "y": "2B4YFRtCt1UvCcgXKQlPLuiUwgRRzVcKtrutAkDS5sY"}],
"spiffe_sequence": 1}''' % SERVER_BUNDLE['x509_authorities'][0]['asn1'])


def served(mutate):
    doc = copy.deepcopy(SERVER_BUNDLE_SPIFFE)
    mutate(doc)
    return doc


def test_served_keys_of_a_real_spire_bundle_equal_its_stored_keys():
    assert served_keys(SERVER_BUNDLE_SPIFFE, URL) == stored_keys(SERVER_BUNDLE) == [
        'jwt:c6WQ5OEEY0SnsobN0WsboZOyiDMMyWh2', 'x509:' + SERVER_CA_ASN1]


def test_keys_of_an_unknown_use_are_ignored():
    def add(doc):
        doc['keys'].append({'use': 'wit-svid', 'kty': 'EC'})
        doc['keys'].append({'kty': 'EC'})
    assert served_keys(served(add), URL) == stored_keys(SERVER_BUNDLE)


def test_no_keys_at_all_is_an_empty_set():
    assert served_keys({'keys': []}, URL) == []


def set_key(index, **changes):
    def mutate(doc):
        for name, value in changes.items():
            if value is DELETE:
                del doc['keys'][index][name]
            else:
                doc['keys'][index][name] = value
    return mutate


DELETE = object()
OTHER_CERT = base64.b64encode(b'not a certificate').decode()


@pytest.mark.parametrize('mutate, needle', [
    (set_key(0, x5c=DELETE), 'keys[0] (x509-svid) must have exactly one certificate in x5c'),
    (set_key(0, x5c=[]), 'keys[0] (x509-svid) must have exactly one certificate in x5c'),
    (set_key(0, x5c=None), 'keys[0] (x509-svid) must have exactly one certificate in x5c'),
    (set_key(0, x5c=SERVER_CA_ASN1), 'keys[0] (x509-svid) must have exactly one certificate in x5c'),
    (set_key(0, x5c=[SERVER_CA_ASN1, SERVER_CA_ASN1]), 'keys[0] (x509-svid) must have exactly one certificate in x5c'),
    (set_key(0, x5c=['%%%']), 'keys[0].x5c[0] is not valid base64'),
    (set_key(0, x5c=[42]), 'keys[0].x5c[0] is not valid base64'),
    (set_key(0, x5c=[OTHER_CERT]), 'keys[0].x5c[0] is not a certificate'),
    (set_key(1, kid=DELETE), 'keys[1] (jwt-svid) must have a kid'),
    (set_key(1, kid=''), 'keys[1] (jwt-svid) must have a kid'),
    (set_key(1, kid=7), 'keys[1] (jwt-svid) has a kid that is not a string'),
    (set_key(1, x=DELETE), 'keys[1]: a key of type EC lacks valid public key members'),
    (lambda doc: doc['keys'].append('x509-svid'), 'keys[2] must be an object'),
])
def test_a_malformed_key_is_an_error_naming_endpoint_index_and_fault(mutate, needle):
    with pytest.raises(ValueError) as err:
        served_keys(served(mutate), URL)
    assert str(err.value).startswith('bundle endpoint %s %s' % (URL, needle)), str(err.value)


@pytest.mark.parametrize('document, needle', [
    ({'keys': {'use': 'x509-svid'}}, 'served an object without a "keys" list'),
    ({'keys': None}, 'served an object without a "keys" list'),
    ({}, 'served an object without a "keys" list'),
    ([SERVER_BUNDLE_SPIFFE], 'served JSON that is not an object'),
    ('keys', 'served JSON that is not an object'),
    (None, 'served JSON that is not an object'),
])
def test_a_document_that_is_not_a_bundle_is_an_error(document, needle):
    with pytest.raises(ValueError) as err:
        served_keys(document, URL)
    assert str(err.value) == 'bundle endpoint %s %s' % (URL, needle)


BODY = json.dumps(SERVER_BUNDLE_SPIFFE).encode()


@pytest.mark.parametrize('content_type', ['application/json', 'application/json; charset=utf-8', 'Application/JSON',
                                          'application/jwk-set+json'])
def test_parse_served_reads_a_json_answer(content_type):
    # SPIRE's bundle endpoint (pkg/server/endpoints/bundle) answers Content-Type: application/json.
    assert parse_served(URL, content_type, BODY) == stored_keys(SERVER_BUNDLE)


@pytest.mark.parametrize('content_type, body, needle', [
    ('text/html; charset=utf-8', b'<html>login</html>', 'served text/html instead of JSON'),
    ('text/plain', BODY, 'served text/plain instead of JSON'),
    (None, BODY, 'served a body without a Content-Type instead of JSON'),
    ('application/json', BODY[:-5], 'served a body that is not valid JSON (cut off?)'),
    ('application/json', b'', 'served a body that is not valid JSON (cut off?)'),
    ('application/json', b'\xff\xfe', 'served a body that is not valid JSON (cut off?)'),
    ('application/json', b' ' * MAX_BUNDLE + b'{}', 'served more than %d bytes' % MAX_BUNDLE),
    ('application/json', b'[]', 'served JSON that is not an object'),
])
def test_parse_served_refuses_what_is_not_a_json_bundle(content_type, body, needle):
    with pytest.raises(ValueError) as err:
        parse_served(URL, content_type, body)
    assert str(err.value) == 'bundle endpoint %s %s' % (URL, needle)


def test_a_malformed_bundle_fails_the_federation_match_and_says_why():
    with pytest.raises(ValueError) as err:
        served_keys(served(set_key(0, x5c=[])), URL)
    rel = {'trust_domain': 'peer.test', 'bundle_endpoint_url': URL, 'profile': 'https_web',
           'stored_keys': stored_keys(SERVER_BUNDLE), 'served': None, 'served_error': str(err.value)}
    finding = posture._federated_match({'federations': [rel]}, 'spire1')
    assert finding['status'] == 'FAIL'
    assert finding['summary'] == ('peer.test: endpoint not read or its bundle not valid (bundle endpoint %s keys[0] '
                                  '(x509-svid) must have exactly one certificate in x5c)' % URL)


# --- what the posture checks read from spire-server --------------------------------------------------------

CONFIG = '''
server {
    bind_address = "0.0.0.0"
    trust_domain = "example.org"   # the server's
    ca_ttl = "24h"
    default_x509_svid_ttl = "1h"
    audit_log_enabled = true
}
plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "sqlite3"
            connection_string = "/var/lib/spire/server/datastore.sqlite3"
        }
    }
    UpstreamAuthority "disk" {
        plugin_data {
            trust_domain = "other.example"
        }
    }
}
'''


def test_config_settings_first_occurrence_wins(tmp_path):
    expected = {'trust_domain': 'example.org', 'ca_ttl': '24h', 'default_x509_svid_ttl': '1h',
                'audit_log_enabled': 'true', 'database_type': 'sqlite3',
                'connection_string': '/var/lib/spire/server/datastore.sqlite3'}
    assert config_settings(CONFIG) == expected
    path = tmp_path / 'server.conf'
    path.write_text(CONFIG)
    assert read_config(str(path)) == expected


def test_entries_agents_and_relationships_shapes():
    entries = [{'id': 'e1', 'spiffe_id': {'trust_domain': 'example.org', 'path': '/web'},
                'parent_id': {'trust_domain': 'example.org', 'path': '/spire/agent/x509pop/n1'},
                'federates_with': ['peer.test'], 'admin': True, 'selectors': [{'type': 'unix', 'value': 'uid:1'}]},
               {'id': 'e2', 'spiffe_id': 'spiffe://example.org/db', 'downstream': True}]
    assert entries_view(entries) == [
        {'id': 'e1', 'spiffe_id': 'spiffe://example.org/web', 'parent_id': 'spiffe://example.org/spire/agent/x509pop/n1',
         'federates_with': ['peer.test'], 'admin': True, 'downstream': False},
        {'id': 'e2', 'spiffe_id': 'spiffe://example.org/db', 'parent_id': None, 'federates_with': [], 'admin': False,
         'downstream': True}]
    agents = [{'id': {'trust_domain': 'example.org', 'path': '/spire/agent/join_token/t1'}, 'banned': False,
               'x509svid_expires_at': '1795350431'},
              {'id': {'trust_domain': 'example.org', 'path': '/spire/agent/x509pop/n2'}, 'banned': True}]
    assert agents_view(agents) == [
        {'spiffe_id': 'spiffe://example.org/spire/agent/join_token/t1', 'x509svid_expires_at': 1795350431, 'banned': False},
        {'spiffe_id': 'spiffe://example.org/spire/agent/x509pop/n2', 'x509svid_expires_at': 0, 'banned': True}]
    answer = {'federation_relationships': [
        {'trust_domain': 'peer.test', 'bundle_endpoint_url': URL,
         'https_spiffe': {'endpoint_spiffe_id': 'spiffe://peer.test/spire/server'}},
        {'trust_domain': 'web.test', 'bundle_endpoint_url': 'https://web.test/bundle', 'https_web': {}}]}
    assert relationships(answer) == [
        {'trust_domain': 'peer.test', 'bundle_endpoint_url': URL, 'profile': 'https_spiffe'},
        {'trust_domain': 'web.test', 'bundle_endpoint_url': 'https://web.test/bundle', 'profile': 'https_web'}]
    assert relationships({}) == []


def test_bundles_view_reads_expiry_from_the_certificate():
    assert bundles_view([SERVER_BUNDLE]) == [
        {'trust_domain': 'example.org', 'refresh_hint': 0, 'sequence_number': 1,
         'x509_authorities': [{'not_after_unix': 1795433230}]}]

"""Unit tests for plugins/module_utils/_spire_federation.py: SPIFFE ID / trust domain / URL validation,
the DER reader (Subject Key IDs, JWKs), bundle views and comparisons, and the federation plan."""

import base64
import datetime
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError
from ansible_collections.trustroot.ops.plugins.module_utils._spiffe_id import SpiffeError
from ansible_collections.trustroot.ops.plugins.module_utils._spire_federation import (
    authorities_from_input, authorities_from_proto, authorities_summary, bundle_endpoint_url_error, bundle_pem,
    bundle_spiffe, bundle_view, current_relationships, desired_relationship, desired_relationships, federation_diff,
    id_from_proto, iso_time, jwk_from_spki, key_identity, parse_spiffe_bundle, pem_certificates, plan_federation,
    relationship_payload, relationships_after, relationships_data, same_authorities, x509_spki, x509_subject_key_id)

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
SERVER_CA_ID = 'b5b56ba5a8dea37f1b6fa7759694a921c5b6a7b4'   # `localauthority x509 show` active.authority_id


def make_cert(key, ski=True):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'unit CA')])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now)
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    if ski:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def b64url_int(text):
    return int.from_bytes(base64.urlsafe_b64decode(text + '=' * (-len(text) % 4)), 'big')


# --- SPIFFE IDs, trust domains, URLs ---------------------------------------------------------------------

def test_proto_ids():
    assert id_from_proto({'trust_domain': 'td', 'path': '/spire/agent/x'}) == 'spiffe://td/spire/agent/x'
    assert id_from_proto('spiffe://td/x') == 'spiffe://td/x'


def test_relationship_ids_are_checked_by_the_spiffe_rules_naming_the_field():
    base = {'bundle_endpoint_url': 'https://127.0.0.1:8443', 'bundle_endpoint_profile': 'https_spiffe'}
    assert desired_relationship(dict(base, trust_domain='spiffe://other.example',
                                     endpoint_spiffe_id='spiffe://other.example'), 0)['trust_domain'] == 'other.example'
    with pytest.raises(SpiffeError, match=r'^relationships\[0\]\.trust_domain: spiffe://other.example/x is a SPIFFE '
                                          r'ID with a path'):
        desired_relationship(dict(base, trust_domain='spiffe://other.example/x'), 0)
    with pytest.raises(SpiffeError, match=r'^relationships\[1\]\.trust_domain: trust domain .Other.Example. may only'):
        desired_relationship(dict(base, trust_domain='Other.Example'), 1)
    with pytest.raises(SpiffeError, match=r'^relationships\[0\]\.endpoint_spiffe_id: SPIFFE ID .other.example/x. '
                                          r'must start with spiffe://'):
        desired_relationship(dict(base, trust_domain='other.example', endpoint_spiffe_id='other.example/x'), 0)


@pytest.mark.parametrize('value', ['https://127.0.0.1:8443', 'https://bundle.example.org/', 'https://[::1]:8443/x',
                                   'HTTPS://host.example'])
def test_url_valid(value):
    assert bundle_endpoint_url_error(value) is None


@pytest.mark.parametrize('value,needle', [
    ('http://host', 'https scheme'), ('host:8443', 'absolute'), ('https://', 'must name a host'),
    ('https://user:pw@host', 'user info'), ('https://host:99999', 'invalid port'), ('https://host:x', 'invalid port'),
    ('', 'https:// URL'), ('https://host/a b', 'whitespace'),
])
def test_url_invalid(value, needle):
    assert needle in bundle_endpoint_url_error(value)


# --- DER reader -------------------------------------------------------------------------------------------

def test_subject_key_id_of_real_spire_ca_is_its_authority_id():
    cert_der = base64.b64decode(SERVER_BUNDLE['x509_authorities'][0]['asn1'])
    assert x509_subject_key_id(cert_der) == SERVER_CA_ID


@pytest.mark.parametrize('key_factory', [
    lambda: ec.generate_private_key(ec.SECP256R1()), lambda: ec.generate_private_key(ec.SECP384R1()),
    lambda: ec.generate_private_key(ec.SECP521R1()), lambda: rsa.generate_private_key(65537, 2048),
    ed25519.Ed25519PrivateKey.generate,
])
def test_jwk_and_ski_match_cryptography(key_factory):
    key = key_factory()
    cert = make_cert(key)
    cert_der = der(cert)
    expected_ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
    assert x509_subject_key_id(cert_der) == expected_ski
    spki = x509_spki(cert_der)
    assert spki == key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    jwk = jwk_from_spki(spki)
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        assert jwk['kty'] == 'RSA' and b64url_int(jwk['n']) == numbers.n and jwk['e'] == 'AQAB'
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.public_key().public_numbers()
        size = (key.curve.key_size + 7) // 8
        assert jwk['crv'] == {256: 'P-256', 384: 'P-384', 521: 'P-521'}[key.curve.key_size]
        assert b64url_int(jwk['x']) == numbers.x and b64url_int(jwk['y']) == numbers.y
        # go-jose pads coordinates to the curve size
        assert len(base64.urlsafe_b64decode(jwk['x'] + '==')) == size
    else:
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert jwk == {'kty': 'OKP', 'crv': 'Ed25519', 'x': base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}


def test_certificate_without_ski():
    assert x509_subject_key_id(der(make_cert(ec.generate_private_key(ec.SECP256R1()), ski=False))) is None


def test_key_identity_ignores_padding_and_leading_zeros():
    a = {'kty': 'RSA', 'n': 'AAEC', 'e': 'AQAB'}
    b = {'kty': 'RSA', 'n': 'AQI', 'e': 'AAEAAQ'}
    assert key_identity(a) == key_identity(b)
    with pytest.raises(InputError, match='lacks valid public key members'):
        key_identity({'kty': 'EC', 'crv': 'P-256', 'x': 'AA'})
    with pytest.raises(InputError, match='unsupported key type'):
        key_identity({'kty': 'oct', 'k': 'AA'})


# --- bundles ----------------------------------------------------------------------------------------------

def test_bundle_spiffe_is_what_spire_prints():
    assert bundle_spiffe(SERVER_BUNDLE) == SERVER_BUNDLE_SPIFFE


def test_bundle_pem_round_trip():
    text = bundle_pem(SERVER_BUNDLE)
    assert text.startswith('-----BEGIN CERTIFICATE-----\n') and text.endswith('-----END CERTIFICATE-----\n')
    assert all(len(line) <= 64 for line in text.splitlines())
    ders = pem_certificates(text, 'bundle')
    assert [base64.b64encode(d).decode() for d in ders] == [SERVER_BUNDLE['x509_authorities'][0]['asn1']]


def test_bundle_view():
    view = bundle_view(SERVER_BUNDLE)
    assert view['trust_domain'] == 'example.org'
    assert view['x509_authorities'][0]['authority_id'] == SERVER_CA_ID
    assert view['jwt_authorities'][0]['authority_id'] == 'c6WQ5OEEY0SnsobN0WsboZOyiDMMyWh2'
    assert view['jwt_authorities'][0]['expires_at'] == 1795433230
    assert view['jwt_authorities'][0]['expires_at_iso'] == iso_time(1795433230) == '2026-11-23T11:27:10Z'
    assert view['sequence_number'] == 1


def test_same_authorities_compares_content_not_text():
    current = authorities_from_proto(SERVER_BUNDLE)
    reformatted = json.dumps(SERVER_BUNDLE_SPIFFE, indent=2, sort_keys=True)
    assert same_authorities(current, authorities_from_input(reformatted, 'spiffe', 'bundle'))
    shuffled = dict(SERVER_BUNDLE_SPIFFE, keys=list(reversed(SERVER_BUNDLE_SPIFFE['keys'])), spiffe_sequence=99,
                    spiffe_refresh_hint=300)
    assert same_authorities(current, authorities_from_input(json.dumps(shuffled), 'spiffe', 'bundle'))
    # PEM holds no JWT authority: not the same as a bundle that has one
    pem_only = authorities_from_input(bundle_pem(SERVER_BUNDLE), 'pem', 'bundle')
    assert not same_authorities(current, pem_only)
    assert not same_authorities(None, pem_only)
    # a different JWT key id is a different bundle
    renamed = json.loads(json.dumps(SERVER_BUNDLE_SPIFFE))
    renamed['keys'][1]['kid'] = 'other'
    assert not same_authorities(current, authorities_from_input(json.dumps(renamed), 'spiffe', 'bundle'))
    summary = authorities_summary(current)
    assert summary == {'x509_authorities': [SERVER_CA_ID], 'jwt_authorities': ['c6WQ5OEEY0SnsobN0WsboZOyiDMMyWh2']}
    assert authorities_summary(None) is None


@pytest.mark.parametrize('text,needle', [
    ('not json', 'is not a JSON SPIFFE bundle'),
    ('[]', 'a JSON object with a "keys" list'),
    ('{"keys": {}}', 'a JSON object with a "keys" list'),
    ('{"keys": [1]}', 'keys[0] must be an object'),
    ('{"keys": [{"use": "x509-svid", "x5c": []}]}', 'exactly one certificate'),
    ('{"keys": [{"use": "x509-svid", "x5c": ["!!"]}]}', 'not valid base64'),
    ('{"keys": [{"use": "x509-svid", "x5c": ["AAAA"]}]}', 'is not a certificate'),
    ('{"keys": [{"use": "jwt-svid", "kty": "EC"}]}', 'must have a kid'),
    ('{"keys": [{"use": "jwt-svid", "kid": "k", "kty": "EC", "crv": "P-256"}]}', 'lacks valid public key'),
])
def test_spiffe_bundle_errors_name_field(text, needle):
    with pytest.raises(InputError) as info:
        parse_spiffe_bundle(text, 'bundle')
    assert str(info.value).startswith('bundle ') and needle in str(info.value)


def test_empty_bundle_refused():
    with pytest.raises(InputError, match='holds no x509-svid or jwt-svid authority'):
        authorities_from_input('{"keys": []}', 'spiffe', 'bundle')


@pytest.mark.parametrize('text,needle', [
    ('hello', 'holds no PEM certificate'),
    ('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', 'only CERTIFICATE is allowed'),
    ('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'cannot be read'),
])
def test_pem_errors(text, needle):
    with pytest.raises(InputError, match=needle):
        pem_certificates(text, 'bundle_path')


# --- federation -------------------------------------------------------------------------------------------

def rel(td='other.example', url='https://127.0.0.1:8443', profile='https_spiffe', endpoint='spiffe://other.example/spire/server',
        bundle=None, fmt='spiffe'):
    item = {'trust_domain': td, 'bundle_endpoint_url': url, 'bundle_endpoint_profile': profile,
            'endpoint_spiffe_id': endpoint, 'trust_domain_bundle_format': fmt}
    if bundle is not None:
        item['trust_domain_bundle'] = bundle
    return item


def listed(td, url='https://127.0.0.1:8443', endpoint='spiffe://other.example/spire/server', bundle=True, web=False):
    item = {'trust_domain': td, 'bundle_endpoint_url': url}
    if web:
        item['https_web'] = {}
    else:
        item['https_spiffe'] = {'endpoint_spiffe_id': endpoint}
    if bundle:
        item['trust_domain_bundle'] = SERVER_BUNDLE
    return item


def test_desired_relationship_normalizes():
    got = desired_relationship(rel(td='spiffe://other.example', bundle=json.dumps(SERVER_BUNDLE_SPIFFE)), 0)
    assert got['trust_domain'] == 'other.example'
    assert got['bundle'] == SERVER_BUNDLE_SPIFFE and got['bundle_format'] == 'spiffe'
    web = desired_relationship(rel(profile='https_web', endpoint=None), 1)
    assert web['endpoint_spiffe_id'] is None and web['bundle'] is None and web['bundle_format'] is None


@pytest.mark.parametrize('changes,needle', [
    ({'trust_domain': 'Bad TD'}, "relationships[0].trust_domain: trust domain 'Bad TD' may only use"),
    ({'bundle_endpoint_url': 'http://x'}, 'relationships[0].bundle_endpoint_url must use the https scheme'),
    ({'bundle_endpoint_profile': 'https'}, 'relationships[0].bundle_endpoint_profile must be one of'),
    ({'endpoint_spiffe_id': None}, 'relationships[0].endpoint_spiffe_id is required'),
    ({'endpoint_spiffe_id': 'spiffe://other.example/../x'},
     "relationships[0].endpoint_spiffe_id: SPIFFE ID 'spiffe://other.example/../x': path '/../x' has a '..' segment"),
    ({'bundle_endpoint_profile': 'https_web'}, 'endpoint_spiffe_id is only used with'),
    ({'trust_domain_bundle': '{"keys": 1}'}, 'relationships[0].trust_domain_bundle must be a SPIFFE bundle'),
    ({'trust_domain_bundle': 'x', 'trust_domain_bundle_format': 'pem'}, 'relationships[0].trust_domain_bundle holds no PEM'),
    ({'trust_domain_bundle_format': 'der'}, 'trust_domain_bundle_format must be one of'),
    ({'trust_domain': 'example.org'}, "is the server's own trust domain"),
])
def test_desired_relationship_errors(changes, needle):
    item = rel()
    item.update(changes)
    with pytest.raises(InputError) as info:
        desired_relationship(item, 0, own_trust_domain='example.org')
    assert needle in str(info.value)


def test_duplicate_trust_domains_refused():
    with pytest.raises(InputError, match=r'relationships\[1\].trust_domain other.example is listed twice'):
        desired_relationships([rel(), rel(td='spiffe://other.example')])


def test_current_relationships():
    answer = {'federation_relationships': [listed('other.example'), listed('web.example', web=True, bundle=False)],
              'next_page_token': ''}
    got = current_relationships(answer)
    assert got[0] == {'trust_domain': 'other.example', 'bundle_endpoint_url': 'https://127.0.0.1:8443',
                      'bundle_endpoint_profile': 'https_spiffe', 'endpoint_spiffe_id': 'spiffe://other.example/spire/server',
                      'has_bundle': True}
    assert got[1]['bundle_endpoint_profile'] == 'https_web' and got[1]['endpoint_spiffe_id'] is None
    assert not got[1]['has_bundle']
    assert current_relationships({}) == []


def test_plan_create_update_unchanged():
    bundle = json.dumps(SERVER_BUNDLE_SPIFFE)
    desired = desired_relationships([rel(bundle=bundle), rel(td='b.example', url='https://b:1', endpoint='spiffe://b.example/s'),
                                     rel(td='c.example', profile='https_web', endpoint=None, url='https://c')])
    current = current_relationships({'federation_relationships': [
        listed('other.example'),                                     # same -> unchanged (bundle not compared)
        listed('b.example', url='https://b:2', endpoint='spiffe://b.example/s'),   # URL changed -> update
        listed('stale.example'),                                     # not desired, not managed -> kept
    ]})
    plan = plan_federation(desired, current)
    assert [r['trust_domain'] for r in plan['create']] == ['c.example']
    assert [r['trust_domain'] for r in plan['update']] == ['b.example']
    assert plan['unchanged'] == ['other.example'] and plan['delete'] == [] and plan['bootstrap'] == []
    # prune deletes only managed, undesired trust domains
    plan = plan_federation(desired, current, prune=True, managed=['stale.example', 'other.example', 'gone.example'])
    assert plan['delete'] == ['stale.example']
    assert plan_federation(desired, current, prune=True, managed=[])['delete'] == []
    assert plan_federation(desired, current, prune=False, managed=['stale.example'])['delete'] == []
    after = relationships_after(current, plan)
    assert [r['trust_domain'] for r in after] == ['b.example', 'c.example', 'other.example']
    assert [r for r in after if r['trust_domain'] == 'b.example'][0]['bundle_endpoint_url'] == 'https://b:1'
    diff = federation_diff(current, after)
    assert 'stale.example' in diff['before'] and 'stale.example' not in diff['after']


def test_plan_profile_change_and_bootstrap():
    bundle = json.dumps(SERVER_BUNDLE_SPIFFE)
    desired = desired_relationships([rel(bundle=bundle)])
    # same relationship, but the server holds no bundle yet: update with the bootstrap bundle
    plan = plan_federation(desired, current_relationships({'federation_relationships': [listed('other.example', bundle=False)]}))
    assert plan['bootstrap'] == ['other.example'] and plan['update'][0]['bundle'] == SERVER_BUNDLE_SPIFFE
    # profile changed while the server has a bundle: update, bundle left out
    plan = plan_federation(desired, current_relationships({'federation_relationships': [listed('other.example', web=True)]}))
    assert plan['bootstrap'] == [] and plan['update'][0]['bundle'] is None
    # endpoint ID changed
    plan = plan_federation(desired, current_relationships({'federation_relationships': [
        listed('other.example', endpoint='spiffe://other.example/other')]}))
    assert len(plan['update']) == 1


def test_payload_is_camel_case_like_spire_reads_it():
    spiffe = desired_relationship(rel(bundle=json.dumps(SERVER_BUNDLE_SPIFFE)), 0)
    assert relationship_payload(spiffe) == {
        'trustDomain': 'other.example', 'bundleEndpointURL': 'https://127.0.0.1:8443',
        'bundleEndpointProfile': 'https_spiffe', 'endpointSPIFFEID': 'spiffe://other.example/spire/server',
        'trustDomainBundle': SERVER_BUNDLE_SPIFFE, 'trustDomainBundleFormat': 'spiffe'}
    pem = desired_relationship(rel(profile='https_web', endpoint=None, bundle=bundle_pem(SERVER_BUNDLE), fmt='pem'), 0)
    payload = relationship_payload(pem)
    assert payload['trustDomainBundle'] == bundle_pem(SERVER_BUNDLE) and 'endpointSPIFFEID' not in payload
    data = json.loads(relationships_data([spiffe, pem]))
    assert len(data['federationRelationships']) == 2
    # without a bundle, no bundle keys at all (an update then leaves the stored bundle alone)
    assert 'trustDomainBundle' not in relationship_payload(desired_relationship(rel(), 0))


def test_unknown_jwt_key_compared_by_bytes():
    odd = dict(SERVER_BUNDLE, jwt_authorities=[{'key_id': 'k', 'public_key': 'AAAA', 'tainted': False}])
    got = authorities_from_proto(odd)
    assert got['jwt'] == {('k', ('DER', b'\x00\x00\x00'))}
    assert not same_authorities(got, authorities_from_proto(SERVER_BUNDLE))

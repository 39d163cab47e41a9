"""Unit tests for plugins/module_utils/_spire_authority.py: authority state from `localauthority show` and
`bundle show`, the step each desired state needs (SPIRE's order), upstream steps, bundle polling checks."""

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.trustroot.ops.plugins.module_utils._spire_authority import (
    InputError, authority_state, bundle_authorities, command, plan_step, plan_upstream_step, predicted_summary,
    step_visible, summary)


def ca():
    """(DER base64, Subject Key ID hex) of a fresh self-signed CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'ca')])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode(), ski.digest.hex()


CA1, CA1_ID = ca()
CA2, CA2_ID = ca()
UP1, UP1_ID = ca()
UP2, UP2_ID = ca()
JWT_KEY = ('MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELZpYejY72Sl8/cH1pSiw4DTLytuXGP2rPnA9Cac8vt7YHhgVG0K3VS8JyBcpCU8u6JTCBF'
           'HNVwq2u60CQNLmxg==')


def slot(authority_id, upstream=''):
    return {'authority_id': authority_id, 'expires_at': '1795433230', 'upstream_authority_subject_key_id': upstream}


def bundle(x509s=(), jwts=()):
    return {'trust_domain': 'example.org', 'sequence_number': '3',
            'x509_authorities': [{'asn1': asn1, 'tainted': tainted} for asn1, tainted in x509s],
            'jwt_authorities': [{'key_id': kid, 'public_key': JWT_KEY, 'expires_at': '1795433230', 'tainted': tainted}
                                for kid, tainted in jwts]}


def x509_state(show, x509s):
    return authority_state(show, bundle(x509s=x509s), 'x509')


def jwt_state(show, jwts):
    return authority_state(show, bundle(jwts=jwts), 'jwt')


# rotation stages of the X.509 CA
def FRESH():
    return x509_state({'active': slot(CA1_ID)}, [(CA1, False)])


def PREPARED():
    return x509_state({'active': slot(CA1_ID), 'prepared': slot(CA2_ID)}, [(CA1, False), (CA2, False)])


def ACTIVATED():
    return x509_state({'active': slot(CA2_ID), 'old': slot(CA1_ID)}, [(CA1, False), (CA2, False)])


def TAINTED():
    return x509_state({'active': slot(CA2_ID), 'old': slot(CA1_ID)}, [(CA1, True), (CA2, False)])


def REVOKED():
    return x509_state({'active': slot(CA2_ID), 'old': slot(CA1_ID)}, [(CA2, False)])


def test_state_reads_slots_and_bundle():
    state = PREPARED()
    assert state['active']['authority_id'] == CA1_ID and state['active']['in_bundle']
    assert state['prepared']['authority_id'] == CA2_ID and state['prepared']['expires_at_iso'] == '2026-11-23T11:27:10Z'
    assert state['old'] is None and not state['upstream']
    assert state['bundle'] == [{'authority_id': CA1_ID, 'tainted': False}, {'authority_id': CA2_ID, 'tainted': False}]
    tainted = TAINTED()
    assert tainted['old']['tainted'] and tainted['old']['in_bundle']
    assert not REVOKED()['old']['in_bundle']


def test_bundle_authorities_jwt():
    assert bundle_authorities(bundle(jwts=[('k1', True)]), 'jwt') == [{'authority_id': 'k1', 'tainted': True}]


def test_full_x509_rotation_plan():
    assert plan_step('prepared', FRESH())['action'] == 'prepare'
    assert plan_step('prepared', PREPARED()) == {'action': None, 'authority_id': CA2_ID,
                                                 'note': 'authority %s is already prepared' % CA2_ID}
    assert plan_step('activated', PREPARED()) == {'action': 'activate', 'authority_id': CA2_ID, 'note': ''}
    assert plan_step('activated', PREPARED(), CA2_ID)['action'] == 'activate'
    assert plan_step('activated', ACTIVATED())['action'] is None
    assert plan_step('activated', ACTIVATED(), CA2_ID)['action'] is None
    assert plan_step('tainted', ACTIVATED()) == {'action': 'taint', 'authority_id': CA1_ID, 'note': ''}
    assert plan_step('tainted', TAINTED())['action'] is None
    assert plan_step('tainted', REVOKED())['action'] is None
    assert plan_step('revoked', TAINTED()) == {'action': 'revoke', 'authority_id': CA1_ID, 'note': ''}
    assert plan_step('revoked', REVOKED(), CA1_ID)['note'] == 'authority %s is already revoked' % CA1_ID
    assert plan_step('show', FRESH())['action'] is None


@pytest.mark.parametrize('step,state,authority_id,needle', [
    ('activated', FRESH, None, 'there is no prepared x509 authority to activate: run state=prepared first'),
    ('activated', ACTIVATED, CA1_ID, 'only a prepared authority can be activated'),
    ('activated', PREPARED, 'nope', 'authority_id nope is neither the prepared x509 authority'),
    ('prepared', FRESH, CA2_ID, 'authority_id is not used with state=prepared'),
    ('tainted', FRESH, None, 'there is no old x509 authority to taint'),
    ('tainted', PREPARED, None, 'there is no old x509 authority to taint'),
    ('tainted', ACTIVATED, CA2_ID, 'is the active x509 authority; only the old authority'),
    ('tainted', PREPARED, CA2_ID, 'is the prepared x509 authority'),
    ('tainted', ACTIVATED, 'ffff', 'authority_id ffff is not the old x509 authority (old: %s)' % CA1_ID),
    ('revoked', ACTIVATED, None, 'is not tainted: taint it first'),
    ('revoked', FRESH, None, 'there is no old x509 authority to revoke'),
    ('revoked', TAINTED, CA2_ID, 'is the active x509 authority'),
    ('gone', FRESH, None, 'state must be one of'),
])
def test_plan_errors(step, state, authority_id, needle):
    with pytest.raises(InputError) as info:
        plan_step(step, state(), authority_id)
    assert needle in str(info.value)


def test_no_active_authority():
    with pytest.raises(InputError, match='reports no active x509 authority'):
        plan_step('show', x509_state({}, []))


def test_jwt_rotation_and_revoke_any_tainted_key():
    state = jwt_state({'active': slot('k2'), 'old': slot('k1')}, [('k0', True), ('k1', False), ('k2', False)])
    assert plan_step('tainted', state)['authority_id'] == 'k1'
    # SPIRE revokes any tainted JWT key of the bundle, not only the old slot
    assert plan_step('revoked', state, 'k0') == {'action': 'revoke', 'authority_id': 'k0', 'note': ''}
    with pytest.raises(InputError, match='is not tainted'):
        plan_step('revoked', state, 'k1')
    with pytest.raises(InputError, match='is not the old jwt authority'):
        plan_step('tainted', state, 'k0')
    with pytest.raises(InputError, match='is not the old jwt authority'):
        plan_step('revoked', state, 'unknown')


def UPSTREAM(tainted=False, revoked=False):
    return x509_state({'active': slot(CA2_ID, UP2_ID), 'old': slot(CA1_ID, UP1_ID)},
                      ([] if revoked else [(UP1, tainted)]) + [(UP2, False)])


def test_upstream_steps():
    assert UPSTREAM()['upstream']
    assert plan_upstream_step('tainted', UPSTREAM(), UP1_ID.upper()) == {'action': 'taint', 'authority_id': UP1_ID,
                                                                         'note': ''}
    assert plan_upstream_step('tainted', UPSTREAM(tainted=True), UP1_ID)['action'] is None
    assert plan_upstream_step('revoked', UPSTREAM(tainted=True), UP1_ID)['action'] == 'revoke'
    assert plan_upstream_step('revoked', UPSTREAM(revoked=True), UP1_ID)['action'] is None
    with pytest.raises(InputError, match='is not tainted: taint it first'):
        plan_upstream_step('revoked', UPSTREAM(), UP1_ID)
    with pytest.raises(InputError, match='signed the active X.509 authority'):
        plan_upstream_step('tainted', UPSTREAM(), UP2_ID)
    with pytest.raises(InputError, match='did not sign the old local authority'):
        plan_upstream_step('tainted', UPSTREAM(), 'abcd')
    with pytest.raises(InputError, match='must be a hexadecimal Subject Key ID'):
        plan_upstream_step('tainted', UPSTREAM(), 'xyz')
    with pytest.raises(InputError, match='has no UpstreamAuthority'):
        plan_upstream_step('tainted', ACTIVATED(), UP1_ID)
    with pytest.raises(InputError, match='is used with state=tainted or state=revoked'):
        plan_upstream_step('prepared', UPSTREAM(), UP1_ID)
    # local taint on an upstream-signed server is refused before any call
    with pytest.raises(InputError, match='use upstream_subject_key_id'):
        plan_step('tainted', UPSTREAM())


def test_commands():
    assert command('x509', 'prepare', None) == ['localauthority', 'x509', 'prepare']
    assert command('jwt', 'taint', 'k1') == ['localauthority', 'jwt', 'taint', '-authorityID', 'k1']
    assert command('x509', 'revoke', 'ab', upstream=True) == ['upstreamauthority', 'revoke', '-subjectKeyID', 'ab']


def test_step_visible():
    items = [{'authority_id': 'a', 'tainted': False}, {'authority_id': 'b', 'tainted': True}]
    assert step_visible('prepare', 'a', items) and not step_visible('prepare', 'c', items)
    assert step_visible('taint', 'b', items) and not step_visible('taint', 'a', items)
    assert step_visible('revoke', 'c', items) and not step_visible('revoke', 'a', items)


def test_summaries():
    before = ACTIVATED()
    assert summary(before) == {'active': CA2_ID, 'prepared': None, 'old': CA1_ID, 'bundle': [CA1_ID, CA2_ID]}
    assert predicted_summary(before, {'action': 'taint', 'authority_id': CA1_ID})['bundle'] == [
        CA1_ID + ' (tainted)', CA2_ID]
    assert predicted_summary(TAINTED(), {'action': 'revoke', 'authority_id': CA1_ID})['bundle'] == [CA2_ID]
    activated = predicted_summary(PREPARED(), {'action': 'activate', 'authority_id': CA2_ID})
    assert (activated['active'], activated['old'], activated['prepared']) == (CA2_ID, CA1_ID, None)
    prepared = predicted_summary(FRESH(), {'action': 'prepare', 'authority_id': None})
    assert prepared['prepared'] == '(new authority)' and len(prepared['bundle']) == 2
    assert summary(None) is None

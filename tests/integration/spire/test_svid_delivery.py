"""End to end: an entry declared with spire_entry makes a real agent deliver an X.509-SVID to a workload."""

import base64
import pwd
import time

from tests.lab.spire import spire_server_module_args

WORKLOAD_USER = 'nobody'


def fetch_until(agent, user, spiffe_id, timeout=60):
    """Poll `spire-agent api fetch x509` as ``user`` until an SVID with ``spiffe_id`` arrives."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        rc, body, err = agent.fetch_x509(user=user)
        last = (rc, err)
        if rc == 0 and body:
            for svid in body.get('svids') or []:
                if svid.get('spiffe_id') == spiffe_id:
                    return svid
        time.sleep(1)
    raise AssertionError('no SVID for %s after %ss; last answer: %r' % (spiffe_id, timeout, last))


def test_agent_delivers_svid_for_declared_entry(ansible, spire_server, spire_agent):
    uid = pwd.getpwnam(WORKLOAD_USER).pw_uid
    spiffe_id = spire_server.spiffe_id('workloads/nobody')
    entry = {'spiffe_id': spiffe_id, 'parent_id': spire_agent.spiffe_id, 'selectors': ['unix:uid:%d' % uid],
             'x509_svid_ttl': 600, 'dns_names': ['nobody.example.org']}
    args = dict(spire_server_module_args(spire_server), entries=[entry], entry_id_prefix='svid')

    # Before the entry exists the workload gets nothing.
    rc, body, err = spire_agent.fetch_x509(user=WORKLOAD_USER)
    assert not (body and body.get('svids')), body

    result = ansible.module('spire_entry', args)
    assert not result.get('failed'), result
    assert result['counts']['created'] == 1

    svid = fetch_until(spire_agent, WORKLOAD_USER, spiffe_id)
    from cryptography import x509
    cert = x509.load_der_x509_certificate(base64.b64decode(svid['x509_svid']))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [spiffe_id]
    assert san.get_values_for_type(x509.DNSName) == ['nobody.example.org']
    lifetime = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()
    assert 590 <= lifetime <= 620, lifetime
    # The SVID chains to the server's bundle.
    bundle = x509.load_der_x509_certificate(base64.b64decode(spire_server.bundle()['x509_authorities'][0]['asn1']))
    assert cert.issuer == bundle.subject

    # Another uid (root here) does not get this identity.
    rc, body, err = spire_agent.fetch_x509()
    assert spiffe_id not in [s.get('spiffe_id') for s in (body or {}).get('svids') or []]

    # Pruning the entry away takes the identity away from the workload.
    result = ansible.module('spire_entry', dict(args, entries=[], prune=True))
    assert result['counts']['deleted'] == 1
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rc, body, err = spire_agent.fetch_x509(user=WORKLOAD_USER)
        if not [s for s in (body or {}).get('svids') or [] if s.get('spiffe_id') == spiffe_id]:
            break
        time.sleep(1)
    else:
        raise AssertionError('the agent still delivers %s after the entry was pruned' % spiffe_id)

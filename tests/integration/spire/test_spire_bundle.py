"""spire_bundle against real spire-servers: the own bundle as SPIFFE and PEM (compared with SPIRE's own
output), setting a foreign bundle (check mode, real, idempotent by authorities), deleting it, bad inputs
(own trust domain, invalid trust domain, malformed bundle), a stopped server."""

import json
import os

from tests.lab.spire import spire_server_module_args


def run(ansible, server, check=False, diff=False, **args):
    params = dict(spire_server_module_args(server))
    params.update(args)
    return ansible.module('spire_bundle', params, check=check, diff=diff)


def run_each(ansible, server, arg_sets):
    """spire_bundle once per argument set, as the tasks of ONE ansible-playbook run (each task ignore_errors), for
    calls that do not depend on each other: the registered results in order."""
    results, _output = ansible.modules([('spire_bundle', dict(spire_server_module_args(server), **args))
                                        for args in arg_sets])
    assert len(results) == len(arg_sets)
    return results


def foreign(server):
    """{trust domain: bundle} of the federated bundles ``server`` holds (raw CLI)."""
    return dict((b['trust_domain'], b) for b in server.cli(['bundle', 'list']).get('bundles') or [])


def x509_set(bundle):
    return sorted(a['asn1'] for a in bundle['x509_authorities'])


def jwt_set(bundle):
    return sorted((a['key_id'], a['public_key']) for a in bundle['jwt_authorities'])


def test_info_own_bundle_matches_spire(ansible, spire_server):
    spiffe, pem, missing = run_each(ansible, spire_server, [
        {'state': 'show', 'format': 'spiffe'}, {'state': 'show', 'format': 'pem'},
        {'state': 'show', 'trust_domain': 'nobody.example'}])
    assert not spiffe.get('failed'), spiffe
    assert spiffe['changed'] is False and spiffe['found'] is True
    assert spiffe['trust_domain'] == spire_server.trust_domain
    # the module converts `bundle show -output json` itself; SPIRE's own SPIFFE rendering must be identical
    assert json.loads(spiffe['bundle']) == json.loads(spire_server.bundle_spiffe())
    active = spire_server.cli(['localauthority', 'x509', 'show'])['active']['authority_id']
    assert [a['authority_id'] for a in spiffe['x509_authorities']] == [active]
    jwt_active = spire_server.cli(['localauthority', 'jwt', 'show'])['active']['authority_id']
    assert [a['authority_id'] for a in spiffe['jwt_authorities']] == [jwt_active]
    assert spiffe['jwt_authorities'][0]['expires_at'] > 0 and spiffe['jwt_authorities'][0]['expires_at_iso']

    assert pem['bundle'].strip() == spire_server.bundle_pem().strip()

    assert missing['found'] is False and missing['bundle'] is None and missing['x509_authorities'] == []


def test_set_and_delete_foreign_bundle(ansible, spire_server, spire_server_b, tmp_path):
    b_bundle = spire_server_b.bundle_spiffe()
    b_td = spire_server_b.trust_domain

    check = run(ansible, spire_server, check=True, diff=True, state='present', trust_domain=b_td, bundle=b_bundle)
    assert check['changed'] is True, check
    assert check['diff']['before']['authorities'] is None
    assert len(check['diff']['after']['authorities']['x509_authorities']) == 1
    assert foreign(spire_server) == {}

    done = run(ansible, spire_server, diff=True, state='present', trust_domain='spiffe://' + b_td, bundle=b_bundle)
    assert done['changed'] is True and done['trust_domain'] == b_td, done
    stored = foreign(spire_server)[b_td]
    own_b = spire_server_b.bundle()
    assert x509_set(stored) == x509_set(own_b) and jwt_set(stored) == jwt_set(own_b)
    assert done['x509_authorities'][0]['asn1'] == own_b['x509_authorities'][0]['asn1']

    # Re-runs that must change nothing, in one playbook run: the same bundle; the same authorities in different
    # text (indentation, key order, sequence number and refresh hint do not matter); the bundle as a dictionary.
    doc = json.loads(b_bundle)
    doc['keys'] = list(reversed(doc['keys']))
    doc['spiffe_sequence'] = 42
    doc['spiffe_refresh_hint'] = 60
    path = tmp_path / 'b.json'
    path.write_text(json.dumps(doc, sort_keys=True))
    agains = run_each(ansible, spire_server, [
        {'state': 'present', 'trust_domain': b_td, 'bundle': b_bundle},
        {'state': 'present', 'trust_domain': b_td, 'bundle_path': str(path)},
        {'state': 'present', 'trust_domain': b_td, 'bundle': json.loads(b_bundle)}])
    for again in agains:
        assert again['changed'] is False, again

    # PEM holds no JWT authority: setting it is a change (the JWT key goes away)
    pem_path = tmp_path / 'b.pem'
    pem_path.write_text(spire_server_b.bundle_pem())
    pem = run(ansible, spire_server, diff=True, state='present', trust_domain=b_td, bundle_path=str(pem_path),
              format='pem')
    assert pem['changed'] is True and pem['diff']['after']['authorities']['jwt_authorities'] == [], pem
    assert foreign(spire_server)[b_td]['jwt_authorities'] == []
    assert run(ansible, spire_server, state='present', trust_domain=b_td, bundle_path=str(pem_path),
               format='pem')['changed'] is False

    info = run(ansible, spire_server, state='show', trust_domain=b_td, format='pem')
    assert info['found'] is True and info['bundle'].strip() == spire_server_b.bundle_pem().strip()

    # absent: check mode keeps it, then it is deleted, then nothing to do
    check = run(ansible, spire_server, check=True, state='absent', trust_domain=b_td)
    assert check['changed'] is True and b_td in foreign(spire_server)
    gone = run(ansible, spire_server, diff=True, state='absent', trust_domain=b_td, mode='delete')
    assert gone['changed'] is True and gone['diff']['after']['authorities'] is None, gone
    assert foreign(spire_server) == {}
    again = run(ansible, spire_server, state='absent', trust_domain=b_td)
    assert again['changed'] is False and again['found'] is False


def test_restrict_mode_refuses_bundle_in_use(ansible, spire_server, spire_server_b):
    b_td = spire_server_b.trust_domain
    spire_server.set_federated_bundle(spire_server_b)
    results = spire_server.create_entries([{
        'spiffe_id': spire_server.spiffe_id('web'), 'parent_id': spire_server.spiffe_id('node'),
        'selectors': [{'type': 'unix', 'value': 'uid:1000'}], 'federates_with': ['spiffe://' + b_td]}])
    assert results[0]['status']['code'] == 0, results
    refused = run(ansible, spire_server, state='absent', trust_domain=b_td)
    assert refused['failed'] is True and b_td in refused['msg'], refused
    assert b_td in foreign(spire_server)
    dissociated = run(ansible, spire_server, state='absent', trust_domain=b_td, mode='dissociate')
    assert dissociated['changed'] is True, dissociated
    assert foreign(spire_server) == {}
    assert spire_server.entries()[0]['federates_with'] == []


def test_bad_inputs_change_nothing(ansible, spire_server, tmp_path):
    own = spire_server.bundle_spiffe()
    missing = os.path.join(str(tmp_path), 'missing.json')
    # (args, the message contains, the message starts with): each case in one playbook run, asserted on its own.
    cases = [
        ({'state': 'present', 'trust_domain': spire_server.trust_domain, 'bundle': own},
         "trust_domain example.org is the server's own trust domain", ''),
        ({'state': 'absent', 'trust_domain': 'spiffe://example.org'}, 'own trust domain', ''),
        ({'state': 'present', 'trust_domain': 'Other Example', 'bundle': own}, '', "trust_domain: trust domain 'Other Example' may only use"),
        ({'state': 'present', 'trust_domain': 'spiffe://other.example/x', 'bundle': own},
         'trust_domain: spiffe://other.example/x is a SPIFFE ID with a path, not a trust domain', ''),
        ({'state': 'present', 'trust_domain': 'other.example', 'bundle': '{"keys": 3}'}, '', 'bundle must be a SPIFFE bundle'),
        ({'state': 'present', 'trust_domain': 'other.example', 'bundle': own, 'format': 'pem'},
         '', 'bundle holds no PEM certificate'),
        ({'state': 'present', 'trust_domain': 'other.example', 'bundle_path': missing},
         'bundle_path %s cannot be read' % missing, ''),
        ({'state': 'present', 'trust_domain': 'other.example'}, 'bundle', ''),
        ({'state': 'show', 'bundle': own}, 'only used with state=present', ''),
    ]
    results = run_each(ansible, spire_server, [args for args, _needle, _start in cases])
    for (args, needle, start), result in zip(cases, results):
        assert result['failed'] is True, (args, result)
        assert needle in result['msg'] and result['msg'].startswith(start), (args, result)

    assert foreign(spire_server) == {}


def test_unreachable_socket(ansible, spire_server, spire_server_b):
    spire_server.stop()
    result = run(ansible, spire_server, state='present', trust_domain=spire_server_b.trust_domain,
                 bundle=spire_server_b.bundle_spiffe())
    assert result['failed'] is True
    assert 'not reachable on socket_path %s' % spire_server.socket_path in result['msg'], result

"""spire_federation against two real spire-servers: an https_spiffe federation bootstrapped with
spire_bundle, relationships on both sides, `federation refresh`, each side holding the other's bundle;
bootstrap bundle in the relationship, update, prune limited to managed trust domains, bad inputs, a stopped
server."""

import json

from tests.lab.spire import spire_server_module_args


def run(ansible, server, module='spire_federation', check=False, diff=False, **args):
    params = dict(spire_server_module_args(server))
    params.update(args)
    return ansible.module(module, params, check=check, diff=diff)


def run_each(ansible, calls):
    """calls: (server, module, args) each; all of them as the tasks of ONE ansible-playbook run (each task
    ignore_errors), for calls that do not depend on each other. The registered results in order."""
    results, _output = ansible.modules([(module, dict(spire_server_module_args(server), **args))
                                        for server, module, args in calls])
    assert len(results) == len(calls)
    return results


def relationship(other, **extra):
    item = {'trust_domain': other.trust_domain, 'bundle_endpoint_url': other.bundle_endpoint_url,
            'bundle_endpoint_profile': 'https_spiffe', 'endpoint_spiffe_id': other.server_id}
    item.update(extra)
    return item


def listed(server):
    return dict((r['trust_domain'], r) for r in server.cli(['federation', 'list']).get('federation_relationships') or [])


def foreign(server):
    return dict((b['trust_domain'], b) for b in server.cli(['bundle', 'list']).get('bundles') or [])


def authorities(bundle):
    return (sorted(a['asn1'] for a in bundle['x509_authorities']),
            sorted((a['key_id'], a['public_key']) for a in bundle['jwt_authorities']))


def test_https_spiffe_federation_both_ways(ansible, spire_server, spire_server_b):
    servers = {'a': spire_server, 'b': spire_server_b}
    other = {'a': spire_server_b, 'b': spire_server}

    # 1. bootstrap: each server stores the other's bundle, read and written through spire_bundle
    shown = dict(zip(('a', 'b'), run_each(ansible, [(other[side], 'spire_bundle', {'state': 'show', 'format': 'spiffe'})
                                                    for side in ('a', 'b')])))
    for side in ('a', 'b'):
        assert shown[side]['found'] is True, shown[side]
    stored = run_each(ansible, [(servers[side], 'spire_bundle', {
        'state': 'present', 'trust_domain': shown[side]['trust_domain'], 'bundle': shown[side]['bundle']})
        for side in ('a', 'b')])
    for result in stored:
        assert result['changed'] is True, result

    # 2. relationships: check mode changes nothing, then created, then unchanged
    for side in ('a', 'b'):
        server = servers[side]
        rels = [relationship(other[side])]
        check = run(ansible, server, check=True, diff=True, relationships=rels)
        assert check['changed'] is True and check['created'] == [other[side].trust_domain], check
        assert check['diff']['before'] == {} and other[side].trust_domain in check['diff']['after']
        assert listed(server) == {}

        created = run(ansible, server, relationships=rels)
        assert created['changed'] is True and created['created'] == [other[side].trust_domain], created
        got = listed(server)[other[side].trust_domain]
        assert got['bundle_endpoint_url'] == other[side].bundle_endpoint_url
        assert got['https_spiffe']['endpoint_spiffe_id'] == other[side].server_id

        again = run(ansible, server, relationships=rels)
        assert again['changed'] is False and again['created'] == [] and again['updated'] == [], again

    # 3. refresh through the module, then raw `federation refresh`: both succeed; each side holds the other's bundle
    refreshes = run_each(ansible, [(servers[side], 'spire_federation', {
        'relationships': [relationship(other[side])], 'refresh': True}) for side in ('a', 'b')])
    for side, refreshed in zip(('a', 'b'), refreshes):
        server = servers[side]
        assert not refreshed.get('failed'), refreshed
        assert refreshed['refreshed'] == [{'trust_domain': other[side].trust_domain, 'bundle_changed': False}]
        assert refreshed['changed'] is False
        server.cli(['federation', 'refresh', '-id', other[side].trust_domain])
        held = foreign(server)[other[side].trust_domain]
        assert authorities(held) == authorities(other[side].bundle())


def test_bootstrap_bundle_in_relationship_update_and_refresh(ansible, spire_server, spire_server_b, tmp_path):
    b_td = spire_server_b.trust_domain
    bundle_path = tmp_path / 'b.json'
    bundle_path.write_text(spire_server_b.bundle_spiffe())

    created = run(ansible, spire_server, relationships=[relationship(spire_server_b,
                                                                     trust_domain_bundle_path=str(bundle_path))])
    assert created['changed'] is True, created
    assert authorities(foreign(spire_server)[b_td]) == authorities(spire_server_b.bundle())

    # a changed endpoint URL is an update; the bootstrap bundle is not sent again
    wrong_url = 'https://127.0.0.1:1'
    updated = run(ansible, spire_server, diff=True, relationships=[relationship(spire_server_b,
                  bundle_endpoint_url=wrong_url, trust_domain_bundle_path=str(bundle_path))])
    assert updated['changed'] is True and updated['updated'] == [b_td] and updated['bootstrapped'] == [], updated
    assert updated['diff']['before'][b_td]['bundle_endpoint_url'] == spire_server_b.bundle_endpoint_url
    assert updated['diff']['after'][b_td]['bundle_endpoint_url'] == wrong_url
    assert listed(spire_server)[b_td]['bundle_endpoint_url'] == wrong_url

    # refresh against an endpoint that does not answer fails the task
    failed = run(ansible, spire_server, relationships=[relationship(spire_server_b, bundle_endpoint_url=wrong_url)],
                 refresh=True)
    assert failed['failed'] is True and 'federation refresh' in failed['msg'], failed

    # B rotates its X.509 CA (prepare adds a CA to its bundle); A's refresh fetches it and reports the change
    spire_server_b.cli(['localauthority', 'x509', 'prepare'])
    fixed = run(ansible, spire_server, relationships=[relationship(spire_server_b)], refresh=True)
    assert fixed['updated'] == [b_td] and fixed['changed'] is True, fixed
    assert fixed['refreshed'] == [{'trust_domain': b_td, 'bundle_changed': True}]
    assert len(foreign(spire_server)[b_td]['x509_authorities']) == 2


def test_bootstrap_when_relationship_has_no_bundle(ansible, spire_server, spire_server_b):
    b_td = spire_server_b.trust_domain
    assert run(ansible, spire_server, relationships=[relationship(spire_server_b)])['changed'] is True
    assert b_td not in foreign(spire_server)
    bootstrapped = run(ansible, spire_server, relationships=[relationship(
        spire_server_b, trust_domain_bundle=json.loads(spire_server_b.bundle_spiffe()))])
    assert bootstrapped['changed'] is True and bootstrapped['bootstrapped'] == [b_td], bootstrapped
    assert authorities(foreign(spire_server)[b_td]) == authorities(spire_server_b.bundle())
    again = run(ansible, spire_server, relationships=[relationship(
        spire_server_b, trust_domain_bundle=spire_server_b.bundle_spiffe())])
    assert again['changed'] is False, again


def test_prune_only_managed(ansible, spire_server, spire_server_b):
    for td in ('third.example', 'fourth.example'):
        results = spire_server.cli(['federation', 'create', '-data', '-'], data={'federationRelationships': [{
            'trustDomain': td, 'bundleEndpointURL': 'https://%s' % td, 'bundleEndpointProfile': 'https_web'}]})
        assert results['results'][0]['status']['code'] == 0, results
    rels = [relationship(spire_server_b)]

    check = run(ansible, spire_server, check=True, relationships=rels, prune=True,
                managed_trust_domains=['third.example', 'spiffe://retired.example'])
    assert check['changed'] is True and check['deleted'] == ['third.example'], check
    assert set(listed(spire_server)) == {'third.example', 'fourth.example'}

    pruned = run(ansible, spire_server, relationships=rels, prune=True, managed_trust_domains=['third.example'])
    assert pruned['created'] == [spire_server_b.trust_domain] and pruned['deleted'] == ['third.example'], pruned
    assert set(listed(spire_server)) == {spire_server_b.trust_domain, 'fourth.example'}
    assert sorted(r['trust_domain'] for r in pruned['relationships']) == sorted([spire_server_b.trust_domain, 'fourth.example'])

    again = run(ansible, spire_server, relationships=rels, prune=True, managed_trust_domains=['third.example'])
    assert again['changed'] is False, again

    # an empty list with prune removes every managed relationship, and only those
    emptied = run(ansible, spire_server, relationships=[], prune=True,
                  managed_trust_domains=[spire_server_b.trust_domain])
    assert emptied['deleted'] == [spire_server_b.trust_domain], emptied
    assert set(listed(spire_server)) == {'fourth.example'}


def test_bad_inputs_change_nothing(ansible, spire_server, spire_server_b):
    good = relationship(spire_server_b)
    cases = [
        ([dict(good, bundle_endpoint_url='http://127.0.0.1:1')],
         {}, 'relationships[0].bundle_endpoint_url must use the https scheme'),
        ([dict(good, bundle_endpoint_url='https://user@127.0.0.1:1')], {}, 'must not contain user info'),
        ([dict(good, endpoint_spiffe_id=None)], {}, 'relationships[0].endpoint_spiffe_id is required'),
        ([dict(good, endpoint_spiffe_id='spiffe://other.example/a//b')], {},
         "relationships[0].endpoint_spiffe_id: SPIFFE ID 'spiffe://other.example/a//b': path '/a//b' has an empty "
         "segment"),
        ([dict(good, trust_domain='Other.Example')], {}, "relationships[0].trust_domain: trust domain 'Other.Example' may only use"),
        ([dict(good, trust_domain=spire_server.trust_domain)], {}, "is the server's own trust domain"),
        ([dict(good, trust_domain_bundle='{"keys": "x"}')], {}, 'relationships[0].trust_domain_bundle must be a SPIFFE'),
        ([good, dict(good)], {}, 'relationships[1].trust_domain other.example is listed twice'),
        ([good], {'prune': True}, 'managed_trust_domains is required with prune=true'),
        ([good], {'prune': True, 'managed_trust_domains': ['bad td']}, "managed_trust_domains[0]: trust domain 'bad td' may only use"),
        ([dict(good, bundle_endpoint_profile='spiffe')], {}, 'bundle_endpoint_profile'),
    ]
    results = run_each(ansible, [(spire_server, 'spire_federation', dict(extra, relationships=rels))
                                 for rels, extra, _needle in cases])
    for (rels, extra, needle), result in zip(cases, results):
        assert result.get('failed') is True and needle in result['msg'], (needle, result)
    assert listed(spire_server) == {}


def test_unreachable_socket(ansible, spire_server, spire_server_b):
    spire_server.stop()
    result = run(ansible, spire_server, relationships=[relationship(spire_server_b)])
    assert result['failed'] is True
    assert 'not reachable on socket_path %s' % spire_server.socket_path in result['msg'], result

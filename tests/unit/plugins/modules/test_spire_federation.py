"""spire_federation through main(), with a fake spire-server CLI at the boundary."""
import json

import pytest

from ansible_collections.trustroot.ops.plugins.modules import spire_federation

from ..module_utils.test_spire_federation import SERVER_BUNDLE, SERVER_BUNDLE_SPIFFE
from ._spire_fake import FakeSpireServerCLI

PARTNER = {'trust_domain': 'partner.example', 'bundle_endpoint_url': 'https://spire.partner.example:8443',
           'endpoint_spiffe_id': 'spiffe://partner.example/spire/server'}
OK = {'results': [{'status': {'code': 0, 'message': 'OK'}, 'federation_relationship': {'trust_domain': 'x'}}]}


def listed(rel, bundle=True):
    return {'trust_domain': rel['trust_domain'], 'bundle_endpoint_url': rel['bundle_endpoint_url'],
            'https_spiffe': {'endpoint_spiffe_id': rel['endpoint_spiffe_id']},
            'trust_domain_bundle': {'trust_domain': rel['trust_domain']} if bundle else None}


class FakeCLI(FakeSpireServerCLI):
    """A server of example.org holding ``relationships`` (federation list protos)."""

    def __init__(self, relationships=(), create_answer=None):
        super(FakeCLI, self).__init__()
        self.relationships = list(relationships)
        self.create_answer = create_answer or OK

    def answer(self, args):
        if args[:2] == ['bundle', 'show']:
            return SERVER_BUNDLE
        if args[:2] == ['federation', 'list']:
            return {'federation_relationships': self.relationships}
        if args[:2] == ['federation', 'create']:
            return self.create_answer
        if args[:2] in (['federation', 'update'], ['federation', 'delete']):
            return OK
        return super(FakeCLI, self).answer(args)

    def writes(self):
        return [c[:2] for c in self.calls if c[1] in ('create', 'update', 'delete')]


@pytest.fixture
def cli(monkeypatch):
    fake = FakeCLI()
    monkeypatch.setattr(spire_federation, 'SpireServerCLI', fake)
    return fake


def test_a_new_relationship_is_created_with_its_bootstrap_bundle(run_main, cli):
    rel = dict(PARTNER, trust_domain_bundle=SERVER_BUNDLE_SPIFFE)
    ended = run_main(spire_federation.main, {'relationships': [rel]})
    assert not ended.failed, ended.result
    assert ended.result['changed'] and ended.result['created'] == ['partner.example']
    assert cli.writes() == [['federation', 'create']]
    sent = json.loads(cli.stdin[0])['federationRelationships'][0]
    assert sent['trustDomain'] == 'partner.example' and sent['bundleEndpointURL'] == PARTNER['bundle_endpoint_url']


def test_a_matching_relationship_changes_nothing(run_main, cli):
    cli.relationships = [listed(PARTNER)]
    ended = run_main(spire_federation.main, {'relationships': [PARTNER]})
    assert not ended.failed and not ended.result['changed'] and cli.writes() == []


def test_check_mode_shows_the_diff_and_prunes_nothing(run_main, cli):
    cli.relationships = [listed(PARTNER), listed(dict(PARTNER, trust_domain='old.example'))]
    ended = run_main(spire_federation.main, {'relationships': [PARTNER], 'prune': True,
                                             'managed_trust_domains': ['old.example']}, check_mode=True, diff=True)
    assert not ended.failed and ended.result['changed'] and ended.result['deleted'] == ['old.example']
    assert sorted(ended.result['diff']['before']) == ['old.example', 'partner.example']
    assert sorted(ended.result['diff']['after']) == ['partner.example']
    assert cli.writes() == []


def test_prune_without_managed_trust_domains_fails_before_any_call(run_main, cli):
    ended = run_main(spire_federation.main, {'relationships': [PARTNER], 'prune': True})
    assert ended.failed and ended.result['msg'].startswith('managed_trust_domains is required with prune=true')
    assert cli.calls == []


def test_a_bad_endpoint_fails_naming_the_field_before_any_call(run_main, cli):
    ended = run_main(spire_federation.main, {'relationships': [dict(PARTNER, bundle_endpoint_url='ftp://x')]})
    assert ended.failed and ended.result['msg'].startswith('relationships[0].bundle_endpoint_url')
    assert cli.calls == []


def test_the_own_trust_domain_is_refused(run_main, cli):
    own = dict(PARTNER, trust_domain='example.org', endpoint_spiffe_id='spiffe://example.org/spire/server')
    ended = run_main(spire_federation.main, {'relationships': [own]})
    assert ended.failed and 'a server cannot federate with itself' in ended.result['msg'] and cli.writes() == []


def test_a_failed_create_reports_its_failures_and_the_plan(run_main, cli):
    cli.create_answer = {'results': [{'status': {'code': 3, 'message': 'bad endpoint'},
                                      'federation_relationship': {'trust_domain': 'partner.example'}}]}
    ended = run_main(spire_federation.main, {'relationships': [PARTNER]})
    assert ended.failed and 'bad endpoint' in ended.result['msg']
    assert ended.result['failures'][0]['item'] == 'partner.example'
    assert ended.result['created'] == ['partner.example']

"""spire_bundle through main(), with a fake spire-server CLI at the boundary and a real bundle of SPIRE v1.15.3."""
import copy
import json

import pytest

from ansible_collections.trustroot.ops.plugins.modules import spire_bundle

from ..module_utils.test_spire_federation import SERVER_BUNDLE, SERVER_BUNDLE_SPIFFE
from ._spire_fake import FakeSpireServerCLI, not_found

FOREIGN = 'partner.example'
OK = {'results': [{'status': {'code': 0, 'message': 'OK'}, 'bundle': {'trust_domain': FOREIGN}}]}


class FakeCLI(FakeSpireServerCLI):
    """A server of example.org holding ``foreign`` (the proto of partner.example's bundle, or None)."""

    def __init__(self, foreign=None, set_answer=None):
        super(FakeCLI, self).__init__()
        self.foreign = foreign
        self.set_answer = set_answer or OK

    def answer(self, args):
        if args[:2] == ['bundle', 'show']:
            return SERVER_BUNDLE
        if args[:2] == ['bundle', 'list']:
            return self.foreign or not_found('bundle')
        if args[:2] == ['bundle', 'set']:
            self.foreign = dict(copy.deepcopy(SERVER_BUNDLE), trust_domain=FOREIGN)
            return self.set_answer
        if args[:2] == ['bundle', 'delete']:
            self.foreign = None
            return OK
        return super(FakeCLI, self).answer(args)

    def writes(self):
        return [c[:2] for c in self.calls if c[1] in ('set', 'delete')]


def present(**extra):
    return dict({'state': 'present', 'trust_domain': FOREIGN, 'bundle': json.dumps(SERVER_BUNDLE_SPIFFE)}, **extra)


@pytest.fixture
def cli(monkeypatch):
    fake = FakeCLI()
    monkeypatch.setattr(spire_bundle, 'SpireServerCLI', fake)
    return fake


def test_a_missing_foreign_bundle_is_set_and_a_rerun_changes_nothing(run_main, cli):
    ended = run_main(spire_bundle.main, present())
    assert not ended.failed, ended.result
    assert ended.result['changed'] and not ended.result['found']
    assert cli.writes() == [['bundle', 'set']] and cli.stdin == [json.dumps(SERVER_BUNDLE_SPIFFE)]
    assert [a['authority_id'] for a in ended.result['x509_authorities']] == ['b5b56ba5a8dea37f1b6fa7759694a921c5b6a7b4']
    cli.calls = []
    ended = run_main(spire_bundle.main, present())
    assert not ended.failed and not ended.result['changed'] and ended.result['found'] and cli.writes() == []


def test_check_mode_shows_the_authorities_and_sets_nothing(run_main, cli):
    ended = run_main(spire_bundle.main, present(), check_mode=True, diff=True)
    assert not ended.failed and ended.result['changed'] and cli.writes() == []
    assert ended.result['diff']['before']['authorities'] is None
    assert ended.result['diff']['after']['authorities']


def test_absent_deletes_with_the_mode_given(run_main, cli):
    cli.foreign = dict(copy.deepcopy(SERVER_BUNDLE), trust_domain=FOREIGN)
    ended = run_main(spire_bundle.main, {'state': 'absent', 'trust_domain': FOREIGN, 'mode': 'dissociate'})
    assert not ended.failed and ended.result['changed']
    assert ['bundle', 'delete', '-id', 'spiffe://partner.example', '-mode', 'dissociate'] in cli.calls


def test_show_returns_the_own_bundle_in_the_format_asked(run_main, cli):
    ended = run_main(spire_bundle.main, {'format': 'pem'})
    assert not ended.failed and ended.result['trust_domain'] == 'example.org' and ended.result['found']
    assert ended.result['bundle'].startswith('-----BEGIN CERTIFICATE-----')


def test_the_own_trust_domain_is_never_set(run_main, cli):
    ended = run_main(spire_bundle.main, present(trust_domain='example.org'))
    assert ended.failed and 'is the server\'s own trust domain' in ended.result['msg'] and cli.writes() == []


def test_a_bad_trust_domain_fails_naming_the_field_before_any_call(run_main, cli):
    ended = run_main(spire_bundle.main, present(trust_domain='Partner.Example'))
    assert ended.failed and ended.result['msg'].startswith('trust_domain: ') and cli.calls == []


def test_a_bundle_that_is_not_one_fails_naming_the_field_before_any_call(run_main, cli):
    ended = run_main(spire_bundle.main, present(bundle='{"keys": "x"}'))
    assert ended.failed and 'bundle' in ended.result['msg'] and cli.calls == []


def test_a_failed_batch_result_is_reported_with_its_failures(run_main, cli):
    cli.set_answer = {'results': [{'status': {'code': 3, 'message': 'bad bundle'}, 'bundle': {'trust_domain': FOREIGN}}]}
    ended = run_main(spire_bundle.main, present())
    assert ended.failed and 'bad bundle' in ended.result['msg']
    assert ended.result['failures'] and ended.result['failures'][0]['message'] == 'bad bundle'

"""spire_agent through main(), with a fake spire-server CLI at the boundary."""
import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._spire import SpireError
from ansible_collections.trustroot.ops.plugins.modules import spire_agent

from ._spire_fake import FakeSpireServerCLI, not_found

AGENT = 'spiffe://example.org/spire/agent/join_token/t1'


class FakeCLI(FakeSpireServerCLI):
    """A server knowing ``agents`` (SPIFFE ID -> raw agent)."""

    def __init__(self, agents, purge_answer=None):
        super(FakeCLI, self).__init__()
        self.agents = agents
        self.purge_answer = purge_answer

    def answer(self, args):
        if args[:2] == ['bundle', 'show']:
            return {'trust_domain': 'example.org'}
        if args[:2] == ['agent', 'show']:
            return self.agents.get(args[3]) or not_found('agent')
        if args[:2] == ['agent', 'purge']:
            return self.purge_answer
        if args[:2] in (['agent', 'evict'], ['agent', 'ban']):
            return {}
        return super(FakeCLI, self).answer(args)

    def mutations(self):
        return [c for c in self.calls if c[1] in ('evict', 'ban') or (c[1] == 'purge' and '-dryRun' not in c)]


def raw_agent(banned=False):
    return {'id': {'trust_domain': 'example.org', 'path': '/spire/agent/join_token/t1'}, 'banned': banned,
            'attestation_type': 'join_token', 'x509svid_expires_at': 1900000000}


@pytest.fixture
def cli(monkeypatch):
    fake = FakeCLI({AGENT: raw_agent()})
    monkeypatch.setattr(spire_agent, 'SpireServerCLI', fake)
    return fake


def test_a_non_agent_id_fails_naming_the_field_before_any_call(run_main, cli):
    ended = run_main(spire_agent.main, {'state': 'evicted', 'spiffe_id': 'spiffe://example.org/web'})
    assert ended.failed and ended.result['msg'].startswith('spiffe_id must be an agent ID')
    assert cli.calls == []


def test_spiffe_id_with_purge_is_refused(run_main, cli):
    ended = run_main(spire_agent.main, {'state': 'purged', 'spiffe_id': AGENT})
    assert ended.failed and 'spiffe_id is not used with state=purged' in ended.result['msg']
    assert cli.calls == []


def test_check_mode_plans_the_eviction_and_calls_nothing_that_changes(run_main, cli):
    ended = run_main(spire_agent.main, {'state': 'evicted', 'spiffe_id': AGENT}, check_mode=True, diff=True)
    assert not ended.failed, ended.result
    assert ended.result['changed'] is True and ended.result['state_after'] == 'absent'
    assert ended.result['diff']['after'] == {'spiffe_id': AGENT, 'state': 'absent'}
    assert cli.mutations() == []


def test_evict_then_evict_again_changes_nothing(run_main, cli):
    ended = run_main(spire_agent.main, {'state': 'evicted', 'spiffe_id': AGENT})
    assert ended.result['changed'] is True
    assert cli.mutations() == [['agent', 'evict', '-spiffeID', AGENT]]
    del cli.agents[AGENT]
    again = run_main(spire_agent.main, {'state': 'evicted', 'spiffe_id': AGENT})
    assert again.result['changed'] is False and again.result['agent'] is None


def test_banning_an_unknown_agent_fails_naming_it(run_main, cli):
    del cli.agents[AGENT]
    ended = run_main(spire_agent.main, {'state': 'banned', 'spiffe_id': AGENT})
    assert ended.failed and 'is not an attested agent' in ended.result['msg']


def test_a_server_error_fails_with_its_message(run_main, monkeypatch):
    class Broken(FakeCLI):
        def answer(self, args):
            return SpireError('spire-server bundle show: connection refused')
    monkeypatch.setattr(spire_agent, 'SpireServerCLI', Broken({}))
    ended = run_main(spire_agent.main, {'state': 'evicted', 'spiffe_id': AGENT})
    assert ended.failed and ended.result['msg'] == 'spire-server bundle show: connection refused'


def test_purge_errors_fail_with_the_partial_result(run_main, monkeypatch):
    answer = {'expired_agents': [{'agent_id': {'trust_domain': 'example.org', 'path': '/spire/agent/x/1'},
                                  'deleted': True},
                                 {'agent_id': {'trust_domain': 'example.org', 'path': '/spire/agent/x/2'},
                                  'deleted': False, 'error': 'datastore busy'}]}
    fake = FakeCLI({}, purge_answer=answer)
    monkeypatch.setattr(spire_agent, 'SpireServerCLI', fake)
    ended = run_main(spire_agent.main, {'state': 'purged'})
    assert ended.failed and ended.result['msg'].startswith('1 expired agents could not be purged')
    assert ended.result['changed'] is True and len(ended.result['purged']) == 2

"""spire_agent_info through main(), with a fake spire-server client at the boundary."""
import pytest

from ansible_collections.trustroot.ops.plugins.modules import spire_agent_info

from ._spire_fake import FakeSpireServerCLI, not_found

AGENT = 'spiffe://example.org/spire/agent/join_token/t1'
RAW = {'id': {'trust_domain': 'example.org', 'path': '/spire/agent/join_token/t1'}, 'banned': False,
       'attestation_type': 'join_token', 'x509svid_expires_at': 1900000000}


class FakeCLI(FakeSpireServerCLI):
    def answer(self, args):
        if args[:2] == ['agent', 'show']:
            return RAW if args[3] == AGENT else not_found('agent')
        if args[:2] == ['agent', 'list']:
            return {'agents': [RAW]}
        return super(FakeCLI, self).answer(args)


@pytest.fixture
def cli(monkeypatch):
    fake = FakeCLI()
    monkeypatch.setattr(spire_agent_info, 'SpireServerCLI', fake)
    return fake


def test_non_agent_id_fails_naming_the_field_before_any_call(run_main, cli):
    ended = run_main(spire_agent_info.main, {'spiffe_id': 'spiffe://example.org/web'})
    assert ended.failed and ended.result['msg'].startswith('spiffe_id must be an agent ID') and cli.calls == []


def test_one_agent_and_an_unknown_one(run_main, cli):
    ended = run_main(spire_agent_info.main, {'spiffe_id': AGENT}, check_mode=True)
    assert not ended.failed and ended.result['count'] == 1 and ended.result['agent']['spiffe_id'] == AGENT
    ended = run_main(spire_agent_info.main, {'spiffe_id': 'spiffe://example.org/spire/agent/join_token/t2'})
    assert not ended.failed and ended.result == {'changed': False, 'agents': [], 'count': 0, 'agent': None}


def test_list(run_main, cli):
    ended = run_main(spire_agent_info.main, {'banned': False})
    assert not ended.failed and ended.result['count'] == 1 and ended.result['changed'] is False
    assert cli.calls[0][:2] == ['agent', 'list']

"""spire_authority through main() (JWT authorities: no certificates needed), with a stateful fake spire-server
client at the boundary."""
import pytest

from ansible_collections.trustroot.ops.plugins.modules import spire_authority

from ._spire_fake import FakeSpireServerCLI

JWT_KEY = ('MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELZpYejY72Sl8/cH1pSiw4DTLytuXGP2rPnA9Cac8vt7YHhgVG0K3VS8JyBcpCU8u6JTCBF'
           'HNVwq2u60CQNLmxg==')


def slot(authority_id):
    return {'authority_id': authority_id, 'expires_at': '1795433230', 'upstream_authority_subject_key_id': ''}


class FakeServer(FakeSpireServerCLI):
    """One SPIRE server's JWT authorities: ``localauthority jwt prepare`` adds k2 to the slots and the bundle."""

    def __init__(self):
        super(FakeServer, self).__init__()
        self.show = {'active': slot('k1')}
        self.kids = ['k1']

    def answer(self, args):
        if args == ['localauthority', 'jwt', 'show']:
            return dict(self.show)
        if args == ['bundle', 'show']:
            return {'trust_domain': 'example.org', 'x509_authorities': [],
                    'jwt_authorities': [{'key_id': kid, 'public_key': JWT_KEY, 'expires_at': '1795433230',
                                         'tainted': False} for kid in self.kids]}
        if args == ['localauthority', 'jwt', 'prepare']:
            self.show['prepared'] = slot('k2')
            self.kids.append('k2')
            return {'prepared_authority': slot('k2')}
        return super(FakeServer, self).answer(args)

    def mutations(self):
        return [c for c in self.calls if c[-1] != 'show']


@pytest.fixture
def server(monkeypatch):
    fake = FakeServer()
    monkeypatch.setattr(spire_authority, 'SpireServerCLI', fake)
    return fake


def test_authority_id_with_show_fails_naming_it_before_any_call(run_main, server):
    ended = run_main(spire_authority.main, {'authority_type': 'jwt', 'state': 'show', 'authority_id': 'k1'})
    assert ended.failed and ended.result['msg'].startswith('authority_id must be') and server.calls == []


def test_upstream_with_jwt_is_refused(run_main, server):
    ended = run_main(spire_authority.main, {'authority_type': 'jwt', 'state': 'tainted', 'upstream_subject_key_id': 'ab'})
    assert ended.failed and ended.result['msg'].startswith('upstream_subject_key_id') and server.calls == []


def test_prepared_in_check_mode_changes_nothing(run_main, server):
    ended = run_main(spire_authority.main, {'authority_type': 'jwt', 'state': 'prepared'}, check_mode=True, diff=True)
    assert not ended.failed, ended.result
    assert ended.result['changed'] is True and ended.result['action'] == 'prepare'
    assert server.mutations() == [] and ended.result['diff']['before']['prepared'] is None


def test_prepared_applies_then_is_idempotent(run_main, server):
    first = run_main(spire_authority.main, {'authority_type': 'jwt', 'state': 'prepared', 'wait': True})
    assert not first.failed, first.result
    assert (first.result['changed'], first.result['action'], first.result['authority_id']) == (True, 'prepare', 'k2')
    assert first.result['prepared']['authority_id'] == 'k2'
    assert server.mutations() == [['localauthority', 'jwt', 'prepare']]
    second = run_main(spire_authority.main, {'authority_type': 'jwt', 'state': 'prepared'})
    assert not second.failed and second.result['changed'] is False and second.result['action'] is None
    assert server.mutations() == [['localauthority', 'jwt', 'prepare']]

"""spire_entry_info through main(), with a fake spire-server CLI at the boundary."""
import pytest

from ansible_collections.trustroot.ops.plugins.modules import spire_entry_info

from ._spire_fake import FakeSpireServerCLI, not_found


def raw_entry(entry_id, path, parent='/spire/agent/join_token/t1', **extra):
    entry = {'id': entry_id, 'spiffe_id': {'trust_domain': 'example.org', 'path': path},
             'parent_id': {'trust_domain': 'example.org', 'path': parent},
             'selectors': [{'type': 'unix', 'value': 'uid:1000'}], 'x509_svid_ttl': 3600,
             'revision_number': '2', 'created_at': '1700000000'}
    entry.update(extra)
    return entry


ENTRIES = [raw_entry('trustroot.web', '/web'), raw_entry('trustroot.api', '/api'), raw_entry('other-db', '/db')]


class FakeCLI(FakeSpireServerCLI):
    def answer(self, args):
        if args[:2] == ['bundle', 'show']:
            return {'trust_domain': 'example.org'}
        if args[:3] == ['entry', 'show', '-entryID']:
            found = [e for e in ENTRIES if e['id'] == args[3]]
            return {'entries': found} if found else not_found('entry')
        if args[:2] == ['entry', 'show']:
            return {'entries': ENTRIES}
        return super(FakeCLI, self).answer(args)


@pytest.fixture
def cli(monkeypatch):
    fake = FakeCLI()
    monkeypatch.setattr(spire_entry_info, 'SpireServerCLI', fake)
    return fake


def test_entries_come_sorted_and_readable(run_main, cli):
    ended = run_main(spire_entry_info.main, {})
    assert not ended.failed, ended.result
    assert not ended.result['changed'] and ended.result['count'] == 3 and ended.result['trust_domain'] == 'example.org'
    assert sorted(e['spiffe_id'] for e in ended.result['entries']) == [
        'spiffe://example.org/api', 'spiffe://example.org/db', 'spiffe://example.org/web']
    web = [e for e in ended.result['entries'] if e['entry_id'] == 'trustroot.web'][0]
    assert web['selectors'] == ['unix:uid:1000'] and web['revision_number'] == 2 and web['x509_svid_ttl'] == 3600


def test_an_owner_prefix_keeps_only_the_owned_entries(run_main, cli):
    ended = run_main(spire_entry_info.main, {'entry_id_prefix': 'trustroot'})
    assert sorted(e['entry_id'] for e in ended.result['entries']) == ['trustroot.api', 'trustroot.web']


def test_an_unknown_entry_id_finds_nothing(run_main, cli):
    ended = run_main(spire_entry_info.main, {'entry_id': 'missing'})
    assert not ended.failed and ended.result['entries'] == [] and ended.result['count'] == 0


def test_filters_become_cli_flags(run_main, cli):
    run_main(spire_entry_info.main, {'spiffe_id': 'spiffe://example.org/web', 'selectors': ['unix:uid:1000'],
                                     'federates_with': ['partner.example'], 'downstream': True})
    assert cli.calls[-1] == ['entry', 'show', '-spiffeID', 'spiffe://example.org/web', '-selector', 'unix:uid:1000',
                             '-matchSelectorsOn', 'superset', '-federatesWith', 'spiffe://partner.example',
                             '-matchFederatesWithOn', 'superset', '-downstream']


def test_a_bad_selector_fails_naming_it_before_any_call(run_main, cli):
    ended = run_main(spire_entry_info.main, {'selectors': ['no-colon']})
    assert ended.failed and ended.result['msg'].startswith('selectors[0]') and cli.calls == []


def test_an_id_of_another_trust_domain_is_refused(run_main, cli):
    ended = run_main(spire_entry_info.main, {'spiffe_id': 'spiffe://other.org/web'})
    assert ended.failed and "not in the server's trust domain 'example.org'" in ended.result['msg']
    assert cli.calls == [['bundle', 'show']]

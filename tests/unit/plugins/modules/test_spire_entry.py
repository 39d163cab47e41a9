"""spire_entry through main(), against a small in-memory entry store behind the fake spire-server CLI: the plan,
the batches it sends, the results and the failures reported with what was applied."""
import itertools
import json

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils import _spire_entry_apply
from ansible_collections.trustroot.ops.plugins.module_utils._spire import SpireError
from ansible_collections.trustroot.ops.plugins.modules import spire_entry

from ._spire_fake import FakeSpireServerCLI

TD = 'example.org'
PARENT = 'spiffe://example.org/spire/agent/join_token/t1'


def as_id(value):
    """spiffe://td/path -> the {trust_domain, path} object `entry show -output json` prints."""
    trust_domain, path = value[len('spiffe://'):].split('/', 1)
    return {'trust_domain': trust_domain, 'path': '/' + path}


class EntryStore(FakeSpireServerCLI):
    """Entries kept as the server prints them. ``refuse`` holds SPIFFE IDs whose creation the server refuses
    (InvalidArgument); ``broken`` an action ('create', 'update', 'delete') whose command fails as a whole."""

    def __init__(self):
        super(EntryStore, self).__init__()
        self.entries = {}
        self.refuse = set()
        self.broken = None
        self.ids = ('generated-%d' % n for n in itertools.count(1))

    def add(self, entry_id, path, selectors=('unix:uid:1000',), **extra):
        raw = {'id': entry_id, 'spiffe_id': as_id('spiffe://%s%s' % (TD, path)), 'parent_id': as_id(PARENT),
               'selectors': [dict(zip(('type', 'value'), s.split(':', 1))) for s in selectors]}
        raw.update(extra)
        self.entries[entry_id] = raw

    def key(self, raw):
        return (json.dumps(raw['spiffe_id'], sort_keys=True), json.dumps(raw['parent_id'], sort_keys=True),
                sorted((s['type'], s['value']) for s in raw['selectors']))

    def stored(self, sent, entry_id):
        raw = dict((k, v) for k, v in sent.items() if k not in ('entry_id', 'entryExpiry'))
        raw.update(id=entry_id, spiffe_id=as_id(sent['spiffe_id']), parent_id=as_id(sent['parent_id']),
                   expires_at=sent.get('entryExpiry') or 0)
        return raw

    def answer(self, args):
        action = args[1] if len(args) > 1 else None
        if action == self.broken:
            return SpireError('spire-server entry %s: the server is not reachable on socket_path %s'
                              % (action, self.socket_path))
        if args[:2] == ['bundle', 'show']:
            return {'trust_domain': TD}
        if args[:2] == ['entry', 'show']:
            return {'entries': [e for e in self.entries.values() if self.matches(e, args[2:])]}
        data = json.loads(self.stdin[-1])
        if action == 'create':
            return {'results': [self.create(sent) for sent in data['entries']]}
        if action == 'update':
            return {'results': [self.update(sent) for sent in data['entries']]}
        if action == 'delete':
            return {'results': [self.delete(entry_id) for entry_id in data['ids']]}
        return super(EntryStore, self).answer(args)

    def matches(self, raw, filters):
        wanted = dict(zip(filters[::2], filters[1::2]))
        if '-entryID' in wanted:
            return raw['id'] == wanted['-entryID']
        if '-spiffeID' in wanted:
            return raw['spiffe_id'] == as_id(wanted['-spiffeID']) and raw['parent_id'] == as_id(wanted['-parentID'])
        return True

    def create(self, sent):
        if sent['spiffe_id'] in self.refuse:
            return {'status': {'code': 3, 'message': 'invalid argument: refused by the test'}}
        candidate = self.stored(sent, sent.get('entry_id') or next(self.ids))
        if any(self.key(e) == self.key(candidate) for e in self.entries.values()):
            return {'status': {'code': 6, 'message': 'similar entry already exists'}}
        self.entries[candidate['id']] = candidate
        return {'status': {'code': 0, 'message': 'OK'}, 'entry': candidate}

    def update(self, sent):
        self.entries[sent['entry_id']] = self.stored(sent, sent['entry_id'])
        return {'status': {'code': 0, 'message': 'OK'}}

    def delete(self, entry_id):
        if self.entries.pop(entry_id, None) is None:
            return {'status': {'code': 5, 'message': 'not found'}}
        return {'status': {'code': 0, 'message': 'OK'}}

    def commands(self, action):
        return [c for c in self.calls if c[:2] == ['entry', action]]


@pytest.fixture
def cli(monkeypatch):
    store = EntryStore()
    monkeypatch.setattr(_spire_entry_apply, 'SpireServerCLI', store)
    return store


def desired(path, **extra):
    entry = {'spiffe_id': 'spiffe://%s%s' % (TD, path), 'parent_id': PARENT, 'selectors': ['unix:uid:1000']}
    entry.update(extra)
    return entry


def owned_args(*entries, **extra):
    args = {'entries': list(entries), 'entry_id_prefix': 'team', 'prune': True}
    args.update(extra)
    return args


def test_new_entries_are_created_in_one_batch_with_owned_ids(run_main, cli):
    ended = run_main(spire_entry.main, owned_args(desired('/web'), desired('/api')))
    assert not ended.failed, ended.result
    assert ended.result['changed'] and ended.result['counts']['created'] == 2
    assert len(cli.commands('create')) == 1
    assert all(entry_id.startswith('team.') for entry_id in cli.entries)
    assert sorted(e['spiffe_id'] for e in ended.result['created']) == [
        'spiffe://example.org/api', 'spiffe://example.org/web']


def test_a_second_run_changes_nothing(run_main, cli):
    first = run_main(spire_entry.main, owned_args(desired('/web', x509_svid_ttl=600)))
    assert not first.failed, first.result
    again = run_main(spire_entry.main, owned_args(desired('/web', x509_svid_ttl=600)))
    assert not again.failed and not again.result['changed']
    assert again.result['counts'] == {'created': 0, 'updated': 0, 'deleted': 0, 'unchanged': 1, 'conflicts': 0}
    assert len(cli.commands('create')) == 1 and not cli.commands('update')


def test_check_mode_plans_with_a_diff_and_sends_nothing(run_main, cli):
    cli.add('team.old', '/old')
    ended = run_main(spire_entry.main, owned_args(desired('/web')), check_mode=True, diff=True)
    assert not ended.failed and ended.result['changed']
    assert (ended.result['counts']['created'], ended.result['counts']['deleted']) == (1, 1)
    assert ended.result['diff']['before'] and ended.result['diff']['after']
    assert not (cli.commands('create') or cli.commands('delete'))
    assert list(cli.entries) == ['team.old']


def test_prune_deletes_owned_entries_only_and_updates_changed_fields(run_main, cli):
    cli.add('team.web', '/web', x509_svid_ttl=600)
    cli.add('team.gone', '/gone')
    cli.add('someone-else', '/theirs')
    ended = run_main(spire_entry.main, owned_args(desired('/web', x509_svid_ttl=900)))
    assert not ended.failed, ended.result
    counts = ended.result['counts']
    assert (counts['updated'], counts['deleted'], counts['created']) == (1, 1, 0)
    assert ended.result['updated'][0]['changes'] == {'x509_svid_ttl': {'before': 600, 'after': 900}}
    assert sorted(cli.entries) == ['someone-else', 'team.web']
    assert cli.entries['team.web']['x509_svid_ttl'] == 900


def test_a_refused_entry_fails_the_task_after_the_others_were_applied(run_main, cli):
    cli.refuse.add('spiffe://example.org/bad')
    ended = run_main(spire_entry.main, owned_args(desired('/web'), desired('/bad')))
    assert ended.failed and ended.result['changed']
    assert ended.result['msg'].startswith('SPIRE refused 1 of 2 entry changes; the other changes were applied '
                                          '(1 created, 0 updated, 0 deleted)')
    assert [f['code'] for f in ended.result['failures']] == [3]
    assert ended.result['counts']['created'] == 1


def test_a_command_that_fails_as_a_whole_reports_what_is_unconfirmed(run_main, cli):
    cli.add('team.gone', '/gone')
    cli.broken = 'create'
    ended = run_main(spire_entry.main, owned_args(desired('/web'), desired('/api')))
    assert ended.failed and ended.result['changed'] is True
    assert ended.result['unconfirmed'] == 2
    assert 'not reachable on socket_path' in ended.result['msg']
    assert not cli.commands('delete'), 'nothing more is sent after a command failed'


def test_a_concurrent_creation_of_the_same_entry_counts_as_unchanged(run_main, cli):
    # Only a few entries and no prune: they are read one by one. The first read finds nothing; the entry
    # appears before the creation (another run made it).
    reads = []
    original = cli.answer

    def racing(args):
        if args[:3] == ['entry', 'show', '-spiffeID'] and not reads:
            reads.append(args)
            answer = original(args)
            cli.add('team.other-run', '/web')
            return answer
        return original(args)
    cli.answer = racing
    ended = run_main(spire_entry.main, {'entries': [desired('/web')], 'entry_id_prefix': 'team'})
    assert not ended.failed, ended.result
    assert ended.result['counts']['unchanged'] == 1 and ended.result['counts']['created'] == 0
    assert not ended.result['changed']


@pytest.mark.parametrize('extra, field', [({'batch_size': 0}, 'batch_size'), ({'parallel': 9}, 'parallel'),
                                          ({'state': 'absent'}, 'prune'), ({'entry_id_prefix': 'team.'},
                                                                           'entry_id_prefix')])
def test_bad_options_fail_naming_the_field_before_any_change(run_main, cli, extra, field):
    ended = run_main(spire_entry.main, owned_args(desired('/web'), **extra))
    assert ended.failed and ended.result['msg'].startswith(field + ':')
    assert not (cli.commands('create') or cli.commands('update') or cli.commands('delete'))


def test_an_entry_of_another_trust_domain_fails_naming_it(run_main, cli):
    ended = run_main(spire_entry.main, owned_args(desired('/web', spiffe_id='spiffe://other.org/web')))
    assert ended.failed and 'spiffe_id' in ended.result['msg'] and 'other.org' in ended.result['msg']
    assert not cli.commands('create')


def test_an_unreadable_entries_file_fails_naming_it(run_main, cli, tmp_path):
    missing = str(tmp_path / 'entries.json')
    ended = run_main(spire_entry.main, {'entries_file': missing, 'entry_id_prefix': 'team'})
    assert ended.failed and ended.result['msg'].startswith('entries_file: cannot read %s' % missing)


def test_entries_from_a_file_are_applied(run_main, cli, tmp_path):
    path = tmp_path / 'entries.json'
    path.write_text(json.dumps({'entries': [desired('/web'), desired('/api')]}))
    ended = run_main(spire_entry.main, {'entries_file': str(path), 'entry_id_prefix': 'team'})
    assert not ended.failed, ended.result
    assert ended.result['counts']['created'] == 2


@pytest.mark.parametrize('answer', [{}, {'trust_domain': ''}, {'trust_domain': 7}])
def test_a_bundle_answer_without_a_trust_domain_fails_naming_the_call(run_main, cli, answer):
    original = cli.answer
    cli.answer = lambda args: answer if args[:2] == ['bundle', 'show'] else original(args)
    ended = run_main(spire_entry.main, owned_args(desired('/web')))
    assert ended.failed
    assert ended.result['msg'] == ('spire-server bundle show answered no trust_domain (socket_path %s)'
                                   % cli.socket_path)
    assert not cli.commands('create')

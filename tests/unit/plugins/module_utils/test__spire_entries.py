"""Unit tests for the pure entry diff (plugins/module_utils/_spire_entries.py)."""

import json
import re

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils import _spire_entries as se
from ansible_collections.trustroot.ops.plugins.module_utils._spire_entries import (
    EntryInputError, bind_trust_domain, build_diff, changed_fields, check_prefix, describe_key, key_of,
    normalize_current, normalize_desired_list, owned, plan_absent, plan_present, to_input)

TD = 'example.org'
AGENT = 'spiffe://example.org/spire/agent/join_token/abc'


def desired(*raws, **kwargs):
    return bind_trust_domain(normalize_desired_list(list(raws), kwargs.get('state', 'present')), TD)


def raw(i, **extra):
    entry = {'spiffe_id': 'spiffe://example.org/w%d' % i, 'parent_id': AGENT,
             'selectors': ['unix:uid:%d' % i, 'unix:gid:%d' % i]}
    entry.update(extra)
    return entry


def shown(i, entry_id, **extra):
    """An entry in the `entry show -output json` shape."""
    entry = {'id': entry_id, 'spiffe_id': {'trust_domain': TD, 'path': '/w%d' % i},
             'parent_id': {'trust_domain': TD, 'path': '/spire/agent/join_token/abc'},
             'selectors': [{'type': 'unix', 'value': 'uid:%d' % i}, {'type': 'unix', 'value': 'gid:%d' % i}],
             'x509_svid_ttl': 0, 'jwt_svid_ttl': 0, 'federates_with': [], 'dns_names': [], 'admin': False,
             'downstream': False, 'hint': '', 'store_svid': False, 'expires_at': '0', 'revision_number': '0',
             'created_at': '1795346797'}
    entry.update(extra)
    return entry


def current(*entries):
    return [normalize_current(e) for e in entries]


# --- normalisation ------------------------------------------------------------------------------------------

def test_defaults_and_sorting():
    [entry] = desired(raw(1, selectors=['unix:uid:1', 'k8s:ns:a', 'unix:uid:1'], federates_with=['spiffe://b.org', 'a.org']))
    assert entry.selectors == ('k8s:ns:a', 'unix:uid:1')
    assert entry.federates_with == ('a.org', 'b.org')
    assert (entry.x509_svid_ttl, entry.jwt_svid_ttl, entry.hint, entry.admin, entry.dns_names) == (0, 0, '', False, ())
    assert entry.id is None


def test_module_defaults_equal_missing_fields():
    """The module's argument spec fills every suboption; that must normalise like omitted fields."""
    filled = dict(raw(1), node=False, entry_id=None, x509_svid_ttl=0, jwt_svid_ttl=0, federates_with=[], dns_names=[],
                  admin=False, downstream=False, hint='', store_svid=False, expires_at=0,
                  disable_x509_svid_prefetch=False, jwt_svid_include_jti=False)
    assert desired(filled) == desired(raw(1))


def test_current_normalises_to_the_same_entry():
    [want] = desired(raw(3, hint='h', dns_names=['a.example.org'], x509_svid_ttl=60, federates_with=['o.org']))
    [have] = current(shown(3, 'p.1', hint='h', dns_names=['a.example.org'], x509_svid_ttl=60,
                           federates_with=['o.org'], selectors=list(reversed(shown(3, 'x')['selectors']))))
    assert key_of(have) == key_of(want)
    assert changed_fields(have, want) == {}
    assert have.id == 'p.1'
    attrs = current(shown(1, 'x', additional_attributes={'disable_x509_svid_prefetch': True}))[0]
    assert attrs.disable_x509_svid_prefetch is True and attrs.jwt_svid_include_jti is False


@pytest.mark.parametrize('bad, message', [
    ({'spiffe_id': None}, 'entries[0].spiffe_id: is required'),
    ({'parent_id': None}, 'entries[0].parent_id: is required'),
    ({'selectors': []}, 'entries[0].selectors: at least one'),
    ({'selectors': {'unix': 'uid:1'}}, 'entries[0].selectors: must be a list'),
    ({'selectors': ['nocolon']}, 'entries[0].selectors[0]: selector'),
    ({'x509_svid_ttl': -1}, 'entries[0].x509_svid_ttl: must be >= 0'),
    ({'jwt_svid_ttl': 'ten'}, 'entries[0].jwt_svid_ttl: must be an integer'),
    ({'jwt_svid_ttl': 2 ** 31}, 'entries[0].jwt_svid_ttl: must be at most'),
    ({'expires_at': -3}, 'entries[0].expires_at: must be >= 0'),
    ({'admin': 'maybe'}, 'entries[0].admin: must be a boolean'),
    ({'dns_names': ['a..b']}, 'entries[0].dns_names[0]'),
    ({'hint': 'x' * 1025}, 'entries[0].hint: is longer than 1024'),
    ({'entry_id': 'a/b'}, 'entries[0].entry_id: may only use'),
    ({'entry_id': 'a' * 256}, 'entries[0].entry_id: is longer than 255'),
    ({'node': True}, 'node and parent_id are mutually exclusive'),
    ({'bogus': 1}, 'entries[0]: unknown field(s) bogus'),
    ({'store_svid': True, 'selectors': ['unix:uid:1', 'k8s:ns:x']}, 'same type'),
    ({'store_svid': True, 'disable_x509_svid_prefetch': True}, 'mutually exclusive'),
    ({'federates_with': ['Bad.Org']}, 'entries[0].federates_with[0]'),
    ({'spiffe_id': 'spiffe://example.org/spire/w'}, '/spire namespace'),
])
def test_input_errors_name_the_field(bad, message):
    with pytest.raises(EntryInputError) as info:
        desired(raw(0, **bad))
    assert message in str(info.value)


def test_trust_domain_binding():
    with pytest.raises(EntryInputError, match=r"entries\[1\]\.parent_id: .* 'other\.org', not in the server's trust "
                                              r"domain 'example\.org'"):
        desired(raw(0), raw(1, parent_id='spiffe://other.org/agent'))
    with pytest.raises(EntryInputError, match=r'entries\[0\]\.spiffe_id'):
        desired(raw(0, spiffe_id='spiffe://other.org/w'))
    with pytest.raises(EntryInputError, match="own trust domain"):
        desired(raw(0, federates_with=['example.org']))
    [node] = desired({'spiffe_id': 'spiffe://example.org/nodes/a', 'node': True, 'selectors': ['x509pop:ca:x']})
    assert node.parent_id == 'spiffe://example.org/spire/server'


def test_duplicates():
    with pytest.raises(EntryInputError, match=r'entries\[1\]: same SPIFFE ID, parent ID and selectors as entries\[0\]'):
        desired(raw(0), raw(0, selectors=['unix:gid:0', 'unix:uid:0'], hint='other fields do not matter'))
    with pytest.raises(EntryInputError, match=r'entries\[1\]\.entry_id: a is also given in entries\[0\]'):
        desired(raw(0, entry_id='a'), raw(1, entry_id='a'))


def test_prefix_rules():
    assert check_prefix('team-a.prod') == 'team-a.prod'
    for bad in ('', 'a b', 'a/b', 'x.', 'a' * 219):
        with pytest.raises(EntryInputError, match='entry_id_prefix'):
            check_prefix(bad)
    assert owned('team.123', 'team') and not owned('team2.123', 'team') and not owned('team', 'team')
    assert owned('anything', None)
    assert re.match(r'^team\.[0-9a-f-]{36}$', se.new_entry_id('team'))


# --- plans ----------------------------------------------------------------------------------------------------

def test_plan_create_update_unchanged_with_prefix():
    want = desired(raw(1), raw(2, x509_svid_ttl=600), raw(3))
    have = current(shown(1, 'p.a'), shown(2, 'p.b', x509_svid_ttl=60))
    plan = plan_present(want, iter(have), prefix='p')
    assert plan.unchanged == 1
    assert [(c.id, d.id, d.x509_svid_ttl) for c, d in plan.update] == [('p.b', 'p.b', 600)]
    [created] = plan.create
    assert created.spiffe_id == 'spiffe://example.org/w3' and created.id.startswith('p.')
    assert plan.delete == [] and plan.conflicts == []
    assert plan.counts() == {'created': 1, 'updated': 1, 'deleted': 0, 'unchanged': 1, 'conflicts': 0}
    assert changed_fields(*plan.update[0]) == {'x509_svid_ttl': {'before': 60, 'after': 600}}


def test_plan_without_prefix_lets_the_server_choose_ids_and_manages_by_key():
    want = desired(raw(1, hint='new'), raw(2))
    plan = plan_present(want, current(shown(1, 'server-made')))
    assert [(c.id, d.hint) for c, d in plan.update] == [('server-made', 'new')]
    assert [e.id for e in plan.create] == [None]


def test_plan_unowned_entries_are_conflicts_never_changed_or_pruned():
    want = desired(raw(1, x509_svid_ttl=5), raw(2))
    have = current(shown(1, 'manual-1'), shown(2, 'p.x'), shown(7, 'manual-7'), shown(8, 'p.y'), shown(9, 'pp.z'))
    plan = plan_present(want, have, prefix='p', prune=True)
    assert plan.update == [] and plan.create == []
    assert [(c.id, d.index) for c, d, reason in plan.conflicts] == [('manual-1', 0)]
    assert 'not owned' in plan.conflicts[0][2] and 'fields differ' in plan.conflicts[0][2]
    assert [e.id for e in plan.delete] == ['p.y']
    assert plan.unchanged == 1
    # No prune: nothing deleted.
    assert plan_present(want, have, prefix='p').delete == []


def test_plan_explicit_entry_id():
    want = desired(raw(1, entry_id='fixed-1'), raw(2, entry_id='fixed-2'), raw(3, entry_id='fixed-3'))
    have = current(shown(1, 'fixed-1'),                       # same: unchanged
                   shown(20, 'fixed-2'),                      # same ID, other key: updated (key included)
                   shown(3, 'someone-else'))                  # key held by another ID: conflict
    plan = plan_present(want, have, prefix='p')
    assert plan.unchanged == 1
    [(before, after)] = plan.update
    assert before.id == after.id == 'fixed-2' and after.spiffe_id == 'spiffe://example.org/w2'
    assert set(changed_fields(before, after)) == {'spiffe_id', 'selectors'}
    [(conflict, wanted, reason)] = plan.conflicts
    assert conflict.id == 'someone-else' and 'fixed-3' in reason
    assert plan.create == []


def test_plan_absent():
    want = desired(raw(1), {'entry_id': 'manual-2'}, {'entry_id': 'missing'}, raw(5), state='absent')
    have = current(shown(1, 'p.1'), shown(2, 'manual-2'), shown(5, 'manual-5'), shown(6, 'p.6'))
    plan = plan_absent(want, have, prefix='p')
    assert [e.id for e in plan.delete] == ['p.1', 'manual-2']
    assert [c[0].id for c in plan.conflicts] == ['manual-5']
    assert [e.id for e in plan_absent(want, have).delete] == ['p.1', 'manual-2', 'manual-5']
    with pytest.raises(EntryInputError, match='spiffe_id: is required'):
        desired({'selectors': ['a:b']}, state='absent')


def test_plan_skips_repeated_current_entries():
    want = desired(raw(1))
    have = current(shown(1, 'p.1'), shown(1, 'p.1'))
    plan = plan_present(want, have, prefix='p', prune=True)
    assert plan.unchanged == 1 and plan.delete == []


# --- payloads and views ---------------------------------------------------------------------------------------

def test_to_input_is_the_legacy_data_shape_with_every_field():
    [entry] = desired(raw(1, entry_id='p.1', x509_svid_ttl=9, jwt_svid_ttl=8, federates_with=['o.org'],
                          dns_names=['b.org', 'a.org'], admin=True, downstream=True, hint='h', expires_at=99,
                          jwt_svid_include_jti=True))
    data = to_input(entry)
    assert data == {
        'entry_id': 'p.1', 'spiffe_id': 'spiffe://example.org/w1', 'parent_id': AGENT,
        'selectors': [{'type': 'unix', 'value': 'gid:1'}, {'type': 'unix', 'value': 'uid:1'}],
        'x509_svid_ttl': 9, 'jwt_svid_ttl': 8, 'federates_with': ['o.org'], 'dns_names': ['b.org', 'a.org'],
        'admin': True, 'downstream': True, 'entryExpiry': 99, 'store_svid': False, 'hint': 'h',
        'additional_attributes': {'disable_x509_svid_prefetch': False, 'jwt_svid_include_jti': True}}
    payload = json.loads(se.batch_payload([entry]))
    assert payload == {'entries': [data]}
    assert 'entry_id' not in to_input(desired(raw(2))[0])
    assert json.loads(se.delete_payload(iter(['a', 'b']))) == {'ids': ['a', 'b']}


def test_show_args_for_key():
    [entry] = desired(raw(1))
    assert se.show_args_for_key(key_of(entry)) == [
        'entry', 'show', '-spiffeID', 'spiffe://example.org/w1', '-parentID', AGENT,
        '-selector', 'unix:gid:1', '-selector', 'unix:uid:1', '-matchSelectorsOn', 'exact']


def test_diff_lists_created_updated_deleted():
    want = desired(raw(1, x509_svid_ttl=600), raw(2))
    have = current(shown(1, 'p.1', x509_svid_ttl=60), shown(9, 'p.9'))
    plan = plan_present(want, have, prefix='p', prune=True)
    diff = build_diff(plan)
    k1 = describe_key(key_of(want[0])) + ' (entry p.1)'
    assert diff['before'][k1]['x509_svid_ttl'] == 60 and diff['after'][k1]['x509_svid_ttl'] == 600
    assert describe_key(key_of(want[1])) in diff['after']
    assert any('(entry p.9)' in k for k in diff['before'])
    json.dumps(diff)


def test_large_plan_is_one_pass_and_fast():
    """100,000 current entries streamed through the planner: only changes are kept."""
    import time
    count = 100000
    want = desired(*[raw(i) for i in range(count)])
    have = (normalize_current(shown(i, 'p.%d' % i, hint='changed' if i % 1000 == 0 else ''))
            for i in range(5, count + 5))
    started = time.time()
    plan = plan_present(want, have, prefix='p', prune=True)
    assert time.time() - started < 20
    # 1000, 2000, ... 99000 changed (100000 is not desired: deleted).
    assert plan.counts() == {'created': 5, 'updated': 99, 'deleted': 5, 'unchanged': count - 104, 'conflicts': 0}


def test_payload_batches_by_count_and_bytes():
    entries = desired(*[raw(i) for i in range(7)])
    batches = list(se.payload_batches(entries, 3))
    assert [len(b) for b, p in batches] == [3, 3, 1]
    for batch, payload in batches:
        assert json.loads(payload) == {'entries': [to_input(e) for e in batch]}
    one = len(json.dumps(to_input(entries[0]), separators=(',', ':')))
    assert [len(b) for b, p in se.payload_batches(entries, 50, max_bytes=2 * one + 5)] == [2, 2, 2, 1]
    # A single entry larger than the byte cap still goes (alone).
    assert [len(b) for b, p in se.payload_batches(entries[:2], 50, max_bytes=10)] == [1, 1]
    pairs = [(None, e) for e in entries[:2]]
    [(batch, payload)] = list(se.payload_batches(pairs, 50, entry_of=lambda pair: pair[1]))
    assert batch == pairs and len(json.loads(payload)['entries']) == 2
    assert list(se.payload_batches([], 50)) == []


def test_lenient_booleans_from_files():
    [entry] = desired(raw(1, admin='true', downstream='no'))
    assert entry.admin is True and entry.downstream is False


def test_interruption_note_counts_the_changes_sent_without_an_answer():
    assert se.interruption_note(10000, 2000, 0, 0, 200) == (
        'applied before this error: 2000 created, 0 updated, 0 deleted, of 10000 planned changes; 200 more were sent '
        'in commands that got no answer: SPIRE may have applied some of them, a re-run reads them back')
    assert se.interruption_note(30, 5, 3, 1, 0) == (
        'applied before this error: 5 created, 3 updated, 1 deleted, of 30 planned changes')


def test_normalize_current_every_field():
    raw = {'id': 'cfg.1', 'spiffe_id': {'trust_domain': 'example.org', 'path': '/web'},
           'parent_id': {'trust_domain': 'example.org', 'path': '/agent'},
           'selectors': [{'type': 'unix', 'value': 'uid:1'}, {'type': 'k8s', 'value': 'ns:a'}],
           'x509_svid_ttl': 60, 'jwt_svid_ttl': '30', 'federates_with': ['spiffe://b.org', 'a.org'],
           'dns_names': ['web.example.org'], 'admin': True, 'downstream': True, 'hint': 'h', 'store_svid': True,
           'expires_at': '99', 'additional_attributes': {'disable_x509_svid_prefetch': True,
                                                         'jwt_svid_include_jti': True}}
    entry = normalize_current(raw)
    assert entry == se.Entry(id='cfg.1', spiffe_id='spiffe://example.org/web', parent_id='spiffe://example.org/agent',
                             selectors=('k8s:ns:a', 'unix:uid:1'), x509_svid_ttl=60, jwt_svid_ttl=30,
                             federates_with=('a.org', 'b.org'), dns_names=('web.example.org',), admin=True,
                             downstream=True, hint='h', store_svid=True, expires_at=99,
                             disable_x509_svid_prefetch=True, jwt_svid_include_jti=True, index=None)
    # The legacy shapes: entry_id, string IDs, entryExpiry; absent fields are the defaults.
    legacy = normalize_current({'entry_id': 'x', 'spiffe_id': 'spiffe://example.org/w', 'parent_id': None,
                                'entryExpiry': 5})
    assert (legacy.id, legacy.spiffe_id, legacy.parent_id, legacy.selectors, legacy.expires_at) == (
        'x', 'spiffe://example.org/w', '', (), 5)
    expected = tuple(se.DEFAULTS[name] if name != 'expires_at' else 5 for name in se.VALUE_FIELDS)
    assert legacy[se._VALUE_SLICE] == expected


@pytest.mark.parametrize('count, prune, whole', [
    (0, False, False), (se.TARGETED_READ_LIMIT, False, False), (se.TARGETED_READ_LIMIT + 1, False, True),
    (1, True, True), (None, False, True)])
def test_reads_whole_server(count, prune, whole):
    # None: the count is not known before the entries are read (entries_file).
    assert se.reads_whole_server(count, prune) is whole


def test_default_batch_size_fits_the_payload_cap():
    entries = normalize_desired_list([{'spiffe_id': 'spiffe://example.org/w%d' % i, 'parent_id': 'spiffe://example.org/a',
                                       'selectors': ['unix:uid:%d' % i]} for i in range(1200)])
    batches = list(se.payload_batches(entries, se.DEFAULT_BATCH_SIZE))
    assert [len(b) for b, _payload in batches] == [500, 500, 200]
    assert max(len(payload) for _b, payload in batches) <= se.MAX_PAYLOAD_BYTES


def test_fields_read_as_ansible_reads_options():
    # Inline entries are not checked by AnsibleModule (no sub-options in the argument spec): the same values
    # as before are accepted, for entries and entries_file alike.
    [entry] = desired(raw(0, selectors='unix:uid:1,k8s:ns:a', dns_names='a.example.org', admin='y', downstream=1,
                          store_svid='f', jwt_svid_include_jti=0))
    assert entry.selectors == ('k8s:ns:a', 'unix:uid:1') and entry.dns_names == ('a.example.org',)
    assert (entry.admin, entry.downstream, entry.store_svid, entry.jwt_svid_include_jti) == (True, True, False, False)
    with pytest.raises(EntryInputError, match=r'entries\[0\]\.admin: must be a boolean'):
        desired(raw(0, admin=2))

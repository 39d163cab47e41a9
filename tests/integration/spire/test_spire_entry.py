"""spire_entry against a real spire-server: declarative entries, ownership, batches, concurrency."""

import copy
import json
import os
import subprocess

from tests.integration.probes import command_probe, json_of, play, task
from tests.lab.spire import spire_server_module_args

PREFIX = 'it'
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def entries_for(server, parent, count, start=0, **extra):
    entries = []
    for i in range(start, start + count):
        entry = {'spiffe_id': server.spiffe_id('app/w%d' % i), 'parent_id': parent,
                 'selectors': ['unix:uid:%d' % (10000 + i), 'unix:gid:%d' % (10000 + i)]}
        entry.update(extra)
        entries.append(entry)
    return entries


def args_for(server, entries, **extra):
    args = dict(spire_server_module_args(server), entries=entries, entry_id_prefix=PREFIX)
    args.update(extra)
    return args


def by_spiffe_id(entries):
    result = {}
    for entry in entries:
        sid = 'spiffe://%s%s' % (entry['spiffe_id']['trust_domain'], entry['spiffe_id']['path'])
        result.setdefault(sid, []).append(entry)
    return result


def entry_task(server, entries, check_mode=False, diff=False, **extra):
    """A spire_entry task for ``entries`` (copied now: later changes to the list do not reach it)."""
    return task('spire_entry', args_for(server, copy.deepcopy(entries), **extra), check_mode=check_mode, diff=diff)


def entries_probe(server, *filters):
    """`spire-server entry show` at that point of a playbook run: see entries_of()."""
    return command_probe([server.binary, 'entry', 'show'] + list(filters) +
                         ['-socketPath', server.socket_path, '-output', 'json'])


def entries_of(probe):
    """The entries an entries_probe listed (as SpireServer.entries())."""
    return json_of(probe).get('entries') or []


def test_check_mode_real_run_idempotent(ansible, spire_server, tmp_path):
    parent = spire_server.spiffe_id('agent/a')
    entries = entries_for(spire_server, parent, 3, x509_svid_ttl=600)
    entries[0]['dns_names'] = ['w0.example.org']
    entries[1]['hint'] = 'second'
    # Selector order and the spiffe:// form of a trust domain do not matter.
    shuffled = [dict(e, selectors=list(reversed(e['selectors']))) for e in entries]

    # Check mode, the real run, its re-run and a run with shuffled selectors in one playbook run, the entries listed
    # after the first two.
    check, after_check, run, after_run, again, shuffled_run = play(ansible, tmp_path, [
        entry_task(spire_server, entries, check_mode=True, diff=True), entries_probe(spire_server),
        entry_task(spire_server, entries, diff=True), entries_probe(spire_server),
        entry_task(spire_server, entries, diff=True), entry_task(spire_server, shuffled)])
    assert not check.get('failed'), check
    assert check['changed'] is True
    assert check['counts'] == {'created': 3, 'updated': 0, 'deleted': 0, 'unchanged': 0, 'conflicts': 0}
    assert len(check['diff']['after']) == 3 and check['diff']['before'] == {}
    assert entries_of(after_check) == [], 'check mode created entries'

    assert not run.get('failed'), run
    assert run['changed'] is True and run['counts']['created'] == 3
    current = by_spiffe_id(entries_of(after_run))
    assert sorted(current) == sorted(e['spiffe_id'] for e in entries)
    for entry in entries:
        [stored] = current[entry['spiffe_id']]
        assert stored['id'].startswith(PREFIX + '.')
        assert stored['x509_svid_ttl'] == 600
        assert sorted('%s:%s' % (s['type'], s['value']) for s in stored['selectors']) == sorted(entry['selectors'])
    assert current[entries[0]['spiffe_id']][0]['dns_names'] == ['w0.example.org']
    assert current[entries[1]['spiffe_id']][0]['hint'] == 'second'
    assert sorted(e['entry_id'] for e in run['created']) == sorted(v[0]['id'] for v in current.values())

    assert not again.get('failed'), again
    assert again['changed'] is False
    assert again['counts'] == {'created': 0, 'updated': 0, 'deleted': 0, 'unchanged': 3, 'conflicts': 0}
    assert shuffled_run['changed'] is False, shuffled_run


def test_update_sends_every_field_and_reports_changes(ansible, spire_server, spire_server_b, tmp_path):
    spire_server.set_federated_bundle(spire_server_b)
    parent = spire_server.spiffe_id('agent/a')
    entries = entries_for(spire_server, parent, 2, hint='keep', dns_names=['a.example.org', 'b.example.org'],
                          jwt_svid_ttl=120)
    changed = copy.deepcopy(entries)
    changed[1]['x509_svid_ttl'] = 900
    changed[1]['federates_with'] = ['spiffe://other.example']

    # The creation, then check mode, the update and its re-run with one entry changed, in one playbook run, the
    # entries listed between them.
    created, before_probe, check, after_check, run, after_run, again = play(ansible, tmp_path, [
        entry_task(spire_server, entries), entries_probe(spire_server),
        entry_task(spire_server, changed, check_mode=True), entries_probe(spire_server),
        entry_task(spire_server, changed, diff=True), entries_probe(spire_server),
        entry_task(spire_server, changed)])
    assert created['counts']['created'] == 2, created
    before = dict((e['id'], e) for e in entries_of(before_probe))

    assert check['changed'] is True and check['counts']['updated'] == 1
    assert dict((e['id'], e) for e in entries_of(after_check)) == before, 'check mode changed an entry'

    assert not run.get('failed'), run
    assert run['counts'] == {'created': 0, 'updated': 1, 'deleted': 0, 'unchanged': 1, 'conflicts': 0}
    [updated] = run['updated']
    assert updated['changes'] == {'x509_svid_ttl': {'before': 0, 'after': 900},
                                  'federates_with': {'before': [], 'after': ['other.example']}}
    after = dict((e['id'], e) for e in entries_of(after_run))
    assert set(after) == set(before)      # same entry IDs: updated in place
    stored = after[updated['entry_id']]
    assert stored['x509_svid_ttl'] == 900 and stored['federates_with'] == ['other.example']
    # Fields that did not change survive the whole-entry update.
    assert stored['hint'] == 'keep' and stored['dns_names'] == ['a.example.org', 'b.example.org']
    assert stored['jwt_svid_ttl'] == 120
    assert again['changed'] is False, again


def test_prune_deletes_only_owned_entries(ansible, spire_server, tmp_path):
    parent = spire_server.spiffe_id('agent/a')
    # Made by hand with the raw CLI: one with a key of its own, one with a key the task also declares.
    hand = spire_server.create_entries([
        {'spiffe_id': spire_server.spiffe_id('manual/one'), 'parent_id': parent,
         'selectors': [{'type': 'unix', 'value': 'uid:4242'}]},
        {'spiffe_id': spire_server.spiffe_id('app/w0'), 'parent_id': parent,
         'selectors': [{'type': 'unix', 'value': 'uid:10000'}, {'type': 'unix', 'value': 'gid:10000'}],
         'x509_svid_ttl': 77},
    ])
    hand_ids = sorted(r['entry']['id'] for r in hand)
    entries = entries_for(spire_server, parent, 4)

    # The four prune runs in one playbook run, the entries listed after the second and the third.
    first, dropped, after_dropped, emptied, after_emptied, again = play(ansible, tmp_path, [
        entry_task(spire_server, entries, prune=True),
        entry_task(spire_server, entries[:2], prune=True, diff=True), entries_probe(spire_server),
        entry_task(spire_server, [], prune=True), entries_probe(spire_server),
        entry_task(spire_server, [], prune=True)])
    run = first
    assert not run.get('failed'), run
    assert run['counts'] == {'created': 3, 'updated': 0, 'deleted': 0, 'unchanged': 0, 'conflicts': 1}
    [conflict] = run['unmanaged_conflicts']
    assert conflict['entry_id'] in hand_ids and conflict['index'] == 0 and conflict['fields_differ'] is True
    assert any('collide with entries this configuration does not own' in w for w in run.get('warnings', [])), run

    # Drop two entries from the list: prune removes those two owned ones, never the hand-made ones.
    run = dropped
    assert not run.get('failed'), run
    assert run['counts']['deleted'] == 2
    assert sorted(e['spiffe_id'] for e in run['deleted']) == sorted(e['spiffe_id'] for e in entries[2:])
    current = entries_of(after_dropped)
    ids = sorted(e['id'] for e in current)
    assert len(ids) == 3
    assert set(hand_ids) <= set(ids)
    untouched = [e for e in current if e['id'] in hand_ids and e['spiffe_id']['path'] == '/app/w0']
    assert untouched[0]['x509_svid_ttl'] == 77

    # Prune with an empty list removes every owned entry and still nothing else.
    assert emptied['counts']['deleted'] == 1, emptied
    assert sorted(e['id'] for e in entries_of(after_emptied)) == hand_ids
    assert again['changed'] is False, again


def test_without_prefix_entries_are_managed_by_key(ansible, spire_server, tmp_path):
    parent = spire_server.spiffe_id('agent/a')
    hand = spire_server.create_entries([{'spiffe_id': spire_server.spiffe_id('app/w0'), 'parent_id': parent,
                                         'selectors': [{'type': 'unix', 'value': 'uid:10000'},
                                                       {'type': 'unix', 'value': 'gid:10000'}]}])
    entries = entries_for(spire_server, parent, 1, x509_svid_ttl=300)
    args = dict(spire_server_module_args(spire_server), entries=entries)
    # The run by key, then the refused prune, in one playbook run.
    run, after_run, result = play(ansible, tmp_path, [task('spire_entry', args), entries_probe(spire_server),
                                                      task('spire_entry', dict(args, prune=True))])
    assert run['counts']['updated'] == 1 and run['updated'][0]['entry_id'] == hand[0]['entry']['id']
    assert entries_of(after_run)[0]['x509_svid_ttl'] == 300
    assert result['failed'] is True and 'entry_id_prefix' in result['msg']


def test_bad_inputs_change_nothing(ansible_cases, spire_server):
    parent = spire_server.spiffe_id('agent/a')
    good = entries_for(spire_server, parent, 2)
    cases = [
        (dict(good[1], spiffe_id='spiffe://example.org/bad//path'), 'entries[1].spiffe_id'),
        (dict(good[1], spiffe_id='https://example.org/x'), 'entries[1].spiffe_id'),
        (dict(good[1], spiffe_id='spiffe://Example.org/x'), 'entries[1].spiffe_id'),
        (dict(good[1], spiffe_id='spiffe://example.org/spire/x'), 'entries[1].spiffe_id: spiffe://example.org/spire/x is in the /spire namespace'),
        (dict(good[1], parent_id='spiffe://other.example/agent'), 'entries[1].parent_id'),
        (dict(good[1], spiffe_id='spiffe://other.example/w'), "not in the server's trust domain"),
        (dict(good[1], selectors=['unix']), 'entries[1].selectors[0]'),
        (dict(good[1], selectors=[':uid:1']), 'empty type'),
        (dict(good[1], selectors=['unix:']), 'empty value'),
        (dict(good[1], selectors=[]), 'entries[1].selectors'),
        (dict(good[1], x509_svid_ttl=-5), 'entries[1].x509_svid_ttl'),
        (dict(good[1], dns_names=['bad_name.example.org']), 'entries[1].dns_names[0]'),
        (dict(good[1], federates_with=['example.org']), "server's own trust domain"),
        (dict(good[1], entry_id='has space'), 'entries[1].entry_id'),
        (dict(good[0]), 'same SPIFFE ID, parent ID and selectors as entries[0]'),
    ]
    cases += [
        (args_for(spire_server, good, entry_id_prefix='bad prefix'), 'entry_id_prefix: may only use'),
        (dict(spire_server_module_args(spire_server), entries=good, prune=True),
         'prune is True but all of the following are missing: entry_id_prefix'),
        (args_for(spire_server, [dict(good[0], ttl=5)]), 'ttl'),
    ]
    args_list = [case if 'socket_path' in case else args_for(spire_server, [good[0], case]) for case, dummy in cases]
    results = ansible_cases('spire_entry', args_list)
    for (case, expected), result in zip(cases, results):
        assert result.get('failed') is True, (case, result)
        assert expected in result['msg'], (expected, result['msg'])
    assert spire_server.entries() == []


def test_unreachable_socket(ansible, spire_server):
    spire_server.stop()
    entries = entries_for(spire_server, spire_server.spiffe_id('agent/a'), 1)
    result = ansible.module('spire_entry', args_for(spire_server, entries))
    assert result['failed'] is True
    assert 'not reachable on socket_path %s' % spire_server.socket_path in result['msg']


def test_partial_batch_failure_applies_the_rest(ansible, spire_server, tmp_path):
    parent = spire_server.spiffe_id('agent/a')
    entries = entries_for(spire_server, parent, 5)
    fixed = copy.deepcopy(entries)
    # SPIRE refuses this one result by result: no bundle for the trust domain it federates with.
    entries[2]['federates_with'] = ['unknown.example']
    # The run with the refused entry, then with fixed input, in one playbook run.
    result, after_result, fixed_result = play(ansible, tmp_path, [
        entry_task(spire_server, entries), entries_probe(spire_server), entry_task(spire_server, fixed)])
    assert result['failed'] is True
    assert 'SPIRE refused 1 of 5 entry changes; the other changes were applied' in result['msg']
    assert entries[2]['spiffe_id'] in result['msg'] and 'unknown.example' in result['msg']
    assert [f['item'].split(' ')[0] for f in result['failures']] == [entries[2]['spiffe_id']]
    assert result['changed'] is True and result['counts']['created'] == 4
    stored = sorted('spiffe://example.org' + e['spiffe_id']['path'] for e in entries_of(after_result))
    assert stored == sorted(e['spiffe_id'] for i, e in enumerate(entries) if i != 2)

    # Fixed input: only the missing entry is created.
    assert not fixed_result.get('failed'), fixed_result
    assert fixed_result['counts'] == {'created': 1, 'updated': 0, 'deleted': 0, 'unchanged': 4, 'conflicts': 0}


def test_state_absent(ansible, spire_server, tmp_path):
    parent = spire_server.spiffe_id('agent/a')
    entries = entries_for(spire_server, parent, 3)
    hand = spire_server.create_entries([{'spiffe_id': spire_server.spiffe_id('manual/x'), 'parent_id': parent,
                                         'selectors': [{'type': 'unix', 'value': 'uid:5'}]}])
    hand_id = hand[0]['entry']['id']
    hand_key = {'spiffe_id': spire_server.spiffe_id('manual/x'), 'parent_id': parent, 'selectors': ['unix:uid:5']}
    absent = [entries[0], {'entry_id': hand_id}, {'entry_id': 'no-such-entry'}]

    # Every step in one playbook run, the entries listed between them.
    created, check, after_check, by_key, after_by_key, result, after_result, again, prune = play(ansible, tmp_path, [
        entry_task(spire_server, entries),
        entry_task(spire_server, absent, check_mode=True, state='absent'), entries_probe(spire_server),
        entry_task(spire_server, [hand_key], state='absent'), entries_probe(spire_server),
        entry_task(spire_server, absent, state='absent'), entries_probe(spire_server),
        entry_task(spire_server, absent, state='absent'),
        entry_task(spire_server, absent, state='absent', prune=True)])
    assert created['counts']['created'] == 3, created
    assert check['changed'] is True and check['counts']['deleted'] == 2
    assert len(entries_of(after_check)) == 4, 'check mode deleted entries'

    # By key, a hand-made entry is not owned: reported, not deleted.
    assert by_key['changed'] is False and by_key['counts']['conflicts'] == 1
    assert len(entries_of(after_by_key)) == 4

    assert not result.get('failed'), result
    assert result['changed'] is True and result['counts']['deleted'] == 2
    remaining = sorted(e['spiffe_id']['path'] for e in entries_of(after_result))
    assert remaining == ['/app/w1', '/app/w2']
    # Unknown entries: nothing to do.
    assert not again.get('failed') and again['changed'] is False
    assert prune['failed'] is True and 'prune' in prune['msg']


def test_node_entry_and_batches(ansible, spire_server, tmp_path):
    parent = spire_server.spiffe_id('nodes/group-a')
    node = {'spiffe_id': parent, 'node': True, 'selectors': ['x509pop:subject:cn:agent-x509pop']}
    entries = [node] + entries_for(spire_server, parent, 120)       # three create batches
    # The run, then its re-run with prune, in one playbook run, the entries listed between them.
    run, node_probe, all_probe, again = play(ansible, tmp_path, [
        entry_task(spire_server, entries, report_limit=10), entries_probe(spire_server, '-spiffeID', parent),
        entries_probe(spire_server), entry_task(spire_server, entries, prune=True)])
    assert not run.get('failed'), run
    assert run['counts']['created'] == 121 and len(run['created']) == 10 and run['truncated'] is True
    stored = entries_of(node_probe)
    assert stored[0]['parent_id'] == {'trust_domain': 'example.org', 'path': '/spire/server'}
    assert len(entries_of(all_probe)) == 121
    assert again['changed'] is False and again['counts']['unchanged'] == 121


def test_concurrent_runs_make_no_duplicates(ansible, spire_server):
    """Two ansible-playbook processes started together with the same 80 entries (two create batches each)."""
    parent = spire_server.spiffe_id('agent/a')
    entries = entries_for(spire_server, parent, 80)
    with open(os.path.join(ansible.workdir, 'entries.json'), 'w') as handle:
        json.dump({'desired': entries}, handle)
    play = ansible.write_playbook('concurrent.yml', '''
        - hosts: localhost
          gather_facts: false
          vars_files: [entries.json]
          tasks:
            - name: Declare entries
              trustroot.ops.spire_entry:
                socket_path: %s
                spire_server_path: %s
                entry_id_prefix: %s
                entries: "{{ desired }}"
              register: result
            - name: Save the result
              ansible.builtin.copy:
                content: "{{ result | to_json }}"
                dest: "{{ result_path }}"
                mode: "0600"
        ''' % (spire_server.socket_path, spire_server.binary, PREFIX))
    playbook_bin = os.path.join(ROOT, '.venv', 'bin', 'ansible-playbook')
    paths = [os.path.join(ansible.workdir, 'concurrent-%d.json' % i) for i in range(2)]
    procs = [subprocess.Popen([playbook_bin, '-i', 'localhost,', '-c', 'local', play, '-e', 'result_path=%s' % path],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ansible.env(),
                              cwd=ansible.workdir) for path in paths]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    current = by_spiffe_id(spire_server.entries())
    assert len(current) == 80
    assert all(len(v) == 1 for v in current.values()), 'duplicate entries'
    results = []
    for path in paths:
        with open(path) as handle:
            results.append(json.load(handle))
    # Every entry was created by exactly one of the runs; the other counted it as existing.
    assert sum(r['counts']['created'] for r in results) == 80
    for r in results:
        assert r['counts']['created'] + r['counts']['unchanged'] == 80
        assert r['counts']['conflicts'] == 0
    again = ansible.module('spire_entry', args_for(spire_server, entries))
    assert again['changed'] is False and again['counts']['unchanged'] == 80


def test_entries_file_and_batch_size(ansible, spire_server, tmp_path):
    parent = spire_server.spiffe_id('agent/a')
    entries = entries_for(spire_server, parent, 130, x509_svid_ttl=300)
    entries[5]['admin'] = 'true'
    # One file per step: the entries under "entries", the same as a plain list, then with changes.
    path = tmp_path / 'entries.json'
    path.write_text(json.dumps({'entries': entries}))
    plain = tmp_path / 'entries-list.json'
    plain.write_text(json.dumps(entries))
    changed = copy.deepcopy(entries)
    for entry in changed[:20]:
        entry['x509_svid_ttl'] = 600
    changed[9]['federates_with'] = ['unknown.example']
    changed_path = tmp_path / 'entries-changed.json'
    changed_path.write_text(json.dumps(changed))
    base = dict(spire_server_module_args(spire_server), entries_file=str(path), entry_id_prefix=PREFIX,
                batch_size=500)
    bad_file = tmp_path / 'bad.json'
    bad_file.write_text('{"entries": [{"spiffe_id": "spiffe://example.org/x", ')
    wrong = tmp_path / 'wrong.json'
    wrong.write_text(json.dumps([dict(changed[0], selectors=['nocolon'])]))
    cases = [
        (dict(base, entries_file=str(tmp_path / 'missing.json')), 'entries_file: cannot read'),
        (dict(base, entries_file=str(bad_file)), 'entries_file: %s is not a JSON list' % bad_file),
        (dict(base, entries_file=str(wrong)), 'entries[0].selectors[0]'),
        (dict(base, entries=changed[:1]), 'mutually exclusive'),
        (dict(base, batch_size=0), 'batch_size: must be between 1 and 1000'),
        (dict(base, parallel=9), 'parallel: must be between 1 and 8'),
        (dict(spire_server_module_args(spire_server)), 'one of the following is required: entries, entries_file'),
    ]

    # Every step, then the refused inputs, in one playbook run, the entries listed between the steps.
    results = play(ansible, tmp_path, [
        task('spire_entry', base, check_mode=True), entries_probe(spire_server),
        task('spire_entry', base), entries_probe(spire_server),
        task('spire_entry', dict(base, entries_file=str(plain), batch_size=7, prune=True)),
        task('spire_entry', dict(base, entries_file=str(changed_path), batch_size=7, parallel=4)),
        entries_probe(spire_server)] + [task('spire_entry', args) for args, _expected in cases])
    check, after_check, run, after_run, again, batched, after_batched = results[:7]
    assert not check.get('failed'), check
    assert check['counts']['created'] == 130 and entries_of(after_check) == []
    assert not run.get('failed'), run
    assert run['counts']['created'] == 130
    stored = by_spiffe_id(entries_of(after_run))
    assert len(stored) == 130 and stored[entries[5]['spiffe_id']][0]['admin'] is True
    # The same entries as a plain list in the file, with a batch of 7: nothing to do.
    assert again['changed'] is False and again['counts']['unchanged'] == 130
    # Changes go in batches of 7, four commands at a time; one entry SPIRE refuses does not stop the others.
    run = batched
    assert run['failed'] is True and run['counts']['updated'] == 19
    assert [f['item'].split(' ')[0] for f in run['failures']] == [entries[9]['spiffe_id']]
    assert 'unknown.example' in run['msg'] and 'the other changes were applied' in run['msg']
    assert sum(1 for e in entries_of(after_batched) if e['x509_svid_ttl'] == 600) == 19

    for (args, expected), result in zip(cases, results[7:]):
        assert result.get('failed') is True, (args, result)
        assert expected in result['msg'], (expected, result['msg'])
    assert len(spire_server.entries()) == 130

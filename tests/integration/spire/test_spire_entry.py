"""spire_entry against a real spire-server: declarative entries, ownership, batches, concurrency."""

import json
import os
import subprocess

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


def by_spiffe_id(server):
    result = {}
    for entry in server.entries():
        sid = 'spiffe://%s%s' % (entry['spiffe_id']['trust_domain'], entry['spiffe_id']['path'])
        result.setdefault(sid, []).append(entry)
    return result


def test_check_mode_real_run_idempotent(ansible, spire_server):
    parent = spire_server.spiffe_id('agent/a')
    entries = entries_for(spire_server, parent, 3, x509_svid_ttl=600)
    entries[0]['dns_names'] = ['w0.example.org']
    entries[1]['hint'] = 'second'

    check = ansible.module('spire_entry', args_for(spire_server, entries), check=True, diff=True)
    assert not check.get('failed'), check
    assert check['changed'] is True
    assert check['counts'] == {'created': 3, 'updated': 0, 'deleted': 0, 'unchanged': 0, 'conflicts': 0}
    assert len(check['diff']['after']) == 3 and check['diff']['before'] == {}
    assert spire_server.entries() == []

    run = ansible.module('spire_entry', args_for(spire_server, entries), diff=True)
    assert not run.get('failed'), run
    assert run['changed'] is True and run['counts']['created'] == 3
    current = by_spiffe_id(spire_server)
    assert sorted(current) == sorted(e['spiffe_id'] for e in entries)
    for entry in entries:
        [stored] = current[entry['spiffe_id']]
        assert stored['id'].startswith(PREFIX + '.')
        assert stored['x509_svid_ttl'] == 600
        assert sorted('%s:%s' % (s['type'], s['value']) for s in stored['selectors']) == sorted(entry['selectors'])
    assert current[entries[0]['spiffe_id']][0]['dns_names'] == ['w0.example.org']
    assert current[entries[1]['spiffe_id']][0]['hint'] == 'second'
    assert sorted(e['entry_id'] for e in run['created']) == sorted(v[0]['id'] for v in current.values())

    again = ansible.module('spire_entry', args_for(spire_server, entries), diff=True)
    assert not again.get('failed'), again
    assert again['changed'] is False
    assert again['counts'] == {'created': 0, 'updated': 0, 'deleted': 0, 'unchanged': 3, 'conflicts': 0}
    # Selector order and the spiffe:// form of a trust domain do not matter.
    shuffled = [dict(e, selectors=list(reversed(e['selectors']))) for e in entries]
    assert ansible.module('spire_entry', args_for(spire_server, shuffled))['changed'] is False


def test_update_sends_every_field_and_reports_changes(ansible, spire_server, spire_server_b):
    spire_server.set_federated_bundle(spire_server_b)
    parent = spire_server.spiffe_id('agent/a')
    entries = entries_for(spire_server, parent, 2, hint='keep', dns_names=['a.example.org', 'b.example.org'],
                          jwt_svid_ttl=120)
    assert ansible.module('spire_entry', args_for(spire_server, entries))['counts']['created'] == 2
    before = dict((e['id'], e) for e in spire_server.entries())

    entries[1]['x509_svid_ttl'] = 900
    entries[1]['federates_with'] = ['spiffe://other.example']
    check = ansible.module('spire_entry', args_for(spire_server, entries), check=True)
    assert check['changed'] is True and check['counts']['updated'] == 1
    assert dict((e['id'], e) for e in spire_server.entries()) == before

    run = ansible.module('spire_entry', args_for(spire_server, entries), diff=True)
    assert not run.get('failed'), run
    assert run['counts'] == {'created': 0, 'updated': 1, 'deleted': 0, 'unchanged': 1, 'conflicts': 0}
    [updated] = run['updated']
    assert updated['changes'] == {'x509_svid_ttl': {'before': 0, 'after': 900},
                                  'federates_with': {'before': [], 'after': ['other.example']}}
    after = dict((e['id'], e) for e in spire_server.entries())
    assert set(after) == set(before)      # same entry IDs: updated in place
    stored = after[updated['entry_id']]
    assert stored['x509_svid_ttl'] == 900 and stored['federates_with'] == ['other.example']
    # Fields that did not change survive the whole-entry update.
    assert stored['hint'] == 'keep' and stored['dns_names'] == ['a.example.org', 'b.example.org']
    assert stored['jwt_svid_ttl'] == 120
    assert ansible.module('spire_entry', args_for(spire_server, entries))['changed'] is False


def test_prune_deletes_only_owned_entries(ansible, spire_server):
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
    run = ansible.module('spire_entry', args_for(spire_server, entries, prune=True))
    assert not run.get('failed'), run
    assert run['counts'] == {'created': 3, 'updated': 0, 'deleted': 0, 'unchanged': 0, 'conflicts': 1}
    [conflict] = run['unmanaged_conflicts']
    assert conflict['entry_id'] in hand_ids and conflict['index'] == 0 and conflict['fields_differ'] is True
    assert any('collide with entries this configuration does not own' in w for w in run.get('warnings', [])), run

    # Drop two entries from the list: prune removes those two owned ones, never the hand-made ones.
    run = ansible.module('spire_entry', args_for(spire_server, entries[:2], prune=True), diff=True)
    assert not run.get('failed'), run
    assert run['counts']['deleted'] == 2
    assert sorted(e['spiffe_id'] for e in run['deleted']) == sorted(e['spiffe_id'] for e in entries[2:])
    ids = sorted(e['id'] for e in spire_server.entries())
    assert len(ids) == 3
    assert set(hand_ids) <= set(ids)
    untouched = [e for e in spire_server.entries() if e['id'] in hand_ids and e['spiffe_id']['path'] == '/app/w0']
    assert untouched[0]['x509_svid_ttl'] == 77

    # Prune with an empty list removes every owned entry and still nothing else.
    run = ansible.module('spire_entry', args_for(spire_server, [], prune=True))
    assert run['counts']['deleted'] == 1
    assert sorted(e['id'] for e in spire_server.entries()) == hand_ids
    assert ansible.module('spire_entry', args_for(spire_server, [], prune=True))['changed'] is False


def test_without_prefix_entries_are_managed_by_key(ansible, spire_server):
    parent = spire_server.spiffe_id('agent/a')
    hand = spire_server.create_entries([{'spiffe_id': spire_server.spiffe_id('app/w0'), 'parent_id': parent,
                                         'selectors': [{'type': 'unix', 'value': 'uid:10000'},
                                                       {'type': 'unix', 'value': 'gid:10000'}]}])
    entries = entries_for(spire_server, parent, 1, x509_svid_ttl=300)
    args = dict(spire_server_module_args(spire_server), entries=entries)
    run = ansible.module('spire_entry', args)
    assert run['counts']['updated'] == 1 and run['updated'][0]['entry_id'] == hand[0]['entry']['id']
    assert spire_server.entries()[0]['x509_svid_ttl'] == 300
    result = ansible.module('spire_entry', dict(args, prune=True))
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


def test_partial_batch_failure_applies_the_rest(ansible, spire_server):
    parent = spire_server.spiffe_id('agent/a')
    entries = entries_for(spire_server, parent, 5)
    # SPIRE refuses this one result by result: no bundle for the trust domain it federates with.
    entries[2]['federates_with'] = ['unknown.example']
    result = ansible.module('spire_entry', args_for(spire_server, entries))
    assert result['failed'] is True
    assert 'SPIRE refused 1 of 5 entry changes; the other changes were applied' in result['msg']
    assert entries[2]['spiffe_id'] in result['msg'] and 'unknown.example' in result['msg']
    assert [f['item'].split(' ')[0] for f in result['failures']] == [entries[2]['spiffe_id']]
    assert result['changed'] is True and result['counts']['created'] == 4
    stored = sorted('spiffe://example.org' + e['spiffe_id']['path'] for e in spire_server.entries())
    assert stored == sorted(e['spiffe_id'] for i, e in enumerate(entries) if i != 2)

    # Fixed input: only the missing entry is created.
    del entries[2]['federates_with']
    result = ansible.module('spire_entry', args_for(spire_server, entries))
    assert not result.get('failed'), result
    assert result['counts'] == {'created': 1, 'updated': 0, 'deleted': 0, 'unchanged': 4, 'conflicts': 0}


def test_state_absent(ansible, spire_server):
    parent = spire_server.spiffe_id('agent/a')
    entries = entries_for(spire_server, parent, 3)
    ansible.module('spire_entry', args_for(spire_server, entries))
    hand = spire_server.create_entries([{'spiffe_id': spire_server.spiffe_id('manual/x'), 'parent_id': parent,
                                         'selectors': [{'type': 'unix', 'value': 'uid:5'}]}])
    hand_id = hand[0]['entry']['id']
    hand_key = {'spiffe_id': spire_server.spiffe_id('manual/x'), 'parent_id': parent, 'selectors': ['unix:uid:5']}

    absent = [entries[0], {'entry_id': hand_id}, {'entry_id': 'no-such-entry'}]
    check = ansible.module('spire_entry', args_for(spire_server, absent, state='absent'), check=True)
    assert check['changed'] is True and check['counts']['deleted'] == 2
    assert len(spire_server.entries()) == 4

    # By key, a hand-made entry is not owned: reported, not deleted.
    result = ansible.module('spire_entry', args_for(spire_server, [hand_key], state='absent'))
    assert result['changed'] is False and result['counts']['conflicts'] == 1
    assert len(spire_server.entries()) == 4

    result = ansible.module('spire_entry', args_for(spire_server, absent, state='absent'))
    assert not result.get('failed'), result
    assert result['changed'] is True and result['counts']['deleted'] == 2
    remaining = sorted(e['spiffe_id']['path'] for e in spire_server.entries())
    assert remaining == ['/app/w1', '/app/w2']
    # Unknown entries: nothing to do.
    again = ansible.module('spire_entry', args_for(spire_server, absent, state='absent'))
    assert not again.get('failed') and again['changed'] is False
    result = ansible.module('spire_entry', args_for(spire_server, absent, state='absent', prune=True))
    assert result['failed'] is True and 'prune' in result['msg']


def test_node_entry_and_batches(ansible, spire_server):
    parent = spire_server.spiffe_id('nodes/group-a')
    node = {'spiffe_id': parent, 'node': True, 'selectors': ['x509pop:subject:cn:agent-x509pop']}
    entries = [node] + entries_for(spire_server, parent, 120)       # three create batches
    run = ansible.module('spire_entry', args_for(spire_server, entries, report_limit=10))
    assert not run.get('failed'), run
    assert run['counts']['created'] == 121 and len(run['created']) == 10 and run['truncated'] is True
    stored = spire_server.entries('-spiffeID', parent)
    assert stored[0]['parent_id'] == {'trust_domain': 'example.org', 'path': '/spire/server'}
    assert len(spire_server.entries()) == 121
    again = ansible.module('spire_entry', args_for(spire_server, entries, prune=True))
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
    current = by_spiffe_id(spire_server)
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


def test_entries_file_and_batch_size(ansible, ansible_cases, spire_server, tmp_path):
    parent = spire_server.spiffe_id('agent/a')
    entries = entries_for(spire_server, parent, 130, x509_svid_ttl=300)
    entries[5]['admin'] = 'true'
    path = tmp_path / 'entries.json'
    path.write_text(json.dumps({'entries': entries}))
    base = dict(spire_server_module_args(spire_server), entries_file=str(path), entry_id_prefix=PREFIX,
                batch_size=500)
    check = ansible.module('spire_entry', base, check=True)
    assert not check.get('failed'), check
    assert check['counts']['created'] == 130 and spire_server.entries() == []
    run = ansible.module('spire_entry', base)
    assert not run.get('failed'), run
    assert run['counts']['created'] == 130
    stored = by_spiffe_id(spire_server)
    assert len(stored) == 130 and stored[entries[5]['spiffe_id']][0]['admin'] is True
    # The same entries as a plain list in the file, with a batch of 7: nothing to do.
    path.write_text(json.dumps(entries))
    again = ansible.module('spire_entry', dict(base, batch_size=7, prune=True))
    assert again['changed'] is False and again['counts']['unchanged'] == 130
    # Changes go in batches of 7, four commands at a time; one entry SPIRE refuses does not stop the others.
    for entry in entries[:20]:
        entry['x509_svid_ttl'] = 600
    entries[9]['federates_with'] = ['unknown.example']
    path.write_text(json.dumps(entries))
    run = ansible.module('spire_entry', dict(base, batch_size=7, parallel=4))
    assert run['failed'] is True and run['counts']['updated'] == 19
    assert [f['item'].split(' ')[0] for f in run['failures']] == [entries[9]['spiffe_id']]
    assert 'unknown.example' in run['msg'] and 'the other changes were applied' in run['msg']
    assert sum(1 for e in spire_server.entries() if e['x509_svid_ttl'] == 600) == 19

    bad_file = tmp_path / 'bad.json'
    bad_file.write_text('{"entries": [{"spiffe_id": "spiffe://example.org/x", ')
    wrong = tmp_path / 'wrong.json'
    wrong.write_text(json.dumps([dict(entries[0], selectors=['nocolon'])]))
    cases = [
        (dict(base, entries_file=str(tmp_path / 'missing.json')), 'entries_file: cannot read'),
        (dict(base, entries_file=str(bad_file)), 'entries_file: %s is not a JSON list' % bad_file),
        (dict(base, entries_file=str(wrong)), 'entries[0].selectors[0]'),
        (dict(base, entries=entries[:1]), 'mutually exclusive'),
        (dict(base, batch_size=0), 'batch_size: must be between 1 and 1000'),
        (dict(base, parallel=9), 'parallel: must be between 1 and 8'),
        (dict(spire_server_module_args(spire_server)), 'one of the following is required: entries, entries_file'),
    ]
    results = ansible_cases('spire_entry', [args for args, expected in cases])
    for (args, expected), result in zip(cases, results):
        assert result.get('failed') is True, (args, result)
        assert expected in result['msg'], (expected, result['msg'])
    assert len(spire_server.entries()) == 130

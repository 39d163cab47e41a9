"""spire_entry_info against a real spire-server; the SPIFFE filters through real ansible-playbook."""

import json

from tests.lab.spire import spire_server_module_args


def seed(server, server_b):
    """Entries made with the raw CLI (independent of the modules under test)."""
    server.set_federated_bundle(server_b)
    agent1 = server.spiffe_id('agent/one')
    agent2 = server.spiffe_id('agent/two')

    def sel(*pairs):
        return [{'type': t, 'value': v} for t, v in pairs]
    raw = [
        {'entry_id': 'team.1', 'spiffe_id': server.spiffe_id('web'), 'parent_id': agent1,
         'selectors': sel(('unix', 'uid:1001'), ('unix', 'gid:1001')), 'hint': 'frontend'},
        {'entry_id': 'team.2', 'spiffe_id': server.spiffe_id('db'), 'parent_id': agent1,
         'selectors': sel(('unix', 'uid:1002')), 'federates_with': ['spiffe://other.example']},
        {'entry_id': 'other-3', 'spiffe_id': server.spiffe_id('web'), 'parent_id': agent2,
         'selectors': sel(('unix', 'uid:1001')), 'x509_svid_ttl': 300, 'dns_names': ['web.example.org']},
        {'entry_id': 'other-4', 'spiffe_id': server.spiffe_id('downstream'), 'parent_id': agent2,
         'selectors': sel(('unix', 'uid:0')), 'downstream': True},
    ]
    results = server.create_entries(raw)
    assert all(r['status']['code'] == 0 for r in results), results
    return agent1, agent2


def ids(result):
    assert not result.get('failed'), result
    assert result['changed'] is False and result['count'] == len(result['entries'])
    return sorted(e['entry_id'] for e in result['entries'])


def test_filters(ansible_cases, spire_server, spire_server_b):
    agent1, agent2 = seed(spire_server, spire_server_b)
    base = spire_server_module_args(spire_server)
    cases = [
        ({}, ['other-3', 'other-4', 'team.1', 'team.2']),
        (dict(spiffe_id=spire_server.spiffe_id('web')), ['other-3', 'team.1']),
        (dict(parent_id=agent1), ['team.1', 'team.2']),
        (dict(spiffe_id=spire_server.spiffe_id('web'), parent_id=agent2), ['other-3']),
        (dict(selectors=['unix:uid:1001']), ['other-3', 'team.1']),                    # superset (default)
        (dict(selectors=['unix:uid:1001'], match='exact'), ['other-3']),
        (dict(selectors=['unix:uid:1001', 'unix:uid:1002'], match='any'), ['other-3', 'team.1', 'team.2']),
        (dict(selectors=['unix:uid:1001', 'unix:gid:1001', 'unix:uid:7'], match='subset'), ['other-3', 'team.1']),
        (dict(hint='frontend'), ['team.1']),
        (dict(federates_with=['other.example']), ['team.2']),
        (dict(federates_with=['spiffe://other.example'], match_federates_with='exact'), ['team.2']),
        (dict(downstream=True), ['other-4']),
        (dict(entry_id_prefix='team'), ['team.1', 'team.2']),
        (dict(entry_id='team.2'), ['team.2']),
        (dict(entry_id='no-such-entry'), []),                                          # unknown entry
        (dict(spiffe_id=spire_server.spiffe_id('nothing-here')), []),
    ]
    results = ansible_cases('spire_entry_info', [dict(base, **filters) for filters, dummy in cases])
    for (filters, expected), result in zip(cases, results):
        assert ids(result) == expected, filters
    everything = results[0]
    web = [e for e in everything['entries'] if e['entry_id'] == 'other-3'][0]
    assert web['spiffe_id'] == 'spiffe://example.org/web' and web['parent_id'] == agent2
    assert web['selectors'] == ['unix:uid:1001'] and web['x509_svid_ttl'] == 300
    assert web['dns_names'] == ['web.example.org'] and web['created_at'] > 0
    assert everything['trust_domain'] == 'example.org'
    db = [e for e in everything['entries'] if e['entry_id'] == 'team.2'][0]
    assert db['federates_with'] == ['other.example']


def test_many_entries_every_page(ansible, spire_server):
    """More than one page of the server's list (it pages by 500)."""
    parent = spire_server.spiffe_id('agent/a')
    batch = [{'spiffe_id': spire_server.spiffe_id('bulk/%d' % i), 'parent_id': parent,
              'selectors': [{'type': 'unix', 'value': 'uid:%d' % i}]} for i in range(1203)]
    for start in range(0, len(batch), 400):
        spire_server.create_entries(batch[start:start + 400])
    result = ansible.module('spire_entry_info', dict(spire_server_module_args(spire_server), parent_id=parent),
                            check=True)
    assert result['count'] == 1203
    assert len(set(e['spiffe_id'] for e in result['entries'])) == 1203


def test_bad_inputs_and_unreachable(ansible, ansible_cases, spire_server):
    base = spire_server_module_args(spire_server)
    cases = [
        (dict(spiffe_id='spiffe://example.org/a//b'), 'spiffe_id: '),
        (dict(parent_id='example.org/agent'), 'parent_id: '),
        (dict(spiffe_id='spiffe://other.example/w'), "spiffe_id: spiffe://other.example/w is in trust domain "
                                                     "'other.example', not in the server's trust domain"),
        (dict(selectors=['unix']), 'selectors[0]: '),
        (dict(selectors=['unix:']), 'empty value'),
        (dict(federates_with=['Not A Domain']), 'federates_with[0]'),
        (dict(match='most'), 'match'),
        (dict(entry_id='x', spiffe_id='spiffe://example.org/w'), 'mutually exclusive'),
        (dict(entry_id='bad id'), 'entry_id: '),
    ]
    results = ansible_cases('spire_entry_info', [dict(base, **filters) for filters, dummy in cases])
    for (filters, expected), result in zip(cases, results):
        assert result.get('failed') is True, (filters, result)
        assert expected in result['msg'], (expected, result['msg'])
    spire_server.stop()
    result = ansible.module('spire_entry_info', base)
    assert result['failed'] is True
    assert 'not reachable on socket_path %s' % spire_server.socket_path in result['msg']


def test_result_feeds_spire_entry(ansible, spire_server, spire_server_b):
    """Entries read by spire_entry_info can be declared again with spire_entry unchanged."""
    seed(spire_server, spire_server_b)
    base = spire_server_module_args(spire_server)
    listed = ansible.module('spire_entry_info', dict(base, entry_id_prefix='team'))['entries']
    declared = [dict((k, v) for k, v in e.items() if k not in ('revision_number', 'created_at'))
                for e in listed]
    result = ansible.module('spire_entry', dict(base, entries=declared, entry_id_prefix='team', prune=True))
    assert not result.get('failed'), result
    assert result['changed'] is False and result['counts']['unchanged'] == 2


def test_spiffe_filters(ansible):
    play = ansible.write_playbook('filters.yml', '''
        - hosts: localhost
          gather_facts: false
          tasks:
            - name: Parse and test IDs
              ansible.builtin.copy:
                content: "{{ {'parsed': 'spiffe://example.org/ns/prod' | trustroot.ops.spiffe_id_parse,
                              'valid': ['spiffe://example.org/w', 'spiffe://example.org/w/', 'x']
                                       | map('trustroot.ops.spiffe_id_valid') | list,
                              'in_td': 'spiffe://example.org/w' | trustroot.ops.spiffe_id_valid('other.org')} | to_json }}"
                dest: out.json
                mode: "0600"
            - name: A bad ID is an error naming the rule
              ansible.builtin.debug:
                msg: "{{ 'spiffe://example.org//x' | trustroot.ops.spiffe_id_parse }}"
        ''')
    proc = ansible.playbook(play)
    assert proc.returncode == 2, proc.stdout
    assert 'empty segment' in proc.stdout
    with open(ansible.workdir + '/out.json') as handle:
        out = json.load(handle)
    assert out['parsed'] == {'id': 'spiffe://example.org/ns/prod', 'trust_domain': 'example.org', 'path': '/ns/prod',
                             'segments': ['ns', 'prod']}
    assert out['valid'] == [True, False, False] and out['in_td'] is False

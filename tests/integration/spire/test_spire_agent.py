"""spire_agent_info and spire_agent against a real spire-server with real agents: listing with every filter,
showing one agent, ban and evict (check mode, real, idempotent), purge of expired agents (check mode is
SPIRE's -dryRun), bad inputs, a stopped server."""

import time

from tests.integration.probes import command_probe, json_of, play, task
from tests.lab.spire import SpireAgent, SpireServer, spire_server_module_args


def run_each(ansible, server, module, arg_sets):
    """The module once per argument set, as the tasks of ONE ansible-playbook run (each task ignore_errors): the
    registered results in order."""
    results, _output = ansible.modules([(module, dict(spire_server_module_args(server), **args)) for args in arg_sets])
    return results


def agents_of(listing):
    """{SPIFFE ID: agent} of a parsed `spire-server agent list -output json`."""
    return dict(('spiffe://%s%s' % (a['id']['trust_domain'], a['id']['path']), a) for a in listing.get('agents') or [])


def server_agents(server):
    return agents_of(server.cli(['agent', 'list']))


def agents_probe(server):
    """`spire-server agent list` at that point of a playbook run: see agents_of(json_of(probe))."""
    return command_probe([server.binary, 'agent', 'list', '-socketPath', server.socket_path, '-output', 'json'])


def agent_task(server, module, **args):
    """A task of the module with the server's connection options (task options check_mode, diff from args)."""
    options = dict((key, args.pop(key)) for key in ('check_mode', 'diff') if key in args)
    return task(module, dict(spire_server_module_args(server), **args), **options)


def test_info_lists_filters_and_shows(ansible, spire_server, spire_agent):
    filters = [
        ({'attestation_type': 'join_token'}, 1), ({'attestation_type': 'x509pop'}, 0),
        ({'banned': False}, 1), ({'banned': True}, 0),
        ({'can_reattest': False}, 1), ({'can_reattest': True}, 0),
        ({'expires_before': '+48h'}, 1), ({'expires_before': '2020-01-01T00:00:00Z'}, 0),
        ({'selectors': ['unix:uid:12345'], 'match': 'any'}, 0),
    ]
    # Read-only queries: all of them in one playbook run, each result asserted on its own.
    results = run_each(ansible, spire_server, 'spire_agent_info', [{}] + [args for args, _count in filters] + [
        {'spiffe_id': spire_agent.spiffe_id}, {'spiffe_id': 'spiffe://example.org/spire/agent/join_token/nope'}])
    listed, filtered, shown, unknown = results[0], results[1:-2], results[-2], results[-1]
    assert not listed.get('failed'), listed
    assert listed['changed'] is False and listed['count'] == 1
    agent = listed['agents'][0]
    assert agent['spiffe_id'] == spire_agent.spiffe_id
    assert agent['attestation_type'] == 'join_token' and agent['trust_domain'] == 'example.org'
    assert isinstance(agent['x509svid_expires_at'], int) and agent['x509svid_expires_at'] > time.time()
    assert agent['x509svid_expires_at_iso'].endswith('Z')
    assert agent['banned'] is False and agent['can_reattest'] is False and agent['selectors'] == []
    raw = server_agents(spire_server)[spire_agent.spiffe_id]
    assert agent['x509svid_expires_at'] == int(raw['x509svid_expires_at'])
    assert agent['x509svid_serial_number'] == raw['x509svid_serial_number']

    assert len(filtered) == len(filters)
    for (args, count), result in zip(filters, filtered):
        assert result['count'] == count, (args, result)

    assert shown['agent'] == agent and shown['agents'] == [agent]

    assert not unknown.get('failed') and unknown['agent'] is None and unknown['count'] == 0, unknown


def test_info_bad_inputs(ansible, spire_server):
    cases = [
        ({'spiffe_id': 'spiffe://example.org/workload'}, 'spiffe_id must be an agent ID'),
        ({'spiffe_id': 'example.org/spire/agent/x'}, "spiffe_id: SPIFFE ID 'example.org/spire/agent/x' must start with "
                                                     "spiffe://"),
        ({'spiffe_id': 'spiffe://other.example/spire/agent/x'},
         'spiffe_id spiffe://other.example/spire/agent/x was refused by the server'),
        ({'expires_before': 'next tuesday'}, 'expires_before must be an ISO 8601 time'),
        ({'selectors': ['uid']}, 'selectors[0] must be "type:value"'),
        ({'spiffe_id': 'spiffe://example.org/spire/agent/x', 'banned': True}, 'mutually exclusive'),
    ]
    results = run_each(ansible, spire_server, 'spire_agent_info', [args for args, _needle in cases])
    assert len(results) == len(cases)
    for (args, needle), result in zip(cases, results):
        assert result.get('failed') is True and needle in result['msg'], (args, result)


def test_ban_then_evict(ansible, spire_server, spire_agent, tmp_path):
    sid = spire_agent.spiffe_id
    server = spire_server

    # Every step in one playbook run, the server's agents listed after the steps that must (not) change them.
    (check_ban, after_check_ban, banned, after_ban, ban_again, check_evict, after_check_evict, evicted, after_evict,
     evict_again, ban_absent) = play(ansible, tmp_path, [
         agent_task(server, 'spire_agent', check_mode=True, diff=True, spiffe_id=sid, state='banned'),
         agents_probe(server),
         agent_task(server, 'spire_agent', spiffe_id=sid, state='banned'), agents_probe(server),
         agent_task(server, 'spire_agent', spiffe_id=sid, state='banned'),
         agent_task(server, 'spire_agent', check_mode=True, spiffe_id=sid, state='evicted'), agents_probe(server),
         agent_task(server, 'spire_agent', diff=True, spiffe_id=sid, state='evicted'), agents_probe(server),
         agent_task(server, 'spire_agent', spiffe_id=sid, state='evicted'),
         agent_task(server, 'spire_agent', spiffe_id=sid, state='banned')])

    assert check_ban['changed'] is True and check_ban['state_before'] == 'attested' and check_ban['state_after'] == 'banned', check_ban
    assert check_ban['diff'] == {'before': {'spiffe_id': sid, 'state': 'attested'}, 'after': {'spiffe_id': sid, 'state': 'banned'}}
    assert agents_of(json_of(after_check_ban))[sid]['banned'] is False, 'check mode banned the agent'

    assert banned['changed'] is True, banned
    assert agents_of(json_of(after_ban))[sid]['banned'] is True
    assert ban_again['changed'] is False and ban_again['state_before'] == 'banned', ban_again

    assert check_evict['changed'] is True and check_evict['state_after'] == 'absent'
    assert sid in agents_of(json_of(after_check_evict)), 'check mode evicted the agent'

    assert evicted['changed'] is True and evicted['agent']['spiffe_id'] == sid, evicted
    assert evicted['diff']['after']['state'] == 'absent'
    assert sid not in agents_of(json_of(after_evict))
    assert evict_again['changed'] is False and evict_again['agent'] is None, evict_again

    # a ban needs an attested agent
    assert ban_absent['failed'] is True and 'is not an attested agent of this server' in ban_absent['msg']
    assert sid not in server_agents(server)


def test_agent_bad_inputs(ansible, spire_server, spire_agent):
    cases = [
        ({'state': 'evicted', 'spiffe_id': 'spiffe://example.org/spire/agent/../x'},
         "spiffe_id: SPIFFE ID 'spiffe://example.org/spire/agent/../x': path '/spire/agent/../x' has a '..' segment"),
        ({'state': 'evicted', 'spiffe_id': 'spiffe://example.org/node'}, 'spiffe_id must be an agent ID'),
        ({'state': 'banned', 'spiffe_id': 'spiffe://other.example/spire/agent/x'},
         "is not in the server's trust domain example.org"),
        ({'state': 'banned'}, 'spiffe_id'),
        ({'state': 'purged', 'expired_for': '3 weeks'}, 'expired_for must be seconds or a duration'),
        ({'state': 'purged', 'spiffe_id': spire_agent.spiffe_id}, 'spiffe_id is not used with state=purged'),
    ]
    results = run_each(ansible, spire_server, 'spire_agent', [args for args, _needle in cases])
    assert len(results) == len(cases)
    for (args, needle), result in zip(cases, results):
        assert result.get('failed') is True and needle in result['msg'], (args, result)
    assert server_agents(spire_server)[spire_agent.spiffe_id]['banned'] is False


def test_purge_expired_agents(ansible, tmp_path):
    # Agent SVIDs live 20 s on this server; an x509pop agent (re-attestable, so purgeable) is stopped and left
    # to expire.
    server = SpireServer(str(tmp_path), name='server-p', x509_svid_ttl='20s')
    agent = None
    try:
        server.start()
        agent = SpireAgent(str(tmp_path), server, name='agent-p', attestation='x509pop').start()
        sid = agent.spiffe_id
        # The listing and a purge with nothing expired yet, in one playbook run.
        info, none = play(ansible, tmp_path, [
            agent_task(server, 'spire_agent_info', selectors=['x509pop:subject:cn:agent-x509pop'], match='any'),
            agent_task(server, 'spire_agent', state='purged')])
        assert [a['spiffe_id'] for a in info['agents']] == [sid], info
        assert info['agents'][0]['can_reattest'] is True
        assert 'x509pop:subject:cn:agent-x509pop' in info['agents'][0]['selectors']

        assert none['changed'] is False and none['purged'] == [], none

        agent.stop()
        expires = int(server_agents(server)[sid]['x509svid_expires_at'])
        while time.time() < expires + 3:
            time.sleep(1)

        # Check mode, the purge and its re-run in one playbook run, the agents listed after the first two.
        check, after_check, purged, after_purge, again = play(ansible, tmp_path, [
            agent_task(server, 'spire_agent', check_mode=True, diff=True, state='purged', expired_for='1s'),
            agents_probe(server),
            agent_task(server, 'spire_agent', state='purged', expired_for='1s'), agents_probe(server),
            agent_task(server, 'spire_agent', state='purged', expired_for='1s')])
        assert check['changed'] is True, check
        assert check['purged'] == [{'spiffe_id': sid, 'deleted': False, 'error': ''}]
        assert check['diff']['before'] == {'expired_agents': [sid]} and check['diff']['after'] == {'expired_agents': []}
        assert sid in agents_of(json_of(after_check)), 'check mode purged the agent'

        assert purged['changed'] is True and purged['purged'] == [{'spiffe_id': sid, 'deleted': True, 'error': ''}]
        assert agents_of(json_of(after_purge)) == {}

        assert again['changed'] is False and again['purged'] == []
    finally:
        if agent is not None:
            agent.cleanup()
        server.cleanup()


def test_unreachable_socket(ansible, spire_server, spire_agent):
    spire_server.stop()
    cases = (('spire_agent_info', {}), ('spire_agent', {'state': 'evicted', 'spiffe_id': spire_agent.spiffe_id}))
    results, _output = ansible.modules([(module, dict(spire_server_module_args(spire_server), **args))
                                        for module, args in cases])
    assert len(results) == len(cases)
    for result in results:
        assert result['failed'] is True
        assert 'not reachable on socket_path %s' % spire_server.socket_path in result['msg'], result

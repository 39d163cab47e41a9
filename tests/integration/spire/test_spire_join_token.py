"""spire_join_token against a real spire-server: check mode generates nothing (checked in the datastore), a
generated token attests a real spire-agent, the token never appears in any output at -vvvv except where it
was registered, output_path (0600 file, token not returned), every run is a new token, bad inputs, a stopped
server; then the attested agent is evicted with spire_agent."""

import json
import os
import sqlite3
import stat

from tests.lab.spire import SpireAgent, spire_server_module_args


def run(ansible, server, module='spire_join_token', check=False, **args):
    params = dict(spire_server_module_args(server))
    params.update(args)
    return ansible.module(module, params, check=check)


def run_each(ansible, server, arg_sets):
    """spire_join_token once per argument set, as the tasks of ONE ansible-playbook run (each task ignore_errors),
    for calls that do not depend on each other: the registered results in order."""
    results, _output = ansible.modules([('spire_join_token', dict(spire_server_module_args(server), **args))
                                        for args in arg_sets])
    assert len(results) == len(arg_sets)
    return results


def tokens(server):
    """The join tokens in the server's datastore (read-only)."""
    db = sqlite3.connect('file:%s?mode=ro' % server.datastore_path, uri=True)
    try:
        return set(row[0] for row in db.execute('SELECT token FROM join_tokens'))
    finally:
        db.close()


class TokenServer(object):
    """The lab server, except that the agent attests with the token under test."""

    def __init__(self, server, token):
        self._server = server
        self._token = token

    def join_token(self, spiffe_id=None, ttl=600):
        return self._token

    def __getattr__(self, name):
        return getattr(self._server, name)


def outputs(ansible):
    return ''.join(proc.stdout + proc.stderr for proc in ansible.runs)


def test_check_mode_generates_nothing(ansible, spire_server):
    before = tokens(spire_server)
    result = run(ansible, spire_server, check=True, spiffe_id=spire_server.spiffe_id('node/a'), ttl=120)
    assert not result.get('failed'), result
    assert result['changed'] is True and result['token'] is None and result['expires_at'] == 0
    assert tokens(spire_server) == before


def test_token_attests_agent_and_stays_out_of_output(ansible, spire_server, tmp_path):
    saved = str(tmp_path / 'registered.json')
    args = dict(spire_server_module_args(spire_server), spiffe_id=spire_server.spiffe_id('node/jt'), ttl=300)
    playbook = ansible.write_playbook('token.yml', '''
        - hosts: localhost
          gather_facts: false
          tasks:
            - name: Generate a join token
              trustroot.ops.spire_join_token: %s
              register: join
              no_log: true
            - name: Keep the registered result for the test
              ansible.builtin.copy:
                content: "{{ join | to_json }}"
                dest: %s
                mode: "0600"
              no_log: true
            - name: Show what the task reported
              ansible.builtin.debug:
                msg: "changed={{ join.changed }} expires={{ join.expires_at_iso }}"
        ''' % (json.dumps(args), saved))
    before = tokens(spire_server)
    proc = ansible.playbook(playbook, verbosity=4)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(saved) as handle:
        registered = json.load(handle)
    token = registered['token']
    assert token and registered['changed'] is True
    assert tokens(spire_server) == before | {token}
    assert registered['spiffe_id'] == spire_server.spiffe_id('node/jt') and registered['output_path'] is None
    assert 'changed=True expires=20' in proc.stdout
    assert token not in proc.stdout + proc.stderr
    assert oct(stat.S_IMODE(os.stat(saved).st_mode)) == '0o600'

    # the token attests a real agent; SPIRE gave it the alias entry for the requested SPIFFE ID
    agent = SpireAgent(str(tmp_path), TokenServer(spire_server, token), name='agent-jt')
    try:
        agent.start()
        agent_id = 'spiffe://example.org/spire/agent/join_token/%s' % token
        assert agent.spiffe_id == agent_id
        listed = spire_server.cli(['agent', 'list'])['agents']
        assert ['spiffe://example.org%s' % a['id']['path'] for a in listed] == [agent_id]
        aliases = [e for e in spire_server.entries() if e['spiffe_id']['path'] == '/node/jt']
        assert aliases and aliases[0]['parent_id']['path'] == '/spire/agent/join_token/%s' % token
        assert token not in tokens(spire_server)       # consumed

        # evict the attested agent
        evicted = run(ansible, spire_server, module='spire_agent', spiffe_id=agent_id, state='evicted')
        assert evicted['changed'] is True, evicted
        assert spire_server.cli(['agent', 'list'])['agents'] == []
    finally:
        agent.cleanup()
    assert token not in outputs(ansible)


def test_every_run_is_a_new_token_and_output_path(ansible, spire_server, tmp_path):
    first, second = run_each(ansible, spire_server, [{}, {'ttl': 60}])
    assert first['changed'] is True and second['changed'] is True
    assert first['token'] and second['token'] and first['token'] != second['token']
    assert {first['token'], second['token']} <= tokens(spire_server)
    assert second['expires_at'] - first['expires_at'] < 0     # 60 s after the second run is before 600 s after the first

    path = str(tmp_path / 'agent.token')
    before = tokens(spire_server)
    written = run(ansible, spire_server, output_path=path, ttl=120)
    assert written['changed'] is True and written['token'] is None and written['output_path'] == path, written
    assert oct(stat.S_IMODE(os.stat(path).st_mode)) == '0o600'
    with open(path) as handle:
        content = handle.read()
    assert content.endswith('\n')
    assert tokens(spire_server) - before == {content.strip()}
    assert content.strip() not in written['_stdout'] and content.strip() not in json.dumps(written)

    checked = run(ansible, spire_server, check=True, output_path=str(tmp_path / 'check.token'))
    assert checked['changed'] is True and not os.path.exists(str(tmp_path / 'check.token'))


def test_bad_inputs_generate_nothing(ansible, spire_server, tmp_path):
    before = tokens(spire_server)
    cases = [
        ({'ttl': 0}, 'ttl must be a whole number of seconds between 1 and 2147483647'),
        ({'ttl': 2 ** 31}, 'ttl must be a whole number of seconds'),
        ({'spiffe_id': 'spiffe://example.org/a/../b'},
         "spiffe_id: SPIFFE ID 'spiffe://example.org/a/../b': path '/a/../b' has a '..' segment"),
        ({'spiffe_id': 'example.org/node'}, "spiffe_id: SPIFFE ID 'example.org/node' must start with spiffe://"),
        ({'spiffe_id': 'spiffe://other.example/node'}, "spiffe_id spiffe://other.example/node is not in the server's "
                                                       "trust domain example.org"),
        ({'spiffe_id': 'spiffe://example.org/spire/agent/x'}, 'spiffe_id must not be under the reserved /spire/ path'),
        ({'output_path': str(tmp_path / 'missing' / 'token')}, 'output_path cannot be written: directory'),
        ({'output_path': str(tmp_path)}, 'is a directory'),
    ]
    results = run_each(ansible, spire_server, [args for args, _needle in cases])
    for (args, needle), result in zip(cases, results):
        assert result.get('failed') is True and needle in result['msg'], (args, result)
    assert tokens(spire_server) == before


def test_unreachable_socket(ansible, spire_server):
    spire_server.stop()
    result = run(ansible, spire_server)
    assert result['failed'] is True and result.get('token') is None
    assert 'not reachable on socket_path %s' % spire_server.socket_path in result['msg'], result

"""Unit tests for the SPIRE CLI runner (plugins/module_utils/_spire.py)."""

import json
import os
import random
import stat

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils import _spire
from ansible_collections.trustroot.ops.plugins.module_utils._spire import (
    DEFAULT_SERVER_SOCKET, MAX_BATCH, MAX_DELETE_BATCH, SpireError, SpireServerCLI, check_results, chunked,
    clean_stderr, grpc_error, iter_json_array, result_failures, server_argument_spec)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
REAL_SPIRE_SERVER = os.path.join(ROOT, '.cache', 'bin', 'spire-server')


class FailJson(Exception):
    pass


class FakeModule(object):
    """The part of AnsibleModule the runner uses."""

    def __init__(self, params, path_lookup=None):
        self.params = params
        self.path_lookup = path_lookup

    def fail_json(self, **kwargs):
        raise FailJson(kwargs['msg'])

    def get_bin_path(self, name, opt_dirs=None):
        return self.path_lookup


def test_constants_and_argument_spec():
    assert DEFAULT_SERVER_SOCKET == '/tmp/spire-server/private/api.sock'
    assert (MAX_BATCH, MAX_DELETE_BATCH) == (50, 200)
    spec = server_argument_spec()
    assert set(spec) == {'socket_path', 'spire_server_path', 'timeout'}
    assert spec['socket_path']['default'] == DEFAULT_SERVER_SOCKET
    assert spec['socket_path']['fallback'][1] == ['SPIRE_SERVER_SOCKET']
    assert spec['socket_path']['type'] == 'path' and spec['spire_server_path']['type'] == 'path'
    assert spec['timeout'] == {'type': 'int', 'default': 60}


def test_chunked():
    assert list(chunked(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert list(chunked([], 50)) == []
    assert list(chunked(iter(range(100)), 50)) == [list(range(50)), list(range(50, 100))]
    with pytest.raises(ValueError):
        list(chunked([1], 0))


def test_result_failures_and_check_results():
    results = [
        {'status': {'code': 0, 'message': 'OK'}, 'entry': {'id': 'a'}},
        {'status': {'code': 6, 'message': 'similar entry already exists'}, 'entry': {'id': 'b'}},
        {'status': {'code': 3, 'message': 'failed to create entry: unable to find federated bundle'},
         'entry': {'id': 'c'}},
    ]
    failures = result_failures(results, lambda r: r['entry']['id'])
    assert failures == [
        {'item': 'b', 'code': 6, 'message': 'similar entry already exists'},
        {'item': 'c', 'code': 3, 'message': 'failed to create entry: unable to find federated bundle'},
    ]
    with pytest.raises(SpireError) as info:
        check_results(results, lambda r: r['entry']['id'])
    assert info.value.failures == failures
    assert '2 of 3 results failed' in info.value.message
    assert 'b: similar entry already exists (ALREADY_EXISTS)' in info.value.message
    check_results(results[:1], lambda r: 'x')
    assert result_failures([{'status': {}}], str) == []


def test_grpc_error_and_clean_stderr():
    text = ('Error: error fetching entry ID x: rpc error: code = NotFound desc = entry not found\n')
    assert grpc_error(text) == ('NotFound', 'entry not found')
    assert grpc_error('plain failure') == (None, None)
    assert clean_stderr('Error: bad flag\nUsage of entry show:\n  -x\n') == 'bad flag'


@pytest.mark.parametrize('split', [1, 2, 3, 7, 64, 10 ** 6])
def test_iter_json_array_any_split(split):
    doc = {'entries': [{'id': str(i), 'n': i, 'nested': {'a': [1, 2, {'b': 'x]}'}]}} for i in range(50)],
           'next_page_token': '', 'z': 12345}
    text = json.dumps(doc)
    chunks = [text[i:i + split] for i in range(0, len(text), split)]
    assert list(iter_json_array(chunks, 'entries')) == doc['entries']


def test_iter_json_array_shapes():
    assert list(iter_json_array(['{"entries":[],"next_page_token":""}'], 'entries')) == []
    assert list(iter_json_array(['{"next_page_token":""}'], 'entries')) == []
    assert list(iter_json_array(['{}'], 'entries')) == []
    assert list(iter_json_array(['{"a": 1, "entries": null}'], 'entries')) == []
    assert list(iter_json_array(['  {"b":[1,2], "entries" : [ 1 , 2 ,3 ] }\n'], 'entries')) == [1, 2, 3]
    assert list(iter_json_array(['{"entries":[12', '34, 5]}'], 'entries')) == [1234, 5]
    random.seed(7)
    text = json.dumps({'count': 3, 'entries': [{'k': 'v' * random.randint(0, 30)} for dummy in range(200)]})
    cuts = sorted(random.sample(range(1, len(text)), 40))
    pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
    assert len(list(iter_json_array(pieces, 'entries'))) == 200


@pytest.mark.parametrize('text', ['', '[1]', '{"entries":[1,2', '{"entries":[1 2]}', '{"entries":[1],'])
def test_iter_json_array_malformed(text):
    with pytest.raises(ValueError):
        list(iter_json_array([text], 'entries'))


def _fake_binary(tmp_path, script):
    path = tmp_path / 'spire-server'
    path.write_text('#!/bin/sh\n' + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def _cli(tmp_path, script, **params):
    base = {'socket_path': str(tmp_path / 'api.sock'), 'spire_server_path': _fake_binary(tmp_path, script),
            'timeout': 10}
    base.update(params)
    return SpireServerCLI(FakeModule(base))


def test_run_json_argv_and_stdin(tmp_path):
    # The fake binary echoes its argv and stdin back as JSON.
    cli = _cli(tmp_path, 'python3 -c "import json,sys; print(json.dumps({\'argv\': sys.argv[1:], '
                         '\'stdin\': sys.stdin.read()}))" "$@"\n')
    answer = cli.run_json(['entry', 'create', '-data', '-'], data='{"entries": []}')
    assert answer['argv'] == ['entry', 'create', '-data', '-', '-socketPath', str(tmp_path / 'api.sock'),
                              '-output', 'json']
    assert answer['stdin'] == '{"entries": []}'
    assert cli.run_json(['bundle', 'show'], data=b'x')['stdin'] == 'x'


def test_run_json_failure_names_command_not_data(tmp_path):
    cli = _cli(tmp_path, 'echo "Error: error fetching entry ID x: rpc error: code = NotFound desc = entry not found" >&2\n'
                         'exit 1\n')
    with pytest.raises(SpireError) as info:
        cli.run_json(['entry', 'create', '-data', '-'], data='{"secret-looking": "s3cr3t"}')
    assert 'spire-server entry create -data -' in info.value.message
    assert 'entry not found' in info.value.message
    assert 's3cr3t' not in info.value.message
    assert info.value.grpc_code == 'NotFound'


def test_run_json_not_json(tmp_path):
    cli = _cli(tmp_path, 'echo "Found 0 entries"\n')
    with pytest.raises(SpireError) as info:
        cli.run_json(['entry', 'show'])
    assert 'did not print JSON' in info.value.message


@pytest.mark.parametrize('printed', ['[]', '"ok"', 'null', '{"entries": [], "next'])
def test_run_json_refuses_what_is_not_one_object(tmp_path, printed):
    cli = _cli(tmp_path, "printf '%%s' '%s'\n" % printed)
    with pytest.raises(SpireError) as info:
        cli.run_json(['entry', 'show'])
    assert 'spire-server entry show' in info.value.message
    assert 'not an object' in info.value.message or 'did not print JSON' in info.value.message


def test_run_json_timeout(tmp_path):
    cli = _cli(tmp_path, 'exec sleep 5\n', timeout=1)
    with pytest.raises(SpireError) as info:
        cli.run_json(['entry', 'show'])
    assert 'timed out after 1s' in info.value.message


def test_stream_json_array(tmp_path):
    doc = {'entries': [{'id': str(i)} for i in range(3000)], 'next_page_token': ''}
    data = tmp_path / 'answer.json'
    data.write_text(json.dumps(doc))
    cli = _cli(tmp_path, 'cat %s\n' % data)
    assert [e['id'] for e in cli.stream_json_array(['entry', 'show'], 'entries')] == [str(i) for i in range(3000)]
    failing = _cli(tmp_path, 'echo "Error: boom" >&2; exit 1\n')
    with pytest.raises(SpireError) as info:
        list(failing.stream_json_array(['entry', 'show'], 'entries'))
    assert 'boom' in info.value.message
    slow = _cli(tmp_path, 'exec sleep 5\n', timeout=1)
    with pytest.raises(SpireError) as info:
        list(slow.stream_json_array(['entry', 'show'], 'entries'))
    assert 'timed out' in info.value.message


def test_run_plain(tmp_path):
    cli = _cli(tmp_path, 'echo "out $*"; echo err >&2; exit 3\n')
    rc, out, err = cli.run_plain(['healthcheck'])
    assert rc == 3 and out.strip() == 'out healthcheck -socketPath %s' % (tmp_path / 'api.sock')
    assert err.strip() == 'err'


def test_binary_lookup(tmp_path):
    with pytest.raises(SpireError) as info:
        SpireServerCLI(FakeModule({'spire_server_path': str(tmp_path / 'missing'), 'socket_path': 'x'}))
    assert 'spire_server_path' in str(info.value)
    with pytest.raises(SpireError) as info:
        SpireServerCLI(FakeModule({'spire_server_path': None, 'socket_path': 'x'}, path_lookup=None))
    assert 'spire_server_path' in str(info.value)
    cli = SpireServerCLI(FakeModule({'spire_server_path': None, 'socket_path': None}, path_lookup='/bin/true'))
    assert cli.binary == '/bin/true' and cli.socket_path == DEFAULT_SERVER_SOCKET and cli.timeout == 60


@pytest.mark.skipif(not os.path.exists(REAL_SPIRE_SERVER), reason='spire-server not built')
def test_unreachable_socket_names_socket_path(tmp_path):
    socket_path = str(tmp_path / 'nothing-here.sock')
    cli = SpireServerCLI(FakeModule({'spire_server_path': REAL_SPIRE_SERVER, 'socket_path': socket_path,
                                     'timeout': 30}))
    with pytest.raises(SpireError) as info:
        cli.run_json(['entry', 'show'])
    assert 'not reachable on socket_path %s' % socket_path in info.value.message
    with pytest.raises(SpireError) as info:
        list(cli.stream_json_array(['entry', 'show'], 'entries'))
    assert 'not reachable on socket_path %s' % socket_path in info.value.message
    assert _spire.looks_unreachable(info.value.message)

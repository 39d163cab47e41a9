"""Every reader of a server answer refuses what is not the answer it reads: a web page, an empty body, a cut-off
body, JSON of another shape. The answers come from a real HTTP server on loopback (stdlib), through VaultNode and
requests exactly as a module sends them; only the bodies are canned."""

import http.server
import json
import socket
import threading

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils import _vault as vault
from ansible_collections.trustroot.ops.plugins.module_utils._vault import LEADER, SEAL_STATUS, VaultError, VaultNode
from ansible_collections.trustroot.ops.plugins.module_utils._vault_digest import DigestError, node_callables
from ansible_collections.trustroot.ops.plugins.module_utils._vault_keyring import KEY_STATUS
from ansible_collections.trustroot.ops.plugins.module_utils._vault_raft import ask_leader, join, read_autopilot, read_peers
from ansible_collections.trustroot.ops.plugins.module_utils._vault_rekey import OperationError, RekeyRun
from ansible_collections.trustroot.ops.plugins.module_utils._vault_root_token import GenerateRootRun, lookup_state
from ansible_collections.trustroot.ops.plugins.module_utils._vault_status import read_node
from ansible_collections.trustroot.ops.plugins.module_utils._vault_unseal import UnsealClient

HTML = (200, 'text/html; charset=utf-8', b'<!DOCTYPE html><html><head><title>OpenBao</title></head></html>')
EMPTY = (200, 'application/json', b'')
CUT_OFF = (200, 'application/json', b'{"initialized": true, "sealed": fa')
SHORT_READ = (200, 'application/json', b'{"initialized": true', 400)  # Content-Length says 400 bytes
NOT_AN_OBJECT = (200, 'application/json', b'[]')
OTHER_JSON = (200, 'application/json', b'{"request_id": "x", "data": null, "warnings": ["unknown path"]}')
BAD_BODIES = {'html': HTML, 'empty': EMPTY, 'cut_off': CUT_OFF, 'short_read': SHORT_READ,
              'not_an_object': NOT_AN_OBJECT, 'other_json': OTHER_JSON}

SEAL_STATUS_OK = {'type': 'shamir', 'initialized': True, 'sealed': False, 't': 2, 'n': 3, 'progress': 0,
                  'nonce': '', 'version': '2.7.2', 'build_date': '2025-01-01T00:00:00Z', 'migration': False,
                  'recovery_seal': False, 'storage_type': 'raft', 'cluster_name': 'c', 'cluster_id': 'id'}


class Canned(http.server.BaseHTTPRequestHandler):
    routes = {}

    def _answer(self):
        route = self.routes.get((self.command, self.path.split('?')[0]), (404, 'application/json', b'{"errors":[]}'))
        status, content_type, body = route[:3]
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(route[3] if len(route) > 3 else len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = do_LIST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def server():
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Canned)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%d' % httpd.server_address[1]
    httpd.shutdown()


def answer(method, path, value):
    """Route ``method /v1/path`` to ``value``: a BAD_BODIES tuple or a JSON-able object (answered 200)."""
    if not isinstance(value, tuple):
        value = (200, 'application/json', json.dumps(value).encode())
    Canned.routes[(method, '/v1/' + path)] = value


def node(url):
    return VaultNode(url, token='t', timeout=5)


# Each reader: (method, path answered, good answer, call that reads it and returns what the module uses).
READERS = {
    'seal_status': ('GET', 'sys/seal-status', SEAL_STATUS_OK, lambda n: n.seal_status()),
    'unseal': ('PUT', 'sys/unseal', SEAL_STATUS_OK, lambda n: UnsealClient(n).submit('k', False)),
    'health': ('GET', 'sys/health', {'initialized': True, 'sealed': False, 'standby': False}, lambda n: n.health()),
    'leader': ('GET', 'sys/leader', {'ha_enabled': True, 'is_self': True, 'leader_address': 'https://v1:8200'},
               lambda n: n.call('GET', 'sys/leader', auth=False, expect=LEADER)),
    'raft_peers': ('GET', 'sys/storage/raft/configuration',
                   {'data': {'config': {'index': 1, 'servers': [
                       {'node_id': 'n1', 'address': '127.0.0.1:8201', 'leader': True, 'voter': True}]}}},
                   read_peers),
    'join': ('POST', 'sys/storage/raft/join', {'joined': True}, lambda n: join(n, {})),
    'key_status': ('GET', 'sys/key-status', {'term': 2, 'install_time': '2026-12-04T06:00:00.1Z'},
                   lambda n: n.call('GET', 'sys/key-status', expect=KEY_STATUS)),
    'rekey_status': ('GET', 'sys/rekey/init', {'started': False, 'nonce': '', 'progress': 0, 'required': 2, 't': 0,
                                               'n': 0}, lambda n: RekeyRun(n, 'rekey', 'unseal').status()),
    'root_attempt': ('GET', 'sys/generate-root/attempt', {'started': False, 'nonce': '', 'progress': 0, 'required': 2,
                                                          'complete': False},
                     lambda n: GenerateRootRun(n, 'generate_root').status()),
    'token_lookup': ('GET', 'auth/token/lookup-self', {'data': {'policies': ['root'], 'id': 'x'}},
                     lambda n: lookup_state(n, None, True)),
    'kv_list': ('LIST', 'secret/metadata/app', {'data': {'keys': ['a', 'dir/']}},
                lambda n: node_callables(n)[0]('secret/metadata/app')),
    'kv_read': ('GET', 'secret/data/app', {'data': {'data': {'k': 'v'}, 'metadata': {}}},
                lambda n: node_callables(n)[1]('secret/data/app')),
}


@pytest.mark.parametrize('reader', sorted(READERS))
def test_each_reader_reads_a_real_shaped_answer(server, reader):
    method, path, good, read = READERS[reader]
    answer(method, path, good)
    assert read(node(server)) not in (None, {}, [])


@pytest.mark.parametrize('body', sorted(BAD_BODIES))
@pytest.mark.parametrize('reader', sorted(READERS))
def test_each_reader_refuses_what_is_not_its_answer(server, reader, body):
    method, path, _good, read = READERS[reader]
    answer(method, path, BAD_BODIES[body])
    with pytest.raises((VaultError, OperationError, DigestError)) as err:
        read(node(server))
    message = str(err.value)
    assert server in message, message
    assert path in message or body == 'short_read', message


def test_a_web_page_is_named_as_such(server):
    answer('GET', 'sys/seal-status', HTML)
    with pytest.raises(VaultError) as err:
        node(server).seal_status()
    assert 'GET sys/seal-status answered text/html instead of JSON' in str(err.value)
    assert 'not a page of the UI' in str(err.value)


def test_a_missing_field_is_named(server):
    answer('GET', 'sys/seal-status', dict((k, v) for k, v in SEAL_STATUS_OK.items() if k != 'sealed'))
    with pytest.raises(VaultError) as err:
        node(server).seal_status()
    assert str(err.value) == '%s: GET sys/seal-status answered no "sealed" field' % server


def test_a_field_of_another_type_is_named(server):
    answer('GET', 'sys/seal-status', dict(SEAL_STATUS_OK, sealed='false'))
    with pytest.raises(VaultError) as err:
        node(server).seal_status()
    assert '"sealed" is a string, not a boolean' in str(err.value)


def test_read_node_reports_an_unreadable_node_instead_of_a_state(server):
    answer('GET', 'sys/seal-status', HTML)
    state = read_node(node(server))
    assert state['reachable'] is False and state['initialized'] is None and state['sealed'] is None
    assert 'text/html' in state['error']


def test_a_standby_without_is_self_reads_as_a_standby(server):
    # OpenBao 2.6.x leaves "is_self" out of a standby's sys/leader answer (omitempty on false).
    answer('GET', 'sys/seal-status', {'type': 'shamir', 'initialized': True, 'sealed': False, 't': 3, 'n': 5,
                                      'progress': 0, 'version': '2.6.2', 'storage_type': 'raft'})
    answer('GET', 'sys/health', (429, 'application/json', json.dumps({'initialized': True, 'sealed': False,
                                                                      'standby': True}).encode()))
    answer('GET', 'sys/leader', {'ha_enabled': True, 'leader_address': 'https://v1:8200'})
    state = read_node(node(server), with_raft=False)
    assert state['reachable'] is True and state['error'] is None
    assert state['state'] == 'standby' and state['is_leader'] is False and state['leader_address'] == 'https://v1:8200'


def test_ask_leader_and_autopilot_return_the_problem(server):
    answer('GET', 'sys/leader', OTHER_JSON)
    found, problem = ask_leader(node(server))
    assert found is None and 'GET sys/leader answered no "ha_enabled" field' in problem
    answer('GET', 'sys/storage/raft/autopilot/state', {'data': {'healthy': True, 'servers': {'n1': {'id': 'n1'}}}})
    state, problem = read_autopilot(node(server))
    assert state is None and 'no "healthy" field' in problem and 'server n1' in problem


def test_error_statuses_keep_the_api_errors(server):
    answer('GET', 'sys/key-status', (403, 'application/json', b'{"errors":["permission denied"]}'))
    with pytest.raises(VaultError) as err:
        node(server).call('GET', 'sys/key-status', expect=KEY_STATUS)
    assert err.value.status == 403 and 'HTTP 403 from sys/key-status: permission denied' in str(err.value)


# --- shapes (pure) ---

@pytest.mark.parametrize('value, problem', [
    (None, 'an empty answer'),
    ([], 'a list instead of a JSON object'),
    ('text', 'a string instead of a JSON object'),
    ({'a': True}, 'no "b" field'),
    ({'a': True, 'b': None}, '"b" is null'),
    ({'a': 1, 'b': {'c': []}}, '"a" is a number, not a boolean'),
    ({'a': True, 'b': {'c': [1, 'x']}}, '"b.c[1]" is a string, not a number'),
    ({'a': True, 'b': {'c': [True]}}, '"b.c[0]" is a boolean, not a number'),
    ({'a': True, 'b': []}, '"b" is a list, not an object'),
    ({'a': True, 'b': {'c': [1]}, 'd': 5}, '"d" is a number, not a string'),
])
def test_shape_problem_names_the_field(value, problem):
    shape = {'a': bool, 'b': {'c': [int]}, 'd': vault.Optional(str)}
    assert vault.shape_problem(value, shape) == problem


def test_shape_problem_accepts_a_matching_answer_and_absent_optionals():
    shape = {'a': bool, 'b': {'c': [int]}, 'd': vault.Optional(str), 'e': (int, type(None))}
    assert vault.shape_problem({'a': False, 'b': {'c': []}, 'e': 0, 'extra': 1}, shape) is None
    assert vault.shape_problem(SEAL_STATUS_OK, SEAL_STATUS) is None


@pytest.mark.parametrize('content, content_type, problem', [
    (b'', 'text/html', None),
    (b'<html>', 'text/html; charset=utf-8', 'text/html instead of JSON: is url the API address'),
    (b'{}', None, 'a body without a content type instead of JSON'),
    (b'{"a":', 'application/json', 'a body that is not valid JSON (cut off?)'),
    (b'{"a":1}', 'application/json; charset=utf-8', None),
    (b'{"a":1}', 'application/problem+json', None),
])
def test_parse_json_body(content, content_type, problem):
    _body, found = vault.parse_json_body(content, content_type)
    assert (found is None) if problem is None else found.startswith(problem)


# --- addresses ---

@pytest.mark.parametrize('url', ['https://vault.example:8200', 'https://vault.example:8200/', 'http://127.0.0.1:8200',
                                 'http://[::1]:8200', 'https://vault'])
def test_server_addresses_are_accepted(url):
    assert vault.url_problem(url) is None


@pytest.mark.parametrize('url, problem', [
    ('https://vault:8200/ui/', 'must be the server address without a path, e.g. https://vault:8200 (got path '
                               "'/ui/'"),
    ('https://vault:8200/v1/', "must be the server address without a path, e.g. https://vault:8200 (got path '/v1/'"),
    ('vault:8200', "must start with http:// or https:// (got 'vault:8200')"),
    ('ftp://vault:8200', "must start with http:// or https://"),
    ('https://:8200', 'has no host name'),
    ('https://vault:99999', 'has a port that is not a number between 1 and 65535'),
    ('https://vault:port', 'has a port that is not a number between 1 and 65535'),
    ('https://user:pw@vault:8200', 'must not carry credentials'),
    ('https://vault:8200?x=1', 'must not have a query or a fragment'),
    (' https://vault:8200', 'contains white space'),
    ('', 'is empty'),
])
def test_malformed_addresses_are_refused(url, problem):
    assert vault.url_problem(url).startswith(problem)


def test_connection_option_errors_name_the_option_and_index():
    errors = vault.connection_option_errors({'url': 'https://v:8200/ui/', 'nodes': ['https://v1:8200', 'v2:8200']})
    assert errors[0].startswith('url must be the server address without a path')
    assert errors[1].startswith('nodes[1] must start with http:// or https://')
    assert vault.connection_option_errors({'url': None, 'nodes': None}) == []


# --- transport errors ---

def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_nothing_listening_says_connection_refused():
    with pytest.raises(VaultError) as err:
        node('http://127.0.0.1:%d' % free_port()).seal_status()
    assert 'GET sys/seal-status: unreachable: connection refused, nothing listens at that address' in str(err.value)


def test_https_against_plain_http_is_explained(server):
    answer('GET', 'sys/seal-status', SEAL_STATUS_OK)
    with pytest.raises(VaultError) as err:
        node(server.replace('http://', 'https://')).seal_status()
    assert 'https:// against a listener that speaks plain HTTP' in str(err.value)


def test_http_against_tls_is_explained():
    assert vault.http_error_message(400, None, 'Client sent an HTTP request to an HTTPS server.\n', 'Bad Request') == \
        'http:// against a listener that speaks TLS: use https://'

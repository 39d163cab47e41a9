# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SPIRE server CLI client, stdlib only (modules and the host-side backup program share it): the socket
default, finding ``spire-server``, argv with ``-socketPath`` and ``-output json``, gRPC status codes and
NotFound read from the CLI's error text, batch results, chunking and the streaming JSON array reader.
Commands run through _runner; the module glue (argument spec, env fallback) is in _spire."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import codecs
import json
import os
import re

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError
from ansible_collections.trustroot.ops.plugins.module_utils._runner import (
    CommandError, CommandTimeout, run_once, stream, which)


def _text(value):
    if isinstance(value, bytes):
        return value.decode('utf-8', 'replace')
    return value if isinstance(value, str) else ('' if value is None else str(value))


DEFAULT_SERVER_SOCKET = '/tmp/spire-server/private/api.sock'
# The CLI's error text kept in a message (a failing batch can print megabytes).
MAX_ERROR_TEXT = 2000
MAX_BATCH = 50            # create/update per CLI call (spire-controller-manager's sizes)
MAX_DELETE_BATCH = 200

# Places spire-server is commonly installed when it is not on PATH.
BINARY_DIRS = ['/opt/spire/bin', '/usr/local/bin', '/usr/bin']

# gRPC status codes that batch results carry.
CODE_NAMES = {
    0: 'OK', 1: 'CANCELED', 2: 'UNKNOWN', 3: 'INVALID_ARGUMENT', 4: 'DEADLINE_EXCEEDED', 5: 'NOT_FOUND',
    6: 'ALREADY_EXISTS', 7: 'PERMISSION_DENIED', 8: 'RESOURCE_EXHAUSTED', 9: 'FAILED_PRECONDITION',
    10: 'ABORTED', 11: 'OUT_OF_RANGE', 12: 'UNIMPLEMENTED', 13: 'INTERNAL', 14: 'UNAVAILABLE',
    15: 'DATA_LOSS', 16: 'UNAUTHENTICATED',
}
ALREADY_EXISTS = 6
NOT_FOUND = 5

_RPC_ERROR = re.compile(r'rpc error: code = (\w+) desc = (.*)', re.S)
_UNREACHABLE_HINTS = ('connection error', 'error while dialing', 'no such file or directory',
                      'connection refused', 'permission denied', 'unable to determine health')


class SpireError(TrustrootError):
    """A failed spire-server call. ``message`` is safe to show (no secrets, no stdin data);
    ``failures`` lists failed batch results ({'item', 'code', 'message'}); ``grpc_code`` is the gRPC
    status name parsed from the CLI's error text when there is one (for example ``NotFound``); ``results`` and
    ``changed`` are TrustrootError's."""

    def __init__(self, message, failures=None, grpc_code=None, stderr=None, **kwargs):
        super(SpireError, self).__init__(message, **kwargs)
        self.message = message
        self.failures = list(failures or [])
        self.grpc_code = grpc_code
        self.stderr = stderr


def grpc_error(text):
    """(code name, description) from a CLI error text such as 'rpc error: code = NotFound desc = ...',
    or (None, None)."""
    match = _RPC_ERROR.search(text or '')
    if not match:
        return None, None
    return match.group(1), match.group(2).strip()


def looks_unreachable(text):
    lowered = (text or '').lower()
    return any(hint in lowered for hint in _UNREACHABLE_HINTS)


def describe_command(args):
    """The command for messages: ``spire-server`` and its arguments (stdin data is never shown)."""
    return 'spire-server ' + ' '.join(_text(a) for a in args)


def clean_stderr(text):
    """The CLI's error text without its 'Error: ' prefix and usage dump, on one line."""
    text = _text(text).strip()
    lines = []
    for line in text.splitlines():
        if line.startswith('Usage of '):
            break
        lines.append(line.strip())
    text = ' '.join(line for line in lines if line)
    return text[len('Error: '):] if text.startswith('Error: ') else text


def _decoded(chunks):
    decoder = codecs.getincrementaldecoder('utf-8')()
    for chunk in chunks:
        yield decoder.decode(chunk)
    tail = decoder.decode(b'', final=True)
    if tail:
        yield tail


_WS = ' \t\r\n'


def iter_json_array(chunks, key):
    """Pure. Yield the elements of the array under ``key`` in a JSON object that arrives as text
    ``chunks`` (any split). Other members are skipped; a missing or null ``key`` yields nothing.
    With ``key=None`` the document itself is the array. Raises ValueError on malformed or truncated
    input."""
    decoder = json.JSONDecoder()
    state = {'buf': '', 'pos': 0, 'eof': False}
    source = iter(chunks)

    def more():
        if state['eof']:
            return False
        try:
            chunk = next(source)
        except StopIteration:
            state['eof'] = True
            return False
        state['buf'] = state['buf'][state['pos']:] + chunk
        state['pos'] = 0
        return True

    def skip_ws():
        while True:
            buf, pos = state['buf'], state['pos']
            while pos < len(buf) and buf[pos] in _WS:
                pos += 1
            state['pos'] = pos
            if pos < len(buf):
                return buf[pos]
            if not more():
                return None

    def expect(char):
        found = skip_ws()
        if found != char:
            raise ValueError('expected %r, found %r' % (char, found))
        state['pos'] += 1

    def value():
        while True:
            skip_ws()
            try:
                obj, end = decoder.raw_decode(state['buf'], state['pos'])
            except ValueError:
                if more():
                    continue
                raise
            if end >= len(state['buf']) and not state['eof'] and not isinstance(obj, (dict, list, str)):
                # A number or literal that touches the end of the buffer may continue in the next chunk.
                if more():
                    continue
            state['pos'] = end
            return obj

    def items(where):
        state['pos'] += 1
        if skip_ws() == ']':
            state['pos'] += 1
            return
        while True:
            yield value()
            sep = skip_ws()
            state['pos'] += 1
            if sep == ']':
                return
            if sep != ',':
                raise ValueError('expected , or ] in %s, found %r' % (where, sep))

    if key is None:
        if skip_ws() != '[':
            raise ValueError('expected a JSON array')
        yield from items('the array')
        if skip_ws() is not None:
            raise ValueError('unexpected data after the array')
        return
    expect('{')
    if skip_ws() == '}':
        return
    while True:
        name = value()
        if not isinstance(name, str):
            raise ValueError('expected a member name')
        expect(':')
        if name == key and skip_ws() == '[':
            yield from items(key)
        else:
            value()
        sep = skip_ws()
        state['pos'] += 1
        if sep == '}':
            return
        if sep != ',':
            raise ValueError('expected , or } found %r' % sep)


def result_failures(results, describe):
    """Pure. ``results`` is the ``results`` list of a batch answer; returns a list of
    {'item': describe(result), 'code': int, 'message': str} for every result whose status.code != 0."""
    failures = []
    for result in results or []:
        status = result.get('status') or {}
        code = int(status.get('code') or 0)
        if code != 0:
            failures.append({'item': describe(result), 'code': code,
                             'message': _text(status.get('message') or CODE_NAMES.get(code, 'failed'))})
    return failures


def format_failures(failures):
    return '; '.join('%s: %s (%s)' % (f['item'], f['message'], CODE_NAMES.get(f['code'], f['code']))
                     for f in failures)


def check_results(results, describe):
    """Raises SpireError listing every failed result (batch commands exit 0 even when some fail)."""
    failures = result_failures(results, describe)
    if failures:
        raise SpireError('%d of %d results failed: %s' % (len(failures), len(results), format_failures(failures)),
                         failures=failures)


def chunked(items, size):
    """Pure generator of lists of at most ``size`` items."""
    if size < 1:
        raise ValueError('size must be at least 1')
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def cli_argv(binary, socket_path, args, output_json=True):
    """Pure. ``spire-server <args> -socketPath <socket> [-output json]`` as an argv list."""
    argv = [binary] + [_text(a) for a in args] + ['-socketPath', socket_path]
    if output_json:
        argv += ['-output', 'json']
    return argv


BINARY_NOT_FOUND = 'spire-server was not found on PATH nor in %s: set spire_server_path' % ', '.join(BINARY_DIRS)


def server_trust_domain(cli):
    """The trust domain of the server ``cli`` talks to, from ``bundle show``; an answer without one is a SpireError
    naming the call and the socket, never a name read as None."""
    name = cli.run_json(['bundle', 'show']).get('trust_domain')
    if not isinstance(name, str) or not name:
        raise SpireError('spire-server bundle show answered no trust_domain (socket_path %s)' % cli.socket_path)
    return name


def find_spire_server(path=None, error=SpireError):
    """The spire-server binary: ``path`` when given, else PATH, then BINARY_DIRS; ``error`` names the option."""
    if path:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise error('spire_server_path: %s is not an executable file' % path)
        return path
    found = which('spire-server', BINARY_DIRS)
    if not found:
        raise error(BINARY_NOT_FOUND)
    return found


def parse_version(out, err=b''):
    """Pure. '1.15.3' from ``spire-server --version`` (printed on stdout or stderr), or None."""
    for text in (_text(out), _text(err)):
        for token in text.split():
            token = token.strip()
            if token[:1].isdigit() and '.' in token:
                return token
    return None


class SpireClient(object):
    """``spire-server`` for modules and the host program alike: ``-socketPath`` and ``-output json`` added, the
    JSON answer parsed and checked, failures raised as ``error`` (SpireError; a subclass may name another) with
    the gRPC code when the CLI printed one, and an unreachable socket said as such.

    ``run(argv, data=None) -> (rc, stdout, stderr)`` runs one command (default: _runner.run_once with
    ``timeout``); large answers are read with ``stream_json_array`` through _runner.stream."""

    error = SpireError

    def __init__(self, binary, socket_path, run=None, timeout=60):
        self.binary = binary
        self.socket_path = socket_path or DEFAULT_SERVER_SOCKET
        self.timeout = timeout
        self.run = run or (lambda argv, data=None: run_once(argv, data, self.timeout))

    def _fail(self, message, grpc_code=None, stderr=None):
        exc = self.error(message)
        exc.grpc_code, exc.stderr = grpc_code, stderr
        return exc

    def _error(self, args, rc, stderr, stdout=''):
        text = clean_stderr(stderr)[:MAX_ERROR_TEXT] or clean_stderr(stdout)[:MAX_ERROR_TEXT] or 'exit status %s' % rc
        code = grpc_error(text)[0]
        if code == 'Unavailable' or (code is None and looks_unreachable(text)):
            message = 'SPIRE server not reachable on socket_path %s (%s): %s' % (
                self.socket_path, describe_command(args), text)
        else:
            message = '%s failed (socket_path %s): %s' % (describe_command(args), self.socket_path, text)
        return self._fail(message, grpc_code=code, stderr=text)

    def _run(self, args, data=None, output_json=True, bare=False):
        argv = [self.binary] + [_text(a) for a in args] if bare else cli_argv(
            self.binary, self.socket_path, args, output_json)
        where = '' if bare else ' (socket_path %s)' % self.socket_path
        try:
            return self.run(argv, data)
        except CommandTimeout:
            raise self._fail('%s timed out after %ss%s' % (describe_command(args), self.timeout, where))
        except CommandError as err:
            raise self._fail('%s could not start: %s' % (describe_command(args), err))

    def run_json(self, args, data=None):
        """The parsed answer of ``spire-server <args> -socketPath <socket_path> -output json``: always one
        object. ``data`` (bytes or str) is fed on stdin: put ``-data -`` or ``-file -`` in ``args``."""
        rc, out, err = self._run(args, data)
        if rc != 0:
            raise self._error(args, rc, err, out)
        try:
            answer = json.loads(_text(out))
        except ValueError:
            raise self._fail('%s did not print JSON (socket_path %s): %s' % (
                describe_command(args), self.socket_path, clean_stderr(err)[:MAX_ERROR_TEXT] or _text(out)[:200]))
        if not isinstance(answer, dict):
            # Every -output json answer of spire-server is one object; anything else is not the answer read.
            raise self._fail('%s printed JSON that is not an object (socket_path %s)' % (
                describe_command(args), self.socket_path))
        return answer

    json = run_json

    def run_plain(self, args):
        """``spire-server <args> -socketPath <socket_path>`` without ``-output``: (rc, stdout, stderr) as text."""
        rc, out, err = self._run(args, output_json=False)
        return rc, _text(out), _text(err)

    def run_bare(self, args):
        """``spire-server <args>`` with no added flags (for ``--version``): (rc, stdout, stderr) as text."""
        rc, out, err = self._run(args, bare=True)
        return rc, _text(out), _text(err)

    def version(self):
        rc, out, err = self.run_bare(['--version'])
        return parse_version(out, err) if rc == 0 else None

    def healthy(self):
        return self.run_plain(['healthcheck'])[0] == 0

    def stream_json_array(self, args, key, data=None):
        """Run like run_json and yield the elements of the top-level array ``key`` one at a time while
        stdout is read, so a large answer (``entry show`` of 100,000 entries) is never held whole.
        Raises ``error`` when the command fails (after any elements already yielded)."""
        exit_status = []
        chunks = stream(cli_argv(self.binary, self.socket_path, args), data, self.timeout,
                        on_exit=lambda rc, err, fired: exit_status.append((rc, err, fired)))
        parse_error = None
        try:
            try:
                yield from iter_json_array(_decoded(chunks), key)
            except ValueError as err:
                parse_error = err
            for _chunk in chunks:  # read to the end for the exit status
                pass
        except CommandError as err:
            raise self._fail('%s could not start: %s' % (describe_command(args), err))
        finally:
            chunks.close()  # a consumer that stops early ends the process here
        rc, err, fired = exit_status[0]
        if fired:
            raise self._fail('%s timed out after %ss (socket_path %s)' % (
                describe_command(args), self.timeout, self.socket_path))
        if rc != 0:
            raise self._error(args, rc, err)
        if parse_error is not None:
            raise self._fail('%s did not print the expected JSON (socket_path %s): %s' % (
                describe_command(args), self.socket_path, parse_error))

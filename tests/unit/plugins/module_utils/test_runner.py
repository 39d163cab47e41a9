# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sys

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils import _runner
from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError

PY = sys.executable


def test_subprocess_run_bytes_in_and_out():
    rc, out, err = _runner.subprocess_run([PY, '-c', 'import sys; sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])'],
                                          data=b'abc')
    assert (rc, out, err) == (0, b'cba', b'')


def test_subprocess_run_missing_program_is_127():
    rc, out, err = _runner.subprocess_run(['/nonexistent/prog'])
    assert rc == 127 and out == b'' and err.startswith(b'/nonexistent/prog: ')


def test_subprocess_runner_c_locale_path_lookup_and_timeout():
    run = _runner.subprocess_runner(timeout=5)
    rc, out, _err = run(['python3', '-c', 'import os; print(os.environ["LANG"], os.environ["LC_ALL"])'])
    assert rc == 0 and out == b'C C\n'
    rc, _out, err = _runner.subprocess_runner(timeout=0.5)([PY, '-c', 'import time; time.sleep(10)'])
    assert rc == 124 and b'timed out after 0.5s' in err
    rc, _out, err = run(['no-such-program-x'])
    assert rc == 127 and b'no-such-program-x' in err


def test_module_runner_uses_run_command():
    calls = []

    class Module(object):
        def get_bin_path(self, name):
            return '/usr/bin/' + name if name == 'age' else None

        def run_command(self, argv, **kwargs):
            calls.append((argv, kwargs))
            return 0, b'out', b''

    run = _runner.module_runner(Module())
    assert run(['age', '-d'], data='x') == (0, b'out', b'')
    run(['other'])
    expected = dict(data=b'x', binary_data=True, encoding=None, environ_update={'LANG': 'C', 'LC_ALL': 'C'})
    assert calls[0] == (['/usr/bin/age', '-d'], expected)
    assert calls[1][0] == ['other']


def test_stream_yields_chunks_then_reports_exit():
    seen = []
    chunks = list(_runner.stream([PY, '-c', 'import sys; sys.stdout.write("x" * 3000000); sys.stderr.write("bad"); sys.exit(3)'],
                                 on_exit=lambda rc, err, fired: seen.append((rc, err, fired))))
    assert b''.join(chunks) == b'x' * 3000000 and len(chunks) >= 2
    assert seen == [(3, b'bad', False)]


def test_stream_stdin_and_timeout():
    seen = []
    out = b''.join(_runner.stream([PY, '-c', 'import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())'], data=b'hi',
                                  on_exit=lambda *a: seen.append(a)))
    assert out == b'hi' and seen[0][0] == 0
    seen = []
    list(_runner.stream([PY, '-c', 'import time; time.sleep(10)'], timeout=0.5, on_exit=lambda *a: seen.append(a)))
    assert seen[0][2] is True


def test_stream_missing_program():
    with pytest.raises(_runner.CommandError, match='could not start'):
        list(_runner.stream(['/nonexistent/prog']))


def test_stream_consumer_stopping_early_kills_the_program():
    gen = _runner.stream([PY, '-c', 'import sys\nwhile True: sys.stdout.write("y" * 65536)'])
    assert next(gen)
    gen.close()


def test_systemctl_names_action_and_unit():
    calls = []

    def run(argv, data=None):
        calls.append(argv)
        return (0, b'', b'') if argv[1] == 'start' else (1, b'', b'Unit spire-server.service not found.\n')
    _runner.systemctl(run, 'start', 'spire-server')
    with pytest.raises(TrustrootError, match=r'^systemctl stop spire-server failed: Unit spire-server.service not found.$'):
        _runner.systemctl(run, 'stop', 'spire-server')

    class Mine(TrustrootError):
        pass
    with pytest.raises(Mine):
        _runner.systemctl(run, 'stop', 'x', error=Mine)
    assert calls[0] == ['systemctl', 'start', 'spire-server']


def test_check_returns_stdout_or_raises():
    assert _runner.check(_runner.subprocess_run, [PY, '-c', 'print(1)']) == b'1\n'
    with pytest.raises(_runner.CommandError, match='age failed: nope'):
        _runner.check(lambda argv, data=None: (1, b'', b'nope'), ['/usr/bin/age'], what='age')

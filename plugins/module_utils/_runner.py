# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one command runner: every external program the collection starts goes through this file.

A *run* callable is ``run(argv, data=None) -> (rc, stdout bytes, stderr bytes)``: argv lists only (never a
shell string), the program looked up on PATH, messages in the C locale, optional stdin bytes, an optional
timeout (rc 124 with a message naming the program when it expires), a missing program is rc 127. Two adapters
make one: ``module_runner`` over ``AnsibleModule.run_command`` (modules) and ``subprocess_runner`` over plain
``subprocess`` (the host-side backup program, and SPIRE calls that need a timeout). ``stream`` is the one
place that reads a program's stdout incrementally (SPIRE's large listings). ``systemctl`` is the unit helper.
Stdlib only: the host-side backup program imports it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import tempfile
import threading

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError

C_LOCALE = {'LANG': 'C', 'LC_ALL': 'C'}
TIMED_OUT = 124
NOT_FOUND = 127
READ_SIZE = 1 << 20


class CommandError(TrustrootError):
    """A command that could not start, timed out or failed; the message names the command (never its stdin)."""


def _text(data):
    if isinstance(data, bytes):
        return data.decode('utf-8', 'replace')
    return data or ''


def _bytes(data):
    if data is None or isinstance(data, bytes):
        return data
    return data.encode('utf-8')


def c_env(extra=None):
    """The process environment with the C locale (and ``extra``) on top."""
    env = dict(os.environ)
    env.update(C_LOCALE)
    env.update(extra or {})
    return env


def which(program, opt_dirs=()):
    """``program`` if it is a path, else its full path on PATH or in ``opt_dirs``; None when not found."""
    if os.sep in program:
        return program
    found = shutil.which(program)
    if found:
        return found
    for directory in opt_dirs:
        candidate = os.path.join(directory, program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def subprocess_run(argv, data=None):
    """Run ``argv`` (a list, no shell); return (rc, stdout bytes, stderr bytes). A missing program is rc 127.

    The environment is inherited as is (the host-side backup program's historical behaviour)."""
    try:
        proc = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    except OSError as exc:
        return NOT_FOUND, b'', ('%s: %s' % (argv[0], exc.strerror or exc)).encode('utf-8')
    return proc.returncode, proc.stdout, proc.stderr


class CommandTimeout(CommandError):
    """The command ran longer than its timeout and was killed."""


def run_once(argv, data=None, timeout=None, env=None):
    """Run ``argv`` once in the C locale: (rc, stdout bytes, stderr bytes). A program that cannot start raises
    CommandError, one that outlives ``timeout`` seconds is killed and raises CommandTimeout (both name it)."""
    name = os.path.basename(argv[0])
    try:
        proc = subprocess.run(list(argv), input=_bytes(data), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=c_env(env), timeout=timeout, check=False, close_fds=True)
    except subprocess.TimeoutExpired:
        raise CommandTimeout('%s timed out after %ss' % (name, timeout))
    except OSError as exc:
        raise CommandError('%s: %s' % (argv[0], exc.strerror or exc))
    return proc.returncode, proc.stdout, proc.stderr


def subprocess_runner(timeout=None, env=None):
    """A run callable over ``subprocess``: C locale, program looked up on PATH, ``timeout`` seconds per call
    (rc 124 and a message naming the program when it expires), a missing program rc 127."""
    def run(argv, data=None):
        argv = list(argv)
        argv[0] = which(argv[0]) or argv[0]
        try:
            return run_once(argv, data, timeout, env)
        except CommandTimeout as exc:
            return TIMED_OUT, b'', str(exc).encode('utf-8')
        except CommandError as exc:
            return NOT_FOUND, b'', str(exc).encode('utf-8')
    return run


def module_runner(module):
    """A run callable over ``AnsibleModule.run_command``: bytes in and out, argv lists only, the program looked
    up on PATH, messages in the C locale."""
    def run(argv, data=None):
        argv = list(argv)
        argv[0] = module.get_bin_path(argv[0]) or argv[0]
        return module.run_command(argv, data=_bytes(data), binary_data=True, encoding=None, environ_update=dict(C_LOCALE))
    return run


def stream(argv, data=None, timeout=None, env=None, on_exit=None):
    """Run ``argv`` and yield its stdout in chunks of bytes as they are read, so a large answer is never held
    whole. When stdout ends, ``on_exit(rc, stderr bytes, timed_out)`` is called (after every chunk was yielded)
    and may raise; a program that cannot start raises CommandError. The process is killed if the consumer
    stops early or ``timeout`` seconds pass."""
    errfile = tempfile.TemporaryFile()
    proc = watchdog = None
    try:
        try:
            proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=errfile, env=c_env(env), close_fds=True)
        except OSError as exc:
            raise CommandError('%s could not start: %s' % (os.path.basename(argv[0]), exc))
        fired = []
        if timeout:
            def expire():
                fired.append(True)
                proc.kill()
            watchdog = threading.Timer(timeout, expire)
            watchdog.daemon = True
            watchdog.start()
        if data is not None:
            proc.stdin.write(_bytes(data))
            proc.stdin.close()
        yield from iter(lambda: proc.stdout.read(READ_SIZE), b'')
        proc.stdout.close()
        rc = proc.wait()
        if watchdog is not None:
            watchdog.cancel()
        errfile.seek(0)
        if on_exit is not None:
            on_exit(rc, errfile.read(), bool(fired))
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        errfile.close()


def check(run, argv, what=None, data=None):
    """Run and return stdout bytes; a non-zero exit raises CommandError naming ``what`` (default: the command)."""
    rc, out, err = run(argv, data)
    if rc != 0:
        what = what or ' '.join([os.path.basename(argv[0])] + list(argv[1:]))
        raise CommandError('%s failed: %s' % (what, _text(err).strip() or _text(out).strip() or 'exit status %s' % rc))
    return out


def systemctl(run, action, unit, error=CommandError):
    """``systemctl <action> <unit>``; a failure raises ``error`` naming the action and the unit."""
    rc, _out, err = run(['systemctl', action, unit])
    if rc != 0:
        raise error('systemctl %s %s failed: %s' % (action, unit, _text(err).strip() or 'exit status %s' % rc))

"""exit_with: a module's result, or its error as a failure with the message."""

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._commands import exit_with


class Exited(Exception):
    pass


class FakeModule(object):
    def __init__(self):
        self.exited = None

    def exit_json(self, **result):
        self.exited = ('exit', result)
        raise Exited()

    def fail_json(self, **result):
        self.exited = ('fail', result)
        raise Exited()


class KnownError(Exception):
    pass


def run(module, runner):
    with pytest.raises(Exited):
        exit_with(module, runner, (KnownError,))
    return module.exited


def test_result_is_the_exit():
    assert run(FakeModule(), lambda module: {'changed': True, 'path': '/x'}) == (
        'exit', {'changed': True, 'path': '/x'})


def test_a_known_error_fails_with_its_message():
    def runner(module):
        raise KnownError('archive: checksum mismatch')
    assert run(FakeModule(), runner) == ('fail', {'msg': 'archive: checksum mismatch', 'changed': False})


def test_a_file_error_names_the_file():
    def runner(module):
        open('/nonexistent/dir/file')
    kind, result = run(FakeModule(), runner)
    assert kind == 'fail'
    assert result['msg'] == '/nonexistent/dir/file: No such file or directory'


def test_other_errors_are_not_swallowed():
    def runner(module):
        raise ValueError('bug')
    with pytest.raises(ValueError):
        exit_with(FakeModule(), runner, (KnownError,))

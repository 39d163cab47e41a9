"""The one error hierarchy and run_module: a module's result, or its error as a failure with the message and
the partial result."""

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils import _errors
from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError, run_module


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


class KnownError(TrustrootError):
    pass


class OlderError(Exception):
    pass


def run(module, runner, known_errors=()):
    with pytest.raises(Exited):
        run_module(module, runner, known_errors)
    return module.exited


def test_result_is_the_exit():
    assert run(FakeModule(), lambda module: {'changed': True, 'path': '/x'}) == (
        'exit', {'changed': True, 'path': '/x'})


def test_a_known_error_fails_with_its_message():
    def runner(module):
        raise KnownError('archive: checksum mismatch')
    assert run(FakeModule(), runner) == ('fail', {'msg': 'archive: checksum mismatch', 'changed': False})


def test_a_known_error_carries_the_partial_result_and_changed():
    def runner(module):
        raise KnownError('node b: unseal failed', results={'nodes': ['a']}, changed=True)
    assert run(FakeModule(), runner) == ('fail', {'msg': 'node b: unseal failed', 'changed': True, 'nodes': ['a']})


def test_an_error_with_its_own_message_attribute_shows_it():
    class WithMessage(TrustrootError):
        def __init__(self, message):
            super(WithMessage, self).__init__('internal: ' + message)
            self.message = message

    def runner(module):
        raise WithMessage('server unreachable')
    assert run(FakeModule(), runner)[1]['msg'] == 'server unreachable'


def test_an_older_known_error_fails_with_its_text():
    def runner(module):
        raise OlderError('bad thing')
    assert run(FakeModule(), runner, (OlderError,)) == ('fail', {'msg': 'bad thing', 'changed': False})


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
        run_module(FakeModule(), runner)


def test_input_error_is_a_value_error_and_a_trustroot_error():
    assert issubclass(InputError, ValueError) and issubclass(InputError, TrustrootError)


def test_every_deliberate_error_of_the_collection_derives_from_the_base():
    import importlib
    import pkgutil
    import ansible_collections.trustroot.ops.plugins.module_utils as utils
    loose = []
    for info in pkgutil.walk_packages(utils.__path__, utils.__name__ + '.'):
        mod = importlib.import_module(info.name)
        for value in vars(mod).values():
            if (isinstance(value, type) and issubclass(value, Exception) and value.__module__ == mod.__name__
                    and not issubclass(value, TrustrootError)):
                loose.append('%s.%s' % (info.name, value.__name__))
    assert loose == []
    assert _errors.TrustrootError.__module__.endswith('_errors')

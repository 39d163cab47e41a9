"""Drive a module's main() in-process: its arguments as Ansible passes them, its exit or failure caught as a
value. Modules are tested through main() with fakes only at their boundary (the command runner, the HTTP
adapter, the Kubernetes client), so the argument spec, the wiring and the result shape are what is checked."""
import contextlib
import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.trustroot.ops.plugins.module_utils import _vault

from ._vault_fake import FakeVault


class ModuleExit(Exception):
    """How a module ended: ``kind`` is 'exit' or 'fail', ``result`` the keyword arguments it ended with."""

    def __init__(self, kind, result):
        super(ModuleExit, self).__init__(kind)
        self.kind = kind
        self.result = result

    @property
    def failed(self):
        return self.kind == 'fail'


@contextlib.contextmanager
def module_args(args):
    try:  # ansible-core >= 2.19
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # the oldest ansible-core the collection supports
        patch_module_args = None
    if patch_module_args is not None:
        with patch_module_args(args):
            yield
        return
    saved = basic._ANSIBLE_ARGS
    basic._ANSIBLE_ARGS = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    try:
        yield
    finally:
        basic._ANSIBLE_ARGS = saved


@pytest.fixture
def run_main(monkeypatch):
    """``run_main(main, args, check_mode=False, diff=False)`` -> ModuleExit."""
    def exit_json(self, **result):
        raise ModuleExit('exit', result)

    def fail_json(self, msg, **result):
        result['msg'] = msg
        raise ModuleExit('fail', result)

    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)

    def run(main, args, check_mode=False, diff=False):
        args = dict(args)
        if check_mode:
            args['_ansible_check_mode'] = True
        if diff:
            args['_ansible_diff'] = True
        with module_args(args):
            with pytest.raises(ModuleExit) as info:
                main()
        return info.value
    return run


def assert_no_secret(result, *secrets):
    """No secret value appears anywhere in a module's result."""
    text = json.dumps(result, default=str)
    for secret in secrets:
        assert secret not in text


@pytest.fixture
def vault(monkeypatch):
    """The FakeVault every VaultNode made during the test talks to; the test sets ``vault.routes``."""
    fake = FakeVault()
    monkeypatch.setattr(_vault, 'RawAdapter', fake.adapter())
    return fake

"""The layer key: which changes make a kept install unusable (tests/lab/layers.py)."""

import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.lab import layers  # noqa: E402

DEFINITIONS = {'demo': {'groups': {'vault_servers': ['vault1']}, 'network_index': 250}}
INPUTS = ('roles', 'plugins', 'playbooks', 'tests/lab/stack.py', '.cache/artifacts.json')


@pytest.fixture
def tree(tmp_path):
    """A small copy of what an install depends on: a role template, a module, a playbook, lab variables, binaries."""
    files = {
        'roles/vault_server/templates/server.hcl.j2': 'ui = true\n',
        'roles/vault_server/tasks/main.yml': '- name: x\n',
        'plugins/modules/vault_init.py': 'print(1)\n',
        'plugins/modules/__pycache__/vault_init.cpython-311.pyc': 'cache',
        'playbooks/install.yml': '- hosts: all\n',
        'tests/lab/stack.py': 'TRUST_DOMAIN = "demo"\n',
        '.cache/artifacts.json': '{"bao": "aa"}\n',
        'docs/index.md': 'not an input\n',
    }
    for rel, text in files.items():
        os.makedirs(os.path.dirname(str(tmp_path / rel)), exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def key(tree, **kwargs):
    args = {'root': str(tree), 'inputs': INPUTS, 'rootfs_stamp': 'rootfs-1', 'definitions': DEFINITIONS}
    args.update(kwargs)
    return layers.layer_key('demo', **args)


def test_same_inputs_same_key(tree, tmp_path_factory):
    copy = tmp_path_factory.mktemp('copy')
    shutil.copytree(str(tree), str(copy), dirs_exist_ok=True)
    assert key(tree) == key(copy)


@pytest.mark.parametrize('rel', ['roles/vault_server/templates/server.hcl.j2', 'plugins/modules/vault_init.py',
                                 'playbooks/install.yml', 'tests/lab/stack.py', '.cache/artifacts.json'])
def test_a_change_to_any_input_makes_a_new_key(tree, rel):
    before = key(tree)
    with open(str(tree / rel), 'a') as handle:
        handle.write('# changed\n')
    assert key(tree) != before


def test_a_new_file_in_a_role_makes_a_new_key(tree):
    before = key(tree)
    (tree / 'roles/vault_server/templates/audit.hcl.j2').write_text('audit\n')
    assert key(tree) != before


def test_the_rootfs_and_the_definition_are_in_the_key(tree):
    before = key(tree)
    assert key(tree, rootfs_stamp='rootfs-2') != before
    other = {'demo': dict(DEFINITIONS['demo'], network_index=251)}
    assert key(tree, definitions=other) != before


def test_caches_and_files_that_are_not_inputs_do_not_change_the_key(tree):
    before = key(tree)
    (tree / 'plugins/modules/__pycache__/vault_init.cpython-311.pyc').write_text('other cache')
    (tree / 'docs/index.md').write_text('edited\n')
    assert key(tree) == before


def test_the_real_template_of_the_vault_server_role_is_an_input():
    assert 'roles/vault_server/templates/server.hcl.j2' in layers.input_files(layers.ROOT)


def test_usable_only_for_the_same_key_and_while_fresh():
    meta = {'format': layers.LAYER_FORMAT, 'key': 'k' * 64, 'built_at': 1000.0}
    assert layers.layer_is_usable(meta, 'k' * 64, 1000.0 + 60) == (True, '')
    usable, why = layers.layer_is_usable(meta, 'j' * 64, 1000.0 + 60)
    assert not usable and 'made by other code' in why
    usable, why = layers.layer_is_usable(meta, 'k' * 64, 1000.0 + layers.MAX_AGE_S + 1)
    assert not usable and 'SVIDs expire' in why
    assert layers.layer_is_usable(None, 'k' * 64, 0) == (False, 'no layer')

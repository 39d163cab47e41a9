"""The backup role's host program imports exactly what the role ships, and nothing outside the stdlib.

On hosts, trustroot-backup runs with a plain python3 and a copy of the module_utils files listed in
roles/backup/vars/main.yml (__backup_module_utils): a file shipped but never imported is dead weight, one imported but
not shipped (or a third-party import) breaks the timer at 3 a.m. The imports are read from the source (every import
statement, also those inside functions) and then proven by running the program from a copy laid out as the role
lays it out."""
import ast
import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
UTILS = os.path.join(ROOT, 'plugins', 'module_utils')
PROGRAM = os.path.join(ROOT, 'roles', 'backup', 'files', 'trustroot_backup.py')
UTILS_PACKAGE = 'ansible_collections.trustroot.ops.plugins.module_utils'


def shipped():
    with open(os.path.join(ROOT, 'roles', 'backup', 'vars', 'main.yml')) as handle:
        return list(yaml.safe_load(handle)['__backup_module_utils'])


def imports_of(path):
    """(module_utils file names, other top-level modules) that the file at ``path`` imports."""
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    utils, others = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != '__future__':
            names = [node.module] + ['%s.%s' % (node.module, alias.name) for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith(UTILS_PACKAGE + '.'):
                utils.update(utils_files(name[len(UTILS_PACKAGE) + 1:].split('.')))
            elif name != UTILS_PACKAGE and not name.startswith(UTILS_PACKAGE):
                others.add(name.split('.')[0])
    return utils, others


def utils_files(parts):
    """The module_utils files (paths relative to module_utils) that importing ``parts`` loads: the module, and the
    __init__.py of every package on the way; a trailing name that is not a module (an imported function) is
    ignored."""
    files = set()
    for depth in range(1, len(parts) + 1):
        relative = '/'.join(parts[:depth])
        if os.path.isfile(os.path.join(UTILS, relative, '__init__.py')):
            files.add(relative + '/__init__.py')
        elif os.path.isfile(os.path.join(UTILS, relative + '.py')):
            files.add(relative + '.py')
            break
        else:
            break
    return files


def closure(start):
    """Every module_utils file reached from ``start`` and the non-collection modules imported on the way."""
    seen, foreign, todo = set(), {}, [start]
    while todo:
        path = todo.pop()
        utils, others = imports_of(path)
        for name in others:
            foreign.setdefault(name, os.path.basename(path))
        for name in sorted(utils - seen):
            seen.add(name)
            todo.append(os.path.join(UTILS, name))
    return seen, foreign


def test_the_program_imports_every_shipped_file_and_ships_every_import():
    imported, _foreign = closure(PROGRAM)
    listed = set(shipped())
    assert sorted(listed - imported) == [], 'shipped but never imported by trustroot_backup.py'
    assert sorted(imported - listed) == [], 'imported by trustroot_backup.py but not in __backup_module_utils'


def test_the_shipped_code_imports_only_the_stdlib():
    _imported, foreign = closure(PROGRAM)
    outside = {name: where for name, where in foreign.items()
               if name not in sys.stdlib_module_names and name != 'ansible_collections'}
    assert outside == {}, 'imports outside the stdlib (module: first file importing it)'


def test_the_checks_see_a_missing_file(tmp_path):
    """The closure follows imports transitively: _spire_backup reaches _der through its own imports."""
    imported, _foreign = closure(os.path.join(UTILS, '_spire_backup.py'))
    assert '_der.py' in imported and '_errors.py' in imported


@pytest.mark.skipif(not shutil.which('python3'), reason='no python3 on PATH')
def test_the_program_runs_from_the_shipped_copy_alone(tmp_path):
    lib = tmp_path / 'lib'
    target = lib / 'ansible_collections' / 'trustroot' / 'ops' / 'plugins' / 'module_utils'
    target.mkdir(parents=True)
    for name in shipped():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(UTILS, name), str(target / name))
    shutil.copy(PROGRAM, str(lib / 'trustroot_backup.py'))
    proc = subprocess.run([shutil.which('python3'), '-I', str(lib / 'trustroot_backup.py'), '--help'],
                          cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                          env={'PATH': '/usr/bin:/bin', 'LANG': 'C'})
    assert proc.returncode == 0, proc.stderr.decode()
    assert b'usage' in proc.stdout.lower()

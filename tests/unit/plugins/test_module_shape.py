"""The shape every module keeps: argument spec, one call into module_utils, the one exit (_errors.run_module),
at most MAX_CODE_LINES lines of code (documentation blocks aside), and a test driving its main()."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MODULES = os.path.join(ROOT, 'plugins', 'modules')
MODULE_TESTS = os.path.join(ROOT, 'tests', 'unit', 'plugins', 'modules')
MAX_CODE_LINES = 120
DOC_BLOCKS = ('DOCUMENTATION', 'EXAMPLES', 'RETURN')
NAMES = sorted(name[:-3] for name in os.listdir(MODULES) if name.endswith('.py') and name != '__init__.py')


def code_lines(source):
    """Lines that are neither blank, nor comments, nor part of the docstring or a documentation block."""
    tree = ast.parse(source)
    skipped = set()
    for node in tree.body:
        is_doc = isinstance(node, ast.Assign) and any(getattr(t, 'id', None) in DOC_BLOCKS for t in node.targets)
        is_docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
            and isinstance(node.value.value, str)
        if is_doc or is_docstring:
            skipped.update(range(node.lineno, node.end_lineno + 1))
    return sum(1 for number, line in enumerate(source.splitlines(), 1)
               if number not in skipped and line.strip() and not line.strip().startswith('#'))


def read(name):
    with open(os.path.join(MODULES, name + '.py')) as handle:
        return handle.read()


def test_code_lines_counts_only_code():
    source = '"""doc\nstring"""\nDOCUMENTATION = r\'\'\'\na: 1\n\'\'\'\n# comment\n\nimport os\n\n\ndef f():\n    return 1\n'
    assert code_lines(source) == 3


def test_every_module_is_listed():
    assert len(NAMES) >= 30 and 'spire_entry' in NAMES and 'vault_init' in NAMES


@pytest.mark.parametrize('name', NAMES)
def test_module_code_stays_short(name):
    assert code_lines(read(name)) <= MAX_CODE_LINES, '%s: move its logic into module_utils' % name


@pytest.mark.parametrize('name', NAMES)
def test_module_ends_through_run_module(name):
    tree = ast.parse(read(name))
    calls = [node.func for node in ast.walk(tree) if isinstance(node, ast.Call)]
    called = set(getattr(func, 'id', None) or getattr(func, 'attr', None) for func in calls)
    assert 'run_module' in called, '%s: end through _errors.run_module' % name
    assert not called & {'exit_json', 'fail_json'}, '%s: exit_json/fail_json belong to run_module' % name


@pytest.mark.parametrize('name', NAMES)
def test_module_has_a_test_through_main(name):
    path = os.path.join(MODULE_TESTS, 'test_%s.py' % name)
    assert os.path.exists(path), '%s: add %s' % (name, os.path.relpath(path, ROOT))
    with open(path) as handle:
        assert '%s.main' % name in handle.read(), '%s: its test does not drive main()' % name

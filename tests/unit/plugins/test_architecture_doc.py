"""docs/architecture.md names every module_utils file, so the map of the code stays the code's: a file added without
a line there (or a line left for a file that is gone) fails here."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
UTILS = os.path.join(ROOT, 'plugins', 'module_utils')
DOC = os.path.join(ROOT, 'docs', 'architecture.md')


def utils_files():
    """Names as the document lists them: top-level files, and a package's files below its ``<package>/`` line."""
    names = set()
    for entry in os.listdir(UTILS):
        path = os.path.join(UTILS, entry)
        if entry.endswith('.py') and entry != '__init__.py':
            names.add(entry)
        elif os.path.isdir(path) and not entry.startswith('__'):
            names.add(entry + '/')
            names.update('%s/%s' % (entry, name) for name in os.listdir(path)
                         if name.endswith('.py') and name != '__init__.py')
    return names


def documented():
    """The file names in the module_utils block of the document, with a package's files as <package>/<file>."""
    with open(DOC) as handle:
        text = handle.read()
    block = text.split('## module_utils, one concern each', 1)[1].split('```', 2)[1]
    names, package = set(), None
    for line in block.splitlines():
        match = re.match(r'^(\s+)(_?[a-z0-9_]+(?:\.py|/))\s', line + ' ')
        if not match:
            continue
        indent, name = len(match.group(1)), match.group(2)
        if indent <= 2:
            package = name if name.endswith('/') else None
            names.add(name)
        elif package:
            names.add(package + name)
    return names


def test_every_module_utils_file_is_named_and_every_named_file_exists():
    actual, named = utils_files(), documented()
    assert sorted(actual - named) == [], 'add these to docs/architecture.md'
    assert sorted(named - actual) == [], 'docs/architecture.md names files that do not exist'

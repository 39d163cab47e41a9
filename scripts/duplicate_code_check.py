"""Duplicate-code check over plugins/: pylint's similarity checker (duplicate-code, R0801) on the code only.

A module's DOCUMENTATION, EXAMPLES and RETURN blocks repeat option descriptions on purpose (ansible-doc shows each
module on its own), so they are blanked out first (line numbers kept); imports, docstrings, comments and function
signatures are ignored by pylint's own options. Anything found is a block of MIN_LINES or more lines of code written
twice: move it into plugins/module_utils. Exit status 0 when nothing is found."""
import ast
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC_BLOCKS = ('DOCUMENTATION', 'EXAMPLES', 'RETURN')
# Six lines of code is a repeated block worth a shared function; shorter runs are mostly argument lists.
MIN_LINES = 6


def code_only(source):
    """The source with its documentation blocks replaced by blank lines."""
    lines = source.splitlines()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(target, 'id', '') in DOC_BLOCKS for target in node.targets):
            for number in range(node.lineno - 1, node.end_lineno):
                lines[number] = ''
    return '\n'.join(lines) + '\n'


def main():
    with tempfile.TemporaryDirectory() as scratch:
        for folder, _dirs, files in os.walk(os.path.join(ROOT, 'plugins')):
            for name in files:
                if not name.endswith('.py'):
                    continue
                path = os.path.join(folder, name)
                target = os.path.join(scratch, os.path.relpath(path, ROOT))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(path) as source, open(target, 'w') as copy:
                    copy.write(code_only(source.read()))
        proc = subprocess.run(
            [sys.executable, '-m', 'pylint', '--disable=all', '--enable=duplicate-code', '--score=n',
             '--min-similarity-lines=%d' % MIN_LINES, '--ignore-imports=y', '--ignore-docstrings=y',
             '--ignore-comments=y', '--ignore-signatures=y', '--recursive=y', 'plugins'],
            cwd=scratch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout)
        print('duplicate-code: the blocks above are written twice in plugins/ (min %d lines of code)' % MIN_LINES)
        return 1
    print('duplicate-code: no block of %d or more lines of code is repeated in plugins/' % MIN_LINES)
    return 0


if __name__ == '__main__':
    sys.exit(main())

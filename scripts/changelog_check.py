"""A change to what the collection ships (plugins/, roles/, playbooks/, meta/runtime.yml) comes with a changelog
fragment (changelogs/fragments/*.yml), the fragments pass `antsibull-changelog lint`, and CHANGELOG.md is what
scripts/changelog_generate.sh makes of them (it is generated: an edit by hand or a forgotten regeneration fails).

The base is the last commit that changed changelogs/changelog.yaml: a release, or the conversion to
antsibull-changelog. Everything since the base counts: commits, and the working tree (staged, unstaged, untracked),
so the check gives the same answer before and after the commit. `--base REV` compares with another revision instead
(a branch's merge base in a pull request: then the fragment must come with that change, not only since the release).
Run from anywhere in the checkout; non-zero on failure, naming what failed. Needs git and antsibull-changelog
(.venv, requirements-dev.txt)."""

import argparse
import difflib
import os
import shutil
import subprocess
import sys
import tempfile

CHANGES_FILE = 'changelogs/changelog.yaml'
FRAGMENTS_DIR = 'changelogs/fragments/'
WATCHED_DIRS = ('plugins/', 'roles/', 'playbooks/')
WATCHED_FILES = ('meta/runtime.yml',)
FRAGMENT_SUFFIXES = ('.yml', '.yaml')


def is_watched(path):
    """A path whose change reaches users of the collection."""
    return path.startswith(WATCHED_DIRS) or path in WATCHED_FILES


def is_fragment(path):
    """A fragment antsibull-changelog reads: a YAML file directly in changelogs/fragments/."""
    if not path.startswith(FRAGMENTS_DIR):
        return False
    name = path[len(FRAGMENTS_DIR):]
    return '/' not in name and not name.startswith('.') and name.endswith(FRAGMENT_SUFFIXES)


def parse_name_status(text):
    """`git diff --name-status` lines -> [(status letter, path)]; a rename or copy counts as its new path."""
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split('\t')
        status = fields[0][:1]
        entries.append((status, fields[-1]))
        if status == 'R' and len(fields) == 3:
            entries.append(('D', fields[1]))  # the old path changed too (it is gone)
    return entries


def decide(entries):
    """The pure decision. entries: [(status, path)] since the base (A added, M modified, D deleted, R renamed,
    '?' untracked). Returns (watched paths changed, fragments added); the check fails when the first is not
    empty and the second is."""
    changed = sorted({path for _status, path in entries if is_watched(path)})
    # A renamed fragment is the same note under another name, not a new one.
    added = sorted({path for status, path in entries if status in ('A', '?') and is_fragment(path)})
    return changed, added


def failure_message(base, changed, added, base_is='the last change to ' + CHANGES_FILE):
    """None when the change is fine, else what to tell the author."""
    if not changed or added:
        return None
    return ('changelog: %d shipped path(s) changed since %s (%s) and no fragment was added '
            'under %s:\n  %s\nAdd a fragment (docs/testing.md, "Changelog fragments") or, for a change users do not see, '
            'a fragment with a `trivial:` section.' % (len(changed), base[:12], base_is, FRAGMENTS_DIR, '\n  '.join(changed)))


def stale_message(current, generated, limit=20):
    """None when CHANGELOG.md is what the fragments generate, else the first lines of the difference."""
    if current == generated:
        return None
    diff = list(difflib.unified_diff(current.splitlines(), generated.splitlines(), 'CHANGELOG.md', 'generated', lineterm='', n=0))
    shown = diff[:limit] + (['... %d more lines' % (len(diff) - limit)] if len(diff) > limit else [])
    return ('changelog: CHANGELOG.md is not what changelogs/ generates (it is generated: add a fragment instead of '
            'editing it, then run scripts/changelog_generate.sh):\n' + '\n'.join(shown))


def _read(path):
    try:
        with open(path, encoding='utf-8') as handle:
            return handle.read()
    except FileNotFoundError:
        return ''


def generated_changelog():
    """What scripts/changelog_generate.sh writes now, or (None, its error)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'CHANGELOG.md')
        run = subprocess.run(['scripts/changelog_generate.sh', out], capture_output=True, text=True, check=False)
        if run.returncode != 0:
            return None, 'changelog: scripts/changelog_generate.sh failed (rc %d):\n%s%s' % (run.returncode, run.stdout, run.stderr)
        return _read(out), None


def _git(*args):
    return subprocess.run(('git',) + args, check=True, capture_output=True, text=True).stdout


def entries_since(base):
    """Everything changed from base to the working tree, untracked files included."""
    entries = parse_name_status(_git('diff', '--name-status', '-M', base))
    entries += [('?', path) for path in _git('ls-files', '--others', '--exclude-standard').splitlines() if path]
    return entries


def antsibull_changelog():
    here = os.path.join(os.path.dirname(sys.executable), 'antsibull-changelog')
    return here if os.access(here, os.X_OK) else shutil.which('antsibull-changelog')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--base', help='compare with this revision (default: the last commit that changed %s)' % CHANGES_FILE)
    args = parser.parse_args(argv)
    os.chdir(_git('rev-parse', '--show-toplevel').strip())
    failed = []
    base = _git('rev-parse', '--verify', args.base + '^{commit}').strip() if args.base else \
        _git('log', '-1', '--format=%H', '--', CHANGES_FILE).strip()
    if not base:
        failed.append('changelog: no commit has changed %s: nothing to compare with' % CHANGES_FILE)
    else:
        changed, added = decide(entries_since(base))
        message = failure_message(base, changed, added, *(['--base ' + args.base] if args.base else []))
        if message:
            failed.append(message)
        else:
            print('changelog: %d shipped path(s) changed since %s, %d fragment(s) added' % (len(changed), base[:12], len(added)))
    tool = antsibull_changelog()
    if not tool:
        failed.append('changelog: antsibull-changelog not found (.venv: pip install -r requirements-dev.txt)')
    else:
        lint = subprocess.run([tool, 'lint'], capture_output=True, text=True, check=False)
        if lint.returncode != 0 or lint.stdout.strip():
            failed.append('changelog: antsibull-changelog lint failed (rc %d):\n%s%s' % (lint.returncode, lint.stdout, lint.stderr))
        generated, error = generated_changelog()
        failed.append(error or stale_message(_read('CHANGELOG.md'), generated))
    failed = [message for message in failed if message]
    for message in failed:
        print(message, file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())

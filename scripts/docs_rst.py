"""Render the Markdown guides under docs/ as the collection's extra docs (docs/docsite/rst/*.rst).

antsibull-docs (the docs site, docs.ansible.com, Galaxy's docs build) takes extra docs only as RST under
docs/docsite/rst, listed in docs/docsite/extra-docs.yml; the Markdown files stay the ones people edit.
  scripts/docs_rst.py           write the RST files
  scripts/docs_rst.py --check   exit 1, naming the files, when the RST files are not what the Markdown gives
"""
import os
import re
import sys

import m2r2
import m2r2.m2r2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join('docs', 'docsite', 'rst')
REPO_URL = 'https://github.com/trustroot/ops/blob/main/'
LABEL_PREFIX = 'ansible_collections.trustroot.ops.docsite.'

# Markdown source -> extra-docs page name (docs/docsite/extra-docs.yml lists the same names).
PAGES = {
    'docs/runbooks/install.md': 'runbook_install',
    'docs/runbooks/unseal.md': 'runbook_unseal',
    'docs/runbooks/rotate.md': 'runbook_rotate',
    'docs/runbooks/migrate.md': 'runbook_migrate',
    'docs/runbooks/backup.md': 'runbook_backup',
    'docs/runbooks/disaster_recovery.md': 'runbook_disaster_recovery',
    'docs/runbooks/upgrade.md': 'runbook_upgrade',
    'docs/roles/vault_server.md': 'guide_vault_server',
    'docs/roles/spire_server.md': 'guide_spire_server',
    'docs/roles/spire_agent.md': 'guide_spire_agent',
    'docs/roles/spire_registration.md': 'guide_spire_registration',
    'docs/roles/backup.md': 'guide_backup',
    'docs/roles/monitoring.md': 'guide_monitoring',
    'docs/monitoring.md': 'guide_monitoring_alerts',
    'docs/spire-registration.md': 'guide_spire_registration_entries',
    'docs/spire-federation.md': 'guide_spire_federation',
    'docs/spire-ca-rotation.md': 'guide_spire_ca_rotation',
    'docs/kubernetes.md': 'guide_kubernetes',
    'docs/architecture.md': 'architecture',
    'docs/security.md': 'security',
    'docs/lab.md': 'lab',
    'docs/testing.md': 'testing',
}

# m2r2 passes RST roles through, but its pattern also takes `a`: b `c: d` for one; only :name:`text` and
# `text`:name: are roles.
_configure_parser = m2r2.m2r2.configure_markdown_parser_for_rst


def _configure_parser_strict_roles(markdown, *args, **kwargs):
    result = _configure_parser(markdown, *args, **kwargs)
    markdown.inline.specification['rest_role'] = r':[\w-]+:`[^`]+`|`[^`]+`:[\w-]+:'
    return result


m2r2.m2r2.configure_markdown_parser_for_rst = _configure_parser_strict_roles

_LINK = re.compile(r'(?<!!)\[([^\]\n]+)\]\(([^)\s]+)\)')
_FENCE = re.compile(r'^\s*(```|~~~)')


def rewrite_link(source, text, target):
    """A link between guides becomes a :ref: to the page; a link to another file of the repository a GitHub URL."""
    if re.match(r'^[a-z]+:', target) or target.startswith('#'):
        return '[%s](%s)' % (text, target)
    path, _hash, anchor = target.partition('#')
    repo_path = os.path.normpath(os.path.join(os.path.dirname(source), path))
    if repo_path in PAGES:
        return ':ref:`%s <%s%s>`' % (text.replace('`', ''), LABEL_PREFIX, PAGES[repo_path])
    return '[%s](%s%s%s)' % (text, REPO_URL, repo_path, '#' + anchor if anchor else '')


def prepare(source, markdown):
    """Rewrite the links, and join the lines of a code span that wraps (m2r2 reads code spans line by line)."""
    lines, in_fence, open_span = [], False, False
    for line in markdown.splitlines():
        if _FENCE.match(line) and not open_span:
            in_fence = not in_fence
            if in_fence and line.strip() in ('```', '~~~'):
                line += 'text'   # a code block without a language fails rstcheck (antsibull-docs lint)
        elif not in_fence:
            line = _LINK.sub(lambda m: rewrite_link(source, m.group(1), m.group(2)), line)
            if open_span:
                lines[-1] += ' ' + line.lstrip()
                open_span = lines[-1].count('`') % 2 == 1
                continue
            open_span = line.count('`') % 2 == 1
        lines.append(line)
    return '\n'.join(lines) + '\n'


def render(source):
    with open(os.path.join(ROOT, source), encoding='utf-8') as f:
        markdown = f.read()
    body = m2r2.convert(prepare(source, markdown), inline_math=None)
    head = ('..\n  Generated from %s by scripts/docs_rst.py: edit the Markdown file, then run the script.\n\n'
            '.. _%s%s:\n' % (source, LABEL_PREFIX, PAGES[source]))
    return head + body.rstrip() + '\n'


def main(argv):
    check = '--check' in argv
    stale = []
    wanted = {name + '.rst' for name in PAGES.values()}
    out_dir = os.path.join(ROOT, OUT)
    if not check:
        os.makedirs(out_dir, exist_ok=True)
    for source, name in PAGES.items():
        path = os.path.join(out_dir, name + '.rst')
        text = render(source)
        current = open(path, encoding='utf-8').read() if os.path.exists(path) else None
        if current == text:
            continue
        stale.append('%s/%s.rst (from %s)' % (OUT, name, source))
        if not check:
            with open(path, 'w', encoding='utf-8') as f:
                f.write(text)
    for extra in sorted(set(os.listdir(out_dir) if os.path.isdir(out_dir) else []) - wanted):
        stale.append('%s/%s (no Markdown source)' % (OUT, extra))
        if not check:
            os.remove(os.path.join(out_dir, extra))
    if check and stale:
        print('docs_rst: out of date, run scripts/docs_rst.py: ' + ', '.join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

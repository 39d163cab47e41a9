"""scripts/changelog_check.py: a shipped change without a fragment fails, naming the changed paths."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
spec = importlib.util.spec_from_file_location('changelog_check', os.path.join(ROOT, 'scripts', 'changelog_check.py'))
changelog_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(changelog_check)

BASE = '0123456789abcdef0123'


def test_watched_paths():
    for path in ('plugins/modules/vault_init.py', 'roles/vault_server/tasks/main.yml', 'playbooks/install.yml',
                 'meta/runtime.yml'):
        assert changelog_check.is_watched(path), path
    for path in ('docs/testing.md', 'tests/unit/conftest.py', 'meta/other.yml', 'scripts/test.sh', 'plugins',
                 'galaxy.yml', 'myplugins/x.py'):
        assert not changelog_check.is_watched(path), path


def test_fragments():
    assert changelog_check.is_fragment('changelogs/fragments/15-vault-init.yml')
    assert changelog_check.is_fragment('changelogs/fragments/x.yaml')
    for path in ('changelogs/fragments/.keep', 'changelogs/fragments/notes.md', 'changelogs/fragments/sub/x.yml',
                 'changelogs/changelog.yaml', 'changelogs/config.yaml'):
        assert not changelog_check.is_fragment(path), path


def test_plugin_change_without_fragment_fails_naming_paths():
    entries = [('M', 'plugins/modules/vault_init.py'), ('?', 'roles/vault_server/tasks/new.yml'), ('M', 'docs/x.md')]
    changed, added = changelog_check.decide(entries)
    assert changed == ['plugins/modules/vault_init.py', 'roles/vault_server/tasks/new.yml']
    assert added == []
    message = changelog_check.failure_message(BASE, changed, added)
    assert 'plugins/modules/vault_init.py' in message and 'roles/vault_server/tasks/new.yml' in message
    assert BASE[:12] in message and 'docs/x.md' not in message


def test_added_fragment_committed_or_untracked_passes():
    for status in ('A', '?'):
        changed, added = changelog_check.decide([('M', 'meta/runtime.yml'), (status, 'changelogs/fragments/a.yml')])
        assert changed == ['meta/runtime.yml'] and added == ['changelogs/fragments/a.yml']
        assert changelog_check.failure_message(BASE, changed, added) is None


def test_modified_renamed_or_deleted_fragment_is_not_a_new_one():
    entries = [('M', 'playbooks/rotate.yml'), ('M', 'changelogs/fragments/old.yml'), ('D', 'changelogs/fragments/gone.yml'),
               ('R', 'changelogs/fragments/renamed.yml')]
    changed, added = changelog_check.decide(entries)
    assert added == []
    assert changelog_check.failure_message(BASE, changed, added) is not None


def test_no_shipped_change_needs_no_fragment():
    changed, added = changelog_check.decide([('M', 'docs/testing.md'), ('A', 'tests/unit/x.py')])
    assert changed == [] and changelog_check.failure_message(BASE, changed, added) is None


def test_deleted_plugin_counts():
    changed, _added = changelog_check.decide([('D', 'plugins/filter/old.py')])
    assert changed == ['plugins/filter/old.py']


def test_name_status_renames_count_both_paths():
    text = 'M\tplugins/modules/a.py\nR100\tplugins/modules/old.py\tdocs/old.py\nA\tchangelogs/fragments/b.yml\n\n'
    entries = changelog_check.parse_name_status(text)
    assert ('R', 'docs/old.py') in entries and ('D', 'plugins/modules/old.py') in entries
    changed, added = changelog_check.decide(entries)
    assert changed == ['plugins/modules/a.py', 'plugins/modules/old.py']
    assert added == ['changelogs/fragments/b.yml']


def test_generated_changelog_matches():
    assert changelog_check.stale_message('# x\n\n* a\n', '# x\n\n* a\n') is None


def test_hand_edited_changelog_fails_showing_the_difference():
    message = changelog_check.stale_message('# x\n\n* a\n* added by hand\n', '# x\n\n* a\n')
    assert 'scripts/changelog_generate.sh' in message and '-* added by hand' in message


def test_stale_difference_is_cut_short():
    message = changelog_check.stale_message(''.join('line %d\n' % i for i in range(100)), '', limit=5)
    assert '-line 1\n' in message and '-line 50' not in message and 'more lines' in message

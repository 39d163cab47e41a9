"""The AWX job template surveys (awx/surveys/<playbook>.json) and custom credential types (awx/credential_types/*.yml)
against what the playbooks really read: every survey variable is an option of an argument spec entry point the playbook
runs (directly, or through a playbook variable the playbook hands to one: `role_var: "{{ survey_var ... }}"`), with the
same type and choices; every variable a credential type injects is read by a playbook or a role."""

import glob
import json
import os
import re

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
SURVEYS = ('install', 'unseal', 'backup', 'verify_backup', 'disaster_recovery', 'rotate', 'migrate')
BOOL_CHOICES = ['true', 'false']
TEXT_TYPES = ('text', 'textarea', 'password')


def load_yaml(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def argument_specs(role):
    return load_yaml(os.path.join(ROOT, 'roles', role, 'meta', 'argument_specs.yml'))['argument_specs']


def role_of(name):
    """'trustroot.ops.vault_server' -> 'vault_server' (the collection's roles only)."""
    return name.split('.')[-1]


def walk_tasks(tasks, found):
    for task in tasks or []:
        for key in ('block', 'rescue', 'always'):
            walk_tasks(task.get(key), found)
        for key in ('ansible.builtin.include_role', 'ansible.builtin.import_role', 'include_role', 'import_role'):
            if key in task:
                found.append((role_of(task[key]['name']), task[key].get('tasks_from', 'main'), task.get('vars', {})))


def entry_points(playbook):
    """[(role, entry point, vars given to it)] of a playbook file, following import_playbook."""
    found = []
    for play in load_yaml(os.path.join(ROOT, 'playbooks', playbook + '.yml')):
        if 'ansible.builtin.import_playbook' in play or 'import_playbook' in play:
            target = play.get('ansible.builtin.import_playbook') or play['import_playbook']
            found += entry_points(target[:-len('.yml')])
            continue
        for role in play.get('roles', []):
            name = role['role'] if isinstance(role, dict) else role
            found.append((role_of(name), 'main', role.get('vars', {}) if isinstance(role, dict) else {}))
        for key in ('pre_tasks', 'tasks', 'post_tasks'):
            walk_tasks(play.get(key), found)
    return found


def options_of(playbook):
    """{option name: [spec of that option in each entry point the playbook runs]}, and the playbook's hand-overs
    {playbook variable: [option name]} read from the vars given to an entry point (`option: "{{ variable ...}}"`)."""
    options, handed = {}, {}
    for role, entry, given in entry_points(playbook):
        specs = argument_specs(role)
        assert entry in specs, '%s: role %s has no argument spec entry point %s' % (playbook, role, entry)
        for name, spec in (specs[entry].get('options') or {}).items():
            options.setdefault(name, []).append(spec)
        for name, value in given.items():
            match = re.match(r'^\s*\{\{\s*([a-z_][a-z0-9_]*)\b', str(value))
            if match:
                handed.setdefault(match.group(1), []).append(name)
    return options, handed


def survey(playbook):
    with open(os.path.join(ROOT, 'awx', 'surveys', playbook + '.json')) as handle:
        return json.load(handle)


def type_problem(question, spec):
    """None when the survey question fits the option's spec, else what is wrong (pure)."""
    kind, choices = question['type'], question.get('choices')
    want = spec.get('type', 'str')
    if spec.get('no_log') and kind != 'password':
        return 'the option is no_log: the question must be a password'
    if want == 'bool':
        if kind != 'multiplechoice' or choices != BOOL_CHOICES:
            return 'a bool option: multiplechoice with choices %s' % BOOL_CHOICES
        return None
    if want == 'int':
        return None if kind == 'integer' else 'an int option: type integer, not %s' % kind
    if want == 'float':
        return None if kind in ('integer', 'float') else 'a float option: type float, not %s' % kind
    if want in ('str', 'path', 'raw'):
        if spec.get('choices'):
            if kind != 'multiplechoice' or [str(c) for c in spec['choices']] != choices:
                return 'choices %s: multiplechoice with the same choices, not %s %s' % (spec['choices'], kind, choices)
            return None
        return None if kind in TEXT_TYPES else 'a %s option: text, textarea or password, not %s' % (want, kind)
    return 'option type %s has no survey question type' % want


def survey_problems(playbook):
    options, handed = options_of(playbook)
    problems = []
    for question in survey(playbook)['spec']:
        variable = question['variable']
        names = [variable] if variable in options else [name for name in handed.get(variable, []) if name in options]
        if not names:
            problems.append('%s: %s is in no argument spec of what the playbook runs' % (playbook, variable))
            continue
        for name in names:
            for spec in options[name]:
                problem = type_problem(question, spec)
                if problem:
                    problems.append('%s: %s (option %s): %s' % (playbook, variable, name, problem))
        if question['type'] == 'multiplechoice' and question.get('default') not in ('', None) \
                and str(question['default']) not in question['choices']:
            problems.append('%s: %s: default %r is not a choice' % (playbook, variable, question['default']))
    return problems


@pytest.mark.parametrize('playbook', SURVEYS)
def test_every_survey_variable_is_an_option_of_what_the_playbook_runs_with_its_type_and_choices(playbook):
    assert survey_problems(playbook) == []


@pytest.mark.parametrize('playbook', SURVEYS)
def test_survey_spec_is_well_formed(playbook):
    data = survey(playbook)
    assert data['name'] and data['description'] and data['spec']
    variables = [question['variable'] for question in data['spec']]
    assert len(variables) == len(set(variables)), 'a variable asked twice'
    for question in data['spec']:
        assert set(question) >= {'question_name', 'type', 'variable', 'required'}, question
        assert question['type'] in ('text', 'textarea', 'password', 'integer', 'float', 'multiplechoice', 'multiselect')


def test_surveys_cover_the_playbooks_the_brief_names():
    assert sorted(os.path.basename(path)[:-5] for path in glob.glob(os.path.join(ROOT, 'awx', 'surveys', '*.json'))) \
        == sorted(SURVEYS)


def test_a_wrong_type_or_choice_or_unknown_variable_is_reported(tmp_path, monkeypatch):
    # The check can fail: a question that does not fit the spec is named.
    assert type_problem({'type': 'text'}, {'type': 'int'})
    assert type_problem({'type': 'integer'}, {'type': 'bool'})
    assert type_problem({'type': 'multiplechoice', 'choices': ['info', 'debug']}, {'type': 'str', 'choices': ['info', 'warn']})
    assert type_problem({'type': 'text'}, {'type': 'str', 'no_log': True})
    assert type_problem({'type': 'multiplechoice', 'choices': BOOL_CHOICES}, {'type': 'bool'}) is None
    broken = survey('install')
    broken['spec'].append({'question_name': 'x', 'type': 'text', 'variable': 'vault_server_no_such_option', 'required': False})
    monkeypatch.setitem(globals(), 'survey', lambda playbook: broken)
    assert survey_problems('install') == ['install: vault_server_no_such_option is in no argument spec of what the playbook runs']


# --- credential types -----------------------------------------------------------------------------------------

def credential_types():
    return sorted(glob.glob(os.path.join(ROOT, 'awx', 'credential_types', '*.yml')))


def read_text():
    """Everything the playbooks and roles read variables in: playbooks, role tasks, templates, defaults, vars."""
    paths = glob.glob(os.path.join(ROOT, 'playbooks', '*.yml'))
    for part in ('tasks', 'templates', 'defaults', 'vars', 'handlers'):
        paths += glob.glob(os.path.join(ROOT, 'roles', '*', part, '**', '*'), recursive=True)
    text = []
    for path in paths:
        if os.path.isfile(path):
            with open(path) as handle:
                text.append(handle.read())
    return '\n'.join(text)


def injected_variables(definition):
    injectors = definition['injectors']
    return sorted(injectors.get('extra_vars', {})) + sorted(injectors.get('env', {}))


def test_credential_types_exist():
    names = [os.path.basename(path) for path in credential_types()]
    assert names == ['age_identity.yml', 'spire_agent_attestation.yml', 'vault_token.yml']


@pytest.mark.parametrize('path', credential_types(), ids=os.path.basename)
def test_every_injected_variable_is_read_by_a_playbook_or_role(path):
    definition = load_yaml(path)
    text = read_text()
    unread = [name for name in injected_variables(definition) if not re.search(r'\b%s\b' % re.escape(name), text)]
    assert unread == [], '%s injects variables nothing reads' % os.path.basename(path)
    # Extra variables, not ANSIBLE_* settings: AWX refuses injecting those.
    assert not [name for name in injected_variables(definition) if name.upper().startswith('ANSIBLE_')]


@pytest.mark.parametrize('path', credential_types(), ids=os.path.basename)
def test_credential_type_inputs_and_injectors_agree(path):
    definition = load_yaml(path)
    assert definition['name'] and definition['kind'] == 'cloud'
    fields = {field['id']: field for field in definition['inputs']['fields']}
    assert set(definition['inputs'].get('required', [])) <= set(fields)
    files = {key.split('.', 1)[1] for key in definition['injectors'].get('file', {})}
    for template in list(definition['injectors'].get('extra_vars', {}).values()) + \
            list(definition['injectors'].get('file', {}).values()):
        for name in re.findall(r'\b([a-z_][a-z0-9_]*)\b', ' '.join(re.findall(r'\{\{(.*?)\}\}', template))):
            assert name in fields or name in files or name in ('tower', 'filename', 'if', 'else'), (path, name)
    for field in fields.values():
        if re.search(r'token|key|identity|password', field['id']) and 'ttl' not in field['id'] \
                and 'certificate' not in field['id']:
            assert field.get('secret'), '%s: field %s holds a secret: secret: true' % (path, field['id'])

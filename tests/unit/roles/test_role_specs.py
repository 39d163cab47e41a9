"""Drift check: every role's defaults/main.yml agrees with its meta/argument_specs.yml.

A variable a user can set must be documented by at least one entry point; a documented default must be the value the
role really uses; the default must have the documented type and be among the documented choices. A default written as
a template (``{{ ... }}``) is the role's own logic and is not compared. Variables starting with ``_`` are private.
Options documenting another role's variable (an entry point that reads, say, spire_agent_socket_path) are compared with
that role's defaults."""
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLES = os.path.join(ROOT, 'roles')
TYPES = {'str': (str, int, float), 'path': str, 'int': int, 'bool': bool, 'list': list, 'dict': dict,
         'float': (int, float)}


def _load(path):
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def _templated(value):
    return isinstance(value, str) and '{{' in value


def role_names(roles_dir=ROLES):
    return sorted(name for name in os.listdir(roles_dir) if os.path.isdir(os.path.join(roles_dir, name)))


def all_defaults(roles_dir=ROLES):
    return {role: _load(os.path.join(roles_dir, role, 'defaults', 'main.yml')) or {} for role in role_names(roles_dir)}


def _owner_defaults(name, role, defaults_by_role):
    """The defaults a variable's value comes from: its own role's, else the role whose name prefixes it."""
    if name in defaults_by_role[role]:
        return defaults_by_role[role]
    for other, defaults in defaults_by_role.items():
        if name.startswith(other + '_') and name in defaults:
            return defaults
    return None


def _option_problems(where, name, option, value):
    problems = []
    if 'default' in option:
        if not _templated(option['default']) and option['default'] != value:
            problems.append('%s: option %s documents default %r, defaults/main.yml has %r'
                            % (where, name, option['default'], value))
    elif value not in (None, '', [], {}):
        problems.append('%s: option %s documents no default, defaults/main.yml has %r' % (where, name, value))
    kind = option.get('type', 'str')
    if value is not None and kind in TYPES and not isinstance(value, TYPES[kind]):
        problems.append('%s: option %s is of type %s, its default %r is not' % (where, name, kind, value))
    if 'choices' in option and value is not None:
        values = value if kind == 'list' else [value]
        outside = [item for item in values if item not in option['choices']]
        if outside:
            problems.append('%s: option %s default %r is not among its choices %r' % (where, name, outside, option['choices']))
    return problems


def role_problems(role, roles_dir=ROLES):
    """Every disagreement between the role's defaults and its argument specs, each naming role, entry point and
    variable."""
    specs = _load(os.path.join(roles_dir, role, 'meta', 'argument_specs.yml'))
    if specs is None:
        return ['%s: no meta/argument_specs.yml' % role]
    defaults_by_role = all_defaults(roles_dir)
    problems, documented = [], set()
    for entry_point, spec in sorted((specs.get('argument_specs') or {}).items()):
        where = '%s (entry point %s)' % (role, entry_point)
        for name, option in sorted((spec.get('options') or {}).items()):
            documented.add(name)
            source = _owner_defaults(name, role, defaults_by_role)
            if source is None:
                if option.get('default') is not None and not _templated(option['default']):
                    problems.append('%s: option %s documents default %r that no defaults/main.yml sets'
                                    % (where, name, option['default']))
                continue
            if not _templated(source[name]):
                problems.extend(_option_problems(where, name, option, source[name]))
    for name in sorted(defaults_by_role[role]):
        if not name.startswith('_') and name not in documented:
            problems.append('%s: variable %s in defaults/main.yml is documented by no entry point' % (role, name))
    return problems


@pytest.mark.parametrize('role', role_names())
def test_defaults_agree_with_argument_specs(role):
    assert role_problems(role) == []


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        yaml.safe_dump(data, handle)


def test_the_check_names_each_kind_of_drift(tmp_path):
    roles = str(tmp_path)
    _write(os.path.join(roles, 'demo', 'defaults', 'main.yml'), {
        'demo_port': 8200, 'demo_mode': 'fast', 'demo_undocumented': 1, 'demo_types': 'x', 'demo_path': '{{ x }}',
        '__demo_private': 1, 'demo_list': ['a', 'z']})
    _write(os.path.join(roles, 'demo', 'meta', 'argument_specs.yml'), {'argument_specs': {'main': {'options': {
        'demo_port': {'type': 'int', 'default': 8201},
        'demo_mode': {'type': 'str', 'choices': ['slow'], 'default': 'fast'},
        'demo_types': {'type': 'int', 'default': 'x'},
        'demo_path': {'type': 'path'},
        'demo_list': {'type': 'list', 'elements': 'str', 'choices': ['a', 'b'], 'default': ['a', 'z']},
        'demo_ghost': {'type': 'str', 'default': 'boo'},
    }}}})
    problems = role_problems('demo', roles)
    assert problems == [
        "demo (entry point main): option demo_ghost documents default 'boo' that no defaults/main.yml sets",
        "demo (entry point main): option demo_list default ['z'] is not among its choices ['a', 'b']",
        "demo (entry point main): option demo_mode default ['fast'] is not among its choices ['slow']",
        'demo (entry point main): option demo_port documents default 8201, defaults/main.yml has 8200',
        "demo (entry point main): option demo_types is of type int, its default 'x' is not",
        'demo: variable demo_undocumented in defaults/main.yml is documented by no entry point',
    ]

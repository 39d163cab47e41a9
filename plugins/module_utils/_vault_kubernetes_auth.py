# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes auth method (pure): the task's input checked, compared with the server, turned into actions.

``auth/<mount>/config`` is replaced as a whole by every write (fields left out fall back to the server's defaults,
and a write without ``token_reviewer_jwt`` clears the stored one), so the configuration is compared field by field
with the defaults filled in, and every write carries the reviewer JWT when the task gives one. The JWT is never read
back: the server only says ``token_reviewer_jwt_set``. ``auth/<mount>/role/<name>`` writes are merges: only the role
fields the task sets are compared and sent; the others keep what the server has (its defaults for a new role).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.trustroot.ops.plugins.module_utils._vault import Optional, VaultError, api_errors, shape_problem
from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError

MOUNT = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*$')
# Vault's framework.GenericNameRegex for role names.
ROLE_NAME = re.compile(r'^\w(([\w.-]+)?\w)?$')
DURATION = re.compile(r'^(\d+[smhd])+$')
DURATION_PART = re.compile(r'(\d+)([smhd])')
UNIT_SECONDS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400}

ALIAS_NAME_SOURCES = ('serviceaccount_uid', 'serviceaccount_name')
TOKEN_TYPES = ('default', 'service', 'batch', 'default-service', 'default-batch')
# Role fields the module manages: kind, and for choices the allowed values.
ROLE_FIELDS = {
    'bound_service_account_names': 'list',
    'bound_service_account_namespaces': 'list',
    'bound_service_account_namespace_selector': 'str',
    'audience': 'str',
    'alias_name_source': ALIAS_NAME_SOURCES,
    'token_policies': 'list',
    'token_bound_cidrs': 'list',
    'token_ttl': 'duration',
    'token_max_ttl': 'duration',
    'token_explicit_max_ttl': 'duration',
    'token_period': 'duration',
    'token_num_uses': 'int',
    'token_no_default_policy': 'bool',
    'token_strictly_bind_ip': 'bool',
    'token_type': TOKEN_TYPES,
}
ROLE_KEYS = ('name', 'state') + tuple(sorted(ROLE_FIELDS))
# What a field the server leaves out of its answer means (a role written before the field existed).
FIELD_DEFAULTS = {'list': [], 'str': '', 'duration': 0, 'int': 0, 'bool': False}

# Answers, checked with _vault.shape_problem before anything is read.
AUTH_MOUNT = {'type': str}
ROLE_LIST = {'keys': [str]}
CONFIG = {'kubernetes_host': str, 'kubernetes_ca_cert': Optional(str), 'issuer': Optional(str),
          'disable_iss_validation': Optional(bool), 'pem_keys': Optional([str]),
          'disable_local_ca_jwt': Optional(bool), 'token_reviewer_jwt_set': bool}
_SHAPE_RULES = {'list': Optional([str]), 'str': Optional(str), 'duration': Optional(int), 'int': Optional(int),
                'bool': Optional(bool)}
ROLE = dict((name, _SHAPE_RULES.get(kind, Optional(str))) for name, kind in ROLE_FIELDS.items())

# The configuration fields compared, and the server's value for those the task leaves out.
CONFIG_DEFAULTS = {'kubernetes_ca_cert': '', 'issuer': '', 'disable_iss_validation': True, 'pem_keys': [],
                   'disable_local_ca_jwt': False}
CONFIG_FIELDS = ('kubernetes_host', 'kubernetes_ca_cert', 'issuer', 'disable_iss_validation', 'pem_keys',
                 'disable_local_ca_jwt')


class KubernetesAuthError(TrustrootError, ValueError):
    """Bad input, naming the field (never echoing a secret)."""


def clean_mount(mount):
    return str(mount or '').strip().strip('/')


def check_mount(mount):
    path = clean_mount(mount)
    if not path or not MOUNT.match(path):
        raise KubernetesAuthError('mount_point must be a path such as "kubernetes" or "k8s/prod" (letters, digits, '
                                  '".", "_", "-" and inner "/"), got %r' % (mount,))
    return path


def parse_duration(value, where):
    """Seconds from 3600, "3600", "1h", "1h30m", "2d"; raises KubernetesAuthError naming ``where``."""
    if isinstance(value, bool):
        raise KubernetesAuthError('%s must be a number of seconds or a duration such as "1h", not a boolean' % where)
    if isinstance(value, int):
        if value < 0:
            raise KubernetesAuthError('%s must not be negative' % where)
        return value
    text = str(value).strip() if isinstance(value, str) else None
    if text is not None and text.isdigit():
        return int(text)
    if text and DURATION.match(text):
        return sum(int(count) * UNIT_SECONDS[unit] for count, unit in DURATION_PART.findall(text))
    raise KubernetesAuthError('%s must be a number of seconds or a duration such as "90s", "30m", "1h", "2d", got %r'
                              % (where, value))


def string_list(value, where):
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise KubernetesAuthError('%s must be a list of strings' % where)
    items = [item.strip() for item in value]
    if any(not item for item in items):
        raise KubernetesAuthError('%s must not contain empty strings' % where)
    return sorted(set(items))


def check_field(name, kind, value, where):
    """The value of one role field as it is compared and sent."""
    if kind == 'list':
        return string_list(value, where)
    if kind == 'duration':
        return parse_duration(value, where)
    if kind == 'int':
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)  # a templated number arrives as a string
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise KubernetesAuthError('%s must be a number (0 or more)' % where)
        return value
    if kind == 'bool':
        if not isinstance(value, bool):
            raise KubernetesAuthError('%s must be a boolean' % where)
        return value
    if not isinstance(value, str):
        raise KubernetesAuthError('%s must be a string' % where)
    if isinstance(kind, tuple) and value not in kind:
        raise KubernetesAuthError('%s must be one of %s, got %r' % (where, ', '.join(kind), value))
    return value


def normalize_roles(roles):
    """The declared roles, checked: [{name, state, fields: {field: value}}]. Raises KubernetesAuthError naming
    the field (roles[<i>].<field>) before anything is sent."""
    if roles is None:
        return []
    if not isinstance(roles, list):
        raise KubernetesAuthError('roles must be a list of dictionaries')
    result = []
    seen = set()
    for index, role in enumerate(roles):
        where = 'roles[%d]' % index
        if not isinstance(role, dict):
            raise KubernetesAuthError('%s must be a dictionary' % where)
        unknown = sorted(str(key) for key in role if key not in ROLE_KEYS)
        if unknown:
            raise KubernetesAuthError('%s: unknown field%s %s (known: %s)' % (
                where, 's' if len(unknown) > 1 else '', ', '.join(unknown), ', '.join(ROLE_KEYS)))
        name = role.get('name')
        if not isinstance(name, str) or not name.strip():
            raise KubernetesAuthError('%s.name must be a non-empty string' % where)
        name = name.strip()
        if not ROLE_NAME.match(name):
            raise KubernetesAuthError('%s.name must be letters, digits, "_", "-" and inner ".", got %r' % (where, name))
        if name in seen:
            raise KubernetesAuthError('%s.name %s is given twice' % (where, name))
        seen.add(name)
        where = '%s (%s)' % (where, name)
        state = role.get('state') or 'present'
        if state not in ('present', 'absent'):
            raise KubernetesAuthError('%s.state must be present or absent' % where)
        fields = {}
        for field, kind in ROLE_FIELDS.items():
            if role.get(field) is not None:
                fields[field] = check_field(field, kind, role[field], '%s.%s' % (where, field))
        if state == 'present':
            if not fields.get('bound_service_account_names'):
                raise KubernetesAuthError('%s.bound_service_account_names is required (a list; ["*"] for any)' % where)
            if not fields.get('bound_service_account_namespaces') and \
                    not fields.get('bound_service_account_namespace_selector'):
                raise KubernetesAuthError('%s.bound_service_account_namespaces (or bound_service_account_namespace_'
                                          'selector) is required' % where)
            ttl, max_ttl = fields.get('token_ttl'), fields.get('token_max_ttl')
            if ttl and max_ttl and ttl > max_ttl:
                raise KubernetesAuthError('%s.token_ttl (%ds) must not be more than token_max_ttl (%ds)' % (
                    where, ttl, max_ttl))
        result.append(dict(name=name, state=state, fields=fields))
    return result


def normalize_config(params):
    """The desired auth/<mount>/config without the JWT: every compared field, server defaults for those not given.

    ``params``: kubernetes_host, kubernetes_ca_cert, issuer, disable_iss_validation, pem_keys, disable_local_ca_jwt.
    """
    host = params.get('kubernetes_host')
    if not isinstance(host, str) or not host.strip():
        raise KubernetesAuthError('kubernetes_host is required with state=present (the API server, '
                                  'e.g. https://kubernetes.example.com:6443)')
    host = host.strip()
    if not re.match(r'^https?://[^/\s]+', host):
        raise KubernetesAuthError('kubernetes_host must be an http:// or https:// address, got %r' % host)
    config = dict(CONFIG_DEFAULTS, kubernetes_host=host)
    ca = params.get('kubernetes_ca_cert')
    if ca:
        if '-----BEGIN CERTIFICATE-----' not in ca:
            raise KubernetesAuthError('kubernetes_ca_cert must be PEM (-----BEGIN CERTIFICATE-----...), not a path')
        config['kubernetes_ca_cert'] = pem_text(ca)
    if params.get('issuer'):
        config['issuer'] = params['issuer'].strip()
    for name in ('disable_iss_validation', 'disable_local_ca_jwt'):
        if params.get(name) is not None:
            config[name] = bool(params[name])
    if params.get('pem_keys') is not None:
        keys = params['pem_keys']
        if not isinstance(keys, list) or not all(isinstance(key, str) and '-----BEGIN' in key for key in keys):
            raise KubernetesAuthError('pem_keys must be a list of PEM public keys')
        config['pem_keys'] = [pem_text(key) for key in keys]
    return config


def check_jwt(jwt):
    """A reviewer JWT looks like one (three dot-separated parts); the message never shows it."""
    if jwt is None:
        return None
    if not isinstance(jwt, str) or len(jwt.strip().split('.')) != 3 or any(c.isspace() for c in jwt.strip()):
        raise KubernetesAuthError('token_reviewer_jwt must be a JSON Web Token (three dot-separated parts)')
    return jwt.strip()


def pem_text(text):
    return text.strip() + '\n'


def current_config(answer):
    """auth/<mount>/config's answer (shape-checked) -> the compared fields plus token_reviewer_jwt_set."""
    if answer is None:
        return None
    config = dict(CONFIG_DEFAULTS)
    for name in CONFIG_FIELDS:
        if answer.get(name) is not None:
            config[name] = answer[name]
    config['kubernetes_ca_cert'] = pem_text(config['kubernetes_ca_cert']) if config['kubernetes_ca_cert'] else ''
    config['pem_keys'] = [pem_text(key) for key in config['pem_keys']]
    config['token_reviewer_jwt_set'] = bool(answer.get('token_reviewer_jwt_set'))
    return config


def current_role(answer):
    """auth/<mount>/role/<name>'s answer (shape-checked) -> {field: value} for the managed fields."""
    role = {}
    for field, kind in ROLE_FIELDS.items():
        value = answer.get(field)
        if value is None:
            value = FIELD_DEFAULTS.get(kind, '')
        role[field] = sorted(set(value)) if kind == 'list' else value
    return role


def config_differences(desired, current):
    return [name for name in CONFIG_FIELDS if desired[name] != current[name]]


def role_differences(fields, current):
    return [name for name in sorted(fields) if fields[name] != current.get(name)]


def _plural(names):
    return '%s differ%s' % (', '.join(names), '' if len(names) > 1 else 's')


def plan(state, enabled, desired_config, jwt_given, jwt_update, current_cfg, desired_roles, current_roles,
         role_names, purge_roles):
    """Actions, in the order they run: {action, target, reason}.

    ``enabled``: the mount exists with type kubernetes. ``current_cfg``: current_config() or None (not configured).
    ``current_roles``: {name: current_role()} for the declared roles that exist. ``role_names``: every role on the
    server (read when ``purge_roles``). The reviewer JWT is written with the configuration when the server has none,
    when ``jwt_update`` is always, or when another field changes (a write replaces the whole configuration)."""
    if state == 'absent':
        return [dict(action='disable', target='auth method', reason='state is absent')] if enabled else []
    actions = []
    if not enabled:
        actions.append(dict(action='enable', target='auth method', reason='not enabled'))
    reasons = []
    if current_cfg is None:
        reasons.append('not configured')
    else:
        changed = config_differences(desired_config, current_cfg)
        if changed:
            reasons.append(_plural(changed))
        if jwt_given and not current_cfg['token_reviewer_jwt_set']:
            reasons.append('the server has no token_reviewer_jwt')
        elif jwt_given and jwt_update == 'always':
            reasons.append('token_reviewer_jwt_update is always')
        elif not jwt_given and current_cfg['token_reviewer_jwt_set']:
            reasons.append('the server has a token_reviewer_jwt and the task gives none')
    if reasons:
        actions.append(dict(action='configure', target='config', reason='; '.join(reasons)))
    declared = set()
    for role in desired_roles:
        declared.add(role['name'])
        have = current_roles.get(role['name'])
        target = 'role ' + role['name']
        if role['state'] == 'absent':
            if have is not None:
                actions.append(dict(action='delete', target=target, reason='state is absent'))
            continue
        if have is None:
            actions.append(dict(action='write', target=target, reason='not defined'))
            continue
        changed = role_differences(role['fields'], have)
        if changed:
            actions.append(dict(action='write', target=target, reason=_plural(changed)))
    if purge_roles:
        for name in sorted(role_names):
            if name not in declared:
                actions.append(dict(action='delete', target='role ' + name, reason='not in roles (purge_roles)'))
    return actions


def config_payload(desired_config, jwt):
    """The body of the configuration write: every field (the write replaces them all), the JWT when given."""
    payload = dict((name, desired_config[name]) for name in CONFIG_FIELDS)
    if jwt:
        payload['token_reviewer_jwt'] = jwt
    return payload


def role_payload(role):
    return dict(role['fields'])


def state_after(state, enabled, config, roles, actions, desired_config, jwt_given, desired_roles):
    """{enabled, config, roles} once the actions are applied (for check mode and the diff); never the JWT."""
    if state == 'absent':
        return dict(enabled=False, config=None, roles={})
    config_after = config
    roles_after = dict((name, dict(role)) for name, role in roles.items())
    by_name = dict((role['name'], role) for role in desired_roles)
    for action in actions:
        if action['action'] == 'configure':
            config_after = dict(desired_config, token_reviewer_jwt_set=bool(jwt_given))
        elif action['action'] == 'write':
            name = action['target'][len('role '):]
            base = roles_after.get(name) or current_role({})
            roles_after[name] = dict(base, **by_name[name]['fields'])
        elif action['action'] == 'delete':
            roles_after.pop(action['target'][len('role '):], None)
    return dict(enabled=True, config=config_after, roles=roles_after)


def describe(actions):
    return '; '.join('%s %s (%s)' % (a['action'], a['target'], a['reason']) for a in actions)


# --- the server side: reads checked against their shapes, the planned actions applied in order ------------

def read_optional(node, path, shape, params=None):
    """GET ``path``: its data checked against ``shape``, or None when the server says it has nothing there (404
    without errors). A 404 naming a missing route is an error: the path is not what the module thinks it is."""
    status, body = node.raw('GET', path, ok_statuses=(404,), params=params)
    if status == 404:
        errors = api_errors(body)
        if errors:
            raise VaultError(node.url, 'HTTP 404 from %s: %s' % (path, errors), status=404)
        return None
    answer = body['data'] if isinstance(body, dict) and isinstance(body.get('data'), dict) else body
    problem = shape_problem(answer, shape)
    if problem:
        raise VaultError(node.url, 'GET %s answered %s' % (path, problem), status=status)
    return answer


def read_mount(node, mount):
    """The type of the auth method at ``mount`` (None: nothing there)."""
    answer = node.call('GET', 'sys/auth', expect={})
    entry = answer.get(mount + '/')
    if entry is None:
        return None
    problem = shape_problem(entry, AUTH_MOUNT, mount + '/')
    if problem:
        raise VaultError(node.url, 'GET sys/auth answered %s' % problem)
    return entry['type']


def read_roles(node, mount, names):
    roles = {}
    for name in names:
        answer = read_optional(node, 'auth/%s/role/%s' % (mount, name), ROLE)
        if answer is not None:
            roles[name] = current_role(answer)
    return roles


def read_state(node, mount, desired_roles, purge):
    """(enabled, config, roles, every role name when purge) of the method."""
    kind = read_mount(node, mount)
    if kind is None:
        return False, None, {}, []
    if kind != 'kubernetes':
        raise KubernetesAuthError('%s: mount_point %s is a %s auth method, not kubernetes: choose another '
                                  'mount_point (the module never replaces another method)' % (node.url, mount, kind))
    config = current_config(read_optional(node, 'auth/%s/config' % mount, CONFIG))
    names = []
    if purge:
        listed = read_optional(node, 'auth/%s/role' % mount, ROLE_LIST, params={'list': 'true'})
        names = sorted(listed['keys']) if listed else []
    wanted = sorted(set(names) | set(role['name'] for role in desired_roles))
    return True, config, read_roles(node, mount, wanted), names


def apply(node, mount, actions, desired_config, jwt, desired_roles):
    by_name = dict((role['name'], role) for role in desired_roles)
    for action in actions:
        if action['action'] == 'enable':
            node.call('POST', 'sys/auth/' + mount, json={'type': 'kubernetes'})
        elif action['action'] == 'disable':
            node.call('DELETE', 'sys/auth/' + mount)
        elif action['action'] == 'configure':
            node.call('POST', 'auth/%s/config' % mount, json=config_payload(desired_config, jwt))
        else:
            name = action['target'][len('role '):]
            path = 'auth/%s/role/%s' % (mount, name)
            if action['action'] == 'write':
                node.call('POST', path, json=role_payload(by_name[name]))
            else:
                node.call('DELETE', path)

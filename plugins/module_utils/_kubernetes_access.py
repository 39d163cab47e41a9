# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A least-privilege identity in a Kubernetes cluster for a component that runs outside it (a SPIRE server reviewing
tokens and publishing its bundle, Vault reviewing tokens): a ServiceAccount, the RBAC objects that give it exactly
the listed rules, the ConfigMaps it may write, and a kubeconfig/token file holding a TokenRequest token for it.

The pure part (input checks, the desired objects, what differs, whether a token on disk is still good) is here and
unit-tested; ``ensure_access`` applies a plan through _kubernetes.KubeAPI.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime
import os
import time

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError

try:
    import yaml  # comes with the kubernetes client library the modules already require
except ImportError:
    yaml = None

from ansible_collections.trustroot.ops.plugins.module_utils._files import atomic_write
from ansible_collections.trustroot.ops.plugins.module_utils._kubernetes import KubeAPI, KubernetesError, jwt_claims

RULE_FIELDS = ('api_groups', 'resources', 'verbs', 'resource_names')
RBAC_API = 'rbac.authorization.k8s.io'
MANAGED_BY = {'app.kubernetes.io/managed-by': 'trustroot.ops'}


class AccessInputError(TrustrootError):
    pass


def _string_list(value, field, required):
    if value is None:
        value = []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise AccessInputError('%s must be a list of strings' % field)
    if required and not value:
        raise AccessInputError('%s must not be empty' % field)
    return value


def normalize_rules(rules, field):
    """Rules as the API stores them (camelCase keys, sorted values), checked; AccessInputError names the field."""
    out = []
    for index, rule in enumerate(rules or []):
        where = '%s[%d]' % (field, index)
        if not isinstance(rule, dict):
            raise AccessInputError('%s must be a dict with %s' % (where, ', '.join(RULE_FIELDS)))
        unknown = sorted(set(rule) - set(RULE_FIELDS))
        if unknown:
            raise AccessInputError('%s: unknown field(s) %s; known: %s' % (where, ', '.join(unknown), ', '.join(RULE_FIELDS)))
        api_groups = _string_list(rule.get('api_groups', ['']), where + '.api_groups', required=True)
        resources = _string_list(rule.get('resources'), where + '.resources', required=True)
        verbs = _string_list(rule.get('verbs'), where + '.verbs', required=True)
        names = _string_list(rule.get('resource_names'), where + '.resource_names', required=False)
        normalized = {'apiGroups': sorted(set(api_groups)), 'resources': sorted(set(resources)), 'verbs': sorted(set(verbs))}
        if names:
            normalized['resourceNames'] = sorted(set(names))
        out.append(normalized)
    return out


def rules_from_api(rules):
    """A Role's rules as read from the API, in the normalized form (None values dropped)."""
    out = []
    for rule in rules or []:
        normalized = {'apiGroups': sorted(set(rule.api_groups or [])), 'resources': sorted(set(rule.resources or [])),
                      'verbs': sorted(set(rule.verbs or []))}
        if rule.resource_names:
            normalized['resourceNames'] = sorted(set(rule.resource_names))
        out.append(normalized)
    return out


def desired_objects(params):
    """The objects the parameters ask for, keyed ``(kind, namespace, name)`` -> content compared and written:
    rules for roles, the role referenced for bindings, None for ServiceAccounts and ConfigMaps (only existence counts)."""
    namespace, account = params['namespace'], params['service_account']
    name = params['name'] or 'trustroot:%s:%s' % (namespace, account)
    subject = {'kind': 'ServiceAccount', 'name': account, 'namespace': namespace}
    objects = {('ServiceAccount', namespace, account): None}
    cluster_rules = normalize_rules(params['cluster_rules'], 'cluster_rules')
    if cluster_rules:
        objects[('ClusterRole', None, name)] = cluster_rules
        objects[('ClusterRoleBinding', None, name)] = {'role': ('ClusterRole', name), 'subject': subject}
    for index, entry in enumerate(params['namespace_rules'] or []):
        field = 'namespace_rules[%d]' % index
        if not isinstance(entry, dict) or not isinstance(entry.get('namespace'), str) or not entry.get('namespace'):
            raise AccessInputError('%s.namespace must be a non-empty string' % field)
        unknown = sorted(set(entry) - {'namespace', 'rules'})
        if unknown:
            raise AccessInputError('%s: unknown field(s) %s; known: namespace, rules' % (field, ', '.join(unknown)))
        rules = normalize_rules(entry.get('rules'), field + '.rules')
        if not rules:
            raise AccessInputError('%s.rules must not be empty' % field)
        if ('Role', entry['namespace'], name) in objects:
            raise AccessInputError('%s: namespace %s is listed twice' % (field, entry['namespace']))
        objects[('Role', entry['namespace'], name)] = rules
        objects[('RoleBinding', entry['namespace'], name)] = {'role': ('Role', name), 'subject': subject}
    for cluster_role in _string_list(params['cluster_roles'], 'cluster_roles', required=False):
        objects[('ClusterRoleBinding', None, '%s:%s' % (name, cluster_role))] = {
            'role': ('ClusterRole', cluster_role), 'subject': subject}
    for index, entry in enumerate(params['config_maps'] or []):
        field = 'config_maps[%d]' % index
        if not isinstance(entry, dict) or set(entry) != {'namespace', 'name'} or not all(
                isinstance(entry[key], str) and entry[key] for key in ('namespace', 'name')):
            raise AccessInputError('%s must be a dict with exactly namespace and name (non-empty strings)' % field)
        objects[('ConfigMap', entry['namespace'], entry['name'])] = None
    return objects


def object_label(key):
    kind, namespace, name = key
    return '%s %s%s' % (kind, (namespace + '/') if namespace else '', name)


def plan_changes(desired, current):
    """Actions ('create' | 'update', key) for desired objects that are missing or differ from ``current``
    (key -> content as read, absent keys do not exist)."""
    actions = []
    for key in sorted(desired, key=lambda k: (k[0], k[1] or '', k[2])):
        if key not in current:
            actions.append(('create', key))
        elif desired[key] is not None and _comparable(desired[key]) != _comparable(current[key]):
            actions.append(('update', key))
    return actions


def _comparable(content):
    if isinstance(content, list):
        return sorted(repr(sorted(rule.items())) for rule in content)
    return content


def token_status(token, subject, service_account_uid, audiences, server, current_server, renew_before, now=None):
    """Why the token on disk must be renewed, or None while it is still good: it must be a JWT for ``subject`` and
    this ServiceAccount's UID (a re-created account's old tokens are refused), carry the audiences, be written for
    ``server``, and not expire within ``renew_before`` seconds."""
    if not token:
        return 'no token yet'
    if current_server != server:
        return 'the API server address changed'
    try:
        claims = jwt_claims(token)
    except KubernetesError as exc:
        return 'the token on disk is unreadable (%s)' % exc
    if claims.get('sub') != subject:
        return 'the token is for %s' % claims.get('sub')
    kube_claims = claims.get('kubernetes.io') if isinstance(claims.get('kubernetes.io'), dict) else {}
    account = kube_claims.get('serviceaccount') if isinstance(kube_claims.get('serviceaccount'), dict) else {}
    if account.get('uid') != service_account_uid:
        return 'the ServiceAccount was re-created'
    token_audiences = claims.get('aud') if isinstance(claims.get('aud'), list) else [claims.get('aud')]
    if audiences and not set(audiences) <= set(token_audiences):
        return 'the audiences changed'
    expires = claims.get('exp')
    if not isinstance(expires, int):
        return 'the token has no expiry'
    if expires - (now if now is not None else time.time()) < renew_before:
        return 'the token expires within %d s' % renew_before
    return None


def kubeconfig_document(server, ca_pem, token, name):
    """A self-contained kubeconfig (CA embedded) for one bearer token."""
    cluster = {'server': server}
    if ca_pem:
        cluster['certificate-authority-data'] = base64.b64encode(ca_pem).decode('ascii')
    return {
        'apiVersion': 'v1', 'kind': 'Config', 'current-context': name, 'preferences': {},
        'clusters': [{'name': name, 'cluster': cluster}],
        'users': [{'name': name, 'user': {'token': token}}],
        'contexts': [{'name': name, 'context': {'cluster': name, 'user': name}}],
    }


def token_from_kubeconfig(document):
    """(token, server) of a kubeconfig written by kubeconfig_document; (None, None) when it is not one."""
    try:
        return document['users'][0]['user']['token'], document['clusters'][0]['cluster']['server']
    except (KeyError, IndexError, TypeError):
        return None, None


# --- against the API server ---------------------------------------------------------------------------------

def _reader(api, kind):
    """(read function, argument order) per kind: namespaced reads take (name, namespace)."""
    return {
        'ServiceAccount': api.core.read_namespaced_service_account,
        'ConfigMap': api.core.read_namespaced_config_map,
        'Role': api.rbac.read_namespaced_role,
        'RoleBinding': api.rbac.read_namespaced_role_binding,
        'ClusterRole': api.rbac.read_cluster_role,
        'ClusterRoleBinding': api.rbac.read_cluster_role_binding,
    }[kind]


def _content(kind, obj):
    if kind in ('Role', 'ClusterRole'):
        return rules_from_api(obj.rules)
    if kind in ('RoleBinding', 'ClusterRoleBinding'):
        subjects = obj.subjects or []
        subject = ({'kind': subjects[0].kind, 'name': subjects[0].name, 'namespace': subjects[0].namespace}
                   if len(subjects) == 1 else {'subjects': len(subjects)})
        return {'role': (obj.role_ref.kind, obj.role_ref.name), 'subject': subject}
    return None


def read_current(api, desired):
    """key -> content of each desired object that exists, and the ServiceAccount's UID (None when absent)."""
    current, account_uid = {}, None
    for key in desired:
        kind, namespace, name = key
        args = (name, namespace) if namespace else (name,)
        obj = api.get('read %s' % object_label(key), _reader(api, kind), *args)
        if obj is None:
            continue
        current[key] = _content(kind, obj)
        if kind == 'ServiceAccount':
            account_uid = obj.metadata.uid
    return current, account_uid


def _body(key, content):
    kind, namespace, name = key
    metadata = {'name': name, 'labels': dict(MANAGED_BY)}
    if namespace:
        metadata['namespace'] = namespace
    body = {'metadata': metadata}
    if kind in ('Role', 'ClusterRole'):
        body['rules'] = content
    elif kind in ('RoleBinding', 'ClusterRoleBinding'):
        role_kind, role_name = content['role']
        body['roleRef'] = {'apiGroup': RBAC_API, 'kind': role_kind, 'name': role_name}
        body['subjects'] = [content['subject']]
    return body


def apply_changes(api, actions, desired):
    """Create what is missing, then update what differs. A binding's roleRef cannot change in place: it is
    deleted and created again. Namespaces the objects live in are created first."""
    namespaces = sorted(set(key[1] for _action, key in actions if key[1]))
    for namespace in namespaces:
        if api.get('read Namespace %s' % namespace, api.core.read_namespace, namespace) is None:
            api.call('create Namespace %s' % namespace, api.core.create_namespace, {'metadata': {'name': namespace}})
    order = ('ServiceAccount', 'ConfigMap', 'ClusterRole', 'Role', 'ClusterRoleBinding', 'RoleBinding')
    for action, key in sorted(actions, key=lambda item: order.index(item[1][0])):
        kind, namespace, name = key
        body = _body(key, desired[key])
        what = '%s %s' % (action, object_label(key))
        namespaced = (namespace,) if namespace else ()
        create = getattr(api.core if kind in ('ServiceAccount', 'ConfigMap') else api.rbac,
                         'create_%s%s' % ('namespaced_' if namespace else '', _snake(kind)))
        if action == 'create':
            api.call(what, create, *(namespaced + (body,)))
        elif kind in ('Role', 'ClusterRole'):
            replace = getattr(api.rbac, 'patch_%s%s' % ('namespaced_' if namespace else '', _snake(kind)))
            api.call(what, replace, *((name,) + namespaced + ({'rules': body['rules']},)))
        else:
            delete = getattr(api.rbac, 'delete_%s%s' % ('namespaced_' if namespace else '', _snake(kind)))
            api.call(what, delete, *((name,) + namespaced))
            api.call(what, create, *(namespaced + (body,)))


def delete_objects(api, desired):
    """state=absent: delete the bindings, roles and ServiceAccount that exist (ConfigMaps are left: their data is
    not this module's). Returns the labels of what was deleted."""
    deleted = []
    order = ('RoleBinding', 'ClusterRoleBinding', 'Role', 'ClusterRole', 'ServiceAccount')
    for key in sorted((k for k in desired if k[0] in order), key=lambda k: order.index(k[0])):
        kind, namespace, name = key
        args = (name, namespace) if namespace else (name,)
        api_group = api.core if kind == 'ServiceAccount' else api.rbac
        delete = getattr(api_group, 'delete_%s%s' % ('namespaced_' if namespace else '', _snake(kind)))
        if api.get('delete %s' % object_label(key), delete, *args) is not None:
            deleted.append(object_label(key))
    return deleted


def _snake(kind):
    return ''.join('_' + char.lower() if char.isupper() else char for char in kind).lstrip('_')


def request_token(api, namespace, account, audiences, ttl):
    """A TokenRequest token for the ServiceAccount (not bound to any object): (token, expiration timestamp text)."""
    spec = {'expirationSeconds': ttl}
    if audiences:
        spec['audiences'] = list(audiences)
    what = 'create token for ServiceAccount %s/%s' % (namespace, account)
    answer = api.call(what, api.core.create_namespaced_service_account_token, account, namespace, {'spec': spec})
    token = getattr(getattr(answer, 'status', None), 'token', None)
    if not isinstance(token, str) or token.count('.') != 2:
        raise KubernetesError('%s: %s: the answer holds no token' % (api.server, what))
    return token, str(answer.status.expiration_timestamp)


# --- the whole run ------------------------------------------------------------------------------------------

MIN_TOKEN_TTL = 600  # the TokenRequest API refuses shorter lifetimes


def token_times(params):
    """(ttl, renew_before), checked."""
    ttl = params['token_ttl']
    if ttl < MIN_TOKEN_TTL:
        raise AccessInputError('token_ttl must be at least %d seconds (the TokenRequest API minimum)' % MIN_TOKEN_TTL)
    renew_before = params['token_renew_before'] if params['token_renew_before'] is not None else ttl // 3
    if not 0 <= renew_before < ttl:
        raise AccessInputError('token_renew_before must be at least 0 and less than token_ttl')
    return ttl, renew_before


def read_token_on_disk(kubeconfig_dest, token_dest):
    """(token, server) from the destinations; (None, None) when a destination is missing, unreadable or when the
    two hold different tokens (all mean: write them again)."""
    token = server = None
    if kubeconfig_dest:
        if not os.path.exists(kubeconfig_dest):
            return None, None
        try:
            with open(kubeconfig_dest) as handle:
                token, server = token_from_kubeconfig(yaml.safe_load(handle))
        except (yaml.YAMLError, UnicodeError):
            return None, None
    if token_dest:
        if not os.path.exists(token_dest):
            return None, None
        with open(token_dest) as handle:
            file_token = handle.read().strip()
        if token is not None and file_token != token:
            return None, None
        token = file_token
    return token, server


def diff_view(objects):
    return dict((object_label(key), content) for key, content in sorted(objects.items(), key=lambda item: repr(item[0]))
                if key[0] not in ('ServiceAccount', 'ConfigMap')) or {}


def ensure_access(params, check_mode):
    """Check the input, connect, converge the objects, then the token files. Returns the module result."""
    desired = desired_objects(params)
    ttl, renew_before = token_times(params)
    namespace, account = params['namespace'], params['service_account']
    api = KubeAPI.connect(params['kubeconfig'], params['context'])
    try:
        current, account_uid = read_current(api, desired)
        if params['state'] == 'absent':
            return _absent(api, desired, current, params, check_mode)
        actions = plan_changes(desired, current)
        lines = ['%s %s' % (action, object_label(key)) for action, key in actions]
        result = {'changed': bool(actions), 'actions': lines, 'token_renewed': False,
                  'diff': {'before': diff_view(current), 'after': diff_view(desired)}}
        if actions and not check_mode:
            try:
                apply_changes(api, actions, desired)
            except KubernetesError as exc:
                exc.changed = True
                raise
            _current, account_uid = read_current(api, {('ServiceAccount', namespace, account): None})
        result['service_account'] = {'namespace': namespace, 'name': account, 'uid': account_uid or ''}
        if params['kubeconfig_dest'] or params['token_dest']:
            result.update(_ensure_token(api, params, account_uid, ttl, renew_before, check_mode, lines))
            result['changed'] = result['changed'] or result['token_renewed']
        return result
    finally:
        api.close()


def _absent(api, desired, current, params, check_mode):
    existing = [key for key in desired if key in current and key[0] != 'ConfigMap']
    files = [path for path in (params['kubeconfig_dest'], params['token_dest']) if path and os.path.exists(path)]
    lines = ['delete %s' % object_label(key) for key in existing] + ['remove %s' % path for path in files]
    if not check_mode:
        delete_objects(api, dict((key, None) for key in existing))
        for path in files:
            os.unlink(path)
    return {'changed': bool(lines), 'actions': lines, 'token_renewed': False,
            'service_account': {'namespace': params['namespace'], 'name': params['service_account'], 'uid': ''},
            'diff': {'before': diff_view(current), 'after': {}}}


def _ensure_token(api, params, account_uid, ttl, renew_before, check_mode, lines):
    server = params['server'] or api.server
    subject = 'system:serviceaccount:%s:%s' % (params['namespace'], params['service_account'])
    token, server_on_disk = read_token_on_disk(params['kubeconfig_dest'], params['token_dest'])
    if params['kubeconfig_dest'] is None:
        server_on_disk = server  # a bare token file names no server
    reason = token_status(token, subject, account_uid, params['token_audiences'], server, server_on_disk, renew_before)
    if reason is None:
        expires = jwt_claims(token)['exp']
        return {'token_renewed': False, 'token_expires_at': _rfc3339(expires)}
    lines.append('renew the token: %s' % reason)
    if check_mode:
        return {'token_renewed': True, 'token_expires_at': ''}
    token, _expires = request_token(api, params['namespace'], params['service_account'], params['token_audiences'], ttl)
    expires = jwt_claims(token).get('exp')
    if not isinstance(expires, int):
        raise KubernetesError('%s: create token for ServiceAccount %s/%s: the token has no expiry' % (
            api.server, params['namespace'], params['service_account']))
    if params['token_dest']:
        atomic_write(params['token_dest'], token.encode('ascii'))
    if params['kubeconfig_dest']:
        ca_path = api.api_client.configuration.ssl_ca_cert
        ca_pem = None
        if ca_path:
            with open(ca_path, 'rb') as handle:
                ca_pem = handle.read()
        document = kubeconfig_document(server, ca_pem, token, params['service_account'])
        atomic_write(params['kubeconfig_dest'], yaml.safe_dump(document, default_flow_style=False).encode('utf-8'))
    return {'token_renewed': True, 'token_expires_at': _rfc3339(expires)}


def _rfc3339(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Digests of a Vault / OpenBao cluster's content: KV secrets, ACL policies, secret engines, auth methods.

Only digests, counts and names leave this module, never a secret value. Everything here is pure: the
walk is driven by two callables the caller provides,

    list_keys(api_path) -> list of keys ('a', 'dir/'), [] when nothing is there
    read(api_path)      -> the answer's ``data`` (dict), or None when nothing is there

so unit tests reach it without a server, and the same code digests a live cluster and a scratch server
a backup was restored into. Python standard library only.

Canonical form: JSON with sorted keys, no whitespace, UTF-8. A KV mount's sha256 is over the lines
``canonical([mount, path, data]) + "\\n"`` in sorted path order; ``kv_sha256`` is over the same lines of
every mount digested, mounts in sorted order. Policies: sha256 over ``canonical([[name, text], ...])``
sorted by name. Mounts and auth methods: sha256 over ``canonical(list)`` of ``{path, type}`` (plus the
KV version for KV mounts) sorted by path.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
from urllib.parse import quote
from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError

KV_TYPES = ('kv', 'generic')
# Keys of the digest that describe content (and are compared after a restore).
CONTENT_KEYS = ('kv', 'kv_secrets', 'kv_sha256', 'policies', 'policies_sha256', 'mounts_sha256', 'auth_sha256')
# Depth guard for LIST recursion (a KV path is rarely deeper than a handful of levels).
MAX_DEPTH = 64


class DigestError(TrustrootError):
    """Input that cannot be digested; the message names the field."""


def canonical(value):
    """Canonical JSON bytes: sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode('utf-8')


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def mount_name(path):
    """'secret/' -> 'secret'; ' /kv/ ' -> 'kv'."""
    return (path or '').strip().strip('/')


def _table(answer):
    """sys/mounts and sys/auth answers: {'path/': {type, options, ...}} (entries without a type dropped)."""
    if not isinstance(answer, dict):
        return {}
    return dict((path, info) for path, info in answer.items() if isinstance(info, dict) and info.get('type'))


def kv_version(info):
    """'1' or '2' for a KV (or legacy generic) mount description, None for another engine."""
    if not isinstance(info, dict) or info.get('type') not in KV_TYPES:
        return None
    version = str(((info.get('options') or {}).get('version')) or '1')
    return version if version in ('1', '2') else None


def kv_mounts(mounts_answer, only=None):
    """{mount name: '1'|'2'} of the KV mounts in a sys/mounts answer, restricted to ``only`` when given.

    Raises DigestError naming ``kv_mounts`` when a requested mount is missing or is not a KV mount."""
    table = _table(mounts_answer)
    found = {}
    for path, info in table.items():
        version = kv_version(info)
        if version:
            found[mount_name(path)] = version
    if only is None:
        return found
    wanted = [mount_name(m) for m in only]
    problems = []
    for name in wanted:
        if not name:
            problems.append('kv_mounts holds an empty mount path')
        elif name not in found:
            other = table.get(name + '/')
            if other:
                problems.append('kv_mounts: %s is a %s mount, not a KV mount' % (name, other.get('type')))
            else:
                problems.append('kv_mounts: no mount at %s' % name)
    if problems:
        raise DigestError('; '.join(problems))
    return dict((name, found[name]) for name in wanted)


def engines(table_answer, with_kv_version=True):
    """Sorted list of {path, type} (and ``version`` for KV mounts) from a sys/mounts or sys/auth answer."""
    items = []
    for path, info in sorted(_table(table_answer).items()):
        item = {'path': path if path.endswith('/') else path + '/', 'type': info.get('type')}
        version = kv_version(info) if with_kv_version else None
        if version:
            item['version'] = version
        items.append(item)
    return items


def list_path(mount, version, prefix=''):
    """API path to LIST under ``prefix`` of a KV mount."""
    return '%s/metadata/%s' % (mount, prefix) if version == '2' else '%s/%s' % (mount, prefix)


def read_path(mount, version, path):
    """API path that reads the secret at ``path`` (latest version for KV v2)."""
    return '%s/data/%s' % (mount, path) if version == '2' else '%s/%s' % (mount, path)


def secret_data(version, answer):
    """The secret's key/value data from a read answer (KV v2: data.data; deleted latest version: None)."""
    if answer is None:
        return None
    if version == '2':
        return answer.get('data') if isinstance(answer, dict) else None
    return answer


def walk_kv(mount, version, list_keys, read):
    """[(path, data)] of every secret in a KV mount, sorted by path.

    Folders ('dir/') are listed recursively; a key that is both a secret and a folder yields both."""
    paths = []
    pending = [('', 0)]
    while pending:
        prefix, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise DigestError('%s: paths nested deeper than %d levels under %s' % (mount, MAX_DEPTH, prefix))
        for key in list_keys(list_path(mount, version, prefix)) or []:
            key = str(key)
            if key.endswith('/'):
                pending.append((prefix + key, depth + 1))
            elif key:
                paths.append(prefix + key)
    entries = []
    for path in sorted(set(paths)):
        entries.append((path, secret_data(version, read(read_path(mount, version, path)))))
    return entries


def kv_mount_lines(mount, entries):
    """The canonical lines hashed for one mount (sorted by path)."""
    return [canonical([mount, path, data]) + b'\n' for path, data in sorted(entries, key=lambda e: e[0])]


def kv_digest(mounts_entries):
    """{mount: [(path, data)]} -> (kv dict {mount: {secrets, sha256}}, total secrets, overall sha256)."""
    overall = hashlib.sha256()
    kv = {}
    total = 0
    for mount in sorted(mounts_entries):
        per_mount = hashlib.sha256()
        lines = kv_mount_lines(mount, mounts_entries[mount])
        for line in lines:
            per_mount.update(line)
            overall.update(line)
        kv[mount] = {'secrets': len(lines), 'sha256': per_mount.hexdigest()}
        total += len(lines)
    return kv, total, overall.hexdigest()


def policy_text(answer):
    """An ACL policy's text from sys/policies/acl/<name> (``policy``; older answers use ``rules``)."""
    if not isinstance(answer, dict):
        return ''
    return answer.get('policy') if answer.get('policy') is not None else (answer.get('rules') or '')


def policies_digest(policies):
    """{name: text} -> (sorted names, sha256 over canonical [[name, text], ...])."""
    names = sorted(policies)
    return names, sha256_hex(canonical([[name, policies[name]] for name in names]))


def read_policies(list_keys, read):
    """{name: text} of every ACL policy. ``root`` has no text to read; it counts with ''."""
    policies = {}
    for name in list_keys('sys/policies/acl') or []:
        name = str(name)
        policies[name] = '' if name == 'root' else policy_text(read('sys/policies/acl/%s' % name))
    return policies


def cluster_digest(list_keys, read, only_kv=None):
    """The whole digest of a cluster, through the two callables (see the module docstring).

    Returns {kv: {mount: {secrets, sha256}}, kv_secrets, kv_sha256, policies: [names], policies_sha256,
    mounts: [{path, type[, version]}], mounts_sha256, auth_methods: [{path, type}], auth_sha256}."""
    mounts_answer = read('sys/mounts') or {}
    auth_answer = read('sys/auth') or {}
    selected = kv_mounts(mounts_answer, only_kv)
    entries = dict((mount, walk_kv(mount, version, list_keys, read)) for mount, version in selected.items())
    kv, total, kv_sha = kv_digest(entries)
    names, policies_sha = policies_digest(read_policies(list_keys, read))
    mounts = engines(mounts_answer)
    auth = engines(auth_answer, with_kv_version=False)
    return {
        'kv': kv,
        'kv_secrets': total,
        'kv_sha256': kv_sha,
        'policies': names,
        'policies_sha256': policies_sha,
        'mounts': mounts,
        'mounts_sha256': sha256_hex(canonical(mounts)),
        'auth_methods': auth,
        'auth_sha256': sha256_hex(canonical(auth)),
    }


def compare_digests(expected, actual, keys=CONTENT_KEYS):
    """[(key, expected value, actual value, equal)] for the content keys present in ``expected``."""
    rows = []
    for key in keys:
        if key not in expected:
            continue
        rows.append((key, expected.get(key), actual.get(key), expected.get(key) == actual.get(key)))
    return rows


def _data(body):
    return body['data'] if isinstance(body, dict) and isinstance(body.get('data'), dict) else {}


def node_callables(node):
    """list_keys / read over a client with ``raw(method, path, ok_statuses=...) -> (status, body)`` (the
    collection's VaultNode). Paths are URL-quoted here; a 404 is "nothing there"."""
    def list_keys(path):
        status, body = node.raw('LIST', quote(path, safe='/'), ok_statuses=(404,))
        if status == 404:
            return []
        keys = _data(body).get('keys')
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            raise DigestError('%s: LIST %s answered without a "data.keys" list of names' % (node.url, path))
        return keys

    def read(path):
        status, body = node.raw('GET', quote(path, safe='/'), ok_statuses=(404,))
        if status == 404:
            return None
        if not isinstance(body, dict) or not isinstance(body.get('data'), dict):
            raise DigestError('%s: GET %s answered without a "data" object' % (node.url, path))
        return body['data']

    return list_keys, read

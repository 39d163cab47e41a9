# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Key material in a Kubernetes Secret: the other place vault_init / vault_rekey write it and vault_unseal /
vault_rekey read it, with the guarantees of material files (_material.py keeps the format and its checks).

One Secret holds the material under one key (``material.json`` unless told), the same bytes as a material file:
JSON, or age armor when age recipients are given. Replacing material keeps the old one in the same Secret, under
``previous-<UTC stamp>.json``, in the same update that writes the new one.

    store = SecretStore.connect(SecretRef.from_param(params['output_secret'], 'output_secret'))
    problem = store.output_problem(overwrite=False)        # before any server call
    store.reserve(kind='init', needed=bound, check_mode=False)   # proves the write: no key yet
    ...server call...
    store.write(data, material, encrypted)                  # raises MaterialSecretError on failure

Labels and annotations say what the Secret holds and in which state (reserved, pending-verification,
stored), never key bytes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import copy
import os
import re
import tempfile
import time

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError
from ansible_collections.trustroot.ops.plugins.module_utils._files import (
    FileError, age_encrypt, is_age_encrypted, os_error_text, write_new_file)
from ansible_collections.trustroot.ops.plugins.module_utils._kubernetes import (
    HAS_KUBERNETES, KUBERNETES_IMPORT_ERROR, KubeAPI, KubernetesError)
from ansible_collections.trustroot.ops.plugins.module_utils._material import (
    FORMAT, MaterialError, decode_material, keys_from_material, material_bytes, parse_material, secrets_in, utc_stamp,
    validate_key_shares)

DEFAULT_KEY = 'material.json'
# The API server refuses a Secret whose data adds up to more than 1 MiB.
SECRET_LIMIT = 1024 * 1024
LABELS = {'app.kubernetes.io/managed-by': 'trustroot.ops', 'trustroot.ops/holds': 'vault-key-material'}
PREFIX = 'trustroot.ops/'
RESERVED_PREFIXES = ('previous-', 'pending-', 'partial-')
NAME = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')
NAMESPACE = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')
DATA_KEY = re.compile(r'^[-._a-zA-Z0-9]+$')
# Transient failures (a conflicting update, the API server restarting) are retried before the material is
# saved elsewhere.
WRITE_ATTEMPTS = 4
RETRY_PAUSE = 1.0


class MaterialSecretError(MaterialError):
    pass


def secret_option():
    """The argument spec of an option naming a Secret (output_secret, material_secret)."""
    return dict(type='dict', no_log=False, options=dict(
        namespace=dict(type='str', required=True),
        name=dict(type='str', required=True),
        key=dict(type='str', default=DEFAULT_KEY, no_log=False),
        kubeconfig=dict(type='path'),
        context=dict(type='str'),
    ))


class SecretRef(object):
    """Where material lives in Kubernetes: namespace, name, data key, and the kubeconfig/context to reach it."""

    def __init__(self, namespace, name, key=DEFAULT_KEY, kubeconfig=None, context=None, option='secret'):
        self.namespace = namespace
        self.name = name
        self.key = key or DEFAULT_KEY
        self.kubeconfig = kubeconfig
        self.context = context
        self.option = option

    @classmethod
    def from_param(cls, value, option):
        """From a module option's dict; MaterialSecretError naming the option and field when it is not valid."""
        ref = cls(value.get('namespace'), value.get('name'), value.get('key'), value.get('kubeconfig'),
                  value.get('context'), option)
        problem = ref.problem()
        if problem:
            raise MaterialSecretError('%s: %s' % (option, problem))
        return ref

    def problem(self):
        if not self.namespace or len(self.namespace) > 63 or not NAMESPACE.match(self.namespace):
            return 'namespace %r is not a valid namespace name (lower-case DNS label)' % (self.namespace,)
        if not self.name or len(self.name) > 253 or not NAME.match(self.name):
            return 'name %r is not a valid Secret name (lower-case DNS subdomain)' % (self.name,)
        if len(self.key) > 253 or not DATA_KEY.match(self.key):
            return 'key %r is not a valid Secret data key (letters, digits, -, _ and .)' % (self.key,)
        if self.key.startswith(RESERVED_PREFIXES):
            return 'key %r starts with %s, kept for earlier and unfinished material' % (
                self.key, ' or '.join(RESERVED_PREFIXES))
        return None

    @property
    def label(self):
        return 'Secret %s/%s key %s' % (self.namespace, self.name, self.key)

    @property
    def path(self):
        return '%s/%s' % (self.namespace, self.name)


# --- pure: what a Secret holds, and the bodies written ------------------------------------------------------

def decoded(body):
    """{key: bytes} from a Secret body (dict as the API serializes it); MaterialSecretError on bad base64."""
    out = {}
    for key, value in ((body or {}).get('data') or {}).items():
        try:
            out[key] = base64.b64decode(value or '', validate=True)
        except (TypeError, ValueError):
            raise MaterialSecretError('Secret %s/%s: key %s is not base64' % (
                body['metadata'].get('namespace'), body['metadata'].get('name'), key))
    return out


def content_state(data, key):
    """('absent' | 'age' | 'material' | 'invalid', reason) of ``data[key]``; never echoes the bytes."""
    value = data.get(key)
    if value is None or value == b'':
        return 'absent', None
    if is_age_encrypted(value):
        return 'age', None
    try:
        parse_material(value, key)
    except MaterialError as exc:
        return 'invalid', str(exc).replace('%s is not a key material file' % key, 'not key material')
    return 'material', None


def output_problem(ref, data, overwrite):
    """Why ``ref`` cannot take new material (before any server call), or None."""
    state, reason = content_state(data, ref.key)
    if state == 'invalid':
        return '%s: %s holds something that is not key material (%s); it is never replaced: choose another key ' \
               'or Secret' % (ref.option, ref.label, reason)
    if state != 'absent' and not overwrite:
        return ('%s: %s already holds key material (set overwrite_output=true to replace it; the current material '
                'is then kept in the same Secret under previous-<UTC stamp>.json)' % (ref.option, ref.label))
    return None


def size_problem(ref, data, needed):
    """The Secret would pass the API server's 1 MiB limit with ``needed`` more bytes (and the current material
    kept as previous), or None."""
    current = sum(len(value) for value in data.values())
    kept = len(data.get(ref.key) or b'')
    if current + kept + needed > SECRET_LIMIT:
        return ('%s: %s would exceed the 1 MiB limit of a Secret (holds %d bytes, the new material takes up to %d '
                'more and the current one is kept): move earlier previous-*.json keys elsewhere' % (
                    ref.option, ref.label, current, needed + kept))
    return None


def free_key(data, base):
    """``base`` + '.json' when unused in ``data``, else with -2, -3 ... (two runs in one second)."""
    key, count = base + '.json', 1
    while key in data:
        count += 1
        key = '%s-%d.json' % (base, count)
    return key


def _encode(value):
    return base64.b64encode(value).decode('ascii')


def _meta(body, ref):
    """A copy of ``body`` (or a new Secret) with the collection's labels and the material key annotated."""
    body = copy.deepcopy(body) if body else {
        'apiVersion': 'v1', 'kind': 'Secret', 'type': 'Opaque',
        'metadata': {'name': ref.name, 'namespace': ref.namespace}}
    meta = body.setdefault('metadata', {})
    meta['labels'] = dict(meta.get('labels') or {}, **LABELS)
    meta['annotations'] = dict(meta.get('annotations') or {})
    meta['annotations'][PREFIX + 'material-key'] = ref.key
    body['data'] = dict(body.get('data') or {})
    return body


def reserved_body(body, ref, kind, stamp):
    """The Secret marked reserved for ``kind`` material: metadata only, no key bytes, data left as it is (the
    state stays what it was when the key already holds material: that material is still the valid one)."""
    body = _meta(body, ref)
    annotations = body['metadata']['annotations']
    annotations.update({PREFIX + 'reserved': stamp, PREFIX + 'reserved-for': kind})
    if not body['data'].get(ref.key):
        annotations[PREFIX + 'state'] = 'reserved'
    return body


def stored_body(body, ref, value, material, encrypted, stamp, target_key=None, pending_key=None):
    """The Secret with ``value`` (material bytes) under ``target_key`` (ref.key); material it replaces is kept
    under previous-<stamp>.json; ``pending_key`` (staged before verification) is dropped. Returns (body, the key
    the old material was kept under or None)."""
    body = _meta(body, ref)
    data = body['data']
    key = target_key or ref.key
    previous = None
    if key == ref.key and data.get(key):
        previous = free_key(data, 'previous-' + stamp)
        data[previous] = data[key]
    data[key] = _encode(value)
    if pending_key:
        data.pop(pending_key, None)
    annotations = body['metadata']['annotations']
    for name in ('reserved', 'reserved-for'):
        annotations.pop(PREFIX + name, None)
    if key == ref.key:
        annotations.update({PREFIX + 'state': 'stored', PREFIX + 'format': FORMAT,
                            PREFIX + 'kind': str(material.get('kind')), PREFIX + 'created': str(material.get('created')),
                            PREFIX + 'cluster-url': str(material.get('cluster_url')),
                            PREFIX + 'encrypted': 'age' if encrypted else 'none'})
        if previous:
            annotations[PREFIX + 'previous'] = previous
        else:
            annotations.pop(PREFIX + 'previous', None)
    else:
        annotations[PREFIX + 'state'] = 'pending-verification' if key.startswith('pending-') else 'partial'
    return body, previous


def secret_body(secret, api_client):
    """A V1Secret as the plain dict the API uses (camelCase, data base64)."""
    return api_client.sanitize_for_serialization(secret) if secret is not None else None


# --- the API side -------------------------------------------------------------------------------------------

class SecretStore(object):
    """Reads and writes one SecretRef through KubeAPI; every failure is MaterialSecretError naming the option,
    the Secret and the call."""

    def __init__(self, ref, api):
        self.ref = ref
        self.api = api
        self.created = False
        self.stored = False
        self.previous = None

    @classmethod
    def connect(cls, ref):
        if not HAS_KUBERNETES:
            raise MaterialSecretError('%s: the kubernetes Python library is needed on the host that runs the module '
                                      '(%s)' % (ref.option, (KUBERNETES_IMPORT_ERROR or '').strip().splitlines()[-1:]))
        try:
            return cls(ref, KubeAPI.connect(ref.kubeconfig, ref.context))
        except KubernetesError as exc:
            raise MaterialSecretError('%s: %s' % (ref.option, exc))

    def _call(self, what, func, *args, **kwargs):
        try:
            return self.api.call('%s Secret %s' % (what, self.ref.path), func, *args, **kwargs)
        except KubernetesError as exc:
            raise MaterialSecretError('%s: %s' % (self.ref.option, exc))

    def read(self):
        """The Secret as a dict, None when it does not exist."""
        try:
            secret = self.api.get('read Secret %s' % self.ref.path, self.api.core.read_namespaced_secret,
                                  self.ref.name, self.ref.namespace)
        except KubernetesError as exc:
            raise MaterialSecretError('%s: %s' % (self.ref.option, exc))
        return secret_body(secret, self.api.api_client)

    def output_problem(self, overwrite, needed=0):
        body = self.read()
        data = decoded(body)
        return output_problem(self.ref, data, overwrite) or size_problem(self.ref, data, needed)

    def reserve(self, kind, check_mode=False):
        """Prove the Secret can be written before the server makes keys: create it, or update its annotations
        (no key bytes). In check mode the same write is a server-side dry run: checked, nothing stored."""
        body = self.read()
        dry_run = 'All' if check_mode else None
        new = reserved_body(body, self.ref, kind, utc_stamp())
        if body is None:
            new.pop('data', None)
            self._call('create', self.api.core.create_namespaced_secret, self.ref.namespace, new, dry_run=dry_run)
            self.created = not check_mode
        else:
            self._call('update', self.api.core.replace_namespaced_secret, self.ref.name, self.ref.namespace, new,
                       dry_run=dry_run)

    def write(self, value, material, encrypted, target_key=None, pending_key=None, attempts=WRITE_ATTEMPTS,
              pause=RETRY_PAUSE):
        """Store ``value`` (material bytes) in one update, keeping replaced material; retried on conflicts and
        transient failures. Returns the key the old material was kept under (or None)."""
        problem = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(pause)
            try:
                body = self.read()
                new, previous = stored_body(body, self.ref, value, material, encrypted, utc_stamp(), target_key,
                                            pending_key)
                if body is None:
                    self._call('create', self.api.core.create_namespaced_secret, self.ref.namespace, new)
                else:
                    self._call('update', self.api.core.replace_namespaced_secret, self.ref.name, self.ref.namespace,
                               new)
            except MaterialSecretError as exc:
                problem = exc
                continue
            if target_key is None:
                self.stored, self.previous = True, previous
            return previous
        raise problem

    def stage(self, value, material, encrypted):
        """Write ``value`` under a new pending-<stamp>.json key (new keys before the server's verify phase makes
        them the valid ones); returns the key."""
        key = free_key(decoded(self.read()), 'pending-' + utc_stamp())
        self.write(value, material, encrypted, target_key=key)
        return key

    def release(self):
        """Delete a Secret this run created for a reservation that was never filled (best effort)."""
        if self.created and not self.stored:
            try:
                body = self.read()
                if body is not None and not body.get('data'):
                    self._call('delete', self.api.core.delete_namespaced_secret, self.ref.name, self.ref.namespace)
            except MaterialSecretError:
                pass

    def read_material(self, module, age_identity=None):
        """The material stored under ref.key (decrypted with ``age_identity`` when it is age armor)."""
        data = decoded(self.read() or {'metadata': {}})
        if self.ref.key not in data:
            raise MaterialSecretError('%s: %s does not exist' % (self.ref.option, self.ref.label))
        try:
            return decode_material(module, data[self.ref.key], self.ref.label, age_identity)
        except MaterialError as exc:
            raise MaterialSecretError('%s: %s' % (self.ref.option, exc))


def load_key_shares_from_secret(module, option='material_secret', recovery=False):
    """Key shares from the material in the Secret named by ``option`` (+ ``age_identity``): masked in Ansible's
    output from the moment they are read; raises InputError naming the option and the Secret."""
    try:
        ref = SecretRef.from_param(module.params[option], option)
        material = SecretStore.connect(ref).read_material(module, module.params.get('age_identity'))
        module.no_log_values.update(secrets_in(material))
        keys = keys_from_material(material, recovery=recovery, path=ref.label)
    except MaterialError as exc:
        raise InputError(str(exc) if str(exc).startswith(option) else '%s: %s' % (option, exc))
    problem = validate_key_shares(keys, field='the keys in %s' % ref.label)
    if problem:
        raise InputError('%s: %s' % (option, problem))
    return keys


def secret_failure_message(event, ref, errors, rescued=None, encrypted=False, age_problem=None, lost_advice='',
                           label='its key material'):
    """The message when material did not reach the Secret after the server acted: where it went (path only)."""
    failed = '; '.join(errors)
    if rescued is None:
        return '%s, but %s could not be stored in %s nor saved anywhere (%s): the keys are lost: %s' % (
            event, label, ref.label, failed, lost_advice)
    form = 'mode 0600, age-encrypted to age_recipients' if encrypted else (
        'mode 0600, NOT encrypted: %s' % age_problem if age_problem else 'mode 0600')
    todo = 'store it in the Secret (or other safe storage) now, and keep no other copy'
    if rescued.startswith('/dev/shm/'):
        todo = 'it is in memory and is gone at the next reboot: ' + todo
    return '%s, but %s could not be stored in %s (%s); it was saved to %s (%s): %s' % (
        event, label, ref.label, failed, rescued, form, todo)


def rescue_locally(value, ref, bases=None):
    """Save material that could not reach the Secret to a new 0600 file in a private (0700) directory under the
    system temp directory, else /dev/shm; (path or None, [errors])."""
    errors = []
    for base in bases if bases is not None else [tempfile.gettempdir(), '/dev/shm']:
        path = None
        try:
            path = os.path.join(tempfile.mkdtemp(prefix='trustroot-material-', dir=base),
                                '%s-%s-%s' % (ref.namespace, ref.name, ref.key))
            write_new_file(path, value, mode=0o600)
        except OSError as exc:
            errors.append('%s: %s' % (path or base, os_error_text(exc)))
            continue
        return path, errors
    return None, errors


# --- the module side: what vault_init and vault_rekey do with output_secret ---------------------------------

def prepare_output_secret(module, kind, needed, option='output_secret'):
    """Before any server call: the Secret is reachable, holds no material unless overwrite_output, has room,
    the age recipients work, and the Secret is written with a reservation (a dry run in check mode). Returns
    the SecretStore; raises MaterialError naming the option and the Secret otherwise."""
    params = module.params
    sent = '; nothing was sent to the server'
    try:
        ref = SecretRef.from_param(params[option], option)
        store = SecretStore.connect(ref)
        problem = store.output_problem(params['overwrite_output'], needed)
    except MaterialError as exc:
        raise MaterialError(str(exc) + sent)
    if problem:
        raise MaterialError(problem + sent)
    if params.get('age_recipients'):
        try:
            age_encrypt(module, b'recipient check', params['age_recipients'])
        except FileError as exc:
            raise InputError('age_recipients: %s' % exc)
    try:
        store.reserve(kind, check_mode=module.check_mode)
    except MaterialError as exc:
        raise MaterialError('%s (the reservation of %s)%s' % (exc, ref.label, sent))
    return store


def store_material(module, store, material, event, lost_advice, partial=False, pending=False,
                   label='its key material'):
    """Write material to the Secret after the server acted; when it cannot get there (or age failed), save it to
    a local 0600 file and raise MaterialError saying where (never the keys). Returns the key it went under."""
    data, encrypted, age_problem = material_bytes(module, material, module.params.get('age_recipients'))
    target = None
    if partial or pending:
        target = free_key(decoded(store.read() or {'metadata': {}}), '%s-%s' % (
            'partial' if partial else 'pending', utc_stamp()))
    errors = []
    if age_problem:
        errors.append('age_recipients: %s (never stored unencrypted in the Secret)' % age_problem)
    else:
        try:
            store.write(data, material, encrypted, target_key=target)
            return target or store.ref.key
        except MaterialError as exc:
            errors.append(str(exc))
    rescued, more = rescue_locally(data, store.ref)
    raise MaterialError(secret_failure_message(event, store.ref, errors + more, rescued, encrypted, age_problem,
                                               lost_advice, label), changed=True)

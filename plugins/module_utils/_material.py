# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Key material files: what vault_init, vault_rekey and vault_root_token write, and vault_unseal reads.

A material file is JSON (optionally age-encrypted, ASCII armor) with mode 0600, written atomically. It is
the only place unseal keys, recovery keys and root tokens are ever written by the collection.

    {"format": "trustroot.ops/vault-init/v1", "kind": "init" | "rekey" | "root_token",
     "created": "...Z", "cluster_url": "...", "flavour": "openbao", "version": "2.7.2",
     "unseal_keys_b64": [...], "unseal_keys_hex": [...], "unseal_shares": 5, "unseal_threshold": 3,
     "recovery_keys_b64": [...], "recovery_keys_hex": [...], "recovery_shares": 5, "recovery_threshold": 3,
     "keys_pgp_encrypted": false, "root_token": "...", "root_token_pgp_encrypted": false}
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import datetime
import json
import re

from ansible_collections.trustroot.ops.plugins.module_utils._files import (
    FileError, age_decrypt, age_encrypt, atomic_write, check_writable_target, is_age_encrypted)

FORMAT = 'trustroot.ops/vault-init/v1'
HEX_KEY = re.compile(r'^[0-9a-fA-F]+$')


class MaterialError(Exception):
    pass


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def material_from_init(response, request, cluster_url, flavour, version):
    """Material from a sys/init answer. ``request`` is what was sent (shares, thresholds, PGP keys)."""
    material = _header('init', cluster_url, flavour, version)
    if response.get('keys_base64') or response.get('keys'):
        material.update(unseal_keys_b64=list(response.get('keys_base64') or []),
                        unseal_keys_hex=list(response.get('keys') or []),
                        unseal_shares=request.get('secret_shares'),
                        unseal_threshold=request.get('secret_threshold'))
    if response.get('recovery_keys_base64') or response.get('recovery_keys'):
        material.update(recovery_keys_b64=list(response.get('recovery_keys_base64') or []),
                        recovery_keys_hex=list(response.get('recovery_keys') or []),
                        recovery_shares=request.get('recovery_shares'),
                        recovery_threshold=request.get('recovery_threshold'))
    material['keys_pgp_encrypted'] = bool(request.get('pgp_keys') or request.get('recovery_pgp_keys'))
    material['root_token'] = response.get('root_token')
    material['root_token_pgp_encrypted'] = bool(request.get('root_token_pgp_key'))
    return material


def material_from_rekey(response, target, shares, threshold, pgp, cluster_url, flavour, version):
    """Material after a completed rekey of ``target`` ('unseal' or 'recovery') keys."""
    material = _header('rekey', cluster_url, flavour, version)
    material.update({
        '%s_keys_b64' % target: list(response.get('keys_base64') or []),
        '%s_keys_hex' % target: list(response.get('keys') or []),
        '%s_shares' % target: shares,
        '%s_threshold' % target: threshold,
        'keys_pgp_encrypted': bool(pgp),
    })
    return material


def _header(kind, cluster_url, flavour, version):
    return {'format': FORMAT, 'kind': kind, 'created': utc_now(), 'cluster_url': cluster_url,
            'flavour': flavour, 'version': version}


def serialize(material):
    return (json.dumps(material, indent=2, sort_keys=True) + '\n').encode('utf-8')


def write_material(module, path, material, age_recipients=None):
    """Write material atomically with mode 0600, age-encrypted when recipients are given."""
    data = serialize(material)
    try:
        if age_recipients:
            data = age_encrypt(module, data, age_recipients)
        atomic_write(path, data, mode=0o600)
    except (FileError, OSError) as exc:
        raise MaterialError(str(exc))


def read_material(module, path, age_identity=None):
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise MaterialError('cannot read key material %s: %s' % (path, exc.strerror or exc))
    if is_age_encrypted(data):
        if not age_identity:
            raise MaterialError('%s is age-encrypted: set age_identity to the identity file that decrypts it' % path)
        try:
            data = age_decrypt(module, data, age_identity)
        except FileError as exc:
            raise MaterialError(str(exc))
    return parse_material(data, path)


def parse_material(data, path='material'):
    try:
        material = json.loads(data.decode('utf-8') if isinstance(data, bytes) else data)
    except ValueError:
        raise MaterialError('%s is not a key material file (not JSON)' % path)
    if not isinstance(material, dict) or material.get('format') != FORMAT:
        raise MaterialError('%s is not a key material file (format is not %s)' % (path, FORMAT))
    return material


def keys_from_material(material, recovery=False, path='material'):
    """Usable (plaintext, base64) keys from material; PGP-encrypted keys are an error."""
    kind = 'recovery' if recovery else 'unseal'
    keys = material.get('%s_keys_b64' % kind) or material.get('%s_keys_hex' % kind) or []
    if not keys:
        raise MaterialError('%s holds no %s keys' % (path, kind))
    if material.get('keys_pgp_encrypted'):
        raise MaterialError('the %s keys in %s are PGP-encrypted: decrypt them and pass them as keys' % (kind, path))
    return keys


def secrets_in(material):
    """Every secret value in material (for no_log registration and leak tests)."""
    values = []
    for name, value in material.items():
        if name.endswith(('_keys_b64', '_keys_hex')):
            values.extend(value or [])
        elif name == 'root_token' and value:
            values.append(value)
    return values


def validate_key_shares(keys, field='keys'):
    """Return the problem with key shares (never echoing them), or None."""
    if not keys:
        return '%s is empty' % field
    for index, key in enumerate(keys):
        if not isinstance(key, str) or not key.strip():
            return '%s[%d] is empty' % (field, index)
        if HEX_KEY.match(key.strip()):
            continue
        try:
            base64.b64decode(key.strip(), validate=True)
        except (binascii.Error, ValueError):
            return '%s[%d] is neither hex nor base64' % (field, index)
    if len(set(k.strip() for k in keys)) != len(keys):
        return '%s holds the same key more than once' % field
    return None


def load_key_shares(module, recovery=False):
    """Key shares from the module's ``keys`` option or its ``key_material_path`` (+ ``age_identity``).

    Fails the module with a message naming the option; keys read from a file are masked in Ansible's
    output from the moment they are read, as if they had been a no_log parameter."""
    params = module.params
    if params.get('keys') is not None:
        keys = [key.strip() for key in params['keys']]
        problem = validate_key_shares(keys)
        if problem:
            module.fail_json(msg=problem)
        return keys
    path = params['key_material_path']
    try:
        keys = keys_from_material(read_material(module, path, params.get('age_identity')), recovery=recovery,
                                  path=path)
    except MaterialError as exc:
        module.fail_json(msg='key_material_path: %s' % exc)
    module.no_log_values.update(keys)
    problem = validate_key_shares(keys, field='the keys in key_material_path')
    if problem:
        module.fail_json(msg='key_material_path: %s' % problem)
    return keys


def check_material_output(module):
    """Fail before any change when ``output_path`` / ``age_recipients`` could not take new material."""
    params = module.params
    problem = check_writable_target(params['output_path'], overwrite=params['overwrite_output'])
    if problem:
        module.fail_json(msg='output_path: %s%s' % (
            problem, ' (set overwrite_output=true to replace it)' if problem.endswith('already exists') else ''))
    if params.get('age_recipients'):
        try:
            age_encrypt(module, b'recipient check', params['age_recipients'])
        except FileError as exc:
            module.fail_json(msg='age_recipients: %s' % exc)

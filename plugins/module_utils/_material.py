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
import os
import re
import tempfile

from ansible_collections.trustroot.ops.plugins.module_utils._files import (
    FileError, age_decrypt, age_encrypt, atomic_write, check_writable_target, commit_reserved, is_age_encrypted,
    os_error_text, remove_quietly, reserve_space, write_new_file, write_reserved)
from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError

FORMAT = 'trustroot.ops/vault-init/v1'
HEX_KEY = re.compile(r'^[0-9a-fA-F]+$')


class MaterialError(TrustrootError):
    pass


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


class AnswerError(MaterialError):
    """A server answer that should carry key material but lacks what is needed (message names node and call).

    ``partial`` is the material made of what the answer held that passed the checks (None when nothing did),
    so it can still be saved: the server may have acted (initialized, rekeyed) all the same."""

    def __init__(self, message, partial=None):
        super(AnswerError, self).__init__(message)
        self.partial = partial


def _answer_kind(response):
    if response is None or response == '' or response == {}:
        return 'is empty'
    if not isinstance(response, dict):
        shape = 'text' if isinstance(response, (str, bytes)) else 'a list' if isinstance(response, list) else (
            type(response).__name__)
        return 'is %s, not a JSON object' % shape
    return None


def _key_list_problem(response, field, count, shares_field):
    """Why ``response[field]`` is not a list of ``count`` keys (never echoing them), or None."""
    value = response.get(field)
    if value is None or value == []:
        return None if count == 0 else 'lacks %s' % field
    if not isinstance(value, list):
        return 'has %s as %s, not a list' % (field, 'text' if isinstance(value, str) else type(value).__name__)
    if len(value) != count:
        return 'has %d key(s) in %s, %d were requested (%s)' % (len(value), field, count, shares_field)
    hex_field = not field.endswith('_base64')
    for index, key in enumerate(value):
        if not isinstance(key, str) or not key.strip():
            return 'has an empty or non-text %s[%d]' % (field, index)
        if hex_field and not HEX_KEY.match(key):
            return 'has %s[%d] that is not hex' % (field, index)
        if not hex_field:
            try:
                base64.b64decode(key, validate=True)
            except (binascii.Error, ValueError):
                return 'has %s[%d] that is not base64' % (field, index)
    return None


def _key_lists(response, prefix, count, shares_field, required):
    """(problems, usable {'b64': [...], 'hex': [...]}) of one key family (``prefix`` '' or 'recovery_')."""
    problems, usable = [], {}
    for form, field in (('b64', prefix + 'keys_base64'), ('hex', prefix + 'keys')):
        problem = _key_list_problem(response, field, count, shares_field)
        if problem and (form == 'b64' and required or response.get(field) not in (None, [])):
            problems.append(problem)
        elif not problem:
            usable[form] = list(response.get(field) or [])
    return problems, usable


def material_from_init(response, request, cluster_url, flavour, version, call='PUT sys/init'):
    """Material from a sys/init answer. ``request`` is what was sent (shares, thresholds, PGP keys).

    Raises AnswerError when the answer lacks the keys of the requested layout or the root token."""
    what = _answer_kind(response)
    if what:
        raise AnswerError('%s: %s answer %s' % (cluster_url, call, what))
    material = _header('init', cluster_url, flavour, version)
    problems = []
    auto_unseal = 'recovery_shares' in request
    for prefix, kind, shares_field, threshold_field in (('', 'unseal', 'secret_shares', 'secret_threshold'),
                                                        ('recovery_', 'recovery', 'recovery_shares',
                                                         'recovery_threshold')):
        requested = (kind == 'recovery') == auto_unseal
        count = request.get(shares_field) or 0
        if not requested:
            # The other family is not asked for; kept when a server sends it whole.
            found, usable = _key_lists(response, prefix, len(response.get(prefix + 'keys_base64') or []),
                                       shares_field, False)
            if found or not usable.get('b64'):
                continue
        else:
            found, usable = _key_lists(response, prefix, count, shares_field, True)
            problems += found
            if not usable and count:
                continue
        material.update({'%s_keys_b64' % kind: usable.get('b64', []), '%s_keys_hex' % kind: usable.get('hex', []),
                         '%s_shares' % kind: request.get(shares_field),
                         '%s_threshold' % kind: request.get(threshold_field)})
    material['keys_pgp_encrypted'] = bool(request.get('pgp_keys') or request.get('recovery_pgp_keys'))
    token = response.get('root_token')
    if isinstance(token, str) and token.strip():
        material['root_token'] = token
    else:
        problems.append('lacks root_token' if token is None else 'has an empty or non-text root_token')
        material['root_token'] = None
    material['root_token_pgp_encrypted'] = bool(request.get('root_token_pgp_key'))
    if problems:
        message = '%s: %s answer %s' % (cluster_url, call, '; '.join(problems))
        material['incomplete'] = message
        raise AnswerError(message, partial=material if secrets_in(material) else None)
    return material


def material_from_rekey(response, target, shares, threshold, pgp, cluster_url, flavour, version,
                        call='PUT sys/rekey/update'):
    """Material after a completed rekey of ``target`` ('unseal' or 'recovery') keys.

    The answer must hold the ``shares`` new keys in keys_base64 or keys (both checked when present);
    raises AnswerError otherwise."""
    what = _answer_kind(response)
    if what:
        raise AnswerError('%s: %s answer %s' % (cluster_url, call, what))
    problems, usable = _key_lists(response, '', shares, 'secret_shares', False)
    if not usable.get('b64') and not usable.get('hex') and not problems:
        problems.append('lacks keys_base64 and keys')
    material = _header('rekey', cluster_url, flavour, version)
    material.update({
        '%s_keys_b64' % target: usable.get('b64', []),
        '%s_keys_hex' % target: usable.get('hex', []),
        '%s_shares' % target: shares,
        '%s_threshold' % target: threshold,
        'keys_pgp_encrypted': bool(pgp),
    })
    if problems:
        message = '%s: %s answer %s' % (cluster_url, call, '; '.join(problems))
        material['incomplete'] = message
        raise AnswerError(message, partial=material if secrets_in(material) else None)
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
    return decode_material(module, data, path, age_identity)


def decode_material(module, data, path, age_identity=None):
    """Material from the bytes of a material file (or a Secret's value): age armor is decrypted first."""
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

    Raises InputError naming the option; keys read from a file are masked in Ansible's
    output from the moment they are read, as if they had been a no_log parameter."""
    params = module.params
    if params.get('keys') is not None:
        keys = [key.strip() for key in params['keys']]
        problem = validate_key_shares(keys)
        if problem:
            raise InputError(problem)
        return keys
    path = params['key_material_path']
    try:
        keys = keys_from_material(read_material(module, path, params.get('age_identity')), recovery=recovery,
                                  path=path)
    except MaterialError as exc:
        raise InputError('key_material_path: %s' % exc)
    module.no_log_values.update(keys)
    problem = validate_key_shares(keys, field='the keys in key_material_path')
    if problem:
        raise InputError('key_material_path: %s' % problem)
    return keys


def check_material_output(module):
    """InputError before any change when ``output_path`` / ``age_recipients`` could not take new material."""
    params = module.params
    problem = check_writable_target(params['output_path'], overwrite=params['overwrite_output'])
    if problem:
        raise InputError('output_path: %s%s' % (
            problem, ' (set overwrite_output=true to replace it)' if problem.endswith('already exists') else ''))
    if params.get('age_recipients'):
        try:
            age_encrypt(module, b'recipient check', params['age_recipients'])
        except FileError as exc:
            raise InputError('age_recipients: %s' % exc)


# --- Write-ahead: the space for the material is proven before the server call that makes it ---------------
#
# The material exists only in this process between the server's answer (sys/init, the last rekey update) and
# the end of the write; a write that fails there loses the keys of a server that already changed. So, before
# the call, a placeholder beside output_path gets real bytes of at least the material's size (reserve_space);
# after the answer the material goes into those allocated blocks in place, then is renamed onto output_path.
# If that still fails, the material is saved somewhere else (rescue_plan), never printed.

# A Shamir share of a 256-bit key (OpenBao and Vault): 32 bytes + the x coordinate.
SHARE_BYTES = 33
# The plaintext of a PGP-encrypted share is the share in hex; the root token (s./hvs. tokens are < 100 chars).
PGP_PLAINTEXT_BYTES = 2 * SHARE_BYTES + 16
ROOT_TOKEN_CHARS = 256
# A PGP message to one key: the session key packet is at most about the key's size (RSA modulus), the
# encrypted data packet the plaintext + ~60 bytes; the exported public key (with its signatures) is larger than
# the modulus, so its length + this overhead bounds the message.
PGP_MESSAGE_OVERHEAD = 512
# Room for what the estimate does not model (an 'incomplete' note, longer version strings).
MARGIN = 1024
BLOCK = 4096
STAMP_FORMAT = '%Y%m%dT%H%M%SZ'


def _b64_len(size):
    return 4 * ((size + 2) // 3)


def _pgp_key_bytes(key):
    try:
        return len(base64.b64decode((key or '').strip()))
    except (binascii.Error, ValueError):
        return len(key or '')


def _share_bytes(pgp_keys, index):
    """Upper bound of share ``index``'s bytes as the server answers it (raw, or a PGP message)."""
    if pgp_keys:
        key = pgp_keys[index] if index < len(pgp_keys) else max(pgp_keys, key=len)
        return _pgp_key_bytes(key) + PGP_PLAINTEXT_BYTES + PGP_MESSAGE_OVERHEAD
    return SHARE_BYTES


def age_armor_bound(size, recipients):
    """Upper bound of ``age --armor`` output for ``size`` plaintext bytes to ``recipients``.

    Header: the version line, one stanza per recipient (X25519 ~100 bytes; ssh-rsa holds a wrapped key of
    the modulus' size, under twice the recipient string), the MAC line. Payload: 16-byte nonce, 16-byte tag per
    64 KiB chunk. Armor: base64 in 64-column lines between BEGIN/END lines."""
    header = 32 + sum(256 + 2 * len(r) for r in recipients) + 64
    binary = header + 16 + size + 16 * (size // 65536 + 1)
    encoded = _b64_len(binary)
    return encoded + encoded // 64 + 1 + 80


def material_size_bound(kind, cluster_url, flavour, version, key_sets, root_token_pgp_key=None, root_token=False,
                        age_recipients=None):
    """Bytes the material file can take at most, from what is known before the server call.

    ``key_sets``: (kind, shares, pgp_keys) per key family ('unseal' or 'recovery'). The longest possible
    material is serialized for real (same code as the file), so the JSON layout needs no model; rounded up to
    whole blocks."""
    material = _header(kind, cluster_url, flavour, version)
    for family, shares, pgp_keys in key_sets:
        sizes = [_share_bytes(pgp_keys or [], index) for index in range(shares or 0)]
        material.update({'%s_keys_b64' % family: ['A' * _b64_len(n) for n in sizes],
                         '%s_keys_hex' % family: ['f' * (2 * n) for n in sizes],
                         '%s_shares' % family: shares, '%s_threshold' % family: shares})
    material['keys_pgp_encrypted'] = True
    if root_token:
        token = ROOT_TOKEN_CHARS
        if root_token_pgp_key:
            token = _b64_len(_pgp_key_bytes(root_token_pgp_key) + ROOT_TOKEN_CHARS + PGP_MESSAGE_OVERHEAD)
        material.update(root_token='t' * token, root_token_pgp_encrypted=True)
    size = len(serialize(material)) + MARGIN
    if age_recipients:
        size = age_armor_bound(size, age_recipients)
    return (size + BLOCK - 1) // BLOCK * BLOCK


def init_material_bound(request, cluster_url, flavour, version, age_recipients=None):
    if 'recovery_shares' in request:
        key_sets = [('recovery', request['recovery_shares'], request.get('recovery_pgp_keys'))]
    else:
        key_sets = [('unseal', request['secret_shares'], request.get('pgp_keys'))]
    return material_size_bound('init', cluster_url, flavour, version, key_sets,
                               root_token_pgp_key=request.get('root_token_pgp_key'), root_token=True,
                               age_recipients=age_recipients)


def rekey_material_bound(target, shares, pgp_keys, cluster_url, flavour, version, age_recipients=None):
    return material_size_bound('rekey', cluster_url, flavour, version, [(target, shares, pgp_keys)],
                               age_recipients=age_recipients)


def reservation_failure_message(output_path, exc, needed):
    """Why output_path cannot take the material (before any server call), naming the OS error."""
    directory = os.path.dirname(os.path.abspath(output_path))
    return ('output_path: %s in %s (needed ~%d bytes for the key material of %s); nothing was sent to the server'
            % (os_error_text(exc), directory, needed, output_path))


def reserve_material_output(module, needed):
    """Prove output_path takes ``needed`` bytes with a real placeholder; return it (a Reservation), else raise
    MaterialError naming output_path and the OS error, before the server call."""
    path = module.params['output_path']
    try:
        return Reservation(path, reserve_space(path, needed), needed)
    except OSError as exc:
        raise MaterialError(reservation_failure_message(path, exc, needed))


class Reservation(object):
    """A placeholder file beside output_path whose blocks are already allocated for the material."""

    def __init__(self, output_path, placeholder, size):
        self.output_path = output_path
        self.placeholder = placeholder
        self.size = size
        self.filled = False
        self.keep = False

    def fill(self, data):
        self.filled = False
        write_reserved(self.placeholder, data)
        self.filled = True

    def release(self):
        """Remove the placeholder unless it was renamed away or holds the only copy of the material."""
        if not self.keep:
            remove_quietly(self.placeholder)


class SaveOutcome(object):
    """Where material went: ``path`` (None: nowhere), ``where`` (output, placeholder, beside, private), the
    errors met on the way [(path, text)], whether it is age-encrypted, and why not when it should be."""

    def __init__(self, path=None, where=None, errors=None, encrypted=False, age_problem=None):
        self.path = path
        self.where = where
        self.errors = errors or []
        self.encrypted = encrypted
        self.age_problem = age_problem

    @property
    def at_target(self):
        return self.where == 'output'


def utc_stamp(now=None):
    return (now or datetime.datetime.now(datetime.timezone.utc)).strftime(STAMP_FORMAT)


def partial_path(output_path, stamp):
    """Where what an unusable answer held is saved: beside output_path, never over it."""
    return '%s.partial-%s' % (output_path, stamp)


def private_temp_bases(directory, candidates=None, stat=os.stat):
    """Temp directories for a rescue copy, those on another filesystem than ``directory`` first (a full or
    failing disk there is no help); /dev/shm is memory, gone at reboot, and said so in the message."""
    if candidates is None:
        candidates = ['/dev/shm', tempfile.gettempdir()]
    try:
        device = stat(directory).st_dev
    except OSError:
        device = None
    other, same = [], []
    for base in candidates:
        try:
            info = stat(base)
        except OSError:
            continue
        if base in other or base in same:
            continue
        (other if info.st_dev != device else same).append(base)
    return other + same


def rescue_plan(output_path, stamp, placeholder_filled, temp_bases):
    """Where to save material that could not reach output_path, in order: (where, path or base directory).

    1. the placeholder itself when it already holds the whole material (only the rename failed);
    2. a 0600 file beside output_path, named with a UTC stamp;
    3. a 0600 file in a private (0700) directory under each temp base."""
    plan = [('placeholder', None)] if placeholder_filled else []
    plan.append(('beside', '%s.rescued-%s' % (output_path, stamp)))
    plan += [('private', base) for base in temp_bases]
    return plan


def material_bytes(module, material, age_recipients=None):
    """(bytes, encrypted, age problem): age-encrypted when recipients are given; when age fails after the
    server acted, the plaintext is kept (0600 only) rather than lost, and the problem is reported."""
    data = serialize(material)
    if not age_recipients:
        return data, False, None
    try:
        return age_encrypt(module, data, age_recipients), True, None
    except FileError as exc:
        return data, False, str(exc)


def save_material(module, reservation, material, target, overwrite=True, age_recipients=None, temp_bases=None,
                  stamp=None):
    """Write material into the reservation, rename it onto ``target``; else rescue it. Returns SaveOutcome
    (nowhere, when ``material`` is None: nothing usable to save)."""
    if material is None:
        return SaveOutcome()
    data, encrypted, age_problem = material_bytes(module, material, age_recipients)
    outcome = SaveOutcome(encrypted=encrypted, age_problem=age_problem)
    if _commit(reservation, target, overwrite, outcome, data):
        return outcome
    return rescue_material(reservation, data, outcome, temp_bases, stamp)


def commit_filled(reservation, target, overwrite=True, encrypted=False):
    """Rename a reservation already filled (and verified by the server) onto ``target``; else rescue it."""
    outcome = SaveOutcome(encrypted=encrypted)
    if _commit(reservation, target, overwrite, outcome):
        return outcome
    return rescue_material(reservation, None, outcome, None, None)


def _commit(reservation, target, overwrite, outcome, data=None):
    """Fill the reservation with ``data`` (when given) and rename it onto ``target``: True when both took, else
    False with the error recorded in ``outcome``."""
    try:
        if data is not None:
            reservation.fill(data)
        commit_reserved(reservation.placeholder, target, overwrite=overwrite)
    except OSError as exc:
        outcome.errors.append((target, os_error_text(exc)))
        return False
    reservation.keep = True
    outcome.path, outcome.where = target, 'output'
    return True


def rescue_material(reservation, data, outcome, temp_bases=None, stamp=None):
    """Follow rescue_plan until one place takes the material; the outcome says where (or that none did)."""
    if not reservation.filled:
        # Garbage or a partial write: freeing its blocks may be what lets the next attempt succeed.
        reservation.release()
    if temp_bases is None:
        temp_bases = private_temp_bases(os.path.dirname(os.path.abspath(reservation.output_path)))
    for where, place in rescue_plan(reservation.output_path, stamp or utc_stamp(), reservation.filled, temp_bases):
        if where == 'placeholder':
            reservation.keep = True
            outcome.path, outcome.where = reservation.placeholder, where
            return outcome
        if data is None:
            break
        path = place
        try:
            if where == 'private':
                path = os.path.join(tempfile.mkdtemp(prefix='trustroot-material-', dir=place),
                                    os.path.basename(reservation.output_path))
            write_new_file(path, data, mode=0o600)
        except OSError as exc:
            outcome.errors.append((path, os_error_text(exc)))
            continue
        outcome.path, outcome.where = path, where
        return outcome
    return outcome


def save_failure_message(event, outcome, lost_advice, label='its key material'):
    """The module's message when material did not reach output_path: where it is (path only), what to do.

    ``event`` says what the server already did ("the server was initialized"); ``lost_advice`` what to do when
    no copy could be saved anywhere; ``label`` names what was saved."""
    failed = '; '.join('%s: %s' % item for item in outcome.errors)
    if outcome.path is None:
        return '%s, but %s could not be saved anywhere (%s): the keys are lost: %s' % (
            event, label, failed or 'nothing usable to save', lost_advice)
    if outcome.encrypted:
        form = 'mode 0600, age-encrypted to age_recipients'
    elif outcome.age_problem:
        form = 'mode 0600, NOT encrypted: %s; encrypt it or move it to safe storage' % outcome.age_problem
    else:
        form = 'mode 0600'
    if outcome.where == 'output':
        return '%s; %s is in %s (%s)' % (event, label, outcome.path, form)
    todo = 'move it to output_path (or other safe storage) now, and keep no other copy'
    if outcome.where == 'private' and outcome.path.startswith('/dev/shm/'):
        todo = 'it is in memory and is gone at the next reboot: ' + todo
    return '%s, but it could not be written where asked (%s); %s was saved to %s (%s): %s' % (
        event, failed, label, outcome.path, form, todo)


def init_call_failure_message(exc, initialized_now, status_problem=None):
    """sys/init failed or answered something unreadable: the server may still be initialized; say which."""
    if initialized_now is False:
        return 'init failed: %s (the server is not initialized)' % exc
    if initialized_now:
        return ('init failed: %s; the server reports initialized now, but its keys never reached this run: if no '
                'other run initialized it, they are lost: wipe its storage and initialize again' % exc)
    return ('init failed: %s; whether the server was initialized could not be checked (%s): if it is, its keys '
            'never reached this run: wipe its storage and initialize again' % (exc, status_problem or 'no answer'))


def initialized_state(node, error_types):
    """(True/False, None) from the node's seal status, or (None, problem) when it cannot be read."""
    try:
        return bool(node.seal_status().get('initialized')), None
    except error_types as exc:
        return None, str(exc)

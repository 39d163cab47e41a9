# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generating a root token from key shares, and revoking one: which API, the OTP decoding, the sequences.

Generation has two API families:

- ``generate_root``: the unauthenticated ``sys/generate-root/{attempt,update}`` of HashiCorp Vault and
  OpenBao. OpenBao 2.5.3 and later turn them off unless the listener sets
  ``disable_unauthed_generate_root_endpoints = false``; they then answer 405 "unsupported operation".
- ``generate_root_token``: OpenBao 2.6.0 and later, the token-authenticated
  ``sys/generate-root-token/{attempt,update}`` with the same fields.

Without a PGP key the server makes a one-time password (OTP) and returns it on the attempt's start only;
the last update returns ``encoded_token``: the token's bytes XOR the OTP's bytes, base64 without padding
(OpenBao 2.7.2, and HashiCorp Vault since 1.10, where ``otp_length`` is non-zero). With a PGP key it returns
the token encrypted to that key, base64.

``manage_root_token`` is vault_root_token's whole run (state present: generate and save; absent: revoke).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import time

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError
from ansible_collections.trustroot.ops.plugins.module_utils._material import (
    FORMAT, MaterialError, check_material_output, load_key_shares, read_material, utc_now, validate_key_shares,
    write_material)
from ansible_collections.trustroot.ops.plugins.module_utils._vault import (
    VaultError, VaultNode, ensure_connection)
from ansible_collections.trustroot.ops.plugins.module_utils._vault_rekey import (
    KeyShareAttempt, OperationError, clean_server_message, find_active_node, is_permission_denied, is_unsupported,
    open_attempt)

# First OpenBao release with the token-authenticated sys/generate-root-token endpoints.
OPENBAO_GENERATE_ROOT_TOKEN_SINCE = (2, 6, 0)
# First OpenBao release whose unauthenticated sys/generate-root endpoints are off by default.
OPENBAO_UNAUTHED_GENERATE_ROOT_OFF_SINCE = (2, 5, 3)
APIS = ('generate_root', 'generate_root_token')


class DecodeError(TrustrootError):
    pass


def decode_token(encoded, otp):
    """The root token from ``encoded_token`` and the OTP: base64 (padding optional), then XOR the OTP."""
    if not encoded or not otp:
        raise DecodeError('the server returned no encoded token or no OTP')
    text = encoded.strip()
    try:
        raw = base64.b64decode(text + '=' * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError('the encoded token is not base64')
    try:
        otp_bytes = otp.encode('ascii')
    except UnicodeError:
        raise DecodeError('the OTP is not ASCII')
    if len(raw) != len(otp_bytes):
        raise DecodeError('the encoded token has %d bytes but the OTP has %d' % (len(raw), len(otp_bytes)))
    token = bytes(a ^ b for a, b in zip(raw, otp_bytes))
    try:
        decoded = token.decode('ascii')
    except UnicodeDecodeError:
        raise DecodeError('the decoded token is not text (wrong OTP?)')
    if not decoded.isprintable():
        raise DecodeError('the decoded token is not printable (wrong OTP?)')
    return decoded


def supports_generate_root_token(flavour, version):
    return flavour == 'openbao' and bool(version) and tuple(version) >= OPENBAO_GENERATE_ROOT_TOKEN_SINCE


def choose_api(requested, flavour, version, has_token):
    """The authenticated endpoints when the server has them and a token is given, else the classic ones."""
    if requested and requested != 'auto':
        return requested
    if has_token and supports_generate_root_token(flavour, version):
        return 'generate_root_token'
    return 'generate_root'


def api_paths(api):
    base = 'sys/generate-root-token' if api == 'generate_root_token' else 'sys/generate-root'
    return {'attempt': base + '/attempt', 'update': base + '/update', 'auth': api == 'generate_root_token'}


def unsupported_message(api, url, flavour, version, version_string):
    if api == 'generate_root':
        alternative = ''
        if supports_generate_root_token(flavour, version):
            alternative = ('set token (a token allowed on sys/generate-root-token) to use the authenticated '
                           'sys/generate-root-token endpoints, or ')
        return ('%s: the unauthenticated sys/generate-root endpoints are turned off on this server (%s %s; off '
                'by default since OpenBao 2.5.3): %sset disable_unauthed_generate_root_endpoints = false in '
                'the server\'s listener stanza' % (url, flavour, version_string, alternative))
    return ('%s: this server does not offer sys/generate-root-token (OpenBao >= 2.6.0 does): use '
            'api=generate_root' % url)


def material_from_root_token(token, pgp_encrypted, cluster_url, flavour, version):
    """Material of kind root_token (same format as vault_init's file)."""
    return {'format': FORMAT, 'kind': 'root_token', 'created': utc_now(), 'cluster_url': cluster_url,
            'flavour': flavour, 'version': version, 'root_token': token,
            'root_token_pgp_encrypted': bool(pgp_encrypted)}


def stale_attempt_message(url, status):
    return ('%s: a root token generation attempt is already in progress (nonce %s, progress %s/%s): it was '
            'started elsewhere or by an interrupted run; set cancel_stale=true to cancel it first' % (
                url, status.get('nonce'), status.get('progress') or 0, status.get('required')))


class GenerateRootRun(KeyShareAttempt):
    """One generation attempt: status, cancel, start (OTP or PGP), update with the key shares."""

    def __init__(self, node, api, flavour='openbao', version=(), version_string='', register_secret=None):
        super(GenerateRootRun, self).__init__(node, api, api_paths(api), register_secret)
        self.flavour = flavour
        self.version = version
        self.version_string = version_string
        self.otp = None

    def explain(self, exc):
        if is_unsupported(exc):
            return unsupported_message(self.api, self.node.url, self.flavour, self.version, self.version_string)
        if is_permission_denied(exc) and self.paths['auth']:
            return 'token: permission denied on %s: %s' % (self.paths['attempt'], clean_server_message(exc))
        return clean_server_message(exc)

    def start(self, pgp_key=None):
        answer = self.begin({'pgp_key': pgp_key.strip()} if pgp_key else {})
        self.otp = answer.get('otp') or None
        if self.otp:
            self.register_secret(self.otp)
        if not pgp_key and not self.otp:
            self.abort('%s: the server returned no OTP (servers that need a client OTP are not supported)'
                       % self.node.url)
        return answer

    def submit_keys(self, keys, required):
        """Send ``required`` key shares; return the encoded token (XOR'd with the OTP, or PGP-encrypted)."""
        answer = self.send_keys(keys, required, 'keys: the server rejected the key shares', 'the generation')
        encoded = answer.get('encoded_token') or answer.get('encoded_root_token')
        if not encoded:
            raise OperationError('%s: the generation completed without an encoded token' % self.node.url)
        self.register_secret(encoded)
        return encoded, answer.get('pgp_fingerprint') or None


# --- revocation ---

def is_bad_token(exc):
    """auth/token/lookup answers 403 "bad token" for a token that does not exist (or no longer does)."""
    return isinstance(exc, VaultError) and exc.status in (400, 403) and 'bad token' in (exc.reason or '')


TOKEN_LOOKUP = {'policies': [str]}


def lookup_state(node, token_to_revoke, self_lookup):
    """(valid, policies) of a token: through auth/token/lookup with the caller's token, or lookup-self.

    A lookup-self that is refused (403) means the token is not valid: a valid root token may always look
    itself up.
    """
    try:
        if self_lookup:
            data = node.call('GET', 'auth/token/lookup-self', expect=TOKEN_LOOKUP)
        else:
            data = node.call('PUT', 'auth/token/lookup', json={'token': token_to_revoke}, expect=TOKEN_LOOKUP)
    except VaultError as exc:
        if is_bad_token(exc) or (self_lookup and exc.status == 403):
            return False, []
        if exc.status == 403:
            raise OperationError('token: permission denied on auth/token/lookup (needs a token allowed to look '
                                 'up other tokens): %s' % clean_server_message(exc))
        raise OperationError(clean_server_message(exc))
    return True, list(data.get('policies') or [])


# Seconds a revoked token may still look up as valid (a node answering from state a moment behind the write).
REVOKE_SETTLE_SECONDS = 5


def confirm_revoked(lookup, settle=REVOKE_SETTLE_SECONDS, interval=0.25, clock=time.monotonic, sleep=time.sleep):
    """Whether ``lookup()`` (returning (valid, policies)) finds the token invalid within ``settle`` seconds.

    The revocation is written by the active node; a lookup answered by another node of the cluster can follow
    that write a moment later, so one lookup that still finds the token is not yet a failure. A token still
    valid after ``settle`` seconds is."""
    deadline = clock() + settle
    while True:
        valid, _policies = lookup()
        if not valid:
            return True
        if clock() >= deadline:
            return False
        sleep(interval)


def revoke(node, token_to_revoke, self_revoke):
    try:
        if self_revoke:
            node.call('PUT', 'auth/token/revoke-self')
        else:
            node.call('PUT', 'auth/token/revoke', json={'token': token_to_revoke})
    except VaultError as exc:
        if exc.status == 403 and not self_revoke:
            raise OperationError('token: permission denied on auth/token/revoke: %s' % clean_server_message(exc))
        raise OperationError(clean_server_message(exc))


# --- the flow ----------------------------------------------------------------------------------------

def manage_root_token(module):
    """vault_root_token's run: a new root token saved to output_path (present), or one revoked (absent)."""
    ensure_connection(module)
    if not module.params['url']:
        raise InputError('url is required (or set VAULT_ADDR or BAO_ADDR)')
    result = dict(changed=False, state=module.params['state'])
    if module.params['state'] == 'present':
        return ensure_present(module, result)
    return ensure_absent(module, result)


def check_present_inputs(module):
    params = module.params
    check_material_output(module)
    if params['pgp_key'] is not None:
        try:
            decoded = base64.b64decode(params['pgp_key'].strip(), validate=True)
        except (binascii.Error, ValueError):
            decoded = b''
        if not decoded:
            raise InputError('pgp_key: is not a base64-encoded PGP public key (binary export, base64)')
    if params['keys'] is not None:
        problem = validate_key_shares(params['keys'])
        if problem:
            raise InputError(problem)


def node_with_token(params, token):
    return VaultNode.from_params(dict(params, token=token))


def ensure_present(module, result):
    params = module.params
    check_present_inputs(module)
    node = VaultNode.from_params(params)
    try:
        seal_status = node.seal_status()
        flavour, version_tuple, version = node.flavour()
    except VaultError as exc:
        raise OperationError(str(exc), results=result)
    result.update(flavour=flavour, version=version)
    if not seal_status.get('initialized'):
        raise OperationError('%s: the server is not initialized' % node.url, results=result)
    if seal_status.get('sealed'):
        raise OperationError('%s: the server is sealed: unseal it before generating a root token' % node.url,
                             results=result)
    recovery = bool(seal_status.get('recovery_seal'))
    keys = load_key_shares(module, recovery)
    try:
        node = find_active_node(node, lambda url: VaultNode.from_params(params, url))
    except OperationError as exc:
        raise OperationError(str(exc), results=result)
    result['active_node'] = node.url

    api = choose_api(params['api'], flavour, version_tuple, node.has_token)
    result['api'] = api
    if api == 'generate_root_token' and not node.has_token:
        raise InputError('token is required: api=generate_root_token uses the token-authenticated '
                         'sys/generate-root-token endpoints (set token or VAULT_TOKEN)', results=result)
    run = GenerateRootRun(node, api, flavour, version_tuple, version, register_secret=module.no_log_values.add)
    try:
        _attempt, stale, required = open_attempt(run, node.url, seal_status, params['cancel_stale'],
                                                 stale_attempt_message)
    except OperationError as exc:
        raise OperationError(str(exc), results=result)
    if len(keys) < required:
        raise InputError('keys: %d %s key(s) given, the threshold is %d' % (
            len(keys), 'recovery' if recovery else 'unseal', required), results=result)

    result.update(changed=True, output_path=None, nonce=None, pgp_fingerprint=None, verified=False,
                  stale_cancelled=stale, recovery_keys=recovery)
    if module._diff:
        result['diff'] = {'before': {'new_root_token': False},
                          'after': {'new_root_token': True, 'output_path': params['output_path']}}
    if module.check_mode:
        return result
    new_token = generate(module, run, keys, required, stale, result)
    save_token(module, node, new_token, flavour, version, result)
    result['output_path'] = params['output_path']
    return result


def generate(module, run, keys, required, stale, result):
    """Cancel the stale attempt when asked, start one, send the keys; the new token (decoded and looked up as a
    root token when no PGP key encrypts it)."""
    node = run.node
    if stale:
        run.cancel_stale(result)
    try:
        run.start(module.params['pgp_key'])
        result['nonce'] = run.nonce
        encoded, fingerprint = run.submit_keys(keys, required)
    except OperationError as exc:
        result['changed'] = stale
        raise OperationError(str(exc), results=result)
    result['pgp_fingerprint'] = fingerprint
    if module.params['pgp_key']:
        return encoded
    try:
        new_token = decode_token(encoded, run.otp)
    except DecodeError as exc:
        raise OperationError('%s: a root token was generated but could not be decoded (%s): revoke it by its '
                             'accessor (auth/token/accessors)' % (node.url, exc), results=result)
    module.no_log_values.add(new_token)
    try:
        valid, policies = lookup_state(node_with_token(module.params, new_token), new_token, self_lookup=True)
    except OperationError:
        valid, policies = False, []
    if not valid or 'root' not in policies:
        raise OperationError('%s: the decoded token does not look up as a root token' % node.url, results=result)
    result['verified'] = True
    return new_token


def save_token(module, node, new_token, flavour, version, result):
    """The token to output_path; when it cannot be written, the token is revoked (unless PGP-encrypted)."""
    params = module.params
    material = material_from_root_token(new_token, bool(params['pgp_key']), node.url, flavour, version)
    try:
        write_material(module, params['output_path'], material, params['age_recipients'])
    except MaterialError as exc:
        message = 'output_path: the new root token could not be written (%s)' % exc
        if params['pgp_key']:
            message += '; it is PGP-encrypted and cannot be revoked here: revoke it by its accessor'
        else:
            try:
                revoke(node_with_token(params, new_token), new_token, self_revoke=True)
                message += '; it was revoked'
            except OperationError as revoke_exc:
                message += '; revoking it failed too (%s)' % revoke_exc
        raise MaterialError(message, results=result)


def load_token_to_revoke(module):
    params = module.params
    if params['token_to_revoke'] is not None:
        token = params['token_to_revoke'].strip()
        if not token:
            raise InputError('token_to_revoke: is empty')
        return token
    try:
        material = read_material(module, params['token_material_path'], params['age_identity'])
    except MaterialError as exc:
        raise InputError('token_material_path: %s' % exc)
    token = material.get('root_token')
    if not token:
        raise InputError('token_material_path: %s holds no root_token' % params['token_material_path'])
    module.no_log_values.add(token)
    if material.get('root_token_pgp_encrypted'):
        raise InputError('token_material_path: the root token in %s is PGP-encrypted: decrypt it and pass it as '
                         'token_to_revoke' % params['token_material_path'])
    return token


def ensure_absent(module, result):
    params = module.params
    token_to_revoke = load_token_to_revoke(module)
    # Revoke through the caller's token when it is another one; else the token revokes itself.
    self_revoke = not params['token'] or params['token'] == token_to_revoke
    node = node_with_token(params, token_to_revoke) if self_revoke else VaultNode.from_params(params)
    result['method'] = 'auth/token/revoke-self' if self_revoke else 'auth/token/revoke'
    try:
        valid, policies = lookup_state(node, token_to_revoke, self_lookup=self_revoke)
    except (OperationError, VaultError) as exc:
        raise OperationError(str(exc), results=result)
    result.update(revoked=False)
    if not valid:
        if module._diff:
            result['diff'] = {'before': {'token_valid': False}, 'after': {'token_valid': False}}
        return result
    if 'root' not in policies:
        raise InputError('token_to_revoke: is not a root token (policies: %s): this module revokes root tokens '
                         'only' % ', '.join(policies), results=result)
    result['changed'] = True
    if module._diff:
        result['diff'] = {'before': {'token_valid': True}, 'after': {'token_valid': False}}
    if module.check_mode:
        return result
    try:
        revoke(node, token_to_revoke, self_revoke)
        checker = node if not self_revoke else node_with_token(params, token_to_revoke)
        gone = confirm_revoked(lambda: lookup_state(checker, token_to_revoke, self_lookup=self_revoke))
    except OperationError as exc:
        raise OperationError(str(exc), results=result)
    if not gone:
        raise OperationError('%s: the token still looks up as valid %d s after its revocation'
                             % (node.url, REVOKE_SETTLE_SECONDS), results=result)
    result['revoked'] = True
    return result

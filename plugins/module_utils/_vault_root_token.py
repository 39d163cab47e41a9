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
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import time

from ansible_collections.trustroot.ops.plugins.module_utils._material import FORMAT, utc_now
from ansible_collections.trustroot.ops.plugins.module_utils._vault import VaultError, shape_problem
from ansible_collections.trustroot.ops.plugins.module_utils._vault_rekey import (
    ATTEMPT_STARTED, ATTEMPT_STATUS, OperationError, clean_server_message, is_permission_denied, is_unsupported,
    step_answer_problem)
from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError

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


class GenerateRootRun(object):
    """One generation attempt: status, cancel, start (OTP or PGP), update with the key shares.

    ``node`` needs ``call(method, path, auth=..., json=...)`` and ``url``.
    """

    def __init__(self, node, api, flavour='openbao', version=(), version_string='', register_secret=None):
        self.node = node
        self.api = api
        self.paths = api_paths(api)
        self.flavour = flavour
        self.version = version
        self.version_string = version_string
        self.register_secret = register_secret or (lambda value: None)
        self.nonce = None
        self.otp = None

    def _call(self, method, what, payload=None, expect=None):
        kwargs = {'json': payload} if payload is not None else {}
        answer = self.node.call(method, self.paths[what], auth=self.paths['auth'], expect=expect, **kwargs)
        if what == 'update':
            problem = step_answer_problem(answer)
            if problem:
                raise VaultError(self.node.url, '%s %s answered %s' % (method, self.paths[what], problem))
        return answer

    def _explain(self, exc):
        if is_unsupported(exc):
            return unsupported_message(self.api, self.node.url, self.flavour, self.version, self.version_string)
        if is_permission_denied(exc) and self.paths['auth']:
            return 'token: permission denied on %s: %s' % (self.paths['attempt'], clean_server_message(exc))
        return clean_server_message(exc)

    def status(self):
        try:
            return self._call('GET', 'attempt', expect=ATTEMPT_STATUS)
        except VaultError as exc:
            raise OperationError(self._explain(exc))

    def cancel(self):
        try:
            self._call('DELETE', 'attempt')
        except VaultError as exc:
            return clean_server_message(exc)
        return None

    def abort(self, message):
        problem = self.cancel()
        if problem:
            message += '; cancelling the attempt failed too (%s): cancel it with cancel_stale=true' % problem
        else:
            message += '; the attempt was cancelled'
        raise OperationError(message)

    def start(self, pgp_key=None):
        payload = {'pgp_key': pgp_key.strip()} if pgp_key else {}
        try:
            answer = self._call('PUT', 'attempt', payload)
        except VaultError as exc:
            raise OperationError(self._explain(exc))
        problem = shape_problem(answer, ATTEMPT_STARTED)
        if problem:
            self.abort('%s: PUT %s answered %s' % (self.node.url, self.paths['attempt'], problem))
        self.nonce = answer['nonce']
        self.otp = answer.get('otp') or None
        if self.otp:
            self.register_secret(self.otp)
        if not self.nonce:
            self.abort('%s: the server started no attempt (no nonce in its answer)' % self.node.url)
        if not pgp_key and not self.otp:
            self.abort('%s: the server returned no OTP (servers that need a client OTP are not supported)'
                       % self.node.url)
        return answer

    def submit_keys(self, keys, required):
        """Send ``required`` key shares; return the encoded token (XOR'd with the OTP, or PGP-encrypted)."""
        answer = {}
        for index, key in enumerate(keys[:required]):
            try:
                answer = self._call('PUT', 'update', {'key': key.strip(), 'nonce': self.nonce})
            except VaultError as exc:
                self.abort('keys: the server rejected the key shares (at key %d of %d): %s' % (
                    index + 1, required, clean_server_message(exc)))
            if answer.get('complete'):
                break
        if not answer.get('complete'):
            self.abort('keys: %d key(s) sent but the server did not complete the generation (progress %s/%s)'
                       % (min(len(keys), required), answer.get('progress'), answer.get('required')))
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

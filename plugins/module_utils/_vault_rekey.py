# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rekeying unseal or recovery keys: input rules, which API, and the init -> update -> verify sequence.

Two API families do the same thing:

- ``rekey``: HashiCorp Vault and OpenBao < 2.5.0, unauthenticated ``sys/rekey/{init,update,verify}``
  (recovery keys: ``sys/rekey-recovery-key/...``). OpenBao >= 2.5.0 turns them off unless the listener
  sets ``disable_unauthed_rekey_endpoints = false``; they then answer 405 "unsupported operation".
- ``rotate_root``: OpenBao >= 2.4.0, token-authenticated ``sys/rotate/root/{init,update,verify}``
  (recovery keys: ``sys/rotate/recovery/...``).

Both take the same payloads and answer the same fields (the rotate family wraps them in ``data``, which
``VaultNode.call`` unwraps). The sequence (``RekeyRun``) talks to a node through ``call`` only, so unit tests
drive it with a scripted node. Whatever fails after the attempt was started cancels the attempt, so a
failed run never leaves one in progress and the old keys stay valid.

``rekey_keys`` is vault_rekey's whole run: the checks that need no server, the write-ahead reservation of the
output, the attempt, and the new keys saved to output_path or to a Kubernetes Secret.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import re
import time

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError
from ansible_collections.trustroot.ops.plugins.module_utils._material import (
    AnswerError, MaterialError, check_material_output, commit_filled, load_key_shares, material_bytes,
    material_from_rekey, partial_path, rekey_material_bound, reserve_material_output, save_failure_message,
    save_material, utc_stamp, validate_key_shares)
from ansible_collections.trustroot.ops.plugins.module_utils._material_secret import (
    MaterialSecretError, load_key_shares_from_secret, prepare_output_secret, store_material)
from ansible_collections.trustroot.ops.plugins.module_utils._vault import (
    LEADER, Optional, VaultError, VaultNode, ensure_connection, shape_problem, uses_rotate_root_api)

TARGETS = ('unseal', 'recovery')
APIS = ('rekey', 'rotate_root')
# Shamir's secret sharing in Vault / OpenBao splits into at most 255 shares.
MAX_SHARES = 255
# OpenBao 2.7 formats some wrapped errors with a verb Go cannot apply:
#   'invalid rotate seal configuration: %!w(*errors.errorString=&{threshold cannot be larger than shares})'
GO_WRAP_VERB = re.compile(r'%!w\(\*?[\w.]+=&\{(.*?)\}\)')


class OperationError(TrustrootError):
    """A failed step, with a message fit for the task result (never a key)."""


def clean_server_message(message):
    """Server error text without Go formatting debris."""
    return GO_WRAP_VERB.sub(r'\1', str(message or '')).strip()


def is_unsupported(exc):
    """True for the answer of an endpoint the server has turned off (405 "unsupported operation")."""
    return isinstance(exc, VaultError) and exc.status == 405 and 'unsupported operation' in (exc.reason or '')


def is_permission_denied(exc):
    return isinstance(exc, VaultError) and exc.status == 403


def validate_pgp_keys(pgp_keys, field='pgp_keys'):
    for index, key in enumerate(pgp_keys or []):
        try:
            decoded = base64.b64decode((key or '').strip(), validate=True)
        except (binascii.Error, ValueError):
            decoded = b''
        if not decoded:
            return '%s[%d] is not a base64-encoded PGP public key (binary export, base64)' % (field, index)
    return None


def validate_layout(shares, threshold):
    """The server's rules for a new share layout; returns a message naming the field, or None."""
    if shares < 1:
        return 'secret_shares: must be at least 1 (got %d)' % shares
    if shares > MAX_SHARES:
        return 'secret_shares: must be at most %d (got %d)' % (MAX_SHARES, shares)
    if threshold < 1:
        return 'secret_threshold: must be at least 1 (got %d)' % threshold
    if threshold > shares:
        return 'secret_threshold: must not be larger than secret_shares (%d > %d)' % (threshold, shares)
    if shares > 1 and threshold == 1:
        return 'secret_threshold: must be greater than 1 when secret_shares is more than 1 (got 1 of %d)' % shares
    return None


def validate_options(params):
    """Checks that need no server: returns a message naming the field and the rule, or None."""
    if params.get('secret_shares') is not None and params.get('secret_threshold') is not None:
        problem = validate_layout(params['secret_shares'], params['secret_threshold'])
        if problem:
            return problem
    elif params.get('secret_shares') is not None and params['secret_shares'] < 1:
        return 'secret_shares: must be at least 1 (got %d)' % params['secret_shares']
    elif params.get('secret_threshold') is not None and params['secret_threshold'] < 1:
        return 'secret_threshold: must be at least 1 (got %d)' % params['secret_threshold']
    pgp_keys = params.get('pgp_keys') or []
    problem = validate_pgp_keys(pgp_keys)
    if problem:
        return problem
    if pgp_keys and params.get('secret_shares') is not None and len(pgp_keys) != params['secret_shares']:
        return 'pgp_keys: needs one key per share (%d given, secret_shares is %d)' % (
            len(pgp_keys), params['secret_shares'])
    if params.get('backup') and not pgp_keys:
        return 'backup: only applies with pgp_keys (the server stores the PGP-encrypted shares)'
    if params.get('require_verification') and pgp_keys:
        return ('require_verification: cannot be used with pgp_keys, the new shares come back encrypted and '
                'cannot be submitted for verification; set require_verification=false')
    if params.get('keys') is not None:
        problem = validate_key_shares(params['keys'])
        if problem:
            return problem
    return None


def resolve_layout(params, seal_status):
    """(shares, threshold) to rekey to: the given values, else the current layout of the target keys."""
    shares = params.get('secret_shares')
    threshold = params.get('secret_threshold')
    if shares is None:
        shares = seal_status.get('n')
    if threshold is None:
        threshold = seal_status.get('t')
    problem = validate_layout(int(shares or 0), int(threshold or 0))
    if problem:
        if params.get('secret_shares') is None or params.get('secret_threshold') is None:
            problem += ' (the unset value was taken from the current layout %s/%s)' % (
                seal_status.get('t'), seal_status.get('n'))
        raise OperationError(problem)
    pgp_keys = params.get('pgp_keys') or []
    if pgp_keys and len(pgp_keys) != shares:
        raise OperationError('pgp_keys: needs one key per share (%d given, secret_shares is %d)' % (
            len(pgp_keys), shares))
    return shares, threshold


def check_target(target, seal_status):
    """Which keys exist depends on the seal: Shamir has unseal keys, auto-unseal has recovery keys."""
    if not seal_status.get('initialized'):
        return 'the server is not initialized: nothing to rekey'
    if seal_status.get('sealed'):
        return 'the server is sealed: unseal it before rekeying'
    recovery_seal = bool(seal_status.get('recovery_seal'))
    if target == 'unseal' and recovery_seal:
        return ('target: the server uses an auto-unseal seal (%s) and has recovery keys, not unseal keys: '
                'use target=recovery' % seal_status.get('type'))
    if target == 'recovery' and not recovery_seal:
        return 'target: the server uses a Shamir seal and has no recovery keys: use target=unseal'
    return None


def choose_api(requested, flavour, version):
    if requested and requested != 'auto':
        return requested
    return 'rotate_root' if uses_rotate_root_api(flavour, version) else 'rekey'


def api_paths(api, target):
    """Endpoints of one API family for one key target, and whether they take the token."""
    if api == 'rotate_root':
        base = 'sys/rotate/%s' % ('recovery' if target == 'recovery' else 'root')
        auth = True
    else:
        base = 'sys/rekey-recovery-key' if target == 'recovery' else 'sys/rekey'
        auth = False
    return {'attempt': base + '/init', 'update': base + '/update', 'verify': base + '/verify',
            'backup': base + '/backup', 'auth': auth, 'base': base}


def unsupported_message(api, url, version):
    if api == 'rekey':
        return ('%s: the unauthenticated rekey endpoints are turned off on this server (OpenBao %s; off by '
                'default since 2.5.0). Use api=rotate_root (or api=auto) with a token, or set '
                'disable_unauthed_rekey_endpoints = false in the server\'s listener stanza' % (url, version))
    return ('%s: this server does not offer sys/rotate/root (OpenBao >= 2.4.0 does): use api=rekey' % url)


def active_url(leader, url):
    """URL of the active node from a sys/leader answer given by ``url``.

    Rekey and root-generation attempts live in the memory of the active node; a standby does not keep
    them consistently (seen with OpenBao 2.7.2: an attempt started through a standby answered "no rotation
    in progress" on its next update), so every call of an attempt goes to the active node.
    """
    leader = leader or {}
    if not leader.get('ha_enabled') or leader.get('is_self'):
        return url
    address = (leader.get('leader_address') or '').rstrip('/')
    if not address:
        raise OperationError('%s is a standby and reports no active node (leader_address is empty)' % url)
    return address


def find_active_node(node, make_node):
    """The VaultNode to run an attempt on: ``node`` itself, or one built by ``make_node(url)``."""
    try:
        leader = node.call('GET', 'sys/leader', auth=False, expect=LEADER)
    except VaultError as exc:
        raise OperationError(str(exc))
    url = active_url(leader, node.url)
    return node if url == node.url else make_node(url)


def init_payload(shares, threshold, pgp_keys=None, backup=False, require_verification=False):
    payload = {'secret_shares': shares, 'secret_threshold': threshold,
               'require_verification': bool(require_verification)}
    if pgp_keys:
        payload['pgp_keys'] = [k.strip() for k in pgp_keys]
        payload['backup'] = bool(backup)
    return payload


def stale_attempt_message(url, status, field='cancel_stale'):
    return ('%s: a rekey attempt is already in progress (nonce %s, progress %s/%s%s): it was started '
            'elsewhere or by an interrupted run; set %s=true to cancel it first' % (
                url, status.get('nonce'), status.get('progress') or 0, status.get('required'),
                ', in verification' if status.get('verification_nonce') else '', field))


def open_attempt(run, url, seal_status, cancel_stale, stale_message=stale_attempt_message):
    """(attempt, stale, required) for the node's current attempt of a key-share operation (rekey, root token
    generation): ``run.status()``'s answer, whether one was already started, and the number of key shares it needs.
    A started attempt fails (``stale_message``) unless ``cancel_stale``."""
    attempt = run.status()
    stale = bool(attempt.get('started'))
    if stale and not cancel_stale:
        raise OperationError(stale_message(url, attempt))
    return attempt, stale, attempt.get('required') or seal_status.get('t') or 0


# What is read from an attempt's answers: its status (GET init, and update/verify answers before completion), the
# nonce of a started attempt, the completion flag.
ATTEMPT_STATUS = {'started': bool, 'progress': Optional(int), 'required': int, 'nonce': Optional(str)}
ATTEMPT_STARTED = {'nonce': str}
STEP_ANSWER = {'complete': Optional(bool)}


def step_answer_problem(answer):
    """Why an update/verify answer is unreadable: a completed step, or else the attempt's status."""
    problem = shape_problem(answer, STEP_ANSWER)
    if problem or answer.get('complete'):
        return problem
    return shape_problem(answer, {'progress': int})


def shape_layout(shares, threshold):
    return {'shares': shares, 'threshold': threshold}


class KeyShareAttempt(object):
    """The protocol a rekey and a root token generation share: one attempt on the active node, read, cancelled,
    started (it must answer a nonce), then fed key shares until it completes. Whatever fails after the start
    cancels the attempt (``abort``), so a failed run never leaves one in progress.

    ``node`` needs ``call(method, path, auth=..., json=...)`` and ``url``; ``paths`` maps 'attempt' (the
    status/start/cancel endpoint), the step endpoints and 'auth'; ``register_secret`` is called with every secret
    as soon as it arrives (the module masks them in its output). Subclasses say which steps answer a progress
    (``CHECKED_STEPS``), what a cancel leaves valid (``CANCELLED``) and how a refusal reads (``explain``)."""

    CHECKED_STEPS = ('update',)
    CANCELLED = '; the attempt was cancelled'

    def __init__(self, node, api, paths, register_secret=None):
        self.node = node
        self.api = api
        self.paths = paths
        self.register_secret = register_secret or (lambda value: None)
        self.nonce = None

    def _call(self, method, what, payload=None, expect=None):
        kwargs = {'json': payload} if payload is not None else {}
        answer = self.node.call(method, self.paths[what], auth=self.paths['auth'], expect=expect, **kwargs)
        if what in self.CHECKED_STEPS:
            problem = step_answer_problem(answer)
            if problem:
                raise VaultError(self.node.url, '%s %s answered %s' % (method, self.paths[what], problem))
        return answer

    def explain(self, exc):
        return clean_server_message(exc)

    def status(self):
        """The current attempt (started, nonce, progress, required); raises OperationError."""
        try:
            return self._call('GET', 'attempt', expect=ATTEMPT_STATUS)
        except VaultError as exc:
            raise OperationError(self.explain(exc))

    def cancel(self):
        """Cancel the attempt in progress (no-op when there is none); returns an error message or None."""
        try:
            self._call('DELETE', 'attempt')
        except VaultError as exc:
            return clean_server_message(exc)
        return None

    def cancel_stale(self, result):
        """Cancel the attempt found in progress (cancel_stale=true); OperationError with ``result`` unchanged when
        the server refuses."""
        problem = self.cancel()
        if problem:
            result['changed'] = False
            raise OperationError('cancel_stale: the attempt in progress could not be cancelled: %s' % problem,
                                 results=result)

    def abort(self, message):
        """Cancel what this run started and raise with the outcome of the cancel in the message."""
        problem = self.cancel()
        if problem:
            message += '; cancelling the attempt failed too (%s): cancel it with cancel_stale=true' % problem
        else:
            message += self.CANCELLED
        raise OperationError(message)

    def begin(self, payload):
        """Start an attempt with ``payload``; its answer (with a nonce, kept in ``self.nonce``)."""
        try:
            answer = self._call('PUT', 'attempt', payload)
        except VaultError as exc:
            raise OperationError(self.explain(exc))
        problem = shape_problem(answer, ATTEMPT_STARTED)
        if problem:
            self.abort('%s: PUT %s answered %s' % (self.node.url, self.paths['attempt'], problem))
        self.nonce = answer['nonce']
        if not self.nonce:
            self.abort('%s: the server started no attempt (no nonce in its answer)' % self.node.url)
        return answer

    def send_keys(self, keys, required, refused, incomplete):
        """Send ``required`` key shares on the update step until the attempt completes; its last answer.
        ``refused`` and ``incomplete`` start the messages of a refused share and of shares that did not complete."""
        answer = {}
        for index, key in enumerate(keys[:required]):
            try:
                answer = self._call('PUT', 'update', {'key': key.strip(), 'nonce': self.nonce})
            except VaultError as exc:
                self.abort('%s (at key %d of %d): %s' % (refused, index + 1, required, clean_server_message(exc)))
            if answer.get('complete'):
                return answer
        self.abort('keys: %d key(s) sent but the server did not complete %s (progress %s/%s)' % (
            min(len(keys), required), incomplete, answer.get('progress'), answer.get('required')))


class RekeyRun(KeyShareAttempt):
    """One rekey attempt: status, cancel, init, update with the old keys, verify with the new."""

    CHECKED_STEPS = ('update', 'verify')
    CANCELLED = '; the attempt was cancelled, the current keys stay valid'

    def __init__(self, node, api, target, version='', register_secret=None):
        super(RekeyRun, self).__init__(node, api, api_paths(api, target), register_secret)
        self.target = target
        self.version = version

    def start(self, payload):
        """Start the rekey with the new layout (init_payload)."""
        return self.begin(payload)

    def explain(self, exc):
        if is_unsupported(exc):
            return unsupported_message(self.api, self.node.url, self.version or '?')
        if is_permission_denied(exc) and self.paths['auth']:
            return ('token: permission denied on %s (needs a token whose policy allows it, with sudo): %s'
                    % (self.paths['attempt'], clean_server_message(exc)))
        return clean_server_message(exc)

    def submit_current_keys(self, keys, required):
        """Send ``required`` current keys; return the completion answer (new keys, verification nonce)."""
        answer = self.send_keys(keys, required, 'keys: the server rejected the current keys', 'the rekey')
        for value in list(answer.get('keys') or []) + list(answer.get('keys_base64') or []):
            self.register_secret(value)
        if not (answer.get('keys_base64') or answer.get('keys')):
            if answer.get('verification_nonce'):
                self.abort('%s: PUT %s completed without returning new keys' % (self.node.url, self.paths['update']))
            # Without a verification phase the rekey has taken effect: nothing can be cancelled any more.
            raise OperationError('%s: PUT %s completed the rekey without returning new keys: the previous keys no '
                                 'longer work and the new ones were not received' % (self.node.url, self.paths['update']))
        return answer

    def verify(self, new_keys, threshold, verification_nonce):
        """Submit ``threshold`` new keys to the verify phase; the rekey takes effect when it completes."""
        answer = {}
        for index, key in enumerate(new_keys[:threshold]):
            try:
                answer = self._call('PUT', 'verify', {'key': key, 'nonce': verification_nonce})
            except VaultError as exc:
                self.abort('verification with the new keys failed (at key %d of %d): %s' % (
                    index + 1, threshold, clean_server_message(exc)))
            if answer.get('complete'):
                return answer
        self.abort('verification did not complete after %d new key(s) (progress %s/%s)' % (
            threshold, answer.get('progress'), threshold))


# --- the flow ----------------------------------------------------------------------------------------

DONE = 'the rekey completed on %s (the old keys no longer work)'
LOST_ADVICE = ('keep every node running and unsealed (a node that seals cannot be unsealed again) and move the '
               'data to a newly initialized cluster')


def rekey_keys(module):
    """vault_rekey's run. Returns the result; raises a TrustrootError (with the partial result) saying where any
    new key material is."""
    ensure_connection(module)
    params = module.params
    if not params['url']:
        raise InputError('url is required (or set VAULT_ADDR or BAO_ADDR)')
    target = params['target']
    result = dict(changed=False, target=target)
    # Everything that needs no server, before the first call.
    problem = validate_options(params)
    if problem:
        raise InputError(problem, results=result)
    if params['output_path']:
        check_material_output(module)
    if params['material_secret']:
        keys = load_key_shares_from_secret(module, 'material_secret', recovery=target == 'recovery')
    else:
        keys = load_key_shares(module, recovery=target == 'recovery')
    try:
        run, seal_status, required, stale = open_rekey(module, result, len(keys))
    except OperationError as exc:
        raise OperationError(str(exc), results=result)
    shares, threshold = result['shares'], result['threshold']
    node = run.node
    result.update(changed=True, previous_shares=seal_status.get('n'), previous_threshold=seal_status.get('t'),
                  verified=False, output_path=None, nonce=None, pgp_fingerprints=[], stale_cancelled=stale)
    if module._diff:
        result['diff'] = {'before': shape_layout(seal_status.get('n'), seal_status.get('t')),
                          'after': shape_layout(shares, threshold)}
    # Write-ahead: the new keys' space is proven with real bytes before the attempt starts (in check mode
    # too, so it predicts this failure; the placeholder is removed).
    needed = rekey_material_bound(target, shares, params['pgp_keys'] or [], node.url, result['flavour'],
                                  result['version'], params['age_recipients'])
    if params['output_secret']:
        store = prepare_output_secret(module, 'rekey', needed)
        result['output_secret'] = None
        try:
            if module.check_mode:
                return result
            previous = rekey_to_secret(module, run, result, keys, required, stale, store)
        finally:
            store.release()
        ref = store.ref
        result['output_secret'] = dict(namespace=ref.namespace, name=ref.name, key=ref.key, previous=previous)
        return finish(module, node, result)
    reservation = reserve_material_output(module, needed)
    try:
        if module.check_mode:
            return result
        rekey_to_file(module, run, result, keys, required, stale, reservation)
    finally:
        reservation.release()
    result['output_path'] = params['output_path']
    return finish(module, node, result)


def open_rekey(module, result, key_count):
    """The node's state, the API, the active node, the new layout (into ``result``) and the attempt's status:
    (RekeyRun, seal status, key shares needed, whether a stale attempt is to be cancelled)."""
    params = module.params
    target = params['target']
    node = VaultNode.from_params(params)
    try:
        seal_status = node.seal_status()
        flavour, version_tuple, version = node.flavour()
    except VaultError as exc:
        raise OperationError(str(exc))
    problem = check_target(target, seal_status)
    if problem:
        raise OperationError('%s: %s' % (node.url, problem))
    api = choose_api(params['api'], flavour, version_tuple)
    result.update(api=api, flavour=flavour, version=version)
    node = find_active_node(node, lambda url: VaultNode.from_params(params, url))
    result['active_node'] = node.url
    if api == 'rotate_root' and not node.has_token:
        raise OperationError('token is required: %s %s rekeys through the token-authenticated sys/rotate/%s '
                             'endpoints (set token or VAULT_TOKEN)' % (
                                 flavour, version, 'recovery' if target == 'recovery' else 'root'))
    result['shares'], result['threshold'] = resolve_layout(params, seal_status)
    run = RekeyRun(node, api, target, version=version, register_secret=module.no_log_values.add)
    _attempt, stale, required = open_attempt(run, node.url, seal_status, params['cancel_stale'])
    if key_count < required:
        raise OperationError('keys: %d current key(s) given, the current threshold of the %s keys is %d' % (
            key_count, target, required))
    return run, seal_status, required, stale


def start_rekey(module, run, result, keys, required, stale):
    """Cancel the stale attempt when asked, start one, send the current keys; the last update's answer."""
    if stale:
        run.cancel_stale(result)
    params = module.params
    run.start(init_payload(result['shares'], result['threshold'], params['pgp_keys'] or [], params['backup'],
                           params['require_verification']))
    result['nonce'] = run.nonce
    answer = run.submit_current_keys(keys, required)
    result['pgp_fingerprints'] = answer.get('pgp_fingerprints') or []
    return answer


def rekey_material(module, run, result, keys, required, stale):
    """Run the attempt up to the new keys: (the last update's answer, the new key material). An answer without
    usable material cancels the attempt when verifying (the current keys stay valid); without verification the
    rekey took effect on the last key, and its AnswerError (with what the answer held) is for the caller to keep."""
    answer = start_rekey(module, run, result, keys, required, stale)
    try:
        return answer, material_from_rekey(answer, run.target, result['shares'], result['threshold'],
                                           bool(module.params['pgp_keys']), run.node.url, result['flavour'],
                                           result['version'], call='PUT %s' % run.paths['update'])
    except AnswerError as exc:
        if module.params['require_verification']:
            run.abort(str(exc))
        raise


def verification_nonce(run, answer):
    nonce = answer.get('verification_nonce')
    if not nonce:
        run.abort('%s: the server returned no verification nonce' % run.node.url)
    return nonce


def rekey_to_file(module, run, result, keys, required, stale, reservation):
    """Run the attempt; the new keys go into the reservation (before the verify phase makes them the only valid
    ones, when verifying), then onto output_path. Raises saying where any new key material is."""
    params = module.params
    node, verify = run.node, params['require_verification']
    try:
        try:
            answer, material = rekey_material(module, run, result, keys, required, stale)
        except AnswerError as exc:
            # Without verification the rekey took effect on the last key: keep what the answer held.
            outcome = save_material(module, reservation, exc.partial, partial_path(params['output_path'], utc_stamp()),
                                    overwrite=False, age_recipients=params['age_recipients'])
            raise MaterialError(save_failure_message('%s; %s' % (exc, DONE % node.url), outcome, LOST_ADVICE,
                                                     label='what the answer held (incomplete)'), results=result)
        if not verify:
            outcome = save_material(module, reservation, material, params['output_path'],
                                    overwrite=params['overwrite_output'], age_recipients=params['age_recipients'])
        else:
            nonce = verification_nonce(run, answer)
            try:
                data, encrypted, age_problem = material_bytes(module, material, params['age_recipients'])
                if age_problem:
                    run.abort('age_recipients: %s' % age_problem)
                reservation.fill(data)
            except OSError as exc:
                run.abort('output_path: the new keys could not be written into the space reserved in %s (%s)' % (
                    reservation.placeholder, exc))
            run.verify(material['%s_keys_b64' % run.target] or material['%s_keys_hex' % run.target],
                       result['threshold'], nonce)
            result['verified'] = True
            outcome = commit_filled(reservation, params['output_path'], overwrite=params['overwrite_output'],
                                    encrypted=encrypted)
    except OperationError as exc:
        result['changed'] = stale
        raise OperationError(str(exc), results=result)
    if not outcome.at_target or outcome.age_problem:
        raise MaterialError(save_failure_message(DONE % node.url, outcome, LOST_ADVICE), results=result)


def rekey_to_secret(module, run, result, keys, required, stale, store):
    """As rekey_to_file(), with the Secret ``store``: with verification the new keys are staged in the Secret (a
    pending-<stamp>.json key) before the verify phase makes them the only valid ones, then moved onto its key
    in one update that keeps the old material. Returns the key the old material is kept under (or None)."""
    params = module.params
    node, ref, verify = run.node, store.ref, params['require_verification']
    staged = None
    try:
        try:
            answer, material = rekey_material(module, run, result, keys, required, stale)
        except AnswerError as exc:
            # Without verification the rekey took effect on the last key: keep what the answer held.
            event, label = '%s; %s' % (exc, DONE % node.url), 'what the answer held (incomplete)'
            if not exc.partial:
                raise MaterialError('%s; the answer held no usable key material: the new keys are lost: %s' % (
                    event, LOST_ADVICE), results=result)
            key = store_material(module, store, exc.partial, event, LOST_ADVICE, partial=True, label=label)
            raise MaterialError('%s; %s is in %s key %s' % (event, label, ref.path, key), results=result)
        if not verify:
            store_material(module, store, material, DONE % node.url, LOST_ADVICE)
            return store.previous
        nonce = verification_nonce(run, answer)
        data, encrypted, age_problem = material_bytes(module, material, params['age_recipients'])
        if age_problem:
            run.abort('age_recipients: %s' % age_problem)
        try:
            staged = store.stage(data, material, encrypted)
        except MaterialSecretError as exc:
            run.abort('output_secret: the new keys could not be staged in %s before verification (%s)' % (
                ref.path, exc))
        run.verify(material['%s_keys_b64' % run.target] or material['%s_keys_hex' % run.target],
                   result['threshold'], nonce)
        result['verified'] = True
    except OperationError as exc:
        result['changed'] = stale
        message = str(exc)
        if staged:
            message += ('; the unverified new keys stay in %s key %s: delete that key once the current keys are '
                        'known to work' % (ref.path, staged))
        raise OperationError(message, results=result)
    try:
        return store.write(data, material, encrypted, pending_key=staged)
    except MaterialSecretError as exc:
        raise MaterialError('%s; the new keys are in %s key %s (written before verification), but could not be moved '
                            'to key %s (%s): move them there, they are the only valid keys now' % (
                                DONE % node.url, ref.path, staged, ref.key, exc), results=result)


def wait_for_layout(node, shares, threshold, timeout=15):
    """The seal status reflects the new layout once the rekey is stored; True when it does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = node.seal_status()
            if status.get('n') == shares and status.get('t') == threshold:
                return True
        except VaultError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def finish(module, node, result):
    if not wait_for_layout(node, result['shares'], result['threshold']):
        module.warn('the rekey completed, but %s does not report the new layout %d/%d yet' % (
            node.url, result['threshold'], result['shares']))
    return result

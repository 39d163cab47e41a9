# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vault_init: the sys/init request, validated before anything is sent (pure), and the flow that sends it and
puts the key material where it was asked to go (``initialize``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError
from ansible_collections.trustroot.ops.plugins.module_utils._material import (
    AnswerError, MaterialError, check_material_output, init_call_failure_message, init_material_bound,
    initialized_state, material_from_init, partial_path, reserve_material_output, save_failure_message,
    save_material, secrets_in, utc_stamp)
from ansible_collections.trustroot.ops.plugins.module_utils._material_secret import (
    prepare_output_secret, store_material)
from ansible_collections.trustroot.ops.plugins.module_utils._vault import (
    VaultError, VaultNode, ensure_connection, require_url)

LOST_ADVICE = 'wipe the server\'s storage and initialize it again'


class InitInputError(TrustrootError, ValueError):
    pass


def check_shares(shares_field, shares, threshold_field, threshold, allow_zero=False):
    """The rules the server enforces, checked first so a bad input never reaches it."""
    if allow_zero and shares == 0:
        if threshold not in (0, None):
            raise InitInputError('%s must be 0 when %s is 0' % (threshold_field, shares_field))
        return
    if shares is None or shares < 1:
        raise InitInputError('%s must be 1 or more' % shares_field)
    if threshold is None or threshold < 1 or threshold > shares:
        raise InitInputError('%s must be between 1 and %s (%d)' % (threshold_field, shares_field, shares))
    if shares > 1 and threshold == 1:
        raise InitInputError('%s must be 2 or more when %s is more than 1' % (threshold_field, shares_field))


def check_pgp(field, pgp_keys, shares_field, shares):
    if pgp_keys and len(pgp_keys) != shares:
        raise InitInputError('%s has %d key(s); it needs one per share (%s=%d)' % (
            field, len(pgp_keys), shares_field, shares))


def build_init_request(params, auto_unseal):
    """The sys/init payload for a Shamir (``auto_unseal`` false) or an auto-unseal node.

    Auto-unseal nodes take recovery shares (defaulting to secret_shares / secret_threshold); OpenBao
    accepts ``recovery_shares: 0`` there.
    """
    if auto_unseal:
        shares = params['recovery_shares'] if params['recovery_shares'] is not None else params['secret_shares']
        threshold = params['recovery_threshold'] if params['recovery_threshold'] is not None else (
            0 if shares == 0 else params['secret_threshold'])
        check_shares('recovery_shares', shares, 'recovery_threshold', threshold, allow_zero=True)
        check_pgp('recovery_pgp_keys', params['recovery_pgp_keys'], 'recovery_shares', shares)
        request = {'recovery_shares': shares, 'recovery_threshold': threshold}
        if params['recovery_pgp_keys']:
            request['recovery_pgp_keys'] = params['recovery_pgp_keys']
    else:
        if params['recovery_shares'] is not None or params['recovery_pgp_keys']:
            raise InitInputError('recovery_shares and recovery_pgp_keys apply to auto-unseal servers only; '
                                 'this server uses Shamir keys (set secret_shares / secret_threshold)')
        check_shares('secret_shares', params['secret_shares'], 'secret_threshold', params['secret_threshold'])
        check_pgp('pgp_keys', params['pgp_keys'], 'secret_shares', params['secret_shares'])
        request = {'secret_shares': params['secret_shares'], 'secret_threshold': params['secret_threshold']}
        if params['pgp_keys']:
            request['pgp_keys'] = params['pgp_keys']
    if params['root_token_pgp_key']:
        request['root_token_pgp_key'] = params['root_token_pgp_key']
    return request


def is_auto_unseal(seal_status):
    """Auto-unseal servers report a non-Shamir seal type (and recovery_seal once initialized)."""
    return bool(seal_status.get('recovery_seal')) or (seal_status.get('type') not in (None, '', 'shamir'))


# --- the flow ----------------------------------------------------------------------------------------

def initialize(module):
    """vault_init's whole run: the node's state, the request, the write-ahead reservation of the output, then
    sys/init and the material. Returns the result; raises a TrustrootError saying where any key material is."""
    ensure_connection(module)
    require_url(module)
    params = module.params
    node = VaultNode.from_params(params)
    status = node.seal_status()
    flavour, _version, version = node.flavour()
    auto_unseal = is_auto_unseal(status)
    request = build_init_request(params, auto_unseal)
    layout_key = 'recovery' if auto_unseal else 'secret'
    result = dict(changed=False, initialized=bool(status.get('initialized')), output_path=None,
                  seal_type=status.get('type'), flavour=flavour, version=version,
                  shares=request['%s_shares' % layout_key], threshold=request['%s_threshold' % layout_key])
    if status.get('initialized'):
        # Report the layout the server has, not the one asked for.
        result.update(shares=status.get('n'), threshold=status.get('t'))
        return result

    result['changed'] = True
    if module._diff:
        result['diff'] = {'before': {'initialized': False},
                          'after': {'initialized': True, 'shares': result['shares'], 'threshold': result['threshold']}}
    needed = init_material_bound(request, node.url, flavour, version, params['age_recipients'])
    if params['output_secret']:
        # Write-ahead: the Secret is written (a reservation, no key) before the server makes the keys.
        store = prepare_output_secret(module, 'init', needed)
        try:
            if not module.check_mode:
                send_init(module, node, request, flavour, version, None, store)
                ref = store.ref
                result.update(initialized=True, output_secret=dict(namespace=ref.namespace, name=ref.name,
                                                                   key=ref.key))
        finally:
            store.release()
        return result
    check_material_output(module)
    # Write-ahead: the material's space is proven with real bytes before the server makes the keys (in check
    # mode too, so it predicts this failure; the placeholder is removed).
    reservation = reserve_material_output(module, needed)
    try:
        if not module.check_mode:
            send_init(module, node, request, flavour, version, reservation)
            result.update(initialized=True, output_path=params['output_path'])
    finally:
        reservation.release()
    return result


def send_init(module, node, request, flavour, version, reservation, store=None):
    """sys/init, then the material into the reservation (or the Secret ``store``); raises saying where any key
    material is."""
    try:
        response = node.call('PUT', 'sys/init', auth=False, json=request)
    except VaultError as exc:
        raise MaterialError(init_call_failure_message(exc, *initialized_state(node, VaultError)))
    try:
        material = material_from_init(response, request, node.url, flavour, version)
    except AnswerError as exc:
        raise MaterialError(answer_failure_message(module, node, exc, reservation, store), changed=True)
    module.no_log_values.update(secrets_in(material))
    if store:
        store_material(module, store, material, 'the server was initialized', LOST_ADVICE)
        return
    params = module.params
    outcome = save_material(module, reservation, material, params['output_path'],
                            overwrite=params['overwrite_output'], age_recipients=params['age_recipients'])
    if not outcome.at_target or outcome.age_problem:
        raise MaterialError(save_failure_message('the server was initialized', outcome, LOST_ADVICE), changed=True)


def answer_failure_message(module, node, exc, reservation, store):
    """An answer to sys/init without usable material: keep what it held beside the output (the server may be
    initialized all the same) and say where it is, or that the keys are lost."""
    event = '%s; the server may be initialized now' % exc
    label = 'what the answer held (incomplete)'
    if exc.partial:
        module.no_log_values.update(secrets_in(exc.partial))
        if store:
            key = store_material(module, store, exc.partial, event, 'if the server is initialized, ' + LOST_ADVICE,
                                 partial=True, label=label)
            return '%s; %s is in %s key %s' % (event, label, store.ref.path, key)
        outcome = save_material(module, reservation, exc.partial,
                                partial_path(module.params['output_path'], utc_stamp()), overwrite=False,
                                age_recipients=module.params['age_recipients'])
        return save_failure_message(event, outcome, 'if the server is initialized, ' + LOST_ADVICE, label=label)
    initialized, _problem = initialized_state(node, VaultError)
    if initialized is False:
        return '%s; it reports not initialized: nothing was written' % exc
    return '%s; the answer held no usable key material: if the server is initialized (%s), its keys are lost: %s' % (
        event, 'it reports so' if initialized else 'check sys/seal-status', LOST_ADVICE)

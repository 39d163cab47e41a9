# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sys/init requests: validated before anything is sent (pure)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError


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

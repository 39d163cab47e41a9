# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic for SPIRE local authority rotation (X.509 CA and JWT key) and upstream authority
taint/revoke: the state read from ``localauthority <kind> show`` and ``bundle show``, which CLI step a
desired state needs, and whether the bundle already shows a step (no I/O).

Rotation order (SPIRE's rules): prepare -> activate (only the prepared authority) -> taint (only the
old authority, the one activation replaced) -> revoke (only a tainted authority).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError
from ansible_collections.trustroot.ops.plugins.module_utils._spire_federation import bundle_view, iso_time, to_int

KINDS = ('x509', 'jwt')
STATES = ('show', 'prepared', 'activated', 'tainted', 'revoked')
SLOTS = ('active', 'prepared', 'old')


def _slot(raw):
    if not raw or not raw.get('authority_id'):
        return None
    return {
        'authority_id': raw.get('authority_id'),
        'expires_at': to_int(raw.get('expires_at')),
        'expires_at_iso': iso_time(raw.get('expires_at')),
        'upstream_authority_subject_key_id': raw.get('upstream_authority_subject_key_id') or '',
    }


def bundle_authorities(bundle_proto, kind):
    """[{authority_id, tainted}] of the server's own bundle for ``kind`` (x509: Subject Key IDs)."""
    view = bundle_view(bundle_proto or {})
    key = 'x509_authorities' if kind == 'x509' else 'jwt_authorities'
    return [{'authority_id': a['authority_id'], 'tainted': a['tainted']} for a in view[key]]


def authority_state(show_answer, bundle_proto, kind):
    """The local authorities of ``kind`` with their place in the bundle.

    {'kind', 'active', 'prepared', 'old' (each None or {authority_id, expires_at, expires_at_iso,
    upstream_authority_subject_key_id, in_bundle, tainted}), 'bundle': [{authority_id, tainted}],
    'upstream': bool}
    """
    bundle = bundle_authorities(bundle_proto, kind)
    by_id = dict((a['authority_id'], a) for a in bundle if a['authority_id'])
    state = {'kind': kind, 'bundle': bundle}
    for name in SLOTS:
        slot = _slot((show_answer or {}).get(name))
        if slot is not None:
            entry = by_id.get(slot['authority_id'])
            slot['in_bundle'] = entry is not None
            slot['tainted'] = bool(entry and entry['tainted'])
        state[name] = slot
    active = state['active'] or {}
    state['upstream'] = kind == 'x509' and bool(active.get('upstream_authority_subject_key_id'))
    return state


def _bundle_entry(state, authority_id):
    for entry in state['bundle']:
        if entry['authority_id'] == authority_id:
            return entry
    return None


def _id(slot):
    return slot['authority_id'] if slot else None


def plan_step(step, state, authority_id=None):
    """The step to run: {'action': None|'prepare'|'activate'|'taint'|'revoke', 'authority_id', 'note'}.

    ``action`` None means the server is already there (changed=false). Raises InputError with a clear
    message when SPIRE's order forbids the step.
    """
    kind = state['kind']
    active, prepared, old = state['active'], state['prepared'], state['old']
    if active is None:
        raise InputError('the server reports no active %s authority (is it still starting?)' % kind)
    if step == 'show':
        return {'action': None, 'authority_id': None, 'note': ''}
    if step == 'prepared':
        if authority_id:
            raise InputError('authority_id is not used with state=prepared: SPIRE names the new authority')
        if prepared:
            return {'action': None, 'authority_id': prepared['authority_id'],
                    'note': 'authority %s is already prepared' % prepared['authority_id']}
        return {'action': 'prepare', 'authority_id': None, 'note': ''}
    if step == 'activated':
        if authority_id:
            if authority_id == active['authority_id']:
                return {'action': None, 'authority_id': authority_id,
                        'note': 'authority %s is already active' % authority_id}
            if prepared and authority_id == prepared['authority_id']:
                return {'action': 'activate', 'authority_id': authority_id, 'note': ''}
            raise InputError('authority_id %s is neither the prepared %s authority (%s) nor the active one (%s); '
                             'only a prepared authority can be activated'
                             % (authority_id, kind, _id(prepared) or 'none', active['authority_id']))
        if prepared:
            return {'action': 'activate', 'authority_id': prepared['authority_id'], 'note': ''}
        if old:
            return {'action': None, 'authority_id': active['authority_id'],
                    'note': 'no prepared authority; %s is active since it replaced %s'
                            % (active['authority_id'], old['authority_id'])}
        raise InputError('there is no prepared %s authority to activate: run state=prepared first' % kind)
    if step not in ('tainted', 'revoked'):
        raise InputError('state must be one of %s (got %r)' % (', '.join(STATES), step))
    if state['upstream']:
        raise InputError('this server signs its X.509 CA with an UpstreamAuthority: local X.509 authorities '
                         'cannot be %s; use upstream_subject_key_id' % step)
    target = authority_id or _id(old)
    if target is None:
        raise InputError('there is no old %s authority to %s: activate a prepared authority first'
                         % (kind, 'taint' if step == 'tainted' else 'revoke'))
    if target == active['authority_id']:
        raise InputError('authority_id %s is the active %s authority; only the old authority (the one '
                         'activation replaced) can be %s' % (target, kind, step))
    if prepared and target == prepared['authority_id']:
        raise InputError('authority_id %s is the prepared %s authority; only the old authority can be %s'
                         % (target, kind, step))
    entry = _bundle_entry(state, target)
    is_old = old is not None and target == old['authority_id']
    # JWT keys: SPIRE revokes any tainted key of the bundle; everything else must be the old slot.
    if not is_old and not (kind == 'jwt' and step == 'revoked' and entry is not None):
        raise InputError('authority_id %s is not the old %s authority (old: %s); only the old authority can be %s'
                         % (target, kind, _id(old) or 'none', step))
    if step == 'tainted':
        if entry is None:
            return {'action': None, 'authority_id': target,
                    'note': 'authority %s is no longer in the bundle (already revoked)' % target}
        if entry['tainted']:
            return {'action': None, 'authority_id': target, 'note': 'authority %s is already tainted' % target}
        return {'action': 'taint', 'authority_id': target, 'note': ''}
    if entry is None:
        return {'action': None, 'authority_id': target, 'note': 'authority %s is already revoked' % target}
    if not entry['tainted']:
        raise InputError('authority_id %s is not tainted: taint it first (state=tainted), then revoke' % target)
    return {'action': 'revoke', 'authority_id': target, 'note': ''}


def plan_upstream_step(step, state, subject_key_id):
    """Upstream authority taint/revoke (X.509 only), by the Subject Key ID of the upstream CA that signed
    the old local authority (SPIRE's rule)."""
    if step not in ('tainted', 'revoked'):
        raise InputError('upstream_subject_key_id is used with state=tainted or state=revoked (got %r)' % step)
    skid = (subject_key_id or '').strip().lower().replace(':', '')
    if not skid or any(c not in '0123456789abcdef' for c in skid):
        raise InputError('upstream_subject_key_id must be a hexadecimal Subject Key ID (got %r)' % subject_key_id)
    if not state['upstream']:
        raise InputError('upstream_subject_key_id given, but this server has no UpstreamAuthority (its active '
                         'X.509 authority is self-signed); use authority_id for local authorities')
    active, old = state['active'], state['old']
    if skid == active.get('upstream_authority_subject_key_id'):
        raise InputError('upstream_subject_key_id %s signed the active X.509 authority; only the upstream '
                         'authority of the old local authority can be %s' % (skid, step))
    if old is None or skid != old.get('upstream_authority_subject_key_id'):
        raise InputError('upstream_subject_key_id %s did not sign the old local authority (old: %s)'
                         % (skid, (old or {}).get('upstream_authority_subject_key_id') or 'none'))
    entry = _bundle_entry(state, skid)
    if step == 'tainted':
        if entry is None:
            return {'action': None, 'authority_id': skid, 'note': 'upstream authority %s is not in the bundle' % skid}
        if entry['tainted']:
            return {'action': None, 'authority_id': skid, 'note': 'upstream authority %s is already tainted' % skid}
        return {'action': 'taint', 'authority_id': skid, 'note': ''}
    if entry is None:
        return {'action': None, 'authority_id': skid, 'note': 'upstream authority %s is already revoked' % skid}
    if not entry['tainted']:
        raise InputError('upstream_subject_key_id %s is not tainted: taint it first' % skid)
    return {'action': 'revoke', 'authority_id': skid, 'note': ''}


def command(kind, action, authority_id, upstream=False):
    """argv after ``spire-server`` for a step."""
    if upstream:
        return ['upstreamauthority', action, '-subjectKeyID', authority_id]
    args = ['localauthority', kind, action]
    if action != 'prepare':
        args += ['-authorityID', authority_id]
    return args


def step_visible(action, authority_id, bundle):
    """Whether ``bundle`` ([{authority_id, tainted}]) already shows ``action`` on ``authority_id``."""
    entry = None
    for item in bundle:
        if item['authority_id'] == authority_id:
            entry = item
    if action in ('prepare', 'activate'):
        return entry is not None
    if action == 'taint':
        return entry is not None and entry['tainted']
    if action == 'revoke':
        return entry is None
    return True


def summary(state):
    """Authority states for diffs and results: slot IDs, and each bundle authority with its status."""
    if state is None:
        return None
    out = {}
    for name in SLOTS:
        out[name] = _id(state.get(name))
    out['bundle'] = ['%s%s' % (a['authority_id'], ' (tainted)' if a['tainted'] else '') for a in state['bundle']]
    return out


def predicted_summary(before, plan, upstream=False):
    """The summary after ``plan`` runs, for check mode and diffs (a new authority's ID is unknown)."""
    after = summary(before)
    action, target = plan['action'], plan['authority_id']
    if action == 'prepare':
        after['prepared'] = '(new authority)'
        after['bundle'] = after['bundle'] + ['(new authority)']
    elif action == 'activate':
        after['old'] = after['active']
        after['active'] = target
        after['prepared'] = None
    elif action == 'taint':
        after['bundle'] = [('%s (tainted)' % target) if b == target else b for b in after['bundle']]
    elif action == 'revoke':
        after['bundle'] = [b for b in after['bundle'] if b.split(' ')[0] != target]
    return after

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registration entries of a SPIRE trust-domain migration (old -> new through federation), pure.

The entries come in the shape trustroot.ops.spire_entry_info returns and go out in the shape
trustroot.ops.spire_entry takes. Three steps:
  mirror           the old server's entries as entries of the new trust domain (same paths, parents rewritten,
                   federated with the old trust domain so moved workloads still trust the old one)
  federate_old     the old server's workload entries, also federated with the new trust domain
  unfederate       entries without a trust domain in federates_with (the new server's, when finishing)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.trustroot.ops.plugins.module_utils._spiffe_id import (
    SCHEME, SpiffeError, parse_spiffe_id, trust_domain_error)
from ansible_collections.trustroot.ops.plugins.module_utils._spire_entry_model import ALL_FIELDS

STEPS = ('mirror', 'federate_old', 'unfederate')


def check_trust_domain(value, field):
    error = trust_domain_error(value)
    if error:
        raise SpiffeError('%s: %s' % (field, error))
    return value


def split_id(spiffe_id, field='spiffe_id'):
    """(trust domain, path) of a SPIFFE ID."""
    parsed = parse_spiffe_id(spiffe_id, field)
    return parsed['trust_domain'], parsed['path']


def rewrite_trust_domain(spiffe_id, new_trust_domain, field='spiffe_id'):
    """The same path in the new trust domain: spiffe://old/node/a -> spiffe://new/node/a."""
    return SCHEME + new_trust_domain + split_id(spiffe_id, field)[1]


def _bare(trust_domain):
    return trust_domain[len(SCHEME):] if trust_domain.startswith(SCHEME) else trust_domain


def is_join_token_alias(entry):
    """The alias entry SPIRE makes for a join token (parent spiffe://td/spire/agent/join_token/<token>): the new
    trust domain's join token makes its own, so it is never mirrored."""
    return split_id(entry.get('parent_id', ''), 'parent_id')[1].startswith('/spire/agent/join_token/')


def is_node_entry(entry):
    return split_id(entry.get('parent_id', ''), 'parent_id')[1] == '/spire/server'


def _copy(entry):
    return dict((key, entry[key]) for key in ALL_FIELDS if key in entry)


def _federates(entry, add=(), remove=()):
    current = [_bare(td) for td in entry.get('federates_with') or []]
    out = [td for td in current if td not in remove]
    out += [td for td in add if td not in out]
    return sorted(out)


def mirror(entries, old_trust_domain, new_trust_domain):
    """The old trust domain's entries as the new trust domain's. Join-token aliases are left out; node entries
    keep being node entries (parent: the new server); workload entries federate with the old trust domain."""
    out = []
    for entry in entries:
        if split_id(entry.get('spiffe_id', ''))[0] != old_trust_domain or is_join_token_alias(entry):
            continue
        new = _copy(entry)
        new['spiffe_id'] = rewrite_trust_domain(entry['spiffe_id'], new_trust_domain)
        if is_node_entry(entry):
            new.pop('parent_id')
            new['node'] = True
            new['federates_with'] = _federates(entry, remove=(new_trust_domain,))
        else:
            new['parent_id'] = rewrite_trust_domain(entry['parent_id'], new_trust_domain, 'parent_id')
            new['federates_with'] = _federates(entry, add=(old_trust_domain,), remove=(new_trust_domain,))
        out.append(new)
    return out


def federate_old(entries, new_trust_domain):
    """The old server's workload entries (by ID, whoever owns them) with the new trust domain added to
    federates_with; node entries and join-token aliases are left out."""
    out = []
    for entry in entries:
        if is_join_token_alias(entry) or is_node_entry(entry):
            continue
        new = _copy(entry)
        new['entry_id'] = entry['entry_id']
        new['federates_with'] = _federates(entry, add=(new_trust_domain,))
        out.append(new)
    return out


def unfederate(entries, trust_domain):
    """The entries (by ID) without trust_domain in federates_with."""
    out = []
    for entry in entries:
        new = _copy(entry)
        new['entry_id'] = entry['entry_id']
        if is_node_entry(entry):
            new.pop('parent_id')
            new['node'] = True
        new['federates_with'] = _federates(entry, remove=(trust_domain,))
        out.append(new)
    return out


def migrate_entries(entries, step, old_trust_domain, new_trust_domain):
    """One step (see STEPS) after checking the inputs; errors name the argument."""
    if step not in STEPS:
        raise SpiffeError('step: %r is not one of %s' % (step, ', '.join(STEPS)))
    check_trust_domain(old_trust_domain, 'old_trust_domain')
    check_trust_domain(new_trust_domain, 'new_trust_domain')
    if old_trust_domain == new_trust_domain:
        raise SpiffeError('new_trust_domain: %r is the old trust domain' % new_trust_domain)
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise SpiffeError('entries: expected a list of entries (spire_entry_info entries)')
    if step == 'mirror':
        return mirror(entries, old_trust_domain, new_trust_domain)
    if step == 'federate_old':
        return federate_old(entries, new_trust_domain)
    return unfederate(entries, old_trust_domain)

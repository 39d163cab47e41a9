# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SPIRE registration entry: its fields, their defaults, and the canonical form a restore is verified with.

One definition for registration (``_spire_entries``: what reconcile compares), the backup digest
(``_spire_backup``: what a restore must bring back), and trust-domain mirroring (``_spire_trust_domain``: what is
copied). Python 3 standard library only: the host-side backup program ships this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# The fields that identify an entry come first; registration compares all of them.
KEY_FIELDS = ('spiffe_id', 'parent_id', 'selectors')
VALUE_FIELDS = ('x509_svid_ttl', 'jwt_svid_ttl', 'federates_with', 'dns_names', 'admin', 'downstream', 'hint',
                'store_svid', 'expires_at', 'disable_x509_svid_prefetch', 'jwt_svid_include_jti')
ALL_FIELDS = KEY_FIELDS + VALUE_FIELDS
DEFAULTS = {'x509_svid_ttl': 0, 'jwt_svid_ttl': 0, 'federates_with': (), 'dns_names': (), 'admin': False,
            'downstream': False, 'hint': '', 'store_svid': False, 'expires_at': 0,
            'disable_x509_svid_prefetch': False, 'jwt_svid_include_jti': False}

# Fields the canonical form holds only when set: a digest written before they counted stays valid for the
# entries that do not use them, and an entry that does use them is compared on them, as registration compares it.
SET_ONLY_FIELDS = (('store_svid', bool), ('expires_at', int), ('disable_x509_svid_prefetch', bool),
                   ('jwt_svid_include_jti', bool))


def spiffe_id_text(value):
    """'spiffe://td/path' from the API shape {'trust_domain', 'path'} or from a string."""
    if isinstance(value, dict):
        return 'spiffe://%s%s' % (value.get('trust_domain') or '', value.get('path') or '')
    return value or ''


def trust_domain_name(value):
    """'example.org' from 'example.org', 'spiffe://example.org' or 'spiffe://Example.org/'."""
    value = value or ''
    if value.startswith('spiffe://'):
        value = value[len('spiffe://'):]
    return value.rstrip('/').lower()


def selector_text(selector):
    """'type:value' from the API shape {'type', 'value'} or from a string."""
    if isinstance(selector, dict):
        return '%s:%s' % (selector.get('type') or '', selector.get('value') or '')
    return selector


def canonical_entry(entry):
    """The fields of an entry that a restore must bring back (no IDs, revisions or timestamps): every field of
    ALL_FIELDS, in one spelling whether the entry came from the CLI's JSON or from registration input."""
    canonical = {
        'spiffe_id': spiffe_id_text(entry.get('spiffe_id')),
        'parent_id': spiffe_id_text(entry.get('parent_id')),
        'selectors': sorted(selector_text(s) for s in entry.get('selectors') or []),
        'x509_svid_ttl': int(entry.get('x509_svid_ttl') or 0),
        'jwt_svid_ttl': int(entry.get('jwt_svid_ttl') or 0),
        'federates_with': sorted(trust_domain_name(td) for td in entry.get('federates_with') or []),
        'dns_names': sorted(entry.get('dns_names') or []),
        'admin': bool(entry.get('admin')),
        'downstream': bool(entry.get('downstream')),
        'hint': entry.get('hint') or '',
    }
    for field, kind in SET_ONLY_FIELDS:
        value = kind(entry.get(field) or 0)
        if value:
            canonical[field] = value
    return canonical

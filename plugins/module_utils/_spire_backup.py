# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SPIRE server backup and restore: the consistent pair (datastore + the disk key manager's keys.json),
the server's identity at backup time, and the decisions of a restore.

Python 3 standard library only, no Ansible imports: the module ``spire_server_backup`` and a plain
command line on the SPIRE server host (a systemd timer) both use this file. Commands are argv lists run
through a ``run(argv, data=None) -> (rc, stdout bytes, stderr bytes)`` callable.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import json


class SpireBackupError(Exception):
    """A failed step of a SPIRE backup or restore; the text is safe to show (no connection string)."""


# --- canonical forms (pure) ---------------------------------------------------------------------------------

def _loads(value):
    if isinstance(value, bytes):
        value = value.decode('utf-8')
    if isinstance(value, str):
        value = json.loads(value)
    return value


def spiffe_id_text(value):
    """'spiffe://td/path' from the API shape {'trust_domain', 'path'} or from a string."""
    if isinstance(value, dict):
        return 'spiffe://%s%s' % (value.get('trust_domain') or '', value.get('path') or '')
    return value or ''


def _trust_domain_name(value):
    value = value or ''
    if value.startswith('spiffe://'):
        value = value[len('spiffe://'):]
    return value.rstrip('/').lower()


def _selector_text(selector):
    if isinstance(selector, dict):
        return '%s:%s' % (selector.get('type') or '', selector.get('value') or '')
    return selector


def canonical_entry(entry):
    """The fields of an entry that a restore must bring back (no IDs, revisions or timestamps)."""
    return {
        'spiffe_id': spiffe_id_text(entry.get('spiffe_id')),
        'parent_id': spiffe_id_text(entry.get('parent_id')),
        'selectors': sorted(_selector_text(s) for s in entry.get('selectors') or []),
        'x509_svid_ttl': int(entry.get('x509_svid_ttl') or 0),
        'jwt_svid_ttl': int(entry.get('jwt_svid_ttl') or 0),
        'federates_with': sorted(_trust_domain_name(td) for td in entry.get('federates_with') or []),
        'dns_names': sorted(entry.get('dns_names') or []),
        'admin': bool(entry.get('admin')),
        'downstream': bool(entry.get('downstream')),
        'hint': entry.get('hint') or '',
    }


def _entry_list(entries_json):
    data = _loads(entries_json)
    if isinstance(data, dict):
        data = data.get('entries') or []
    if not isinstance(data, list):
        raise ValueError('expected the JSON of `entry show -output json` or a list of entries')
    return data


def canonical_entries(entries_json):
    """Sorted canonical entries from ``entry show -output json`` (text, bytes, the parsed object or its
    ``entries`` list)."""
    items = [json.dumps(canonical_entry(e), sort_keys=True, separators=(',', ':')) for e in _entry_list(entries_json)]
    items.sort()
    return [json.loads(item) for item in items]


def entries_digest(entries_json):
    """Pure. sha256 (hex) over the canonical, sorted entries of ``entry show -output json`` (text, bytes,
    the parsed object or its ``entries`` list): SPIFFE ID, parent ID, sorted selectors 'type:value', X.509 and
    JWT SVID TTLs, sorted federated trust domains, sorted DNS names, admin, downstream and hint. Entry IDs,
    revisions and timestamps do not count, so a server restored from a backup gives the same digest."""
    items = sorted(json.dumps(canonical_entry(e), sort_keys=True, separators=(',', ':'))
                   for e in _entry_list(entries_json))
    digest = hashlib.sha256()
    digest.update(b'[')
    for index, item in enumerate(items):
        if index:
            digest.update(b',')
        digest.update(item.encode('utf-8'))
    digest.update(b']')
    return digest.hexdigest()


def bundle_summary(bundle_json):
    """Pure. {'trust_domain', 'x509_authorities': sorted sha256 (hex) of each authority's DER,
    'jwt_key_ids': sorted} from ``bundle show -output json`` (text, bytes or the parsed object)."""
    bundle = _loads(bundle_json)
    if not isinstance(bundle, dict):
        raise ValueError('expected the JSON object of `bundle show -output json`')
    x509 = []
    for authority in bundle.get('x509_authorities') or []:
        der = base64.b64decode(authority.get('asn1') or '', validate=True)
        if not der:
            raise ValueError('an X.509 authority of the bundle has no asn1')
        x509.append(hashlib.sha256(der).hexdigest())
    jwt = [a.get('key_id') or '' for a in bundle.get('jwt_authorities') or []]
    return {'trust_domain': bundle.get('trust_domain') or '', 'x509_authorities': sorted(x509),
            'jwt_key_ids': sorted(jwt)}

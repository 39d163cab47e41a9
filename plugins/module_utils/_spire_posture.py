# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of spire_posture_info: the server settings the posture checks read, the shapes of entries,
agents, bundles and federation relationships they judge, and the key set a peer's bundle endpoint serves,
read from its answer without trusting it (no I/O apart from reading the configuration file)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.client
import json
import os
import re
import ssl
import urllib.parse

from ansible_collections.trustroot.ops.plugins.module_utils._spire import bundle_summary, local_authority_summary
from ansible_collections.trustroot.ops.plugins.module_utils._spire_cli import SpireError
from ansible_collections.trustroot.ops.plugins.module_utils._spire_federation import (
    bundle_pem, id_from_proto, parse_spiffe_bundle)

# A name holds digits too (default_x509_svid_ttl); a value may be followed by a comment.
_SETTING = re.compile(r'^\s*([a-z0-9_]+)\s*=\s*"?([^"#\n]*)"?\s*(?:#.*)?$', re.M)
CONFIG_KEYS = ('trust_domain', 'ca_ttl', 'default_x509_svid_ttl', 'default_jwt_svid_ttl', 'audit_log_enabled',
               'database_type', 'connection_string')
MAX_BUNDLE = 1 << 20
# SPIRE's bundle endpoint answers "application/json"; a SPIFFE bundle is a JWK Set, whose registered media
# type (RFC 7517) other bundle endpoints may send.
BUNDLE_MEDIA_TYPES = ('application/json', 'application/jwk-set+json')


def config_settings(text):
    """The settings the checks need, from the HCL text (first occurrence of each: the server block's)."""
    out = {}
    for key, value in _SETTING.findall(text):
        if key in CONFIG_KEYS and key not in out:
            out[key] = value.strip()
    return out


def read_config(path):
    with open(path) as handle:
        return config_settings(handle.read())


def spiffe(value):
    """``spiffe://td/path`` of a protojson SPIFFE ID; a missing one stays None."""
    return None if value is None else id_from_proto(value)


def entries_view(entries):
    return [{'id': e.get('id'), 'spiffe_id': spiffe(e.get('spiffe_id')), 'parent_id': spiffe(e.get('parent_id')),
             'federates_with': list(e.get('federates_with') or []), 'admin': bool(e.get('admin')),
             'downstream': bool(e.get('downstream'))} for e in entries]


def agents_view(agents):
    return [{'spiffe_id': spiffe(a.get('id')), 'x509svid_expires_at': int(a.get('x509svid_expires_at') or 0),
             'banned': bool(a.get('banned'))} for a in agents]


def bundles_view(bundles):
    out = []
    for raw in bundles:
        summary = bundle_summary(raw)
        out.append({'trust_domain': summary['trust_domain'], 'refresh_hint': summary['refresh_hint'],
                    'sequence_number': summary['sequence_number'],
                    'x509_authorities': [{'not_after_unix': a.get('not_after_unix')} for a in summary['x509_authorities']]})
    return out


def relationships(answer):
    """{'trust_domain', 'bundle_endpoint_url', 'profile'} of each relationship of ``federation list``."""
    out = []
    for rel in answer.get('federation_relationships') or []:
        profile = 'https_spiffe' if rel.get('https_spiffe') else 'https_web'
        out.append({'trust_domain': rel.get('trust_domain'), 'bundle_endpoint_url': rel.get('bundle_endpoint_url'),
                    'profile': profile})
    return out


def stored_keys(raw_bundle):
    """The keys of a stored bundle (``bundle list`` item) in the form served_keys returns."""
    keys = ['x509:' + a.get('asn1', '') for a in raw_bundle.get('x509_authorities') or []]
    keys += ['jwt:' + (a.get('key_id') or '') for a in raw_bundle.get('jwt_authorities') or []]
    return sorted(keys)


def served_keys(document, url):
    """The keys of the SPIFFE bundle ``document`` served by the endpoint ``url``, sorted.

    Raises ValueError naming the endpoint (and the key's index) when the document is not a SPIFFE bundle or
    a key of a known use is malformed, so a broken endpoint never reads as one serving fewer keys. Keys of
    another use are ignored, as the SPIFFE Trust Domain and Bundle standard requires."""
    where = 'bundle endpoint %s' % url
    if not isinstance(document, dict):
        raise ValueError('%s served JSON that is not an object' % where)
    if not isinstance(document.get('keys'), list):
        raise ValueError('%s served an object without a "keys" list' % where)
    # x509-svid: exactly one DER certificate in x5c; jwt-svid: a kid and a public key SPIRE can read.
    parse_spiffe_bundle(document, where)
    keys = []
    for index, key in enumerate(document['keys']):
        if key.get('use') == 'x509-svid':
            keys.append('x509:' + key['x5c'][0])
        elif key.get('use') == 'jwt-svid':
            if not isinstance(key['kid'], str):
                raise ValueError('%s keys[%d] (jwt-svid) has a kid that is not a string' % (where, index))
            keys.append('jwt:' + key['kid'])
    return sorted(keys)


def parse_served(url, content_type, body):
    """The sorted keys of a bundle endpoint's 200 answer (``body``: bytes, read up to MAX_BUNDLE + 1), or
    ValueError naming the endpoint: the body must be announced as JSON, fit MAX_BUNDLE and be a SPIFFE bundle."""
    media = (content_type or '').split(';')[0].strip().lower()
    if media not in BUNDLE_MEDIA_TYPES:
        raise ValueError('bundle endpoint %s served %s instead of JSON' % (
            url, media or 'a body without a Content-Type'))
    if len(body) > MAX_BUNDLE:
        raise ValueError('bundle endpoint %s served more than %d bytes' % (url, MAX_BUNDLE))
    try:
        document = json.loads(body.decode('utf-8'))
    except ValueError:
        raise ValueError('bundle endpoint %s served a body that is not valid JSON (cut off?)' % url)
    return served_keys(document, url)


# --- reading the posture (network and datastore) ---------------------------------------------------------

def fetch_served(rel, raw_bundle, timeout):
    """The key set the peer's endpoint serves now, or raises OSError / ValueError saying why not."""
    url = rel['bundle_endpoint_url']
    if rel['profile'] == 'https_spiffe':
        if not raw_bundle:
            raise ValueError('no stored bundle to authenticate the endpoint')
        context = ssl.create_default_context(cadata=bundle_pem(raw_bundle))
        context.check_hostname = False     # an SVID names a SPIFFE ID, not a host name
    else:
        context = ssl.create_default_context()
    # http.client rather than open_url: the https_spiffe profile needs an SSL context trusting the stored bundle
    # and not checking a host name (open_url takes neither).
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != 'https' or not parts.hostname:
        raise ValueError('bundle endpoint URL %s is not https://host[:port]/...' % url)
    connection = http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=timeout, context=context)
    try:
        connection.request('GET', (parts.path or '/') + ('?' + parts.query if parts.query else ''))
        response = connection.getresponse()
        if response.status != 200:
            raise ValueError('bundle endpoint %s answered HTTP %d' % (url, response.status))
        # One byte more than allowed, so an oversized answer is refused rather than read cut off.
        return parse_served(url, response.getheader('Content-Type'), response.read(MAX_BUNDLE + 1))
    finally:
        connection.close()


def join_tokens(config):
    """{'listable', 'reason', 'expiries'}: unused join tokens' expiries, from a sqlite3 datastore opened read-only."""
    kind = config.get('database_type', 'sqlite3')
    if kind != 'sqlite3':
        return {'listable': False, 'reason': 'spire-server has no command that lists them and the %s datastore is '
                                             'not read by this check' % kind}
    path = config.get('connection_string') or ''
    try:
        import sqlite3
    except ImportError:
        return {'listable': False, 'reason': 'python3 sqlite3 module missing on the server host'}
    if not os.path.isfile(path):
        return {'listable': False, 'reason': 'datastore %s not found' % path}
    try:
        connection = sqlite3.connect('file:%s?mode=ro' % path, uri=True, timeout=5)
        try:
            # Only the expiry: token values are secrets and never leave the datastore.
            rows = connection.execute('SELECT expiry FROM join_tokens').fetchall()
        finally:
            connection.close()
    except sqlite3.Error as err:
        return {'listable': False, 'reason': 'datastore not readable: %s' % err}
    return {'listable': True, 'expiries': sorted(int(row[0]) for row in rows)}


def read_posture(cli, params):
    """The posture facts: the config file, the server's answers, every peer's served bundle, join token expiries.
    A config or server that cannot be read gives {'error': ...} (the report judges that too)."""
    out = {}
    try:
        out['config'] = read_config(params['config_path'])
    except (IOError, OSError) as err:
        return {'error': 'config %s: %s' % (params['config_path'], err)}
    out['trust_domain'] = out['config'].get('trust_domain')
    try:
        entries = cli.run_json(['entry', 'show']).get('entries') or []
        agents = cli.run_json(['agent', 'list']).get('agents') or []
        rels = relationships(cli.run_json(['federation', 'list']))
        bundles = cli.run_json(['bundle', 'list']).get('bundles') or []
        x509 = cli.run_json(['localauthority', 'x509', 'show'])
    except SpireError as err:
        return {'error': err.message}
    out['entries'] = entries_view(entries)
    out['agents'] = agents_view(agents)
    out['bundles'] = bundles_view(bundles)
    raw_by_domain = dict((b.get('trust_domain'), b) for b in bundles)
    for rel in rels:
        raw = raw_by_domain.get(rel['trust_domain']) or {}
        rel['stored_keys'] = stored_keys(raw)
        try:
            rel['served'] = fetch_served(rel, raw, params['fetch_timeout'])
        except (OSError, ValueError, ssl.SSLError, http.client.HTTPException) as err:
            rel['served'], rel['served_error'] = None, str(getattr(err, 'reason', None) or err)[:400]
    out['federations'] = rels
    out['local_authorities'] = {'x509': local_authority_summary(x509)}
    out['join_tokens'] = join_tokens(out['config'])
    return out

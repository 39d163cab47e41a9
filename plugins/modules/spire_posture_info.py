#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: spire_posture_info
short_description: Read what the security posture check of a SPIRE server needs
version_added: 0.1.0
description:
  - Reads, never writes. From the server configuration file it reads the TTLs, the audit log setting and the
    datastore; through C(spire-server) it lists entries, agents, federation relationships and bundles, and shows
    the local X.509 authority; for every federation relationship it fetches the bundle the peer's endpoint serves
    now (C(https_web) with the system's CAs, C(https_spiffe) with the stored bundle of that trust domain) and
    returns both key sets.
  - C(spire-server) has no command that lists join tokens. With the sqlite3 datastore, the expiry of every join
    token not used yet is read from the datastore opened read-only (token values are never read); with another
    datastore the answer says they cannot be listed, and why.
  - Used by C(playbooks/posture.yml); findings are made from this answer by C(trustroot.ops.posture_report).
options:
  config_path:
    description: The server's configuration file.
    type: path
    default: /etc/spire/server/server.conf
  fetch_timeout:
    description: Seconds to wait for a peer's bundle endpoint.
    type: int
    default: 10
extends_documentation_fragment:
  - trustroot.ops.spire_server
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Nothing changes.
author:
  - trustroot.ops maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Read the server's posture facts
  trustroot.ops.spire_posture_info:
    socket_path: /run/spire/server/private/api.sock
  register: spire_posture
'''

RETURN = r'''
posture:
  description: The facts C(trustroot.ops.posture_report) judges (config, entries, agents, federations, bundles,
    local_authorities, join_tokens, trust_domain); C(error) when the server could not be read.
  returned: always
  type: dict
'''

import json
import os
import re
import http.client
import ssl
import urllib.parse

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._spire import (
    SpireError, SpireServerCLI, bundle_summary, local_authority_summary, server_argument_spec)

_SETTING = re.compile(r'^\s*([a-z_]+)\s*=\s*"?([^"#\n]*)"?\s*$', re.M)
CONFIG_KEYS = ('trust_domain', 'ca_ttl', 'default_x509_svid_ttl', 'default_jwt_svid_ttl', 'audit_log_enabled',
               'database_type', 'connection_string')
MAX_BUNDLE = 1 << 20


def read_config(path):
    """The settings the checks need, from the HCL file (first occurrence of each: the server block's)."""
    with open(path) as handle:
        text = handle.read()
    out = {}
    for key, value in _SETTING.findall(text):
        if key in CONFIG_KEYS and key not in out:
            out[key] = value.strip()
    return out


def spiffe(value):
    if isinstance(value, dict):
        return 'spiffe://%s%s' % (value.get('trust_domain', ''), value.get('path', ''))
    return value


def stored_keys(raw_bundle):
    keys = ['x509:' + a.get('asn1', '') for a in raw_bundle.get('x509_authorities') or []]
    keys += ['jwt:' + (a.get('key_id') or '') for a in raw_bundle.get('jwt_authorities') or []]
    return sorted(keys)


def served_keys(document):
    keys = []
    for key in document.get('keys') or []:
        if key.get('use') == 'x509-svid' and key.get('x5c'):
            keys.append('x509:' + key['x5c'][0])
        elif key.get('use') == 'jwt-svid':
            keys.append('jwt:' + (key.get('kid') or ''))
    return sorted(keys)


def pem_of(raw_bundle):
    out = []
    for authority in raw_bundle.get('x509_authorities') or []:
        body = authority.get('asn1', '')
        out.append('-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n' % '\n'.join(
            body[i:i + 64] for i in range(0, len(body), 64)))
    return ''.join(out)


def fetch_served(rel, raw_bundle, timeout):
    """The key set the peer's endpoint serves now, or raises OSError / ValueError saying why not."""
    url = rel['bundle_endpoint_url']
    if rel['profile'] == 'https_spiffe':
        if not raw_bundle:
            raise ValueError('no stored bundle to authenticate the endpoint')
        context = ssl.create_default_context(cadata=pem_of(raw_bundle))
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
            raise ValueError('the endpoint answered HTTP %d' % response.status)
        document = json.loads(response.read(MAX_BUNDLE).decode('utf-8'))
    finally:
        connection.close()
    if not isinstance(document, dict):
        raise ValueError('the endpoint did not serve a JSON object')
    return served_keys(document)


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


def relationships(answer):
    out = []
    for rel in answer.get('federation_relationships') or []:
        profile = 'https_spiffe' if rel.get('https_spiffe') else 'https_web'
        out.append({'trust_domain': rel.get('trust_domain'), 'bundle_endpoint_url': rel.get('bundle_endpoint_url'),
                    'profile': profile})
    return out


def main():
    spec = server_argument_spec()
    spec.update(config_path=dict(type='path', default='/etc/spire/server/server.conf'),
                fetch_timeout=dict(type='int', default=10))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    cli = SpireServerCLI(module)
    out = {}
    try:
        out['config'] = read_config(module.params['config_path'])
    except (IOError, OSError) as err:
        module.exit_json(changed=False, posture={'error': 'config %s: %s' % (module.params['config_path'], err)})
    out['trust_domain'] = out['config'].get('trust_domain')
    try:
        entries = cli.run_json(['entry', 'show']).get('entries') or []
        agents = cli.run_json(['agent', 'list']).get('agents') or []
        rels = relationships(cli.run_json(['federation', 'list']))
        bundles = cli.run_json(['bundle', 'list']).get('bundles') or []
        x509 = cli.run_json(['localauthority', 'x509', 'show'])
    except SpireError as err:
        module.exit_json(changed=False, posture={'error': err.message})
    out['entries'] = [{'id': e.get('id'), 'spiffe_id': spiffe(e.get('spiffe_id')), 'parent_id': spiffe(e.get('parent_id')),
                       'federates_with': list(e.get('federates_with') or []), 'admin': bool(e.get('admin')),
                       'downstream': bool(e.get('downstream'))} for e in entries]
    out['agents'] = [{'spiffe_id': spiffe(a.get('id')), 'x509svid_expires_at': int(a.get('x509svid_expires_at') or 0),
                      'banned': bool(a.get('banned'))} for a in agents]
    raw_by_domain = dict((b.get('trust_domain'), b) for b in bundles)
    out['bundles'] = []
    for raw in bundles:
        summary = bundle_summary(raw)
        out['bundles'].append({'trust_domain': summary['trust_domain'], 'refresh_hint': summary['refresh_hint'],
                               'sequence_number': summary['sequence_number'],
                               'x509_authorities': [{'not_after_unix': a.get('not_after_unix')}
                                                    for a in summary['x509_authorities']]})
    for rel in rels:
        raw = raw_by_domain.get(rel['trust_domain']) or {}
        rel['stored_keys'] = stored_keys(raw)
        try:
            rel['served'] = fetch_served(rel, raw, module.params['fetch_timeout'])
        except (OSError, ValueError, ssl.SSLError, http.client.HTTPException) as err:
            rel['served'], rel['served_error'] = None, str(getattr(err, 'reason', None) or err)[:200]
    out['federations'] = rels
    out['local_authorities'] = {'x509': local_authority_summary(x509)}
    out['join_tokens'] = join_tokens(out['config'])
    module.exit_json(changed=False, posture=out)


if __name__ == '__main__':
    main()

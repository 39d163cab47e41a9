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
  - A peer's answer is read only when it is a SPIFFE bundle served as C(application/json) (what SPIRE's bundle
    endpoint sends; C(application/jwk-set+json) too), in which every C(x509-svid) key holds exactly one certificate in
    C(x5c) and every C(jwt-svid) key a C(kid) and a public key; otherwise that relationship's C(served) is null and
    C(served_error) names the endpoint and what is wrong (for a key, its index), so a broken endpoint never reads as
    one serving fewer keys. Keys of another C(use) are ignored, as the SPIFFE standard requires.
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

import os
import http.client
import ssl
import urllib.parse

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._spire import (
    SpireError, SpireServerCLI, local_authority_summary, server_argument_spec)
from ansible_collections.trustroot.ops.plugins.module_utils._spire_federation import bundle_pem
from ansible_collections.trustroot.ops.plugins.module_utils._spire_posture import (
    MAX_BUNDLE, agents_view, bundles_view, entries_view, parse_served, read_config, relationships, stored_keys)


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
    out['entries'] = entries_view(entries)
    out['agents'] = agents_view(agents)
    out['bundles'] = bundles_view(bundles)
    raw_by_domain = dict((b.get('trust_domain'), b) for b in bundles)
    for rel in rels:
        raw = raw_by_domain.get(rel['trust_domain']) or {}
        rel['stored_keys'] = stored_keys(raw)
        try:
            rel['served'] = fetch_served(rel, raw, module.params['fetch_timeout'])
        except (OSError, ValueError, ssl.SSLError, http.client.HTTPException) as err:
            rel['served'], rel['served_error'] = None, str(getattr(err, 'reason', None) or err)[:400]
    out['federations'] = rels
    out['local_authorities'] = {'x509': local_authority_summary(x509)}
    out['join_tokens'] = join_tokens(out['config'])
    module.exit_json(changed=False, posture=out)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: spire_entry_info
short_description: List SPIRE registration entries
version_added: 0.1.0
description:
  - Lists the registration entries of a SPIRE server (every page), optionally filtered the way
    C(spire-server entry show) filters them, or reads one entry by ID.
  - Entries are returned in the same shape that M(trustroot.ops.spire_entry) takes, so a result can be fed
    back to it.
  - Never changes anything.
options:
  entry_id:
    description:
      - Read the entry with this ID only. An ID that does not exist gives an empty list.
      - Cannot be combined with the other filters.
    type: str
  spiffe_id:
    description: Only entries with this SPIFFE ID (in the server's trust domain).
    type: str
  parent_id:
    description: Only entries with this parent ID (in the server's trust domain).
    type: str
  selectors:
    description: Only entries whose selectors match these C(type:value) selectors (see O(match)).
    type: list
    elements: str
  match:
    description:
      - How O(selectors) match an entry's selectors. V(exact) the same set; V(any) at least one in common;
        V(superset) the entry has all of them (SPIRE's default); V(subset) the entry has only some of them.
    type: str
    choices: [exact, any, superset, subset]
    default: superset
  federates_with:
    description: Only entries federated with these trust domains (V(other.example) or V(spiffe://other.example)).
    type: list
    elements: str
  match_federates_with:
    description: How O(federates_with) matches, with the same meanings as O(match).
    type: str
    choices: [exact, any, superset, subset]
    default: superset
  hint:
    description: Only entries with this hint.
    type: str
  downstream:
    description: Only entries for downstream SPIRE servers (V(true)). V(false) applies no filter.
    type: bool
    default: false
  entry_id_prefix:
    description: Only entries whose ID starts with C(<entry_id_prefix>.), the ones M(trustroot.ops.spire_entry)
      owns with that prefix. Applied after the server's filters.
    type: str
extends_documentation_fragment:
  - trustroot.ops.spire_server
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to compare.
author:
  - trustroot.ops maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Every entry of one agent
  trustroot.ops.spire_entry_info:
    parent_id: spiffe://example.org/spire/agent/x509pop/0a1b2c
  register: agent_entries

- name: Entries of workloads that run as uid 1001 on any agent
  trustroot.ops.spire_entry_info:
    selectors: ["unix:uid:1001"]
    match: any

- name: The entries the payments configuration owns
  trustroot.ops.spire_entry_info:
    entry_id_prefix: payments
  register: owned
'''

RETURN = r'''
entries:
  description: The matching entries, sorted by SPIFFE ID, parent ID and selectors.
  returned: always
  type: list
  elements: dict
  contains:
    entry_id: {description: ID of the entry., type: str, returned: always}
    spiffe_id: {description: SPIFFE ID., type: str, returned: always}
    parent_id: {description: Parent ID., type: str, returned: always}
    selectors: {description: "Selectors as C(type:value), sorted.", type: list, elements: str, returned: always}
    x509_svid_ttl: {description: X.509-SVID lifetime in seconds (0 is the server default)., type: int, returned: always}
    jwt_svid_ttl: {description: JWT-SVID lifetime in seconds (0 is the server default)., type: int, returned: always}
    federates_with: {description: Federated trust domains., type: list, elements: str, returned: always}
    dns_names: {description: DNS names., type: list, elements: str, returned: always}
    admin: {description: Administrative access., type: bool, returned: always}
    downstream: {description: Downstream SPIRE server., type: bool, returned: always}
    hint: {description: Hint., type: str, returned: always}
    store_svid: {description: Stored through an SVIDStore plugin., type: bool, returned: always}
    expires_at: {description: Expiry in seconds since the epoch (0 is never)., type: int, returned: always}
    disable_x509_svid_prefetch: {description: Agents do not prefetch its X.509-SVIDs., type: bool, returned: always}
    jwt_svid_include_jti: {description: JWT-SVIDs carry a jti claim., type: bool, returned: always}
    revision_number: {description: Revision of the entry., type: int, returned: always}
    created_at: {description: Creation time in seconds since the epoch., type: int, returned: always}
count:
  description: Number of entries returned.
  returned: always
  type: int
trust_domain:
  description: The server's trust domain.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import run_module
from ansible_collections.trustroot.ops.plugins.module_utils._spire_cli import server_trust_domain
from ansible_collections.trustroot.ops.plugins.module_utils._spire import (
    SpireError, SpireServerCLI, server_argument_spec)
from ansible_collections.trustroot.ops.plugins.module_utils._spire_entries import (
    EntryInputError, entry_id_error, key_of, normalize_current, owned, to_result)
from ansible_collections.trustroot.ops.plugins.module_utils._spiffe_id import (
    SpiffeError, check_spiffe_id, normalize_trust_domain, parse_selector)


def validate(params):
    """Input errors, before any call (the trust domain is checked once the server's is known)."""
    if params['entry_id'] is not None:
        error = entry_id_error(params['entry_id'])
        if error:
            raise EntryInputError('entry_id: %s' % error)
    if params['entry_id_prefix'] is not None:
        error = entry_id_error(params['entry_id_prefix'])
        if error:
            raise EntryInputError('entry_id_prefix: %s' % error)
    try:
        for name in ('spiffe_id', 'parent_id'):
            if params[name] is not None:
                check_spiffe_id(params[name], name)
        selectors = ['%s:%s' % parse_selector(s, 'selectors[%d]' % i) for i, s in enumerate(params['selectors'] or [])]
        federates = [normalize_trust_domain(t, 'federates_with[%d]' % i)
                     for i, t in enumerate(params['federates_with'] or [])]
    except SpiffeError as err:
        raise EntryInputError(str(err))
    return selectors, federates


def show_args(params, selectors, federates):
    """`entry show` arguments for the filters."""
    if params['entry_id'] is not None:
        return ['entry', 'show', '-entryID', params['entry_id']]
    args = ['entry', 'show']
    if params['spiffe_id']:
        args += ['-spiffeID', params['spiffe_id']]
    if params['parent_id']:
        args += ['-parentID', params['parent_id']]
    for selector in selectors:
        args += ['-selector', selector]
    if selectors:
        args += ['-matchSelectorsOn', params['match']]
    for name in federates:
        args += ['-federatesWith', 'spiffe://%s' % name]
    if federates:
        args += ['-matchFederatesWithOn', params['match_federates_with']]
    if params['hint']:
        args += ['-hint', params['hint']]
    if params['downstream']:
        args.append('-downstream')
    return args


def entry_view(raw):
    entry = normalize_current(raw)
    view = to_result(entry)
    view['revision_number'] = int(raw.get('revision_number') or 0)
    view['created_at'] = int(raw.get('created_at') or 0)
    return entry, view


def read_entries(cli, params, selectors, federates):
    """(sort key, entry ID, view) of every entry the query finds (an unknown entry_id finds none)."""
    if params['entry_id'] is not None:
        try:
            raws = cli.run_json(show_args(params, selectors, federates)).get('entries') or []
        except SpireError as err:
            if err.grpc_code != 'NotFound':
                raise
            raws = []
    else:
        raws = cli.stream_json_array(show_args(params, selectors, federates), 'entries')
    found = []
    for raw in raws:
        entry, view = entry_view(raw)
        if params['entry_id_prefix'] and not owned(entry.id, params['entry_id_prefix']):
            continue
        found.append((key_of(entry), entry.id, view))
    return found


def run(module):
    params = module.params
    selectors, federates = validate(params)
    cli = SpireServerCLI(module)
    trust_domain = server_trust_domain(cli)
    for name in ('spiffe_id', 'parent_id'):
        if params[name] is not None:
            check_spiffe_id(params[name], name, trust_domain=trust_domain)
    if trust_domain in federates:
        raise SpiffeError('federates_with: %s is the server\'s own trust domain' % trust_domain)
    found = sorted(read_entries(cli, params, selectors, federates), key=lambda item: (item[0], item[1]))
    entries = [view for key, entry_id, view in found]
    return dict(changed=False, entries=entries, count=len(entries), trust_domain=trust_domain)


def main():
    argument_spec = server_argument_spec()
    argument_spec.update(
        entry_id=dict(type='str'),
        spiffe_id=dict(type='str'),
        parent_id=dict(type='str'),
        selectors=dict(type='list', elements='str'),
        match=dict(type='str', choices=['exact', 'any', 'superset', 'subset'], default='superset'),
        federates_with=dict(type='list', elements='str'),
        match_federates_with=dict(type='str', choices=['exact', 'any', 'superset', 'subset'], default='superset'),
        hint=dict(type='str'),
        downstream=dict(type='bool', default=False),
        entry_id_prefix=dict(type='str'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('entry_id', 'spiffe_id'), ('entry_id', 'parent_id'),
                                               ('entry_id', 'selectors'), ('entry_id', 'federates_with'),
                                               ('entry_id', 'hint')])
    run_module(module, run)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: spire_bundle
short_description: Show a SPIRE server's trust bundle, set or delete a foreign trust domain's bundle
version_added: 0.1.0
description:
  - V(show) shows the server's own trust bundle (C(spire-server bundle show -output json)), or with O(trust_domain)
    the bundle the server holds for that foreign trust domain (C(bundle list -id)), as PEM or as a SPIFFE bundle
    (JWKS), with the authorities listed by ID.
  - V(present) stores O(bundle) as the bundle of the foreign O(trust_domain) (C(bundle set -id spiffe://<td>
    -format spiffe|pem), the bundle on standard input). It is idempotent by the authorities the bundles hold
    (X.509 certificates and JWT keys), not by their text, so formatting, key order, C(spiffe_refresh_hint) and
    C(spiffe_sequence) do not matter.
  - V(absent) deletes the foreign trust domain's bundle (C(bundle delete -mode)).
  - The server's own bundle cannot be set or deleted here (it changes through CA rotation, see
    M(trustroot.ops.spire_authority)); naming the server's own trust domain is an error.
  - This is how an C(https_spiffe) federation starts - each server needs the other's bundle before it can
    fetch it from the bundle endpoint - see M(trustroot.ops.spire_federation).
options:
  state:
    description: What to do.
    type: str
    choices: [show, present, absent]
    default: show
  trust_domain:
    description:
      - The foreign trust domain, as a name (V(other.example)) or a trust domain ID (V(spiffe://other.example)).
      - Required with V(present) and V(absent). With V(show), omit it for the server's own bundle.
    type: str
  bundle:
    description:
      - With V(present), the bundle, in O(format). A SPIFFE bundle may be given as JSON text or as a dictionary.
      - Mutually exclusive with O(bundle_path).
    type: raw
  bundle_path:
    description: With V(present), a file holding the bundle in O(format), on the host that runs the module.
    type: path
  format:
    description:
      - With V(present), the format of O(bundle). A PEM bundle holds X.509 authorities only, so setting one removes
        any JWT authorities the stored bundle had.
      - With V(show), the format of RV(bundle).
    type: str
    choices: [spiffe, pem]
    default: spiffe
  mode:
    description:
      - With V(absent), what SPIRE does with registration entries that federate with the trust domain.
      - V(restrict) refuses to delete a bundle that entries still federate with; V(dissociate) removes the
        association from those entries; V(delete) deletes those entries too.
    type: str
    choices: [restrict, dissociate, delete]
    default: restrict
extends_documentation_fragment:
  - trustroot.ops.spire_server
attributes:
  check_mode:
    support: full
    description: Reads the bundles and reports what would change.
  diff_mode:
    support: full
    description: The authorities (X.509 Subject Key IDs and JWT key IDs) before and after.
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Read server A's bundle
  trustroot.ops.spire_bundle:
    state: show
    format: spiffe
  register: bundle_a
  delegate_to: spire-a.example.org

- name: Bootstrap federation - store A's bundle on server B
  trustroot.ops.spire_bundle:
    state: present
    trust_domain: "{{ bundle_a.trust_domain }}"
    bundle: "{{ bundle_a.bundle }}"
    format: spiffe
  delegate_to: spire-b.example.org

- name: A foreign bundle from a PEM file
  trustroot.ops.spire_bundle:
    state: present
    trust_domain: partner.example
    bundle_path: /etc/spire/partner-ca.pem
    format: pem

- name: Forget a partner's bundle and every entry that federates with it
  trustroot.ops.spire_bundle:
    state: absent
    trust_domain: partner.example
    mode: delete
'''

RETURN = r'''
trust_domain:
  description: The trust domain of the bundle (the server's own with O(state=show) and no O(trust_domain)).
  returned: always
  type: str
found:
  description: Whether the server holds a bundle for the trust domain (before the task).
  returned: always
  type: bool
bundle:
  description:
    - With V(show), the bundle in O(format) (PEM text, or the SPIFFE bundle as JSON text); null when not found.
  returned: with O(state=show)
  type: str
x509_authorities:
  description: The bundle's X.509 authorities after the task (in check mode, as the server holds them now).
  returned: always
  type: list
  elements: dict
  contains:
    authority_id: {description: Subject Key ID of the CA certificate (SPIRE's X.509 authority ID)., type: str, returned: always}
    tainted: {description: Whether the authority is tainted., type: bool, returned: always}
    asn1: {description: Base64 of the DER certificate., type: str, returned: always}
jwt_authorities:
  description: The bundle's JWT authorities.
  returned: always
  type: list
  elements: dict
  contains:
    authority_id: {description: Key ID., type: str, returned: always}
    tainted: {description: Whether the key is tainted., type: bool, returned: always}
    expires_at: {description: Expiry in Unix seconds., type: int, returned: always}
    expires_at_iso: {description: Expiry as ISO 8601 UTC text., type: str, returned: always}
    public_key: {description: Base64 of the PKIX DER public key., type: str, returned: always}
sequence_number:
  description: The bundle's sequence number.
  returned: always
  type: int
'''

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._spire import (
    SpireError, SpireServerCLI, check_results, server_argument_spec)
from ansible_collections.trustroot.ops.plugins.module_utils._spire_federation import (
    DERError, InputError, authorities_from_input, authorities_from_proto, authorities_summary, bundle_pem, bundle_spiffe,
    bundle_view, normalize_trust_domain, same_authorities)


def read_foreign(cli, trust_domain):
    try:
        return cli.run_json(['bundle', 'list', '-id', 'spiffe://%s' % trust_domain])
    except SpireError as exc:
        if exc.grpc_code == 'NotFound':
            return None
        raise


def describe(result):
    return (result.get('bundle') or {}).get('trust_domain') or result.get('trust_domain') or 'bundle'


def bundle_text(module):
    """The desired bundle as text, loaded from O(bundle) or O(bundle_path); raises InputError."""
    params = module.params
    if params['bundle_path']:
        try:
            with open(params['bundle_path'], 'rb') as handle:
                return handle.read().decode('utf-8')
        except (IOError, OSError) as exc:
            raise InputError('bundle_path %s cannot be read: %s' % (params['bundle_path'], exc.strerror or exc))
        except UnicodeDecodeError:
            raise InputError('bundle_path %s is not UTF-8 text' % params['bundle_path'])
    value = params['bundle']
    if isinstance(value, (dict, list)):
        if params['format'] != 'spiffe':
            raise InputError('bundle is a dictionary, which only format=spiffe accepts')
        return json.dumps(value)
    if not isinstance(value, str) or not value.strip():
        raise InputError('bundle must be non-empty text (or a dictionary for format=spiffe)')
    return value


def view_result(proto):
    view = bundle_view(proto or {})
    return dict(x509_authorities=view['x509_authorities'], jwt_authorities=view['jwt_authorities'],
                sequence_number=view['sequence_number'])


def empty_view():
    return dict(x509_authorities=[], jwt_authorities=[], sequence_number=0)


def main():
    argument_spec = server_argument_spec()
    argument_spec.update(
        state=dict(type='str', choices=['show', 'present', 'absent'], default='show'),
        trust_domain=dict(type='str'),
        bundle=dict(type='raw'),
        bundle_path=dict(type='path'),
        format=dict(type='str', choices=['spiffe', 'pem'], default='spiffe'),
        mode=dict(type='str', choices=['restrict', 'dissociate', 'delete'], default='restrict'),
    )
    module = AnsibleModule(
        argument_spec=argument_spec, supports_check_mode=True,
        mutually_exclusive=[('bundle', 'bundle_path')],
        required_if=[('state', 'present', ['trust_domain']), ('state', 'present', ['bundle', 'bundle_path'], True),
                     ('state', 'absent', ['trust_domain'])])
    params = module.params
    state = params['state']
    desired = None
    try:
        trust_domain = normalize_trust_domain(params['trust_domain'], 'trust_domain') if params['trust_domain'] else None
        if state != 'present' and (params['bundle'] is not None or params['bundle_path']):
            raise InputError('bundle and bundle_path are only used with state=present')
        if state == 'present':
            desired = authorities_from_input(bundle_text(module), params['format'],
                                             'bundle_path' if params['bundle_path'] else 'bundle')
    except InputError as exc:
        module.fail_json(msg=str(exc))

    cli = SpireServerCLI(module)
    try:
        own = cli.run_json(['bundle', 'show'])
        own_td = own.get('trust_domain')
        if state == 'show':
            if trust_domain is None or trust_domain == own_td:
                proto = own
            else:
                proto = read_foreign(cli, trust_domain)
            result = dict(changed=False, trust_domain=trust_domain or own_td, found=proto is not None,
                          bundle=None, **(view_result(proto) if proto else empty_view()))
            if proto is not None:
                result['bundle'] = bundle_pem(proto) if params['format'] == 'pem' else json.dumps(
                    bundle_spiffe(proto), indent=4, sort_keys=False)
            module.exit_json(**result)

        if trust_domain == own_td:
            module.fail_json(msg='trust_domain %s is the server\'s own trust domain; spire_bundle sets and deletes '
                                 'foreign bundles only (the own bundle changes through CA rotation)' % trust_domain)
        current = read_foreign(cli, trust_domain)
        before = authorities_from_proto(current) if current is not None else None
        result = dict(changed=False, trust_domain=trust_domain, found=current is not None)
        if state == 'present':
            changed = not same_authorities(before, desired)
            after = desired
        else:
            changed = current is not None
            after = None
        result['changed'] = changed
        if module._diff:
            result['diff'] = {'before': {'trust_domain': trust_domain, 'authorities': authorities_summary(before)},
                              'after': {'trust_domain': trust_domain, 'authorities': authorities_summary(after)}}
        final = current
        if changed and not module.check_mode:
            if state == 'present':
                answer = cli.run_json(['bundle', 'set', '-id', 'spiffe://%s' % trust_domain,
                                       '-format', params['format']], data=bundle_text(module))
                check_results(answer.get('results') or [], describe)
                final = read_foreign(cli, trust_domain)
            else:
                answer = cli.run_json(['bundle', 'delete', '-id', 'spiffe://%s' % trust_domain,
                                       '-mode', params['mode']])
                check_results(answer.get('results') or [], describe)
                final = None
        result.update(view_result(final) if final is not None else empty_view())
    except InputError as exc:
        module.fail_json(msg=str(exc))
    except DERError as exc:
        module.fail_json(msg='the bundle holds a certificate or key this module cannot read: %s' % exc)
    except SpireError as exc:
        module.fail_json(msg=exc.message, failures=exc.failures)
    module.exit_json(**result)


if __name__ == '__main__':
    main()

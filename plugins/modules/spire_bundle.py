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


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._spire import SpireError, SpireServerCLI, server_argument_spec
from ansible_collections.trustroot.ops.plugins.module_utils._spire_federation_flows import bundle_text, converge_bundle, show_bundle
from ansible_collections.trustroot.ops.plugins.module_utils._spiffe_id import normalize_trust_domain
from ansible_collections.trustroot.ops.plugins.module_utils._der import DERError
from ansible_collections.trustroot.ops.plugins.module_utils._spire_federation import authorities_from_input


def run(module):
    params = module.params
    state = params['state']
    trust_domain = normalize_trust_domain(params['trust_domain'], 'trust_domain') if params['trust_domain'] else None
    if state != 'present' and (params['bundle'] is not None or params['bundle_path']):
        raise InputError('bundle and bundle_path are only used with state=present')
    try:
        desired = authorities_from_input(bundle_text(params), params['format'],
                                         'bundle_path' if params['bundle_path'] else 'bundle') \
            if state == 'present' else None
        cli = SpireServerCLI(module)
        own = cli.run_json(['bundle', 'show'])
        if state == 'show':
            return show_bundle(cli, own, trust_domain, params['format'])
        if trust_domain == own.get('trust_domain'):
            raise InputError('trust_domain %s is the server\'s own trust domain; spire_bundle sets and deletes '
                             'foreign bundles only (the own bundle changes through CA rotation)' % trust_domain)
        return converge_bundle(cli, params, trust_domain, desired, module.check_mode, module._diff)
    except DERError as exc:
        raise TrustrootError('the bundle holds a certificate or key this module cannot read: %s' % exc)
    except SpireError as exc:
        raise TrustrootError(exc.message, results=dict(failures=exc.failures))


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
    run_module(module, run)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: spire_federation
short_description: Declare a SPIRE server's federation relationships
version_added: 0.1.0
description:
  - Makes the server's dynamic federation relationships match O(relationships) - creates missing ones
    (C(spire-server federation create -data -)), updates changed ones (C(federation update -data -)) and, with
    O(prune), deletes relationships that are no longer wanted among the trust domains this task owns
    (O(managed_trust_domains)).
  - Relationships are read with C(federation list -output json) and compared by trust domain on the bundle
    endpoint URL, profile and endpoint SPIFFE ID.
  - With O(refresh), the server then fetches each relationship's bundle from its endpoint at once
    (C(federation refresh)) instead of waiting for the next scheduled refresh.
  - Every input (trust domains, URLs, SPIFFE IDs, bootstrap bundles) is checked before the first call to the server.
  - Relationships written in the server's configuration file (C(federates_with) blocks) are not listed by SPIRE and
    are never touched.
options:
  relationships:
    description: The relationships the server must have.
    type: list
    elements: dict
    default: []
    suboptions:
      trust_domain:
        description: The foreign trust domain (V(other.example) or V(spiffe://other.example)).
        type: str
        required: true
      bundle_endpoint_url:
        description: The foreign bundle endpoint, an C(https://) URL without user info.
        type: str
        required: true
      bundle_endpoint_profile:
        description:
          - V(https_spiffe) authenticates the endpoint with the foreign trust domain's own bundle (SPIRE to SPIRE).
          - V(https_web) authenticates it with the system's web PKI roots.
        type: str
        choices: [https_spiffe, https_web]
        default: https_spiffe
      endpoint_spiffe_id:
        description:
          - SPIFFE ID of the bundle endpoint server, usually C(spiffe://<trust domain>/spire/server).
          - Required with V(https_spiffe); not used with V(https_web).
        type: str
      trust_domain_bundle:
        description:
          - Bootstrap bundle of the foreign trust domain, in O(relationships[].trust_domain_bundle_format)
            (SPIFFE bundle JSON text or dictionary, or PEM). An V(https_spiffe) endpoint can only be reached once
            the server holds this bundle (or it was set with M(trustroot.ops.spire_bundle)).
          - Sent when the relationship is created, and when it is updated while the server holds no bundle for the
            trust domain. It is never compared afterwards - the bundle the server fetched from the endpoint is
            newer - and never overwrites it.
          - Mutually exclusive with O(relationships[].trust_domain_bundle_path).
        type: raw
      trust_domain_bundle_path:
        description: A file holding the bootstrap bundle, on the host that runs the module.
        type: path
      trust_domain_bundle_format:
        description: Format of the bootstrap bundle.
        type: str
        choices: [spiffe, pem]
        default: spiffe
  prune:
    description:
      - Delete relationships whose trust domain is in O(managed_trust_domains) and not in O(relationships).
      - Relationships with any other trust domain are never deleted.
    type: bool
    default: false
  managed_trust_domains:
    description:
      - The trust domains this task owns, required with O(prune). SPIRE relationships carry no labels, so ownership
        is declared here, next to O(relationships), in the same inventory or repository. Keep a trust domain listed
        here after removing its relationship, so that the next run deletes it.
      - A state file on the server was not chosen - it would be lost with a rebuilt host, differ between
        check mode and a real run, and hide ownership from a review of the inventory.
    type: list
    elements: str
    default: []
  refresh:
    description:
      - After the changes, refresh the bundle of every relationship in O(relationships) from its endpoint
        (C(federation refresh)). A refresh that fetched different authorities reports C(changed). Skipped in
        check mode.
      - A refresh fails when the endpoint cannot be reached or authenticated; the task then fails.
    type: bool
    default: false
extends_documentation_fragment:
  - trustroot.ops.spire_server
attributes:
  check_mode:
    support: full
    description: Reads the relationships and reports what would change; no refresh is run.
  diff_mode:
    support: full
    description: The relationships by trust domain (without bundles) before and after.
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Read B's bundle (bootstrap for https_spiffe)
  trustroot.ops.spire_bundle:
    state: show
  register: bundle_b
  delegate_to: spire-b.example.org

- name: Federate A with B
  trustroot.ops.spire_federation:
    relationships:
      - trust_domain: other.example
        bundle_endpoint_url: https://spire-b.example.org:8443
        bundle_endpoint_profile: https_spiffe
        endpoint_spiffe_id: spiffe://other.example/spire/server
        trust_domain_bundle: "{{ bundle_b.bundle }}"
    managed_trust_domains: [other.example, retired.example]
    prune: true
    refresh: true
  delegate_to: spire-a.example.org

- name: A web-PKI endpoint
  trustroot.ops.spire_federation:
    relationships:
      - trust_domain: partner.example
        bundle_endpoint_url: https://bundle.partner.example/
        bundle_endpoint_profile: https_web
'''

RETURN = r'''
relationships:
  description: The relationships after the task (predicted in check mode), without bundles.
  returned: always
  type: list
  elements: dict
  contains:
    trust_domain: {description: Foreign trust domain., type: str, returned: always}
    bundle_endpoint_url: {description: Bundle endpoint URL., type: str, returned: always}
    bundle_endpoint_profile: {description: V(https_spiffe) or V(https_web)., type: str, returned: always}
    endpoint_spiffe_id: {description: Endpoint SPIFFE ID (null for V(https_web))., type: str, returned: always}
created:
  description: Trust domains whose relationship was created (or would be, in check mode).
  returned: always
  type: list
  elements: str
updated:
  description: Trust domains whose relationship was updated (or would be).
  returned: always
  type: list
  elements: str
deleted:
  description: Trust domains whose relationship was deleted (or would be).
  returned: always
  type: list
  elements: str
bootstrapped:
  description: Existing relationships that had no bundle and received the bootstrap bundle.
  returned: always
  type: list
  elements: str
refreshed:
  description: Trust domains refreshed with O(refresh), each with whether its bundle changed.
  returned: always
  type: list
  elements: dict
  contains:
    trust_domain: {description: Foreign trust domain., type: str, returned: always}
    bundle_changed: {description: Whether the refresh fetched different authorities., type: bool, returned: always}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._spire import SpireServerCLI, server_argument_spec
from ansible_collections.trustroot.ops.plugins.module_utils._spiffe_id import normalize_trust_domain
from ansible_collections.trustroot.ops.plugins.module_utils._spire_federation import desired_relationships
from ansible_collections.trustroot.ops.plugins.module_utils._spire_federation_flows import (
    converge_federation, load_bundles)


def run(module):
    params = module.params
    items = load_bundles(params['relationships'])
    desired_relationships(items)  # every relationship checked, naming its field, before any call
    managed = [normalize_trust_domain(td, 'managed_trust_domains[%d]' % i)
               for i, td in enumerate(params['managed_trust_domains'])]
    if params['prune'] and not managed:
        raise InputError('managed_trust_domains is required with prune=true: it names the trust domains whose '
                         'relationships this task may delete')
    return converge_federation(SpireServerCLI(module), items, managed, prune=params['prune'], refresh=params['refresh'],
                               check_mode=module.check_mode, diff=module._diff)


def main():
    argument_spec = server_argument_spec()
    argument_spec.update(
        relationships=dict(type='list', elements='dict', default=[], options=dict(
            trust_domain=dict(type='str', required=True),
            bundle_endpoint_url=dict(type='str', required=True),
            bundle_endpoint_profile=dict(type='str', choices=['https_spiffe', 'https_web'], default='https_spiffe'),
            endpoint_spiffe_id=dict(type='str'),
            trust_domain_bundle=dict(type='raw'),
            trust_domain_bundle_path=dict(type='path'),
            trust_domain_bundle_format=dict(type='str', choices=['spiffe', 'pem'], default='spiffe'),
        )),
        prune=dict(type='bool', default=False),
        managed_trust_domains=dict(type='list', elements='str', default=[]),
        refresh=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, run)


if __name__ == '__main__':
    main()

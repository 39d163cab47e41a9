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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import run_module
from ansible_collections.trustroot.ops.plugins.module_utils._spire import SpireServerCLI, server_argument_spec
from ansible_collections.trustroot.ops.plugins.module_utils._spire_posture import read_posture


def _run(module):
    return dict(changed=False, posture=read_posture(SpireServerCLI(module), module.params))


def main():
    spec = server_argument_spec()
    spec.update(config_path=dict(type='path', default='/etc/spire/server/server.conf'),
                fetch_timeout=dict(type='int', default=10))
    run_module(AnsibleModule(argument_spec=spec, supports_check_mode=True), _run)


if __name__ == '__main__':
    main()

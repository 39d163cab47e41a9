#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: vault_posture_info
short_description: Read what the security posture check of a Vault / OpenBao cluster needs
version_added: 0.1.0
description:
  - Reads, never writes. With the token it lists the token accessors and looks each one up (root tokens are
    those whose policies hold C(root)), reads C(sys/audit), C(sys/storage/raft/autopilot/state) and
    C(sys/storage/raft/configuration). Without a token, from every node of O(nodes), it reads the seal status,
    the certificate the listener serves, which TLS versions the listener accepts, and whether C(sys/metrics)
    answers without a token.
  - Token accessors and token values are never returned; root tokens are described by display name, creation
    time and whether they are the token the module was given (the init material's, see O(token_is_init)).
  - Used by C(playbooks/posture.yml); the findings are made from this answer by C(trustroot.ops.posture_report).
options:
  nodes:
    description: API addresses of every node of the cluster (C(https://host:8200)); O(url) is read when not given.
    type: list
    elements: str
    default: []
  token_is_init:
    description: Whether O(token) is the root token of the init material (it is then reported as such, not as
      an outstanding root token).
    type: bool
    default: true
  material_path:
    description: The age-encrypted init material on the controller (its presence and mode are reported).
    type: path
  max_lookups:
    description: Stop looking up accessors after this many (a large cluster has many tokens).
    type: int
    default: 5000
extends_documentation_fragment:
  - trustroot.ops.vault_connection
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
- name: Read the cluster's posture facts
  trustroot.ops.vault_posture_info:
    url: https://vault1.example.org:8200
    nodes: [https://vault1.example.org:8200, https://vault2.example.org:8200, https://vault3.example.org:8200]
    token: "{{ root_token }}"
    ca_cert: /etc/ssl/vault-ca.crt
  delegate_to: localhost
  register: vault_posture
'''

RETURN = r'''
posture:
  description: The facts C(trustroot.ops.posture_report) judges.
  returned: always
  type: dict
  contains:
    root_tokens:
      description: Root tokens (display_name, creation_time, init); null when the accessors could not be listed.
      type: list
      elements: dict
    audit_devices:
      description: Enabled audit devices (path, type, file_path); null when sys/audit could not be read.
      type: list
      elements: dict
    seal:
      description: Seal type, threshold C(t) and shares C(n).
      type: dict
    autopilot:
      description: healthy, failure_tolerance, voters, servers (name -> healthy).
      type: dict
    raft_peers:
      description: Node IDs of the raft configuration.
      type: list
      elements: str
    tls:
      description: Per node URL, the served certificate's end (not_after_unix) and the TLS versions accepted.
      type: dict
    metrics:
      description: Per node URL, whether sys/metrics answers without a token.
      type: dict
    material:
      description: path, exists and mode of the init material file.
      type: dict
'''


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import run_module
from ansible_collections.trustroot.ops.plugins.module_utils._vault import connection_argument_spec, ensure_connection
from ansible_collections.trustroot.ops.plugins.module_utils._vault_posture import collect_posture


def run(module):
    ensure_connection(module)
    return dict(changed=False, posture=collect_posture(module.params))


def main():
    spec = connection_argument_spec()
    spec.update(nodes=dict(type='list', elements='str', default=[]), token_is_init=dict(type='bool', default=True),
                material_path=dict(type='path'), max_lookups=dict(type='int', default=5000))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run_module(module, run)


if __name__ == '__main__':
    main()

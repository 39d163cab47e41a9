#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: kubernetes_access
short_description: A least-privilege Kubernetes identity, and a kubeconfig for it, for a SPIRE or Vault server outside the cluster
version_added: 0.1.0
description:
  - Ensures a ServiceAccount and the RBAC objects that give it exactly the listed rules (a ClusterRole and
    ClusterRoleBinding for O(cluster_rules), a Role and RoleBinding per namespace for O(namespace_rules), bindings to
    existing ClusterRoles for O(cluster_roles)), and the ConfigMaps in O(config_maps).
  - Then writes a kubeconfig (O(kubeconfig_dest)) and/or a bare token file (O(token_dest)), mode 0600, holding a token
    of the ServiceAccount from the TokenRequest API. The token is renewed only when the one on disk is missing,
    unreadable, for another account or a re-created one, for other audiences or another server address, or
    expires within O(token_renew_before) seconds; otherwise the files are left as they are.
  - What a SPIRE server needs for C(k8s_psat) node attestation (create tokenreviews; get pods and nodes) and for
    the C(k8sbundle) notifier (get and patch one ConfigMap), or what Vault's Kubernetes auth needs to review tokens
    (the C(system:auth-delegator) ClusterRole). See the Kubernetes guide of this collection.
  - The token is never returned or logged. Objects are labelled C(app.kubernetes.io/managed-by=trustroot.ops).
author:
  - Trustroot maintainers (@trustroot)
extends_documentation_fragment:
  - trustroot.ops.kubernetes
attributes:
  check_mode:
    support: full
    description: Reports what would be created, updated or renewed and changes nothing.
  diff_mode:
    support: full
    description: Shows the RBAC objects before and after (never a token).
options:
  namespace:
    description: Namespace of the ServiceAccount; created when missing.
    type: str
    required: true
  service_account:
    description: Name of the ServiceAccount.
    type: str
    required: true
  name:
    description: Name of the roles and bindings; C(trustroot:<namespace>:<service_account>) when not given.
    type: str
  cluster_rules:
    description: Cluster-wide rules (a ClusterRole bound to the ServiceAccount).
    type: list
    elements: dict
    default: []
  namespace_rules:
    description:
      - Rules per namespace (a Role and RoleBinding in each), as dicts with C(namespace) and C(rules).
      - Each rule is a dict with C(api_groups) (default V([""])), C(resources), C(verbs) and optional C(resource_names).
    type: list
    elements: dict
    default: []
  cluster_roles:
    description: Existing ClusterRoles to bind the ServiceAccount to, for example V(system:auth-delegator).
    type: list
    elements: str
    default: []
  config_maps:
    description: ConfigMaps (dicts with C(namespace) and C(name)) created empty when missing; their data is never touched.
    type: list
    elements: dict
    default: []
  kubeconfig_dest:
    description: Path of a kubeconfig for the ServiceAccount (its token, the cluster CA embedded) on the host running the module.
    type: path
  token_dest:
    description: Path of a file holding only the token.
    type: path
  server:
    description: API server URL written into O(kubeconfig_dest), as the component reaches it; the admin kubeconfig's when not given.
    type: str
  token_audiences:
    description: Audiences of the token; the API server's default audience when empty.
    type: list
    elements: str
    default: []
  token_ttl:
    description: Lifetime asked for the token, in seconds. The API server may shorten it.
    type: int
    default: 2592000
  token_renew_before:
    description: Renew the token when it expires within this many seconds; a third of O(token_ttl) when not given.
    type: int
  state:
    description: V(absent) deletes the bindings, roles and ServiceAccount, and the files; ConfigMaps are kept.
    type: str
    choices: [present, absent]
    default: present
'''

EXAMPLES = r'''
- name: The SPIRE server's identity in the cluster (k8s_psat and the bundle ConfigMap)
  trustroot.ops.kubernetes_access:
    kubeconfig: /etc/trustroot/admin.kubeconfig
    namespace: spire
    service_account: spire-server
    cluster_rules:
      - {api_groups: [authentication.k8s.io], resources: [tokenreviews], verbs: [create]}
      - {api_groups: [""], resources: [pods, nodes], verbs: [get]}
    namespace_rules:
      - namespace: spire
        rules: [{resources: [configmaps], resource_names: [spire-bundle], verbs: [get, patch]}]
    config_maps: [{namespace: spire, name: spire-bundle}]
    kubeconfig_dest: /etc/trustroot/spire-server.kubeconfig
  delegate_to: localhost

- name: A token reviewer for Vault's Kubernetes auth
  trustroot.ops.kubernetes_access:
    namespace: vault-auth
    service_account: token-reviewer
    cluster_roles: [system:auth-delegator]
    token_dest: /etc/trustroot/vault-reviewer.jwt
  register: reviewer
'''

RETURN = r'''
service_account:
  description: The ServiceAccount (namespace, name, uid; uid is empty in check mode before it exists).
  returned: always
  type: dict
actions:
  description: What was (or in check mode would be) done, one line per object, and the token renewal with its reason.
  returned: always
  type: list
  elements: str
token_renewed:
  description: Whether a new token was written (feed it to vault_kubernetes_auth's token_reviewer_jwt_update).
  returned: always
  type: bool
token_expires_at:
  description: Expiry of the token on disk (RFC 3339), when a destination is set.
  returned: when a destination is set
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import run_module
from ansible_collections.trustroot.ops.plugins.module_utils._kubernetes import connection_options, ensure_kubernetes
from ansible_collections.trustroot.ops.plugins.module_utils._kubernetes_access import ensure_access


def run(module):
    ensure_kubernetes()
    return ensure_access(module.params, module.check_mode)


def main():
    argument_spec = connection_options()
    argument_spec.update(
        namespace=dict(type='str', required=True),
        service_account=dict(type='str', required=True),
        name=dict(type='str'),
        cluster_rules=dict(type='list', elements='dict', default=[]),
        namespace_rules=dict(type='list', elements='dict', default=[]),
        cluster_roles=dict(type='list', elements='str', default=[]),
        config_maps=dict(type='list', elements='dict', default=[]),
        kubeconfig_dest=dict(type='path'),
        token_dest=dict(type='path', no_log=False),
        server=dict(type='str'),
        token_audiences=dict(type='list', elements='str', default=[], no_log=False),
        token_ttl=dict(type='int', default=2592000, no_log=False),
        token_renew_before=dict(type='int', no_log=False),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, run)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: vault_kubernetes_auth
short_description: Declare the Kubernetes auth method of Vault / OpenBao - mount, configuration and roles
version_added: 0.1.0
description:
  - Makes the C(kubernetes) auth method at O(mount_point) what the task declares - enabled (O(state=present)) with
    its configuration (C(auth/<mount>/config)) and its roles (C(auth/<mount>/role/<name>)), or disabled
    (O(state=absent), which drops its configuration and roles with it).
  - Pods log in with their service account token at C(auth/<mount>/login); the server checks each token with the
    Kubernetes C(TokenReview) API, using O(token_reviewer_jwt) - the token of a service account bound to the
    C(system:auth-delegator) ClusterRole (the C(trustroot.ops.kubernetes_access) module makes one).
  - The configuration is written as a whole (the server replaces it on every write) - fields the task leaves out
    are compared with, and set to, the server's defaults. A role write is a merge - only the role fields the task
    sets are compared and sent; the others keep what the server has (its defaults for a new role).
  - The reviewer JWT is write-only - the server only tells whether one is set (C(token_reviewer_jwt_set)). It is
    written when the server has none, with every configuration write (a write without it would clear it), and on
    every run with O(token_reviewer_jwt_update=always). Pass V(always) when the token has just been renewed -
    C("{{ 'always' if access.token_renewed else 'on_create' }}") with the result of C(trustroot.ops.kubernetes_access).
  - Bad input (an unknown role field, an empty role name, a field of the wrong type) fails naming the field before
    any call. Every answer is checked - an unexpected body fails naming the node and the call.
  - Needs a token allowed to manage C(sys/auth/<mount>) and C(auth/<mount>/*) (a root token, or an admin policy).
options:
  mount_point:
    description: Path of the auth method, without slashes (V(kubernetes), V(k8s/prod)).
    type: str
    default: kubernetes
  state:
    description:
      - V(present) - enabled, configured, with the declared roles.
      - V(absent) - disabled. Its configuration and roles are deleted with it; tokens it issued are revoked.
    type: str
    choices: [present, absent]
    default: present
  kubernetes_host:
    description: Address of the Kubernetes API server as the Vault server reaches it (V(https://10.0.0.1:6443)). Required with O(state=present).
    type: str
  kubernetes_ca_cert:
    description:
      - PEM of the CA that signed the API server's certificate (the content, not a path - use a C(lookup('file', ...))).
      - OpenBao refuses a configuration with O(disable_local_ca_jwt=true) and no CA; the module fails before any call that changes something.
    type: str
  issuer:
    description: Issuer the service account tokens must carry, checked only when O(disable_iss_validation=false). Not given - none.
    type: str
  disable_iss_validation:
    description: Skip the issuer check. Not given - the server's default (V(true)).
    type: bool
  pem_keys:
    description: PEM public keys to check token signatures locally (instead of, before, the TokenReview). Not given - none.
    type: list
    elements: str
  disable_local_ca_jwt:
    description:
      - Do not read the CA and reviewer token from the pod's service account files. V(true) because the collection
        runs Vault outside the cluster; V(false) only for a server running in a pod of the cluster.
    type: bool
    default: true
  token_reviewer_jwt:
    description:
      - Token of a service account allowed to create C(TokenReview)s (bound to the C(system:auth-delegator)
        ClusterRole). Never logged, returned or shown in a diff.
      - Not given - none; the server then reviews each login with the client's own token (each client's service
        account then needs C(system:auth-delegator)). A server that has one is reconfigured without it.
    type: str
  token_reviewer_jwt_update:
    description:
      - V(on_create) - write the JWT when the server has none (and with any other configuration change).
      - V(always) - write it on every run (the task then always reports a change). Use it when the token is new.
    type: str
    choices: [on_create, always]
    default: on_create
  roles:
    description:
      - Roles, each a dictionary with C(name) (required), C(state) (V(present) or V(absent), default V(present)) and
        the role's fields - C(bound_service_account_names) and C(bound_service_account_namespaces) (lists, required
        for a present role; C(bound_service_account_namespace_selector) may replace the namespaces), C(audience),
        C(alias_name_source) (V(serviceaccount_uid) or V(serviceaccount_name)), C(token_policies),
        C(token_bound_cidrs) (lists), C(token_ttl), C(token_max_ttl), C(token_explicit_max_ttl), C(token_period)
        (seconds or V(30m), V(1h), V(2d)), C(token_num_uses), C(token_no_default_policy), C(token_strictly_bind_ip),
        C(token_type).
      - Only the fields given are compared and sent; lists are compared as sets.
    type: list
    elements: dict
    default: []
  purge_roles:
    description: Delete the roles of the method that O(roles) does not name.
    type: bool
    default: false
extends_documentation_fragment:
  - trustroot.ops.vault_connection
attributes:
  check_mode:
    support: full
    description: Reads the method, its configuration and roles, and reports the actions a run would take.
  diff_mode:
    support: full
    description: Whether the method is enabled, its configuration (without the JWT) and its roles, before and after.
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: A least-privilege token reviewer in the cluster
  trustroot.ops.kubernetes_access:
    kubeconfig: /etc/trustroot/admin.kubeconfig
    namespace: vault-auth
    service_account: token-reviewer
    cluster_roles: [system:auth-delegator]
    token_dest: /etc/trustroot/vault-reviewer.jwt
  register: access

- name: Kubernetes auth, one role for the app's pods
  trustroot.ops.vault_kubernetes_auth:
    url: https://vault.example.com:8200
    token: "{{ vault_admin_token }}"
    kubernetes_host: https://10.0.0.1:6443
    kubernetes_ca_cert: "{{ lookup('file', '/etc/trustroot/kubernetes-ca.crt') }}"
    token_reviewer_jwt: "{{ lookup('file', '/etc/trustroot/vault-reviewer.jwt') }}"
    token_reviewer_jwt_update: "{{ 'always' if access.token_renewed else 'on_create' }}"
    roles:
      - name: app
        bound_service_account_names: [app]
        bound_service_account_namespaces: [shop]
        audience: vault
        token_policies: [app-read]
        token_ttl: 1h
    purge_roles: true

- name: Disable a second mount
  trustroot.ops.vault_kubernetes_auth:
    url: https://vault.example.com:8200
    token: "{{ vault_admin_token }}"
    mount_point: k8s/old
    state: absent
'''

RETURN = r'''
flavour:
  description: C(openbao) or C(vault).
  returned: always
  type: str
mount_point:
  description: The method's path, without slashes.
  returned: always
  type: str
actions:
  description: What the run did (or would do in check mode) - C(action) (enable, configure, write, delete, disable), C(target) and C(reason).
  returned: always
  type: list
  elements: dict
token_reviewer_jwt_written:
  description: Whether the run wrote (or in check mode would write) the reviewer JWT.
  returned: always
  type: bool
enabled:
  description: Whether the method is enabled at the end (in check mode, would be).
  returned: always
  type: bool
config:
  description:
    - The configuration at the end (in check mode, as it would be), without the JWT - C(kubernetes_host),
      C(kubernetes_ca_cert), C(issuer), C(disable_iss_validation), C(pem_keys), C(disable_local_ca_jwt) and
      C(token_reviewer_jwt_set). Null when the method is not configured.
  returned: always
  type: dict
roles:
  description: The declared roles (all roles with O(purge_roles)) at the end, by name - the managed fields.
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._vault import (
    VaultError, VaultNode, connection_argument_spec, ensure_connection, require_url, require_token)
from ansible_collections.trustroot.ops.plugins.module_utils._vault_kubernetes_auth import (
    KubernetesAuthError, apply, check_jwt, check_mount, describe, normalize_config, normalize_roles, plan, read_state,
    state_after)

CONFIG_OPTIONS = ('kubernetes_host', 'kubernetes_ca_cert', 'issuer', 'disable_iss_validation', 'pem_keys',
                  'disable_local_ca_jwt')


def run(module):
    ensure_connection(module)
    require_url(module)
    params = module.params
    present = params['state'] == 'present'
    mount = check_mount(params['mount_point'])
    desired_roles = normalize_roles(params['roles']) if present else []
    desired_config = normalize_config(dict((k, params[k]) for k in CONFIG_OPTIONS)) if present else None
    jwt = check_jwt(params['token_reviewer_jwt']) if present else None
    node = VaultNode.from_params(params)
    require_token(node, 'manage the Kubernetes auth method')

    result = dict(changed=False, mount_point=mount, actions=[], token_reviewer_jwt_written=False)
    try:
        flavour = node.flavour()[0]
        result['flavour'] = flavour
        enabled, config, roles, names = read_state(node, mount, desired_roles, present and params['purge_roles'])
    except (VaultError, KubernetesAuthError) as exc:
        raise TrustrootError(str(exc), results=result)
    if present and flavour == 'openbao' and desired_config['disable_local_ca_jwt'] and \
            not desired_config['kubernetes_ca_cert']:
        raise TrustrootError('kubernetes_ca_cert is required: OpenBao refuses disable_local_ca_jwt=true without the '
                             'CA of the API server (give its PEM)', results=result)
    actions = plan(params['state'], enabled, desired_config, bool(jwt), params['token_reviewer_jwt_update'], config,
                   desired_roles, roles, names, params['purge_roles'])
    before = dict(enabled=enabled, config=config, roles=roles)
    after = state_after(params['state'], enabled, config, roles, actions, desired_config, jwt, desired_roles)
    result.update(actions=actions, changed=bool(actions), enabled=after['enabled'], config=after['config'],
                  roles=after['roles'],
                  token_reviewer_jwt_written=bool(jwt) and any(a['action'] == 'configure' for a in actions))
    if module._diff:
        result['diff'] = dict(before=before, after=after)
    if actions and not module.check_mode:
        try:
            apply(node, mount, actions, desired_config, jwt, desired_roles)
            if present:
                enabled, config, roles, _names = read_state(node, mount, desired_roles, params['purge_roles'])
                result.update(enabled=enabled, config=config, roles=roles)
        except (VaultError, KubernetesAuthError) as exc:
            raise TrustrootError('%s (actions: %s)' % (exc, describe(actions)), results=result)
        if module._diff:
            result['diff']['after'] = dict(enabled=result['enabled'], config=result['config'], roles=result['roles'])
    return result


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        mount_point=dict(type='str', default='kubernetes'),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        kubernetes_host=dict(type='str'),
        kubernetes_ca_cert=dict(type='str'),
        issuer=dict(type='str'),
        disable_iss_validation=dict(type='bool'),
        pem_keys=dict(type='list', elements='str', no_log=False),  # public keys
        disable_local_ca_jwt=dict(type='bool', default=True),
        token_reviewer_jwt=dict(type='str', no_log=True),
        token_reviewer_jwt_update=dict(type='str', choices=['on_create', 'always'], default='on_create'),
        roles=dict(type='list', elements='dict', default=[]),
        purge_roles=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, run)


if __name__ == '__main__':
    main()

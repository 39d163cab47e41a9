#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: vault_audit
short_description: Enable, change and disable Vault / OpenBao audit devices
version_added: 0.1.0
description:
  - Makes the audit devices of a server what the task declares - one device (O(path) and its fields) or a list
    (O(devices)), each C(present) or C(absent), of type C(file), C(syslog) or C(socket).
  - HashiCorp Vault, and OpenBao started with C(unsafe_allow_api_audit_creation = true) - through C(sys/audit).
    No server changes a device in place - a device whose type, description, C(local) or options differ is disabled
    then enabled again at the same path. Between the two calls requests are written only to the other devices (none
    when it is the only one), and the new device gets a new HMAC salt - values hashed before and after the change
    no longer compare equal (C(sys/audit-hash) answers with the new salt). If the enable fails, the old device is
    enabled again and the task fails.
  - OpenBao without that setting (the default from 2.3.2, CVE-2025-54997) creates devices only from C(audit)
    stanzas in its configuration, and never disables or changes a declared device through the API. When the
    devices already match, the task reports no change; otherwise it fails before any call that changes something,
    saying what is needed and giving the stanzas (RV(config_stanzas)) to declare on every node - the
    C(trustroot.ops.vault_server) role writes them.
  - The flavour comes from C(sys/seal-status); on OpenBao C(sys/config/state/sanitized) tells whether the API may
    create devices and which ones the configuration declares (a token with C(sudo) on it, such as a root token).
  - Needs a token with C(sudo) on C(sys/audit) (and C(sys/audit/*)).
options:
  path:
    description:
      - The device's path (C(file), C(audit/second)), without the trailing slash. Mutually exclusive with O(devices).
    type: str
  type:
    description: The device's type (required for a present device).
    type: str
    choices: [file, syslog, socket]
  description:
    description: The device's description. Not given - whatever the server has is kept (new devices - empty).
    type: str
  local:
    description: A local device (not replicated). Not given - whatever the server has is kept (new devices - false).
    type: bool
  options:
    description:
      - The device's options (C(file_path) for a file device, C(address) and C(socket_type) for a socket; C(mode),
        C(format), C(prefix), C(hmac_accessor), C(log_raw)...). Compared as a whole with the server's - values are
        sent as strings.
    type: dict
    default: {}
  state:
    description: Present or absent.
    type: str
    choices: [present, absent]
    default: present
  devices:
    description: Several devices, each with the keys above. Mutually exclusive with O(path).
    type: list
    elements: dict
  exclusive:
    description: With O(devices), disable every device the list does not name.
    type: bool
    default: false
extends_documentation_fragment:
  - trustroot.ops.vault_connection
attributes:
  check_mode:
    support: full
    description: Reads the devices and reports the actions a run would take.
  diff_mode:
    support: full
    description: Devices (path, type, description, local, options) before and after.
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: A file audit device (HashiCorp Vault, or OpenBao with unsafe_allow_api_audit_creation)
  trustroot.ops.vault_audit:
    url: https://vault.example.com:8200
    token: "{{ vault_admin_token }}"
    path: file
    type: file
    description: main audit file
    options:
      file_path: /var/log/vault/audit.log
      mode: "0600"

- name: Two file devices on two filesystems, nothing else
  trustroot.ops.vault_audit:
    url: https://vault.example.com:8200
    token: "{{ vault_admin_token }}"
    exclusive: true
    devices:
      - {path: file, type: file, options: {file_path: /var/log/vault/audit.log}}
      - {path: second, type: file, options: {file_path: /srv/audit/audit.log}}

- name: Check what OpenBao's configuration declares (fails with the stanzas to declare when it differs)
  trustroot.ops.vault_audit:
    url: https://bao.example.com:8200
    token: "{{ bao_root_token }}"
    path: file
    type: file
    options: {file_path: /var/log/openbao/audit.log, mode: "0600"}
  check_mode: true
'''

RETURN = r'''
flavour:
  description: C(openbao) or C(vault).
  returned: always
  type: str
api_allowed:
  description: Whether the server lets C(sys/audit) create devices.
  returned: always
  type: bool
declared:
  description: Paths of the devices the server configuration declares (OpenBao).
  returned: always
  type: list
  elements: str
actions:
  description: What the run did (or would do in check mode) - C(action) enable, disable or replace, C(path), C(reason).
  returned: always
  type: list
  elements: dict
devices:
  description: The devices at the end (in check mode, as they would be), by path - type, description, local, options.
  returned: always
  type: dict
config_stanzas:
  description: The OpenBao C(audit) stanzas that declare the present devices of the task.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._vault import (
    VaultError, VaultNode, connection_argument_spec, ensure_connection, require_url, require_token, shape_problem)
from ansible_collections.trustroot.ops.plugins.module_utils._vault_audit import (
    AUDIT_DEVICE, SANITIZED_CONFIG, AuditError, after, api_allowed, config_path_message, current_devices,
    declared_conflicts, declared_paths, describe, enable_payload, normalize_desired, plan, stanzas)

DEVICE_KEYS = ('path', 'type', 'description', 'local', 'options', 'state')
# What a server answers to every request, even reads, when it has audit devices and none of them can write.
BLOCKED_HINT = (' (a server whose audit devices all fail to write - a full disk - answers every request with '
                'HTTP 500 "internal error": if no audit device can write, free room for one)')


def failure(exc):
    return str(exc) + (BLOCKED_HINT if exc.status == 500 else '')


def read_devices(node):
    answer = node.call('GET', 'sys/audit', expect={})
    for key, entry in answer.items():
        if isinstance(entry, dict) and 'type' in entry:
            problem = shape_problem(entry, AUDIT_DEVICE, key)
            if problem:
                raise VaultError(node.url, 'GET sys/audit answered %s' % problem)
    return current_devices(answer)


def apply(node, actions, current):
    """Run the actions in order; a replace whose enable fails puts the old device back before failing."""
    for action in actions:
        path = 'sys/audit/' + action['path']
        if action['action'] in ('disable', 'replace'):
            node.call('DELETE', path)
        if action['action'] == 'disable':
            continue
        try:
            node.call('PUT', path, json=enable_payload(action['device']))
        except VaultError as exc:
            if action['action'] != 'replace':
                raise
            try:
                node.call('PUT', path, json=enable_payload(current[action['path']]))
                restored = 'the old device was enabled again'
            except VaultError as again:
                restored = 'enabling the old device again failed too (%s)' % again.reason
            raise VaultError(node.url, 'replacing audit device %s: %s; %s' % (action['path'], exc.reason, restored))


def run(module):
    ensure_connection(module)
    require_url(module)
    params = module.params
    given = params['devices'] if params['devices'] is not None else [dict((k, params[k]) for k in DEVICE_KEYS)]
    try:
        desired = normalize_desired(given)
    except AuditError as exc:
        raise InputError(str(exc) if params['devices'] is not None else str(exc).replace('devices[0].', ''))
    if params['exclusive'] and params['devices'] is None:
        raise InputError('exclusive needs devices (the full list of devices to keep)')
    node = VaultNode.from_params(module.params)
    require_token(node, 'read and manage audit devices')

    result = dict(changed=False, actions=[], config_stanzas=stanzas(desired), declared=[])
    try:
        flavour, _version, version_text = node.flavour()
        sanitized = node.call('GET', 'sys/config/state/sanitized', expect=SANITIZED_CONFIG) \
            if flavour == 'openbao' else {}
        current = read_devices(node)
    except VaultError as exc:
        raise TrustrootError(failure(exc), results=result)
    declared = declared_paths(sanitized)
    allowed = api_allowed(flavour, sanitized)
    actions = plan(desired, current, exclusive=params['exclusive'])
    result.update(flavour=flavour, api_allowed=allowed, declared=sorted(declared), actions=actions,
                  devices=after(current, actions) if actions else current)
    if module._diff:
        result['diff'] = dict(before=current, after=result['devices'])
    if not actions:
        return result
    if not allowed:
        result['devices'] = current
        raise TrustrootError(config_path_message(node.url, version_text, actions, declared), results=result)
    conflicts = declared_conflicts(actions, declared)
    if conflicts:
        result['devices'] = current
        raise TrustrootError('%s: these devices are declared in the server configuration and OpenBao does not '
                             'disable or change them through the API: %s. Change their audit stanzas on every node '
                             'instead, then SIGHUP or restart.' % (node.url, describe(conflicts)), results=result)
    result['changed'] = True
    if not module.check_mode:
        try:
            apply(node, actions, current)
            result['devices'] = read_devices(node)
        except VaultError as exc:
            raise TrustrootError(failure(exc), results=result)
        if module._diff:
            result['diff']['after'] = result['devices']
    return result


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        path=dict(type='str'),
        type=dict(type='str', choices=['file', 'syslog', 'socket']),
        description=dict(type='str'),
        local=dict(type='bool'),
        options=dict(type='dict', default={}),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        devices=dict(type='list', elements='dict'),
        exclusive=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('path', 'devices')], required_one_of=[('path', 'devices')])
    run_module(module, run)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: spire_authority
short_description: Rotate a SPIRE server's X.509 CA and JWT key step by step (prepare, activate, taint, revoke)
version_added: 0.1.0
description:
  - Drives SPIRE's forced rotation of a local authority (C(spire-server localauthority x509|jwt ...)), one step per
    task, each step idempotent against the state read from C(localauthority <type> show -output json) and from the
    server's bundle (C(bundle show -output json)).
  - "V(show): read only. Returns the active, prepared and old authorities and the bundle's authorities."
  - "V(prepared): a new authority is prepared and added to the bundle. Nothing happens when one is already prepared."
  - >-
    V(activated): the prepared authority becomes active and signs from now on; the authority it replaces becomes
    the old one. Nothing happens when O(authority_id) is already active, or, without O(authority_id), when
    nothing is prepared but an old authority shows that activation already happened. Otherwise activating
    anything but the prepared authority is an error.
  - >-
    V(tainted): the old authority is marked tainted in the bundle; agents and downstream servers then rotate
    away from every SVID it signed. Nothing happens when it is already tainted (or already revoked). Tainting
    the active or prepared authority is an error.
  - >-
    V(revoked): the old, tainted authority is removed from the bundle; SVIDs it signed are no longer trusted.
    Nothing happens when it is already gone. Revoking an authority that is not tainted is an error.
  - With O(upstream_subject_key_id), V(tainted) and V(revoked) act on the upstream CA that signed the old local
    X.509 authority (C(spire-server upstreamauthority taint|revoke -subjectKeyID)), for servers with an
    UpstreamAuthority, where local X.509 authorities cannot be tainted or revoked.
  - >-
    SPIRE has no completion signal. With O(wait), the module polls C(bundle show -output json) until the bundle
    shows the step - the new authority present after V(prepared), the C(tainted) flag after V(tainted), the
    authority gone after V(revoked). Agents and downstream servers need time after each step too (at least one
    SVID renewal): pace the steps accordingly.
  - Each server of an HA deployment has its own X.509 CA and JWT key; rotate each server with its own socket.
options:
  authority_type:
    description: Which local authority to act on.
    type: str
    choices: [x509, jwt]
    default: x509
  state:
    description: The rotation step to reach (see the description).
    type: str
    choices: [show, prepared, activated, tainted, revoked]
    default: show
  authority_id:
    description:
      - Pins the step to one authority (for X.509 the CA certificate's Subject Key ID in lowercase hex, for JWT the
        key ID), as returned by an earlier step. When the server's state does not match, the task fails.
      - When omitted, V(activated) acts on the prepared authority, V(tainted) and V(revoked) on the old one.
      - Not used with V(show) and V(prepared).
    type: str
  upstream_subject_key_id:
    description:
      - Subject Key ID (hex) of the upstream CA that signed the old local X.509 authority; with V(tainted) or
        V(revoked) the step acts on that upstream authority.
    type: str
  wait:
    description: Poll the bundle until it shows the step (see the description).
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait with O(wait) before failing.
    type: int
    default: 60
extends_documentation_fragment:
  - trustroot.ops.spire_server
attributes:
  check_mode:
    support: full
    description: Reads the state and reports the step that would run (a new authority's ID is not known yet).
  diff_mode:
    support: full
    description: The authority states (active, prepared, old and the bundle's authorities) before and after.
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Prepare a new X.509 CA and wait until the bundle has it
  trustroot.ops.spire_authority:
    authority_type: x509
    state: prepared
    wait: true
  register: prepared

- name: Give agents and downstream servers time to fetch the new bundle
  ansible.builtin.pause:
    minutes: 10

- name: Activate it
  trustroot.ops.spire_authority:
    authority_type: x509
    state: activated
    authority_id: "{{ prepared.authority_id }}"

- name: Taint the previous CA (agents rotate their SVIDs away from it)
  trustroot.ops.spire_authority:
    authority_type: x509
    state: tainted
    wait: true
  register: tainted

- name: Revoke it once every SVID has rotated
  trustroot.ops.spire_authority:
    authority_type: x509
    state: revoked
    authority_id: "{{ tainted.authority_id }}"
    wait: true

- name: Same for the JWT key
  trustroot.ops.spire_authority:
    authority_type: jwt
    state: "{{ item }}"
    wait: true
  loop: [prepared, activated, tainted, revoked]
'''

RETURN = r'''
authority_id:
  description:
    - The authority the step acted on (or would act on); for V(prepared) the new authority's ID (null in check mode
      when nothing is prepared yet); for V(show) the active authority's ID.
  returned: always
  type: str
action:
  description: The C(spire-server) step that ran (or would run) - V(prepare), V(activate), V(taint), V(revoke) - or null.
  returned: always
  type: str
note:
  description: Why nothing had to change, when nothing did.
  returned: always
  type: str
active:
  description: The active authority after the task.
  returned: always
  type: dict
  contains:
    authority_id: {description: Authority ID., type: str, returned: always}
    expires_at: {description: Expiry in Unix seconds., type: int, returned: always}
    expires_at_iso: {description: Expiry as ISO 8601 UTC text., type: str, returned: always}
    upstream_authority_subject_key_id: {description: Subject Key ID of the upstream CA that signed it (X.509)., type: str, returned: always}
    in_bundle: {description: Whether the bundle holds it., type: bool, returned: always}
    tainted: {description: Whether it is tainted in the bundle., type: bool, returned: always}
prepared:
  description: The prepared authority after the task, or null (same keys as RV(active)).
  returned: always
  type: dict
old:
  description: The old authority (the one the last activation replaced) after the task, or null (same keys as RV(active)).
  returned: always
  type: dict
bundle_authorities:
  description: The bundle's authorities of O(authority_type) after the task.
  returned: always
  type: list
  elements: dict
  contains:
    authority_id: {description: Authority ID (X.509 Subject Key ID or JWT key ID)., type: str, returned: always}
    tainted: {description: Whether it is tainted., type: bool, returned: always}
waited:
  description: Seconds spent waiting for the bundle with O(wait).
  returned: always
  type: float
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._spire import (
    SpireError, SpireServerCLI, server_argument_spec)
from ansible_collections.trustroot.ops.plugins.module_utils._spire_authority import (
    authority_state, bundle_authorities, command, plan_step, plan_upstream_step, predicted_summary, step_visible,
    summary)
from ansible_collections.trustroot.ops.plugins.module_utils._errors import run_module
from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError

STEP_OF_STATE = {'prepared': 'prepare', 'activated': 'activate', 'tainted': 'taint', 'revoked': 'revoke'}
ANSWER_KEYS = {'prepare': 'prepared_authority', 'activate': 'activated_authority'}
POLL_INTERVAL = 0.5


def read_state(cli, kind):
    show = cli.run_json(['localauthority', kind, 'show'])
    return authority_state(show, cli.run_json(['bundle', 'show']), kind)


def wait_for_bundle(module, cli, kind, step, authority_id):
    started = time.monotonic()
    deadline = started + module.params['wait_timeout']
    while True:
        bundle = bundle_authorities(cli.run_json(['bundle', 'show']), kind)
        if step_visible(step, authority_id, bundle):
            return round(time.monotonic() - started, 2)
        if time.monotonic() >= deadline:
            raise SpireError('the bundle did not show the %s of %s authority %s within wait_timeout=%ss'
                             % (step, kind, authority_id, module.params['wait_timeout']))
        time.sleep(POLL_INTERVAL)


def run(module):
    params = module.params
    kind, state = params['authority_type'], params['state']
    upstream = params['upstream_subject_key_id'] is not None
    if params['authority_id'] is not None and (not params['authority_id'].strip() or state == 'show'):
        raise InputError('authority_id must be a non-empty authority ID, used with state activated, tainted '
                         'or revoked')
    if upstream and (kind != 'x509' or state not in ('tainted', 'revoked')):
        raise InputError('upstream_subject_key_id is used with authority_type=x509 and state tainted or revoked')
    if params['wait_timeout'] < 1:
        raise InputError('wait_timeout must be at least 1 second')

    cli = SpireServerCLI(module)
    before = read_state(cli, kind)
    if upstream:
        plan = plan_upstream_step(state, before, params['upstream_subject_key_id'])
    else:
        plan = plan_step(state, before, params['authority_id'])
    action, target = plan['action'], plan['authority_id']
    if state == 'show':
        target = before['active']['authority_id']
    result = dict(changed=action is not None, action=action, authority_id=target, note=plan['note'],
                  waited=0.0)
    after = before
    if action and module.check_mode:
        predicted = predicted_summary(before, plan)
        if module._diff:
            result['diff'] = {'before': summary(before), 'after': predicted}
    else:
        if action:
            answer = cli.run_json(command(kind, action, target, upstream=upstream))
            if action in ANSWER_KEYS:
                target = (answer.get(ANSWER_KEYS[action]) or {}).get('authority_id') or target
                result['authority_id'] = target
        step = STEP_OF_STATE.get(state)
        if params['wait'] and step and target:
            result['waited'] = wait_for_bundle(module, cli, kind, step, target)
        after = read_state(cli, kind)
        if module._diff:
            result['diff'] = {'before': summary(before), 'after': summary(after)}
    result.update(active=after['active'], prepared=after['prepared'], old=after['old'],
                  bundle_authorities=after['bundle'])
    return result


def main():
    argument_spec = server_argument_spec()
    argument_spec.update(
        authority_type=dict(type='str', choices=['x509', 'jwt'], default='x509'),
        state=dict(type='str', choices=['show', 'prepared', 'activated', 'tainted', 'revoked'], default='show'),
        authority_id=dict(type='str'),
        upstream_subject_key_id=dict(type='str'),
        wait=dict(type='bool', default=False),
        wait_timeout=dict(type='int', default=60),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('authority_id', 'upstream_subject_key_id')])
    run_module(module, run)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: vault_keyring_rotate
short_description: Rotate the Vault / OpenBao barrier encryption key
version_added: 0.1.0
description:
  - Adds a new encryption key to the keyring (HashiCorp Vault C(sys/rotate), OpenBao
    C(sys/rotate/keyring)), and reports the key term before and after.
  - With O(min_age), the key is rotated only when the current one is at least that old, so the task can
    run on a schedule and re-runs do not rotate again.
  - Needs a token with C(update) on the rotate path and C(read) on C(sys/key-status).
options:
  min_age:
    description:
      - Rotate only when the current key is at least this old. A number of seconds, or a number with a
        unit C(s), C(m), C(h), C(d), C(w) (V(90d)). Without it every run rotates.
    type: str
extends_documentation_fragment:
  - trustroot.ops.vault_connection
attributes:
  check_mode:
    support: full
    description: Reads the key status and reports whether a rotation is due.
  diff_mode:
    support: full
    description: Shows the key term before and after.
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Rotate the encryption key every 30 days
  trustroot.ops.vault_keyring_rotate:
    url: https://vault.example.com:8200
    token: "{{ vault_admin_token }}"
    min_age: 30d
'''

RETURN = r'''
term_before:
  description: Key term before the run.
  returned: always
  type: int
term:
  description: Key term at the end (unchanged in check mode).
  returned: always
  type: int
install_time:
  description: When the current key was installed.
  returned: always
  type: str
key_age_seconds:
  description: Age of the key that was current when the module started.
  returned: always
  type: int
rotated:
  description: A new key was installed by this run.
  returned: always
  type: bool
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._vault import (
    VaultError, VaultNode, connection_argument_spec, ensure_connection, require_url, keyring_rotate_path, require_token)
from ansible_collections.trustroot.ops.plugins.module_utils._vault_keyring import (
    KEY_STATUS, key_age_seconds, parse_duration, rotation_due, rotation_seen)

# How long the node asked may take to show the new term (a standby learns it from the active node).
SEEN_TIMEOUT_S = 15


def wait_for_new_term(node, before):
    """sys/key-status once the rotation shows (a standby forwarding it can lag for a moment)."""
    after = node.call('GET', 'sys/key-status', expect=KEY_STATUS)
    deadline = time.monotonic() + SEEN_TIMEOUT_S
    while not rotation_seen(before, after) and time.monotonic() < deadline:
        time.sleep(0.2)
        after = node.call('GET', 'sys/key-status', expect=KEY_STATUS)
    return after


def run(module):
    ensure_connection(module)
    require_url(module)
    min_age = None
    if module.params['min_age'] is not None:
        try:
            min_age = parse_duration(module.params['min_age'])
        except ValueError as exc:
            raise InputError('min_age %s' % exc)
    node = VaultNode.from_params(module.params)
    require_token(node, 'rotate the encryption key')

    flavour = node.flavour()[0]
    before = node.call('GET', 'sys/key-status', expect=KEY_STATUS)
    result = dict(changed=False, rotated=False, term_before=before['term'], term=before['term'],
                  install_time=before['install_time'], key_age_seconds=int(key_age_seconds(before['install_time'])))
    if not rotation_due(before, min_age):
        return result

    result['changed'] = True
    if not module.check_mode:
        try:
            node.call('PUT', keyring_rotate_path(flavour))
            after = wait_for_new_term(node, before)
        except VaultError as exc:
            raise TrustrootError(str(exc), results=result)
        if not rotation_seen(before, after):
            raise TrustrootError('%s: %s answered, but sys/key-status still reports term %s after %d s' % (
                node.url, keyring_rotate_path(flavour), after['term'], SEEN_TIMEOUT_S), results=result)
        result.update(rotated=True, term=after['term'], install_time=after['install_time'])
    if module._diff:
        result['diff'] = {'before': {'term': before['term']},
                          'after': {'term': result['term'] if result['rotated'] else before['term'] + 1}}
    return result


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(min_age=dict(type='str'))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, run)


if __name__ == '__main__':
    main()

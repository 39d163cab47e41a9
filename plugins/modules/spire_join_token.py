#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: spire_join_token
short_description: Generate a SPIRE join token for attesting an agent
version_added: 0.1.0
description:
  - Generates a single-use join token with C(spire-server token generate -output json). An agent started with
    the token (C(spire-agent run -joinTokenFile <file>)) attests once; the token is then consumed.
  - >-
    B(A join token is always a new action): every run generates a new token and reports C(changed=true).
    There is nothing to compare with, so the module is not idempotent by design.
  - >-
    B(The token is a secret.) It is returned only in RV(token), never in C(msg) or any other field. Ansible cannot
    hide one return value of a module, so B(every task that registers this module must set) C(no_log: true);
    otherwise the token appears in the output at C(-v) and in callback plugins and logs.
  - >-
    To avoid registering the token at all, set O(output_path): the token is written to that file (mode 0600,
    written whole or not at all) on the host that runs the module, and RV(token) is then null.
  - With O(spiffe_id), SPIRE also creates a registration entry that gives the agent that SPIFFE ID as an alias; that
    entry's parent ID, like the agent's own SPIFFE ID after attestation
    (C(spiffe://<trust domain>/spire/agent/join_token/<token>)), contains the token. Once consumed or expired the
    token cannot attest anything.
options:
  spiffe_id:
    description:
      - Optional SPIFFE ID to assign to the agent that uses the token, in the server's trust domain and not under
        the reserved C(/spire/) path.
    type: str
  ttl:
    description: Seconds the token stays valid (1 to 2147483647).
    type: int
    default: 600
  output_path:
    description:
      - Write the token (followed by a newline) to this file, mode 0600, replacing it atomically; RV(token) is then
        null. The file is on the host that runs the module (usually the SPIRE server).
      - The directory must exist and be writable; this is checked before the token is generated.
    type: path
extends_documentation_fragment:
  - trustroot.ops.spire_server
attributes:
  check_mode:
    support: full
    description: Generates nothing and writes nothing; reports C(changed=true) with RV(token) null.
  diff_mode:
    support: none
    description: A join token has no before and after.
notes:
  - "Tasks registering this module must set C(no_log: true) (see the description)."
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Generate a join token for a new node (never log it)
  trustroot.ops.spire_join_token:
    spiffe_id: spiffe://example.org/node/web-1
    ttl: 900
  register: join
  no_log: true

- name: Hand it to the agent host, then start the agent with -joinTokenFile
  ansible.builtin.copy:
    content: "{{ join.token }}\n"
    dest: /etc/spire/agent/join-token
    mode: "0600"
  delegate_to: web-1.example.org
  no_log: true

- name: Or write it to a file on the server and never register it
  trustroot.ops.spire_join_token:
    ttl: 600
    output_path: /var/lib/spire/tokens/web-2.token
'''

RETURN = r'''
token:
  description:
    - B(Secret.) The join token. Null in check mode and when O(output_path) is set.
    - "Register this module only in a task with C(no_log: true)."
  returned: always
  type: str
expires_at:
  description: Expiry of the token in Unix seconds (0 in check mode).
  returned: always
  type: int
expires_at_iso:
  description: The same expiry as ISO 8601 UTC text (null in check mode).
  returned: always
  type: str
spiffe_id:
  description: The SPIFFE ID assigned to the agent that uses the token, when O(spiffe_id) was given.
  returned: always
  type: str
output_path:
  description: The file the token was written to (null when O(output_path) is not set or in check mode).
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._files import atomic_write, check_writable_target
from ansible_collections.trustroot.ops.plugins.module_utils._spire_cli import server_trust_domain
from ansible_collections.trustroot.ops.plugins.module_utils._spire import (
    SpireError, SpireServerCLI, server_argument_spec)
from ansible_collections.trustroot.ops.plugins.module_utils._spire_agents import (
    check_token_spiffe_id, check_token_ttl, token_view)
from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError
from ansible_collections.trustroot.ops.plugins.module_utils._spire_federation import iso_time


def run(module):
    params = module.params
    check_token_ttl(params['ttl'])
    if params['spiffe_id']:
        check_token_spiffe_id(params['spiffe_id'])
    if params['output_path']:
        reason = check_writable_target(params['output_path'])
        if reason:
            raise InputError('output_path cannot be written: %s' % reason)

    result = dict(changed=True, token=None, expires_at=0, expires_at_iso=None, spiffe_id=params['spiffe_id'],
                  output_path=None)
    cli = SpireServerCLI(module)
    if params['spiffe_id']:
        trust_domain = server_trust_domain(cli)
        check_token_spiffe_id(params['spiffe_id'], trust_domain)
    if module.check_mode:
        return result
    args = ['token', 'generate', '-ttl', str(params['ttl'])]
    if params['spiffe_id']:
        args += ['-spiffeID', params['spiffe_id']]
    token, expires_at = token_view(cli.run_json(args))
    if not token:
        raise SpireError('spire-server token generate returned no token')
    result.update(expires_at=expires_at, expires_at_iso=iso_time(expires_at))
    if params['output_path']:
        try:
            atomic_write(params['output_path'], (token + '\n').encode('ascii'))
        except (IOError, OSError) as exc:
            raise TrustrootError('output_path %s could not be written (%s); the token generated is unused and '
                                 'expires at %s' % (params['output_path'], exc.strerror or exc, iso_time(expires_at)),
                                 results=result)
        result['output_path'] = params['output_path']
    else:
        result['token'] = token
    return result


def main():
    argument_spec = server_argument_spec()
    argument_spec.update(
        spiffe_id=dict(type='str'),
        ttl=dict(type='int', default=600),
        output_path=dict(type='path'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, run)


if __name__ == '__main__':
    main()

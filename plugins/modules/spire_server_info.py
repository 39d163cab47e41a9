#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: spire_server_info
short_description: Read the health, trust domain, authorities and counts of a SPIRE server
version_added: 0.1.0
description:
  - Runs C(spire-server healthcheck), C(spire-server --version), C(bundle show), C(localauthority x509 show),
    C(localauthority jwt show), C(entry count) and C(agent count) against one server.
  - The expiry of each X.509 authority of the bundle is read from its certificate.
  - Never changes anything. A server that does not answer is reported (RV(reachable=false), RV(error)),
    not a task failure, unless O(fail_on_unhealthy=true).
options:
  fail_on_unhealthy:
    description: Fail the task when the server is unreachable or its health check fails.
    type: bool
    default: false
extends_documentation_fragment:
  - trustroot.ops.spire_server
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to compare.
author:
  - trustroot.ops maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Read the server's state
  trustroot.ops.spire_server_info:
    socket_path: /run/spire/server/private/api.sock
  register: spire

- name: Stop when the X.509 authority expires within a week
  ansible.builtin.assert:
    that:
      - spire.healthy
      - (spire.local_authorities.x509.active.expires_at_unix - now(utc=true).timestamp()) > 604800
'''

RETURN = r'''
reachable:
  description: Whether the server answered on O(socket_path).
  returned: always
  type: bool
healthy:
  description: Whether C(spire-server healthcheck) succeeded.
  returned: always
  type: bool
error:
  description: Why the server could not be read, when it could not.
  returned: always
  type: str
version:
  description: Version printed by C(spire-server --version) (the binary used).
  returned: always
  type: str
  sample: 1.15.3
trust_domain:
  description: The server's trust domain.
  returned: when reachable
  type: str
  sample: example.org
bundle:
  description: The server's own trust bundle.
  returned: when reachable
  type: dict
  contains:
    sequence_number: {description: Sequence number of the bundle., type: int, returned: always}
    refresh_hint: {description: Refresh hint in seconds (0 when unset)., type: int, returned: always}
    x509_authorities:
      description: X.509 authorities (CA certificates).
      type: list
      elements: dict
      returned: always
      contains:
        tainted: {description: Whether the authority is tainted., type: bool, returned: always}
        not_before: {description: Start of validity (ISO 8601 UTC)., type: str, returned: always}
        not_after: {description: End of validity (ISO 8601 UTC)., type: str, returned: always}
        not_after_unix: {description: End of validity in seconds since the epoch., type: int, returned: always}
        not_before_unix: {description: Start of validity in seconds since the epoch., type: int, returned: always}
        serial: {description: Serial number (decimal)., type: str, returned: always}
        subject_key_id: {description: Subject key identifier (hex); the local authority ID., type: str,
                         returned: always}
    jwt_authorities:
      description: JWT authorities.
      type: list
      elements: dict
      returned: always
      contains:
        key_id: {description: Key ID., type: str, returned: always}
        tainted: {description: Whether the authority is tainted., type: bool, returned: always}
        expires_at: {description: Expiry (ISO 8601 UTC)., type: str, returned: always}
        expires_at_unix: {description: Expiry in seconds since the epoch., type: int, returned: always}
local_authorities:
  description:
    - The local X.509 and JWT authorities (C(localauthority x509|jwt show)), each with its V(active),
      V(prepared) and V(old) slot (null when empty), each slot with C(authority_id), C(expires_at),
      C(expires_at_unix) and C(upstream_authority_subject_key_id).
  returned: when reachable
  type: dict
  sample:
    x509:
      active: {authority_id: 30762d84180a2109071c1b0e0a656ae6a5587a8c, expires_at: "2026-11-23T11:32:42Z",
               expires_at_unix: 1795433562, upstream_authority_subject_key_id: null}
      prepared: null
      old: null
    jwt:
      active: {authority_id: m6gqi7s65gqmqEil1rfyolZ6qfskRAfh, expires_at: "2026-11-23T11:32:42Z",
               expires_at_unix: 1795433562, upstream_authority_subject_key_id: null}
      prepared: null
      old: null
entry_count:
  description: Number of registration entries.
  returned: when reachable
  type: int
agent_count:
  description: Number of attested agents.
  returned: when reachable
  type: int
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._spire import (
    SpireError, SpireServerCLI, bundle_summary, clean_stderr, local_authority_summary, looks_unreachable,
    server_argument_spec)


def read_version(cli):
    rc, out, err = cli.run_bare(['--version'])
    text = (out.strip() or err.strip()).splitlines()
    return text[-1].strip() if rc == 0 and text else None


def read_server(cli):
    """Everything spire_server_info returns, read from one server."""
    result = {'reachable': False, 'healthy': False, 'error': None, 'version': read_version(cli)}
    rc, out, err = cli.run_plain(['healthcheck'])
    if rc != 0:
        text = clean_stderr(err) or clean_stderr(out) or 'exit status %d' % rc
        result['reachable'] = not looks_unreachable(text)
        result['error'] = 'health check failed on socket_path %s: %s' % (cli.socket_path, text)
        if not result['reachable']:
            return result
    else:
        result['reachable'] = result['healthy'] = True
    try:
        bundle = bundle_summary(cli.run_json(['bundle', 'show']))
        result['trust_domain'] = bundle.pop('trust_domain')
        result['bundle'] = bundle
        result['local_authorities'] = {
            'x509': local_authority_summary(cli.run_json(['localauthority', 'x509', 'show'])),
            'jwt': local_authority_summary(cli.run_json(['localauthority', 'jwt', 'show'])),
        }
        result['entry_count'] = int(cli.run_json(['entry', 'count']).get('count') or 0)
        result['agent_count'] = int(cli.run_json(['agent', 'count']).get('count') or 0)
    except SpireError as err:
        result['healthy'] = False
        result['reachable'] = not looks_unreachable(err.message)
        result['error'] = err.message
    return result


def run(module):
    result = read_server(SpireServerCLI(module))
    if module.params['fail_on_unhealthy'] and not result['healthy']:
        raise TrustrootError(result['error'] or 'the SPIRE server is not healthy', results=result)
    return dict(changed=False, **result)


def main():
    argument_spec = server_argument_spec()
    argument_spec.update(fail_on_unhealthy=dict(type='bool', default=False))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, run)


if __name__ == '__main__':
    main()

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options shared by every Vault / OpenBao module (see module_utils/_vault.py).
    DOCUMENTATION = r'''
options:
  url:
    description:
      - Address of the Vault or OpenBao server, for example V(https://vault1.example.com:8200).
      - Scheme V(http) or V(https), a host and an optional port, nothing after them (a trailing V(/) is allowed).
        An address with a path is refused before any call, naming the option, because the module adds V(/v1/...)
        itself; the UI's address (V(.../ui/)) answers every path with its web page, and V(.../v1/) sends every call
        to a wrong path. Options that list several servers follow the same rule, naming the entry (for example nodes[1]).
      - Every answer the module reads must be JSON with the fields it needs; anything else (a web page, an empty or
        cut-off body, another shape) fails naming the node and the call, never read as a default.
      - Falls back to the E(VAULT_ADDR) and then E(BAO_ADDR) environment variables.
    type: str
  token:
    description:
      - Token for the calls that need one. Never logged or returned.
      - Falls back to E(VAULT_TOKEN) and then E(BAO_TOKEN).
    type: str
  ca_cert:
    description:
      - CA bundle that signs the server's certificate.
      - Falls back to E(VAULT_CACERT) and then E(BAO_CACERT).
    type: path
    aliases: [cacert]
  client_cert:
    description:
      - Client certificate for TLS client authentication.
      - Falls back to E(VAULT_CLIENT_CERT) and then E(BAO_CLIENT_CERT).
    type: path
  client_key:
    description:
      - Private key of O(client_cert).
      - Falls back to E(VAULT_CLIENT_KEY) and then E(BAO_CLIENT_KEY).
    type: path
  namespace:
    description:
      - Namespace for the calls (Vault Enterprise, OpenBao namespaces).
      - Falls back to E(VAULT_NAMESPACE) and then E(BAO_NAMESPACE).
    type: str
  timeout:
    description: Seconds to wait for one HTTP answer.
    type: int
    default: 30
  validate_certs:
    description: Verify the server's TLS certificate. Turn off only in labs.
    type: bool
    default: true
requirements:
  - hvac >= 2.0 (Python library, on the host that runs the module)
notes:
  - The server's flavour (OpenBao or HashiCorp Vault) and version are read from C(sys/seal-status),
    and the module takes the API path that server supports.
'''

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options shared by every SPIRE server module (see module_utils/_spire.py).
    DOCUMENTATION = r'''
options:
  socket_path:
    description:
      - Path of the SPIRE server's API socket (the server's C(socket_path) setting).
      - Falls back to the E(SPIRE_SERVER_SOCKET) environment variable, then to SPIRE's own default.
      - The module runs on the host of the SPIRE server, as a user that may open this socket.
    type: path
    default: /tmp/spire-server/private/api.sock
  spire_server_path:
    description:
      - Path of the C(spire-server) binary.
      - When omitted, C(spire-server) is looked up on E(PATH), then in C(/opt/spire/bin),
        C(/usr/local/bin) and C(/usr/bin).
    type: path
  timeout:
    description: Seconds to wait for one C(spire-server) command.
    type: int
    default: 60
requirements:
  - The C(spire-server) binary (SPIRE 1.x with C(-output json), 1.6 or later) on the host that runs the module.
notes:
  - Every call is a C(spire-server) command with C(-output json); its JSON is parsed, and batch answers are
    read result by result, since a batch in which some results failed still exits with status 0.
'''

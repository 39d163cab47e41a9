# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The leader_last filter (documented in leader_last.yml next to this file)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.trustroot.ops.plugins.module_utils._restart_order import leader_last as _leader_last


def leader_last(nodes, leader):
    """The nodes to take down one at a time, standbys first and ``leader`` last."""
    if not isinstance(nodes, list) or not all(isinstance(node, str) for node in nodes):
        raise AnsibleFilterError('leader_last: expected a list of node names, got %r' % (nodes,))
    if leader is not None and not isinstance(leader, str):
        raise AnsibleFilterError('leader_last: the leader must be a node name, got %r' % (leader,))
    return _leader_last(nodes, leader)


class FilterModule(object):
    def filters(self):
        return {'leader_last': leader_last}

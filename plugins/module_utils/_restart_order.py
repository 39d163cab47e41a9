# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one restart order of a Vault / OpenBao cluster: standbys first, the leader last.

Stopping the leader while a standby still has work ahead makes the cluster fail over more than once (and onto a
node that is about to stop); every flow that takes nodes down one at a time (rolling restart, upgrade, host
migration, seal migration) orders them here, and the ``leader_last`` filter exposes it to the roles."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def leader_last(nodes, leader):
    """Pure. ``nodes`` in their given order with ``leader`` moved to the end; a leader that is not among
    ``nodes`` (or none: None or '') is not added. Duplicates keep their first place."""
    seen, order = set(), []
    for node in nodes:
        if node not in seen and node != leader:
            seen.add(node)
            order.append(node)
    if leader and leader in nodes:
        order.append(leader)
    return order

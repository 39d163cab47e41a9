# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rolling upgrade filters: spire_upgrade_plan and vault_upgrade_order (documented in spire_upgrade_plan.yml and
vault_upgrade_order.yml next to this file)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.trustroot.ops.plugins.module_utils._upgrade import (
    UpgradeError, spire_upgrade_plan as _spire_upgrade_plan, vault_upgrade_order as _vault_upgrade_order)


def spire_upgrade_plan(servers, agents, target_server, target_agent=None, shared_datastore=False):
    """The SPIRE servers then agents to upgrade, in order; fails when a rule of SPIRE's upgrade guide would break."""
    try:
        return _spire_upgrade_plan(servers, agents, target_server, target_agent, shared_datastore)
    except UpgradeError as err:
        raise AnsibleFilterError('spire_upgrade_plan: %s' % err)


def vault_upgrade_order(nodes, target, hosts=None):
    """The Vault / OpenBao nodes to upgrade, standbys first and the active node last."""
    try:
        return _vault_upgrade_order(nodes, target, hosts)
    except UpgradeError as err:
        raise AnsibleFilterError('vault_upgrade_order: %s' % err)


class FilterModule(object):
    def filters(self):
        return {
            'spire_upgrade_plan': spire_upgrade_plan,
            'vault_upgrade_order': vault_upgrade_order,
        }

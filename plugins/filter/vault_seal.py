# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Seal migration filters: vault_seal_plan and vault_seal_migrated (documented in vault_seal_plan.yml and
vault_seal_migrated.yml next to this file)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.trustroot.ops.plugins.module_utils._vault_seal_migration import (
    SealMigrationError, migration_done, plan_seal_migration)


def _nodes(value, name):
    if not isinstance(value, list) or not all(isinstance(node, dict) and 'url' in node for node in value):
        raise AnsibleFilterError('%s: expected the nodes list of trustroot.ops.vault_status_info' % name)
    return value


def vault_seal_plan(nodes, target_type):
    """What a seal migration to ``target_type`` has to do on the cluster ``nodes`` describes."""
    try:
        return plan_seal_migration(_nodes(nodes, 'vault_seal_plan'), str(target_type))
    except SealMigrationError as err:
        raise AnsibleFilterError('vault_seal_plan: %s' % err)


def vault_seal_migrated(nodes, target_type):
    """Whether an active node runs ``target_type`` with no migration in progress."""
    return migration_done(_nodes(nodes, 'vault_seal_migrated'), str(target_type))


class FilterModule(object):
    def filters(self):
        return {
            'vault_seal_plan': vault_seal_plan,
            'vault_seal_migrated': vault_seal_migrated,
        }

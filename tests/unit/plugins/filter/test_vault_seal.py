import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.trustroot.ops.plugins.filter.vault_seal import (
    FilterModule, vault_seal_migrated, vault_seal_plan)

NODES = [{'url': 'https://a', 'reachable': True, 'is_leader': True, 'seal_type': 'shamir', 'sealed': False,
          'migration': False, 'recovery_seal': False},
         {'url': 'https://b', 'reachable': True, 'is_leader': False, 'seal_type': 'shamir', 'sealed': False,
          'migration': False, 'recovery_seal': False}]


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {'vault_seal_plan', 'vault_seal_migrated'}


def test_plan_and_migrated():
    plan = vault_seal_plan(NODES, 'transit')
    assert plan['action'] == 'migrate' and plan['standbys'] == ['https://b']
    assert vault_seal_migrated(NODES, 'shamir') and not vault_seal_migrated(NODES, 'transit')


def test_errors_name_the_filter():
    with pytest.raises(AnsibleFilterError, match='vault_seal_plan: expected the nodes list'):
        vault_seal_plan('nope', 'transit')
    with pytest.raises(AnsibleFilterError, match='vault_seal_plan: sealed nodes: https://b'):
        vault_seal_plan([NODES[0], dict(NODES[1], sealed=True)], 'transit')

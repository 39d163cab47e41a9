import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.trustroot.ops.plugins.filter.upgrade import (
    FilterModule, spire_upgrade_plan, vault_upgrade_order)
from ansible_collections.trustroot.ops.plugins.module_utils import _upgrade

NODES = [{'host': 'v1', 'version': '2.7.1', 'initialized': True, 'sealed': False, 'ha_mode': 'active'},
         {'host': 'v2', 'version': '2.7.1', 'initialized': True, 'sealed': False, 'ha_mode': 'standby'}]


def test_filters_are_registered():
    filters = FilterModule().filters()
    assert set(filters) == {'spire_upgrade_plan', 'vault_upgrade_order'}
    assert filters['spire_upgrade_plan'] is spire_upgrade_plan and filters['vault_upgrade_order'] is vault_upgrade_order


def test_filters_return_the_plans():
    args = ({'s1': '1.14.5'}, {'a1': '1.14.5'}, '1.15.3')
    assert spire_upgrade_plan(*args, shared_datastore=True) == _upgrade.spire_upgrade_plan(*args, shared_datastore=True)
    assert spire_upgrade_plan(*args, target_agent='1.14.7')['agents'] == ['a1']
    assert vault_upgrade_order(NODES, '2.7.2') == _upgrade.vault_upgrade_order(NODES, '2.7.2')
    assert vault_upgrade_order(NODES, '2.7.2')['order'] == ['v2', 'v1']


def test_errors_keep_the_message_and_name_the_filter():
    with pytest.raises(AnsibleFilterError, match=r'^spire_upgrade_plan: SPIRE server upgrade jumps more than one minor '
                                                 r'version .*s1: 1\.13\.3 -> 1\.14\.x -> 1\.15\.3$'):
        spire_upgrade_plan({'s1': '1.13.3'}, {}, '1.15.3')
    with pytest.raises(AnsibleFilterError, match=r'^vault_upgrade_order: node v2 is sealed'):
        vault_upgrade_order([NODES[0], dict(NODES[1], sealed=True)], '2.7.2')

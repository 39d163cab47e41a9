"""leader_last: the one restart order (standbys first, the leader last) and the flows that use it."""
import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.trustroot.ops.plugins.filter.restart_order import leader_last as leader_last_filter
from ansible_collections.trustroot.ops.plugins.module_utils._restart_order import leader_last
from ansible_collections.trustroot.ops.plugins.module_utils._upgrade import vault_upgrade_order
from ansible_collections.trustroot.ops.plugins.module_utils._vault_seal_migration import plan_seal_migration


@pytest.mark.parametrize('nodes, leader, order', [
    (['a', 'b', 'c'], 'a', ['b', 'c', 'a']),
    (['a', 'b', 'c'], 'c', ['a', 'b', 'c']),
    (['a', 'b', 'c'], 'b', ['a', 'c', 'b']),
    (['a', 'b'], 'x', ['a', 'b']),          # a leader not listed is not added
    (['a', 'b'], '', ['a', 'b']),
    (['a', 'b'], None, ['a', 'b']),
    ([], 'a', []),
    (['a', 'b', 'a'], 'b', ['a', 'b']),     # duplicates keep their first place
])
def test_leader_last(nodes, leader, order):
    assert leader_last(nodes, leader) == order


def test_the_filter_refuses_what_is_not_a_list_of_names():
    with pytest.raises(AnsibleFilterError, match='list of node names'):
        leader_last_filter('a,b', 'a')
    with pytest.raises(AnsibleFilterError, match='leader must be a node name'):
        leader_last_filter(['a'], {'url': 'a'})
    assert leader_last_filter(['v1', 'v2', 'v3'], 'v1') == ['v2', 'v3', 'v1']


def node(host, role, version='2.7.1'):
    return {'host': host, 'ha_mode': role, 'version': version, 'initialized': True, 'sealed': False}


def test_the_upgrade_order_is_the_same_order():
    nodes = [node('v1', 'active'), node('v2', 'standby'), node('v3', 'standby', '2.7.2'), node('v4', 'perfstandby')]
    assert vault_upgrade_order(nodes, '2.7.2')['order'] == ['v2', 'v4', 'v1']


def test_the_seal_migration_takes_the_standbys_first():
    nodes = [{'url': u, 'reachable': True, 'sealed': False, 'is_leader': u == 'https://b', 'seal_type': 'shamir'}
             for u in ('https://a', 'https://b', 'https://c')]
    plan = plan_seal_migration(nodes, 'transit')
    assert plan['standbys'] == ['https://a', 'https://c'] and plan['leader'] == 'https://b'

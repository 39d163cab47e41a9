import datetime

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._material import material_from_init
from ansible_collections.trustroot.ops.plugins.module_utils._vault_seal_migration import (
    SealMigrationError, archive_name, key_layout, material_for_seal, migration_done, plan_seal_migration)

INIT = {'keys': ['aa', 'bb', 'cc'], 'keys_base64': ['qg==', 'uw==', 'zA=='], 'root_token': 's.root'}


def node(url, leader=False, seal='shamir', sealed=False, migration=False, reachable=True, recovery=None):
    return {'url': url, 'reachable': reachable, 'is_leader': leader, 'seal_type': seal, 'sealed': sealed,
            'migration': migration, 'recovery_seal': (seal != 'shamir') if recovery is None else recovery}


def cluster(seal='shamir', **leader):
    return [node('https://a', seal=seal), node('https://b', leader=True, seal=seal, **leader),
            node('https://c', seal=seal)]


def test_same_seal_is_nothing_to_do():
    plan = plan_seal_migration(cluster('transit'), 'transit')
    assert plan['action'] == 'none' and 'already' in plan['message']
    assert plan_seal_migration(cluster(), 'shamir')['action'] == 'none'


def test_shamir_to_transit_standbys_then_leader():
    plan = plan_seal_migration(cluster(), 'transit')
    assert plan['action'] == 'migrate' and plan['direction'] == 'to_auto'
    assert plan['leader'] == 'https://b' and plan['standbys'] == ['https://a', 'https://c']
    assert plan_seal_migration(cluster('transit'), 'shamir')['direction'] == 'to_shamir'


def test_a_migration_in_progress_is_resumed():
    plan = plan_seal_migration(cluster('transit', migration=True), 'transit')
    assert plan['action'] == 'migrate'
    migrated = dict(node('https://c', reachable=False), error='barrier seal type of "shamir" does not match loaded '
                    'type of "transit"')
    plan = plan_seal_migration([node('https://a', leader=True), migrated], 'transit')
    assert plan['action'] == 'migrate' and plan['standbys'] == ['https://c']


@pytest.mark.parametrize('nodes, match', [
    ([node('https://a', leader=True), node('https://b', reachable=False)], 'not reachable: https://b'),
    ([node('https://a'), node('https://b')], '0 active nodes'),
    ([node('https://a', leader=True), node('https://b', sealed=True)], 'sealed nodes: https://b'),
    ([node('https://a', leader=True, seal='')], 'no seal type'),
])
def test_cluster_not_ready_is_an_error(nodes, match):
    with pytest.raises(SealMigrationError, match=match):
        plan_seal_migration(nodes, 'transit')


def test_auto_to_other_auto_is_refused():
    with pytest.raises(SealMigrationError, match='migrate to shamir first'):
        plan_seal_migration(cluster('transit'), 'awskms')


def test_migration_done_needs_the_leader_on_the_target_seal():
    assert migration_done(cluster('transit'), 'transit')
    assert not migration_done(cluster('transit', migration=True), 'transit')
    assert not migration_done(cluster('shamir'), 'transit')
    assert not migration_done(cluster('transit', recovery=False), 'transit')
    assert not migration_done([node('https://a'), node('https://b')], 'transit')
    assert migration_done(cluster('shamir'), 'shamir')


def test_material_keys_move_and_come_back():
    init = material_from_init(INIT, {'secret_shares': 3, 'secret_threshold': 2}, 'http://a', 'openbao', '2.7.2')
    recovery, changed = material_for_seal(init, 'recovery')
    assert changed and recovery['recovery_keys_b64'] == INIT['keys_base64'] and recovery['recovery_keys_hex'] == INIT['keys']
    assert key_layout(recovery, 'recovery') == {'shares': 3, 'threshold': 2}
    assert not any(name.startswith('unseal_') for name in recovery)
    assert recovery['root_token'] == 's.root' and recovery['kind'] == 'seal_migration'
    assert init['unseal_keys_b64'] == INIT['keys_base64']  # the input is not modified
    same, changed = material_for_seal(recovery, 'recovery')
    assert not changed and same is recovery
    back, changed = material_for_seal(recovery, 'unseal')
    assert changed and back['unseal_keys_b64'] == INIT['keys_base64'] and back['unseal_threshold'] == 2
    assert not any(name.startswith('recovery_') for name in back)


def test_material_ambiguous_or_empty_is_an_error():
    both = {'unseal_keys_b64': ['qg=='], 'recovery_keys_b64': ['uw==']}
    with pytest.raises(SealMigrationError, match='both'):
        material_for_seal(both, 'recovery')
    with pytest.raises(SealMigrationError, match='no unseal or recovery keys'):
        material_for_seal({'root_token': 'x'}, 'unseal')
    with pytest.raises(SealMigrationError, match='keys_as'):
        material_for_seal(both, 'barrier')


def test_archive_name_takes_a_free_timestamp_suffix():
    now = datetime.datetime(2026, 12, 1, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert archive_name('/m.json.age', now=now) == '/m.json.age.20261201T030405Z'
    taken = {'/m.json.age.20261201T030405Z', '/m.json.age.20261201T030405Z-1'}
    assert archive_name('/m.json.age', now=now, exists=taken.__contains__) == '/m.json.age.20261201T030405Z-2'

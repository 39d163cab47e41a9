import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._upgrade import (
    UpgradeError, _spire_check_point, check_no_failover_to_older, parse_version, spire_upgrade_plan,
    vault_upgrade_order)


# parse_version

@pytest.mark.parametrize('text, expected', [
    ('1.15.3', (1, 15, 3)),
    ('v1.15.3', (1, 15, 3)),
    ('2.7.2', (2, 7, 2)),
    (' 2.7.2\n', (2, 7, 2)),
    ('1.15.3+abc', (1, 15, 3)),
    ('2.7.2-rc1', (2, 7, 2)),
])
def test_parse_version_reads_x_y_z(text, expected):
    assert parse_version(text, 'f')[:3] == expected


def test_parse_version_build_metadata_is_ignored_and_prerelease_sorts_first():
    assert parse_version('1.15.3+abc', 'f') == parse_version('1.15.3', 'f') == parse_version('v1.15.3', 'f')
    assert parse_version('2.7.2-rc1', 'f') < parse_version('2.7.2', 'f') < parse_version('2.7.3-rc1', 'f')
    assert parse_version('2.7.2-rc.9', 'f') < parse_version('2.7.2-rc.10', 'f')
    assert parse_version('2.7.2-1', 'f') < parse_version('2.7.2-alpha', 'f')
    assert parse_version('1.9.0', 'f') < parse_version('1.10.0', 'f')


@pytest.mark.parametrize('text', ['', '1.15', '1.15.3.4', 'x1.15.3', '1.15.3garbage', '01.2.3', '1.2.3-', None, 1.15,
                                  'latest', '1.2.3+'])
def test_parse_version_refuses_naming_field_and_value(text):
    with pytest.raises(UpgradeError, match=r"servers\[s1\]: .* is not a version"):
        parse_version(text, 'servers[s1]')


# spire_upgrade_plan

def test_spire_plan_servers_then_agents_in_inventory_order():
    plan = spire_upgrade_plan({'s2': '1.14.5', 's1': '1.15.3', 's3': 'v1.14.7'},
                              {'a2': '1.14.5', 'a1': '1.14.2', 'a3': '1.15.3'}, '1.15.3')
    assert plan['servers'] == ['s2', 's3']
    assert plan['agents'] == ['a2', 'a1']
    assert plan['servers_already'] == ['s1'] and plan['agents_already'] == ['a3']
    assert plan['steps'] == ['s2: 1.14.5 -> 1.15.3 (server)', 's3: 1.14.7 -> 1.15.3 (server)',
                             'a2: 1.14.5 -> 1.15.3 (agent)', 'a1: 1.14.2 -> 1.15.3 (agent)']
    assert plan['changed'] and plan['target_agent'] == '1.15.3' and plan['target_server'] == '1.15.3'
    assert plan['datastore'] == {'shared': False, 'migrated_by': None, 'backup_before': False, 'stop_first': []}


def test_spire_plan_at_target_is_empty():
    plan = spire_upgrade_plan({'s1': '1.15.3', 's2': '1.15.3+build'}, {'a1': 'v1.15.3'}, '1.15.3',
                              shared_datastore=True)
    assert plan['servers'] == [] and plan['agents'] == [] and plan['steps'] == [] and not plan['changed']
    assert plan['servers_already'] == ['s1', 's2'] and plan['agents_already'] == ['a1']
    assert plan['datastore']['backup_before'] is False and plan['datastore']['migrated_by'] is None


def test_spire_plan_patch_upgrade_and_no_agents():
    plan = spire_upgrade_plan({'s1': '1.15.1'}, {}, '1.15.3')
    assert plan['servers'] == ['s1'] and plan['agents'] == []
    assert spire_upgrade_plan({'s1': '1.15.1'}, None, '1.15.3')['servers'] == ['s1']


def test_spire_plan_shared_datastore_flags_the_migrating_server():
    plan = spire_upgrade_plan({'s1': '1.15.3', 's2': '1.14.5', 's3': '1.14.5'}, {'a1': '1.14.5'}, '1.15.3',
                              shared_datastore=True)
    assert plan['datastore'] == {'shared': True, 'migrated_by': 's2', 'backup_before': True, 'stop_first': []}
    assert plan['servers'] == ['s2', 's3']


def test_spire_plan_refuses_skipping_a_minor_with_the_chain():
    with pytest.raises(UpgradeError, match=r'server upgrade jumps more than one minor version .*s1: 1\.13\.3 -> '
                                           r'1\.14\.x -> 1\.15\.3$'):
        spire_upgrade_plan({'s1': '1.13.3', 's2': '1.15.3'}, {}, '1.15.3')
    with pytest.raises(UpgradeError, match=r's1: 1\.12\.0 -> 1\.13\.x -> 1\.14\.x -> 1\.15\.3'):
        spire_upgrade_plan({'s1': '1.12.0'}, {}, '1.15.3')
    with pytest.raises(UpgradeError, match=r'agent upgrade jumps .*a1: 1\.13\.3 -> 1\.14\.x -> 1\.15\.3'):
        spire_upgrade_plan({'s1': '1.15.3'}, {'a1': '1.13.3'}, '1.15.3')


def test_spire_plan_refuses_a_major_change():
    with pytest.raises(UpgradeError, match=r'server upgrade jumps .*s1: 0\.12\.3 -> .* -> 1\.0\.0'):
        spire_upgrade_plan({'s1': '0.12.3'}, {}, '1.0.0')


def test_spire_plan_refuses_downgrades():
    with pytest.raises(UpgradeError, match=r'SPIRE server s2 is at 1\.15\.4, newer than the target 1\.15\.3: '
                                           r'downgrades are refused'):
        spire_upgrade_plan({'s1': '1.15.3', 's2': '1.15.4'}, {}, '1.15.3')
    with pytest.raises(UpgradeError, match=r'SPIRE agent a1 is at 1\.15\.3, newer than the target 1\.14\.7'):
        spire_upgrade_plan({'s1': '1.15.3'}, {'a1': '1.15.3'}, '1.15.3', '1.14.7')
    with pytest.raises(UpgradeError, match=r'server s1 is at 1\.15\.3, newer than the target 1\.15\.3-rc1'):
        spire_upgrade_plan({'s1': '1.15.3'}, {}, '1.15.3-rc1')


def test_spire_plan_agent_two_minors_behind_after_the_servers_is_refused():
    # The agent's own jump (1.13 -> 1.14.7) is fine, but once the last server is at 1.15.3 it would be broken.
    with pytest.raises(UpgradeError, match=r'agent skew after upgrading server s2: .*oldest server \(1\.15\.3\), '
                                           r'but a1 \(1\.13\.1\) would be broken.*a1: 1\.13\.1 -> 1\.14\.x -> 1\.15\.3'):
        spire_upgrade_plan({'s1': '1.14.5', 's2': '1.14.5'}, {'a1': '1.13.1', 'a2': '1.14.5'}, '1.15.3', '1.14.7')


def test_spire_plan_agent_already_broken_before_the_roll_is_refused():
    with pytest.raises(UpgradeError, match=r'agent skew before the roll: .*a1 \(1\.13\.1\)'):
        spire_upgrade_plan({'s1': '1.15.3'}, {'a1': '1.13.1'}, '1.15.3', '1.14.7')


def test_spire_plan_target_agent_rules():
    plan = spire_upgrade_plan({'s1': '1.14.5'}, {'a1': '1.14.1'}, '1.15.3', '1.14.7')
    assert plan['agents'] == ['a1'] and plan['steps'][-1] == 'a1: 1.14.1 -> 1.14.7 (agent)'
    assert spire_upgrade_plan({'s1': '1.15.3'}, {'a1': '1.15.0'}, '1.15.3', '')['target_agent'] == '1.15.3'
    with pytest.raises(UpgradeError, match=r'target_agent 1\.15\.4 is newer than target_server 1\.15\.3'):
        spire_upgrade_plan({'s1': '1.15.3'}, {}, '1.15.3', '1.15.4')
    with pytest.raises(UpgradeError, match=r'target_agent 1\.13\.0 is more than one minor version older'):
        spire_upgrade_plan({'s1': '1.15.3'}, {}, '1.15.3', '1.13.0')
    with pytest.raises(UpgradeError, match=r"target_agent: 'x' is not a version"):
        spire_upgrade_plan({'s1': '1.15.3'}, {}, '1.15.3', 'x')


def test_spire_plan_agent_ahead_of_the_oldest_server_is_mended_and_reported():
    plan = spire_upgrade_plan({'s1': '1.14.5', 's2': '1.15.3'}, {'a1': '1.15.3', 'a2': '1.14.5'}, '1.15.3')
    assert plan['servers'] == ['s1'] and plan['agents'] == ['a2']
    assert plan['warnings'] == ['agents newer than the oldest server before the roll (a1 (1.15.3)): upgrading the '
                                'servers first mends it']


def test_spire_check_point_names_each_broken_rule():
    with pytest.raises(UpgradeError, match=r'server skew after upgrading server s1: .*oldest is at 1\.13\.0 \(s2\) '
                                           r'and the newest at 1\.15\.3 \(s1\)'):
        _spire_check_point({'s1': parse_version('1.15.3', 'v'), 's2': parse_version('1.13.0', 'v')}, {},
                           'after upgrading server s1')
    with pytest.raises(UpgradeError, match=r'agents must not be newer than the oldest server \(1\.14\.5\), '
                                           r'but a1 \(1\.15\.0\) are'):
        _spire_check_point({'s1': parse_version('1.14.5', 'v')}, {'a1': parse_version('1.15.0', 'v')}, 'now')
    _spire_check_point({'s1': parse_version('1.15.3', 'v'), 's2': parse_version('1.14.0', 'v')},
                       {'a1': parse_version('1.13.9', 'v'), 'a2': parse_version('1.14.0', 'v')}, 'now')


@pytest.mark.parametrize('servers, agents, target, message', [
    ({}, {}, '1.15.3', r'servers: no SPIRE server given'),
    (['s1'], {}, '1.15.3', r'servers: expected a dict host -> version string, got list'),
    ({'s1': '1.15.3'}, 'a1', '1.15.3', r'agents: expected a dict'),
    ({'s1': '1.15'}, {}, '1.15.3', r"servers\[s1\]: '1\.15' is not a version"),
    ({'s1': '1.15.3'}, {'a1': None}, '1.15.3', r'agents\[a1\]: None is not a version'),
    ({'s1': '1.15.3'}, {}, 'latest', r"target_server: 'latest' is not a version"),
    ({'': '1.15.3'}, {}, '1.15.3', r'servers: host names must be non-empty strings'),
])
def test_spire_plan_bad_input(servers, agents, target, message):
    with pytest.raises(UpgradeError, match=message):
        spire_upgrade_plan(servers, agents, target)


# vault_upgrade_order

def node(host, version='2.7.1', ha_mode='standby', **extra):
    return dict({'host': host, 'version': version, 'initialized': True, 'sealed': False, 'ha_mode': ha_mode}, **extra)


def test_vault_order_standbys_first_active_last():
    result = vault_upgrade_order([node('v1', ha_mode='active'), node('v3'), node('v2', ha_mode='perfstandby')], '2.7.2')
    assert result['order'] == ['v3', 'v2', 'v1'] and result['active'] == 'v1' and result['already'] == []
    assert result['steps'] == ['v3: 2.7.1 -> 2.7.2 (standby)', 'v2: 2.7.1 -> 2.7.2 (standby)',
                               'v1: 2.7.1 -> 2.7.2 (active)']
    assert result['changed'] and result['target'] == '2.7.2'


def test_vault_order_leaves_nodes_at_target_out():
    result = vault_upgrade_order([node('v1', '2.7.2'), node('v2', ha_mode='active'), node('v3', 'v2.7.2')], '2.7.2')
    assert result['order'] == ['v2'] and result['already'] == ['v1', 'v3']
    result = vault_upgrade_order([node('v1', '2.7.2', 'active'), node('v2')], '2.7.2')
    assert result['order'] == ['v2'] and result['already'] == ['v1']


def test_vault_order_second_run_is_empty():
    result = vault_upgrade_order([node('v1', '2.7.2', 'active'), node('v2', '2.7.2')], '2.7.2')
    assert result == {'changed': False, 'target': '2.7.2', 'active': 'v1', 'order': [], 'already': ['v1', 'v2'],
                      'steps': []}


def test_vault_order_single_node():
    assert vault_upgrade_order([node('v1', '2.7.0', 'active')], '2.7.2')['order'] == ['v1']


def test_vault_order_reads_vault_status_info_nodes():
    status = [{'url': 'https://v1:8200', 'reachable': True, 'error': None, 'version': '2.7.1', 'initialized': True,
               'sealed': False, 'state': 'standby', 'is_leader': False},
              {'url': 'https://v2:8200', 'reachable': True, 'error': None, 'version': '2.7.1', 'initialized': True,
               'sealed': False, 'state': 'active', 'is_leader': True},
              {'url': 'https://v3:8200', 'reachable': True, 'error': None, 'version': '2.7.1', 'initialized': True,
               'sealed': False, 'state': 'performance_standby', 'is_leader': False}]
    assert vault_upgrade_order(status, '2.7.2')['order'] == ['https://v1:8200', 'https://v3:8200', 'https://v2:8200']
    named = vault_upgrade_order(status, '2.7.2', hosts=['vault1', 'vault2', 'vault3'])
    assert named['order'] == ['vault1', 'vault3', 'vault2'] and named['active'] == 'vault2'
    assert status[0]['url'] == 'https://v1:8200' and 'host' not in status[0]  # the caller's dicts are left as they were


@pytest.mark.parametrize('hosts', [['vault1'], 'vault1', ['a', 'b', 'c', 'd']])
def test_vault_order_refuses_hosts_that_do_not_match_the_nodes(hosts):
    with pytest.raises(UpgradeError, match='hosts: expected a list of 3 names, one per node'):
        vault_upgrade_order([node('v1', ha_mode='active'), node('v2'), node('v3')], '2.7.2', hosts=hosts)


def test_vault_order_never_fails_over_to_an_older_version():
    # Whatever the mix, when the active node goes every other node is already at the target.
    nodes = [node('v1', '2.7.1'), node('v2', '2.7.2'), node('v3', '2.6.0', 'active'), node('v4', '2.7.0', 'perfstandby')]
    order = vault_upgrade_order(nodes, '2.7.2')['order']
    assert order[-1] == 'v3'
    upgraded = {'v2'}
    for host in order:
        if host == 'v3':
            assert upgraded == {'v1', 'v2', 'v4'}
        upgraded.add(host)


def test_failover_check_refuses_an_order_that_stops_the_active_early():
    versions = {h: parse_version(v, 'v') for h, v in {'v1': '2.7.1', 'v2': '2.7.1', 'v3': '2.7.2'}.items()}
    roles = {'v1': 'active', 'v2': 'standby', 'v3': 'standby'}
    target = parse_version('2.7.2', 't')
    with pytest.raises(UpgradeError, match=r'stopping the active node v1 would let a node not yet at 2\.7\.2 take over \(v2 at 2\.7\.1\)'):
        check_no_failover_to_older(['v1', 'v2'], roles, versions, target)
    with pytest.raises(UpgradeError, match=r'take over \(v2 at 2\.7\.1\)'):
        check_no_failover_to_older(['v1'], roles, versions, target)   # a standby left out of the order
    check_no_failover_to_older(['v2', 'v1'], roles, versions, target)


@pytest.mark.parametrize('nodes, message', [
    ([node('v1', ha_mode='active'), node('v2', sealed=True)], r'node v2 is sealed'),
    ([node('v1', ha_mode='active'), node('v2', initialized=False)], r'node v2 is not initialized'),
    ([node('v1', ha_mode='active'), node('v2', ha_mode='dr_secondary')], r"node v2 has an unknown role 'dr_secondary'"),
    ([node('v1', ha_mode='active'), node('v2', ha_mode=None)], r'node v2 has an unknown role None'),
    ([node('v1'), node('v2')], r'exactly one active node is needed, found 0$'),
    ([node('v1', ha_mode='active'), node('v2', ha_mode='active')], r'exactly one active node is needed, found 2: v1, v2'),
    ([node('v1', ha_mode='active'), node('v2', '2.8.0')], r'node v2 is at 2\.8\.0, newer than the target 2\.7\.2'),
    ([node('v1', '2.7.3', 'active')], r'node v1 is at 2\.7\.3, newer than the target'),
    ([node('v1', ha_mode='active'), node('v2', 'dev')], r"nodes\[v2\]\.version: 'dev' is not a version"),
    ([node('v1', ha_mode='active'), node('v1')], r'node v1 is listed twice'),
    ([node('v1', ha_mode='active'), {'version': '2.7.1'}], r'nodes\[1\]: no host \(or url\) given'),
    ([node('v1', ha_mode='active'), 'v2'], r'nodes\[1\]: expected a dict, got str'),
    ([node('v1', ha_mode='active'), node('v2', reachable=False, error='timed out')], r'node v2 did not answer \(timed out\)'),
    ([node('v1', ha_mode='active', is_leader=False)], r'node v1 reports role active but is_leader False'),
    ([], r'nodes: expected a non-empty list'),
])
def test_vault_order_refusals_name_the_node(nodes, message):
    with pytest.raises(UpgradeError, match=message):
        vault_upgrade_order(nodes, '2.7.2')


def test_vault_order_bad_target():
    with pytest.raises(UpgradeError, match=r"target: '2\.7' is not a version"):
        vault_upgrade_order([node('v1', ha_mode='active')], '2.7')

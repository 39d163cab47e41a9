"""Pure parts of tests/lab/hosts.py: names, address allocation, APT sources, rendering, /proc parsing."""

import ipaddress
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.lab import hosts  # noqa: E402
from tests.lab.hosts import LabError  # noqa: E402


@pytest.fixture(autouse=True)
def _default_net(monkeypatch):
    monkeypatch.delenv('TRUSTROOT_LAB_NET', raising=False)


# --- names -------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['demo', 'it12345', 'molecule-default', 'a'])
def test_lab_names_accepted(name):
    assert hosts.validate_lab_name(name) == name


@pytest.mark.parametrize('name', ['', 'Demo', '1lab', 'lab_x', 'lab-', 'a' * 21, 'la b', None])
def test_lab_names_rejected_with_the_field_named(name):
    with pytest.raises(LabError, match='^name: '):
        hosts.validate_lab_name(name)


def test_host_names_from_a_comma_list():
    assert hosts.validate_host_names('vault1, vault2,,spire-server1') == ['vault1', 'vault2', 'spire-server1']


@pytest.mark.parametrize('value, rule', [
    ('', 'at least one'),
    ('vault1,vault1', 'listed twice'),
    ('Vault1', 'not a host name'),
    ('vault_1', 'not a host name'),
    ('v' * 32, 'not a host name'),
    ('vault-', 'not a host name'),
    (['h%d' % i for i in range(hosts.MAX_HOSTS + 1)], 'at most'),
])
def test_host_names_rejected(value, rule):
    with pytest.raises(LabError, match='^hosts: .*' + rule):
        hosts.validate_host_names(value)


def test_paths_that_overlay_options_cannot_carry_are_refused():
    assert hosts.validate_lab_path('/work/main/.lab/demo') == '/work/main/.lab/demo'
    for bad in ('/tmp/a,b', '/tmp/a:b', '/tmp/a b', '/tmp/a=b'):
        with pytest.raises(LabError, match='^dir: '):
            hosts.validate_lab_path(bad)


def test_machine_names_are_unique_per_lab():
    assert hosts.machine_name('demo', 'vault1') != hosts.machine_name('it1', 'vault1')
    assert hosts.machine_name('demo', 'vault1') == 'demo-vault1'


# --- address allocation ------------------------------------------------------------------------------

def test_host_addresses_in_order_from_eleven():
    got = hosts.host_addresses(7, ['vault1', 'vault2', 'spire1'])
    assert got == [('vault1', '10.213.7.11'), ('vault2', '10.213.7.12'), ('spire1', '10.213.7.13')]
    assert hosts.gateway_address(7) == '10.213.7.1'
    assert str(hosts.lab_network(7)) == '10.213.7.0/24'


def test_largest_lab_stays_inside_its_subnet():
    names = ['h%d' % i for i in range(hosts.MAX_HOSTS)]
    got = hosts.host_addresses(3, names)
    last = ipaddress.IPv4Address(got[-1][1])
    assert last in hosts.lab_network(3) and last != hosts.lab_network(3).broadcast_address
    assert len(set(a for _h, a in got)) == hosts.MAX_HOSTS


def test_net_base_from_environment(monkeypatch):
    monkeypatch.setenv('TRUSTROOT_LAB_NET', '10.99')
    assert hosts.host_addresses(2, ['a'])[0] == ('a', '10.99.2.11')
    monkeypatch.setenv('TRUSTROOT_LAB_NET', '10.999')
    with pytest.raises(LabError, match='TRUSTROOT_LAB_NET'):
        hosts.net_base()


def test_used_indexes_from_bridges_addresses_and_routes():
    links = ['lo', 'eth0', 'trbr1', 'trbr12', 'trbrx', 'vb-demo-vault1', 'xtrbr4']
    nets = ['127.0.0.1/8', '10.0.0.5/24', '10.213.3.1/24', '10.213.40.0/23', '192.168.1.0/24']
    assert hosts.used_network_indexes(links, nets) == {1, 12, 3, 40, 41}


def test_a_route_covering_the_whole_range_uses_every_index():
    assert hosts.used_network_indexes([], ['10.0.0.0/8']) == set(range(1, 255))


def test_pick_network_index_takes_the_lowest_free():
    assert hosts.pick_network_index(set()) == 1
    assert hosts.pick_network_index({1, 2, 4}) == 3
    with pytest.raises(LabError, match='no free lab subnet'):
        hosts.pick_network_index(set(range(1, 255)))


def test_pick_network_index_never_takes_a_subnet_kept_for_layers():
    below = set(range(1, hosts.LAYER_NETWORK_INDEXES[0]))
    with pytest.raises(LabError, match='no free lab subnet'):
        hosts.pick_network_index(below)
    assert hosts.pick_network_index(below - {17}) == 17


def test_layer_hosts_keep_their_addresses_and_new_hosts_never_reuse_one():
    layer = {'vault1': '10.213.250.11', 'vault2': '10.213.250.12', 'spire-server1': '10.213.250.14'}
    got = hosts.host_addresses(250, ['vault2', 'transit1', 'vault1', 'extra'], fixed=layer)
    # spire-server1 is not booted: its address stays free all the same, new hosts come after it.
    assert got == [('vault2', '10.213.250.12'), ('transit1', '10.213.250.15'), ('vault1', '10.213.250.11'),
                   ('extra', '10.213.250.16')]


def test_a_layer_address_outside_the_subnet_is_refused():
    with pytest.raises(LabError, match='vault1: address 10.213.9.11 is not in the lab subnet 10.213.250.0/24'):
        hosts.host_addresses(250, ['vault1'], fixed={'vault1': '10.213.9.11'})


def test_bridge_names_fit_linux_link_names():
    assert hosts.bridge_name(254) == 'trbr254'
    assert len(hosts.bridge_name(254)) <= 15


# --- APT sources and the rootfs stamp ----------------------------------------------------------------

DEB822 = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""


def test_mirror_from_deb822_sources():
    entries = hosts.parse_apt_sources({'/etc/apt/sources.list.d/debian.sources': DEB822})
    assert hosts.pick_mirror(entries) == 'http://deb.debian.org/debian'


def test_mirror_skips_disabled_stanzas_security_and_deb_src():
    text = ('Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\nEnabled: no\n\n'
            'Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n'
            'Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n\n'
            'Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n')
    entries = hosts.parse_apt_sources({'/etc/apt/sources.list.d/x.sources': text})
    assert hosts.pick_mirror(entries) == 'http://mirror.example/debian'


def test_mirror_from_one_line_sources_list_with_options():
    text = ('# comment\n'
            'deb-src http://src.example/debian bookworm main\n'
            'deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://m.example/debian bookworm main\n')
    entries = hosts.parse_apt_sources({'/etc/apt/sources.list': text})
    assert hosts.pick_mirror(entries) == 'http://m.example/debian'


def test_no_mirror_for_another_suite():
    entries = hosts.parse_apt_sources({'/etc/apt/sources.list': 'deb http://m.example/debian trixie main\n'})
    assert hosts.pick_mirror(entries) is None


def test_rootfs_stamp_follows_the_package_list_not_its_order():
    base = hosts.rootfs_stamp(['a', 'b'], 'bookworm', 1)
    assert hosts.rootfs_stamp(['b', 'a'], 'bookworm', 1) == base
    assert hosts.rootfs_stamp(['a', 'b', 'c'], 'bookworm', 1) != base
    assert hosts.rootfs_stamp(['a', 'b'], 'trixie', 1) != base
    assert hosts.rootfs_stamp(['a', 'b'], 'bookworm', 2) != base


def test_the_rootfs_has_what_hosts_and_ansible_need():
    for pkg in ('systemd', 'systemd-sysv', 'dbus', 'openssh-server', 'python3', 'python3-apt', 'iproute2',
                'ca-certificates', 'sudo'):
        assert pkg in hosts.PACKAGES


# --- rendering ---------------------------------------------------------------------------------------

def test_nspawn_command():
    argv = hosts.nspawn_command('/lab/hosts/vault1/root', 'demo-vault1', 'vault1', 'trbr3')
    assert argv[0] == 'systemd-nspawn'
    for flag in ('--boot', '--register=no', '--keep-unit', '--private-users=no', '--network-bridge=trbr3',
                 '--directory=/lab/hosts/vault1/root', '--machine=demo-vault1', '--hostname=vault1',
                 '--capability=CAP_IPC_LOCK', '--link-journal=no'):
        assert flag in argv


def test_etc_hosts_lists_every_lab_host():
    text = hosts.render_etc_hosts([('vault1', '10.213.3.11'), ('vault2', '10.213.3.12')])
    assert '127.0.0.1\tlocalhost\n' in text
    assert '10.213.3.11\tvault1\n' in text and '10.213.3.12\tvault2\n' in text


def test_sshd_config_is_key_only_with_one_host_key():
    text = hosts.render_sshd_config()
    assert 'PasswordAuthentication no' in text
    assert 'PermitRootLogin prohibit-password' in text
    assert text.count('HostKey ') == 1


def test_known_hosts_by_name_and_address():
    text = hosts.render_known_hosts([('vault1', '10.213.3.11')], {'vault1': 'ssh-ed25519 AAAAkey root@vault1\n'})
    assert text == 'vault1,10.213.3.11 ssh-ed25519 AAAAkey\n'


def test_ssh_config():
    text = hosts.render_ssh_config([('vault1', '10.213.3.11')], '/l/ssh/id_ed25519', '/l/ssh/known_hosts')
    assert 'Host vault1 10.213.3.11\n    HostName 10.213.3.11\n' in text
    assert '    IdentityFile /l/ssh/id_ed25519\n' in text
    assert '    StrictHostKeyChecking yes\n' in text


@pytest.mark.parametrize('host, group', [
    ('vault1', 'vault'), ('vault12', 'vault'), ('spire-agent1', 'spire_agent'), ('node-2', 'node'),
    ('bastion', None), ('42', None),
])
def test_group_of(host, group):
    assert hosts.group_of(host) == group


def test_inventory_is_valid_yaml_with_connection_vars_and_groups():
    yaml = pytest.importorskip('yaml')
    text = hosts.render_inventory(
        'demo-1', [('vault1', '10.213.3.11'), ('vault2', '10.213.3.12'), ('bastion', '10.213.3.13')],
        '/l/ssh/id_ed25519', '/l/ssh/known_hosts', '/l/ssh/cp', 'trbr3', '10.213.3.1', '10.213.3.0/24')
    data = yaml.safe_load(text)
    lab = data['all']['children']['lab_demo_1']
    assert lab['hosts'] == {'vault1': {'ansible_host': '10.213.3.11'}, 'vault2': {'ansible_host': '10.213.3.12'},
                            'bastion': {'ansible_host': '10.213.3.13'}}
    assert lab['vars']['ansible_user'] == 'root'
    assert lab['vars']['ansible_ssh_private_key_file'] == '/l/ssh/id_ed25519'
    assert 'UserKnownHostsFile=/l/ssh/known_hosts' in lab['vars']['ansible_ssh_common_args']
    assert 'StrictHostKeyChecking=yes' in lab['vars']['ansible_ssh_common_args']
    # No -C: compressing artifacts over a local bridge only costs CPU; connection sharing stays.
    assert lab['vars']['ansible_ssh_args'] == '-o ControlMaster=auto -o ControlPersist=60s'
    assert lab['vars']['ansible_control_path_dir'] == '/l/ssh/cp'
    assert lab['vars']['lab_gateway'] == '10.213.3.1'
    assert data['all']['children']['vault'] == {'hosts': {'vault1': {}, 'vault2': {}}}
    assert set(data['all']['children']) == {'lab_demo_1', 'vault'}


def test_inventory_extra_groups_beside_stem_groups():
    yaml = pytest.importorskip('yaml')
    text = hosts.render_inventory(
        'x', [('vault1', '10.213.1.11'), ('vault2', '10.213.1.12')], '/k', '/kh', '/c', 'trbr1', '10.213.1.1',
        '10.213.1.0/24', {'vault_servers': ['vault1', 'vault2'], 'vault': ['vault2']})
    children = yaml.safe_load(text)['all']['children']
    assert children['vault_servers'] == {'hosts': {'vault1': {}, 'vault2': {}}}
    assert children['vault'] == {'hosts': {'vault1': {}, 'vault2': {}}}


def test_parse_groups():
    assert hosts.parse_groups(['vault_servers=vault1,vault2', 'vault_servers=vault2,vault3', 'db=pg1'],
                              ['vault1', 'vault2', 'vault3', 'pg1']) == {
        'vault_servers': ['vault1', 'vault2', 'vault3'], 'db': ['pg1']}
    assert hosts.parse_groups(None, ['a1']) == {}


@pytest.mark.parametrize('spec, message', [
    ('vault_servers', 'GROUP=HOST'),
    ('Vault=vault1', 'GROUP=HOST'),
    ('vault_servers=vault9', 'vault9 not among the lab hosts'),
    ('vault_servers=', 'no host not among'),
])
def test_parse_groups_rejects(spec, message):
    with pytest.raises(hosts.LabError, match=message):
        hosts.parse_groups([spec], ['vault1'])


def test_inventory_quotes_odd_strings():
    yaml = pytest.importorskip('yaml')
    text = hosts.render_inventory('x', [('h1', '10.213.1.11')], "/p/it's: #key", '/k', '/c', 'trbr1',
                                  '10.213.1.1', '10.213.1.0/24')
    assert yaml.safe_load(text)['all']['children']['lab_x']['vars']['ansible_ssh_private_key_file'] == \
        "/p/it's: #key"


MOUNTINFO_HYBRID = """31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_cgroup_dirs_on_a_hybrid_hierarchy():
    assert hosts.cgroup_dirs(MOUNTINFO_HYBRID, 'demo-vault1') == [
        '/sys/fs/cgroup/systemd/trustroot-lab/demo-vault1', '/sys/fs/cgroup/unified/trustroot-lab/demo-vault1']


def test_cgroup_dirs_on_a_unified_hierarchy():
    text = '30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n'
    assert hosts.cgroup_dirs(text, 'x-h1') == ['/sys/fs/cgroup/trustroot-lab/x-h1']


# --- /proc parsing -----------------------------------------------------------------------------------

def test_parse_proc_stat_with_spaces_and_parens_in_the_name():
    fields = ['S', '42'] + ['0'] * 17 + ['123456'] + ['0'] * 10
    text = '1234 (odd) name (x)) ' + ' '.join(fields) + '\n'
    assert hosts.parse_proc_stat(text) == ('S', 42, 123456)


def test_parse_nspid():
    assert hosts.parse_nspid('Name:\tsystemd\nNSpid:\t27530\t1\nNSsid:\t1\n') == [27530, 1]
    assert hosts.parse_nspid('Name:\tbash\nNSpid:\t99\n') == [99]
    assert hosts.parse_nspid('Name:\tx\n') == []


def test_proc_start_time_of_this_process_and_of_none():
    assert hosts.proc_start_time(os.getpid()) > 0
    assert hosts.pid_alive(os.getpid(), hosts.proc_start_time(os.getpid()))
    assert not hosts.pid_alive(os.getpid(), hosts.proc_start_time(os.getpid()) + 1)
    assert not hosts.pid_alive(None, 5)

"""The lab of real systemd Debian hosts (tests/lab/hosts.py): boot, SSH, network, Ansible, reboot, teardown.

The tests share one 2-host lab and run in file order; the last one destroys it and checks that nothing
is left. The fixture destroys the lab in any case, also when a test fails.
"""

import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.lab import hosts as labhosts  # noqa: E402

VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
HOSTS = ['node1', 'node2']


def _cli(*args, check=True):
    proc = subprocess.run([sys.executable, '-m', 'tests.lab.hosts'] + list(args), cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300,
                          check=False)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _footprint(lab):
    """Every PID, mount and link the lab made, as recorded, for the teardown check."""
    pids = []
    sup = lab.state['supervisor']
    pids.append((sup['pid'], sup['start']))
    veths, cgroups = [], []
    for host in lab.hosts:
        rt = lab.runtime(host)
        pids += [(rt['nspawn_pid'], rt['nspawn_start']), (rt['leader_pid'], rt['leader_start'])]
        veths.append(rt['veth'])
        cgroups += rt['cgroups']
    return {'pids': pids, 'veths': veths, 'bridge': lab.state['bridge']['name'], 'cgroups': cgroups,
            'mounts': labhosts.mounts_under(lab.dir)}


def _processes_rooted_in(directory):
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                root = os.readlink('/proc/%s/root' % entry)
            except OSError:
                continue
            if root.startswith(directory + '/'):
                found.append(int(entry))
    return found


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail('the lab needs root (mounts, links, systemd-nspawn)')
    directory = str(tmp_path_factory.mktemp('lab') / 'hosts-lab')
    name = 'it%d' % os.getpid()
    started = time.monotonic()
    created = labhosts.Lab.create(name, HOSTS, directory=directory, timeout=180)
    created.created_in = time.monotonic() - started
    try:
        yield created
    finally:
        # Idempotent: after test_destroy_leaves_nothing this finds nothing left to do.
        labhosts.Lab(directory).destroy(keep_files=True)


def test_every_host_runs_systemd(lab):
    assert lab.created_in < 120, 'a 2-host lab took %.0fs' % lab.created_in
    for host in HOSTS:
        pid = lab.init_pid(host)
        assert pid, host
        state = labhosts.nsenter(pid, ['systemctl', 'is-system-running']).stdout.strip()
        failed = labhosts.nsenter(pid, ['systemctl', '--failed', '--plain', '--no-legend']).stdout.strip()
        assert state == 'running', '%s is %s; failed units: %s' % (host, state, failed)
        assert labhosts.nsenter(pid, ['cat', '/proc/1/comm']).stdout.strip() == 'systemd'
        assert labhosts.nsenter(pid, ['systemctl', 'is-active', 'ssh']).stdout.strip() == 'active'
        # Each host has cgroups of its own (shared ones make units fail with status 219/CGROUP).
        with open('/proc/%d/cgroup' % pid) as handle:
            own = '/%s/%s/payload/' % (labhosts.CGROUP_PARENT, labhosts.machine_name(lab.name, host))
            assert own in handle.read()


def test_status_cli(lab):
    status = json.loads(_cli('status', '--name', lab.name, '--json').stdout)
    assert status['supervisor_running'] is True
    assert [(h['name'], h['address'], h['state'], h['system']) for h in status['hosts']] == \
        [(h, lab.address(h), 'up', 'running') for h in HOSTS]


def test_ssh_from_the_machine_with_the_generated_key(lab):
    for host in HOSTS:
        proc = subprocess.run(['ssh', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
                               '-o', 'BatchMode=yes', '-i', lab.key, 'root@%s' % lab.address(host), 'hostname'],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60,
                              check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == host
        # The host keys the lab generated are the ones the hosts present: strict checking passes.
        proc = lab.ssh(host, 'cat /etc/machine-id')
        assert proc.returncode == 0, proc.stderr
    ids = [lab.ssh(h, 'cat /etc/machine-id').stdout.strip() for h in HOSTS]
    assert len(set(ids)) == len(HOSTS), 'machine ids are not unique: %s' % ids


def test_a_key_that_is_not_the_lab_key_is_refused(lab, tmp_path):
    other = str(tmp_path / 'other')
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', other], check=True)
    proc = subprocess.run(['ssh', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
                           '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', other,
                           'root@%s' % lab.address('node1'), 'hostname'],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60,
                          check=False)
    assert proc.returncode == 255 and 'Permission denied' in proc.stderr


def test_hosts_reach_each_other(lab):
    for src, dst in (('node1', 'node2'), ('node2', 'node1')):
        for target in (lab.address(dst), dst):  # by address, and by name through /etc/hosts
            proc = lab.ssh(src, 'ping -c 1 -W 2 %s' % target)
            assert proc.returncode == 0, '%s -> %s: %s%s' % (src, target, proc.stdout, proc.stderr)
            assert '1 received' in proc.stdout


def test_ansible_gathers_facts_over_ssh(lab, tmp_path):
    inventory = tmp_path / 'inventory.yml'
    inventory.write_text(_cli('inventory', '--name', lab.name).stdout)
    facts_dir = tmp_path / 'facts'
    facts_dir.mkdir()
    playbook = tmp_path / 'facts.yml'
    playbook.write_text(
        '- name: Facts of the lab hosts\n'
        '  hosts: lab_%s\n'
        '  gather_facts: true\n'
        '  tasks:\n'
        '    - name: The service manager is systemd\n'
        '      ansible.builtin.assert:\n'
        '        that: ansible_service_mgr == "systemd"\n'
        '    - name: Record the facts on the machine\n'
        '      ansible.builtin.copy:\n'
        '        content: "{{ {\'service_mgr\': ansible_service_mgr, \'hostname\': ansible_hostname,\n'
        '                     \'virtualization\': ansible_virtualization_role,\n'
        '                     \'address\': ansible_default_ipv4.address,\n'
        '                     \'distribution\': ansible_distribution_release} | to_json }}"\n'
        '        dest: "%s/{{ inventory_hostname }}.json"\n'
        '        mode: "0644"\n'
        '      delegate_to: localhost\n' % (lab.name, facts_dir))
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='0',
               PATH=VENV_BIN + os.pathsep + os.environ.get('PATH', ''))
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', str(inventory), str(playbook)],
                          cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout
    for host in HOSTS:
        facts = json.loads((facts_dir / ('%s.json' % host)).read_text())
        assert facts == {'service_mgr': 'systemd', 'hostname': host, 'virtualization': 'guest',
                         'address': lab.address(host), 'distribution': 'bookworm'}
    # Ansible's connection masters live in the lab's directory (destroy closes them).
    assert os.listdir(lab.state['ssh']['control_dir'])


def test_a_rebooted_host_comes_back(lab):
    before = lab.runtime('node2')
    assert before['boot'] == 1
    # Reboot the way a role would: over SSH (the connection drops, so the status is not checked).
    lab.ssh('node2', 'systemctl reboot', timeout=30)
    state = lab.wait_ready(['node2'], timeout=120, min_boot=2)['node2']
    assert state == 'running'
    after = lab.runtime('node2')
    assert after['boot'] == 2
    assert after['exits'] == [{'boot': 1, 'status': 133, 'at': after['exits'][0]['at']}]
    assert after['leader_pid'] != before['leader_pid']
    assert after['nspawn_pid'] != before['nspawn_pid']
    proc = lab.ssh('node2', 'hostname; cat /proc/sys/kernel/random/boot_id')
    assert proc.returncode == 0 and proc.stdout.split()[0] == 'node2'
    assert lab.ssh('node1', 'ping -c 1 -W 2 node2').returncode == 0
    # The other host was not touched.
    assert lab.runtime('node1')['boot'] == 1


def test_destroy_leaves_nothing(lab):
    footprint = _footprint(lab)
    assert len(footprint['mounts']) == len(HOSTS)
    links = labhosts.link_info()
    assert footprint['bridge'] in links and all(v in links for v in footprint['veths'])
    assert footprint['cgroups'] and all(os.path.isdir(c) for c in footprint['cgroups'])
    registry = lab.state['registry']
    assert os.path.islink(registry)

    done = lab.destroy(keep_files=True)
    assert 'supervisor %d' % lab.state['supervisor']['pid'] in done['stopped']
    assert done['killed'] == [], done  # every container shut down cleanly on SIGTERM

    for pid, start in footprint['pids']:
        assert not labhosts.pid_alive(pid, start), pid
    assert _processes_rooted_in(lab.dir) == []
    assert labhosts.mounts_under(lab.dir) == []
    links = labhosts.link_info()
    assert footprint['bridge'] not in links
    assert not [v for v in footprint['veths'] if v in links]
    assert not [c for c in footprint['cgroups'] if os.path.exists(c)]
    assert sorted(done['removed_cgroups']) == sorted(footprint['cgroups'])
    assert not os.path.lexists(registry)
    for host in HOSTS:
        assert lab.runtime(host)['state'] == 'stopped'
        assert not os.path.exists('/run/systemd/nspawn/propagate/%s' % labhosts.machine_name(lab.name, host))
    ssh_masters = subprocess.run(['pgrep', '-f', lab.state['ssh']['control_dir']], stdout=subprocess.PIPE,
                                 universal_newlines=True, check=False).stdout.split()
    assert ssh_masters == []

    # Idempotent: a second destroy, by library and by CLI, finds nothing to do.
    assert labhosts.Lab(lab.dir).destroy(keep_files=True) == \
        {'stopped': [], 'killed': [], 'removed_cgroups': [], 'unmounted': [], 'deleted_links': []}
    assert 'nothing to destroy' in _cli('destroy', '--name', lab.name).stdout

"""Fault drills on the vault_server rolling restart, on three real systemd lab hosts booted from the stack layer.

An operator changes the configuration (install.yml with a new log level): every node is marked and restarted one
at a time, standbys first, the leader last. While the first standby restarts, a thread does what a bad day does to
the second one: kills its bao process with SIGKILL (drill 1), or takes its network link down inside its container
(drill 2). The roll must stop before it restarts anything more (the leader above all), fail naming that node and
what is wrong, and a re-run once the node is back must restart the nodes it had not reached, with nothing lost.

Both drills run in file order on one lab (drill 2 starts from the cluster drill 1 recovered)."""

import json
import os
import re
import secrets
import subprocess
import threading
import time

import pytest

from tests.lab import hosts as labhosts
from tests.lab.common import wait_for
from tests.lab.stack import Stack, failure_report, total

NAME = 'it-drills'
GROUPS = {'vault_servers': ['vault1', 'vault2', 'vault3']}
VAULTS = GROUPS['vault_servers']
CONFIG = '/etc/openbao/openbao.hcl'
PENDING = '/etc/openbao/restart-pending'
# A drill run takes about a minute; a hung run fails the test instead of holding the lab for twenty.
RUN_TIMEOUT = 300
RESTART_TASK = re.compile(r'TASK \[trustroot\.ops\.vault_server : Restart (vault\d)\]')


@pytest.fixture(scope='module')
def stack():
    stack = Stack.from_layer(NAME, groups=GROUPS)
    try:
        stack.token = stack.decrypt(os.path.join(stack.files_dir, 'vault-init.json.age'))['root_token']
        stack.timings = {'boot from the layer': stack.boot_seconds}
        yield stack
    finally:
        print('\nfault drill timings (s): %s' % json.dumps(getattr(stack, 'timings', {})))
        labhosts.destroy(NAME)


def run(stack, label, *args):
    """install.yml with ``args``; a run that hangs (an SSH session to a node cut off waits on TCP for many
    minutes) fails the test after RUN_TIMEOUT seconds instead."""
    started = time.monotonic()
    proc = stack.run('install', list(args), timeout=RUN_TIMEOUT)
    stack.timings[label] = round(time.monotonic() - started, 1)
    return proc


# --- what the nodes say, read from outside the play ----------------------------------------------------------

def node_state(stack, host):
    """active / standby / sealed / down, from the node's sys/health."""
    try:
        status = stack.vault_api(host, 'sys/health', timeout=2)[0]
    except OSError:  # refused, unreachable, timed out: a node killed or cut off
        return 'down'
    return {200: 'active', 429: 'standby', 503: 'sealed'}.get(status, 'http %d' % status)


def states(stack):
    return {host: node_state(stack, host) for host in VAULTS}


def leader(stack):
    found = [host for host, state in states(stack).items() if state == 'active']
    return found[0] if len(found) == 1 else None


def main_pid(stack, host):
    return stack.lab.exec(host, ['systemctl', 'show', '-p', 'MainPID', '--value', 'openbao'], check=True).stdout.strip()


def started_after_config(stack, host):
    """Whether the running bao of ``host`` started after its configuration file was last written (it runs it)."""
    script = ('start=$(date -d "$(systemctl show -p ExecMainStartTimestamp --value openbao)" +%s); '
              'written=$(stat -c %Y ' + CONFIG + '); test "$start" -ge "$written"')
    return stack.lab.exec(host, ['sh', '-c', script]).returncode == 0


def config_has(stack, host, text):
    return text in stack.lab.exec(host, ['cat', CONFIG], check=True).stdout


def pending_marker(stack, host):
    return stack.lab.exec(host, ['test', '-e', PENDING]).returncode == 0


def restarted(output):
    return RESTART_TASK.findall(output)


def kv(stack, method, path, body=None):
    """A KV v1 call through whichever node leads now."""
    host = wait_for(lambda: leader(stack), timeout=60, what='an active node')
    return stack.vault_api(host, path, method, body, token=stack.token)


def read_back(stack, path):
    status, body = kv(stack, 'GET', path)
    assert status == 200, (path, status, body)
    return body['data']['value']


def assert_converged(stack, proc):
    assert proc.returncode == 0, failure_report(proc)
    assert list(states(stack).values()).count('active') == 1, states(stack)
    assert sorted(states(stack).values()) == ['active', 'standby', 'standby'], states(stack)


class Drill(threading.Thread):
    """Waits until the roll restarts ``first`` (its bao's PID changes), then does ``fault`` to ``victim`` at once:
    a point fixed by the play itself, not by a sleep."""

    def __init__(self, stack, first, victim, fault, timeout=300):
        super().__init__(daemon=True)
        self.stack, self.first, self.victim, self.fault, self.timeout = stack, first, victim, fault, timeout
        self.pid_before = main_pid(stack, first)
        self.done = None
        self.error = None

    def run(self):
        deadline = time.monotonic() + self.timeout
        try:
            while time.monotonic() < deadline:
                if main_pid(self.stack, self.first) != self.pid_before:
                    self.done = self.fault(self.stack, self.victim)
                    return
                time.sleep(0.05)
            self.error = 'the roll never restarted %s' % self.first
        except Exception as err:  # reported by the test, which asserts the fault happened
            self.error = repr(err)


def kill_bao(stack, host):
    pid = main_pid(stack, host)
    stack.lab.exec(host, ['kill', '-9', pid], check=True)
    return pid


def cut_network(stack, host):
    stack.lab.exec(host, ['ip', 'link', 'set', 'host0', 'down'], check=True)
    return 'host0 down'


def reconnect(stack, host):
    stack.lab.exec(host, ['ip', 'link', 'set', 'host0', 'up'], check=True)
    stack.lab.exec(host, ['ip', 'route', 'replace', 'default', 'via', stack.lab.state['bridge']['address']], check=True)
    # Ansible's SSH master to the host kept a connection that died with the link: close it, the next run opens anew.
    control = 'ControlPath=%s/%%C' % os.path.join(stack.lab.dir, 'ssh', 'cp')
    subprocess.run(['ssh', '-O', 'exit', '-o', control, 'root@' + stack.lab.address(host)], capture_output=True, timeout=10, check=False)


def roles_of(stack):
    """(leader, first standby the roll restarts, second standby) in the role's order: standbys in inventory order."""
    lead = wait_for(lambda: leader(stack), timeout=60, what='an active node')
    standbys = [host for host in VAULTS if host != lead]
    return lead, standbys[0], standbys[1]


def stopped_before(output, host):
    """The role's failure message for a roll stopped before ``host`` (one line of ansible's output)."""
    found = [line for line in output.splitlines() if 'vault_server rolling restart stopped before %s:' % host in line]
    return found[0] if found else ''


# --- drill 1: a node killed in the middle of a rolling restart ---------------------------------------------

def test_node_killed_mid_roll_stops_it_before_the_leader_then_a_rerun_converges(stack):
    value = secrets.token_hex(8)
    assert kv(stack, 'POST', 'sys/mounts/drill', {'type': 'kv', 'options': {'version': '1'}})[0] == 204
    assert kv(stack, 'PUT', 'drill/before', {'value': value})[0] == 204
    stack.before = value
    lead, first, victim = roles_of(stack)
    leader_pid = main_pid(stack, lead)

    drill = Drill(stack, first, victim, kill_bao)
    drill.start()
    proc = run(stack, 'drill 1: roll with a node killed', '-e', 'vault_server_log_level=debug')
    drill.join(30)
    assert drill.done and not drill.error, drill.error

    # The play stopped before the killed node, failed naming it and what is wrong, and never reached the leader.
    assert proc.returncode != 0, proc.stdout[-4000:]
    message = stopped_before(proc.stdout, victim)
    address = stack.lab.address(victim)
    assert message, failure_report(proc)
    print('drill 1, the play stopped with: %s' % message.strip())
    assert re.search(r'%s \(https://%s:8200\) (is sealed|does not answer)' % (victim, re.escape(address)), message), message
    assert restarted(proc.stdout) == [first], restarted(proc.stdout)
    assert main_pid(stack, lead) == leader_pid, 'the leader was restarted while a standby was down'
    for host in (victim, lead):
        assert pending_marker(stack, host), '%s should still owe its restart' % host
    assert not pending_marker(stack, first)

    # systemd started the killed node again (Restart=on-failure): it answers, sealed; health.yml says so per node.
    wait_for(lambda: node_state(stack, victim) == 'sealed', timeout=60, what='%s back, sealed' % victim)
    assert main_pid(stack, victim) != drill.done
    started = time.monotonic()
    health = stack.run('health')
    stack.timings['drill 1: health.yml'] = round(time.monotonic() - started, 1)
    assert health.returncode != 0, health.stdout[-3000:]
    assert re.search(r'https://%s:8200\s+sealed\s' % re.escape(address), health.stdout), health.stdout[-3000:]
    for host in VAULTS:
        if host != victim:
            assert re.search(r'https://%s:8200\s+unsealed\s+(active|standby)' % re.escape(stack.lab.address(host)),
                             health.stdout), health.stdout[-3000:]

    # Recovery: the same run again unseals the node and restarts the two nodes still owed a restart.
    proc = run(stack, 'drill 1: recovery run', '-e', 'vault_server_log_level=debug')
    assert_converged(stack, proc)
    assert sorted(restarted(proc.stdout)) == sorted([victim, lead]), restarted(proc.stdout)
    for host in VAULTS:
        assert config_has(stack, host, 'log_level     = "debug"')
        assert started_after_config(stack, host), '%s runs a configuration older than its file' % host
        assert not pending_marker(stack, host)
    assert read_back(stack, 'drill/before') == value

    again = run(stack, 'drill 1: second run', '-e', 'vault_server_log_level=debug')
    assert again.returncode == 0, failure_report(again)
    assert total(again.stdout) == 0, again.stdout[-3000:]
    assert restarted(again.stdout) == []


# --- drill 2: a standby cut off the network during a rolling restart ---------------------------------------

def test_standby_cut_off_mid_roll_stops_it_then_reconnect_and_rerun_converge(stack):
    value = secrets.token_hex(8)
    if kv(stack, 'GET', 'sys/mounts/drill')[0] != 200:  # drill 1 made it, unless it ran alone or failed early
        assert kv(stack, 'POST', 'sys/mounts/drill', {'type': 'kv', 'options': {'version': '1'}})[0] == 204
    assert kv(stack, 'PUT', 'drill/cut', {'value': value})[0] == 204
    lead, first, victim = roles_of(stack)
    pids = {host: main_pid(stack, host) for host in (lead, victim)}

    drill = Drill(stack, first, victim, cut_network)
    drill.start()
    try:
        # An unreachable node is waited for vault_server_restart_check_timeout (30 s) before the roll stops; 10 here.
        proc = run(stack, 'drill 2: roll with a standby cut off', '-e', 'vault_server_log_level=warn',
                   '-e', 'vault_server_restart_check_timeout=10')
        drill.join(30)
        assert drill.done and not drill.error, drill.error

        assert proc.returncode != 0, proc.stdout[-4000:]
        message = stopped_before(proc.stdout, victim)
        assert message, failure_report(proc)
        print('drill 2, the play stopped with: %s' % message.strip())
        assert '%s (https://%s:8200) does not answer' % (victim, stack.lab.address(victim)) in message, message
        # Nothing was restarted after the first standby: not the node cut off, not the leader.
        assert restarted(proc.stdout) == [first], restarted(proc.stdout)
        assert {host: main_pid(stack, host) for host in pids} == pids
        assert node_state(stack, victim) == 'down'
        assert node_state(stack, lead) == 'active' or node_state(stack, first) == 'active'
    finally:
        reconnect(stack, victim)
    wait_for(lambda: node_state(stack, victim) == 'standby', timeout=60, what='%s back, standby' % victim)

    proc = run(stack, 'drill 2: recovery run', '-e', 'vault_server_log_level=warn')
    assert_converged(stack, proc)
    assert sorted(restarted(proc.stdout)) == sorted([victim, lead]), restarted(proc.stdout)
    for host in VAULTS:
        assert config_has(stack, host, 'log_level     = "warn"')
        assert started_after_config(stack, host), '%s runs a configuration older than its file' % host
    assert read_back(stack, 'drill/cut') == value
    if getattr(stack, 'before', None):
        assert read_back(stack, 'drill/before') == stack.before

"""The vault_server role and the install / unseal / health playbooks on three real systemd lab hosts:
converge, idempotence, check mode with diff, a rolling restart watched from outside, and a full reboot
recovered by unseal.yml. The hosts boot from the stack layer (tests/lab/layers.py), converged."""

import json
import re
import ssl
import threading
import time
import urllib.request

import pytest

from tests.lab import hosts as labhosts
from tests.lab.common import Sampler
from tests.lab.stack import Stack, total


GROUPS = {'vault_servers': ['vault1', 'vault2', 'vault3']}
CONFIG = '/etc/openbao/openbao.hcl'


@pytest.fixture(scope='module')
def stack():
    stack = Stack.from_layer('it-vault', groups=GROUPS)
    try:
        yield stack
    finally:
        labhosts.destroy('it-vault')


def addresses(stack):
    return dict(stack.lab.addresses)


def seal_states(stack):
    """{host: True (sealed) / False (unsealed) / None (not answering)} from each node's seal-status."""
    context = ssl.create_default_context(cafile=stack.files_dir + '/vault-ca/ca.crt')
    out = {}
    for host, address in addresses(stack).items():
        try:
            with urllib.request.urlopen('https://%s:8200/v1/sys/seal-status' % address, context=context,
                                        timeout=2) as response:
                out[host] = json.load(response)['sealed']
        except Exception:  # a node being restarted refuses connections: that is what is watched
            out[host] = None
    return out


def leader(stack):
    context = ssl.create_default_context(cafile=stack.files_dir + '/vault-ca/ca.crt')
    for host, address in addresses(stack).items():
        try:
            with urllib.request.urlopen('https://%s:8200/v1/sys/leader' % address, context=context,
                                        timeout=2) as response:
                data = json.load(response)
            if data.get('is_self'):
                return host
        except Exception:
            continue
    return None


def main_pids(stack):
    return {host: stack.lab.exec(host, ['systemctl', 'show', '-p', 'MainPID', '--value', 'openbao'],
                                 check=True).stdout.strip() for host in GROUPS['vault_servers']}


def seal_watcher(stack):
    """A Sampler of how many nodes are sealed or down at each moment."""
    return Sampler(lambda: sum(1 for sealed in seal_states(stack).values() if sealed is not False))


def test_first_converge_changed_then_second_changes_nothing(stack):
    # The first converge is the install that made the layer, on fresh hosts; this lab booted from it.
    assert total(stack.layer.install_output()) > 0
    assert all(sealed is False for sealed in seal_states(stack).values())
    again = stack.run('install')
    assert again.returncode == 0, again.stdout[-3000:]
    assert total(again.stdout) == 0, again.stdout[-3000:]


def test_check_diff_on_converged_cluster_reports_nothing(stack):
    proc = stack.run('install', ['--check', '--diff'])
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert total(proc.stdout) == 0, proc.stdout[-3000:]


def test_check_diff_with_a_changed_variable_shows_the_diff_and_changes_nothing(stack):
    pids = main_pids(stack)
    proc = stack.run('install', ['--check', '--diff', '-e', 'vault_server_log_level=debug'])
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert proc.stdout.count('+log_level     = "debug"') == 3
    assert proc.stdout.count('-log_level     = "info"') == 3
    assert total(proc.stdout) > 0
    for host in GROUPS['vault_servers']:
        text = stack.lab.exec(host, ['cat', CONFIG], check=True).stdout
        assert 'log_level     = "info"' in text
    assert main_pids(stack) == pids, 'check mode restarted a node'


def test_config_change_restarts_one_node_at_a_time_leader_last(stack):
    pids = main_pids(stack)
    leader_before = leader(stack)
    assert leader_before in GROUPS['vault_servers']
    watcher = seal_watcher(stack)
    watcher.start()
    try:
        proc = stack.run('install', ['-e', 'vault_server_log_level=debug'])
    finally:
        samples = watcher.stop()
    assert proc.returncode == 0, proc.stdout[-4000:]
    restarted = re.findall(r'TASK \[trustroot\.ops\.vault_server : Restart (vault\d)\]', proc.stdout)
    assert sorted(restarted) == GROUPS['vault_servers']
    assert restarted[-1] == leader_before
    after = main_pids(stack)
    assert all(after[host] != pids[host] for host in pids), (pids, after)
    # The watcher saw nodes go down (one at a time), never two at once: a majority stayed unsealed.
    assert len(samples) > 20
    assert max(samples) == 1, samples
    assert all(sealed is False for sealed in seal_states(stack).values())
    for host in GROUPS['vault_servers']:
        assert 'log_level     = "debug"' in stack.lab.exec(host, ['cat', CONFIG], check=True).stdout


def test_reboot_of_every_host_then_unseal_playbook_brings_the_cluster_back(stack):
    threads = [threading.Thread(target=stack.lab.reboot, args=(host,)) for host in GROUPS['vault_servers']]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and None in seal_states(stack).values():
        time.sleep(0.5)
    assert all(sealed is True for sealed in seal_states(stack).values()), 'nodes should come back sealed'
    health = stack.run('health')
    assert health.returncode != 0 and 'sealed' in health.stdout
    proc = stack.run('unseal')
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert all(sealed is False for sealed in seal_states(stack).values())
    assert leader(stack) in GROUPS['vault_servers']
    health = stack.run('health')
    assert health.returncode == 0, health.stdout[-3000:]
    assert 'Vault / OpenBao: all unsealed' in health.stdout

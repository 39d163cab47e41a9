"""The whole stack of playbooks/install.yml (3 OpenBao nodes, a SPIRE server, 2 agents) on lab hosts.

The first install is the one that made the stack layer (tests/lab/layers.py): on fresh hosts, at -vvvv, its output
kept with the layer. This lab boots from that layer. Checked here: neither that install nor a second one at -vvvv
leaks a secret (the unseal keys and root token of the init material, the join tokens the agents attested with,
read back from the server's agent IDs), the second changes nothing, health.yml passes, a workload on each agent
gets its SVID with the registered SPIFFE ID, and backup.yml at -vvvv leaks none of the secrets either."""

import json
import subprocess

import pytest

from tests.lab import hosts as labhosts
from tests.lab.stack import DEMO_GROUPS, SERVER_SOCKET, TRUST_DOMAIN, Stack, fetch_workload_svid, total

NAME = 'it-stack'


@pytest.fixture(scope='module')
def stack():
    stack = Stack.from_layer(NAME, groups=DEMO_GROUPS)
    try:
        yield stack
    finally:
        labhosts.destroy(NAME)


def join_tokens(stack):
    out = stack.lab.exec('spire-server1', ['spire-server', 'agent', 'list', '-socketPath', SERVER_SOCKET,
                                           '-output', 'json'], check=True).stdout
    paths = [agent['id']['path'] for agent in json.loads(out).get('agents') or []]
    return [path.rsplit('/', 1)[1] for path in paths if path.startswith('/spire/agent/join_token/')]


def test_install_at_vvvv_twice_leaks_no_secret_and_second_run_changes_nothing(stack):
    first = stack.layer.install_output()
    second = stack.run('install', ['-vvvv'])
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
    assert total(first) > 0
    assert total(second.stdout) == 0, second.stdout[-3000:]
    outputs = first + second.stdout + second.stderr
    assert outputs.count('ESTABLISH SSH CONNECTION') > 1 and 'ESTABLISH SSH CONNECTION' in second.stdout, \
        'both runs must be at -vvvv'

    secrets = stack.vault_secrets()
    tokens = join_tokens(stack)
    assert len(secrets) == 11 and len(tokens) == 2
    for secret in secrets + tokens:
        assert len(secret) >= 16 and secret not in outputs, 'a secret reached the playbook output'


def test_health_passes_and_each_agent_serves_its_workload(stack):
    health = stack.run('health')
    assert health.returncode == 0, health.stdout[-3000:] + health.stderr[-2000:]
    assert 'Vault / OpenBao: all unsealed' in health.stdout
    for agent in DEMO_GROUPS['spire_agents']:
        fetched = fetch_workload_svid(stack.lab, agent)
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        assert 'spiffe://%s/workload/demo' % TRUST_DOMAIN in fetched.stdout, fetched.stdout


def test_backup_at_vvvv_leaks_no_secret(stack):
    """backup.yml reads the root token from the material and makes the snapshot on the leader: at -vvvv neither
    that token, the unseal keys nor the age identity reach the output; the archives are written."""
    backup_dir = stack.files_dir + '/backups'
    proc = stack.run('backup', ['-vvvv', '-e', 'backup_controller_dir=' + backup_dir, '-e', 'backup_fresh_for=0'])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert 'ESTABLISH SSH CONNECTION' in proc.stdout, 'the run must be at -vvvv'
    archives = subprocess.run(['find', backup_dir, '-name', '*.tar.gz.age'], check=True, capture_output=True,
                              text=True).stdout.split()
    assert any('/vault/' in path for path in archives) and any('/spire-server/' in path for path in archives), archives
    with open(stack.files_dir + '/operator.agekey') as handle:
        identity = [line for line in handle.read().splitlines() if line.startswith('AGE-SECRET-KEY-')]
    outputs = proc.stdout + proc.stderr
    for secret in stack.vault_secrets() + identity:
        assert len(secret) >= 16 and secret not in outputs, 'a secret reached the playbook output'

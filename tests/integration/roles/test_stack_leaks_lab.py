"""The whole install flow on lab hosts at -vvvv leaks no secret: not the unseal keys or root token (from
the init material), not the join tokens the agents attested with (read back from the server's agent IDs).
The second run changes nothing; backup.yml at -vvvv leaks none of them either."""

import json
import subprocess

import pytest

from tests.lab import hosts as labhosts
from tests.lab.stack import DEMO_GROUPS, Stack, total

SERVER_SOCKET = '/run/spire/server/private/api.sock'


@pytest.fixture(scope='module')
def stack():
    stack = Stack.up('it-stack', groups=DEMO_GROUPS)
    try:
        yield stack
    finally:
        labhosts.destroy('it-stack')


def join_tokens(stack):
    out = stack.lab.exec('spire-server1', ['spire-server', 'agent', 'list', '-socketPath', SERVER_SOCKET,
                                           '-output', 'json'], check=True).stdout
    paths = [agent['id']['path'] for agent in json.loads(out).get('agents') or []]
    return [path.rsplit('/', 1)[1] for path in paths if path.startswith('/spire/agent/join_token/')]


def test_install_at_vvvv_twice_leaks_no_secret_and_second_run_changes_nothing(stack):
    runs = [stack.run('install', ['-vvvv']) for _attempt in ('first', 'second')]
    for proc in runs:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert total(runs[0].stdout) > 0
    assert total(runs[1].stdout) == 0, runs[1].stdout[-3000:]
    outputs = ''.join(proc.stdout + proc.stderr for proc in runs)
    assert 'ESTABLISH SSH CONNECTION' in outputs, 'the runs must be at -vvvv'

    secrets = stack.vault_secrets()
    tokens = join_tokens(stack)
    assert len(secrets) == 11 and len(tokens) == 2
    for secret in secrets + tokens:
        assert len(secret) >= 16 and secret not in outputs, 'a secret reached the playbook output'


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

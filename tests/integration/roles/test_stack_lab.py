"""The whole stack of playbooks/install.yml (3 OpenBao nodes, a SPIRE server, 2 agents) on lab hosts.

The first install is the one that made the stack layer (tests/lab/layers.py): on fresh hosts, at -vvvv, its output
kept with the layer. This lab boots from that layer. Checked here: neither that install nor a second one at -vvvv
leaks a secret (the unseal keys and root token of the init material, the join tokens the agents attested with,
read back from the server's agent IDs), the second changes nothing, health.yml passes, a workload on each agent
gets its SVID with the registered SPIFFE ID, and backup.yml at -vvvv leaks none of the secrets either. Audit: the
active OpenBao node's audit file (declared by the role) loses no line when logrotate (the role's configuration, forced)
rotates it under a steady request loop, and the SPIRE server writes its audit log to the journal."""

import json
import subprocess
import threading
import time

import pytest

from tests.lab import hosts as labhosts
from tests.lab.common import wait_for
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


AUDIT_FILE = '/var/log/openbao/audit.log'


def request_loop(stack, host, token, stop, sent, failed):
    """Write cubbyhole/rotation/<n> on ``host`` until ``stop`` is set; the numbers answered 2xx go to ``sent``."""
    number = 0
    while not stop.is_set():
        number += 1
        try:
            status, body = stack.vault_api(host, 'cubbyhole/rotation/%d' % number, 'PUT', {'n': number}, token=token)
        except OSError as exc:
            failed.append((number, str(exc)))
            continue
        (sent if status in (200, 204) else failed).append(number if status in (200, 204) else (number, status, body))


def audit_entries(stack, host, path):
    out = stack.lab.exec(host, ['cat', path], check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_audit_rotation_under_a_request_loop_loses_no_line(stack):
    """Requests go to the active node for ~2 s, logrotate -f runs with the role's configuration (rename, new 0600
    file, SIGHUP), requests go on ~2 s: every answered request has its request and response entries, across the
    rotated file and the new one, and both files got some."""
    token = stack.decrypt(stack.files_dir + '/vault-init.json.age')['root_token']
    vaults = DEMO_GROUPS['vault_servers']
    active = [host for host in vaults if stack.vault_api(host, 'sys/health')[0] == 200]
    assert len(active) == 1, active
    active = active[0]
    stop, sent, failed = threading.Event(), [], []
    loop = threading.Thread(target=request_loop, args=(stack, active, token, stop, sent, failed), daemon=True)
    loop.start()
    try:
        wait_for(lambda: len(sent) >= 50, timeout=30, interval=0.1, what='50 requests answered before the rotation')
        rotated = stack.lab.exec(active, ['logrotate', '--force', '/etc/logrotate.d/openbao'])
        before_rotation = len(sent)
        wait_for(lambda: len(sent) >= before_rotation + 50, timeout=30, interval=0.1,
                 what='50 requests answered after the rotation')
        time.sleep(0.5)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert not failed, failed[:5]

    old = audit_entries(stack, active, AUDIT_FILE + '.1')
    new = audit_entries(stack, active, AUDIT_FILE)

    def numbers(entries, kind):
        return [int(e['request']['path'].rsplit('/', 1)[1]) for e in entries
                if e.get('type') == kind and e.get('request', {}).get('path', '').startswith('cubbyhole/rotation/')]
    for kind in ('request', 'response'):
        logged = numbers(old, kind) + numbers(new, kind)
        assert sorted(logged) == sorted(sent), '%s entries: %d logged for %d answered requests (missing %s)' % (
            kind, len(logged), len(sent), sorted(set(sent) - set(logged))[:10])
    assert numbers(old, 'response') and numbers(new, 'response'), 'the rotation did not happen during the loop'
    mode = stack.lab.exec(active, ['stat', '-c', '%U:%G %a', AUDIT_FILE, AUDIT_FILE + '.1'], check=True).stdout.split()
    assert mode == ['openbao:openbao', '600'] * 2, mode
    assert token not in json.dumps(old + new), 'the root token reached an audit file in clear'


def test_spire_server_audit_log_goes_to_the_journal(stack):
    join_tokens(stack)  # an API call
    out = stack.lab.exec('spire-server1', ['journalctl', '-u', 'spire-server', '--no-pager', '-o', 'cat'],
                         check=True).stdout
    audit = [line for line in out.splitlines() if 'type=audit' in line]
    assert any('method=ListAgents' in line or 'ListAgents' in line for line in audit), audit[-5:]

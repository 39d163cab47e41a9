"""playbooks/upgrade.yml on the whole stack booted from the stack-previous layer (3 OpenBao nodes, a SPIRE server and
2 agents installed at the previous releases: OpenBao 2.6.2, SPIRE 1.14.5), to the current ones (2.7.2, 1.15.3).

1. --check prints both plans node by node and changes nothing.
2. A plan that skips a SPIRE minor is refused before any change, naming the rule and the versions to go through.
3. A bad checksum for the new OpenBao artifact fails naming it, after the pre-flight backup, with every node still
   serving on 2.6.2.
4. The upgrade, at -vvvv, while a client reads a KV secret every 50 ms (from any node that answers, as behind a load
   balancer) and a workload on each agent host fetches its SVID in a loop: at most one window of failed reads (the
   leader hand-over), no workload ever without a valid SVID, every node on the new version after, no secret in the
   output.
5. A second run changes nothing."""

import json
import os
import re
import time

import pytest
from cryptography import x509

from tests.lab import hosts as labhosts
from tests.lab import leaks
from tests.lab.common import ROOT, Sampler
from tests.lab.stack import AGENT_SOCKET, DEMO_USER, Stack, failure_report, fetch_workload_svid, read_artifacts, total

NAME = 'it-upgrade'
VAULTS = ['vault1', 'vault2', 'vault3']
AGENTS = ['spire-agent1', 'spire-agent2']
OLD = {'openbao': '2.6.2', 'spire': '1.14.5'}
NEW = {'openbao': '2.7.2', 'spire': '1.15.3'}
LINKS = {'vault1': ['bao'], 'vault2': ['bao'], 'vault3': ['bao'], 'spire-server1': ['spire-server'],
         'spire-agent1': ['spire-agent'], 'spire-agent2': ['spire-agent']}


def log(text):
    """Timings and figures, for the record of the run (xdist hides a test's output)."""
    print(text)
    with open(os.path.join(os.environ.get('TMPDIR', '/tmp'), 'upgrade-lab.log'), 'a') as handle:
        handle.write(text + '\n')


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    started = time.monotonic()
    stack = Stack.from_layer(NAME, layer='stack-previous')
    stack.started = started
    try:
        material = stack.decrypt(os.path.join(stack.files_dir, 'vault-init.json.age'))
        stack.root_token = material['root_token']
        stack.secrets = leaks.material_secrets(material)
        status = stack.vault_api('vault1', 'sys/mounts/app', 'POST', {'type': 'kv', 'options': {'version': '2'}},
                                 token=stack.root_token)[0]
        assert status == 204, status
        wait_kv_write(stack)
        for host in AGENTS:
            assert fetch_workload_svid(stack.lab, host).returncode == 0  # also adds the workload's user
            # Where the workload's fetches write its SVID (spire-agent -write does not make the directory).
            stack.lab.exec(host, ['runuser', '-u', DEMO_USER, '--', 'mkdir', '-p', '/tmp/svid-' + DEMO_USER], check=True)
        artifacts = read_artifacts()
        new_vars = {
            'vault_server_version': NEW['openbao'], 'vault_server_artifact_sha256': artifacts['bao'],
            'vault_server_artifact_path': os.path.join(ROOT, '.cache', 'bin', 'bao'),
            'spire_server_artifact_path': os.path.join(ROOT, '.cache', 'bin', 'spire-server'),
            'spire_agent_artifact_path': os.path.join(ROOT, '.cache', 'bin', 'spire-agent'),
            'spire_server_version': NEW['spire'], 'spire_server_artifact_sha256': artifacts['spire-server'],
            'spire_agent_version': NEW['spire'], 'spire_agent_artifact_sha256': artifacts['spire-agent'],
            'backup_controller_dir': str(tmp_path_factory.mktemp('backups')),
            'spire_agent_upgrade_check_users': [DEMO_USER],
        }
        current = stack.vars_path + '.current'
        with open(current, 'w') as handle:
            json.dump(new_vars, handle)
        stack.new_vars = current
        stack.token_vars = stack.write_secret_vars('upgrade-token.json', {'vault_server_upgrade_token': stack.root_token})
        yield stack
    finally:
        labhosts.destroy(NAME)
        log('upgrade lab: boot %.1f s, whole file %.1f s' % (stack.boot_seconds, time.monotonic() - started))


def wait_kv_write(stack):
    deadline = time.monotonic() + 30
    while True:
        status, body = stack.vault_api('vault1', 'app/data/upgrade', 'POST', {'data': {'answer': '42'}},
                                       token=stack.root_token)
        if status == 200 or time.monotonic() > deadline:
            assert status == 200, (status, body)
            return
        time.sleep(0.5)  # a new KV v2 mount upgrades its storage for a moment before it takes writes


def upgrade(stack, *args):
    started = time.monotonic()
    proc = stack.run('playbooks/upgrade.yml', ['-e', '@' + stack.new_vars, '-e', '@' + stack.token_vars] + list(args))
    proc.seconds = round(time.monotonic() - started, 1)
    return proc


def state(stack):
    """What an upgrade changes: each node's reported version and role, each host's links and releases on disk."""
    out = {}
    for host in VAULTS:
        status, body = stack.vault_api(host, 'sys/seal-status')
        assert status == 200, (host, status, body)
        out[host + ':version'] = body['version']
        out[host + ':health'] = stack.vault_api(host, 'sys/health')[0]
    for host, binaries in LINKS.items():
        out[host + ':links'] = stack.lab.exec(host, ['readlink'] + ['/usr/local/bin/' + b for b in binaries]).stdout
        out[host + ':releases'] = stack.lab.exec(host, ['find', '/opt/trustroot', '-maxdepth', '2']).stdout
        service = 'openbao' if host in VAULTS else binaries[0]
        out[host + ':running'] = stack.lab.exec(host, ['systemctl', 'show', '--property=MainPID,ActiveState',
                                                       service]).stdout
    return out


def serving_versions(stack):
    return {host: stack.vault_api(host, 'sys/seal-status')[1].get('version') for host in VAULTS}


def running_spire_version(stack, host, binary):
    pid = stack.lab.exec(host, ['systemctl', 'show', '--property=MainPID', '--value', binary], check=True).stdout.strip()
    proc = stack.lab.exec(host, ['/proc/%s/exe' % pid, '--version'], check=True)
    return (proc.stdout.strip() or proc.stderr.strip()).split('-dev-')[0]


def test_check_mode_prints_the_plans_and_changes_nothing(stack):
    before = state(stack)
    proc = upgrade(stack, '--check', '--diff')
    assert proc.returncode == 0, failure_report(proc)
    active = [host for host in VAULTS if before[host + ':health'] == 200]
    assert len(active) == 1, before
    steps = ['%s: 2.6.2 -> 2.7.2 (%s)' % (host, 'active' if host in active else 'standby') for host in VAULTS]
    expected = steps + ['spire-server1: 1.14.5 -> 1.15.3 (server)', 'spire-agent1: 1.14.5 -> 1.15.3 (agent)',
                        'spire-agent2: 1.14.5 -> 1.15.3 (agent)',
                        'a backup of both systems would be taken and verified before any change']
    for line in expected:
        assert line in proc.stdout, line
    # Standbys first, the active node last.
    assert max(proc.stdout.find(step) for step in steps) == proc.stdout.find(steps[VAULTS.index(active[0])])
    assert state(stack) == before
    assert not os.listdir(json.load(open(stack.new_vars))['backup_controller_dir'])
    log('upgrade lab: --check %.1f s' % proc.seconds)


def test_a_plan_that_skips_a_spire_minor_is_refused_before_any_change(stack):
    before = state(stack)
    proc = upgrade(stack, '-e', '{"spire_server_version": "1.16.0", "spire_agent_version": "1.16.0"}')
    assert proc.returncode != 0
    assert 'upgrade jumps more than one minor version' in proc.stdout, failure_report(proc)
    assert 'spire-server1: 1.14.5 -> 1.15.x -> 1.16.0' in proc.stdout
    assert 'PLAY [Take the backup]' not in proc.stdout and 'Upgrade Vault / OpenBao' not in proc.stdout
    assert state(stack) == before


def test_a_bad_checksum_leaves_the_cluster_serving_on_the_old_version(stack):
    before = state(stack)
    proc = upgrade(stack, '-e', 'vault_server_artifact_sha256=' + '0' * 64)
    assert proc.returncode != 0
    assert re.search(r'bao has sha256 [0-9a-f]{64}, not install_artifact_sha256 0{64}', proc.stdout), failure_report(proc)
    assert 'taking a backup of both systems and verifying it before any change' in proc.stdout
    assert 'backup verification: PASS' in proc.stdout
    after = state(stack)
    assert after == before
    assert serving_versions(stack) == {host: OLD['openbao'] for host in VAULTS}
    assert sorted(after[host + ':health'] for host in VAULTS) == [200, 429, 429]
    status, body = stack.vault_api('vault2', 'app/data/upgrade', token=stack.root_token)
    assert status == 200 and body['data']['data'] == {'answer': '42'}
    log('upgrade lab: bad checksum run (with the pre-flight backup and its restore test) %.1f s' % proc.seconds)


def read_kv(stack, turn=[0]):  # pylint: disable=dangerous-default-value
    """One client read: the nodes in turn, the first that returns the secret wins (a load balancer's view)."""
    turn[0] += 1
    for offset in range(len(VAULTS)):
        host = VAULTS[(turn[0] + offset) % len(VAULTS)]
        try:
            status, body = stack.vault_api(host, 'app/data/upgrade', token=stack.root_token, timeout=2)
        except OSError:
            continue
        if status == 200 and body.get('data', {}).get('data') == {'answer': '42'}:
            return time.time(), True
    return time.time(), False


def svid_fetcher(stack, host):
    """One workload fetch on ``host``: (time, ok, not_after of the SVID it holds now)."""
    def fetch():
        proc = stack.lab.exec(host, ['runuser', '-u', DEMO_USER, '--', 'spire-agent', 'api', 'fetch', 'x509',
                                     '-socketPath', AGENT_SOCKET, '-timeout', '5s', '-write', '/tmp/svid-' + DEMO_USER])
        not_after = None
        if proc.returncode == 0:
            pem = stack.lab.exec(host, ['cat', '/tmp/svid-%s/svid.0.pem' % DEMO_USER]).stdout
            if pem:
                not_after = x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc.timestamp()
        return time.time(), proc.returncode == 0, not_after
    return fetch


def failure_windows(samples):
    """[(start, end)] of runs of failed samples (time, ok, ...)."""
    windows, start, last = [], None, None
    for sample in samples:
        if not sample[1] and start is None:
            start = sample[0]
        if sample[1] and start is not None:
            windows.append((start, last))
            start = None
        last = sample[0]
    if start is not None:
        windows.append((start, last))
    return windows


def test_upgrade_under_load_keeps_serving(stack):
    kv = Sampler(lambda: read_kv(stack), interval=0.05)
    svids = {host: Sampler(svid_fetcher(stack, host), interval=0.5) for host in AGENTS}
    kv.start()
    for sampler in svids.values():
        sampler.start()
    try:
        proc = upgrade(stack, '-vvvv')
    finally:
        reads = kv.stop()
        fetched = {host: sampler.stop() for host, sampler in svids.items()}
    assert proc.returncode == 0, failure_report(proc)
    windows = failure_windows(reads)
    log('upgrade lab: upgrade %.1f s; %d KV reads, %d failed, windows %s' % (
        proc.seconds, len(reads), sum(1 for r in reads if not r[1]),
        ['%.2f s' % (end - start + 0.05) for start, end in windows]))
    assert len(reads) > 100 and len(windows) <= 1, windows
    for host, samples in fetched.items():
        assert samples and samples[0][1], (host, samples[:3])
        held = None
        for when, ok, not_after in samples:
            if ok:
                held = not_after
            # A failed fetch is fine while the SVID the workload already holds is still valid.
            assert ok or (held and held > when), (host, when, samples)
        log('upgrade lab: %s: %d SVID fetches, %d failed' % (host, len(samples), sum(1 for s in samples if not s[1])))
    assert serving_versions(stack) == {host: NEW['openbao'] for host in VAULTS}
    assert sorted(stack.vault_api(host, 'sys/health')[0] for host in VAULTS) == [200, 429, 429]
    assert running_spire_version(stack, 'spire-server1', 'spire-server') == NEW['spire']
    for host in AGENTS:
        assert running_spire_version(stack, host, 'spire-agent') == NEW['spire']
        # The old release stays on the host: the way back is a link switch.
        assert stack.lab.exec(host, ['test', '-x', '/opt/trustroot/spire/%s/spire-agent' % OLD['spire']]).returncode == 0
    secrets = dict(stack.secrets, upgrade_token=stack.root_token)
    found = leaks.text_leaks(proc.stdout + proc.stderr, secrets)
    assert not found, leaks.report(found)


def test_second_run_changes_nothing(stack):
    proc = upgrade(stack)
    assert proc.returncode == 0, failure_report(proc)
    assert total(proc.stdout) == 0, proc.stdout[-3000:]
    assert 'every node runs it already, nothing to do' in proc.stdout
    assert 'backups: ready' in proc.stdout
    log('upgrade lab: second run %.1f s' % proc.seconds)

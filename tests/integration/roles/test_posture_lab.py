"""playbooks/posture.yml on the whole stack (3 OpenBao nodes, a SPIRE server, 2 agents) booted from the stack layer.

1. On the converged stack, after backup.yml and verify_backup.yml: every check PASS, exit 0, the JSON report (0600)
   holds the findings, the printed summary fits one screen, no secret at -vvvv, --check gives the same report, and
   nothing on the servers changed (audit devices, token accessors, mounts, policies, SPIRE entries, agents,
   federation, bundles, every configuration file's checksum before and after).
2. Every problem made at once (a root token left, the audit device removed, insecure_bootstrap on an agent, a
   stale federated bundle, an orphaned entry, an old backup): one run names each, and exits non-zero."""

import datetime
import json
import os
import stat
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.lab import hosts as labhosts
from tests.lab.common import wait_for
from tests.lab.stack import DEMO_GROUPS, SERVER_SOCKET, TRUST_DOMAIN, Stack, failure_report

NAME = 'it-posture'
CONFIGS = {'vault1': '/etc/openbao/openbao.hcl', 'vault2': '/etc/openbao/openbao.hcl', 'vault3': '/etc/openbao/openbao.hcl',
           'spire-server1': '/etc/spire/server/server.conf', 'spire-agent1': '/etc/spire/agent/agent.conf',
           'spire-agent2': '/etc/spire/agent/agent.conf'}
SCREEN = 40


@pytest.fixture(scope='module')
def stack():
    started = time.monotonic()
    stack = Stack.from_layer(NAME, groups=DEMO_GROUPS)
    stack.started = started
    try:
        yield stack
    finally:
        labhosts.destroy(NAME)
        log('posture lab: boot %.1f s, whole file %.1f s' % (stack.boot_seconds, time.monotonic() - started))


def log(text):
    """Timings and summaries, for the record of the run (xdist hides a test's output)."""
    print(text)
    with open(os.path.join(os.environ.get('TMPDIR', '/tmp'), 'posture-lab.log'), 'a') as handle:
        handle.write(text + '\n')


def root_token(stack):
    return stack.decrypt(os.path.join(stack.files_dir, 'vault-init.json.age'))['root_token']


def spire(stack, *args):
    proc = stack.lab.exec('spire-server1', ['spire-server'] + list(args) + ['-socketPath', SERVER_SOCKET, '-output', 'json'])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def server_state(stack):
    """What a read-only check must leave as it was."""
    token = root_token(stack)
    out = {}
    for path, method in (('sys/audit', 'GET'), ('auth/token/accessors', 'LIST'), ('sys/mounts', 'GET'),
                         ('sys/policy', 'GET'), ('sys/storage/raft/configuration', 'GET')):
        status, body = stack.vault_api('vault1', path, method, token=token)
        assert status == 200, (path, status, body)
        out[path] = body.get('data')
    out['entries'] = spire(stack, 'entry', 'show')
    out['agents'] = spire(stack, 'agent', 'list')
    out['federation'] = spire(stack, 'federation', 'list')
    out['bundles'] = spire(stack, 'bundle', 'list')
    for host, path in CONFIGS.items():
        out[host + ':' + path] = stack.lab.exec(host, ['sha256sum', path], check=True).stdout
    return out


def posture(stack, name, args=()):
    path = os.path.join(stack.files_dir, name)
    proc = stack.run('posture', ['-e', 'posture_report_path=' + path,
                                 '-e', 'backup_controller_dir=' + os.path.join(stack.files_dir, 'backups')] + list(args))
    report = None
    if os.path.exists(path):
        with open(path) as handle:
            report = json.load(handle)
    return proc, report, path


def summary_lines(output):
    """The lines of the Posture task's message (the debug task prints the list one item a line)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('TASK [Posture]'))
    block = []
    for line in lines[start + 1:]:
        if line.startswith(('TASK [', 'PLAY RECAP')):
            break
        block.append(line)
    return [line for line in block if line.strip().startswith('"') and not line.strip().startswith('"msg"')]


METRIC_DIR = '/var/lib/prometheus/node-exporter'
# Hosts whose node exporter textfile directory exists (the monitoring role makes it), and one without.
RECORDING_HOSTS = (('vault1', 'vault'), ('vault3', 'vault'), ('spire-server1', 'spire-server'))


def assert_verification_recorded(stack, verify):
    """verify_backup.yml left the time it proved each system's backup on the hosts backing it up where the node
    exporter reads textfile metrics, as the metric the monitoring role's TrustrootBackupVerificationTooOld alert
    reads; a host without that directory gets nothing."""
    assert 'Write the last-verified metric' in verify.stdout, verify.stdout[-3000:]
    assert stack.lab.exec('vault2', ['test', '-e', METRIC_DIR]).returncode == 1
    for host, system in RECORDING_HOSTS:
        text = stack.lab.exec(host, ['cat', '%s/trustroot_backup_%s_verified.prom' % (METRIC_DIR, system)], check=True).stdout
        line = [item for item in text.splitlines() if item.startswith('trustroot_backup_last_verified_timestamp_seconds{')]
        assert line and line[0].startswith('trustroot_backup_last_verified_timestamp_seconds{system="%s"} ' % system), text
        assert abs(time.time() - int(line[0].rsplit(' ', 1)[1])) < 600, text


def test_converged_stack_passes_every_check_leaks_nothing_and_changes_nothing(stack):
    backup_dir = os.path.join(stack.files_dir, 'backups')
    for host, _system in RECORDING_HOSTS:
        stack.lab.exec(host, ['mkdir', '-p', METRIC_DIR], check=True)
    for playbook, args in (('backup', ['-e', 'backup_fresh_for=0']), ('verify_backup', [])):
        started = time.monotonic()
        proc = stack.run(playbook, ['-e', 'backup_controller_dir=' + backup_dir] + args)
        log('%s: %.1f s' % (playbook, time.monotonic() - started))
        assert proc.returncode == 0, failure_report(proc)
    assert_verification_recorded(stack, proc)
    before = server_state(stack)

    started = time.monotonic()
    proc, report, path = posture(stack, 'posture.json', ['-vvvv'])
    seconds = time.monotonic() - started
    assert proc.returncode == 0, failure_report(proc)
    assert 'ESTABLISH SSH CONNECTION' in proc.stdout, 'the run must be at -vvvv'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert report['passed'] is True and report['counts']['FAIL'] == 0
    not_passing = [f for f in report['findings'] if f['status'] != 'PASS']
    assert not_passing == [], not_passing
    ids = {f['id'] for f in report['findings']}
    assert {'vault.root_tokens', 'vault.audit_devices', 'vault.audit_writable', 'vault.tls_min_version',
            'vault.tls_expiry', 'vault.unseal_layout', 'vault.autopilot', 'vault.raft_peers', 'vault.metrics_access',
            'spire.insecure_bootstrap', 'spire.ttls', 'spire.ca_expiry', 'spire.federation_relationships',
            'spire.federated_bundles', 'spire.federated_bundle_match', 'spire.agents_unseen',
            'spire.orphaned_entries', 'spire.admin_downstream', 'spire.join_tokens', 'backup.vault',
            'backup.spire'} <= ids
    outputs = proc.stdout + proc.stderr
    for secret in stack.vault_secrets():
        assert len(secret) >= 16 and secret not in outputs, 'a secret reached the playbook output'

    checked, checked_report, _path = posture(stack, 'posture-check.json', ['--check'])
    assert checked.returncode == 0, failure_report(checked)
    assert [(f['id'], f['status']) for f in checked_report['findings']] == \
        [(f['id'], f['status']) for f in report['findings']]
    lines = summary_lines(checked.stdout)
    print('\n'.join(lines))
    log('posture run at -vvvv: %.1f s; summary: %d lines' % (seconds, len(lines)))
    log('\n'.join(lines))
    assert lines[0].strip().startswith('"posture: PASS (') and len(lines) == len(report['findings']) + 4
    assert len(lines) <= SCREEN

    assert server_state(stack) == before, 'a posture run changed something on the servers'


def expired_ca_pem():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'peer.test old CA')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=30))
            .not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier('spiffe://peer.test')]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_every_problem_made_is_named_and_the_run_fails(stack):
    token = root_token(stack)
    # A root token generated and left.
    status, body = stack.vault_api('vault1', 'auth/token/create', 'POST', {'policies': ['root'], 'display_name': 'left'},
                                   token=token)
    assert status == 200, body
    # The audit device removed: the stanza out of every node's configuration, applied on SIGHUP.
    for host in DEMO_GROUPS['vault_servers']:
        stack.lab.exec(host, ['python3', '-c', AUDIT_OUT, CONFIGS[host]], check=True)
        stack.lab.exec(host, ['systemctl', 'kill', '-s', 'HUP', 'openbao'], check=True)
    # insecure_bootstrap on an agent (configuration, then a restart).
    stack.lab.exec('spire-agent1', ['sed', '-i', r's/^\(\s*\)trust_bundle_path = .*/\1insecure_bootstrap = true/',
                                    CONFIGS['spire-agent1']], check=True)
    stack.lab.exec('spire-agent1', ['systemctl', 'restart', '--no-block', 'spire-agent'], check=True)
    # A stale federated bundle: a relationship whose stored bundle holds only an expired CA, endpoint gone.
    stack.lab.exec('spire-server1', ['sh', '-c', 'cat > /tmp/peer.pem <<EOF\n%sEOF\n' % expired_ca_pem()], check=True)
    spire(stack, 'federation', 'create', '-trustDomain', 'peer.test', '-bundleEndpointURL', 'https://127.0.0.1:9/',
          '-bundleEndpointProfile', 'https_spiffe', '-endpointSpiffeID', 'spiffe://peer.test/spire/server',
          '-trustDomainBundlePath', '/tmp/peer.pem', '-trustDomainBundleFormat', 'pem')
    # An entry parented to an agent that does not exist.
    spire(stack, 'entry', 'create', '-entryID', 'orphan-entry', '-spiffeID', 'spiffe://%s/orphan' % TRUST_DOMAIN,
          '-parentID', 'spiffe://%s/spire/agent/join_token/00000000-0000-0000-0000-000000000000' % TRUST_DOMAIN,
          '-selector', 'unix:uid:4242')
    # An old backup: the newest verified vault backup's record aged by ten days.
    vault_dir = os.path.join(stack.files_dir, 'backups', 'vault')
    sidecar = sorted(os.path.join(vault_dir, name) for name in os.listdir(vault_dir) if name.endswith('.json'))[-1]
    with open(sidecar) as handle:
        record = json.load(handle)
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=10)
    record['created'] = old.strftime('%Y-%m-%dT%H:%M:%SZ')
    with open(sidecar, 'w') as handle:
        json.dump(record, handle)

    def audit_gone():
        status, body = stack.vault_api('vault1', 'sys/audit', token=token)
        return status == 200 and not body.get('data')
    wait_for(audit_gone, timeout=20, interval=0.5, what='the audit device disabled')

    proc, report, _path = posture(stack, 'posture-problems.json')
    log('\n'.join(summary_lines(proc.stdout)))
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert report['passed'] is False
    found = {f['id']: f for f in report['findings']}
    expected = {
        'vault.root_tokens': ('FAIL', '1 root token(s) outstanding (token-left)'),
        'vault.audit_devices': ('FAIL', 'no audit device enabled'),
        'spire.insecure_bootstrap': ('FAIL', 'insecure_bootstrap on: spire-agent1'),
        'spire.federated_bundles': ('FAIL', 'peer.test: every X.509 authority expired (stale)'),
        'spire.federated_bundle_match': ('FAIL', 'peer.test: endpoint not read'),
        'spire.orphaned_entries': ('WARN', 'orphan-entry'),
        'backup.vault': ('FAIL', 'last verified Vault / OpenBao backup is 10d old'),
    }
    for check, (status, text) in expected.items():
        assert found[check]['status'] == status and text in found[check]['summary'], found[check]
        assert found[check]['remediation'], found[check]
    log('\n'.join(summary_lines(proc.stdout)))


AUDIT_OUT = r'''
import re, sys
path = sys.argv[1]
text = open(path).read()
text = re.sub(r'\n# Audit device [^\n]*\naudit "file" "file" \{.*?\n\}\n', '\n', text, flags=re.S)
open(path, 'w').write(text)
'''

"""The monitoring role on the stack: a real Prometheus (on a bare host beside the stack layer's hosts) scrapes the
real OpenBao nodes, their sys/health through the blackbox exporter, the SPIRE server and agents, and the node
exporters' textfile metrics that the backup role's real timer unit writes. Every metric name the rules and
dashboards use must exist in a real scrape; no alert fires on the healthy stack; then faults induced together (an
OpenBao standby sealed, a SPIRE agent stopped, the SPIRE backup unit failing, the bundle endpoint of a federated
trust domain gone, the SPIRE server stopped) each make
their alert fire within its capped `for` plus two scrape intervals, and repair resolves them. The role's second run
changes nothing, and at -vvvv the Vault metrics token is in no output."""

import glob
import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from tests.lab import hosts as labhosts
from tests.lab import spire as labspire
from tests.lab.common import ROOT, wait_for
from tests.lab.stack import Stack, read_artifacts, total

NAME = 'it-monitor'
GROUPS = {
    'vault_servers': ['vault1', 'vault2', 'vault3'],
    'spire_servers': ['spire-server1'],
    'spire_agents': ['spire-agent1', 'spire-agent2'],
    'monitoring': ['monitor1'],
}
RULES_DIR = os.path.join(ROOT, 'roles', 'monitoring', 'files', 'rules')
DASHBOARDS_DIR = os.path.join(ROOT, 'roles', 'monitoring', 'files', 'dashboards')
SCRAPE_S = 1
FOR_CAP_S = 3
# The lab's SPIRE backups are late this long after the last success (production: the timer's schedule).
BACKUP_MAX_AGE_S = 20
# SPIRE fetches a federated bundle every refresh hint / 4; the other server's hint is SPIRE's shortest, 1m.
FEDERATION_POLL_S = 15
PLAYBOOK = """
- name: Scheduled SPIRE server backups (their textfile metrics are what the backup alerts watch)
  hosts: spire_servers
  gather_facts: false
  roles:
    - role: trustroot.ops.backup
      vars:
        backup_vault: false
        backup_randomized_delay: "0"

- name: A restore test of the SPIRE backup passed (what verify_backup.yml records on the hosts when one does)
  hosts: spire_servers
  gather_facts: false
  tasks:
    - name: Record it
      ansible.builtin.include_role:
        name: trustroot.ops.backup
        tasks_from: record_verified
      vars:
        backup_verified_at: "{{ {'spire-server': now(utc=true, fmt='%Y-%m-%dT%H:%M:%SZ')} }}"
- name: Monitoring
  ansible.builtin.import_playbook: trustroot.ops.monitoring
"""
# The role's own second run (idempotence, and the -vvvv leak check: the token is the monitoring role's alone).
SECOND_PLAYBOOK = """
- name: Monitoring
  ansible.builtin.import_playbook: trustroot.ops.monitoring
"""
OTHER_TD = 'other.trustroot.test'
SERVER_SOCKET = '/run/spire/server/private/api.sock'
BACKUP_UNIT = 'trustroot-backup@spire-server.service'
BREAK_DROPIN = '/run/systemd/system/%s.d/broken.conf' % BACKUP_UNIT


class OtherServer(labspire.SpireServer):
    """A second real SPIRE server (another trust domain) on this machine, its bundle endpoint on the lab bridge with
    SPIRE's shortest refresh hint: the lab SPIRE server federates with it, and the endpoint then goes away."""

    def __init__(self, workdir, address):
        super().__init__(workdir, name='other', trust_domain=OTHER_TD)
        self.endpoint_address = address

    @property
    def bundle_endpoint_url(self):
        return 'https://%s:%d' % (self.endpoint_address, self.bundle_endpoint_port)

    def render_config(self):
        old = 'address = "127.0.0.1"\n            port = %d' % self.bundle_endpoint_port
        text = super().render_config()
        assert old in text
        return text.replace(old, 'address = "%s"\n            port = %d\n            refresh_hint = "1m"'
                            % (self.endpoint_address, self.bundle_endpoint_port))


def federate(stack, other):
    """The lab SPIRE server federates with ``other`` over https_spiffe, bootstrapped with its current bundle."""
    bundle = other_bundle(other)
    root = os.path.join(stack.lab.dir, 'hosts', 'spire-server1', 'root')
    with open(os.path.join(root, 'var', 'tmp', 'other.bundle'), 'w') as handle:
        handle.write(bundle)
    proc = stack.lab.exec('spire-server1', [
        'spire-server', 'federation', 'create', '-socketPath', SERVER_SOCKET, '-trustDomain', OTHER_TD,
        '-bundleEndpointURL', other.bundle_endpoint_url, '-bundleEndpointProfile', 'https_spiffe',
        '-endpointSpiffeID', other.server_id, '-trustDomainBundlePath', '/var/tmp/other.bundle',
        '-trustDomainBundleFormat', 'spiffe'])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def rotate_authorities(stack):
    """Prepare and activate a new X.509 authority and JWT key on the lab SPIRE server (what a CA rotation does):
    SPIRE exports its prepare/activate counters only once its CA manager has done them since it started."""
    for kind in ('x509', 'jwt'):
        base = ['spire-server', 'localauthority', kind]
        proc = stack.lab.exec('spire-server1', base + ['prepare', '-socketPath', SERVER_SOCKET, '-output', 'json'])
        assert proc.returncode == 0, proc.stdout + proc.stderr
        proc = stack.lab.exec('spire-server1', base + ['show', '-socketPath', SERVER_SOCKET, '-output', 'json'])
        assert proc.returncode == 0, proc.stdout + proc.stderr
        authority = json.loads(proc.stdout)['prepared']['authority_id']
        proc = stack.lab.exec('spire-server1', base + ['activate', '-socketPath', SERVER_SOCKET, '-authorityID', authority,
                                                       '-output', 'json'])
        assert proc.returncode == 0, proc.stdout + proc.stderr


def other_bundle(other):
    proc = subprocess.run([other.binary, 'bundle', 'show', '-socketPath', other.socket_path, '-format', 'spiffe'],
                          capture_output=True, text=True, check=True, timeout=30)
    return proc.stdout


def lab_vars(artifacts):
    out = {
        'monitoring_scrape_interval': '%ds' % SCRAPE_S,
        'monitoring_evaluation_interval': '%ds' % SCRAPE_S,
        'monitoring_alert_for_cap': '%ds' % FOR_CAP_S,
        'monitoring_backup_max_age_seconds': {'vault': 86400 * 365, 'spire': BACKUP_MAX_AGE_S},
    }
    for prefix, binary in (('prometheus', 'prometheus'), ('promtool', 'promtool'),
                           ('blackbox', 'prometheus-blackbox-exporter'), ('node_exporter', 'prometheus-node-exporter')):
        out['monitoring_%s_artifact_path' % prefix] = os.path.join(ROOT, '.cache', 'bin', binary)
        out['monitoring_%s_artifact_sha256' % prefix] = artifacts[binary]
    return out


@pytest.fixture(scope='module')
def stack():
    started = time.monotonic()
    stack = Stack.from_layer(NAME, groups=GROUPS, extra_vars=lab_vars(read_artifacts()))
    stack.timings = {'boot_from_layer': stack.boot_seconds}
    try:
        stack.root_token = stack.vault_secrets()[-1]
        stack.active = [host for host in GROUPS['vault_servers'] if stack.vault_api(host, 'sys/health')[0] == 200][0]
        status, _body = stack.vault_api(stack.active, 'sys/policies/acl/trustroot-metrics', 'PUT',
                                        {'policy': 'path "sys/metrics" { capabilities = ["read"] }'}, token=stack.root_token)
        assert status in (200, 204)
        status, body = stack.vault_api(stack.active, 'auth/token/create', 'POST',
                                       {'policies': ['trustroot-metrics'], 'no_default_policy': True, 'ttl': '2h'},
                                       token=stack.root_token)
        assert status == 200, body
        stack.metrics_token = body['auth']['client_token']
        token_vars = stack.write_secret_vars('monitoring-token.json', {'monitoring_vault_metrics_token': stack.metrics_token})
        stack.playbook = os.path.join(stack.files_dir, 'monitoring-lab.yml')
        with open(stack.playbook, 'w') as handle:
            handle.write(PLAYBOOK)
        stack.second_playbook = os.path.join(stack.files_dir, 'monitoring-only.yml')
        with open(stack.second_playbook, 'w') as handle:
            handle.write(SECOND_PLAYBOOK)
        stack.args = ['-e', '@' + token_vars]
        stack.other = OtherServer(stack.files_dir, stack.lab.state['bridge']['address']).start()
        federate(stack, stack.other)
        rotate_authorities(stack)
        t0 = time.monotonic()
        stack.first = stack.run(stack.playbook, stack.args)
        stack.timings['first_run'] = round(time.monotonic() - t0, 1)
        assert stack.first.returncode == 0, stack.first.stdout[-4000:] + stack.first.stderr[-2000:]
        stack.prometheus = 'http://%s:9090' % stack.lab.address('monitor1')
        yield stack
    finally:
        stack.timings['total'] = round(time.monotonic() - started, 1)
        # xdist keeps a worker's output: the figures go to a file beside the other timings.
        os.makedirs(os.path.join(ROOT, '.cache', 'timings'), exist_ok=True)
        with open(os.path.join(ROOT, '.cache', 'timings', 'monitoring_lab.json'), 'w') as handle:
            json.dump(stack.timings, handle, indent=1)
        if getattr(stack, 'other', None):
            stack.other.cleanup()
        labhosts.destroy(NAME)


def api(stack, path, **params):
    url = stack.prometheus + '/api/v1/' + path + ('?' + urllib.parse.urlencode(params) if params else '')
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body.get('status') == 'success', body
    return body['data']


def targets(stack):
    return [(t['labels']['job'], t['labels']['instance'], t['health'], t.get('lastError', ''))
            for t in api(stack, 'targets', state='active')['activeTargets']]


def alerts(stack, state='firing'):
    return [a for a in api(stack, 'alerts')['alerts'] if a['state'] == state]


def firing_names(stack):
    return sorted((a['labels']['alertname'], a['labels'].get('instance') or '') for a in alerts(stack))


def rule_files():
    return sorted(glob.glob(os.path.join(RULES_DIR, '*.yml')))


def alert_rules():
    out = {}
    for path in rule_files():
        with open(path) as handle:
            for group in yaml.safe_load(handle)['groups']:
                for rule in group['rules']:
                    if 'alert' in rule:
                        out[rule['alert']] = rule
    return out


PROMQL_WORDS = {'and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset',
                'bool', 'inf', 'nan', 'time', 'vector', 'scalar'}


def metric_names(expr):
    """Metric names a PromQL expression selects (strings, label matchers, grouping clauses and ranges removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r'\{[^}]*\}', ' ', text)
    text = re.sub(r'\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)', ' ', text)
    text = re.sub(r'\[[^\]]*\]', ' ', text)
    names = set()
    for match in re.finditer(r'(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()', text):
        word = match.group(1)
        if word.lower() not in PROMQL_WORDS and not re.match(r'^\d', word):
            names.add(word)
    return names


def used_names():
    """{metric name: where} of every selector in the rule files and the dashboards, minus recorded series."""
    used, recorded = {}, set()
    for path in rule_files():
        with open(path) as handle:
            for group in yaml.safe_load(handle)['groups']:
                for rule in group['rules']:
                    recorded.add(rule.get('record', ''))
                    for name in metric_names(str(rule['expr'])):
                        used.setdefault(name, os.path.basename(path))
    for path in sorted(glob.glob(os.path.join(DASHBOARDS_DIR, '*.json'))):
        with open(path) as handle:
            text = handle.read()
        exprs = [json.loads('"%s"' % expr) for expr in re.findall(r'"expr"\s*:\s*"((?:[^"\\]|\\.)*)"', text)]
        # Template variables: label_values(<selector>, <label>) selects a metric; other queries (a data source type)
        # are no PromQL.
        for query in re.findall(r'"query"\s*:\s*"((?:[^"\\]|\\.)*)"', text):
            match = re.match(r'^\s*label_values\((.*),\s*\w+\s*\)\s*$', json.loads('"%s"' % query))
            if match:
                exprs.append(match.group(1))
        for expr in exprs:
            for name in metric_names(expr):
                used.setdefault(name, os.path.basename(path))
    with open(os.path.join(RULES_DIR, '..', '..', 'templates', 'trustroot-inventory.rules.yml.j2')) as handle:
        recorded |= set(re.findall(r'^\s*- record: (\S+)$', handle.read(), re.M))
    return {name: where for name, where in used.items() if name not in recorded and not name.startswith('$')}


def test_metric_names_parsed_from_promql():
    assert metric_names('sum by (cluster) (rate(vault_core_handle_request_count{job="vault"}[5m])) > 0') == \
        {'vault_core_handle_request_count'}
    assert metric_names('time() - trustroot_backup_last_success_timestamp_seconds > on(system) '
                        'trustroot:backup_max_age_seconds') == \
        {'trustroot_backup_last_success_timestamp_seconds', 'trustroot:backup_max_age_seconds'}


def test_every_target_up(stack):
    def all_up():
        found = targets(stack)
        return found if found and all(health == 'up' for _job, _instance, health, _err in found) else None

    try:
        found = wait_for(all_up, timeout=20, interval=0.5, what='every target up')
    except TimeoutError:
        pytest.fail('targets not up: %s' % [t for t in targets(stack) if t[2] != 'up'])
    jobs = {}
    for job, instance, _health, _err in found:
        jobs.setdefault(job, set()).add(instance)
    assert jobs == {
        'prometheus': {'monitor1'},
        'vault': set(GROUPS['vault_servers']),
        'vault_health': set(GROUPS['vault_servers']),
        'spire_server': set(GROUPS['spire_servers']),
        'spire_agent': set(GROUPS['spire_agents']),
        'node': set(GROUPS['vault_servers'] + GROUPS['spire_servers']),
    }


def test_second_run_changes_nothing_and_leaks_no_token(stack):
    """Idempotence, and -vvvv output without the metrics token (nor the stack's root token and unseal keys)."""
    t0 = time.monotonic()
    proc = stack.run(stack.second_playbook, stack.args + ['-vvvv'])
    stack.timings['second_run_vvvv'] = round(time.monotonic() - t0, 1)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert total(proc.stdout) == 0, [line for line in proc.stdout.splitlines() if line.startswith('changed:')][:20]
    output = stack.first.stdout + stack.first.stderr + proc.stdout + proc.stderr
    for secret in [stack.metrics_token] + stack.vault_secrets():
        assert secret not in output
    listing = stack.lab.exec('monitor1', ['stat', '-c', '%a %U', '/etc/prometheus/vault-metrics.token'])
    assert listing.stdout.split() == ['600', 'prometheus']
    config = stack.lab.exec('monitor1', ['cat', '/etc/prometheus/prometheus.yml']).stdout
    assert stack.metrics_token not in config and 'credentials_file: /etc/prometheus/vault-metrics.token' in config


def run_backup(stack):
    proc = stack.lab.exec('spire-server1', ['systemctl', 'start', BACKUP_UNIT], timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_used_metric_exists_in_a_real_scrape(stack):
    if not rule_files():
        pytest.fail('no rule files in %s' % RULES_DIR)
    run_backup(stack)  # the backup textfile metrics exist once a backup has run
    used = used_names()
    assert used

    def missing():
        exported = set(api(stack, 'label/__name__/values'))
        return {name: where for name, where in used.items() if name not in exported}

    deadline = time.monotonic() + 10
    while missing() and time.monotonic() < deadline:
        time.sleep(1)
    assert missing() == {}


def test_no_alert_fires_on_the_healthy_stack(stack):
    run_backup(stack)
    # Well past the capped for of anything pending once every target was up.
    time.sleep(FOR_CAP_S + 2 * SCRAPE_S)
    assert firing_names(stack) == []


def test_faults_fire_and_resolve(stack):
    rules = alert_rules()
    standby = next(host for host in GROUPS['vault_servers'] if host != stack.active)
    run_backup(stack)
    last_backup = time.time()
    # Faults that do not mask each other, all at once.
    status, body = stack.vault_api(standby, 'sys/seal', 'PUT', token=stack.root_token)
    assert status in (200, 204), body
    induced = time.time()
    assert stack.lab.exec('spire-agent1', ['systemctl', 'stop', 'spire-agent']).returncode == 0
    stack.other.stop()  # the federated trust domain's bundle endpoint goes away
    stack.lab.exec('spire-server1', ['mkdir', '-p', os.path.dirname(BREAK_DROPIN)])
    stack.lab.exec('spire-server1', ['sh', '-c', 'printf "[Service]\\nExecStart=\\nExecStart=/bin/false\\n" > %s && '
                                     'systemctl daemon-reload' % BREAK_DROPIN])
    assert stack.lab.exec('spire-server1', ['systemctl', 'start', BACKUP_UNIT]).returncode != 0
    # The SPIRE server stops once its bundle client has seen the endpoint gone (it polls every 15 s at SPIRE's
    # shortest refresh hint, 1m / 4).
    federated_gone = time.time()

    # (alert, instance) -> when its condition became true. The backup alert is per system (no instance).
    expected = {
        ('VaultNodeSealed', standby): induced,
        ('SpireAgentDown', 'spire-agent1'): induced,
        ('TrustrootBackupTooOld', None): last_backup + BACKUP_MAX_AGE_S,
        # The lab server polls the federated endpoint every FEDERATION_POLL_S: its next fetch fails.
        ('SpireFederatedBundleNotRefreshed', 'spire-server1'): federated_gone + FEDERATION_POLL_S,
    }
    assert {name for name, _instance in expected} <= set(rules), 'alert names missing from the rule files'
    fired = {}

    def all_fired():
        for alert in alerts(stack):
            key = (alert['labels']['alertname'], alert['labels'].get('instance'))
            if key in expected and key not in fired:
                fired[key] = time.time()
        return set(expected) <= set(fired)

    # The first faults' alerts (the backup's comes last, BACKUP_MAX_AGE_S after its last success).
    try:
        wait_for(all_fired, interval=0.5,
                 timeout=max(max(expected.values()) + FOR_CAP_S + 2 * SCRAPE_S + 8 - time.time(), 1),
                 what='alerts of the first faults firing')
    except TimeoutError:
        pass
    # What the lab server's federated bundle fetches looked like (kept with the figures: a fault drill that misses its
    # alert is diagnosed from them).
    stack.timings['federated_fetches'] = {
        query: [(series['metric'].get('status'), series['metric'].get('trust_domain_id'), series['value'][1])
                for series in api(stack, 'query', query=query)['result']]
        for query in ('spire_server_bundle_manager_fetch_federated_bundle',
                      'trustroot:spire_federated_bundle_last_fetch_ok_time - time()',
                      'trustroot:spire_federated_bundle_last_fetch_failed_time - time()')}
    stack.timings['federated_gone_ago_s'] = round(time.time() - federated_gone, 1)
    # health.yml lists what fires (and does not fail on alerts alone: health_fail=false for the sealed node).
    t0 = time.monotonic()
    health = stack.run('health', ['-e', 'health_fail=false'])
    stack.timings['health_run'] = round(time.monotonic() - t0, 1)
    assert health.returncode == 0, health.stdout[-3000:]
    assert re.search(r'Prometheus monitor1: \d+ firing alerts', health.stdout), health.stdout[-3000:]
    for name in ('VaultNodeSealed', 'SpireAgentDown'):
        assert name in health.stdout
    assert stack.lab.exec('spire-server1', ['systemctl', 'stop', 'spire-server']).returncode == 0
    expected[('SpireServerDown', 'spire-server1')] = time.time()
    deadline = max(expected.values()) + FOR_CAP_S + 2 * SCRAPE_S + 8
    try:
        wait_for(all_fired, timeout=max(deadline - time.time(), 1), interval=0.5, what='alerts of every fault firing')
    except TimeoutError:
        fetches = [(series['metric'].get('status'), series['value'][1]) for series in api(
            stack, 'query', query='spire_server_bundle_manager_fetch_federated_bundle')['result']]
        pytest.fail('not firing: %s; firing: %s; federated bundle fetches by status: %s'
                    % (sorted(set(expected) - set(fired), key=str), firing_names(stack), fetches))
    stack.timings['fired_after_s'] = {'%s/%s' % key: round(at - expected[key], 1) for key, at in fired.items()}
    for key, at in fired.items():
        # Its capped for, two scrape intervals, and one evaluation and API poll of slack.
        assert at - expected[key] <= FOR_CAP_S + 2 * SCRAPE_S + 3, (key, at - expected[key])

    # Repair: unseal, start, a backup that works again.
    material = stack.decrypt(os.path.join(stack.files_dir, 'vault-init.json.age'))
    for key in material['unseal_keys_b64'][:material['unseal_threshold']]:
        stack.vault_api(standby, 'sys/unseal', 'PUT', {'key': key})
    assert stack.lab.exec('spire-server1', ['systemctl', 'start', 'spire-server']).returncode == 0
    stack.other.start()
    assert stack.lab.exec('spire-agent1', ['systemctl', 'start', 'spire-agent']).returncode == 0
    stack.lab.exec('spire-server1', ['sh', '-c', 'rm -f %s && systemctl daemon-reload && systemctl reset-failed %s'
                                     % (BREAK_DROPIN, BACKUP_UNIT)])
    wait_for(lambda: stack.lab.exec('spire-server1', ['spire-server', 'healthcheck', '-socketPath',
                                                      '/run/spire/server/private/api.sock']).returncode == 0,
             timeout=30, interval=0.5, what='spire-server healthy')
    run_backup(stack)
    t0 = time.monotonic()
    try:
        wait_for(lambda: not alerts(stack), timeout=30, interval=0.5, what='every alert resolved')
    except TimeoutError:
        pytest.fail('still firing after repair: %s' % firing_names(stack))
    stack.timings['resolved_after_repair_s'] = round(time.monotonic() - t0, 1)

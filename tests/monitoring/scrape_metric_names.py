"""Regenerate tests/monitoring/metric_names.json: the metric names real targets export.

Starts real servers on loopback (a 3-node OpenBao raft cluster with Prometheus telemetry and a file audit
device; two SPIRE servers federated over https_spiffe, each with an agent, telemetry on), makes some
requests, scrapes every target and keeps the names (never values), per source. The node exporter and the
backup textfile names come from a run of the node exporter binary on a textfile written by the collection's
own metric writer. The alert-rule unit tests check every name used in a rule or dashboard against this file.

    .venv/bin/python -m tests.monitoring.scrape_metric_names [--out tests/monitoring/metric_names.json]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from tests.lab import openbao, spire
from tests.lab.common import free_port, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, 'tests', 'monitoring', 'metric_names.json')
NODE_EXPORTER = os.path.join(ROOT, '.cache', 'bin', 'prometheus-node-exporter')
PROMETHEUS = os.path.join(ROOT, '.cache', 'bin', 'prometheus')
NAME = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{| )')
TYPE = re.compile(r'^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)')


def names_of(text):
    """{metric family name: type} of a Prometheus text exposition; histogram/summary series fold into the family
    but their _bucket/_sum/_count names are kept too (queries use those)."""
    found = {}
    for line in text.splitlines():
        match = TYPE.match(line)
        if match:
            found.setdefault(match.group(1), match.group(2))
            continue
        match = NAME.match(line)
        if match:
            found.setdefault(match.group(1), 'untyped')
    return found


def get(url, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header('X-Vault-Token', token)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read().decode()


class TelemetryBao(openbao.BaoServer):
    """A raft node with the telemetry the vault_server role configures (retention, no hostname prefix,
    unauthenticated metrics on the listener)."""

    def render_config(self):
        text = super().render_config()
        text = text.replace('  tls_disable = true\n', '  tls_disable = true\n  telemetry {\n'
                            '    unauthenticated_metrics_access = true\n  }\n', 1)
        audit = os.path.join(self.workdir, self.node_id, 'audit.log')
        return text + ('telemetry {\n  prometheus_retention_time = "24h"\n  disable_hostname = true\n}\n'
                       'audit "file" "file" {\n  options {\n    file_path = "%s"\n  }\n}\n' % audit)


def scrape_vault(workdir):
    cluster = openbao.BaoCluster(workdir, size=3)
    cluster.nodes = [TelemetryBao(workdir, n.node_id, api_port=n.api_port, cluster_port=n.cluster_port)
                     for n in cluster.nodes]
    for node in cluster.nodes:
        node.retry_join = [other.url for other in cluster.nodes if other is not node]
    result = {}
    try:
        cluster.start()
        # A sealed, uninitialized node: what does /v1/sys/metrics answer?
        req = urllib.request.Request(cluster.nodes[0].url + '/v1/sys/metrics?format=prometheus')
        try:
            urllib.request.urlopen(req, timeout=5)
            result['sealed_answer'] = 200
        except urllib.error.HTTPError as err:
            result['sealed_answer'] = err.code
        init = cluster.init(shares=1, threshold=1)
        cluster.unseal_raw(init['keys_base64'], 1)
        token = init['root_token']
        cluster.wait_leader(token)
        cluster.wait_peers(token)
        leader, followers = cluster.leader_and_followers()
        print('audit devices: %s' % sorted(openbao.api(leader.url, token, 'GET', 'sys/audit')['data']), file=sys.stderr)
        openbao.mount_kv(leader.url, token, 'kv')
        for i in range(20):
            openbao.api(leader.url, token, 'POST', 'kv/data/k%d' % i, {'data': {'v': str(i)}})
            openbao.api(leader.url, token, 'GET', 'kv/data/k%d' % i)
        openbao.api(leader.url, token, 'GET', 'sys/storage/raft/autopilot/state')
        time.sleep(12)  # autopilot and the periodic gauges (every 10 s)
        result['active'] = names_of(get(leader.url + '/v1/sys/metrics?format=prometheus'))
        result['standby'] = names_of(get(followers[0].url + '/v1/sys/metrics?format=prometheus'))
    finally:
        cluster.stop()
    return result


class TelemetryAgent(spire.SpireAgent):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.metrics_port = free_port()

    def render_config(self):
        return super().render_config() + 'telemetry {\n    Prometheus {\n        host = "127.0.0.1"\n' \
            '        port = %d\n    }\n}\n' % self.metrics_port


def scrape_spire(workdir):
    one = spire.SpireServer(workdir, name='one', trust_domain='one.test')
    two = spire.SpireServer(workdir, name='two', trust_domain='two.test')
    agents = []
    result = {}
    try:
        one.start()
        two.start()
        bundle = os.path.join(workdir, 'two.bundle')
        with open(bundle, 'w') as handle:
            handle.write(two.bundle_spiffe())
        one.cli(['federation', 'create', '-trustDomain', 'two.test', '-bundleEndpointURL', two.bundle_endpoint_url,
                 '-bundleEndpointProfile', 'https_spiffe', '-endpointSpiffeID', two.server_id,
                 '-trustDomainBundlePath', bundle, '-trustDomainBundleFormat', 'spiffe'])
        agent = TelemetryAgent(workdir, one, name='agent-one')
        agent.start()
        agents.append(agent)
        one.create_entries([{'parent_id': agent.spiffe_id, 'spiffe_id': one.spiffe_id('workload'),
                             'selectors': [{'type': 'unix', 'value': 'uid:%d' % os.getuid()}],
                             'federates_with': ['spiffe://two.test']}])
        # The agent syncs entries every 5 s; the bundle client refreshes on its own schedule.
        time.sleep(40)
        try:
            agent.fetch_x509(timeout=30)
        except Exception as exc:  # pylint: disable=broad-except
            print('fetch_x509: %s' % exc, file=sys.stderr)
        one.cli(['bundle', 'show'])
        one.cli(['entry', 'show'])
        one.cli(['agent', 'list'])
        result['server'] = names_of(get(one.metrics_url))
        result['agent'] = names_of(get('http://127.0.0.1:%d/metrics' % agent.metrics_port))
    finally:
        for agent in agents:
            agent.cleanup()
        one.cleanup()
        two.cleanup()
    return result


def scrape_node(workdir):
    sys.path.insert(0, os.path.join(ROOT, '.cache', 'collections'))
    # The collection's own writer, as the backup program runs it.
    from ansible_collections.trustroot.ops.plugins.module_utils._backup import metrics  # pylint: disable=import-outside-toplevel
    textdir = os.path.join(workdir, 'textfile')
    os.makedirs(textdir)
    for system in ('vault', 'spire-server'):  # the backup program's system names
        metrics.write_metric(textdir, system, {'created': '2026-11-30T23:15:00Z', 'size': 1234}, host='h1')
        metrics.write_verified_metric(textdir, system, '2026-12-01T08:00:00Z')
    port = free_port()
    proc = subprocess.Popen([NODE_EXPORTER, '--web.listen-address=127.0.0.1:%d' % port,
                             '--collector.textfile.directory=%s' % textdir], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        text = wait_for(lambda: get('http://127.0.0.1:%d/metrics' % port), timeout=20, what='node exporter')
    finally:
        proc.terminate()
        proc.wait()
    names = names_of(text)
    return {
        'backup_textfile': {k: v for k, v in names.items() if k.startswith('trustroot_backup_')},
        'node': {k: v for k, v in names.items() if not k.startswith('trustroot_backup_')},
    }


def scrape_prometheus(workdir):
    """Prometheus's own metrics (job prometheus), with one rule group loaded so the rule metrics exist."""
    os.makedirs(workdir)
    rules = os.path.join(workdir, 'rules.yml')
    with open(rules, 'w') as handle:
        handle.write('groups:\n  - name: g\n    rules:\n      - record: r\n        expr: vector(1)\n')
    config = os.path.join(workdir, 'prometheus.yml')
    port = free_port()
    with open(config, 'w') as handle:
        handle.write('global:\n  evaluation_interval: 1s\nrule_files: [%s]\nscrape_configs:\n  - job_name: prometheus\n'
                     '    scrape_interval: 1s\n    static_configs: [{targets: ["127.0.0.1:%d"]}]\n' % (rules, port))
    proc = subprocess.Popen([PROMETHEUS, '--config.file=%s' % config, '--storage.tsdb.path=%s' % os.path.join(workdir, 'data'),
                             '--web.listen-address=127.0.0.1:%d' % port], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: get('http://127.0.0.1:%d/-/ready' % port), timeout=30, what='prometheus')
        time.sleep(5)
        return names_of(get('http://127.0.0.1:%d/metrics' % port))
    finally:
        proc.terminate()
        proc.wait()


# What a single scrape does not show: series that appear only on some nodes or after some activity.
NOTES = {
    'vault_active_only': 'only the active node exports these (raft leader, autopilot, audit, request handling); a node '
                         'that was active keeps them for prometheus_retention_time',
    'vault_audit': 'vault_audit_* appear on the active node after the first audited request',
    'vault_stale_labels': 'Vault sets its own cluster label ("" before the first unseal); each gauge is kept under the '
                          'label set it had for prometheus_retention_time, so a node shows vault_core_unsealed{cluster=""} 0 '
                          'from before its unseal next to the current 1',
    'vault_sealed': 'OpenBao 2.7.2 answers /v1/sys/metrics on a sealed or uninitialized node (200, vault_core_unsealed 0), '
                    'with or without a token',
    'spire_rpc': 'spire_server_rpc_* and spire_agent_rpc_* / workload_api_* appear per call after its first use since start',
    'spire_federation': 'spire_server_bundle_manager_* appear with a federation relationship, status per outcome',
    'spire_rotation': 'spire_agent_agent_svid_rotate and spire_server_rpc_agent_v1_agent_renew_agent appear after the first '
                      'agent SVID rotation (half its lifetime), not in this catalogue',
    'spire_no_expiry': 'SPIRE 1.15 exports the X.509 CA expiry (spire_server_manager_x509_ca_rotate_expiration) but no JWT '
                       'key expiry and no agent SVID expiry',
    'backup_textfile': 'written by the backup program after each successful backup, and by verify_backup.yml (through '
                       'the backup program) after a restore proved the newest backup',
}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', default=OUT)
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix='metric-names-')
    try:
        vault = scrape_vault(os.path.join(workdir, 'vault'))
        spire_names = scrape_spire(os.path.join(workdir, 'spire'))
        node = scrape_node(os.path.join(workdir, 'node'))
        prometheus = scrape_prometheus(os.path.join(workdir, 'prometheus'))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    active, standby = vault['active'], vault['standby']
    catalogue = {
        'sources': {
            'vault': sorted(set(active) | set(standby)),
            'vault_active_only': sorted(set(active) - set(standby)),
            'spire_server': sorted(spire_names['server']),
            'spire_agent': sorted(spire_names['agent']),
            'node': sorted(node['node']),
            'backup_textfile': sorted(node['backup_textfile']),
            'prometheus': sorted(prometheus),
        },
        'vault_sealed_metrics_status': vault['sealed_answer'],
        'notes': NOTES,
    }
    with open(args.out, 'w') as handle:
        json.dump(catalogue, handle, indent=1, sort_keys=True)
        handle.write('\n')
    print('wrote %s: %s' % (args.out, ', '.join('%s %d' % (k, len(v)) for k, v in catalogue['sources'].items())))


if __name__ == '__main__':
    main()

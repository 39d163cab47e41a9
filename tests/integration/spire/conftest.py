"""Fixtures for the SPIRE integration tests: real spire-server and spire-agent processes (tests/lab/spire.py).

Every fixture is function-scoped, runs in the test's tmp_path and stops its processes by PID.
The ``ansible`` fixture (tests/integration/conftest.py) runs modules through real ansible-playbook.

``spire_server`` -> tests.lab.spire.SpireServer, started and healthy, trust domain ``example.org``:
    .trust_domain            'example.org'
    .socket_path             Server API socket (a short path under /tmp, see the lab's docstring)
    .binary                  path of the spire-server binary
    .address                 '127.0.0.1:<bind_port>' (agents connect here); .bind_port
    .bundle_endpoint_url     'https://127.0.0.1:<port>' (federation bundle endpoint, https_spiffe profile)
    .bundle_endpoint_port, .health_port, .health_url ('http://127.0.0.1:<port>', paths /live and /ready),
    .metrics_port, .metrics_url ('http://127.0.0.1:<port>/metrics', Prometheus)
    .server_id               'spiffe://example.org/spire/server'
    .workdir, .data_dir, .config_path, .log_path, .datastore_path (sqlite3), .keys_path (disk KeyManager)
    .x509pop                 {'ca_cert', 'ca_key', 'cert', 'key'}: paths of the x509pop CA and agent material
    .ca_ttl, .x509_svid_ttl, .jwt_svid_ttl   as configured ('24h', '1h', '5m'); change them (and
                             .extra_config, appended to the config file) before .restart()
    .pid, .proc
    .spiffe_id(path)         'spiffe://example.org/<path>'
    .cli(args, data=None, check=True)   raw `spire-server <args> -socketPath .. -output json`, parsed JSON;
                             data (str, or dict/list sent as JSON) goes to stdin: use '-data -' / '-file -'
    .cli_raw(args, data=None, output_json=True)   the CompletedProcess (text)
    .entries(*filters)       every entry (`entry show` with optional flags), list of dicts in output shape
    .create_entries(list)    `entry create -data -` with legacy-shape entries; returns the results list
    .bundle()                `bundle show` JSON; .bundle_pem(), .bundle_spiffe() as text
    .set_federated_bundle(other)   `bundle set -format spiffe -id spiffe://<other td>` with other's bundle
    .join_token(spiffe_id=None, ttl=600)   a new join token value
    .healthcheck()           bool (`spire-server healthcheck`)
    .stop() / .start() / .restart()   same config, ports, datastore and keys
    .module_args()           {'socket_path': ..., 'spire_server_path': ...} for the modules

``spire_agent`` -> tests.lab.spire.SpireAgent attested to ``spire_server`` with a join token, healthy:
    .server, .spiffe_id ('spiffe://example.org/spire/agent/join_token/<token>'), .socket_path (Workload
    API, world-reachable), .admin_socket_path, .health_port, .trust_bundle_path, .data_dir, .config_path,
    .log_path, .pid, .stop() / .start() / .restart(),
    .fetch_x509(user=None) -> (rc, parsed JSON of `spire-agent api fetch x509 -output json`, stderr),
    run as ``user`` (name or uid) when given.

``spire_server_b`` -> a second SpireServer, trust domain ``other.example``, same attributes.

``spire_server_module_args(server)`` (import from tests.lab.spire, also re-exported here) returns the
module connection options {'socket_path': ..., 'spire_server_path': ...}.

``ansible_cases`` -> run_cases(name, [args, ...], check=False, diff=False, env=None): runs one module once per
    argument set as the tasks of ONE ansible-playbook run (each task ignore_errors) and returns the
    registered results in order. For many bad-input cases at the cost of one playbook start.
"""

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.lab.spire import (  # noqa: E402
    OTHER_TRUST_DOMAIN, SPIRE_AGENT_BIN, SPIRE_SERVER_BIN, SpireAgent, SpireServer, spire_server_module_args)

__all__ = ['spire_server_module_args']


@pytest.fixture(scope='session', autouse=True)
def _spire_binaries():
    for path in (SPIRE_SERVER_BIN, SPIRE_AGENT_BIN):
        if not os.path.exists(path):
            pytest.fail('%s missing: run scripts/bootstrap.sh (make test does)' % path)


@pytest.fixture
def spire_server(tmp_path):
    """A healthy spire-server in trust domain example.org."""
    server = SpireServer(str(tmp_path), name='server-a')
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def spire_agent(tmp_path, spire_server):
    """A healthy spire-agent attested to spire_server with a join token, unix workload attestor."""
    agent = SpireAgent(str(tmp_path), spire_server, name='agent-a')
    try:
        agent.start()
        yield agent
    finally:
        agent.cleanup()


@pytest.fixture
def spire_server_b(tmp_path):
    """A second healthy spire-server, trust domain other.example (for federation)."""
    server = SpireServer(str(tmp_path), name='server-b', trust_domain=OTHER_TRUST_DOMAIN)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def ansible_cases(ansible):
    """run_cases(name, args_list, check=False, diff=False, env=None) -> list of registered results."""
    def run_cases(name, args_list, check=False, diff=False, env=None):
        index = len(ansible.runs)
        result_path = os.path.join(ansible.workdir, 'cases-%d.json' % index)
        tasks = [{'name': 'case %d' % i, 'trustroot.ops.%s' % name: args, 'register': 'case%d' % i,
                  'ignore_errors': True} for i, args in enumerate(args_list)]
        tasks.append({'name': 'save results', 'ansible.builtin.copy': {
            'content': '{{ [%s] | to_json }}' % ', '.join('case%d' % i for i in range(len(args_list))),
            'dest': result_path, 'mode': '0600'}, 'check_mode': False, 'diff': False})
        play_path = os.path.join(ansible.workdir, 'cases-%d.yml' % index)
        with open(play_path, 'w') as handle:
            json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}], handle)
        proc = ansible.playbook(play_path, check=check, diff=diff, env=env)
        if not os.path.exists(result_path):
            raise AssertionError('playbook did not record results:\n%s\n%s' % (proc.stdout, proc.stderr))
        with open(result_path) as handle:
            results = json.load(handle)
        os.remove(result_path)
        return results
    return run_cases

"""Real OpenBao servers on loopback for tests, benchmarks and the demo.

One implementation used by the pytest fixtures (tests/integration/conftest.py), the benchmarks and
``make demo`` (through the CLI at the bottom). Servers run the real ``bao`` binary with raft storage on
127.0.0.1 and free ports, each in its own directory; every process started is tracked by PID and
stopped by PID.

    python -m tests.lab.openbao up --dir .lab/demo-vault --nodes 3     # writes <dir>/lab.json
    python -m tests.lab.openbao down --dir .lab/demo-vault
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests.lab.common import free_port, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BAO_BIN = os.environ.get('BAO_BIN') or os.path.join(ROOT, '.cache', 'bin', 'bao')


def http(method, url, payload=None, token=None, timeout=10, attempts=3):
    """(status, parsed JSON or None) — the harness's own raw client, independent of the collection.

    A server that was just (re)started may reset a connection: such errors are retried a few times."""
    for attempt in range(attempts):
        try:
            return _http_once(method, url, payload, token, timeout)
        except (ConnectionError, urllib.error.URLError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


def _http_once(method, url, payload, token, timeout):
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header('X-Vault-Token', token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
            return resp.status, (json.loads(body) if body else None)
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return err.code, json.loads(body) if body else None
        except ValueError:
            return err.code, None


def api(url, token, method, path, payload=None):
    """One authenticated call that must succeed (200 or 204); its JSON answer."""
    status, body = http(method, url + '/v1/' + path, payload, token=token, timeout=60)
    assert status in (200, 204), (method, path, status, body)
    return body


def mount_kv(url, token, path, version='2'):
    """A KV mount at ``path``, ready for writes. A new version 2 mount upgrades its storage in the background and
    answers 400 "Upgrading from non-versioned to versioned data" until done: wait until its config reads."""
    api(url, token, 'POST', 'sys/mounts/' + path, {'type': 'kv', 'options': {'version': version}})
    if version == '2':
        wait_for(lambda: http('GET', url + '/v1/' + path + '/config', token=token)[0] == 200, timeout=60,
                 what='the KV v2 mount %s to finish its upgrade' % path)


class BaoServer(object):
    """One ``bao server`` process with raft storage (or a dev server when ``dev=True``)."""

    def __init__(self, workdir, node_id, api_port=None, cluster_port=None, dev=False, dev_root_token=None, ui=False):
        self.workdir = workdir
        self.ui = ui
        self.node_id = node_id
        self.api_port = api_port or free_port()
        self.cluster_port = cluster_port or free_port()
        self.dev = dev
        self.dev_root_token = dev_root_token
        self.proc = None
        self.retry_join = []
        self.seal_stanza = ''
        os.makedirs(self.data_dir, exist_ok=True)

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.api_port

    @property
    def data_dir(self):
        return os.path.join(self.workdir, self.node_id, 'data')

    @property
    def config_path(self):
        return os.path.join(self.workdir, self.node_id, 'config.hcl')

    @property
    def log_path(self):
        return os.path.join(self.workdir, self.node_id, 'server.log')

    def render_config(self):
        joins = ''.join('  retry_join {\n    leader_api_addr = "%s"\n  }\n' % url for url in self.retry_join)
        return (
            # performance_multiplier 1: raft timings for loopback, not the WAN-safe default of 5.
            'storage "raft" {\n  path = "%s"\n  node_id = "%s"\n  performance_multiplier = 1\n%s}\n'
            'listener "tcp" {\n  address = "127.0.0.1:%d"\n  cluster_address = "127.0.0.1:%d"\n'
            '  tls_disable = true\n}\n'
            'api_addr = "%s"\ncluster_addr = "http://127.0.0.1:%d"\n'
            'disable_mlock = true\nui = %s\nlog_level = "info"\n%s'
        ) % (self.data_dir, self.node_id, joins, self.api_port, self.cluster_port, self.url,
             self.cluster_port, 'true' if self.ui else 'false', self.seal_stanza)

    def start(self):
        if self.dev:
            argv = [BAO_BIN, 'server', '-dev', '-dev-listen-address=127.0.0.1:%d' % self.api_port,
                    '-dev-root-token-id=%s' % self.dev_root_token, '-dev-no-store-token']
        else:
            with open(self.config_path, 'w') as handle:
                handle.write(self.render_config())
            argv = [BAO_BIN, 'server', '-config', self.config_path]
        log = open(self.log_path, 'ab')
        env = dict(os.environ, HOME=os.path.join(self.workdir, self.node_id))
        # A session of its own: a Ctrl-C in the terminal does not hit servers mid-test.
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True)
        log.close()
        wait_for(self._answers, timeout=30, what='%s to listen' % self.node_id)
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            raise RuntimeError('%s exited with %s; see %s' % (self.node_id, self.proc.returncode, self.log_path))
        status = http('GET', self.url + '/v1/sys/seal-status', timeout=2)[0]
        return status == 200

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def seal_status(self):
        return http('GET', self.url + '/v1/sys/seal-status')[1]


class BaoCluster(object):
    """N raft nodes that find each other through ``retry_join``; node 0 is initialized first."""

    def __init__(self, workdir, size=3, seal_stanza='', ports=None):
        """ports: [(api port, cluster port)] of each node (a copy of a ClusterTemplate needs the template's:
        raft keeps the peers' addresses); free ones by default."""
        self.workdir = workdir
        ports = ports or [(None, None)] * size
        self.nodes = [BaoServer(workdir, 'node%d' % (i + 1), api_port=ports[i][0], cluster_port=ports[i][1])
                      for i in range(size)]
        for node in self.nodes:
            node.retry_join = [other.url for other in self.nodes if other is not node]
            node.seal_stanza = seal_stanza

    @property
    def urls(self):
        return [node.url for node in self.nodes]

    def start(self):
        for node in self.nodes:
            node.start()
        return self

    def stop(self):
        for node in self.nodes:
            node.stop()

    def restart(self):
        """Stop and start every node: a Shamir cluster comes back sealed."""
        self.stop()
        return self.start()

    def init(self, shares=3, threshold=2, recovery_shares=None, recovery_threshold=None):
        """Initialize through node 0 with the raw API (test setup, not the module under test)."""
        payload = {'secret_shares': shares, 'secret_threshold': threshold}
        if recovery_shares is not None:
            payload = {'recovery_shares': recovery_shares, 'recovery_threshold': recovery_threshold}
        status, body = http('PUT', self.nodes[0].url + '/v1/sys/init', payload)
        if status != 200:
            raise RuntimeError('init failed: %s %s' % (status, body))
        return body

    def unseal_raw(self, keys, threshold):
        """Unseal every node with the raw API and wait until all are unsealed and joined."""
        for node in self.nodes:
            # A fresh follower is uninitialized until retry_join reaches an unsealed leader.
            wait_for(lambda n=node: (n.seal_status() or {}).get('initialized'), timeout=60,
                     what='%s to join the cluster' % node.node_id)
            for key in keys[:threshold]:
                http('PUT', node.url + '/v1/sys/unseal', {'key': key})
        self.wait_unsealed()

    def wait_unsealed(self, timeout=60):
        for node in self.nodes:
            wait_for(lambda n=node: n.seal_status() and not n.seal_status()['sealed'], timeout=timeout,
                     what='%s to unseal' % node.node_id)

    def wait_leader(self, token, timeout=60):
        def leader():
            status, body = http('GET', self.nodes[0].url + '/v1/sys/leader', token=token)
            return status == 200 and body.get('leader_address') and body
        return wait_for(leader, timeout=timeout, what='a raft leader')

    def leader_and_followers(self, timeout=60):
        """(active BaoServer, running followers) as the running nodes report them."""
        def find():
            for node in self.nodes:
                if node.proc is None:
                    continue
                status, body = http('GET', node.url + '/v1/sys/leader')
                if status == 200 and (body or {}).get('is_self'):
                    return node
            return None
        leader = wait_for(find, timeout=timeout, what='an active node')
        return leader, [n for n in self.nodes if n is not leader and n.proc is not None]

    def wait_peers(self, token, count=None, timeout=60):
        count = count or len(self.nodes)

        def peers():
            status, body = http('GET', self.nodes[0].url + '/v1/sys/storage/raft/configuration', token=token)
            return status == 200 and len(body['data']['config']['servers']) >= count
        return wait_for(peers, timeout=timeout, what='%d raft peers' % count)


class ClusterTemplate(object):
    """An initialized raft cluster made once, every node joined, then stopped and kept: its data directories, ports
    and init answer. ``start_copy(workdir)`` starts a cluster on a copy of those directories, at the same ports:
    initialized, joined and sealed (what a restart of a Shamir cluster leaves) in the time its servers take to
    start, instead of the init, unseal, join and restart each test would otherwise pay."""

    def __init__(self, workdir, size=3, shares=3, threshold=2):
        cluster = BaoCluster(workdir, size=size).start()
        try:
            self.init = cluster.init(shares=shares, threshold=threshold)
            cluster.unseal_raw(self.init['keys_base64'], threshold)
            cluster.wait_leader(self.init['root_token'])
            cluster.wait_peers(self.init['root_token'], count=size)
        finally:
            cluster.stop()
        self.size = size
        self.ports = [(node.api_port, node.cluster_port) for node in cluster.nodes]
        self.data_dirs = [node.data_dir for node in cluster.nodes]

    def start_copy(self, workdir):
        cluster = BaoCluster(workdir, size=self.size, ports=self.ports)
        for node, data_dir in zip(cluster.nodes, self.data_dirs):
            shutil.copytree(data_dir, node.data_dir, dirs_exist_ok=True)
        try:
            return cluster.start()
        except BaseException:
            cluster.stop()
            raise


class TransitUnsealer(object):
    """A dev-mode server with a transit key that other servers use for auto-unseal."""

    KEY_NAME = 'autounseal'

    def __init__(self, workdir, root_token='unsealer-root'):
        self.server = BaoServer(workdir, 'unsealer', dev=True, dev_root_token=root_token)
        self.root_token = root_token

    @property
    def url(self):
        return self.server.url

    def start(self):
        self.server.start()
        http('POST', self.url + '/v1/sys/mounts/transit', {'type': 'transit'}, token=self.root_token)
        http('POST', self.url + '/v1/transit/keys/%s' % self.KEY_NAME, {}, token=self.root_token)
        return self

    def stop(self):
        self.server.stop()

    def seal_stanza(self):
        return ('seal "transit" {\n  address = "%s"\n  token = "%s"\n  key_name = "%s"\n'
                '  mount_path = "transit/"\n  disable_renewal = "true"\n}\n') % (
                    self.url, self.root_token, self.KEY_NAME)


# --- CLI for make demo and benchmarks: servers outlive this process; PIDs are recorded in lab.json ---

def _cli_up(args):
    os.makedirs(args.dir, exist_ok=True)
    state_path = os.path.join(args.dir, 'lab.json')
    if os.path.exists(state_path):
        with open(state_path) as handle:
            state = json.load(handle)
        if all(_is_bao(node['pid']) for node in state['nodes']):
            print(json.dumps(dict(state, reused=True)))
            return
        _cli_down(args)
    # New servers get new ports: raft data of earlier servers would not match them, so start empty.
    for name in os.listdir(args.dir):
        if name.startswith('node') and os.path.isdir(os.path.join(args.dir, name)):
            shutil.rmtree(os.path.join(args.dir, name))
    cluster = BaoCluster(os.path.abspath(args.dir), size=args.nodes).start()
    state = {'nodes': [{'id': n.node_id, 'url': n.url, 'pid': n.pid, 'log': n.log_path} for n in cluster.nodes]}
    with open(state_path, 'w') as handle:
        json.dump(state, handle, indent=2)
    print(json.dumps(state))


def _cli_down(args):
    state_path = os.path.join(args.dir, 'lab.json')
    if not os.path.exists(state_path):
        return
    with open(state_path) as handle:
        state = json.load(handle)
    for node in state['nodes']:
        _stop_pid(node['pid'])
    os.remove(state_path)


def _is_bao(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            return handle.read().split(b'\0')[0].endswith(b'bao')
    except (OSError, IOError):
        return False


def _stop_pid(pid):
    """Stop a server this lab started, identified by PID and checked to be a bao process."""
    if not _is_bao(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True)
    up = sub.add_parser('up')
    up.add_argument('--dir', required=True)
    up.add_argument('--nodes', type=int, default=3)
    down = sub.add_parser('down')
    down.add_argument('--dir', required=True)
    args = parser.parse_args(argv)
    {'up': _cli_up, 'down': _cli_down}[args.command](args)


if __name__ == '__main__':
    sys.exit(main())

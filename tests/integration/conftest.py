"""Fixtures for integration tests: real OpenBao servers and real ansible-playbook runs."""

import base64
import ctypes
import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from tests.lab.common import COLLECTIONS_PATH, VENV_BIN, ansible_env, tmpfs  # noqa: E402
from tests.lab.openbao import BaoCluster, BaoServer, ClusterTemplate, TransitUnsealer  # noqa: E402


CLONE_NEWNET = 0x40000000


def pytest_configure(config):
    """Each xdist worker runs in a network namespace of its own (loopback up, nothing else). A lab booted from a
    layer needs the layer's subnet (its hosts' configuration names their addresses); in its own namespace each
    worker can boot one at the same time as the other, and the servers tests start on 127.0.0.1 stay apart too.
    Every process a test starts (ansible-playbook, lab hosts, servers) inherits the namespace."""
    if not hasattr(config, 'workerinput') or os.geteuid() != 0 or os.environ.get('TRUSTROOT_WORKER_NETNS') == '0':
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), 'unshare(CLONE_NEWNET) for xdist worker %s' % config.workerinput['workerid'])
    subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)


def _require(path, what):
    if not os.path.exists(path):
        pytest.fail('%s missing at %s: run scripts/bootstrap.sh (make test does)' % (what, path))


@pytest.fixture(scope='session', autouse=True)
def _test_bed_ready():
    _require(os.path.join(ROOT, '.cache', 'bin', 'bao'), 'the bao binary')
    _require(os.path.join(COLLECTIONS_PATH, 'ansible_collections', 'trustroot', 'ops'), 'the collection link')


@pytest.fixture
def bao_single(tmp_path):
    """An uninitialized single-node OpenBao with raft storage."""
    server = BaoServer(str(tmp_path), 'single').start()
    yield server
    server.stop()


@pytest.fixture
def bao_cluster_fresh(tmp_path):
    """Three raft nodes joined by retry_join, started but not initialized."""
    cluster = BaoCluster(str(tmp_path), size=3).start()
    yield cluster
    cluster.stop()


class InitializedCluster(object):
    def __init__(self, cluster, init):
        self.cluster = cluster
        self.init = init
        self.keys = init['keys_base64']
        self.root_token = init['root_token']
        self.threshold = 2

    @property
    def urls(self):
        return self.cluster.urls

    @property
    def nodes(self):
        return self.cluster.nodes

    def leader_and_followers(self, timeout=60):
        return self.cluster.leader_and_followers(timeout)

    def unseal_all(self):
        self.cluster.unseal_raw(self.keys, self.threshold)
        self.cluster.wait_leader(self.root_token)

    def write_init_file(self, path):
        """The material in the format vault_init writes (unencrypted), for tests that read it."""
        material = {
            'format': 'trustroot.ops/vault-init/v1',
            'unseal_keys_b64': self.init['keys_base64'],
            'unseal_keys_hex': self.init['keys'],
            'unseal_shares': 3,
            'unseal_threshold': self.threshold,
            'root_token': self.root_token,
        }
        with open(os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as handle:
            json.dump(material, handle)
        return str(path)


@pytest.fixture(scope='session')
def bao_cluster_template(tmp_path_factory):
    """One initialized, joined 3-node cluster per test process (3 shares, threshold 2), kept stopped."""
    return ClusterTemplate(str(tmp_path_factory.mktemp('bao-cluster-template')), size=3, shares=3, threshold=2)


@pytest.fixture
def bao_cluster(tmp_path, bao_cluster_template):
    """A 3-node raft cluster, initialized (3 shares, threshold 2), every node joined, then sealed: each test runs
    on its own copy of the template's data (what it changes stays in its copy)."""
    cluster = bao_cluster_template.start_copy(str(tmp_path))
    try:
        yield InitializedCluster(cluster, bao_cluster_template.init)
    finally:
        cluster.stop()


@pytest.fixture
def bao_unsealed(bao_cluster):
    """The 3-node cluster, unsealed, with a leader."""
    bao_cluster.unseal_all()
    return bao_cluster


@pytest.fixture(scope='module')
def bao_unsealed_shared(tmp_path_factory, bao_cluster_template):
    """One unsealed copy of the template cluster for a whole test file, for tests that do not disturb each other.
    It holds the template's ports: a file using it cannot run a bao_cluster test while it is up (put those first)."""
    cluster = bao_cluster_template.start_copy(str(tmp_path_factory.mktemp('bao-shared')))
    try:
        shared = InitializedCluster(cluster, bao_cluster_template.init)
        shared.unseal_all()
        yield shared
    finally:
        cluster.stop()


@pytest.fixture
def transit_unsealer(tmp_path):
    unsealer = TransitUnsealer(str(tmp_path)).start()
    yield unsealer
    unsealer.stop()


@pytest.fixture
def bao_autounseal_single(tmp_path, transit_unsealer):
    """An uninitialized single node whose seal is the transit unsealer."""
    server = BaoServer(str(tmp_path), 'auto')
    server.seal_stanza = transit_unsealer.seal_stanza()
    server.start()
    yield server
    server.stop()


class AnsibleRunner(object):
    """Runs real ansible-playbook with this checkout on the collections path."""

    def __init__(self, workdir):
        self.workdir = str(workdir)
        self.runs = []

    def env(self, extra=None):
        env = ansible_env({
            'ANSIBLE_PYTHON_INTERPRETER': os.path.join(VENV_BIN, 'python'),
            'ANSIBLE_INVENTORY_UNPARSED_WARNING': '0',
        })
        env.update(extra or {})
        return env

    def playbook(self, path, args=(), env=None, check=False, diff=False, verbosity=0):
        argv = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', path]
        argv += list(args)
        if check:
            argv.append('--check')
        if diff:
            argv.append('--diff')
        if verbosity:
            argv.append('-' + 'v' * verbosity)
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env(env), cwd=self.workdir,
                              timeout=600, check=False)
        self.runs.append(proc)
        return proc

    def modules(self, tasks, check=False, diff=False, env=None, verbosity=0):
        """Run module tasks in ONE playbook, each with ignore_errors; return (their registered results in order,
        the playbook's stdout + stderr). ``tasks``: (module, args) or (module, args, task options such as
        check_mode)."""
        index = len(self.runs)
        result_path = os.path.join(self.workdir, 'results-%d.json' % index)
        body = [dict(task[2] if len(task) > 2 else {}, name='task %d' % i, register='r%d' % i, ignore_errors=True,
                     **{'trustroot.ops.%s' % task[0]: task[1]}) for i, task in enumerate(tasks)]
        body.append({'name': 'save results', 'check_mode': False, 'diff': False, 'ansible.builtin.copy': {
            'content': '{{ [%s] | to_json }}' % ', '.join('r%d' % i for i in range(len(tasks))),
            'dest': result_path, 'mode': '0600'}})
        play_path = os.path.join(self.workdir, 'play-%d.yml' % index)
        with open(play_path, 'w') as handle:
            json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': body}], handle)
        proc = self.playbook(play_path, check=check, diff=diff, env=env, verbosity=verbosity)
        if not os.path.exists(result_path):
            raise AssertionError('playbook did not record results:\n%s\n%s' % (proc.stdout[-3000:], proc.stderr[-2000:]))
        with open(result_path) as handle:
            results = json.load(handle)
        os.remove(result_path)
        return results, proc.stdout + proc.stderr

    def module(self, name, args, check=False, diff=False, env=None, verbosity=0):
        """Run one module as a task; return its registered result (a dict with 'failed' on failure)."""
        results, _output = self.modules([(name, args)], check=check, diff=diff, env=env, verbosity=verbosity)
        result = results[0]
        result['_stdout'] = self.runs[-1].stdout
        return result

    def write_playbook(self, name, text):
        path = os.path.join(self.workdir, name)
        with open(path, 'w') as handle:
            handle.write(textwrap.dedent(text))
        return path


@pytest.fixture
def full_tmpfs(tmp_path):
    """A 64 KiB tmpfs filled to the last byte: os.access says writable (root), every write fails."""
    if os.geteuid() != 0:
        pytest.skip('mounting a small tmpfs (a disk that really fills) needs root')
    with tmpfs(str(tmp_path / 'full'), '64k') as path:
        with open(os.path.join(path, 'filler'), 'wb', buffering=0) as handle:
            with pytest.raises(OSError) as caught:
                while True:
                    handle.write(b'x' * 4096)
        assert caught.value.errno == errno.ENOSPC
        yield path


@pytest.fixture
def ansible(tmp_path):
    workdir = tmp_path / 'ansible'
    workdir.mkdir()
    return AnsibleRunner(workdir)


class Gpg(object):
    """Throwaway PGP keys in a private GNUPGHOME."""

    def __init__(self, home):
        self.home = str(home)
        os.makedirs(self.home, mode=0o700, exist_ok=True)

    def run(self, *args, data=None):
        proc = subprocess.run(['gpg', '--homedir', self.home, '--batch', '--yes'] + list(args), input=data,
                              capture_output=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr.decode()
        return proc.stdout

    def new_key(self, name):
        """A new key pair; returns the public key as Vault takes it (binary export, base64)."""
        uid = '%s <%s@example.invalid>' % (name, name)
        self.run('--passphrase', '', '--quick-gen-key', uid, 'default', 'default', 'never')
        return base64.b64encode(self.run('--export', uid)).decode()

    def decrypt_b64(self, blob):
        return self.run('--decrypt', data=base64.b64decode(blob))

    def stop_agent(self):
        # gpg starts a gpg-agent daemon per home; it would outlive the test.
        subprocess.run(['gpgconf', '--homedir', self.home, '--kill', 'gpg-agent'], capture_output=True,
                       timeout=30, check=False)


@pytest.fixture
def gpg(tmp_path):
    keyring = Gpg(tmp_path / 'gnupg')
    yield keyring
    keyring.stop_agent()

"""Real SPIRE servers and agents on loopback for tests, benchmarks and the demo.

One implementation used by the pytest fixtures (tests/integration/spire/conftest.py) and the
benchmarks. Servers run the real ``spire-server`` binary with a sqlite3 datastore, the disk key manager,
the ``join_token`` and ``x509pop`` node attestors, a federation bundle endpoint, a health-check
listener and a Prometheus endpoint, all on 127.0.0.1 and free ports, each in its own directory.
Agents run the real ``spire-agent`` binary, attested with a join token (or x509pop), bootstrapped from
the server's bundle (``trust_bundle_path``, no insecure bootstrap), with the unix workload attestor.
Every process started is tracked by PID and stopped by PID.

Unix socket paths are limited to 107 bytes and pytest's temporary directories are private to the
user that runs the tests, so sockets live in a short directory of their own under the system
temporary directory (mode 0755, so that a workload running as another user reaches the agent socket).

    python -m tests.lab.spire up --dir .lab/demo-spire          # writes <dir>/lab.json
    python -m tests.lab.spire down --dir .lab/demo-spire
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from tests.lab.common import free_port, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.path.join(ROOT, '.cache', 'bin')
SPIRE_SERVER_BIN = os.environ.get('SPIRE_SERVER_BIN') or os.path.join(BIN_DIR, 'spire-server')
SPIRE_AGENT_BIN = os.environ.get('SPIRE_AGENT_BIN') or os.path.join(BIN_DIR, 'spire-agent')

DEFAULT_TRUST_DOMAIN = 'example.org'
OTHER_TRUST_DOMAIN = 'other.example'


def socket_dir(prefix='spire-lab-'):
    """A short directory for unix sockets, traversable by every user (the sockets decide access)."""
    path = tempfile.mkdtemp(prefix=prefix, dir='/tmp')
    os.chmod(path, 0o755)
    return path


def http_get(url, timeout=5):
    """(status, body bytes) for a plain HTTP GET; HTTP errors are answers, not exceptions."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class SpireCommandError(RuntimeError):
    def __init__(self, argv, proc):
        super(SpireCommandError, self).__init__('%s exited %s\nstdout: %s\nstderr: %s' % (
            ' '.join(argv[:3]), proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
        self.proc = proc


# --- throwaway PKI for x509pop ------------------------------------------------------------------------

def make_x509pop_pki(directory, common_name='agent-x509pop'):
    """Write ca.pem, agent.pem, agent-key.pem under ``directory``; return their paths.

    Uses the ``cryptography`` package when importable, the openssl command otherwise."""
    os.makedirs(directory, exist_ok=True)
    paths = {
        'ca_cert': os.path.join(directory, 'x509pop-ca.pem'),
        'ca_key': os.path.join(directory, 'x509pop-ca-key.pem'),
        'cert': os.path.join(directory, 'x509pop-agent.pem'),
        'key': os.path.join(directory, 'x509pop-agent-key.pem'),
    }
    try:
        _pki_cryptography(paths, common_name)
    except ImportError:
        _pki_openssl(paths, common_name)
    for name in ('ca_key', 'key'):
        os.chmod(paths[name], 0o600)
    return paths


def _pki_cryptography(paths, common_name):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def pem_key(key):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'x509pop lab CA')])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(ca_key, hashes.SHA256()))
    for path, data in ((paths['ca_cert'], ca_cert.public_bytes(serialization.Encoding.PEM)),
                       (paths['ca_key'], pem_key(ca_key)),
                       (paths['cert'], cert.public_bytes(serialization.Encoding.PEM)),
                       (paths['key'], pem_key(key))):
        with open(path, 'wb') as handle:
            handle.write(data)


def _pki_openssl(paths, common_name):
    def run(*argv):
        subprocess.run(('openssl',) + argv, check=True, capture_output=True)
    run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
        '-subj', '/CN=x509pop lab CA', '-keyout', paths['ca_key'], '-out', paths['ca_cert'],
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
    csr = paths['cert'] + '.csr'
    run('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-subj', '/CN=%s' % common_name, '-keyout', paths['key'], '-out', csr)
    ext = paths['cert'] + '.ext'
    with open(ext, 'w') as handle:
        handle.write('basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n')
    run('x509', '-req', '-in', csr, '-CA', paths['ca_cert'], '-CAkey', paths['ca_key'], '-CAcreateserial',
        '-days', '1', '-extfile', ext, '-out', paths['cert'])
    os.remove(csr)
    os.remove(ext)


# --- processes -----------------------------------------------------------------------------------------

def _stop_process(proc, timeout=15):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _stop_pid(pid, binary_name):
    """Stop a process this lab started, identified by PID and checked to run ``binary_name``."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            if binary_name.encode() not in handle.read():
                return
        os.kill(pid, signal.SIGTERM)
    except (OSError, IOError):
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


class SpireServer(object):
    """One ``spire-server run`` process with everything under ``<workdir>/<name>``.

    Attributes: name, trust_domain, workdir (its directory), data_dir, config_path, log_path,
    datastore_path, keys_path, socket_path, bind_port, bundle_endpoint_port, health_port,
    metrics_port, x509pop (paths of the x509pop CA/agent material), ca_ttl, x509_svid_ttl,
    jwt_svid_ttl, proc, pid."""

    def __init__(self, workdir, name='server', trust_domain=DEFAULT_TRUST_DOMAIN, ca_ttl='24h',
                 x509_svid_ttl='1h', jwt_svid_ttl='5m', log_level='INFO', binary=None):
        self.name = name
        self.trust_domain = trust_domain
        self.workdir = os.path.abspath(os.path.join(workdir, name))
        self.ca_ttl = ca_ttl
        self.x509_svid_ttl = x509_svid_ttl
        self.jwt_svid_ttl = jwt_svid_ttl
        self.log_level = log_level
        self.binary = binary or SPIRE_SERVER_BIN
        self.bind_port = free_port()
        self.bundle_endpoint_port = free_port()
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.extra_config = ''
        self.proc = None
        os.makedirs(self.data_dir, exist_ok=True)
        self._socket_dir = socket_dir('spire-%s-' % name[:8])
        self.socket_path = os.path.join(self._socket_dir, 'private', 'api.sock')
        os.makedirs(os.path.dirname(self.socket_path), exist_ok=True)
        self.x509pop = make_x509pop_pki(os.path.join(self.workdir, 'x509pop'))

    # -- locations
    @property
    def data_dir(self):
        return os.path.join(self.workdir, 'data')

    @property
    def config_path(self):
        return os.path.join(self.workdir, 'server.conf')

    @property
    def log_path(self):
        return os.path.join(self.workdir, 'server.log')

    @property
    def datastore_path(self):
        return os.path.join(self.data_dir, 'datastore.sqlite3')

    @property
    def keys_path(self):
        return os.path.join(self.data_dir, 'keys.json')

    @property
    def address(self):
        return '127.0.0.1:%d' % self.bind_port

    @property
    def bundle_endpoint_url(self):
        return 'https://127.0.0.1:%d' % self.bundle_endpoint_port

    @property
    def health_url(self):
        return 'http://127.0.0.1:%d' % self.health_port

    @property
    def metrics_url(self):
        return 'http://127.0.0.1:%d/metrics' % self.metrics_port

    @property
    def server_id(self):
        return 'spiffe://%s/spire/server' % self.trust_domain

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def spiffe_id(self, path):
        """spiffe://<trust domain>/<path>."""
        return 'spiffe://%s/%s' % (self.trust_domain, path.lstrip('/'))

    def render_config(self):
        return '''server {
    bind_address = "127.0.0.1"
    bind_port = "%(bind_port)d"
    socket_path = "%(socket_path)s"
    trust_domain = "%(trust_domain)s"
    data_dir = "%(data_dir)s"
    log_level = "%(log_level)s"
    ca_key_type = "ec-p256"
    ca_ttl = "%(ca_ttl)s"
    default_x509_svid_ttl = "%(x509_svid_ttl)s"
    default_jwt_svid_ttl = "%(jwt_svid_ttl)s"
    federation {
        bundle_endpoint {
            address = "127.0.0.1"
            port = %(bundle_endpoint_port)d
        }
    }
}

plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "sqlite3"
            connection_string = "%(datastore_path)s"
        }
    }
    KeyManager "disk" {
        plugin_data {
            keys_path = "%(keys_path)s"
        }
    }
    NodeAttestor "join_token" {
        plugin_data {}
    }
    NodeAttestor "x509pop" {
        plugin_data {
            ca_bundle_path = "%(x509pop_ca)s"
        }
    }
}

health_checks {
    listener_enabled = true
    bind_address = "127.0.0.1"
    bind_port = "%(health_port)d"
    live_path = "/live"
    ready_path = "/ready"
}

telemetry {
    Prometheus {
        host = "127.0.0.1"
        port = %(metrics_port)d
    }
}
%(extra)s''' % dict(bind_port=self.bind_port, socket_path=self.socket_path, trust_domain=self.trust_domain,
                    data_dir=self.data_dir, log_level=self.log_level, ca_ttl=self.ca_ttl,
                    x509_svid_ttl=self.x509_svid_ttl, jwt_svid_ttl=self.jwt_svid_ttl,
                    bundle_endpoint_port=self.bundle_endpoint_port, datastore_path=self.datastore_path,
                    keys_path=self.keys_path, x509pop_ca=self.x509pop['ca_cert'], health_port=self.health_port,
                    metrics_port=self.metrics_port, extra=self.extra_config)

    # -- lifecycle
    def start(self, timeout=60):
        with open(self.config_path, 'w') as handle:
            handle.write(self.render_config())
        log = open(self.log_path, 'ab')
        # A session of its own: a Ctrl-C in the terminal does not hit servers mid-test.
        self.proc = subprocess.Popen([self.binary, 'run', '-config', self.config_path], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir,
                                     start_new_session=True)
        log.close()
        wait_for(self._healthy, timeout=timeout, interval=0.1, what='%s to be healthy' % self.name)
        return self

    def _healthy(self):
        if self.proc.poll() is not None:
            raise RuntimeError('%s exited with %s; see %s' % (self.name, self.proc.returncode, self.log_path))
        return self.healthcheck()

    def healthcheck(self):
        """True when ``spire-server healthcheck`` succeeds on this server's socket."""
        proc = subprocess.run([self.binary, 'healthcheck', '-socketPath', self.socket_path],
                              capture_output=True, text=True, timeout=30, check=False)
        return proc.returncode == 0

    def stop(self):
        _stop_process(self.proc)
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        """Stop and remove the socket directory (the working directory belongs to the caller)."""
        self.stop()
        shutil.rmtree(self._socket_dir, ignore_errors=True)

    # -- raw CLI (independent of the collection)
    def cli_raw(self, args, data=None, output_json=True, timeout=300):
        argv = [self.binary] + list(args) + ['-socketPath', self.socket_path]
        if output_json:
            argv += ['-output', 'json']
        if isinstance(data, (dict, list)):
            data = json.dumps(data)
        return subprocess.run(argv, input=data, capture_output=True, text=True, timeout=timeout, check=False)

    def cli(self, args, data=None, check=True, timeout=300):
        """Run ``spire-server <args> -socketPath <socket> -output json`` and return the parsed JSON.

        ``data`` (str, or a dict/list dumped as JSON) goes to stdin: pair it with ``-data -`` or
        ``-file -`` in ``args``. With ``check`` (default) a non-zero exit raises SpireCommandError."""
        argv = [self.binary] + list(args)
        proc = self.cli_raw(args, data=data, timeout=timeout)
        if check and proc.returncode != 0:
            raise SpireCommandError(argv, proc)
        try:
            return json.loads(proc.stdout)
        except ValueError:
            if check:
                raise SpireCommandError(argv, proc)
            return None

    # -- conveniences for tests
    def entries(self, *filters):
        """Every registration entry (all pages), optionally filtered with ``entry show`` flags."""
        return self.cli(['entry', 'show'] + list(filters)).get('entries') or []

    def create_entries(self, entries):
        """Create entries through ``entry create -data -`` (legacy input shape); return the results."""
        return self.cli(['entry', 'create', '-data', '-'], data={'entries': entries})['results']

    def bundle(self):
        return self.cli(['bundle', 'show'])

    def bundle_pem(self):
        proc = self.cli_raw(['bundle', 'show', '-format', 'pem'], output_json=False)
        if proc.returncode != 0:
            raise SpireCommandError([self.binary, 'bundle', 'show'], proc)
        return proc.stdout

    def bundle_spiffe(self):
        proc = self.cli_raw(['bundle', 'show', '-format', 'spiffe'], output_json=False)
        if proc.returncode != 0:
            raise SpireCommandError([self.binary, 'bundle', 'show'], proc)
        return proc.stdout

    def set_federated_bundle(self, other):
        """Store ``other``'s bundle (SPIFFE format) as a federated bundle on this server."""
        proc = self.cli_raw(['bundle', 'set', '-format', 'spiffe', '-id', 'spiffe://%s' % other.trust_domain],
                            data=other.bundle_spiffe(), output_json=False)
        if proc.returncode != 0:
            raise SpireCommandError([self.binary, 'bundle', 'set'], proc)

    def join_token(self, spiffe_id=None, ttl=600):
        args = ['token', 'generate', '-ttl', str(ttl)]
        if spiffe_id:
            args += ['-spiffeID', spiffe_id]
        return self.cli(args)['value']

    def module_args(self):
        return spire_server_module_args(self)

    def describe(self):
        return {'name': self.name, 'trust_domain': self.trust_domain, 'pid': self.pid,
                'socket_path': self.socket_path, 'address': self.address,
                'bundle_endpoint_url': self.bundle_endpoint_url, 'health_url': self.health_url,
                'metrics_url': self.metrics_url, 'config_path': self.config_path, 'log_path': self.log_path,
                'datastore_path': self.datastore_path, 'keys_path': self.keys_path,
                'socket_dir': self._socket_dir}


def spire_server_module_args(server):
    """The connection options of the trustroot.ops SPIRE modules for ``server``."""
    return {'socket_path': server.socket_path, 'spire_server_path': server.binary}


class SpireAgent(object):
    """One ``spire-agent run`` process attested to ``server`` (join token by default, or x509pop).

    Attributes: name, server, workdir, data_dir, config_path, log_path, trust_bundle_path,
    socket_path (Workload API), admin_socket_path, health_port, attestation, spiffe_id (the agent's
    SPIFFE ID once started), proc, pid."""

    def __init__(self, workdir, server, name='agent', attestation='join_token', binary=None):
        if attestation not in ('join_token', 'x509pop'):
            raise ValueError('attestation must be join_token or x509pop')
        self.name = name
        self.server = server
        self.attestation = attestation
        self.workdir = os.path.abspath(os.path.join(workdir, name))
        self.binary = binary or SPIRE_AGENT_BIN
        self.health_port = free_port()
        self.spiffe_id = None
        self.proc = None
        os.makedirs(self.data_dir, exist_ok=True)
        self._socket_dir = socket_dir('spire-%s-' % name[:8])
        self.socket_path = os.path.join(self._socket_dir, 'public', 'api.sock')
        self.admin_socket_path = os.path.join(self._socket_dir, 'admin', 'admin.sock')
        os.makedirs(os.path.dirname(self.socket_path), exist_ok=True)
        os.chmod(os.path.dirname(self.socket_path), 0o755)

    @property
    def data_dir(self):
        return os.path.join(self.workdir, 'data')

    @property
    def config_path(self):
        return os.path.join(self.workdir, 'agent.conf')

    @property
    def log_path(self):
        return os.path.join(self.workdir, 'agent.log')

    @property
    def trust_bundle_path(self):
        return os.path.join(self.workdir, 'bootstrap-bundle.pem')

    @property
    def join_token_path(self):
        return os.path.join(self.workdir, 'join-token')

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def render_config(self):
        if self.attestation == 'x509pop':
            attestor = ('    NodeAttestor "x509pop" {\n        plugin_data {\n'
                        '            private_key_path = "%s"\n            certificate_path = "%s"\n'
                        '        }\n    }\n') % (self.server.x509pop['key'], self.server.x509pop['cert'])
        else:
            attestor = '    NodeAttestor "join_token" {\n        plugin_data {}\n    }\n'
        return '''agent {
    data_dir = "%(data_dir)s"
    log_level = "INFO"
    server_address = "127.0.0.1"
    server_port = "%(server_port)d"
    socket_path = "%(socket_path)s"
    admin_socket_path = "%(admin_socket_path)s"
    trust_bundle_path = "%(trust_bundle_path)s"
    trust_domain = "%(trust_domain)s"
}

plugins {
%(attestor)s    KeyManager "disk" {
        plugin_data {
            directory = "%(data_dir)s"
        }
    }
    WorkloadAttestor "unix" {
        plugin_data {}
    }
}

health_checks {
    listener_enabled = true
    bind_address = "127.0.0.1"
    bind_port = "%(health_port)d"
    live_path = "/live"
    ready_path = "/ready"
}
''' % dict(data_dir=self.data_dir, server_port=self.server.bind_port, socket_path=self.socket_path,
           admin_socket_path=self.admin_socket_path, trust_bundle_path=self.trust_bundle_path,
           trust_domain=self.server.trust_domain, attestor=attestor, health_port=self.health_port)

    def start(self, timeout=60):
        first_start = not os.path.exists(os.path.join(self.data_dir, 'agent-data.json'))
        with open(self.trust_bundle_path, 'w') as handle:
            handle.write(self.server.bundle_pem())
        with open(self.config_path, 'w') as handle:
            handle.write(self.render_config())
        argv = [self.binary, 'run', '-config', self.config_path]
        if self.attestation == 'join_token' and first_start:
            token = self.server.join_token()
            with open(os.open(self.join_token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as handle:
                handle.write(token)
            argv += ['-joinTokenFile', self.join_token_path]
            self.spiffe_id = 'spiffe://%s/spire/agent/join_token/%s' % (self.server.trust_domain, token)
        log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.workdir, start_new_session=True)
        log.close()
        wait_for(self._healthy, timeout=timeout, interval=0.1, what='%s to be healthy' % self.name)
        if self.spiffe_id is None:
            self.spiffe_id = self._attested_id()
        return self

    def _attested_id(self):
        agents = self.server.cli(['agent', 'list']).get('agents') or []
        for agent in agents:
            if agent.get('attestation_type') == self.attestation:
                return 'spiffe://%s%s' % (agent['id']['trust_domain'], agent['id']['path'])
        raise RuntimeError('%s is not listed by the server' % self.name)

    def _healthy(self):
        if self.proc.poll() is not None:
            raise RuntimeError('%s exited with %s; see %s' % (self.name, self.proc.returncode, self.log_path))
        return self.healthcheck()

    def healthcheck(self):
        proc = subprocess.run([self.binary, 'healthcheck', '-socketPath', self.socket_path],
                              capture_output=True, text=True, timeout=30, check=False)
        return proc.returncode == 0

    def stop(self):
        _stop_process(self.proc)
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self._socket_dir, ignore_errors=True)

    def fetch_x509(self, user=None, timeout=30):
        """``spire-agent api fetch x509 -output json`` on this agent's socket, run as ``user`` (a name or
        uid; default: the current user). Returns (returncode, parsed JSON or None, stderr)."""
        argv = [self.binary, 'api', 'fetch', 'x509', '-socketPath', self.socket_path, '-output', 'json']
        preexec = None
        if user is not None:
            uid, gid = _user_ids(user)

            def preexec():  # noqa: E306 - runs in the child between fork and exec
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, preexec_fn=preexec,
                              cwd='/', check=False)
        try:
            body = json.loads(proc.stdout)
        except ValueError:
            body = None
        return proc.returncode, body, proc.stderr

    def describe(self):
        return {'name': self.name, 'pid': self.pid, 'spiffe_id': self.spiffe_id, 'socket_path': self.socket_path,
                'config_path': self.config_path, 'log_path': self.log_path, 'socket_dir': self._socket_dir}


def _user_ids(user):
    import pwd
    entry = pwd.getpwuid(user) if isinstance(user, int) else pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


# --- CLI for the demo and benchmarks: processes outlive this one; PIDs are recorded in lab.json ----------

def _cli_up(args):
    os.makedirs(args.dir, exist_ok=True)
    state_path = os.path.join(args.dir, 'lab.json')
    if os.path.exists(state_path):
        _cli_down(args)
    server = SpireServer(os.path.abspath(args.dir), trust_domain=args.trust_domain).start()
    state = {'server': server.describe()}
    if args.agent:
        agent = SpireAgent(os.path.abspath(args.dir), server).start()
        state['agent'] = agent.describe()
    with open(state_path, 'w') as handle:
        json.dump(state, handle, indent=2)
    print(json.dumps(state))


def _cli_down(args):
    state_path = os.path.join(args.dir, 'lab.json')
    if not os.path.exists(state_path):
        return
    with open(state_path) as handle:
        state = json.load(handle)
    if 'agent' in state:
        _stop_pid(state['agent']['pid'], 'spire-agent')
        shutil.rmtree(state['agent']['socket_dir'], ignore_errors=True)
    _stop_pid(state['server']['pid'], 'spire-server')
    shutil.rmtree(state['server']['socket_dir'], ignore_errors=True)
    os.remove(state_path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True)
    up = sub.add_parser('up')
    up.add_argument('--dir', required=True)
    up.add_argument('--trust-domain', default=DEFAULT_TRUST_DOMAIN)
    up.add_argument('--agent', action='store_true', help='also start an agent attested with a join token')
    down = sub.add_parser('down')
    down.add_argument('--dir', required=True)
    args = parser.parse_args(argv)
    {'up': _cli_up, 'down': _cli_down}[args.command](args)


if __name__ == '__main__':
    sys.exit(main())

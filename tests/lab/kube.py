"""A real Kubernetes API server for tests: kube-apiserver and etcd built by scripts/bootstrap.sh (.cache/bin),
started on one address (127.0.0.1 unless told) and free ports, with certificates and a service-account signing key
generated here, stopped by PID. There is no kubelet, scheduler or controller: tests create the Node, Pod and
ServiceAccount objects they need through the API, and bound tokens come from the TokenRequest API.

    kube = KubeCluster(workdir).start()
    kube.admin_kubeconfig                         # path: a system:masters client certificate
    kube.service_account('spire', 'spire-agent')
    node_uid = kube.node('node-1')
    pod_uid = kube.pod('spire', 'agent-node-1', 'spire-agent', 'node-1')
    token = kube.token('spire', 'spire-agent', pod='agent-node-1', audience='spire-server')
    kube.stop()
"""

import datetime
import ipaddress
import os
import shutil
import signal
import subprocess
import tempfile

import yaml

from tests.lab.common import ROOT, free_port, wait_for

BIN = os.path.join(ROOT, '.cache', 'bin')
ISSUER = 'https://kubernetes.default.svc.cluster.local'


def _write(path, data, mode=0o600):
    with open(path, 'wb') as handle:
        handle.write(data)
    os.chmod(path, mode)
    return path


class _Certificates(object):
    """The cluster CA, the API server's serving certificate, an admin client certificate and the
    service-account signing key pair, as PEM files in ``directory``."""

    def __init__(self, directory, addresses):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.x509.oid import NameOID

        self.directory = directory
        now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
        later = now + datetime.timedelta(days=2)

        def pem_key(key):
            return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())

        def name(common, org=None):
            attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
            if org:
                attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
            return x509.Name(attrs)

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = name('trustroot-lab-kubernetes-ca')
        ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
                   .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(later)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(ca_key, hashes.SHA256()))

        def leaf(subject, usage, sans=None):
            key = ec.generate_private_key(ec.SECP256R1())
            builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
                       .public_key(key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now).not_valid_after(later)
                       .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                       .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
            if sans:
                builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            return key, builder.sign(ca_key, hashes.SHA256())

        from cryptography.x509.oid import ExtendedKeyUsageOID
        sans = [x509.DNSName('kubernetes'), x509.DNSName('kubernetes.default.svc'), x509.DNSName('localhost')]
        sans += [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
        serving_key, serving_cert = leaf(name('kube-apiserver'), ExtendedKeyUsageOID.SERVER_AUTH, sans)
        admin_key, admin_cert = leaf(name('trustroot-lab-admin', 'system:masters'), ExtendedKeyUsageOID.CLIENT_AUTH)
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

        def cert_pem(cert):
            return cert.public_bytes(serialization.Encoding.PEM)

        self.ca_pem = cert_pem(ca_cert)
        self.ca_cert = _write(os.path.join(directory, 'ca.crt'), self.ca_pem, 0o644)
        self.serving_cert = _write(os.path.join(directory, 'apiserver.crt'), cert_pem(serving_cert), 0o644)
        self.serving_key = _write(os.path.join(directory, 'apiserver.key'), pem_key(serving_key))
        self.admin_cert = _write(os.path.join(directory, 'admin.crt'), cert_pem(admin_cert), 0o644)
        self.admin_key = _write(os.path.join(directory, 'admin.key'), pem_key(admin_key))
        self.sa_key = _write(os.path.join(directory, 'sa.key'), pem_key(sa_key))
        self.sa_pub = _write(os.path.join(directory, 'sa.pub'), sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)


class KubeCluster(object):
    """Attributes: directory, address, port, url, ca_pem (bytes), ca_cert (path), admin_kubeconfig (path),
    issuer, api (a kubernetes.client.ApiClient with admin rights, after start())."""

    def __init__(self, workdir=None, address='127.0.0.1'):
        self.directory = tempfile.mkdtemp(prefix='kube-lab-', dir=workdir or '/tmp')
        self.address = address
        self.port = free_port()
        self.etcd_port = free_port()
        self.etcd_peer_port = free_port()
        self.url = 'https://%s:%d' % (address, self.port)
        self.issuer = ISSUER
        self.procs = {}
        self.api = None
        self.certs = _Certificates(self.directory, sorted({'127.0.0.1', address}))
        self.ca_pem = self.certs.ca_pem
        self.ca_cert = self.certs.ca_cert
        self.admin_kubeconfig = self.kubeconfig(os.path.join(self.directory, 'admin.kubeconfig'),
                                                client_cert=self.certs.admin_cert, client_key=self.certs.admin_key)

    def kubeconfig(self, path, token=None, client_cert=None, client_key=None, user='user'):
        """Write a kubeconfig for this cluster (a bearer token, or a client certificate) and return its path."""
        credentials = {'token': token} if token else {'client-certificate': client_cert, 'client-key': client_key}
        config = {
            'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'lab',
            'clusters': [{'name': 'lab', 'cluster': {'server': self.url, 'certificate-authority': self.ca_cert}}],
            'users': [{'name': user, 'user': credentials}],
            'contexts': [{'name': 'lab', 'context': {'cluster': 'lab', 'user': user}}],
        }
        _write(path, yaml.safe_dump(config).encode())
        return path

    def _spawn(self, name, argv):
        log = open(os.path.join(self.directory, name + '.log'), 'ab')
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            cwd=self.directory, start_new_session=True)
        log.close()

    def _alive(self, name):
        proc = self.procs[name]
        if proc.poll() is not None:
            with open(os.path.join(self.directory, name + '.log'), errors='replace') as handle:
                tail = handle.read()[-3000:]
            raise RuntimeError('%s exited with %s:\n%s' % (name, proc.returncode, tail))
        return True

    def start(self, timeout=90):
        for name in ('kube-apiserver', 'etcd'):
            if not os.path.exists(os.path.join(BIN, name)):
                raise RuntimeError('%s missing in %s: run scripts/bootstrap.sh' % (name, BIN))
        etcd_url = 'http://127.0.0.1:%d' % self.etcd_port
        peer_url = 'http://127.0.0.1:%d' % self.etcd_peer_port
        self._spawn('etcd', [
            os.path.join(BIN, 'etcd'), '--name', 'lab', '--data-dir', os.path.join(self.directory, 'etcd'),
            '--listen-client-urls', etcd_url, '--advertise-client-urls', etcd_url,
            '--listen-peer-urls', peer_url, '--initial-advertise-peer-urls', peer_url,
            '--initial-cluster', 'lab=' + peer_url, '--unsafe-no-fsync', '--log-level', 'warn'])
        wait_for(lambda: self._alive('etcd') and self._etcd_healthy(etcd_url), timeout=timeout, what='etcd')
        self._spawn('kube-apiserver', [
            os.path.join(BIN, 'kube-apiserver'), '--bind-address', self.address,
            '--advertise-address', self.address, '--secure-port', str(self.port), '--etcd-servers', etcd_url,
            '--client-ca-file', self.certs.ca_cert, '--tls-cert-file', self.certs.serving_cert,
            '--tls-private-key-file', self.certs.serving_key, '--service-account-issuer', self.issuer,
            '--service-account-key-file', self.certs.sa_pub,
            '--service-account-signing-key-file', self.certs.sa_key, '--api-audiences', self.issuer,
            '--service-cluster-ip-range', '10.96.0.0/12', '--authorization-mode', 'Node,RBAC',
            '--endpoint-reconciler-type', 'none', '--profiling=false', '-v', '0'])
        wait_for(lambda: self._alive('kube-apiserver') and self._ready(), timeout=timeout, what='kube-apiserver')
        from kubernetes import config
        self.api = config.new_client_from_config(config_file=self.admin_kubeconfig)
        # The apiserver creates the system namespaces and RBAC roles in its post-start hooks; /readyz waits for them.
        wait_for(lambda: self._namespace_exists('default'), timeout=timeout, what='the default namespace')
        return self

    @staticmethod
    def _etcd_healthy(url):
        import urllib.request
        with urllib.request.urlopen(url + '/health', timeout=2) as response:
            return b'"true"' in response.read()

    def _ready(self):
        import ssl
        import urllib.request
        context = ssl.create_default_context(cafile=self.certs.ca_cert)
        context.load_cert_chain(self.certs.admin_cert, self.certs.admin_key)
        with urllib.request.urlopen(self.url + '/readyz', timeout=3, context=context) as response:
            return response.status == 200

    def _namespace_exists(self, name):
        from kubernetes import client
        from kubernetes.client.rest import ApiException
        try:
            client.CoreV1Api(self.api).read_namespace(name)
        except ApiException:
            return False
        return True

    # --- objects tests need -------------------------------------------------------------------------------

    def core(self):
        from kubernetes import client
        return client.CoreV1Api(self.api)

    def namespace(self, name):
        from kubernetes.client.rest import ApiException
        try:
            self.core().create_namespace({'metadata': {'name': name}})
        except ApiException as exc:
            if exc.status != 409:
                raise
        return name

    def service_account(self, namespace, name):
        from kubernetes.client.rest import ApiException
        self.namespace(namespace)
        try:
            self.core().create_namespaced_service_account(namespace, {'metadata': {'name': name}})
        except ApiException as exc:
            if exc.status != 409:
                raise
        return name

    def node(self, name):
        """Create a Node object (no kubelet behind it) and return its UID."""
        return self.core().create_node({'metadata': {'name': name}}).metadata.uid

    def pod(self, namespace, name, service_account, node):
        """Create a Pod bound to ``node`` (nothing runs it) and return its UID."""
        self.service_account(namespace, service_account)
        body = {'metadata': {'name': name},
                'spec': {'nodeName': node, 'serviceAccountName': service_account,
                         'containers': [{'name': 'main', 'image': 'registry.invalid/none:0'}]}}
        return self.core().create_namespaced_pod(namespace, body).metadata.uid

    def delete_pod(self, namespace, name):
        self.core().delete_namespaced_pod(name, namespace, grace_period_seconds=0)

    def token(self, namespace, service_account, pod=None, audience=None, seconds=3600):
        """A token for ``service_account`` from the TokenRequest API, bound to ``pod`` when given."""
        spec = {'expirationSeconds': seconds, 'audiences': [audience or self.issuer]}
        if pod:
            uid = self.core().read_namespaced_pod(pod, namespace).metadata.uid
            spec['boundObjectRef'] = {'kind': 'Pod', 'apiVersion': 'v1', 'name': pod, 'uid': uid}
        result = self.core().create_namespaced_service_account_token(service_account, namespace, {'spec': spec})
        return result.status.token

    def stop(self):
        """Stop the API server, then etcd, by PID, and remove the directory."""
        for name in ('kube-apiserver', 'etcd'):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.api is not None:
            self.api.close()
            self.api = None
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

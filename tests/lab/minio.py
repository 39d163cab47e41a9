"""A real MinIO server on loopback: the S3-compatible object store of the backup tests.

The binary is built by scripts/bootstrap.sh (build_minio) from the Go module proxy and linked at
.cache/bin/minio. Each server has its own data directory, free ports and generated root credentials; it is
stopped by PID.

    server = MinioServer(workdir).start()
    server.make_bucket('backups')
    ... server.endpoint, server.access_key, server.secret_key ...
    server.stop()
"""

import os
import secrets
import signal
import subprocess
import sys
import urllib.request

from tests.lab.common import free_port, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MINIO_BIN = os.environ.get('MINIO_BIN') or os.path.join(ROOT, '.cache', 'bin', 'minio')


def _s3_store_class():
    collections = os.path.join(ROOT, '.cache', 'collections')
    if collections not in sys.path:
        sys.path.insert(0, collections)
    from ansible_collections.trustroot.ops.plugins.module_utils._s3 import S3Store
    return S3Store


class MinioServer(object):
    def __init__(self, workdir, port=None, console_port=None):
        self.workdir = os.path.join(str(workdir), 'minio')
        self.port = port or free_port()
        self.console_port = console_port or free_port()
        self.access_key = 'lab-' + secrets.token_hex(6)
        self.secret_key = secrets.token_urlsafe(24)
        self.proc = None
        os.makedirs(self.data_dir, exist_ok=True)

    @property
    def endpoint(self):
        return 'http://127.0.0.1:%d' % self.port

    @property
    def data_dir(self):
        return os.path.join(self.workdir, 'data')

    @property
    def log_path(self):
        return os.path.join(self.workdir, 'server.log')

    def start(self, attempts=3):
        """Start the server; when it exits before answering (a free port taken meanwhile by another process),
        try again on new ports."""
        if not os.path.exists(MINIO_BIN):
            raise RuntimeError('minio missing at %s: run scripts/bootstrap.sh' % MINIO_BIN)
        for attempt in range(attempts):
            try:
                return self._start_once()
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                self.port, self.console_port = free_port(), free_port()
        return self

    def _start_once(self):
        env = dict(os.environ, MINIO_ROOT_USER=self.access_key, MINIO_ROOT_PASSWORD=self.secret_key,
                   HOME=self.workdir, MINIO_BROWSER='off', MINIO_UPDATE='off', MINIO_CI_CD='1')
        argv = [MINIO_BIN, 'server', self.data_dir, '--address', '127.0.0.1:%d' % self.port,
                '--console-address', '127.0.0.1:%d' % self.console_port, '--quiet']
        log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True)
        log.close()
        try:
            wait_for(lambda: self._health('live'), timeout=60, what='minio to answer /minio/health/live')
            wait_for(lambda: self._health('ready'), timeout=60, what='minio to answer /minio/health/ready')
        except BaseException:
            self.stop()
            raise
        return self

    def _health(self, which):
        if self.proc.poll() is not None:
            raise RuntimeError('minio exited with %s; see %s' % (self.proc.returncode, self.log_path))
        with urllib.request.urlopen(self.endpoint + '/minio/health/' + which, timeout=2) as resp:
            return resp.status == 200

    def store(self, bucket, prefix=''):
        return _s3_store_class()(self.endpoint, bucket, self.access_key, self.secret_key, prefix=prefix)

    def make_bucket(self, name):
        store = self.store(name)
        store.create_bucket()
        return store

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

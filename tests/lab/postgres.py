"""A real PostgreSQL server on loopback for tests: Debian's PostgreSQL 15 (/usr/lib/postgresql/15/bin),
a cluster of its own in a temporary directory, run as the ``postgres`` user, listening on 127.0.0.1 and a
free port (its unix socket in the same directory), password authentication (scram-sha-256). Stopped by PID.

    pg = PostgresServer().start()
    pg.create_database('spire', 'spire', 'secret')
    pg.connection_string('spire', 'spire', 'secret')   # libpq keyword/value string
    pg.stop()
"""

import os
import shutil
import signal
import subprocess
import tempfile

from tests.lab.common import free_port, wait_for

PG_BIN = os.environ.get('PG_BIN') or '/usr/lib/postgresql/15/bin'
PG_USER = 'postgres'


class PostgresServer(object):
    """Attributes: directory, data_dir, port, host ('127.0.0.1'), superuser_password, proc, pid."""

    def __init__(self, bin_dir=PG_BIN):
        self.bin_dir = bin_dir
        self.host = '127.0.0.1'
        self.port = free_port()
        self.superuser_password = 'lab-superuser-%d' % self.port
        self.proc = None
        # pytest's temporary directories are private to the test user: the cluster gets a directory of
        # its own that the postgres user owns.
        self.directory = tempfile.mkdtemp(prefix='pg-lab-', dir='/tmp')
        self.data_dir = os.path.join(self.directory, 'data')
        self.log_path = os.path.join(self.directory, 'postgres.log')
        shutil.chown(self.directory, PG_USER, PG_USER)
        os.chmod(self.directory, 0o700)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def _as_postgres(self, argv, data=None, check=True):
        proc = subprocess.run(['runuser', '-u', PG_USER, '--'] + argv, input=data, capture_output=True, text=True,
                              timeout=120, check=False, cwd='/')
        if check and proc.returncode != 0:
            raise RuntimeError('%s exited %s: %s' % (os.path.basename(argv[0]), proc.returncode, proc.stderr[-2000:]))
        return proc

    def start(self, timeout=60):
        pwfile = os.path.join(self.directory, 'pwfile')
        with open(pwfile, 'w') as handle:
            handle.write(self.superuser_password + '\n')
        shutil.chown(pwfile, PG_USER, PG_USER)
        os.chmod(pwfile, 0o600)
        self._as_postgres([os.path.join(self.bin_dir, 'initdb'), '-D', self.data_dir, '-U', PG_USER,
                           '--auth=scram-sha-256', '--pwfile=' + pwfile, '--encoding=UTF8', '--no-sync'])
        os.remove(pwfile)
        # `runuser` is the parent: the server itself is its child, stopped through the PID it writes.
        log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(
            ['runuser', '-u', PG_USER, '--', os.path.join(self.bin_dir, 'postgres'), '-D', self.data_dir,
             '-c', 'listen_addresses=%s' % self.host, '-c', 'port=%d' % self.port,
             '-c', 'unix_socket_directories=%s' % self.directory, '-c', 'fsync=off',
             '-c', 'logging_collector=off', '-c', 'max_connections=50'],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd='/', start_new_session=True)
        log.close()
        wait_for(self._ready, timeout=timeout, interval=0.2, what='postgres on port %d' % self.port)
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError('postgres exited with %s; see %s' % (self.proc.returncode, self.log_path))
        proc = subprocess.run([os.path.join(self.bin_dir, 'pg_isready'), '-h', self.host, '-p', str(self.port)],
                              capture_output=True, timeout=10, check=False)
        return proc.returncode == 0

    def psql(self, sql, dbname='postgres'):
        """Run SQL as the superuser over TCP; returns stdout (unaligned, tuples only)."""
        env = dict(os.environ, PGPASSWORD=self.superuser_password)
        proc = subprocess.run([os.path.join(self.bin_dir, 'psql'), '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
                               '-h', self.host, '-p', str(self.port), '-U', PG_USER, '-d', dbname, '-c', sql],
                              capture_output=True, text=True, env=env, timeout=60, check=False)
        if proc.returncode != 0:
            raise RuntimeError('psql failed: %s' % proc.stderr[-2000:])
        return proc.stdout

    def create_database(self, name, owner, password):
        self.psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (owner, password.replace("'", "''")))
        self.psql('CREATE DATABASE %s OWNER %s' % (name, owner))

    def connection_string(self, dbname, user, password):
        return "host=%s port=%d dbname=%s user=%s password='%s' sslmode=disable" % (
            self.host, self.port, dbname, user, password.replace('\\', '\\\\').replace("'", "\\'"))

    def stop(self):
        """Stop the server this object started (SIGINT: fast shutdown), by PID, and remove its directory."""
        if self.proc is not None and self.proc.poll() is None:
            server_pid = self._server_pid()
            if server_pid:
                try:
                    os.kill(server_pid, signal.SIGINT)
                except OSError:
                    pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                if server_pid:
                    try:
                        os.kill(server_pid, signal.SIGKILL)
                    except OSError:
                        pass
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.directory, ignore_errors=True)

    def _server_pid(self):
        """The postmaster's PID from postmaster.pid, checked to be a child of the runuser we started."""
        try:
            with open(os.path.join(self.data_dir, 'postmaster.pid')) as handle:
                pid = int(handle.readline().strip())
            with open('/proc/%d/stat' % pid) as handle:
                ppid = int(handle.read().rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        return pid if ppid == self.proc.pid else None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def spire_server_on_postgres(workdir, connection_string, name='server-pg', **kwargs):
    """A tests.lab.spire.SpireServer whose datastore is PostgreSQL at ``connection_string`` (not started)."""
    from tests.lab.spire import SpireServer

    class PostgresSpireServer(SpireServer):
        def render_config(self):
            sqlite = ('            database_type = "sqlite3"\n'
                      '            connection_string = "%s"\n' % self.datastore_path)
            config = super(PostgresSpireServer, self).render_config()
            if sqlite not in config:
                raise RuntimeError('the SpireServer config no longer has the expected sqlite3 DataStore block')
            return config.replace(sqlite, '            database_type = "postgres"\n'
                                          '            connection_string = "%s"\n'
                                  % connection_string.replace('\\', '\\\\').replace('"', '\\"'))

    server = PostgresSpireServer(workdir, name=name, **kwargs)
    server.connection_string = connection_string
    return server

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving a SPIRE server's SQL datastore from SQLite to PostgreSQL.

SPIRE has no tool for this. The schema on the PostgreSQL side is SPIRE's own (created by running the same
spire-server binary once against the empty database); this file copies the rows of every table in one
transaction (``psql`` with ``COPY ... FROM STDIN``) and compares both sides.

Python 3 standard library only, no Ansible imports (runs on the SPIRE server host). Commands are argv lists
run through a ``run(argv, data=None) -> (rc, stdout bytes, stderr bytes)`` callable. The connection
string's password goes to a 0600 passfile (``_spire_backup._PgAccess``), never to argv or messages.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile

from ansible_collections.trustroot.ops.plugins.module_utils._spire_backup import (
    SpireBackupError, _PgAccess, bundle_summary, entries_digest, one_line)
from ansible_collections.trustroot.ops.plugins.module_utils._spire_entry_model import spiffe_id_text
from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError
from ansible_collections.trustroot.ops.plugins.module_utils._files import write_new_file
from ansible_collections.trustroot.ops.plugins.module_utils._scratch import ScratchError, ScratchProcess, free_port, wait_until


class DatastoreMigrationError(TrustrootError):
    """A failed step of the migration; the text is safe to show (never the connection string)."""


# SPIRE's bookkeeping table: the target keeps the row SPIRE wrote when it created the schema.
MIGRATIONS_TABLE = 'migrations'


# --- server.conf (pure) ------------------------------------------------------------------------------------

_DATASTORE_BLOCK = re.compile(r'DataStore\s+"sql"\s*\{(.*?)\n\s*\}\s*\n', re.S)
_SETTING = r'(?m)^\s*%s\s*=\s*"((?:[^"\\]|\\.)*)"'


def parse_datastore_config(text):
    """Pure. {'database_type', 'connection_string'} of the ``DataStore "sql"`` plugin in a server.conf (HCL as
    the role writes it); raises ValueError when the file has no such plugin or no database_type."""
    match = _DATASTORE_BLOCK.search(text or '')
    if not match:
        raise ValueError('has no DataStore "sql" plugin')
    block = match.group(1)
    kind = re.search(_SETTING % 'database_type', block)
    if not kind:
        raise ValueError('its DataStore "sql" plugin has no database_type')
    conn = re.search(_SETTING % 'connection_string', block)
    return {'database_type': kind.group(1),
            'connection_string': json.loads('"%s"' % conn.group(1)) if conn else ''}


def parse_trust_domain(text):
    """Pure. The ``trust_domain`` of the ``server`` block of a server.conf; raises ValueError without one."""
    match = re.search(_SETTING % 'trust_domain', text or '')
    if not match:
        raise ValueError('has no trust_domain')
    return json.loads('"%s"' % match.group(1))


def redact(text, secrets):
    """Pure. ``text`` with every non-empty secret replaced by '********'."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, '********')
    return text


# --- COPY text format (pure) -------------------------------------------------------------------------------

_TS = re.compile(r'^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?'
                 r'(?:\s+[A-Z]{2,5})?$')


def pg_timestamp(value, with_time_zone=True):
    """Pure. A PostgreSQL timestamp literal from what SQLite holds for a Go time.Time: go-sqlite3 text
    ('2026-12-01 03:11:23.123456789+00:00', RFC 3339 with 'T'/'Z') or Unix seconds. Fractions are cut to
    microseconds (PostgreSQL's precision); without a zone the value is UTC."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
        text = moment.strftime('%Y-%m-%d %H:%M:%S.%f+00:00')
        return text if with_time_zone else text[:-6]
    if isinstance(value, bytes):
        value = value.decode('utf-8')
    match = _TS.match(str(value).strip())
    if not match:
        raise ValueError('not a timestamp: %r' % (value,))
    day, clock, fraction, zone = match.groups()
    fraction = (fraction or '')[:6]
    if not zone or zone == 'Z':
        zone = '+00:00'
    elif ':' not in zone:
        zone = zone[:3] + ':' + zone[3:]
    moment = datetime.datetime.strptime('%s %s.%s%s' % (day, clock, (fraction or '0').ljust(6, '0'), zone),
                                        '%Y-%m-%d %H:%M:%S.%f%z')
    if with_time_zone:
        return moment.isoformat(sep=' ')
    return moment.astimezone(datetime.timezone.utc).replace(tzinfo=None).isoformat(sep=' ')


def _copy_escape(text):
    return (text.replace('\\', '\\\\').replace('\n', '\\n').replace('\r', '\\r').replace('\t', '\\t'))


def copy_field(value, data_type):
    """Pure. One field of a COPY text-format line for a PostgreSQL column of ``data_type``
    (information_schema.columns.data_type) from the SQLite value (SQLite stores booleans as 0/1, time as
    text, blobs as bytes)."""
    if value is None:
        return '\\N'
    kind = (data_type or '').lower()
    if kind == 'boolean':
        if isinstance(value, str):
            truth = value.strip().lower() in ('1', 't', 'true', 'y', 'yes')
        else:
            truth = bool(value)
        return 't' if truth else 'f'
    if kind == 'bytea':
        raw = value if isinstance(value, bytes) else str(value).encode('utf-8')
        return _copy_escape('\\x' + raw.hex())
    if kind.startswith('timestamp'):
        return pg_timestamp(value, with_time_zone='without' not in kind)
    if kind in ('smallint', 'integer', 'bigint'):
        if isinstance(value, (bytes, str)):
            value = int(value)
        return str(int(value))
    if isinstance(value, bytes):
        value = value.decode('utf-8')
    return _copy_escape(str(value))


def copy_line(row, types):
    """Pure. A COPY text-format line (tab separated, newline ended) of ``row`` for columns of ``types``."""
    return '\t'.join(copy_field(value, kind) for value, kind in zip(row, types)) + '\n'


def quote_ident(name):
    """Pure. A PostgreSQL (and SQLite) quoted identifier."""
    return '"%s"' % name.replace('"', '""')


def quote_literal(text):
    return "'%s'" % text.replace("'", "''")


# --- plans (pure) ------------------------------------------------------------------------------------------

def table_order(tables, foreign_keys):
    """Pure. ``tables`` sorted so that a table comes after the tables its foreign keys point to
    (``foreign_keys``: [(table, referenced table)]), ties by name. Raises ValueError on a cycle."""
    remaining = sorted(set(tables))
    needs = dict((t, set()) for t in remaining)
    for table, referenced in foreign_keys:
        if table in needs and referenced in needs and referenced != table:
            needs[table].add(referenced)
    ordered = []
    while remaining:
        ready = [t for t in remaining if not needs[t] - set(ordered)]
        if not ready:
            raise ValueError('foreign keys form a cycle between %s' % ', '.join(remaining))
        ordered.append(ready[0])
        remaining.remove(ready[0])
    return ordered


def column_plan(sqlite_columns, pg_columns):
    """Pure. For each table to copy: [(column, pg data_type)] in the SQLite column order.

    ``sqlite_columns``: {table: [column]}; ``pg_columns``: {table: {column: data_type}}. The migrations table is
    SPIRE's own on both sides and is not copied. Returns (plan, problems): problems name every table or column
    one side has and the other does not (a different schema version)."""
    plan, problems = {}, []
    for table in sorted(sqlite_columns):
        if table == MIGRATIONS_TABLE or table.startswith('sqlite_'):
            continue
        if table not in pg_columns:
            problems.append('table %s is not in the PostgreSQL database' % table)
            continue
        source, target = list(sqlite_columns[table]), pg_columns[table]
        missing = [c for c in source if c not in target]
        extra = [c for c in sorted(target) if c not in source]
        if missing:
            problems.append('table %s: PostgreSQL lacks column(s) %s' % (table, ', '.join(missing)))
        if extra:
            problems.append('table %s: SQLite lacks column(s) %s' % (table, ', '.join(extra)))
        if not missing and not extra:
            plan[table] = [(c, target[c]) for c in source]
    for table in sorted(pg_columns):
        if table != MIGRATIONS_TABLE and table not in sqlite_columns:
            problems.append('table %s is only in the PostgreSQL database' % table)
    return plan, problems


def target_decision(target_counts, source_fingerprint, target_fingerprint):
    """Pure. What to do with the PostgreSQL database, from its row counts per table ({} when SPIRE's
    tables do not exist yet) and the fingerprints (see ``fingerprint_*``) of both sides.

    Returns ('copy', reason) when it holds no SPIRE data, ('switch', reason) when it already holds exactly
    this server's data, or ('refuse', reason) naming the tables that hold other data."""
    filled = sorted(t for t, n in target_counts.items() if n and t != MIGRATIONS_TABLE)
    if not filled:
        return 'copy', 'the PostgreSQL database holds no SPIRE data'
    if target_fingerprint is not None and target_fingerprint == source_fingerprint:
        return 'switch', 'the PostgreSQL database already holds exactly this server\'s data'
    return 'refuse', 'the PostgreSQL database already holds SPIRE data (%s) that is not this server\'s' % (
        ', '.join('%s: %d rows' % (t, target_counts[t]) for t in filled))


def fingerprint(counts, bundles, journals, entry_ids):
    """Pure. What identifies a server's data: row counts per table (migrations left out), sha256 of each
    bundle's data by trust domain, sorted sha256 of the CA journals' data, sha256 over the sorted entry IDs."""
    digest = hashlib.sha256('\n'.join(sorted(entry_ids)).encode('utf-8')).hexdigest()
    return {'counts': dict((t, int(n)) for t, n in counts.items() if t != MIGRATIONS_TABLE),
            'bundles': dict(bundles), 'ca_journals': sorted(journals), 'entry_ids_sha256': digest}


def count_problems(source, target):
    """Pure. Tables whose row counts differ ({table: count} each side)."""
    return ['%s: %s rows in SQLite, %s in PostgreSQL' % (t, source.get(t), target.get(t))
            for t in sorted(set(source) | set(target))
            if t != MIGRATIONS_TABLE and int(source.get(t) or 0) != int(target.get(t) or 0)]


def server_summary(bundle, entries, agents, bundles, relationships):
    """Pure. What the server serves, to compare before and after the switch: the answers of ``bundle show``,
    ``entry show``, ``agent list``, ``bundle list`` and ``federation list`` (-output json)."""
    own = bundle_summary(bundle)
    federated = {}
    for item in (bundles or {}).get('bundles') or []:
        if item.get('trust_domain') and item.get('trust_domain') != own['trust_domain']:
            federated[item['trust_domain']] = bundle_summary(item)['x509_authorities']
    rels = []
    for rel in (relationships or {}).get('federation_relationships') or []:
        profile = rel.get('https_spiffe') and 'https_spiffe' or 'https_web'
        rels.append({'trust_domain': rel.get('trust_domain') or '',
                     'bundle_endpoint_url': rel.get('bundle_endpoint_url') or '',
                     'bundle_endpoint_profile': profile,
                     'endpoint_spiffe_id': (rel.get('https_spiffe') or {}).get('endpoint_spiffe_id') or ''})
    entry_list = (entries or {}).get('entries') or []
    return {
        'trust_domain': own['trust_domain'],
        'x509_authorities': own['x509_authorities'],
        'jwt_key_ids': own['jwt_key_ids'],
        'entry_count': len(entry_list),
        'entries_sha256': entries_digest(entry_list),
        'agents': sorted(spiffe_id_text(a.get('id')) for a in (agents or {}).get('agents') or []),
        'federated_bundles': federated,
        'federation_relationships': sorted(rels, key=lambda r: r['trust_domain']),
    }


def summary_problems(before, after):
    """Pure. What the server lost or changed in the switch ([] when it serves the same). X.509 authorities and
    federated bundles may gain members (the server may prepare a CA, a bundle endpoint may be refreshed), never
    lose one."""
    problems = []
    for key in ('trust_domain', 'entry_count', 'entries_sha256', 'agents', 'federation_relationships',
                'jwt_key_ids'):
        if before.get(key) != after.get(key):
            problems.append('%s changed: %s -> %s' % (key, _short(before.get(key)), _short(after.get(key))))
    lost = sorted(set(before.get('x509_authorities') or []) - set(after.get('x509_authorities') or []))
    if lost:
        problems.append('X.509 authorities lost (sha256 %s)' % ', '.join(lost))
    for td, authorities in sorted((before.get('federated_bundles') or {}).items()):
        kept = (after.get('federated_bundles') or {}).get(td)
        if kept is None:
            problems.append('federated bundle %s lost' % td)
        elif set(authorities) - set(kept):
            problems.append('federated bundle %s lost X.509 authorities' % td)
    return problems


def _short(value):
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 300 else text[:300] + '...'


def kept_name(path, when):
    """Pure. Where the SQLite file is kept after the switch: '<path>.<UTC yyyymmddThhmmssZ>'."""
    return '%s.%s' % (path, when.strftime('%Y%m%dT%H%M%SZ'))


def throwaway_config(trust_domain, data_dir, socket_path, port):
    """Pure. server.conf of a one-time spire-server that only creates SPIRE's schema in the target database:
    loopback, its own port and socket, a memory key manager, the connection string from the environment."""
    return '\n'.join([
        'server {',
        '  bind_address = "127.0.0.1"',
        '  bind_port = "%d"' % port,
        '  socket_path = %s' % json.dumps(socket_path),
        '  trust_domain = %s' % json.dumps(trust_domain),
        '  data_dir = %s' % json.dumps(data_dir),
        '  log_level = "WARN"',
        '}',
        'plugins {',
        '  DataStore "sql" {',
        '    plugin_data {',
        '      database_type = "postgres"',
        '      connection_string = "${SPIRE_MIGRATE_CONNECTION_STRING}"',
        '    }',
        '  }',
        '  KeyManager "memory" {',
        '    plugin_data {}',
        '  }',
        '  NodeAttestor "join_token" {',
        '    plugin_data {}',
        '  }',
        '}',
        ''])


# --- SQLite side -------------------------------------------------------------------------------------------

def _sqlite_open(path):
    import sqlite3
    from urllib.parse import quote
    if not os.path.isfile(path):
        raise DatastoreMigrationError('sqlite_path: %s does not exist' % path)
    return sqlite3.connect('file:%s?mode=ro' % quote(os.path.abspath(path)), uri=True, timeout=30)


class SqliteSource(object):
    """The server's SQLite datastore, read only."""

    def __init__(self, path):
        self.path = path
        self.conn = _sqlite_open(path)

    def close(self):
        self.conn.close()

    def tables(self):
        rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        return sorted(r[0] for r in rows)

    def columns(self):
        return dict((t, [r[1] for r in self.conn.execute('PRAGMA table_info(%s)' % quote_ident(t))])
                    for t in self.tables())

    def counts(self):
        return dict((t, self.conn.execute('SELECT count(*) FROM %s' % quote_ident(t)).fetchone()[0])
                    for t in self.tables())

    def schema_version(self):
        try:
            row = self.conn.execute('SELECT version, code_version FROM migrations ORDER BY id DESC LIMIT 1').fetchone()
        except Exception:  # no migrations table: not a SPIRE datastore
            row = None
        if not row:
            raise DatastoreMigrationError('sqlite_path: %s holds no SPIRE schema (no migrations row)' % self.path)
        return int(row[0]), row[1]

    def fingerprint(self):
        bundles = dict((td, hashlib.sha256(data or b'').hexdigest())
                       for td, data in self.conn.execute('SELECT trust_domain, data FROM bundles'))
        journals = [hashlib.sha256(r[0] or b'').hexdigest() for r in self.conn.execute('SELECT data FROM ca_journals')]
        ids = [r[0] for r in self.conn.execute('SELECT entry_id FROM registered_entries')]
        return fingerprint(self.counts(), bundles, journals, ids)

    def rows(self, table, columns):
        order = ' ORDER BY id' if 'id' in columns else ''
        return self.conn.execute('SELECT %s FROM %s%s' % (', '.join(quote_ident(c) for c in columns),
                                                          quote_ident(table), order))


# --- PostgreSQL side (psql) --------------------------------------------------------------------------------

def psql_argv(psql, conninfo, extra):
    """Pure. psql without the user's psqlrc, stopping at the first error, unaligned tab-separated output."""
    return [psql, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-A', '-t', '-F', '\t', '--dbname=' + conninfo] + list(extra)


class PostgresTarget(object):
    """The target database through ``psql`` (the password in a 0600 passfile in ``workdir``)."""

    def __init__(self, connection_string, workdir, run):
        self.workdir = workdir
        self.run = run
        psql = shutil.which('psql')
        if not psql:
            raise DatastoreMigrationError('psql was not found on PATH (install the PostgreSQL client)')
        self.psql = psql
        try:
            self.access = _PgAccess(connection_string, workdir)
        except SpireBackupError as err:
            raise DatastoreMigrationError(str(err))

    def close(self):
        self.access.close()

    def _call(self, extra, what):
        rc, out, err = self.run(psql_argv(self.psql, self.access.conninfo, extra))
        if rc != 0:
            # libpq messages may name host and user, never the password (it is in the passfile).
            raise DatastoreMigrationError('psql (%s) failed: %s' % (what, one_line(err) or 'exit status %s' % rc))
        return out.decode('utf-8') if isinstance(out, bytes) else out

    def query(self, sql, what):
        return [line.split('\t') for line in self._call(['-c', sql], what).splitlines() if line]

    def script(self, path, what):
        self._call(['--single-transaction', '-f', path], what)

    def columns(self):
        rows = self.query("SELECT table_name, column_name, data_type FROM information_schema.columns "
                          "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
                          'reading the schema')
        out = {}
        for table, column, kind in rows:
            out.setdefault(table, {})[column] = kind
        return out

    def foreign_keys(self):
        rows = self.query("SELECT tc.table_name, ccu.table_name FROM information_schema.table_constraints tc "
                          "JOIN information_schema.constraint_column_usage ccu "
                          "ON tc.constraint_name = ccu.constraint_name AND tc.table_schema = ccu.table_schema "
                          "WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema()",
                          'reading the foreign keys')
        return [tuple(row) for row in rows]

    def counts(self, tables):
        if not tables:
            return {}
        sql = ' UNION ALL '.join('SELECT %s, count(*) FROM %s' % (quote_literal(t), quote_ident(t))
                                 for t in sorted(tables))
        return dict((t, int(n)) for t, n in self.query(sql, 'counting rows'))

    def schema_version(self):
        rows = self.query('SELECT version, code_version FROM migrations ORDER BY id DESC LIMIT 1',
                          'reading the schema version')
        if not rows:
            raise DatastoreMigrationError('the PostgreSQL database has no SPIRE schema version (migrations is empty)')
        return int(rows[0][0]), rows[0][1]

    def fingerprint(self, tables):
        counts = self.counts(tables)
        bundles = dict(self.query("SELECT trust_domain, encode(sha256(coalesce(data, ''::bytea)), 'hex') FROM bundles",
                                  'reading bundles')) if 'bundles' in tables else {}
        journals = [r[0] for r in self.query("SELECT encode(sha256(coalesce(data, ''::bytea)), 'hex') FROM ca_journals",
                                             'reading CA journals')] if 'ca_journals' in tables else []
        ids = [r[0] for r in self.query('SELECT entry_id FROM registered_entries', 'reading entry IDs')] \
            if 'registered_entries' in tables else []
        return fingerprint(counts, bundles, journals, ids)

    def empty_tables(self, tables):
        if tables:
            self.query('TRUNCATE TABLE %s' % ', '.join(quote_ident(t) for t in sorted(tables)), 'emptying tables')


def write_copy_script(handle, source, plan, order):
    """Write the psql script of the copy into ``handle``: empty the tables, COPY every table's rows in
    ``order``, reset each ``id`` sequence past max(id). Run with ``psql --single-transaction``: all or nothing."""
    handle.write('TRUNCATE TABLE %s;\n' % ', '.join(quote_ident(t) for t in order))
    for table in order:
        columns = [c for c, _kind in plan[table]]
        types = [k for _c, k in plan[table]]
        handle.write('COPY %s (%s) FROM STDIN;\n' % (quote_ident(table), ', '.join(quote_ident(c) for c in columns)))
        for row in source.rows(table, columns):
            handle.write(copy_line(row, types))
        handle.write('\\.\n')
        if 'id' in columns:
            handle.write("SELECT setval(pg_get_serial_sequence(%s, 'id'), coalesce(max(id), 0) + 1, false) FROM %s;\n"
                         % (quote_literal(quote_ident(table)), quote_ident(table)))


# --- the throw-away server that creates the schema ---------------------------------------------------------

def create_schema(binary, trust_domain, connection_string, parent_dir, timeout, run, secrets=()):
    """Run ``binary`` once against the target (a temporary config, memory key manager, temporary data dir and
    socket, loopback port) until its health check passes, then stop it by its PID. SPIRE creates its schema
    and its migrations row; what else it wrote (its own CA) is emptied by the caller."""
    workdir = tempfile.mkdtemp(prefix='.spire-schema-', dir=parent_dir)
    server = None
    try:
        os.chmod(workdir, 0o700)
        os.mkdir(os.path.join(workdir, 'data'), 0o700)
        sock = os.path.join(workdir, 'api.sock')
        conf = os.path.join(workdir, 'server.conf')
        write_new_file(conf, throwaway_config(trust_domain, os.path.join(workdir, 'data'), sock,
                                              free_port()).encode('utf-8'))
        env = dict(os.environ, SPIRE_MIGRATE_CONNECTION_STRING=connection_string)
        server = ScratchProcess('the spire-server that creates the schema',
                                [binary, 'run', '-config', conf, '-expandEnv'], os.path.join(workdir, 'server.log'),
                                env=env, cwd=workdir)
        _wait_healthy(server, binary, sock, timeout, run, secrets)
    finally:
        if server is not None:
            server.stop(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_healthy(server, binary, sock, timeout, run, secrets):
    """Start ``server`` and poll its health check until it passes; its log (secrets redacted) on any failure."""
    def healthy():
        exited = server.exited_error()
        if exited:
            raise exited
        return run([binary, 'healthcheck', '-socketPath', sock])[0] == 0
    try:
        server.start()
        wait_until(healthy, timeout, '%s to be healthy' % server.name, interval=1)
    except ScratchError as exc:
        if server.running():
            raise DatastoreMigrationError('%s was not healthy after %ss: %s'
                                          % (server.name, timeout, redact(server.log_tail(1000), secrets)))
        raise DatastoreMigrationError(redact(str(exc), secrets))

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SPIRE server backup and restore: the consistent pair (datastore + the disk key manager's keys.json),
the server's identity at backup time, and the decisions of a restore.

Python 3 standard library only, no Ansible imports: the module ``spire_server_backup`` and a plain
command line on the SPIRE server host (a systemd timer) both use this file. Commands are argv lists run
through a ``run(argv, data=None) -> (rc, stdout bytes, stderr bytes)`` callable.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import json
import os
import shutil
import tempfile

from ansible_collections.trustroot.ops.plugins.module_utils._backup import (
    finish_backup, subprocess_run, write_archive)


class SpireBackupError(Exception):
    """A failed step of a SPIRE backup or restore; the text is safe to show (no connection string)."""


# --- canonical forms (pure) ---------------------------------------------------------------------------------

def _loads(value):
    if isinstance(value, bytes):
        value = value.decode('utf-8')
    if isinstance(value, str):
        value = json.loads(value)
    return value


def spiffe_id_text(value):
    """'spiffe://td/path' from the API shape {'trust_domain', 'path'} or from a string."""
    if isinstance(value, dict):
        return 'spiffe://%s%s' % (value.get('trust_domain') or '', value.get('path') or '')
    return value or ''


def _trust_domain_name(value):
    value = value or ''
    if value.startswith('spiffe://'):
        value = value[len('spiffe://'):]
    return value.rstrip('/').lower()


def _selector_text(selector):
    if isinstance(selector, dict):
        return '%s:%s' % (selector.get('type') or '', selector.get('value') or '')
    return selector


def canonical_entry(entry):
    """The fields of an entry that a restore must bring back (no IDs, revisions or timestamps)."""
    return {
        'spiffe_id': spiffe_id_text(entry.get('spiffe_id')),
        'parent_id': spiffe_id_text(entry.get('parent_id')),
        'selectors': sorted(_selector_text(s) for s in entry.get('selectors') or []),
        'x509_svid_ttl': int(entry.get('x509_svid_ttl') or 0),
        'jwt_svid_ttl': int(entry.get('jwt_svid_ttl') or 0),
        'federates_with': sorted(_trust_domain_name(td) for td in entry.get('federates_with') or []),
        'dns_names': sorted(entry.get('dns_names') or []),
        'admin': bool(entry.get('admin')),
        'downstream': bool(entry.get('downstream')),
        'hint': entry.get('hint') or '',
    }


def _entry_list(entries_json):
    data = _loads(entries_json)
    if isinstance(data, dict):
        data = data.get('entries') or []
    if not isinstance(data, list):
        raise ValueError('expected the JSON of `entry show -output json` or a list of entries')
    return data


def canonical_entries(entries_json):
    """Sorted canonical entries from ``entry show -output json`` (text, bytes, the parsed object or its
    ``entries`` list)."""
    items = [json.dumps(canonical_entry(e), sort_keys=True, separators=(',', ':')) for e in _entry_list(entries_json)]
    items.sort()
    return [json.loads(item) for item in items]


def entries_digest(entries_json):
    """Pure. sha256 (hex) over the canonical, sorted entries of ``entry show -output json`` (text, bytes,
    the parsed object or its ``entries`` list): SPIFFE ID, parent ID, sorted selectors 'type:value', X.509 and
    JWT SVID TTLs, sorted federated trust domains, sorted DNS names, admin, downstream and hint. Entry IDs,
    revisions and timestamps do not count, so a server restored from a backup gives the same digest."""
    items = sorted(json.dumps(canonical_entry(e), sort_keys=True, separators=(',', ':'))
                   for e in _entry_list(entries_json))
    digest = hashlib.sha256()
    digest.update(b'[')
    for index, item in enumerate(items):
        if index:
            digest.update(b',')
        digest.update(item.encode('utf-8'))
    digest.update(b']')
    return digest.hexdigest()


def bundle_summary(bundle_json):
    """Pure. {'trust_domain', 'x509_authorities': sorted sha256 (hex) of each authority's DER,
    'jwt_key_ids': sorted} from ``bundle show -output json`` (text, bytes or the parsed object)."""
    bundle = _loads(bundle_json)
    if not isinstance(bundle, dict):
        raise ValueError('expected the JSON object of `bundle show -output json`')
    x509 = []
    for authority in bundle.get('x509_authorities') or []:
        der = base64.b64decode(authority.get('asn1') or '', validate=True)
        if not der:
            raise ValueError('an X.509 authority of the bundle has no asn1')
        x509.append(hashlib.sha256(der).hexdigest())
    jwt = [a.get('key_id') or '' for a in bundle.get('jwt_authorities') or []]
    return {'trust_domain': bundle.get('trust_domain') or '', 'x509_authorities': sorted(x509),
            'jwt_key_ids': sorted(jwt)}


# --- the spire-server CLI ----------------------------------------------------------------------------------

SYSTEM = 'spire-server'
DEFAULT_SOCKET = '/tmp/spire-server/private/api.sock'
BINARY_DIRS = ('/opt/spire/bin', '/usr/local/bin', '/usr/bin')
DATASTORES = ('sqlite3', 'postgres')
PART_SQLITE = 'datastore.sqlite3'
PART_PGDUMP = 'datastore.pgdump'
PART_KEYS = 'keys.json'
PART_CONFIG = 'server.conf'
PART_BUNDLE = 'bundle.json'
DATASTORE_PART = {'sqlite3': PART_SQLITE, 'postgres': PART_PGDUMP}
PAIR_ATTEMPTS = 3


def _text(value):
    if isinstance(value, bytes):
        return value.decode('utf-8', 'replace')
    return value or ''


def one_line(text, limit=2000):
    """A command's error output on one line, without a usage dump."""
    lines = []
    for line in _text(text).strip().splitlines():
        if line.startswith('Usage of '):
            break
        if line.strip():
            lines.append(line.strip())
    text = ' '.join(lines)
    if text.startswith('Error: '):
        text = text[len('Error: '):]
    return text[:limit]


def cli_argv(binary, socket_path, args, output_json=True):
    """Pure. ``spire-server <args> -socketPath <socket> [-output json]`` as an argv list."""
    argv = [binary] + [str(a) for a in args] + ['-socketPath', socket_path]
    if output_json:
        argv += ['-output', 'json']
    return argv


def find_spire_server(path=None):
    """The spire-server binary: ``path`` when given, else PATH, /opt/spire/bin, /usr/local/bin, /usr/bin."""
    if path:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise SpireBackupError('spire_server_path: %s is not an executable file' % path)
        return path
    found = shutil.which('spire-server')
    if found:
        return found
    for directory in BINARY_DIRS:
        candidate = os.path.join(directory, 'spire-server')
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise SpireBackupError('spire-server was not found on PATH nor in %s: set spire_server_path' % ', '.join(BINARY_DIRS))


class SpireCLI(object):
    """``spire-server`` commands with ``-socketPath`` and ``-output json`` through ``run``."""

    def __init__(self, binary, socket_path, run):
        self.binary = binary
        self.socket_path = socket_path or DEFAULT_SOCKET
        self.run = run

    def json(self, args):
        rc, out, err = self.run(cli_argv(self.binary, self.socket_path, args))
        if rc != 0:
            raise SpireBackupError('spire-server %s failed (socket_path %s): %s' % (
                ' '.join(args), self.socket_path, one_line(err) or one_line(out) or 'exit status %s' % rc))
        try:
            return json.loads(_text(out))
        except ValueError:
            raise SpireBackupError('spire-server %s did not print JSON (socket_path %s)' % (' '.join(args), self.socket_path))

    def version(self):
        rc, out, err = self.run([self.binary, '--version'])
        return parse_version(out, err) if rc == 0 else None

    def healthy(self):
        rc, _out, _err = self.run(cli_argv(self.binary, self.socket_path, ['healthcheck'], output_json=False))
        return rc == 0


def parse_version(out, err=b''):
    """Pure. '1.15.3' from ``spire-server --version`` (printed on stdout or stderr), or None."""
    for text in (_text(out), _text(err)):
        for token in text.split():
            token = token.strip()
            if token[:1].isdigit() and '.' in token:
                return token
    return None


def server_info(bundle, entries_json, agent_count, federated_bundles, relationships, version, datastore):
    """Pure. The manifest's ``info`` from the spire-server answers (``bundle show``, ``entry show``,
    ``agent count``, ``bundle list``, ``federation list`` and ``--version``)."""
    summary = bundle_summary(bundle)
    entries = _entry_list(entries_json)
    own = summary['trust_domain']
    federated = sorted(set(b.get('trust_domain') for b in (_loads(federated_bundles) or {}).get('bundles') or []
                           if b.get('trust_domain') and b.get('trust_domain') != own))
    return {
        'trust_domain': own,
        'spire_version': version,
        'datastore': datastore,
        'entry_count': len(entries),
        'entries_sha256': entries_digest(entries),
        'agent_count': int((_loads(agent_count) or {}).get('count') or 0),
        'federated_trust_domains': federated,
        'federation_relationship_count': len((_loads(relationships) or {}).get('federation_relationships') or []),
        'x509_authorities': summary['x509_authorities'],
        'jwt_key_ids': summary['jwt_key_ids'],
    }


# --- PostgreSQL connection strings (pure) --------------------------------------------------------------------

# libpq keywords the backup passes on (https://www.postgresql.org/docs/current/libpq-connect.html).
PG_KEYWORDS = frozenset((
    'host', 'hostaddr', 'port', 'dbname', 'user', 'password', 'passfile', 'require_auth', 'channel_binding',
    'connect_timeout', 'client_encoding', 'options', 'application_name', 'fallback_application_name',
    'keepalives', 'keepalives_idle', 'keepalives_interval', 'keepalives_count', 'tcp_user_timeout',
    'replication', 'gssencmode', 'sslmode', 'requiressl', 'sslcompression', 'sslcert', 'sslkey', 'sslpassword',
    'sslcertmode', 'sslrootcert', 'sslcrl', 'sslcrldir', 'sslsni', 'requirepeer', 'ssl_min_protocol_version',
    'ssl_max_protocol_version', 'krbsrvname', 'gsslib', 'gssdelegation', 'service', 'target_session_attrs',
    'load_balance_hosts', 'pool_max_conns', 'pool_min_conns'))
# Settings of Go's pgx driver (SPIRE's) that libpq does not know; they do not matter to pg_dump.
PGX_ONLY = frozenset(('pool_max_conns', 'pool_min_conns', 'pool_max_conn_lifetime', 'pool_max_conn_idle_time',
                      'pool_health_check_period', 'pool_max_conn_lifetime_jitter', 'statement_cache_capacity',
                      'description_cache_capacity', 'default_query_exec_mode', 'prefer_simple_protocol'))


def _parse_keyword_value(text):
    params = {}
    pos, size = 0, len(text)
    while True:
        while pos < size and text[pos].isspace():
            pos += 1
        if pos >= size:
            return params
        start = pos
        while pos < size and text[pos] != '=' and not text[pos].isspace():
            pos += 1
        key = text[start:pos]
        while pos < size and text[pos].isspace():
            pos += 1
        if not key or pos >= size or text[pos] != '=':
            raise ValueError('expected keyword = value')
        pos += 1
        while pos < size and text[pos].isspace():
            pos += 1
        value = []
        if pos < size and text[pos] == "'":
            pos += 1
            while True:
                if pos >= size:
                    raise ValueError('unterminated quoted value')
                char = text[pos]
                if char == '\\' and pos + 1 < size:
                    value.append(text[pos + 1])
                    pos += 2
                    continue
                pos += 1
                if char == "'":
                    break
                value.append(char)
        else:
            while pos < size and not text[pos].isspace():
                if text[pos] == '\\' and pos + 1 < size:
                    value.append(text[pos + 1])
                    pos += 2
                    continue
                value.append(text[pos])
                pos += 1
        params[key] = ''.join(value)


def _parse_uri(text):
    from urllib.parse import parse_qsl, unquote
    rest = text.split('://', 1)[1]
    rest, _sep, query = rest.partition('?')
    authority, slash, path = rest.partition('/')
    params = {}
    if '@' in authority:
        userinfo, authority = authority.rsplit('@', 1)
        user, colon, password = userinfo.partition(':')
        if user:
            params['user'] = unquote(user)
        if colon:
            params['password'] = unquote(password)
    hosts, ports = [], []
    for hostport in authority.split(',') if authority else []:
        if hostport.startswith('['):
            host, _bracket, tail = hostport[1:].partition(']')
            port = tail[1:] if tail.startswith(':') else ''
        else:
            host, _colon, port = hostport.partition(':')
        hosts.append(unquote(host))
        ports.append(port)
    if any(hosts):
        params['host'] = ','.join(hosts)
    if any(ports):
        params['port'] = ','.join(ports)
    if slash and path:
        params['dbname'] = unquote(path)
    for key, value in parse_qsl(query, keep_blank_values=True):
        params[key] = value
    return params


def parse_connection_string(text):
    """Pure. The parameters of a libpq connection string: keyword/value (``host=db user=spire ...``) or URI
    (``postgres://user:password@host:5432/spire?sslmode=require``). Raises ValueError that never quotes the
    string (it holds a password)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError('connection_string is empty')
    text = text.strip()
    if text.startswith(('postgres://', 'postgresql://')):
        params = _parse_uri(text)
    else:
        params = _parse_keyword_value(text)
    unknown = sorted(k for k in params if k not in PG_KEYWORDS and k not in PGX_ONLY)
    if unknown:
        raise ValueError('connection_string has parameters libpq does not know: %s' % ', '.join(unknown))
    return params


def _quote_conninfo(value):
    return "'%s'" % value.replace('\\', '\\\\').replace("'", "\\'")


def pg_conninfo(params, passfile=None):
    """Pure. A keyword/value connection string for pg_dump / pg_restore ``--dbname`` WITHOUT the password
    (it goes to the 0600 ``passfile``)."""
    items = ['%s=%s' % (k, _quote_conninfo(v)) for k, v in sorted(params.items())
             if k not in ('password', 'passfile') and k not in PGX_ONLY]
    if passfile:
        items.append('passfile=%s' % _quote_conninfo(passfile))
    return ' '.join(items)


def pgpass_line(password):
    """Pure. A ~/.pgpass line that gives ``password`` to any host, port, database and user."""
    return '*:*:*:*:%s\n' % password.replace('\\', '\\\\').replace(':', '\\:')


def pg_dump_argv(pg_dump, conninfo, out_path):
    """Pure. pg_dump in custom format, without owners and privileges (restorable under another role)."""
    return [pg_dump, '--format=custom', '--no-owner', '--no-privileges', '--file=' + out_path, '--dbname=' + conninfo]


def pg_restore_argv(pg_restore, conninfo, dump_path):
    """Pure. pg_restore of a whole dump in one transaction (all or nothing), objects dropped first."""
    return [pg_restore, '--clean', '--if-exists', '--no-owner', '--no-privileges', '--single-transaction',
            '--exit-on-error', '--dbname=' + conninfo, dump_path]


class _PgAccess(object):
    """A temporary 0600 passfile in ``workdir`` and the connection string for ``--dbname``."""

    def __init__(self, connection_string, workdir):
        try:
            params = parse_connection_string(connection_string)
        except ValueError as err:
            raise SpireBackupError('connection_string: %s' % err)
        self.passfile = None
        password = params.get('password')
        if password is not None:
            self.passfile = os.path.join(workdir, '.pgpass')
            fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, 'w') as handle:
                handle.write(pgpass_line(password))
        self.conninfo = pg_conninfo(params, self.passfile)

    def close(self):
        if self.passfile:
            try:
                os.unlink(self.passfile)
            except OSError:
                pass
            self.passfile = None


def _which(name):
    found = shutil.which(name)
    if not found:
        raise SpireBackupError('%s was not found on PATH (install the PostgreSQL client)' % name)
    return found


def _pg_failed(what, err):
    # libpq messages may quote the connection string's host and user, never the password.
    return SpireBackupError('%s failed: %s' % (what, one_line(err)))


def pg_dump_to(connection_string, out_path, workdir, run):
    """Dump the postgres datastore to ``out_path``; the password never reaches argv or messages."""
    access = _PgAccess(connection_string, workdir)
    try:
        rc, _out, err = run(pg_dump_argv(_which('pg_dump'), access.conninfo, out_path))
    finally:
        access.close()
    if rc != 0:
        raise _pg_failed('pg_dump of the datastore', err)


def pg_restore_from(connection_string, dump_path, workdir, run):
    access = _PgAccess(connection_string, workdir)
    try:
        rc, _out, err = run(pg_restore_argv(_which('pg_restore'), access.conninfo, dump_path))
    finally:
        access.close()
    if rc != 0:
        raise _pg_failed('pg_restore of the datastore', err)


# --- SQLite ------------------------------------------------------------------------------------------------

def sqlite_copy(source, dest):
    """A consistent copy of a live SQLite database through SQLite's online backup API (source read-only),
    then ``PRAGMA integrity_check`` on the copy."""
    import sqlite3
    from urllib.parse import quote
    if not os.path.isfile(source):
        raise SpireBackupError('sqlite_path: %s does not exist' % source)
    try:
        src = sqlite3.connect('file:%s?mode=ro' % quote(os.path.abspath(source)), uri=True, timeout=30)
        try:
            dst = sqlite3.connect(dest)
            try:
                src.backup(dst)
                dst.execute('PRAGMA journal_mode=DELETE')
                rows = dst.execute('PRAGMA integrity_check').fetchall()
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as err:
        raise SpireBackupError('sqlite_path: copying %s failed: %s' % (source, err))
    if [tuple(r) for r in rows] != [('ok',)]:
        raise SpireBackupError('sqlite_path: the copy of %s fails integrity_check: %s' % (
            source, '; '.join(str(r[0]) for r in rows[:5])))


def sqlite_check(path):
    """None when ``path`` is an intact SQLite database, else the problem."""
    import sqlite3
    from urllib.parse import quote
    try:
        conn = sqlite3.connect('file:%s?mode=ro' % quote(path), uri=True)
        try:
            rows = conn.execute('PRAGMA integrity_check').fetchall()
        finally:
            conn.close()
    except sqlite3.Error as err:
        return str(err)
    return None if [tuple(r) for r in rows] == [('ok',)] else '; '.join(str(r[0]) for r in rows[:5])


# --- collecting the parts ----------------------------------------------------------------------------------

def _read(path):
    with open(path, 'rb') as handle:
        return handle.read()


def _write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb') as handle:
        handle.write(data)


def _authorities(summary):
    return (summary['x509_authorities'], summary['jwt_key_ids'])


def collect_parts(workdir, datastore, sqlite_path, connection_string, keys_path, config_path, spire_cli, run):
    """Copy the consistent pair (datastore + keys.json) and the references (server.conf, bundle.json) into
    ``workdir`` while the server runs; return (parts, info): parts [(member name, path)], info JSON-able
    (no secrets). keys.json and the bundle are read before and after the datastore copy; when either changed
    in between (a CA rotation) the pair is taken again, at most PAIR_ATTEMPTS times."""
    if datastore not in DATASTORES:
        raise SpireBackupError('datastore must be one of %s, got %s' % (', '.join(DATASTORES), datastore))
    if not os.path.isfile(keys_path):
        raise SpireBackupError('keys_path: %s does not exist (the disk KeyManager\'s keys file)' % keys_path)
    store_path = os.path.join(workdir, DATASTORE_PART[datastore])
    keys = bundle = None
    for attempt in range(1, PAIR_ATTEMPTS + 1):
        keys_before = _read(keys_path)
        bundle_before = spire_cli.json(['bundle', 'show'])
        if datastore == 'sqlite3':
            sqlite_copy(sqlite_path, store_path)
        else:
            pg_dump_to(connection_string, store_path, workdir, run)
        keys_after = _read(keys_path)
        bundle_after = spire_cli.json(['bundle', 'show'])
        if keys_before == keys_after and _authorities(bundle_summary(bundle_before)) == \
                _authorities(bundle_summary(bundle_after)):
            keys, bundle = keys_after, bundle_after
            break
    if keys is None:
        raise SpireBackupError('keys_path %s or the trust bundle changed during each of %d datastore copies '
                               '(a CA rotation in progress): try again' % (keys_path, PAIR_ATTEMPTS))
    if not keys:
        raise SpireBackupError('keys_path: %s is empty' % keys_path)
    if os.path.getsize(store_path) == 0:
        raise SpireBackupError('the datastore copy is empty')
    keys_part = os.path.join(workdir, PART_KEYS)
    _write_private(keys_part, keys)
    bundle_part = os.path.join(workdir, PART_BUNDLE)
    _write_private(bundle_part, json.dumps(bundle, indent=2, sort_keys=True).encode('utf-8'))
    parts = [(DATASTORE_PART[datastore], store_path), (PART_KEYS, keys_part), (PART_BUNDLE, bundle_part)]
    if config_path and os.path.isfile(config_path) and os.path.getsize(config_path) > 0:
        config_part = os.path.join(workdir, PART_CONFIG)
        _write_private(config_part, _read(config_path))
        parts.append((PART_CONFIG, config_part))
    info = server_info(bundle, spire_cli.json(['entry', 'show']), spire_cli.json(['agent', 'count']),
                       spire_cli.json(['bundle', 'list']), spire_cli.json(['federation', 'list']),
                       spire_cli.version(), datastore)
    info['pair_attempts'] = attempt
    info['keys_sha256'] = hashlib.sha256(keys).hexdigest()
    return parts, info


# --- restore decisions (pure) ------------------------------------------------------------------------------

def restore_plan(manifest, current, force=False):
    """Pure. Whether to restore the archive ``manifest`` (verify_archive's) into the server described by
    ``current`` {'datastore', 'keys_sha256' (None: no keys file), 'bundle' (bundle_summary or None when the
    server does not answer)}.

    Returns {'restore': bool, 'reason': str, 'errors': [str], 'checks': [str]}. The server already runs the
    backup when its keys.json has the archive's sha256 and its bundle has the archive's X.509 authorities.
    ``errors`` stop the restore before anything is touched."""
    info = manifest.get('info') or {}
    parts = manifest.get('parts') or {}
    errors = []
    if manifest.get('system') not in (None, SYSTEM):
        errors.append('the archive is a %s backup, not a %s backup' % (manifest.get('system'), SYSTEM))
    backup_store = info.get('datastore')
    if backup_store != current.get('datastore'):
        errors.append('the archive holds a %s datastore, datastore is %s (SPIRE has no tool to convert them)'
                      % (backup_store, current.get('datastore')))
    elif DATASTORE_PART.get(backup_store) not in parts:
        errors.append('the archive has no %s part' % DATASTORE_PART.get(backup_store))
    if PART_KEYS not in parts:
        errors.append('the archive has no %s part' % PART_KEYS)
    bundle = current.get('bundle')
    if bundle and info.get('trust_domain') and bundle.get('trust_domain') != info.get('trust_domain'):
        errors.append('the archive is of trust domain %s, the server runs trust domain %s' % (
            info.get('trust_domain'), bundle.get('trust_domain')))
    checks = ['healthcheck', 'trust_domain', 'x509_authorities', 'entry_count']
    if info.get('entries_sha256'):
        checks.append('entries_sha256')
    same_keys = bool(current.get('keys_sha256')) and current.get('keys_sha256') == (parts.get(PART_KEYS) or {}).get('sha256')
    same_bundle = bool(bundle) and sorted(bundle.get('x509_authorities') or []) == sorted(info.get('x509_authorities') or [])
    if errors:
        return {'restore': False, 'reason': 'the archive does not fit this server', 'errors': errors, 'checks': []}
    if same_keys and same_bundle:
        if force:
            return {'restore': True, 'reason': 'force: the server already runs this backup', 'errors': [],
                    'checks': checks}
        return {'restore': False, 'reason': 'the server already runs this backup (same keys.json and X.509 authorities)',
                'errors': [], 'checks': []}
    if not current.get('keys_sha256'):
        reason = 'keys_path does not exist'
    elif not same_keys:
        reason = 'keys.json differs from the backup'
    elif not bundle:
        reason = 'the server does not answer'
    else:
        reason = 'the X.509 authorities differ from the backup'
    return {'restore': True, 'reason': reason, 'errors': [], 'checks': checks}


def check_restored(manifest_info, bundle, entry_count, entries_sha256=None):
    """Pure. Mismatches between the restored server (``bundle``: bundle_summary of ``bundle show``,
    ``entry_count``, optionally the entries digest) and the backup's info; [] when it is back.
    Every X.509 authority of the backup must be in the bundle (the server may have prepared a new one
    since)."""
    problems = []
    if bundle.get('trust_domain') != manifest_info.get('trust_domain'):
        problems.append('trust domain is %s, the backup has %s' % (
            bundle.get('trust_domain'), manifest_info.get('trust_domain')))
    missing = sorted(set(manifest_info.get('x509_authorities') or []) - set(bundle.get('x509_authorities') or []))
    if missing:
        problems.append('the bundle lacks %d of the backup\'s X.509 authorities (sha256 %s)' % (
            len(missing), ', '.join(missing)))
    if manifest_info.get('entry_count') is not None and int(entry_count) != int(manifest_info['entry_count']):
        problems.append('the server has %s registration entries, the backup has %s' % (
            entry_count, manifest_info['entry_count']))
    if entries_sha256 is not None and manifest_info.get('entries_sha256') and \
            entries_sha256 != manifest_info['entries_sha256']:
        problems.append('the registration entries differ from the backup (entries_sha256 %s, backup %s)' % (
            entries_sha256, manifest_info['entries_sha256']))
    return problems


def state_view(keys_sha256, bundle, entry_count):
    """Pure. The before/after of a restore's diff."""
    return {'keys_sha256': keys_sha256, 'x509_authorities': list((bundle or {}).get('x509_authorities') or []),
            'entry_count': entry_count}


# --- putting files back ------------------------------------------------------------------------------------

def replace_file(source, target, uid, gid, mode=0o600):
    """Replace ``target`` atomically with the contents of ``source`` (temp file in the same directory, owner,
    group and mode set before the rename)."""
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise SpireBackupError('directory %s does not exist' % directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(target), suffix='.restore')
    try:
        os.fchmod(fd, mode)
        os.fchown(fd, uid, gid)
        with os.fdopen(fd, 'wb') as out, open(source, 'rb') as src:
            for chunk in iter(lambda: src.read(1 << 20), b''):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def restore_files(extracted, datastore, sqlite_path, connection_string, keys_path, uid, gid, workdir, run):
    """Put the pair back while the server is stopped: the datastore (SQLite file replaced atomically, stale
    -wal/-shm/-journal files removed; or pg_restore in one transaction), then keys.json."""
    if datastore == 'sqlite3':
        replace_file(os.path.join(extracted, PART_SQLITE), sqlite_path, uid, gid)
        for suffix in ('-wal', '-shm', '-journal'):
            try:
                os.unlink(sqlite_path + suffix)
            except FileNotFoundError:
                pass
    else:
        pg_restore_from(connection_string, os.path.join(extracted, PART_PGDUMP), workdir, run)
    replace_file(os.path.join(extracted, PART_KEYS), keys_path, uid, gid)


# --- whole backup (module and host command line) -----------------------------------------------------------

def save_spire_backup(params, run=None, workdir_parent=None, spire_cli=None):
    """Collect the parts and write the archive with ``_backup``: params holds the module's options
    (datastore, sqlite_path, connection_string, keys_path, config_path, socket_path, spire_server_path and
    the backup options dest_dir, age_recipients, keep_count, max_age, metric_textfile_dir, s3).
    ``spire_cli``: a SpireCLI (default: from socket_path and spire_server_path, through ``run``).
    Returns {'sidecar', 'info', 'finish'}."""
    run = run or subprocess_run
    cli = spire_cli or SpireCLI(find_spire_server(params.get('spire_server_path')), params.get('socket_path'), run)
    workdir = tempfile.mkdtemp(prefix='.spire-server-backup-', dir=workdir_parent or params['dest_dir'])
    try:
        parts, info = collect_parts(workdir, params['datastore'], params.get('sqlite_path'),
                                    params.get('connection_string'), params['keys_path'], params.get('config_path'),
                                    cli, run)
        sidecar = write_archive(params['dest_dir'], SYSTEM, parts, info,
                                recipients=params.get('age_recipients') or (), run=run)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    finish = finish_backup(params, sidecar, run)
    return {'sidecar': sidecar, 'info': info, 'finish': finish}

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
import time

from ansible_collections.trustroot.ops.plugins.module_utils._backup.archive import write_archive
from ansible_collections.trustroot.ops.plugins.module_utils._backup.finish import finish_backup
from ansible_collections.trustroot.ops.plugins.module_utils._der import der_read
from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError
from ansible_collections.trustroot.ops.plugins.module_utils._files import write_new_file
from ansible_collections.trustroot.ops.plugins.module_utils import _spire_cli
from ansible_collections.trustroot.ops.plugins.module_utils._spire_entry_model import canonical_entry
from ansible_collections.trustroot.ops.plugins.module_utils._runner import subprocess_run
from ansible_collections.trustroot.ops.plugins.module_utils._spire_cli import (  # noqa: F401 pylint: disable=unused-import
    DEFAULT_SERVER_SOCKET, BINARY_DIRS, SpireClient, clean_stderr, cli_argv, parse_version)


class SpireBackupError(TrustrootError):
    """A failed step of a SPIRE backup or restore; the text is safe to show (no connection string)."""


# --- canonical forms (pure) ---------------------------------------------------------------------------------

def _loads(value):
    if isinstance(value, bytes):
        value = value.decode('utf-8')
    if isinstance(value, str):
        value = json.loads(value)
    return value


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
    JWT SVID TTLs, sorted federated trust domains, sorted DNS names, admin, downstream, hint, and when set
    store_svid, expires_at, disable_x509_svid_prefetch and jwt_svid_include_jti. Entry IDs,
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
DEFAULT_SOCKET = DEFAULT_SERVER_SOCKET
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
    return clean_stderr(text)[:limit]


def find_spire_server(path=None):
    """The spire-server binary: ``path`` when given, else PATH, /opt/spire/bin, /usr/local/bin, /usr/bin."""
    return _spire_cli.find_spire_server(path, error=SpireBackupError)


class SpireCLI(SpireClient):
    """The SPIRE client whose failures are backup step failures."""

    error = SpireBackupError


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


def connection_string_problem(text, required_with):
    """Pure. What is wrong with the ``connection_string`` option (None when nothing is): missing although
    ``required_with`` (for example ``state=copied``) needs it, or not a libpq string. The message names the option
    and never quotes the string (it holds a password)."""
    if not text:
        return 'connection_string is required with %s' % required_with
    try:
        parse_connection_string(text)
    except ValueError as err:
        return str(err) if str(err).startswith('connection_string') else 'connection_string: %s' % err
    return None


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
    write_new_file(keys_part, keys)
    bundle_part = os.path.join(workdir, PART_BUNDLE)
    write_new_file(bundle_part, json.dumps(bundle, indent=2, sort_keys=True).encode('utf-8'))
    parts = [(DATASTORE_PART[datastore], store_path), (PART_KEYS, keys_part), (PART_BUNDLE, bundle_part)]
    if config_path and os.path.isfile(config_path) and os.path.getsize(config_path) > 0:
        config_part = os.path.join(workdir, PART_CONFIG)
        write_new_file(config_part, _read(config_path))
        parts.append((PART_CONFIG, config_part))
    info = server_info(bundle, spire_cli.json(['entry', 'show']), spire_cli.json(['agent', 'count']),
                       spire_cli.json(['bundle', 'list']), spire_cli.json(['federation', 'list']),
                       spire_cli.version(), datastore)
    info['pair_attempts'] = attempt
    info['keys_sha256'] = hashlib.sha256(keys).hexdigest()
    return parts, info


# --- the pair: keys.json against the datastore's CA journal (pure) ------------------------------------------
#
# SPIRE (pkg/server/ca/manager) keeps a "CA journal" per server in the datastore (table ca_journals, column
# data: the protobuf journal.Entries) and the disk key manager's private keys in keys.json
# ({"keys": {"<key id>": base64 PKCS#8 DER}}). At start it loads a journal slot only when the key manager key
# x509-CA-<slot> / JWT-Signer-<slot> / WIT-Signer-<slot> has the public key of the slot's certificate or key;
# otherwise it prepares a new CA without a word. The readers below are hand-written (key and certificate fields
# over _der.py's element reader, and a small protobuf wire-format reader) because this file runs on hosts with
# only python3 (no cryptography, no protobuf), where the backup role installs it with the other files of
# __backup_module_utils (roles/backup/vars/main.yml).

OID_EC = bytes.fromhex('2a8648ce3d0201')           # 1.2.840.10045.2.1 id-ecPublicKey
OID_RSA = bytes.fromhex('2a864886f70d010101')      # 1.2.840.113549.1.1.1 rsaEncryption
JOURNAL_STATUS = {0: 'unknown', 2: 'prepared', 3: 'active', 4: 'old'}
# (journal.Entries field, name in messages, key manager key id prefix, {entry field: protobuf field number}).
JOURNAL_KINDS = (
    (1, 'X.509 CA', 'x509-CA-', {'slot_id': 1, 'issued_at': 2, 'certificate': 3, 'status': 5, 'authority_id': 6,
                                 'not_after': 7}),
    (2, 'JWT key', 'JWT-Signer-', {'slot_id': 1, 'issued_at': 2, 'not_after': 3, 'kid': 4, 'public_key': 5,
                                   'status': 6, 'authority_id': 7}),
    (3, 'WIT key', 'WIT-Signer-', {'slot_id': 1, 'issued_at': 2, 'not_after': 3, 'kid': 4, 'public_key': 5,
                                   'status': 6, 'authority_id': 7}),
)
_TEXT_FIELDS = ('slot_id', 'authority_id', 'kid')
_INT_FIELDS = ('issued_at', 'not_after', 'status')


def _der(data, pos=0):
    """(tag, value start, value end) of the DER element at ``pos``; multi-byte tags are refused."""
    if pos < len(data) and data[pos] & 0x1f == 0x1f:
        raise ValueError('unexpected multi-byte DER tag')
    return der_read(data, pos)


def _der_items(data):
    """[(tag, value, whole element)] of the DER elements one after another in ``data``."""
    items, pos = [], 0
    while pos < len(data):
        tag, start, end = _der(data, pos)
        items.append((tag, data[start:end], data[pos:end]))
        pos = end
    return items


def _der_sequence(data, minimum=0):
    tag, start, end = _der(data)
    if tag != 0x30 or end != len(data):
        raise ValueError('not a DER SEQUENCE')
    items = _der_items(data[start:end])
    if len(items) < minimum:
        raise ValueError('a DER SEQUENCE of %d elements, expected at least %d' % (len(items), minimum))
    return items


def _der_tagged(items, tag, what):
    if not items or items[0][0] != tag:
        raise ValueError('%s: expected DER tag 0x%02x' % (what, tag))
    return items[0][1]


def _algorithm(value):
    items = _der_items(value)
    oid = _der_tagged(items, 0x06, 'AlgorithmIdentifier')
    params = items[1][1] if len(items) > 1 and items[1][0] == 0x06 else None
    return oid, params


def _rsa_public(n, e):
    return ('rsa', int.from_bytes(n, 'big'), int.from_bytes(e, 'big'))


def spki_public_key(der):
    """Pure. A comparable form of a DER SubjectPublicKeyInfo: ('ec', curve OID, point), ('rsa', n, e) or
    ('other', algorithm OID, key bits). Raises ValueError."""
    items = _der_sequence(der, 2)
    if items[0][0] != 0x30 or items[1][0] != 0x03 or not items[1][1] or items[1][1][0] != 0:
        raise ValueError('not a SubjectPublicKeyInfo')
    oid, params = _algorithm(items[0][1])
    bits = items[1][1][1:]
    if oid == OID_EC:
        return ('ec', params, bits)
    if oid == OID_RSA:
        rsa = _der_sequence(bits, 2)
        return _rsa_public(rsa[0][1], rsa[1][1])
    return ('other', oid, bits)


def certificate_public_key(der):
    """Pure. spki_public_key of a DER X.509 certificate's subjectPublicKeyInfo. Raises ValueError."""
    tbs = _der_sequence(der, 3)[0]
    if tbs[0] != 0x30:
        raise ValueError('not an X.509 certificate')
    fields = _der_items(tbs[1])
    if fields and fields[0][0] == 0xa0:      # [0] version
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    if len(fields) < 6:
        raise ValueError('not an X.509 certificate')
    return spki_public_key(fields[5][2])


def private_key_public_key(der):
    """Pure. The public half (spki_public_key's form) of a DER PKCS#8 EC or RSA private key, as SPIRE's disk
    key manager writes it (Go's ECPrivateKey always carries its public point). Raises ValueError."""
    items = _der_sequence(der, 3)
    if items[0][0] != 0x02 or items[1][0] != 0x30 or items[2][0] != 0x04:
        raise ValueError('not a PKCS#8 private key')
    oid, curve = _algorithm(items[1][1])
    if oid == OID_EC:
        point = None
        for tag, value, _whole in _der_sequence(items[2][1], 2)[2:]:
            if tag == 0xa0 and curve is None:        # [0] parameters
                curve = _der_tagged(_der_items(value), 0x06, 'ECPrivateKey parameters')
            elif tag == 0xa1:                        # [1] publicKey BIT STRING
                bits = _der_tagged(_der_items(value), 0x03, 'ECPrivateKey publicKey')
                point = bits[1:]
        if not point:
            raise ValueError('an EC private key without its public key')
        return ('ec', curve, point)
    if oid == OID_RSA:
        rsa = _der_sequence(items[2][1], 3)        # version, modulus, publicExponent, ...
        return _rsa_public(rsa[1][1], rsa[2][1])
    raise ValueError('a key of algorithm OID %s, not EC or RSA' % oid.hex())


def _varint(data, pos):
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError('truncated protobuf varint')
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7f) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _protobuf_fields(data):
    """[(field number, value)] of a protobuf message: varints as int, length-delimited fields as bytes."""
    fields, pos = [], 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire in (1, 5):
            value, pos = data[pos:pos + (8 if wire == 1 else 4)], pos + (8 if wire == 1 else 4)
        else:
            raise ValueError('protobuf wire type %d' % wire)
        if pos > len(data) or number == 0:
            raise ValueError('truncated protobuf message')
        fields.append((number, value))
    return fields


def parse_ca_journal(data):
    """Pure. The X.509 CA, JWT key and WIT key entries of a SPIRE CA journal (ca_journals.data, the protobuf
    journal.Entries): {'x509_cas' | 'jwt_keys' | 'wit_keys': [{'slot_id', 'issued_at', 'not_after', 'status'
    ('active', 'prepared', 'old', 'unknown'), 'authority_id', 'certificate' or 'public_key' (DER), 'kid'}]},
    oldest first. Raises ValueError naming the entry and field."""
    names = {1: 'x509_cas', 2: 'jwt_keys', 3: 'wit_keys'}
    proto_names = {1: 'x509CAs', 2: 'jwtKeys', 3: 'witKeys'}
    journal = {'x509_cas': [], 'jwt_keys': [], 'wit_keys': []}
    try:
        top = _protobuf_fields(bytes(data or b''))
    except ValueError as err:
        raise ValueError('not a journal.Entries message: %s' % err)
    for kind, _label, _prefix, layout in JOURNAL_KINDS:
        numbers = dict((number, name) for name, number in layout.items())
        for index, value in enumerate(v for n, v in top if n == kind):
            where = '%s[%d]' % (proto_names[kind], index)
            if not isinstance(value, bytes):
                raise ValueError('%s is not a message' % where)
            try:
                fields = _protobuf_fields(value)
            except ValueError as err:
                raise ValueError('%s: %s' % (where, err))
            entry = {'slot_id': '', 'issued_at': 0, 'not_after': 0, 'status': 0, 'authority_id': ''}
            for number, field_value in fields:
                name = numbers.get(number)
                if name is None:
                    continue
                if name in _INT_FIELDS:
                    if not isinstance(field_value, int):
                        raise ValueError('%s.%s is not a varint' % (where, name))
                    entry[name] = field_value - (1 << 64) if field_value >= 1 << 63 else field_value
                elif not isinstance(field_value, bytes):
                    raise ValueError('%s.%s is not a string or bytes field' % (where, name))
                elif name in _TEXT_FIELDS:
                    try:
                        entry[name] = field_value.decode('utf-8')
                    except UnicodeDecodeError:
                        raise ValueError('%s.%s is not UTF-8 text' % (where, name))
                else:
                    entry[name] = field_value
            entry['status'] = JOURNAL_STATUS.get(entry['status'], 'status %s' % entry['status'])
            journal[names[kind]].append(entry)
    return journal


def parse_keys_json(data):
    """Pure. {key id: PKCS#8 DER} from the disk key manager's keys.json ({"keys": {"<id>": "<base64>"}}).
    Raises ValueError naming the field."""
    try:
        document = json.loads(_text(data))
    except ValueError as err:
        raise ValueError('keys.json is not JSON: %s' % err)
    if not isinstance(document, dict) or not isinstance(document.get('keys'), dict):
        raise ValueError('keys.json: expected an object {"keys": {"<key id>": "<base64 PKCS#8 key>"}}')
    keys = {}
    for key_id, value in document['keys'].items():
        if not isinstance(value, str):
            raise ValueError('keys.json keys.%s is not a base64 string' % key_id)
        try:
            keys[key_id] = base64.b64decode(value, validate=True)
        except ValueError:
            raise ValueError('keys.json keys.%s is not base64' % key_id)
    return keys


def journal_slots(journal, now):
    """Pure. The journal entries SPIRE loads into a slot at start: the newest entry of each slot of each kind,
    unless its status is old or it expired (``now``: epoch seconds). [(kind label, key id, entry, the entry's
    public key field: 'certificate' or 'public_key')]."""
    kinds = {1: 'x509_cas', 2: 'jwt_keys', 3: 'wit_keys'}
    slots = []
    for kind, label, prefix, _layout in JOURNAL_KINDS:
        newest = {}
        for entry in journal[kinds[kind]]:
            if entry['slot_id']:
                newest[entry['slot_id']] = entry
        for slot_id in sorted(newest):
            entry = newest[slot_id]
            if entry['status'] != 'old' and entry['not_after'] >= now:
                slots.append((label, prefix + slot_id, entry, 'certificate' if kind == 1 else 'public_key'))
    return slots


def _journal_problems(keys, journal, where, now):
    problems = []
    public = {}
    for label, key_id, entry, field in journal_slots(journal, now):
        slot = '%s %s %s slot %s (authority %s)' % (
            where, entry['status'], label, entry['slot_id'], entry['authority_id'] or '?')
        try:
            expected = (certificate_public_key if field == 'certificate' else spki_public_key)(entry.get(field) or b'')
        except ValueError as err:
            problems.append('%s: its %s cannot be read: %s' % (slot, field, err))
            continue
        if key_id not in keys:
            problems.append('keys.json has no %s for %s' % (key_id, slot))
            continue
        if key_id not in public:
            try:
                public[key_id] = private_key_public_key(keys[key_id])
            except ValueError as err:
                public[key_id] = 'keys.json keys.%s is not a private key SPIRE can use: %s' % (key_id, err)
        if isinstance(public[key_id], str):
            problems.append(public[key_id])
        elif public[key_id] != expected:
            problems.append('keys.json %s does not hold the key of %s' % (key_id, slot))
    return problems


def pair_problems(keys_json, journals, now=None):
    """Pure. Why keys.json (its bytes or text) and the CA journals of a datastore ([{'id', 'data'}] rows of
    ca_journals) are not a pair; [] when they are. Every slot SPIRE would load at start (journal_slots) must
    have its key in keys.json under the slot's key id (x509-CA-A, JWT-Signer-B, ...). With several journals
    (servers sharing a datastore) one of them must match. ``now``: epoch seconds (default: the clock)."""
    now = time.time() if now is None else now
    try:
        keys = parse_keys_json(keys_json)
    except ValueError as err:
        return [str(err)]
    if not journals:
        return ['the datastore holds no CA journal (table ca_journals is empty), so no CA of it can be '
                'matched to keys.json']
    found = []
    for row in journals:
        where = "the datastore's CA journal" if len(journals) == 1 else \
            "the datastore's CA journal %s" % row.get('id')
        try:
            journal = parse_ca_journal(row.get('data'))
        except ValueError as err:
            found.append(['%s (ca_journals.data) cannot be read: %s' % (where, err)])
            continue
        problems = _journal_problems(keys, journal, where, now)
        if not problems:
            return []
        found.append(problems)
    if len(found) == 1:
        return found[0]
    return ['keys.json matches none of the datastore\'s %d CA journals: %s' % (
        len(found), '; '.join('; '.join(problems) for problems in found))]


def _copy_text_field(value):
    """A field of PostgreSQL's COPY text format: None for \\N, else the unescaped text."""
    if value == '\\N':
        return None
    out, pos = [], 0
    simple = {'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}
    while pos < len(value):
        char = value[pos]
        if char != '\\' or pos + 1 >= len(value):
            out.append(char)
            pos += 1
            continue
        nxt = value[pos + 1]
        if nxt in simple:
            out.append(simple[nxt])
            pos += 2
        elif nxt in '01234567':
            end = pos + 2
            while end < min(pos + 4, len(value)) and value[end] in '01234567':
                end += 1
            out.append(chr(int(value[pos + 1:end], 8)))
            pos = end
        else:
            out.append(nxt)
            pos += 2
    return ''.join(out)


def journals_from_copy_text(text):
    """Pure. ca_journals rows [{'id', 'data', 'active_x509_authority_id'}] from the SQL text of
    ``pg_restore --data-only --table=ca_journals --file=-`` (a COPY ... FROM stdin block, bytea in hex)."""
    rows, columns = [], None
    for line in _text(text).splitlines():
        if columns is None:
            head = line.strip()
            if head.startswith('COPY ') and head.endswith('FROM stdin;') and 'ca_journals' in head.split('(')[0]:
                columns = [c.strip().strip('"') for c in head[head.index('(') + 1:head.rindex(')')].split(',')]
                if 'data' not in columns:
                    raise ValueError('the COPY of ca_journals has no data column')
            continue
        if line == '\\.':
            columns = None
            continue
        values = [_copy_text_field(v) for v in line.split('\t')]
        if len(values) != len(columns):
            raise ValueError('a ca_journals row has %d fields, the COPY names %d columns' % (len(values), len(columns)))
        row = dict(zip(columns, values))
        data = row.get('data') or ''
        if not data.startswith('\\x'):
            raise ValueError('ca_journals.data of row %s is not bytea in hex output' % row.get('id'))
        try:
            row['data'] = bytes.fromhex(data[2:])
        except ValueError:
            raise ValueError('ca_journals.data of row %s is not hex' % row.get('id'))
        rows.append(row)
    return rows


def read_ca_journals(datastore, path, run):
    """The ca_journals rows [{'id', 'data', 'active_x509_authority_id'}] of a datastore part: a SQLite file
    (read only) or a pg_dump custom-format file (through ``pg_restore --data-only``, no server needed)."""
    if datastore == 'sqlite3':
        import sqlite3
        from urllib.parse import quote
        try:
            conn = sqlite3.connect('file:%s?mode=ro' % quote(os.path.abspath(path)), uri=True)
            try:
                found = conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='ca_journals'").fetchall()
                rows = conn.execute('SELECT id, data, active_x509_authority_id FROM ca_journals ORDER BY id').fetchall() \
                    if found else []
            finally:
                conn.close()
        except sqlite3.Error as err:
            raise SpireBackupError('%s: reading the CA journal failed: %s' % (PART_SQLITE, err))
        return [{'id': r[0], 'data': bytes(r[1] or b''), 'active_x509_authority_id': r[2]} for r in rows]
    rc, out, err = run([_which('pg_restore'), '--data-only', '--table=ca_journals', '--file=-', path])
    if rc != 0:
        raise _pg_failed('pg_restore --data-only --table=ca_journals of %s' % PART_PGDUMP, err)
    try:
        return journals_from_copy_text(out)
    except ValueError as err:
        raise SpireBackupError('%s: %s' % (PART_PGDUMP, err))


def parts_pair_problems(datastore, store_path, keys_path, run, now=None):
    """pair_problems of a datastore part and a keys.json file."""
    return pair_problems(_read(keys_path), read_ca_journals(datastore, store_path, run), now)


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
    Refuses (SpireBackupError, nothing written) when the copied keys.json does not hold the keys of the copied
    datastore's CA journal (pair_problems). Returns {'sidecar', 'info', 'finish'}."""
    run = run or subprocess_run
    cli = spire_cli or SpireCLI(find_spire_server(params.get('spire_server_path')), params.get('socket_path'), run)
    workdir = tempfile.mkdtemp(prefix='.spire-server-backup-', dir=workdir_parent or params['dest_dir'])
    try:
        parts, info = collect_parts(workdir, params['datastore'], params.get('sqlite_path'),
                                    params.get('connection_string'), params['keys_path'], params.get('config_path'),
                                    cli, run)
        # The consistent-pair promise: an archive SPIRE would start from with a new CA is never written.
        named = dict(parts)
        problems = parts_pair_problems(params['datastore'], named[DATASTORE_PART[params['datastore']]],
                                       named[PART_KEYS], run)
        if problems:
            source = 'sqlite_path %s' % params.get('sqlite_path') if params['datastore'] == 'sqlite3' else \
                'the postgres datastore of connection_string'
            raise SpireBackupError('keys_path %s and %s are not a pair (SPIRE would start from them with a new CA); '
                                   'no archive was written: %s' % (params['keys_path'], source, '; '.join(problems)))
        sidecar = write_archive(params['dest_dir'], SYSTEM, parts, info,
                                recipients=params.get('age_recipients') or (), run=run)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    finish = finish_backup(params, sidecar, run)
    return {'sidecar': sidecar, 'info': info, 'finish': finish}

"""Unit tests for plugins/module_utils/_spire_backup.py: canonical entries and their digest, bundle summary,
argv building, info parsing from recorded SPIRE v1.15.3 JSON, restore plans and post-restore checks, and
keys.json against the datastore's CA journal (recorded from real SPIRE v1.15.3 servers)."""

import base64
import copy
import hashlib
import json
import os
import sqlite3

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils import _spire_backup
from ansible_collections.trustroot.ops.plugins.module_utils._spire_entry_model import canonical_entry
from ansible_collections.trustroot.ops.plugins.module_utils._spire_backup import (
    PART_BUNDLE, PART_KEYS, PART_SQLITE, SpireBackupError, SpireCLI, bundle_summary, canonical_entries,
    certificate_public_key, check_restored, cli_argv, collect_parts, entries_digest,
    journal_slots, journals_from_copy_text, pair_problems, parse_ca_journal, parse_connection_string, parse_keys_json,
    parse_version, parts_pair_problems, pg_conninfo, pg_dump_argv, pg_restore_argv, pgpass_line, private_key_public_key,
    read_ca_journals, replace_file, restore_plan, save_spire_backup, server_info, spki_public_key, sqlite_check,
    sqlite_copy, state_view)

TD = 'example.org'
SERVER_CA_ASN1 = (
    'MIICAjCCAaigAwIBAgIRAPVELhoWGzTwB+c0z5hLIC0wCgYIKoZIzj0EAwIwUDELMAkGA1UEBhMCVVMxDzANBgNVBAoTBlNQSUZG'
    'RTEwMC4GA1UEBRMnMzI2MDE0ODcwMjExMzAwMzExNjkxOTI5NDM3ODgwMzgyNTk1MTE3MB4XDTI2MTEyMjExMjcwMFoXDTI2MTEy'
    'MzExMjcxMFowUDELMAkGA1UEBhMCVVMxDzANBgNVBAoTBlNQSUZGRTEwMC4GA1UEBRMnMzI2MDE0ODcwMjExMzAwMzExNjkxOTI5'
    'NDM3ODgwMzgyNTk1MTE3MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEIV7/6nUrguioMRrLsNubJjSfE93yN1iIEcH05BhJtSP2'
    'sEe/27pNWxqK6OnxURnXdx/eeiaHRrWknsmJnbU0XqNjMGEwDgYDVR0PAQH/BAQDAgEGMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0O'
    'BBYEFLW1a6Wo3qN/G2+ndZaUqSHFtqe0MB8GA1UdEQQYMBaGFHNwaWZmZTovL2V4YW1wbGUub3JnMAoGCCqGSM49BAMCA0gAMEUC'
    'IQCtXp4M3qprjKZPo2kre0P/imSQANFgEyKS/osbuOWgswIgQfHhrKw7UOaysETIOx7PxlxHpPZoMxeXLb1Y3USflWQ='
)
SERVER_CA_SHA256 = hashlib.sha256(base64.b64decode(SERVER_CA_ASN1)).hexdigest()
# `spire-server bundle show -output json` of one SPIRE v1.15.3 server.
SERVER_BUNDLE_TEXT = '''{"jwt_authorities": [{"expires_at": "1795433230", "key_id": "c6WQ5OEEY0SnsobN0WsboZOyiDMMyWh2",
"public_key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELZpYejY72Sl8/cH1pSiw4DTLytuXGP2rPnA9Cac8vt7YHhgVG0K3VS8JyBcpCU8u6JTCBFHNVwq2u60CQNLmxg==",
"tainted": false}], "refresh_hint": "0", "sequence_number": "1", "trust_domain": "example.org", "wit_authorities": [],
"x509_authorities": [{"asn1": "%s",
"tainted": false}]}''' % SERVER_CA_ASN1
SERVER_BUNDLE = json.loads(SERVER_BUNDLE_TEXT)


def shown(i, entry_id='e%d', **extra):
    """An entry in the `entry show -output json` shape."""
    entry = {'id': entry_id % i if '%' in entry_id else entry_id,
             'spiffe_id': {'trust_domain': TD, 'path': '/w%d' % i},
             'parent_id': {'trust_domain': TD, 'path': '/spire/agent/join_token/abc'},
             'selectors': [{'type': 'unix', 'value': 'uid:%d' % i}, {'type': 'unix', 'value': 'gid:%d' % i}],
             'x509_svid_ttl': 0, 'jwt_svid_ttl': 0, 'federates_with': [], 'dns_names': [], 'admin': False,
             'downstream': False, 'hint': '', 'store_svid': False, 'expires_at': '0', 'revision_number': '0',
             'created_at': '1795346797'}
    entry.update(extra)
    return entry


def show(*entries):
    return {'entries': list(entries), 'next_page_token': ''}


# --- entries_digest -------------------------------------------------------------------------------------------

def test_canonical_entry_fields():
    entry = shown(1, federates_with=['spiffe://B.example', 'a.example'], dns_names=['b', 'a'], x509_svid_ttl=60,
                  jwt_svid_ttl='30', admin=True, hint='h')
    assert canonical_entry(entry) == {
        'spiffe_id': 'spiffe://example.org/w1', 'parent_id': 'spiffe://example.org/spire/agent/join_token/abc',
        'selectors': ['unix:gid:1', 'unix:uid:1'], 'x509_svid_ttl': 60, 'jwt_svid_ttl': 30,
        'federates_with': ['a.example', 'b.example'], 'dns_names': ['a', 'b'], 'admin': True, 'downstream': False,
        'hint': 'h'}


def test_digest_counts_every_registration_field_and_keeps_older_digests():
    # Entries that set none of the later fields keep the digest the sidecars of older backups hold.
    assert entries_digest(show(shown(1), shown(2, admin=True, dns_names=['a']))) == (
        '5195003f281c207ae3ab6b149011f1f007ca79978aa80f35795bf778321a9c63')
    plain = entries_digest(show(shown(1)))
    for changed in ({'store_svid': True}, {'expires_at': '1900000000'}, {'jwt_svid_include_jti': True}):
        assert entries_digest(show(shown(1, **changed))) != plain, changed
    assert canonical_entry(shown(1, store_svid=True, expires_at='1900000000'))['expires_at'] == 1900000000


def test_digest_ignores_ids_timestamps_order_and_selector_order():
    one = show(shown(1), shown(2), shown(3))
    other = show(shown(3, entry_id='x', created_at='1', revision_number='4'), shown(1, entry_id='y'),
                 shown(2, selectors=[{'type': 'unix', 'value': 'gid:2'}, {'type': 'unix', 'value': 'uid:2'}]))
    assert entries_digest(one) == entries_digest(other)


def test_digest_accepts_text_bytes_dict_and_list():
    data = show(shown(1), shown(2))
    text = json.dumps(data)
    digest = entries_digest(data)
    assert len(digest) == 64
    assert entries_digest(text) == digest
    assert entries_digest(text.encode()) == digest
    assert entries_digest(data['entries']) == digest


def test_digest_missing_defaults_equal_explicit_defaults():
    full = shown(1)
    sparse = {'id': 'z', 'spiffe_id': full['spiffe_id'], 'parent_id': full['parent_id'],
              'selectors': full['selectors']}
    assert entries_digest([full]) == entries_digest([sparse])


@pytest.mark.parametrize('change', [
    {'x509_svid_ttl': 1}, {'jwt_svid_ttl': 1}, {'admin': True}, {'downstream': True}, {'hint': 'x'},
    {'dns_names': ['a.example']}, {'federates_with': ['other.example']},
    {'selectors': [{'type': 'unix', 'value': 'uid:1'}]},
    {'spiffe_id': {'trust_domain': TD, 'path': '/other'}},
    {'parent_id': {'trust_domain': TD, 'path': '/spire/agent/x509pop/abc'}},
])
def test_digest_changes_with_every_restored_field(change):
    assert entries_digest([shown(1)]) != entries_digest([shown(1, **change)])


def test_digest_counts_duplicates_and_empty():
    assert entries_digest([shown(1)]) != entries_digest([shown(1), shown(1, entry_id='dup')])
    assert entries_digest(show()) == entries_digest([]) == hashlib.sha256(b'[]').hexdigest()
    assert entries_digest({'entries': None}) == entries_digest([])


def test_digest_is_sha256_of_canonical_json():
    entries = [shown(2), shown(1)]
    canonical = canonical_entries(entries)
    assert [e['spiffe_id'] for e in canonical] == ['spiffe://example.org/w1', 'spiffe://example.org/w2']
    text = '[' + ','.join(json.dumps(e, sort_keys=True, separators=(',', ':')) for e in canonical) + ']'
    assert entries_digest(entries) == hashlib.sha256(text.encode()).hexdigest()


def test_digest_rejects_other_json():
    with pytest.raises(ValueError):
        entries_digest('"text"')


# --- bundle_summary ---------------------------------------------------------------------------------------

def test_bundle_summary_recorded_shape():
    expected = {'trust_domain': 'example.org', 'x509_authorities': [SERVER_CA_SHA256],
                'jwt_key_ids': ['c6WQ5OEEY0SnsobN0WsboZOyiDMMyWh2']}
    assert bundle_summary(SERVER_BUNDLE) == expected
    assert bundle_summary(SERVER_BUNDLE_TEXT) == expected
    assert bundle_summary(SERVER_BUNDLE_TEXT.encode()) == expected


def test_bundle_summary_sorted_and_empty():
    bundle = copy.deepcopy(SERVER_BUNDLE)
    second = base64.b64encode(b'\x30\x03\x02\x01\x01').decode()
    bundle['x509_authorities'].append({'asn1': second, 'tainted': True})
    bundle['jwt_authorities'].append({'key_id': 'A', 'public_key': 'x'})
    summary = bundle_summary(bundle)
    assert summary['x509_authorities'] == sorted([SERVER_CA_SHA256, hashlib.sha256(base64.b64decode(second)).hexdigest()])
    assert summary['jwt_key_ids'] == ['A', 'c6WQ5OEEY0SnsobN0WsboZOyiDMMyWh2']
    assert bundle_summary({'trust_domain': 'td'}) == {'trust_domain': 'td', 'x509_authorities': [], 'jwt_key_ids': []}


def test_bundle_summary_rejects_bad_asn1():
    with pytest.raises(ValueError):
        bundle_summary({'trust_domain': 'td', 'x509_authorities': [{'asn1': 'not base64!'}]})
    with pytest.raises(ValueError):
        bundle_summary({'trust_domain': 'td', 'x509_authorities': [{'asn1': ''}]})
    with pytest.raises(ValueError):
        bundle_summary('[]')


# --- argv and CLI answers -----------------------------------------------------------------------------------

def test_cli_argv():
    assert cli_argv('/bin/spire-server', '/run/s.sock', ['entry', 'show']) == [
        '/bin/spire-server', 'entry', 'show', '-socketPath', '/run/s.sock', '-output', 'json']
    assert cli_argv('s', '/x', ['healthcheck'], output_json=False) == ['s', 'healthcheck', '-socketPath', '/x']


def test_parse_version():
    assert parse_version(b'', b'1.15.3\n') == '1.15.3'
    assert parse_version(b'1.15.3-dev-unk\n') == '1.15.3-dev-unk'
    assert parse_version(b'', b'') is None


class Recorder(object):
    """A run callable answering from a table keyed by the argv's subcommand words."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, data=None):
        self.calls.append(list(argv))
        if os.path.basename(argv[0]) in ('pg_dump', 'pg_restore'):
            words = (os.path.basename(argv[0]),)
        elif argv[1:] == ['--version']:
            words = ('--version',)
        else:
            words = tuple(a for a in argv[1:] if not a.startswith('-') and '/' not in a and a != 'json')
        answer = self.answers[words]
        if callable(answer):
            answer = answer()
        if isinstance(answer, tuple):
            return answer
        return 0, json.dumps(answer).encode(), b''


AGENT_COUNT = {'count': 2}
BUNDLE_LIST = {'bundles': [{'trust_domain': 'other.example', 'x509_authorities': []},
                           {'trust_domain': 'b.example', 'x509_authorities': []}], 'next_page_token': ''}
FEDERATION_LIST = {'federation_relationships': [{'trust_domain': 'other.example',
                                                 'bundle_endpoint_url': 'https://127.0.0.1:1',
                                                 'https_web': {}}], 'next_page_token': ''}


def test_server_info_from_recorded_shapes():
    entries = show(shown(1), shown(2))
    info = server_info(SERVER_BUNDLE, entries, AGENT_COUNT, BUNDLE_LIST, FEDERATION_LIST, '1.15.3', 'sqlite3')
    assert info == {'trust_domain': 'example.org', 'spire_version': '1.15.3', 'datastore': 'sqlite3',
                    'entry_count': 2, 'entries_sha256': entries_digest(entries), 'agent_count': 2,
                    'federated_trust_domains': ['b.example', 'other.example'], 'federation_relationship_count': 1,
                    'x509_authorities': [SERVER_CA_SHA256], 'jwt_key_ids': ['c6WQ5OEEY0SnsobN0WsboZOyiDMMyWh2']}
    empty = server_info(SERVER_BUNDLE, {'entries': []}, {}, {'bundles': []}, {}, None, 'postgres')
    assert (empty['entry_count'], empty['agent_count'], empty['federated_trust_domains'],
            empty['federation_relationship_count']) == (0, 0, [], 0)


def test_spire_cli_errors_name_the_command_not_stdin():
    run = Recorder({('bundle', 'show'): (1, b'', b'Error: connection error: desc = "transport: dial unix"\nUsage of x')})
    with pytest.raises(SpireBackupError, match=r'SPIRE server not reachable on socket_path /s \(spire-server bundle '
                                               r'show\): connection error'):
        SpireCLI('spire-server', '/s', run).json(['bundle', 'show'])
    run = Recorder({('entry', 'show'): (1, b'', b'Error: rpc error: code = PermissionDenied desc = no\nUsage')})
    with pytest.raises(SpireBackupError, match=r'spire-server entry show failed \(socket_path /s\): rpc error') as info:
        SpireCLI('spire-server', '/s', run).json(['entry', 'show'])
    assert info.value.grpc_code == 'PermissionDenied'
    run = Recorder({('bundle', 'show'): (0, b'not json', b'')})
    with pytest.raises(SpireBackupError, match='did not print JSON'):
        SpireCLI('spire-server', '/s', run).json(['bundle', 'show'])


# --- PostgreSQL connection strings ------------------------------------------------------------------------

@pytest.mark.parametrize('text, expected', [
    ("host=db port=5432 dbname=spire user=spire password=secret sslmode=require",
     {'host': 'db', 'port': '5432', 'dbname': 'spire', 'user': 'spire', 'password': 'secret', 'sslmode': 'require'}),
    ("host = db  password = 'a \\'quoted\\' pass\\\\word' ", {'host': 'db', 'password': "a 'quoted' pass\\word"}),
    ("dbname=spire pool_max_conns=5", {'dbname': 'spire', 'pool_max_conns': '5'}),
    ('postgresql://spire:p%40ss%3Aw@db.example:5433/spire?sslmode=verify-full&sslrootcert=/etc/ca.pem',
     {'user': 'spire', 'password': 'p@ss:w', 'host': 'db.example', 'port': '5433', 'dbname': 'spire',
      'sslmode': 'verify-full', 'sslrootcert': '/etc/ca.pem'}),
    ('postgres://[::1]:5432/spire', {'host': '::1', 'port': '5432', 'dbname': 'spire'}),
    ('postgres://u@/spire?host=%2Fvar%2Frun%2Fpostgresql', {'user': 'u', 'dbname': 'spire', 'host': '/var/run/postgresql'}),
])
def test_parse_connection_string(text, expected):
    assert parse_connection_string(text) == expected


@pytest.mark.parametrize('text, message', [
    ('', 'empty'), ("host=db password='open", 'unterminated'), ('host db', 'keyword = value'),
    ('host=db secretive=1', 'libpq does not know: secretive'),
])
def test_parse_connection_string_errors_never_quote_it(text, message):
    with pytest.raises(ValueError, match=message) as err:
        parse_connection_string(text)
    assert 'open' not in str(err.value) or message != 'unterminated'


def test_conninfo_without_password_and_passfile():
    params = parse_connection_string("host=db user=spire password=s3cret dbname='my db' pool_max_conns=4")
    conninfo = pg_conninfo(params, '/tmp/w/.pgpass')
    assert 's3cret' not in conninfo and 'pool_max_conns' not in conninfo
    assert conninfo == "dbname='my db' host='db' user='spire' passfile='/tmp/w/.pgpass'"
    assert parse_connection_string(conninfo)['dbname'] == 'my db'
    assert pgpass_line('a:b\\c') == '*:*:*:*:a\\:b\\\\c\n'


def test_pg_argv():
    assert pg_dump_argv('/usr/bin/pg_dump', "host='db'", '/w/datastore.pgdump') == [
        '/usr/bin/pg_dump', '--format=custom', '--no-owner', '--no-privileges', '--file=/w/datastore.pgdump',
        "--dbname=host='db'"]
    assert pg_restore_argv('pg_restore', "host='db'", '/w/d.pgdump') == [
        'pg_restore', '--clean', '--if-exists', '--no-owner', '--no-privileges', '--single-transaction',
        '--exit-on-error', "--dbname=host='db'", '/w/d.pgdump']


# --- SQLite and collecting parts ----------------------------------------------------------------------------

def make_db(path, rows=3):
    conn = sqlite3.connect(str(path))
    conn.execute('PRAGMA journal_mode=WAL')
    conn.execute('CREATE TABLE t (i INTEGER)')
    conn.executemany('INSERT INTO t VALUES (?)', [(i,) for i in range(rows)])
    conn.commit()
    return conn  # kept open: the WAL stays, as with a running server


def test_sqlite_copy_of_a_live_wal_database(tmp_path):
    live = make_db(tmp_path / 'db.sqlite3', rows=5)
    try:
        sqlite_copy(str(tmp_path / 'db.sqlite3'), str(tmp_path / 'copy.sqlite3'))
    finally:
        live.close()
    copy_conn = sqlite3.connect(str(tmp_path / 'copy.sqlite3'))
    assert copy_conn.execute('SELECT count(*) FROM t').fetchone() == (5,)
    assert copy_conn.execute('PRAGMA journal_mode').fetchone() == ('delete',)
    copy_conn.close()
    assert sqlite_check(str(tmp_path / 'copy.sqlite3')) is None
    (tmp_path / 'bad').write_bytes(b'not a database' * 100)
    assert sqlite_check(str(tmp_path / 'bad'))
    with pytest.raises(SpireBackupError, match='sqlite_path: .* does not exist'):
        sqlite_copy(str(tmp_path / 'missing'), str(tmp_path / 'x'))


def cli_answers(bundles):
    answers = {('entry', 'show'): show(shown(1), shown(2), shown(3)), ('agent', 'count'): AGENT_COUNT,
               ('bundle', 'list'): BUNDLE_LIST, ('federation', 'list'): FEDERATION_LIST,
               ('--version',): (0, b'', b'1.15.3\n')}
    answers[('bundle', 'show')] = lambda: next(bundles)
    return answers


def test_collect_parts_sqlite(tmp_path):
    data = tmp_path / 'data'
    data.mkdir()
    live = make_db(data / 'datastore.sqlite3')
    (data / 'keys.json').write_text('{"keys": 1}')
    (tmp_path / 'server.conf').write_text('server {}')
    work = tmp_path / 'work'
    work.mkdir()
    run = Recorder(cli_answers(iter([SERVER_BUNDLE] * 2)))
    try:
        parts, info = collect_parts(str(work), 'sqlite3', str(data / 'datastore.sqlite3'), None,
                                    str(data / 'keys.json'), str(tmp_path / 'server.conf'),
                                    SpireCLI('spire-server', '/s', run), run)
    finally:
        live.close()
    names = dict(parts)
    assert sorted(names) == ['bundle.json', 'datastore.sqlite3', 'keys.json', 'server.conf']
    assert open(names[PART_KEYS]).read() == '{"keys": 1}'
    assert json.load(open(names[PART_BUNDLE])) == SERVER_BUNDLE
    assert oct(os.stat(names[PART_KEYS]).st_mode & 0o777) == '0o600'
    assert info['entry_count'] == 3 and info['pair_attempts'] == 1 and info['datastore'] == 'sqlite3'
    assert info['keys_sha256'] == hashlib.sha256(b'{"keys": 1}').hexdigest()
    assert info['spire_version'] == '1.15.3'


def test_collect_parts_retries_when_the_ca_rotates(tmp_path):
    data = tmp_path / 'data'
    data.mkdir()
    make_db(data / 'datastore.sqlite3').close()
    keys = data / 'keys.json'
    keys.write_text('{"keys": 1}')
    rotated = copy.deepcopy(SERVER_BUNDLE)
    rotated['x509_authorities'].append({'asn1': base64.b64encode(b'\x30\x00').decode(), 'tainted': False})
    # First attempt: the bundle changes between before and after. Second attempt: keys.json changes.
    sequence = iter([SERVER_BUNDLE, rotated, rotated, rotated, rotated, rotated])
    state = {'n': 0}

    def bundle_show():
        state['n'] += 1
        if state['n'] == 3:
            keys.write_text('{"keys": 2}')
        return next(sequence)
    answers = cli_answers(None)
    answers[('bundle', 'show')] = bundle_show
    run = Recorder(answers)
    parts, info = collect_parts(str(tmp_path), 'sqlite3', str(data / 'datastore.sqlite3'), None, str(keys), None,
                                SpireCLI('spire-server', '/s', run), run)
    assert info['pair_attempts'] == 3
    assert open(dict(parts)[PART_KEYS]).read() == '{"keys": 2}'
    assert len(info['x509_authorities']) == 2

    state['n'] = 0
    always = {'n': 0}

    def keys_change():
        always['n'] += 1
        keys.write_text('{"keys": %d}' % always['n'])
        return SERVER_BUNDLE
    answers[('bundle', 'show')] = keys_change
    with pytest.raises(SpireBackupError, match='changed during each of 3 datastore copies'):
        collect_parts(str(tmp_path), 'sqlite3', str(data / 'datastore.sqlite3'), None, str(keys), None,
                      SpireCLI('spire-server', '/s', Recorder(answers)), Recorder(answers))


def test_collect_parts_postgres_keeps_the_password_out_of_argv(tmp_path, monkeypatch):
    # The keys live apart from the work directory, which a backup always creates empty (tempfile.mkdtemp).
    (tmp_path / 'keys.json').write_text('{}')
    workdir = tmp_path / 'work'
    workdir.mkdir()
    monkeypatch.setattr('shutil.which', lambda name: '/usr/bin/' + name)
    seen = {}

    def pg_dump():
        argv = run.calls[-1]
        passfile = [a for a in argv if a.startswith('--dbname=')][0].split("passfile='")[1].rstrip("'")
        seen['pgpass'] = open(passfile).read()
        seen['mode'] = os.stat(passfile).st_mode & 0o777
        out = [a for a in argv if a.startswith('--file=')][0][len('--file='):]
        open(out, 'wb').write(b'PGDMP')
        return 0, b'', b''
    answers = cli_answers(iter([SERVER_BUNDLE] * 4))
    answers[('pg_dump',)] = pg_dump
    run = Recorder(answers)
    parts, info = collect_parts(str(workdir), 'postgres', None, 'host=db user=spire password=Sup3rSecret',
                                str(tmp_path / 'keys.json'), None, SpireCLI('spire-server', '/s', run), run)
    dump_call = [c for c in run.calls if c[0] == '/usr/bin/pg_dump'][0]
    assert 'Sup3rSecret' not in ' '.join(dump_call)
    assert seen == {'pgpass': '*:*:*:*:Sup3rSecret\n', 'mode': 0o600}
    assert not os.path.exists(str(workdir / '.pgpass'))
    assert dict(parts)['datastore.pgdump'].endswith('datastore.pgdump') and info['datastore'] == 'postgres'

    answers[('pg_dump',)] = (1, b'', b'pg_dump: error: connection to server at "db" failed: FATAL:  password authentication failed')
    with pytest.raises(SpireBackupError, match='pg_dump of the datastore failed: .*password authentication failed'):
        collect_parts(str(workdir), 'postgres', None, 'host=db password=Sup3rSecret', str(tmp_path / 'keys.json'),
                      None, SpireCLI('spire-server', '/s', run), Recorder(answers))
    with pytest.raises(SpireBackupError, match='connection_string: .*libpq does not know: bogus'):
        collect_parts(str(workdir), 'postgres', None, 'bogus=Sup3rSecret', str(tmp_path / 'keys.json'),
                      None, SpireCLI('spire-server', '/s', run), Recorder(answers))


def test_collect_parts_needs_the_keys_file(tmp_path):
    with pytest.raises(SpireBackupError, match='keys_path: .* does not exist'):
        collect_parts(str(tmp_path), 'sqlite3', 'x', None, str(tmp_path / 'keys.json'), None, None, None)
    with pytest.raises(SpireBackupError, match='datastore must be one of'):
        collect_parts(str(tmp_path), 'mysql', 'x', None, 'k', None, None, None)


def test_replace_file(tmp_path):
    (tmp_path / 'src').write_bytes(b'new')
    target = tmp_path / 'target'
    target.write_bytes(b'old')
    replace_file(str(tmp_path / 'src'), str(target), os.getuid(), os.getgid())
    assert target.read_bytes() == b'new' and target.stat().st_mode & 0o777 == 0o600
    assert sorted(os.listdir(str(tmp_path))) == ['src', 'target']
    with pytest.raises(SpireBackupError, match='does not exist'):
        replace_file(str(tmp_path / 'src'), str(tmp_path / 'no' / 'target'), os.getuid(), os.getgid())


# --- restore plan and checks ---------------------------------------------------------------------------------

KEYS_SHA = 'a' * 64
INFO = {'trust_domain': 'example.org', 'datastore': 'sqlite3', 'entry_count': 3, 'entries_sha256': 'e' * 64,
        'x509_authorities': [SERVER_CA_SHA256], 'jwt_key_ids': ['k']}


def manifest(**info):
    return {'format': 1, 'system': 'spire-server', 'info': dict(INFO, **info),
            'parts': {PART_SQLITE: {'sha256': 'b' * 64, 'size': 10}, PART_KEYS: {'sha256': KEYS_SHA, 'size': 5}}}


def current(keys=KEYS_SHA, authorities=(SERVER_CA_SHA256,), td='example.org', datastore='sqlite3', answers=True):
    bundle = {'trust_domain': td, 'x509_authorities': list(authorities), 'jwt_key_ids': []} if answers else None
    return {'datastore': datastore, 'keys_sha256': keys, 'bundle': bundle}


def test_plan_already_running_this_backup():
    plan = restore_plan(manifest(), current())
    assert plan['restore'] is False and plan['errors'] == [] and 'already runs this backup' in plan['reason']
    forced = restore_plan(manifest(), current(), force=True)
    assert forced['restore'] is True and 'force' in forced['reason']
    assert forced['checks'] == ['healthcheck', 'trust_domain', 'x509_authorities', 'entry_count', 'entries_sha256']


@pytest.mark.parametrize('state, reason', [
    (current(keys=None), 'keys_path does not exist'),
    (current(keys='c' * 64), 'keys.json differs'),
    (current(answers=False), 'does not answer'),
    (current(authorities=['f' * 64]), 'X.509 authorities differ'),
])
def test_plan_restores(state, reason):
    plan = restore_plan(manifest(), state)
    assert plan['restore'] is True and reason in plan['reason'] and plan['errors'] == []


@pytest.mark.parametrize('the_manifest, state, error', [
    (manifest(), current(datastore='postgres'), 'holds a sqlite3 datastore, datastore is postgres'),
    (manifest(), current(keys=None, td='other.example'), 'trust domain example.org, the server runs trust domain other.example'),
    (dict(manifest(), parts={PART_SQLITE: {}}), current(keys=None), 'no keys.json part'),
    (dict(manifest(), parts={PART_KEYS: {}}), current(keys=None), 'no datastore.sqlite3 part'),
    (dict(manifest(), system='openbao'), current(keys=None), 'is a openbao backup'),
])
def test_plan_refuses_an_archive_that_does_not_fit(the_manifest, state, error):
    plan = restore_plan(the_manifest, state, force=True)
    assert plan['restore'] is False and any(error in e for e in plan['errors']), plan


def test_check_restored():
    bundle = {'trust_domain': 'example.org', 'x509_authorities': [SERVER_CA_SHA256, 'f' * 64], 'jwt_key_ids': []}
    assert check_restored(INFO, bundle, 3, 'e' * 64) == []
    assert check_restored(INFO, bundle, 3) == []
    problems = check_restored(INFO, {'trust_domain': 'x.org', 'x509_authorities': ['f' * 64]}, 2, 'd' * 64)
    assert len(problems) == 4
    assert 'trust domain is x.org, the backup has example.org' in problems[0]
    assert "lacks 1 of the backup's X.509 authorities (sha256 %s)" % SERVER_CA_SHA256 in problems[1]
    assert 'the server has 2 registration entries, the backup has 3' in problems[2]
    assert 'registration entries differ' in problems[3]


def test_state_view():
    assert state_view('k', {'x509_authorities': ['a']}, 3) == {
        'keys_sha256': 'k', 'x509_authorities': ['a'], 'entry_count': 3}
    assert state_view(None, None, None) == {'keys_sha256': None, 'x509_authorities': [], 'entry_count': None}


def test_save_spire_backup_writes_a_verified_archive(tmp_path):
    from ansible_collections.trustroot.ops.plugins.module_utils._backup.verify import verify_archive
    data = tmp_path / 'data'
    data.mkdir()
    journal_db(data / 'datastore.sqlite3', 'a')
    (data / 'keys.json').write_text(keys_json('a'))
    dest = tmp_path / 'dest'
    dest.mkdir()
    run = Recorder(cli_answers(iter([SERVER_BUNDLE] * 2)))
    params = {'datastore': 'sqlite3', 'sqlite_path': str(data / 'datastore.sqlite3'), 'connection_string': None,
              'keys_path': str(data / 'keys.json'), 'config_path': str(tmp_path / 'absent.conf'),
              'dest_dir': str(dest), 'age_recipients': [], 'keep_count': 1}
    saved = save_spire_backup(params, run=run, spire_cli=SpireCLI('spire-server', '/s', run))
    archive = os.path.join(str(dest), saved['sidecar']['archive'])
    manifest = verify_archive(archive)
    assert sorted(manifest['parts']) == ['bundle.json', 'datastore.sqlite3', 'keys.json']
    assert manifest['system'] == 'spire-server' and manifest['info'] == saved['info']
    assert saved['finish']['deleted'] == []
    assert sorted(os.listdir(str(dest))) == sorted([saved['sidecar']['archive'], saved['sidecar']['archive'] + '.json'])


# --- keys.json against the datastore's CA journal -------------------------------------------------------------
# RECORDED, PG_KEYS, PG_NOW and PG_COPY: keys.json (re-serialized compactly) and the
# ca_journals.data of throw-away spire-server v1.15.3 instances of the lab, with the clock time they were read at.

RECORDED = {
    'a': {  # ec-p256, one X.509 CA and one JWT key, slot A
        'now': 1796368057,
        'keys': {
            'JWT-Signer-A': (
                'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg/gp+S+F1XwB9HtV15kYpJkulHsP/eCfYZCr75FwioYSh'
                'RANCAATVjobu05OHWuqwpFifoGOlKydcQMxG+2yyhQ8VdZkmVuNGH3/dlsIcFfIcrWsB5B8S8Nv5qmZJbg/C5FF+rRqV'),
            'x509-CA-A': (
                'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg22/PO0+5XsR9zxX7yMRp3FdDH8eFIlMOG7Z1KQ+RySah'
                'RANCAAStSVZP9saJt31hsRozpWg0UGCyKdhH113Iwq/Du7mh0dnBI7VR5qeBBe5i47UbbDRtngN86uu1myjPhFr51T8n'),
        },
        'journal': (
            'CsIECgFBEPvMydgGGoQEMIICADCCAaWgAwIBAgIQRT0piuofw0FIhpf7J/iVfTAKBggqhkjOPQQDAjBPMQswCQYDVQQGEwJV'
            'UzEPMA0GA1UEChMGU1BJRkZFMS8wLQYDVQQFEyY5MjAzNDMwNDQwMjI2Nzg4NzQ2NzAwMDM3MjY2MjMxOTQ4NjMzMzAeFw0y'
            'NjEyMDQwNzA2MjVaFw0yNjEyMDUwNzA2MzVaME8xCzAJBgNVBAYTAlVTMQ8wDQYDVQQKEwZTUElGRkUxLzAtBgNVBAUTJjky'
            'MDM0MzA0NDAyMjY3ODg3NDY3MDAwMzcyNjYyMzE5NDg2MzMzMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAErUlWT/bGibd9'
            'YbEaM6VoNFBgsinYR9ddyMKvw7u5odHZwSO1UeangQXuYuO1G2w0bZ4DfOrrtZsoz4Ra+dU/J6NjMGEwDgYDVR0PAQH/BAQD'
            'AgEGMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFFn5wzEua8BPbm8K/mzJnoO8zKKsMB8GA1UdEQQYMBaGFHNwaWZmZTov'
            'L2V4YW1wbGUub3JnMAoGCCqGSM49BAMCA0kAMEYCIQDqUxTz5K+B8HVctcuVfxKibO7Seojw29stEw2pO2v0UwIhAKUXrshC'
            'LyUVzUhLssUcc7c61fJiSde+tOrC/BK5xTCAKAMyKDU5ZjljMzMxMmU2YmMwNGY2ZTZmMGFmZTZjYzk5ZTgzYmNjY2EyYWM4'
            '++/O2AYSsgEKAUEQ+8zJ2AYY++/O2AYiIHdNRnhWOWhScWRSblR5YjlBNHluVEx0Rkc5R2FpNzhFKlswWTATBgcqhkjOPQIB'
            'BggqhkjOPQMBBwNCAATVjobu05OHWuqwpFifoGOlKydcQMxG+2yyhQ8VdZkmVuNGH3/dlsIcFfIcrWsB5B8S8Nv5qmZJbg/C'
            '5FF+rRqVMAM6IHdNRnhWOWhScWRSblR5YjlBNHluVEx0Rkc5R2FpNzhF'),
    },
    'b': {  # another server of the same trust domain
        'now': 1796368057,
        'keys': {
            'JWT-Signer-A': (
                'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgDhfJAILpgEVMFRE8BHJQrqoj2/z7W0Z2S4QmdS5WOAuh'
                'RANCAATimTbv4xQWy36ijq395EtFR1u8K+3JMKMUaME72TXCr9yd1pFt9gVhLwC3BO1CGuycqmDLEfbJodmrMToKW8hj'),
            'x509-CA-A': (
                'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgLHNu7Um56ucM5R4Iw5F5J+inRVaTIwu40NHCmEspgkah'
                'RANCAAQzmvEh/QePQlUzDMcXX3qkHz4yZHxYFMZqwAeQtGmLJtgCPsW3G5mc7IxDTvGwA5ne04qrxIVswmrXEr9cqi3Q'),
        },
        'journal': (
            'CsMECgFBEPzMydgGGoUEMIICATCCAaigAwIBAgIRANpoqQTbCNBwUeEEWRLAK48wCgYIKoZIzj0EAwIwUDELMAkGA1UEBhMC'
            'VVMxDzANBgNVBAoTBlNQSUZGRTEwMC4GA1UEBRMnMjkwMzE1MTMwMDY2MzIyODIyNDM3MzUxMzcwMjEyMjQxMzIwODQ3MB4X'
            'DTI2MTIwNDA3MDYyNloXDTI2MTIwNTA3MDYzNlowUDELMAkGA1UEBhMCVVMxDzANBgNVBAoTBlNQSUZGRTEwMC4GA1UEBRMn'
            'MjkwMzE1MTMwMDY2MzIyODIyNDM3MzUxMzcwMjEyMjQxMzIwODQ3MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEM5rxIf0H'
            'j0JVMwzHF196pB8+MmR8WBTGasAHkLRpiybYAj7FtxuZnOyMQ07xsAOZ3tOKq8SFbMJq1xK/XKot0KNjMGEwDgYDVR0PAQH/'
            'BAQDAgEGMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFAHmVQBZgHSLbnWhcQHroMZa46y3MB8GA1UdEQQYMBaGFHNwaWZm'
            'ZTovL2V4YW1wbGUub3JnMAoGCCqGSM49BAMCA0cAMEQCIE8xm9kZx9rcv5FO4eaPFQ3Cw1RrJEbX4KnMtRJG9EldAiAFgo5n'
            'vIvUxxPqDPIGomLaMbs6017uR/gOewuOL+uFJygDMigwMWU2NTUwMDU5ODA3NDhiNmU3NWExNzEwMWViYTBjNjVhZTNhY2I3'
            'OPzvztgGErIBCgFBEPzMydgGGPzvztgGIiB3SzRFMWtNZWdDRzRuWkJtTHJXNWZCbXh6aXIzNzBRUipbMFkwEwYHKoZIzj0C'
            'AQYIKoZIzj0DAQcDQgAE4pk27+MUFst+oo6t/eRLRUdbvCvtyTCjFGjBO9k1wq/cndaRbfYFYS8AtwTtQhrsnKpgyxH2yaHZ'
            'qzE6ClvIYzADOiB3SzRFMWtNZWdDRzRuWkJtTHJXNWZCbXh6aXIzNzBRUg=='),
    },
    'rsa': {  # ca_key_type rsa-2048
        'now': 1796368057,
        'keys': {
            'JWT-Signer-A': (
                'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQClDU5+vbKWbYOzsPsWTxXL7UavYsdGP1qqiDjVpfkc'
                'nORypDnFOI1/1sUEfpXo8cHYng9w/U843zaLqmnomYqrije6n20xbV4LzM+r+L97tP1XMgcddOz+7bhLeDg3+K6fbGfT'
                'rYXxvcpuYIXqHLjr8s75pTGhlddS4mylCiyVQzwdjm7Vvgg1iCVHObES+2uq2t3XdkGsl3GHfn2u71F4Jg1BLjBtOIxZ'
                'jiQFFInRkSa9bnsanK9+Q1OqXxtng7SUofLu6ctwIbQh6fozNLd6IyRJnh82Cyy0teP6F0H65g0gb44pDS3Mg6MmtKDj'
                'QXBbJloQ/jRxnK7EZclldw+3AgMBAAECggEACOXrQJefLE9HeuVZ3ALeeh8sIOIdO9MdjbUIr11NIqGYtU+CPSOGiV5S'
                '7SJFQwje5PvnJDXGfW/sjmIHvKj5GgoPur7D5xbDgQpaeyXOw5oR0GTGOmx70bs6JM4ckHPr4h9jh5IYIbIUMELW5V9a'
                'tCm5G9Sv6iCxuj+yZha4KZcfUS32zIKv9XqgqRbN+fbKuJV7xqbcrRz51N4oTq6CTAkBc6xpJsQftJ721/VLlJrBr7qp'
                '79shdlyJfWXsZo1xpGmMR8mpiqSM+NaHFxvb4hH1s58tAF4pIouj+J1KWeEDpt7UYF14BdXt6XDfyHSWYq0ichZRGGck'
                '2YD9A0TYaQKBgQDCwDs9P0WrAEWMvQf0o9qkr85dvVgVPLuCKwwY3dAU6NNc+MAp3eMQuPuBzo+TZ33BGYml4c3j2Y8g'
                '1jsJuujunJRa1Ph2sBFTcPfdq3KILOpYHgJD1tunGj5C3L1SnLscsX2chBeWAdHYGUiA5HsuXhOpzSoViT5rZ85dGZcx'
                '+QKBgQDY9fU1Go8U0wPpPYnA60MrIuKL2rJSpbglR6cX0dLbbdaey8EujhUMFlaO0xApCEWKMgcUobtLNAKkqYG1jECG'
                '6xTsI2oalP5/MPbA++jaU+McQ8s/F7U3LcA6tBPcOiSAHEMEQ3sNqwjbBr9r3odaZje3h97CMjIkpEAZl9S7LwKBgASQ'
                'fNLyqK9ZUkf6JjWVoYo6lJud1HKq+boTSDVM/ZN/4XRMYDSa/rdlnn9sV/Ece9YKwy8gG7M7Zh9e5gNUXiE5ikCWvTwK'
                '5F0QSL7pRcXrR5LJIUR1xLAl7U+j3MwS4E/L2SXR8ruRT1nBPfHHaRutGMjiBhp7HPtnc267KtABAoGBAKGPNhNfPaDC'
                'Ka1rl8LC7feXOJ/wMM3+fYu1OaYxJxUjS6hgDfC++MlRcQ9V+Di14iKwcjlY3gF4L2eymdY5JGvTbncRQBefT4wjR/wZ'
                'GiJKSVpo2VaYLudx+C0+n3NlEH0djoIERgO9kxCWi8ClqqEUcPUIBkcR3ekPLnRgbZcdAoGAQfDMNgrMKDJFV/Fh1VUY'
                'grTvp9Py8D8z2+I4GWHfwvAF1LDnQTMm0eHp8O/X452BZujbdhDmaiaQQsVI0EwZJpg/yzA39O+z0KBpAdwwBgT5xPKN'
                'x5U33+oMs0TCI2lu5Vi3WQjjE7MYsw90pnLDMKTmGq+QPqUYkWYkeHwJqd4='),
            'x509-CA-A': (
                'MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCzCIivzhrLkGPl+2/+H9jr3l27xF0CBxTIDEkU52ox'
                'hnXAzp8jTfsBdc4lOI/FZj9lNS3DFj2k5lrlK/M/FyYFDjR8EHvkdz6HCQz8xizT+Ky6PD9ezZle94TsSjc/VsbMO688'
                'hBYzsfsqPRVVs8NsbOhdz3hk/jpFZqQK15koF/z4LTOgpdkJ+VriwyqCHp8FVzZ1p9tKoN3CAJVbSLhAkZeOx7odWKBn'
                'Xv/JP77vNxIUDR9cEIvP9MO/l3xPGxZMU+NjGvWUMys6VTji71ov3QVXq25T3IYCxWwjHZdILjgSSxfhXW29p1ZAsJkR'
                'a5RcDefyiZqch2e+PysuDw6zAgMBAAECggEAP2Jllix3kxtnKty2nTdkQrmi4N/X9+hO5LZox1RY5fjPRrhAYizxEWbG'
                'WaopSH93MVs+/OMqZu/BPYKuZ2dIKCEL1uK1IkFPa1p6dSGqbE+Nw4+h9ev/gT5LmqZ54dxUnKkC1P+Epr+8BwvCOmne'
                '5cu3BsN1wfe55Kk+qbIEAMvJS7VAcbrNXLiI7DmiEY14zCFrZvGC4DS5G6bsxP/egUsWrcwAii+9uUVOOPLqT42RzW7o'
                'uSK34ZfpRRDas/syGRCVfn6R3JxZDs4jmM3wAOmRBNQmRkz3z+tOnPJK22fgCEuzdlIOUaslx9qO9ks37F+3Io514Vi8'
                'PhZ7iEO0dQKBgQDnzHBBrQMdJgYng09kDuNPH2X1DEz1Joggnxw/GaebXySL9I7t69W/MlwKPOMQkf2SRZHfJ8yZOCS8'
                'f9zBgBL9JCQmpdnRvADHfBvTQ1F07hxP8bzFWfw8YLLNkT0d+KH2ZScsqa/yMY0Q4ddJmMkSklqft6zRHU8Bh9iqIBeT'
                'LwKBgQDFucZPirTSb8xSwnyJtEtpTR4r9AtmjLJaFhZig+NlMORoyQ5jL/224LHeu/EMaCNKcxRNjGZniA3Ifef61MrJ'
                'DtMOk+8evsHb9GJs47mUhyPv8SYEusCBRnZEKQR432tiLx2OJsNv9E6TKo7v4WIFP6I4FGekTOKZDk2NDlmrvQKBgQDH'
                'hGbTgPH/Mu11MUcynsX1IteFlzLeiG3/djS/83sa90fj13r3O1leGyCyBzqC1sZmEs++PumSsIqeXYhMXcr6bRNY2MSm'
                'DKa3DhJ9Q6JnfVSNU0viqtO7vJfq7SqoE4yFIwgXH2+8jf4YG+xNAt9/xs2OUHDGBe4tKRrLRJhGLQKBgQCwffIxYAul'
                '55tHqEjIFkJWHTs4Wp+uixpMZXjXuQhKdAj+K7GHAfiDvC+pNLOmsnIF65EM460o7v32n8RpVnYoX+4vDgectwOOFaeh'
                'sOgfVz3R2Lxp7lUVT9MTZlWSm0NcIdhM4fcDwNw+avep0dHQA4wGaNhWhTajDmxU46FRNQKBgETrCLPtHe/XVBpXZU8E'
                'VWsJhDjdBgd725e7xQVmnpWsb352x3wxBsED7UP95+iN4CrNOq8mD+2u/6ewTjvJevGEMd/Y5QaRVJBOuwhTrGZ0cn3o'
                'aGvhnBCQH5H/I+sWZ+lINm2aBFRJuWpwNkKdZnf+IfVUfLM33JAO5VeQ4PK9'),
        },
        'journal': (
            'Cs0HCgFBEPzMydgGGo8HMIIDizCCAnOgAwIBAgIQJlKJz0rDm/l+TnMi427sWTANBgkqhkiG9w0BAQsFADBPMQswCQYDVQQG'
            'EwJVUzEPMA0GA1UEChMGU1BJRkZFMS8wLQYDVQQFEyY1MDkzOTIyNzI5NTcxMDM2NzU5ODE5OTk3NzA0MDcwNTE1NDEzNzAe'
            'Fw0yNjEyMDQwNzA2MjZaFw0yNjEyMDUwNzA2MzZaME8xCzAJBgNVBAYTAlVTMQ8wDQYDVQQKEwZTUElGRkUxLzAtBgNVBAUT'
            'JjUwOTM5MjI3Mjk1NzEwMzY3NTk4MTk5OTc3MDQwNzA1MTU0MTM3MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'
            'swiIr84ay5Bj5ftv/h/Y695du8RdAgcUyAxJFOdqMYZ1wM6fI037AXXOJTiPxWY/ZTUtwxY9pOZa5SvzPxcmBQ40fBB75Hc+'
            'hwkM/MYs0/isujw/Xs2ZXveE7Eo3P1bGzDuvPIQWM7H7Kj0VVbPDbGzoXc94ZP46RWakCteZKBf8+C0zoKXZCfla4sMqgh6f'
            'BVc2dafbSqDdwgCVW0i4QJGXjse6HVigZ17/yT++7zcSFA0fXBCLz/TDv5d8TxsWTFPjYxr1lDMrOlU44u9aL90FV6tuU9yG'
            'AsVsIx2XSC44EksX4V1tvadWQLCZEWuUXA3n8omanIdnvj8rLg8OswIDAQABo2MwYTAOBgNVHQ8BAf8EBAMCAQYwDwYDVR0T'
            'AQH/BAUwAwEB/zAdBgNVHQ4EFgQUuEiiBUCjCwO+xXhP0evGUX6QwXgwHwYDVR0RBBgwFoYUc3BpZmZlOi8vZXhhbXBsZS5v'
            'cmcwDQYJKoZIhvcNAQELBQADggEBAGjcW8Wk01x9+g87YsmrZgtb1AvjYjP34js6QbdtJOkwJP66xK8zAkh3zSJpL+7EOPf6'
            '+i0Yxw18x05UpahPGamf7dhLOoyo/IyYixvDsIzk4iWw64FYo+prhCdUMXPVx/RSc0Tu4PaTxozDnMdbub1z/xVd8175s671'
            '7Nz9zWiWF2er7hLmyBAROIyHa9JN8WCwMbmvvL2/rBXWUeZvjzSnQQTE7i1MQjUPu1jBDycdnA3f1kr5zUQc/bWVDyiWwvFh'
            'grUrhTjmR1PHMW44SaTEdB8H98qd7p5g+nfbkbbRtqqHK3hSoLzb5ESN0kyfTUVE8gv5OeVATe3xIj00dNYoAzIoYjg0OGEy'
            'MDU0MGEzMGIwM2JlYzU3ODRmZDFlYmM2NTE3ZTkwYzE3ODj8787YBhL+AgoBQRD8zMnYBhj8787YBiIgalBobVp0YVcyWjlv'
            'MW5SYzN1WFZJeXhUN3YwOGp5WkwqpgIwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQClDU5+vbKWbYOzsPsWTxXL'
            '7UavYsdGP1qqiDjVpfkcnORypDnFOI1/1sUEfpXo8cHYng9w/U843zaLqmnomYqrije6n20xbV4LzM+r+L97tP1XMgcddOz+'
            '7bhLeDg3+K6fbGfTrYXxvcpuYIXqHLjr8s75pTGhlddS4mylCiyVQzwdjm7Vvgg1iCVHObES+2uq2t3XdkGsl3GHfn2u71F4'
            'Jg1BLjBtOIxZjiQFFInRkSa9bnsanK9+Q1OqXxtng7SUofLu6ctwIbQh6fozNLd6IyRJnh82Cyy0teP6F0H65g0gb44pDS3M'
            'g6MmtKDjQXBbJloQ/jRxnK7EZclldw+3AgMBAAEwAzogalBobVp0YVcyWjlvMW5SYzN1WFZJeXhUN3YwOGp5Wkw='),
    },
    'rotated': {  # ca_ttl 60s after two rotations: slot A reused, old entries
        'now': 1796368315,
        'keys': {
            'JWT-Signer-A': (
                'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgzMv3DEDnBohgEQ05RLnu03tCQaO30X0+YZP0GrdgOjmh'
                'RANCAATidV2kQUq05o8PnFhEKeImh6Zku4OyFigA3dG1O2eeRDlDUlAj18pVIL9sHWsvvYEH1X+g76JrMy4vZWuu//qY'),
            'JWT-Signer-B': (
                'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOiC0qWaBEfJ4Kur0Suwiv/HCR39PKpuBn44rPJjeukCh'
                'RANCAATTtFQ06Ztjn8djZ4oSnLZJto/WV25MlIINCqFY2tcJEI4YvenJUCv0Az5VIqgUCLxm+DYNEFA7+aD2/a+70O0i'),
            'x509-CA-A': (
                'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgPvwgWMt9TxrjcTm20Kv/Bzvg19u6uBiiL600aCEmjAqh'
                'RANCAAQn9h0HKic+2Ci/3chvBdrGUf/Zxmt3Nx6YtBe/9B3QIDphZ4/k3za02Lqsvl2cHk6gukmc1D9sccTvP0G55hur'),
            'x509-CA-B': (
                'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg0og+2Ige9lvBzpLaQX86lDIXsVcIocVhiiID910MJxih'
                'RANCAARyXUF05sinTjWtKxm9SIwciW8M4x/o4dpKH6FYSWIwfsrdNQeVxQoP9hJuMeJP4UwXYJOyrFiP82z3+zNV7uuK'),
        },
        'journal': (
            'CsIECgFBENrOydgGGoQEMIICADCCAaegAwIBAgIQeuqfpYPEt6nMAU0TnNFUTTAKBggqhkjOPQQDAjBQMQswCQYDVQQGEwJV'
            'UzEPMA0GA1UEChMGU1BJRkZFMTAwLgYDVQQFEycxNjMzODQwNTA5NjcyMTEwMzQ3MDEwNjA2MDgzNzE0Njc1NzIzMDEwHhcN'
            'MjYxMjA0MDcxMDA4WhcNMjYxMjA0MDcxMTE4WjBQMQswCQYDVQQGEwJVUzEPMA0GA1UEChMGU1BJRkZFMTAwLgYDVQQFEycx'
            'NjMzODQwNTA5NjcyMTEwMzQ3MDEwNjA2MDgzNzE0Njc1NzIzMDEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQZqsxZVs5t'
            'HbjDAXarbRYaaquIA0P/3hB3VK/FJQrsdXq2nD+StSs4BHk4ftTDEceNYGLEQ0lv+XT6LsszbrVRo2MwYTAOBgNVHQ8BAf8E'
            'BAMCAQYwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUJ18+3BrdSM4d1NUZzjmJNY06OlwwHwYDVR0RBBgwFoYUc3BpZmZl'
            'Oi8vZXhhbXBsZS5vcmcwCgYIKoZIzj0EAwIDRwAwRAIgTRD95mo+0fhPPoCMioXcVymttZTvm8K+kc+VaAj6iIECIHSW2OlC'
            'GUNRcvGWEExBIIQZyzTpdk1pF+UAflY++8eHKAQyKDI3NWYzZWRjMWFkZDQ4Y2UxZGQ0ZDUxOWNlMzk4OTM1OGQzYTNhNWM4'
            'ls/J2AYKwwQKAUIQ+M7J2AYahQQwggIBMIIBp6ADAgECAhBV8Y/IyQKoPVsYGGQCBXs9MAoGCCqGSM49BAMCMFAxCzAJBgNV'
            'BAYTAlVTMQ8wDQYDVQQKEwZTUElGRkUxMDAuBgNVBAUTJzExNDIzODYzOTQ3NzA0MDI2NzAxMjE1MTcxNDg0ODMwNjQ2MTUw'
            'MTAeFw0yNjEyMDQwNzEwMzhaFw0yNjEyMDQwNzExNDhaMFAxCzAJBgNVBAYTAlVTMQ8wDQYDVQQKEwZTUElGRkUxMDAuBgNV'
            'BAUTJzExNDIzODYzOTQ3NzA0MDI2NzAxMjE1MTcxNDg0ODMwNjQ2MTUwMTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABJGj'
            'cedOPhDOdMiecn1OQpa9nMXKD7GYfxbUrjVLKMa2ygsYLgKn/esZd1kaaHkeNWagjdzel9XQhizV88mrxWujYzBhMA4GA1Ud'
            'DwEB/wQEAwIBBjAPBgNVHRMBAf8EBTADAQH/MB0GA1UdDgQWBBSJkJcq/s0se603orNCAlQn25MgaTAfBgNVHREEGDAWhhRz'
            'cGlmZmU6Ly9leGFtcGxlLm9yZzAKBggqhkjOPQQDAgNIADBFAiEA8Lz1g/KPStmcmx7raKPBSGoWUqJw3/BsCa9sVhd06MIC'
            'IHKwTaZfCr7PP8eTJsIH4cTec7ohuOVg1Klrcpd+SgtAKAQyKDg5OTA5NzJhZmVjZDJjN2JhZDM3YTJiMzQyMDI1NDI3ZGI5'
            'MzIwNjk4tM/J2AYKxAQKAUEQls/J2AYahgQwggICMIIBqKADAgECAhEA5k8gU43uBlf+ZikfitpbFzAKBggqhkjOPQQDAjBQ'
            'MQswCQYDVQQGEwJVUzEPMA0GA1UEChMGU1BJRkZFMTAwLgYDVQQFEyczMDYxMzMyODYxMzkzMjQ4NDgzNzUxOTgwNzIyNjM3'
            'NjE2MTU2MzkwHhcNMjYxMjA0MDcxMTA4WhcNMjYxMjA0MDcxMjE4WjBQMQswCQYDVQQGEwJVUzEPMA0GA1UEChMGU1BJRkZF'
            'MTAwLgYDVQQFEyczMDYxMzMyODYxMzkzMjQ4NDgzNzUxOTgwNzIyNjM3NjE2MTU2MzkwWTATBgcqhkjOPQIBBggqhkjOPQMB'
            'BwNCAAQn9h0HKic+2Ci/3chvBdrGUf/Zxmt3Nx6YtBe/9B3QIDphZ4/k3za02Lqsvl2cHk6gukmc1D9sccTvP0G55huro2Mw'
            'YTAOBgNVHQ8BAf8EBAMCAQYwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUuDDi4ZdTb7KI3LhUoINhRaF0X8gwHwYDVR0R'
            'BBgwFoYUc3BpZmZlOi8vZXhhbXBsZS5vcmcwCgYIKoZIzj0EAwIDSAAwRQIhAMz39lfQrCIWG7ysZI3l9cw70DdlJk1QfkdA'
            'ekS01W2lAiAn8H7wi2PjBhiH0zHL39rBKDIgS7sc9btXpHvV1PTn9CgDMihiODMwZTJlMTk3NTM2ZmIyODhkY2I4NTRhMDgz'
            'NjE0NWExNzQ1ZmM4ONLPydgGCsEECgFCELTPydgGGoMEMIIB/zCCAaWgAwIBAgIQRul0I19nTRfNYcRYRJaZYTAKBggqhkjO'
            'PQQDAjBPMQswCQYDVQQGEwJVUzEPMA0GA1UEChMGU1BJRkZFMS8wLQYDVQQFEyY5NDI1ODEyMDQzNTAwODM5Njg4NzQ3Njgw'
            'MjI0NTI3Mjk2NzUyMTAeFw0yNjEyMDQwNzExMzhaFw0yNjEyMDQwNzEyNDhaME8xCzAJBgNVBAYTAlVTMQ8wDQYDVQQKEwZT'
            'UElGRkUxLzAtBgNVBAUTJjk0MjU4MTIwNDM1MDA4Mzk2ODg3NDc2ODAyMjQ1MjcyOTY3NTIxMFkwEwYHKoZIzj0CAQYIKoZI'
            'zj0DAQcDQgAEcl1BdObIp041rSsZvUiMHIlvDOMf6OHaSh+hWEliMH7K3TUHlcUKD/YSbjHiT+FMF2CTsqxYj/Ns9/szVe7r'
            'iqNjMGEwDgYDVR0PAQH/BAQDAgEGMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFJfcYaAJHzquyBTObPUnK0sMbFy+MB8G'
            'A1UdEQQYMBaGFHNwaWZmZTovL2V4YW1wbGUub3JnMAoGCCqGSM49BAMCA0gAMEUCICzVN7Mdp23fvm8lQPCk7ZINR3VjV4Y6'
            'ds76uyePUocJAiEAukMya/xvs6Mru2nLN+kIKde+96QWGnN1KkadIH6tj0UoAjIoOTdkYzYxYTAwOTFmM2FhZWM4MTRjZTZj'
            'ZjUyNzJiNGIwYzZjNWNiZTjwz8nYBhKyAQoBQRDazsnYBhiWz8nYBiIgZFU2RmpSNEs3RElIRzE2dXVrSjhpSW1pUlhIS05J'
            'OEEqWzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABL15/XF1+lFZvUcmPoSQ8i9n9/glHnDkJwUabs34pcNi9B5OzqgbpQ1H'
            '7UtJKE9cbDx7OBxew6NEef4uARdMke0wBDogZFU2RmpSNEs3RElIRzE2dXVrSjhpSW1pUlhIS05JOEESsgEKAUIQ+M7J2AYY'
            'tM/J2AYiIGRqQWZqVTBzUElORTRxdGpHWnNIRkduRzNvVDVTczgyKlswWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATTtFQ0'
            '6Ztjn8djZ4oSnLZJto/WV25MlIINCqFY2tcJEI4YvenJUCv0Az5VIqgUCLxm+DYNEFA7+aD2/a+70O0iMAQ6IGRqQWZqVTBz'
            'UElORTRxdGpHWnNIRkduRzNvVDVTczgyErIBCgFBEJbPydgGGNLPydgGIiBEMmMyZjZ0ejRPNnk2SElFcVNNRlJSWndGdmty'
            'S2VyNSpbMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE4nVdpEFKtOaPD5xYRCniJoemZLuDshYoAN3RtTtnnkQ5Q1JQI9fK'
            'VSC/bB1rL72BB9V/oO+iazMuL2Vrrv/6mDADOiBEMmMyZjZ0ejRPNnk2SElFcVNNRlJSWndGdmtyS2VyNQ=='),
    },
}
PG_KEYS = {'keys': {
    'JWT-Signer-A': (
        'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgDrkD5X9pt4k3GYJII41PqKeHin3sCLfGX///Vqwz5RKhRANCAASp'
        'h/6EmzjQ13bCqVIvQpQ6qEQ9Mh7qxyyVuUTRPVSCVUgCAfmow/hV+hQZwLPP/2Dh4flKBp4lmyeuFEIUSf3D'),
    'x509-CA-A': (
        'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgflKlXueN0A6ObXFp8IT72VoxZk3hFRpy4n2UDNJyrIKhRANCAATi'
        'kFuYwtqYYEMbcNLPzt9MXr5Lp6ENLW0kwL0NWmpXynaoH1ktYuJ88Cf2w6K8OnonHkkvhu5oIvdSZP5baG1A'),
}}
PG_NOW = 1796368225
PG_COPY = (
    'COPY public.ca_journals (id, created_at, updated_at, data, active_x509_authority_id, active_'
    'jwt_authority_id) FROM stdin;\n1\t2026-12-04 07:10:19.60643+00\t2026-12-04 07:10:19.611005+00\t\\'
    '\\x0ac4040a014110dbcec9d8061a860430820202308201a8a003020102021100e1718d752b26574d2d833fdd87b0'
    'b681300a06082a8648ce3d0403023050310b3009060355040613025553310f300d060355040a1306535049464645'
    '3130302e060355040513273239393636353839373639393432333834323835323836333834323032383237393038'
    '34363733301e170d3236313230343037313030395a170d3236313230353037313031395a3050310b300906035504'
    '0613025553310f300d060355040a13065350494646453130302e0603550405132732393936363538393736393934'
    '32333834323835323836333834323032383237393038343637333059301306072a8648ce3d020106082a8648ce3d'
    '03010703420004e2905b98c2da9860431b70d2cfcedf4c5ebe4ba7a10d2d6d24c0bd0d5a6a57ca76a81f592d62e2'
    '7cf027f6c3a2bc3a7a271e492f86ee6822f75264fe5b686d40a3633061300e0603551d0f0101ff04040302010630'
    '0f0603551d130101ff040530030101ff301d0603551d0e041604141b1eab8f531bf4bcb4e9038658c56de03e5a3b'
    '3c301f0603551d110418301686147370696666653a2f2f6578616d706c652e6f7267300a06082a8648ce3d040302'
    '0348003045022052e3bc1189f623188653d21b86b6fdc09c6c6a28b93dfa9c0d1c1c47f3a77d08022100ee6860fd'
    '6b3cdf2d5cd6421e90035c245a1228c186a563abe01227dcf9041d31280332283162316561623866353331626634'
    '626362346539303338363538633536646530336535613362336338dbf1ced80612b2010a014110dbcec9d80618db'
    'f1ced80622206a736f727667624c797078354f7530635a4b434b6e776233337630384c5952582a5b305930130607'
    '2a8648ce3d020106082a8648ce3d03010703420004a987fe849b38d0d776c2a9522f42943aa8443d321eeac72c95'
    'b944d13d548255480201f9a8c3f855fa1419c0b3cfff60e1e1f94a069e259b27ae14421449fdc330033a206a736f'
    '727667624c797078354f7530635a4b434b6e776233337630384c595258\t1b1eab8f531bf4bcb4e9038658c56de03'
    'e5a3b3c\t\n\\.\n')

A_X509 = '59f9c3312e6bc04f6e6f0afe6cc99e83bccca2ac'     # server a's active X.509 authority (its SKID)
A_JWT = 'wMFxV9hRqdRnTyb9A4ynTLtFG9Gai78E'              # server a's active JWT key ID


def keys_json(record, **changes):
    keys = dict(RECORDED[record]['keys'])
    for key_id, value in changes.items():
        if value is None:
            keys.pop(key_id.replace('_', '-'), None)
        else:
            keys[key_id.replace('_', '-')] = value
    return json.dumps({'keys': keys})


def journal_rows(*records):
    return [{'id': index + 1, 'data': base64.b64decode(RECORDED[r]['journal'])} for index, r in enumerate(records)]


@pytest.mark.parametrize('record', sorted(['a', 'b', 'rsa', 'rotated']))
def test_a_recorded_pair_matches(record):
    now = RECORDED[record]['now']
    assert pair_problems(keys_json(record), journal_rows(record), now=now) == []
    assert pair_problems(keys_json(record).encode(), journal_rows(record), now=now) == []


def test_the_recorded_journals():
    journal = parse_ca_journal(base64.b64decode(RECORDED['a']['journal']))
    [x509] = journal['x509_cas']
    [jwt] = journal['jwt_keys']
    assert journal['wit_keys'] == []
    assert (x509['slot_id'], x509['status'], x509['authority_id']) == ('A', 'active', A_X509)
    assert (jwt['slot_id'], jwt['status'], jwt['authority_id'], jwt['kid']) == ('A', 'active', A_JWT, A_JWT)
    assert x509['not_after'] - x509['issued_at'] == 86400     # ca_ttl 24h
    assert certificate_public_key(x509['certificate'])[:2] == ('ec', bytes.fromhex('2a8648ce3d030107'))
    assert private_key_public_key(base64.b64decode(RECORDED['a']['keys']['x509-CA-A'])) == \
        certificate_public_key(x509['certificate'])
    assert spki_public_key(jwt['public_key']) == \
        private_key_public_key(base64.b64decode(RECORDED['a']['keys']['JWT-Signer-A']))
    rsa = parse_ca_journal(base64.b64decode(RECORDED['rsa']['journal']))
    kind, modulus, exponent = certificate_public_key(rsa['x509_cas'][0]['certificate'])
    assert kind == 'rsa' and modulus.bit_length() == 2048 and exponent == 65537


def test_only_the_slots_spire_loads_count():
    record = RECORDED['rotated']
    journal = parse_ca_journal(base64.b64decode(record['journal']))
    assert [(e['slot_id'], e['status']) for e in journal['x509_cas']] == [
        ('A', 'old'), ('B', 'old'), ('A', 'active'), ('B', 'prepared')]
    assert [(e['slot_id'], e['status']) for e in journal['jwt_keys']] == [('A', 'old'), ('B', 'old'), ('A', 'active')]
    # The newest entry of each slot; the older entries of slot A and B had keys that were replaced since.
    slots = journal_slots(journal, record['now'])
    assert [(label, key_id, entry['status']) for label, key_id, entry, _field in slots] == [
        ('X.509 CA', 'x509-CA-A', 'active'), ('X.509 CA', 'x509-CA-B', 'prepared'), ('JWT key', 'JWT-Signer-A', 'active')]
    # The older entries of slot A would not match: their keys were replaced when the slot was prepared again.
    older_a = journal['x509_cas'][0]
    assert certificate_public_key(older_a['certificate']) != \
        private_key_public_key(base64.b64decode(record['keys']['x509-CA-A']))
    # Expired entries do not count (SPIRE drops them at start): nothing left to match.
    latest = max(e['not_after'] for e in journal['x509_cas'] + journal['jwt_keys'])
    assert journal_slots(journal, latest + 1) == []
    assert pair_problems(keys_json('b'), journal_rows('rotated'), now=latest + 1) == []
    # A prepared slot counts too.
    problems = pair_problems(keys_json('rotated', x509_CA_B=None), journal_rows('rotated'), now=record['now'])
    assert len(problems) == 1
    assert problems[0].startswith("keys.json has no x509-CA-B for the datastore's CA journal prepared X.509 CA slot B")


def test_a_keys_json_of_another_server_names_both_sides():
    problems = pair_problems(keys_json('b'), journal_rows('a'), now=RECORDED['a']['now'])
    assert problems == [
        "keys.json x509-CA-A does not hold the key of the datastore's CA journal active X.509 CA slot A "
        "(authority %s)" % A_X509,
        "keys.json JWT-Signer-A does not hold the key of the datastore's CA journal active JWT key slot A "
        "(authority %s)" % A_JWT]
    # One key swapped is enough; an RSA keys.json against an EC journal too.
    swapped = keys_json('a', JWT_Signer_A=RECORDED['b']['keys']['JWT-Signer-A'])
    assert pair_problems(swapped, journal_rows('a'), now=RECORDED['a']['now']) == problems[1:]
    assert len(pair_problems(keys_json('rsa'), journal_rows('a'), now=RECORDED['a']['now'])) == 2


def test_a_missing_key_id():
    problems = pair_problems(keys_json('a', x509_CA_A=None), journal_rows('a'), now=RECORDED['a']['now'])
    assert problems == ["keys.json has no x509-CA-A for the datastore's CA journal active X.509 CA slot A "
                        "(authority %s)" % A_X509]
    assert pair_problems(json.dumps({'keys': {}}), journal_rows('a'), now=RECORDED['a']['now'])[1].startswith(
        'keys.json has no JWT-Signer-A')


@pytest.mark.parametrize('value, message', [
    (base64.b64encode(b'\x30\x03\x02\x01\x00').decode(), 'keys.json keys.x509-CA-A is not a private key SPIRE can use: '
     'a DER SEQUENCE of 1 elements, expected at least 3'),
    (base64.b64encode(b'garbage').decode(), 'keys.json keys.x509-CA-A is not a private key SPIRE can use: '),
    # the recorded key cut short
    (RECORDED['a']['keys']['x509-CA-A'][:40], 'keys.json keys.x509-CA-A is not a private key SPIRE can use: truncated DER'),
    ('not base64!', 'keys.json keys.x509-CA-A is not base64'),
    (7, 'keys.json keys.x509-CA-A is not a base64 string'),
])
def test_a_corrupted_key(value, message):
    problems = pair_problems(keys_json('a', x509_CA_A=value), journal_rows('a'), now=RECORDED['a']['now'])
    assert problems[0].startswith(message), problems
    assert len(problems) == 1     # JWT-Signer-A still matches


def test_an_ec_key_without_its_public_point():
    # PKCS#8 around an ECPrivateKey with only version and privateKey (Go always writes the public key).
    ec = b'\x30\x25\x02\x01\x01\x04\x20' + b'\x01' * 32
    pkcs8 = b'\x30\x41\x02\x01\x00\x30\x13\x06\x07' + bytes.fromhex('2a8648ce3d0201') + b'\x06\x08' + \
        bytes.fromhex('2a8648ce3d030107') + b'\x04\x27' + ec
    with pytest.raises(ValueError, match='an EC private key without its public key'):
        private_key_public_key(pkcs8)
    problems = pair_problems(keys_json('a', x509_CA_A=base64.b64encode(pkcs8).decode()), journal_rows('a'),
                             now=RECORDED['a']['now'])
    assert problems == ['keys.json keys.x509-CA-A is not a private key SPIRE can use: an EC private key without '
                        'its public key']


@pytest.mark.parametrize('text, message', [
    ('{"keys": ', 'keys.json is not JSON: '),
    ('[]', 'keys.json: expected an object {"keys": {"<key id>": "<base64 PKCS#8 key>"}}'),
    ('{"keys": []}', 'keys.json: expected an object {"keys"'),
    ('{"Keys": {}}', 'keys.json: expected an object {"keys"'),
])
def test_a_wrong_shape_keys_json(text, message):
    assert pair_problems(text, journal_rows('a'))[0].startswith(message)
    with pytest.raises(ValueError, match=message.replace('{', '\\{').replace('[', '\\[')):
        parse_keys_json(text)


def pb(number, value):
    """One protobuf field: an int (varint) or bytes/str (length-delimited)."""
    def varint(n):
        out = b''
        while True:
            out += bytes([(n & 0x7f) | (0x80 if n > 0x7f else 0)])
            n >>= 7
            if not n:
                return out
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    value = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(value)) + value


def x509_entry(certificate, slot='A', status=3, not_after=2 ** 40, authority='aa'):
    return pb(1, pb(1, slot) + pb(3, certificate) + pb(5, status) + pb(6, authority) + pb(7, not_after))


@pytest.mark.parametrize('data, message', [
    (b'\x0a\x05abc', "the datastore's CA journal (ca_journals.data) cannot be read: not a journal.Entries message: "
                     "truncated protobuf message"),
    (b'\x0a\x01\x08', "the datastore's CA journal (ca_journals.data) cannot be read: x509CAs[0]: truncated protobuf varint"),
    (pb(1, pb(1, 5)), "the datastore's CA journal (ca_journals.data) cannot be read: x509CAs[0].slot_id is not a string "
                      "or bytes field"),
    (pb(2, pb(3, 'soon')), "the datastore's CA journal (ca_journals.data) cannot be read: jwtKeys[0].not_after is not "
                           "a varint"),
    (pb(1, 3), "the datastore's CA journal (ca_journals.data) cannot be read: x509CAs[0] is not a message"),
    (b'\x0b', "the datastore's CA journal (ca_journals.data) cannot be read: not a journal.Entries message: protobuf "
              "wire type 3"),
    (x509_entry(b'\x30\x03\x02\x01\x00'), "the datastore's CA journal active X.509 CA slot A (authority aa): its "
                                          "certificate cannot be read: a DER SEQUENCE of 1 elements"),
    (x509_entry(b''), "the datastore's CA journal active X.509 CA slot A (authority aa): its certificate cannot be "
                      "read: truncated DER"),
    (pb(2, pb(1, 'B') + pb(3, 2 ** 40) + pb(5, b'\x30\x00') + pb(6, 2) + pb(7, 'k')),
     "the datastore's CA journal prepared JWT key slot B (authority k): its public_key cannot be read: a DER SEQUENCE "
     "of 0 elements, expected at least 2"),
])
def test_a_wrong_shape_journal(data, message):
    [problem] = pair_problems(keys_json('a'), [{'id': 1, 'data': data}], now=RECORDED['a']['now'])
    assert problem.startswith(message), problem


def test_journal_entries_that_do_not_count_are_not_read():
    # An old entry, an expired one and one without a slot ID: SPIRE skips them, so does the check.
    data = x509_entry(b'junk', status=4) + x509_entry(b'junk', slot='B', not_after=5) + x509_entry(b'junk', slot='')
    assert pair_problems(keys_json('a'), [{'id': 1, 'data': data}], now=1000) == []
    # Unknown fields (a newer SPIRE) are skipped.
    assert parse_ca_journal(pb(9, 'x') + pb(1, pb(1, 'A') + pb(15, 7)))['x509_cas'][0]['slot_id'] == 'A'


def test_several_journals_and_none():
    now = RECORDED['a']['now']
    # Servers sharing a datastore: one journal each; keys.json must match one of them.
    assert pair_problems(keys_json('b'), journal_rows('a', 'b'), now=now) == []
    [problem] = pair_problems(keys_json('rsa'), journal_rows('a', 'b'), now=now)
    assert problem.startswith("keys.json matches none of the datastore's 2 CA journals: keys.json x509-CA-A does not "
                              "hold the key of the datastore's CA journal 1 active X.509 CA slot A (authority %s)" % A_X509)
    assert "the datastore's CA journal 2 active JWT key slot A" in problem
    assert pair_problems(keys_json('a'), [], now=now) == [
        "the datastore holds no CA journal (table ca_journals is empty), so no CA of it can be matched to keys.json"]


def journal_db(path, *records):
    """A SQLite file with SPIRE's ca_journals table holding the recorded journals."""
    conn = sqlite3.connect(str(path))
    conn.execute('CREATE TABLE ca_journals (id integer primary key autoincrement, created_at datetime, '
                 'updated_at datetime, data blob, active_x509_authority_id varchar(255), '
                 'active_jwt_authority_id varchar(255))')
    for row in journal_rows(*records):
        conn.execute('INSERT INTO ca_journals (data, active_x509_authority_id) VALUES (?, ?)', (row['data'], 'x'))
    conn.commit()
    conn.close()
    return str(path)


def test_read_ca_journals_from_sqlite(tmp_path):
    path = journal_db(tmp_path / 'datastore.sqlite3', 'a', 'b')
    rows = read_ca_journals('sqlite3', path, None)
    assert [(r['id'], r['data']) for r in rows] == [(1, journal_rows('a')[0]['data']), (2, journal_rows('b')[0]['data'])]
    (tmp_path / 'keys.json').write_text(keys_json('b'))
    assert parts_pair_problems('sqlite3', path, str(tmp_path / 'keys.json'), None, now=RECORDED['b']['now']) == []
    make_db(tmp_path / 'other.sqlite3').close()
    assert read_ca_journals('sqlite3', str(tmp_path / 'other.sqlite3'), None) == []
    (tmp_path / 'bad').write_bytes(b'not a database' * 100)
    with pytest.raises(SpireBackupError, match='datastore.sqlite3: reading the CA journal failed: '):
        read_ca_journals('sqlite3', str(tmp_path / 'bad'), None)


def test_read_ca_journals_from_a_pg_dump(tmp_path, monkeypatch):
    monkeypatch.setattr('shutil.which', lambda name: '/usr/bin/' + name)
    script = '--\n-- PostgreSQL database dump\n--\nSET client_encoding = \'UTF8\';\n\n' + PG_COPY + '\n\n'
    run = Recorder({('pg_restore',): (0, script.encode(), b'')})
    [row] = read_ca_journals('postgres', '/w/datastore.pgdump', run)
    assert run.calls == [['/usr/bin/pg_restore', '--data-only', '--table=ca_journals', '--file=-', '/w/datastore.pgdump']]
    assert row['id'] == '1' and row['active_x509_authority_id'] == '1b1eab8f531bf4bcb4e9038658c56de03e5a3b3c'
    assert row['active_jwt_authority_id'] == ''
    assert pair_problems(json.dumps(PG_KEYS), [row], now=PG_NOW) == []
    assert len(pair_problems(keys_json('a'), [row], now=PG_NOW)) == 2
    assert journals_from_copy_text('COPY public.ca_journals (id, data) FROM stdin;\n1\t\\\\x00\n\\.\n') == [
        {'id': '1', 'data': b'\x00'}]
    # No ca_journals data in the dump: no journal.
    assert read_ca_journals('postgres', '/w/d', Recorder({('pg_restore',): (0, b'SET x = 1;\n', b'')})) == []
    with pytest.raises(SpireBackupError, match='pg_restore --data-only --table=ca_journals of datastore.pgdump failed: '
                                               'pg_restore: error: input file does not appear to be a valid archive'):
        read_ca_journals('postgres', '/w/d', Recorder({('pg_restore',): (
            1, b'', b'pg_restore: error: input file does not appear to be a valid archive')}))
    escaped = PG_COPY.replace('\\\\x', '\\\\')
    with pytest.raises(SpireBackupError, match='datastore.pgdump: ca_journals.data of row 1 is not bytea in hex output'):
        read_ca_journals('postgres', '/w/d', Recorder({('pg_restore',): (0, escaped.encode(), b'')}))


@pytest.mark.parametrize('field, value', [
    ('\\N', None), ('plain', 'plain'), ('a\\tb\\nc\\\\d', 'a\tb\nc\\d'), ('\\101\\x', 'Ax'), ('\\\\x0a', '\\x0a')])
def test_copy_text_fields(field, value):
    from ansible_collections.trustroot.ops.plugins.module_utils._spire_backup import _copy_text_field
    assert _copy_text_field(field) == value


def test_save_spire_backup_refuses_a_keys_file_of_another_server(tmp_path, monkeypatch):
    # The recorded CAs have expired since they were recorded; an expired slot is not compared, so the clock is
    # set to the moment of the recording.
    monkeypatch.setattr(_spire_backup.time, 'time', lambda: RECORDED['a']['now'])
    data = tmp_path / 'data'
    data.mkdir()
    journal_db(data / 'datastore.sqlite3', 'a')
    (data / 'keys.json').write_text(keys_json('b'))
    dest = tmp_path / 'dest'
    dest.mkdir()
    run = Recorder(cli_answers(iter([SERVER_BUNDLE] * 2)))
    params = {'datastore': 'sqlite3', 'sqlite_path': str(data / 'datastore.sqlite3'), 'connection_string': None,
              'keys_path': str(data / 'keys.json'), 'config_path': None, 'dest_dir': str(dest), 'age_recipients': []}
    with pytest.raises(SpireBackupError) as err:
        save_spire_backup(params, run=run, spire_cli=SpireCLI('spire-server', '/s', run))
    assert str(err.value).startswith('keys_path %s and sqlite_path %s are not a pair (SPIRE would start from them with '
                                     'a new CA); no archive was written: keys.json x509-CA-A does not hold the key of '
                                     'the datastore\'s CA journal active X.509 CA slot A' % (
                                         data / 'keys.json', data / 'datastore.sqlite3'))
    assert os.listdir(str(dest)) == []


def test_connection_string_problem_names_the_option_and_never_quotes_it():
    from ansible_collections.trustroot.ops.plugins.module_utils._spire_backup import connection_string_problem
    assert connection_string_problem(None, 'state=copied') == 'connection_string is required with state=copied'
    assert connection_string_problem('', 'datastore=postgres') == 'connection_string is required with datastore=postgres'
    assert connection_string_problem('host=db user=spire password=s3cret dbname=spire', 'x') is None
    problem = connection_string_problem('host=db password=s3cret bogus=1', 'x')
    assert problem == 'connection_string has parameters libpq does not know: bogus' and 's3cret' not in problem

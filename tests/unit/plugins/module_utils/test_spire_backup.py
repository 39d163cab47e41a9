"""Unit tests for plugins/module_utils/_spire_backup.py: canonical entries and their digest, bundle summary,
argv building, info parsing from recorded SPIRE v1.15.3 JSON, restore plans and post-restore checks."""

import base64
import copy
import hashlib
import json
import os
import sqlite3

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._spire_backup import (
    PART_BUNDLE, PART_KEYS, PART_SQLITE, SpireBackupError, SpireCLI, bundle_summary, canonical_entries,
    canonical_entry, check_restored, cli_argv, collect_parts, entries_digest, parse_connection_string,
    parse_version, pg_conninfo, pg_dump_argv, pg_restore_argv, pgpass_line, replace_file, restore_plan,
    save_spire_backup, server_info, sqlite_check, sqlite_copy, state_view)

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
    with pytest.raises(SpireBackupError, match=r'spire-server bundle show failed \(socket_path /s\): connection error'):
        SpireCLI('spire-server', '/s', run).json(['bundle', 'show'])
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
    (tmp_path / 'keys.json').write_text('{}')
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
    parts, info = collect_parts(str(tmp_path), 'postgres', None, 'host=db user=spire password=Sup3rSecret',
                                str(tmp_path / 'keys.json'), None, SpireCLI('spire-server', '/s', run), run)
    dump_call = [c for c in run.calls if c[0] == '/usr/bin/pg_dump'][0]
    assert 'Sup3rSecret' not in ' '.join(dump_call)
    assert seen == {'pgpass': '*:*:*:*:Sup3rSecret\n', 'mode': 0o600}
    assert not os.path.exists(str(tmp_path / '.pgpass'))
    assert dict(parts)['datastore.pgdump'].endswith('datastore.pgdump') and info['datastore'] == 'postgres'

    answers[('pg_dump',)] = (1, b'', b'pg_dump: error: connection to server at "db" failed: FATAL:  password authentication failed')
    with pytest.raises(SpireBackupError, match='pg_dump of the datastore failed: .*password authentication failed'):
        collect_parts(str(tmp_path), 'postgres', None, 'host=db password=Sup3rSecret', str(tmp_path / 'keys.json'),
                      None, SpireCLI('spire-server', '/s', run), Recorder(answers))
    with pytest.raises(SpireBackupError, match='connection_string: .*libpq does not know: bogus'):
        collect_parts(str(tmp_path), 'postgres', None, 'bogus=Sup3rSecret', str(tmp_path / 'keys.json'),
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
    from ansible_collections.trustroot.ops.plugins.module_utils._backup import verify_archive
    data = tmp_path / 'data'
    data.mkdir()
    make_db(data / 'datastore.sqlite3').close()
    (data / 'keys.json').write_text('{"keys": 1}')
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

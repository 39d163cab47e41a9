"""Unit tests for plugins/module_utils/_spire_datastore.py: server.conf parsing, COPY text fields (booleans,
timestamps as go-sqlite3 writes them, bytea, escapes), table order, column plans, the target decision, summaries
and the copy script from a real SQLite file."""

import base64
import datetime
import hashlib
import io
import os
import sqlite3
import time

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._spire_datastore import (
    DatastoreMigrationError, SqliteSource, column_plan, copy_field, copy_line, count_problems, create_schema,
    fingerprint, kept_name, parse_datastore_config, parse_trust_domain, pg_timestamp, psql_argv, redact, server_summary, summary_problems, table_order,
    target_decision, throwaway_config, write_copy_script)

CONF = '''server {
  bind_address = "0.0.0.0"
  trust_domain = "example.org"
  data_dir = "/var/lib/spire/server"
}

plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "/var/lib/spire/server/datastore.sqlite3"
    }
  }

  KeyManager "disk" {
    plugin_data {
      keys_path = "/var/lib/spire/server/keys.json"
    }
  }
}
'''


def test_parse_datastore_config_reads_the_sql_plugin():
    assert parse_datastore_config(CONF) == {'database_type': 'sqlite3',
                                            'connection_string': '/var/lib/spire/server/datastore.sqlite3'}
    assert parse_trust_domain(CONF) == 'example.org'


def test_parse_datastore_config_postgres_with_env_reference():
    conf = CONF.replace('"sqlite3"', '"postgres"').replace(
        '"/var/lib/spire/server/datastore.sqlite3"', '"${SPIRE_SERVER_DATASTORE_CONNECTION_STRING}"')
    assert parse_datastore_config(conf)['database_type'] == 'postgres'


@pytest.mark.parametrize('text', ['', 'server {}\n', CONF.replace('database_type', 'kind')])
def test_parse_datastore_config_refuses_what_it_cannot_read(text):
    with pytest.raises(ValueError):
        parse_datastore_config(text)


@pytest.mark.parametrize('value, with_tz, expected', [
    ('2026-12-01 03:11:23.123456789+00:00', True, '2026-12-01 03:11:23.123456+00:00'),
    ('2026-12-01 03:11:23+02:00', True, '2026-12-01 03:11:23+02:00'),
    ('2026-12-01T03:11:23.5Z', True, '2026-12-01 03:11:23.500000+00:00'),
    ('2026-12-01 03:11:23', True, '2026-12-01 03:11:23+00:00'),
    ('2026-12-01 05:11:23.000001+02:00', False, '2026-12-01 03:11:23.000001'),
    (0, True, '1970-01-01 00:00:00.000000+00:00'),
])
def test_pg_timestamp(value, with_tz, expected):
    assert pg_timestamp(value, with_time_zone=with_tz) == expected


def test_pg_timestamp_refuses_other_text():
    with pytest.raises(ValueError):
        pg_timestamp('yesterday')


@pytest.mark.parametrize('value, kind, expected', [
    (None, 'text', '\\N'),
    (None, 'boolean', '\\N'),
    (1, 'boolean', 't'),
    (0, 'boolean', 'f'),
    ('true', 'boolean', 't'),
    (b'\x00\x01\xff', 'bytea', '\\\\x0001ff'),
    (b'', 'bytea', '\\\\x'),
    ('a\tb\nc\\d\re', 'text', 'a\\tb\\nc\\\\d\\re'),
    ('42', 'bigint', '42'),
    (7, 'integer', '7'),
    ('spiffe://example.org/x', 'character varying', 'spiffe://example.org/x'),
    ('2026-12-01 03:11:23.1+00:00', 'timestamp with time zone', '2026-12-01 03:11:23.100000+00:00'),
])
def test_copy_field(value, kind, expected):
    assert copy_field(value, kind) == expected


def test_copy_line_is_tab_separated_and_newline_ended():
    assert copy_line((1, None, 0), ['integer', 'text', 'boolean']) == '1\t\\N\tf\n'


def test_table_order_puts_referenced_tables_first():
    assert table_order(['selectors', 'registered_entries', 'bundles', 'federated_registration_entries'],
                       [('selectors', 'registered_entries'), ('federated_registration_entries', 'bundles'),
                        ('federated_registration_entries', 'registered_entries')]) == [
        'bundles', 'registered_entries', 'federated_registration_entries', 'selectors']
    assert table_order(['b', 'a'], []) == ['a', 'b']
    with pytest.raises(ValueError, match='cycle'):
        table_order(['a', 'b'], [('a', 'b'), ('b', 'a')])


def test_column_plan_keeps_sqlite_order_and_names_differences():
    plan, problems = column_plan(
        {'bundles': ['id', 'trust_domain', 'data'], 'migrations': ['id', 'version']},
        {'bundles': {'data': 'bytea', 'id': 'integer', 'trust_domain': 'character varying'},
         'migrations': {'id': 'integer'}})
    assert problems == []
    assert plan == {'bundles': [('id', 'integer'), ('trust_domain', 'character varying'), ('data', 'bytea')]}
    _plan, problems = column_plan({'bundles': ['id', 'extra'], 'join_tokens': ['id']},
                                  {'bundles': {'id': 'integer', 'other': 'text'}, 'ca_journals': {'id': 'integer'}})
    assert problems == ['table bundles: PostgreSQL lacks column(s) extra', 'table bundles: SQLite lacks column(s) other',
                        'table join_tokens is not in the PostgreSQL database',
                        'table ca_journals is only in the PostgreSQL database']


def test_target_decision():
    mine = fingerprint({'bundles': 1, 'migrations': 1}, {'spiffe://example.org': 'aa'}, ['bb'], ['e1'])
    other = fingerprint({'bundles': 1}, {'spiffe://other.org': 'cc'}, ['dd'], [])
    assert target_decision({}, mine, None)[0] == 'copy'
    assert target_decision({'bundles': 0, 'migrations': 1}, mine, other)[0] == 'copy'
    assert target_decision({'bundles': 1}, mine, fingerprint({'bundles': 1}, {'spiffe://example.org': 'aa'}, ['bb'],
                                                             ['e1']))[0] == 'switch'
    decision, reason = target_decision({'bundles': 1, 'ca_journals': 1}, mine, other)
    assert decision == 'refuse' and 'bundles: 1 rows' in reason and 'ca_journals: 1 rows' in reason


def test_count_problems():
    assert count_problems({'a': 1, 'migrations': 1}, {'a': 1, 'migrations': 2}) == []
    assert count_problems({'a': 2}, {'a': 1, 'b': 3}) == ['a: 2 rows in SQLite, 1 in PostgreSQL',
                                                          'b: None rows in SQLite, 3 in PostgreSQL']


CA = base64.b64encode(b'der-of-a-ca').decode()
CA2 = base64.b64encode(b'der-of-another-ca').decode()


def summary(authorities=(CA,), agents=('/spire/agent/join_token/t1',), fed=(CA2,), paths=('/w1', '/w2')):
    bundle = {'trust_domain': 'example.org', 'x509_authorities': [{'asn1': a} for a in authorities],
              'jwt_authorities': [{'key_id': 'k1'}]}
    entries = {'entries': [{'spiffe_id': {'trust_domain': 'example.org', 'path': p},
                            'parent_id': {'trust_domain': 'example.org', 'path': '/node'},
                            'selectors': [{'type': 'unix', 'value': 'uid:0'}]} for p in paths]}
    agent_list = {'agents': [{'id': {'trust_domain': 'example.org', 'path': p}} for p in agents]}
    bundles = {'bundles': [bundle, {'trust_domain': 'fed.org', 'x509_authorities': [{'asn1': a} for a in fed]}]}
    rels = {'federation_relationships': [{'trust_domain': 'fed.org', 'bundle_endpoint_url': 'https://fed:8443',
                                          'https_spiffe': {'endpoint_spiffe_id': 'spiffe://fed.org/spire/server'}}]}
    return server_summary(bundle, entries, agent_list, bundles, rels)


def test_server_summary():
    got = summary()
    assert got['entry_count'] == 2
    assert got['agents'] == ['spiffe://example.org/spire/agent/join_token/t1']
    assert got['x509_authorities'] == [hashlib.sha256(b'der-of-a-ca').hexdigest()]
    assert got['federated_bundles'] == {'fed.org': [hashlib.sha256(b'der-of-another-ca').hexdigest()]}
    assert got['federation_relationships'] == [{
        'trust_domain': 'fed.org', 'bundle_endpoint_url': 'https://fed:8443', 'bundle_endpoint_profile': 'https_spiffe',
        'endpoint_spiffe_id': 'spiffe://fed.org/spire/server'}]


def test_summary_problems():
    before = summary()
    assert summary_problems(before, summary()) == []
    # A newly prepared CA is fine; a lost one is not.
    assert summary_problems(before, summary(authorities=(CA, CA2))) == []
    problems = summary_problems(before, summary(authorities=(CA2,), agents=(), fed=(), paths=('/w1',)))
    text = '; '.join(problems)
    for word in ('entry_count changed', 'entries_sha256 changed', 'agents changed', 'X.509 authorities lost',
                 'federated bundle fed.org lost X.509 authorities'):
        assert word in text


def test_kept_name_and_redact_and_argv():
    when = datetime.datetime(2026, 12, 1, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert kept_name('/var/lib/spire/server/datastore.sqlite3', when) == \
        '/var/lib/spire/server/datastore.sqlite3.20261201T030405Z'
    assert redact('failed password=s3cret host=db', ['s3cret', '']) == 'failed password=******** host=db'
    argv = psql_argv('/usr/bin/psql', "host='db' passfile='/tmp/x'", ['-c', 'SELECT 1'])
    assert argv[0] == '/usr/bin/psql' and '-X' in argv and 'ON_ERROR_STOP=1' in argv and argv[-2:] == ['-c', 'SELECT 1']


def test_throwaway_config_takes_the_connection_string_from_the_environment():
    conf = throwaway_config('example.org', '/tmp/x/data', '/tmp/x/api.sock', 4321)
    assert parse_datastore_config(conf) == {'database_type': 'postgres',
                                            'connection_string': '${SPIRE_MIGRATE_CONNECTION_STRING}'}
    assert 'KeyManager "memory"' in conf and 'bind_port = "4321"' in conf and '127.0.0.1' in conf


@pytest.fixture
def sqlite_file(tmp_path):
    path = str(tmp_path / 'datastore.sqlite3')
    conn = sqlite3.connect(path)
    conn.executescript('''
        CREATE TABLE migrations (id integer primary key, version integer, code_version varchar(255));
        INSERT INTO migrations VALUES (1, 25, '1.15.3');
        CREATE TABLE bundles (id integer primary key, created_at datetime, trust_domain varchar(255), data blob);
        CREATE TABLE registered_entries (id integer primary key, entry_id varchar(255), admin bool);
        CREATE TABLE ca_journals (id integer primary key, data blob);
    ''')
    conn.execute('INSERT INTO bundles VALUES (3, ?, ?, ?)', ('2026-12-01 03:11:23.123456789+00:00',
                                                             'spiffe://example.org', b'\x00\x09\n'))
    conn.execute("INSERT INTO registered_entries VALUES (1, 'e1', 1)")
    conn.execute("INSERT INTO registered_entries VALUES (2, 'e\t2', 0)")
    conn.commit()
    conn.close()
    return path


def test_sqlite_source_and_copy_script(sqlite_file):
    source = SqliteSource(sqlite_file)
    try:
        assert source.schema_version() == (25, '1.15.3')
        assert source.counts() == {'bundles': 1, 'ca_journals': 0, 'migrations': 1, 'registered_entries': 2}
        plan, problems = column_plan(source.columns(), {
            'migrations': {'id': 'integer', 'version': 'bigint', 'code_version': 'character varying'},
            'bundles': {'id': 'integer', 'created_at': 'timestamp with time zone', 'trust_domain': 'character varying',
                        'data': 'bytea'},
            'registered_entries': {'id': 'integer', 'entry_id': 'character varying', 'admin': 'boolean'},
            'ca_journals': {'id': 'integer', 'data': 'bytea'}})
        assert problems == []
        out = io.StringIO()
        write_copy_script(out, source, plan, table_order(list(plan), []))
        fp = source.fingerprint()
    finally:
        source.close()
    script = out.getvalue()
    assert script.splitlines()[0] == 'TRUNCATE TABLE "bundles", "ca_journals", "registered_entries";'
    assert 'COPY "bundles" ("id", "created_at", "trust_domain", "data") FROM STDIN;\n' \
           '3\t2026-12-01 03:11:23.123456+00:00\tspiffe://example.org\t\\\\x00090a\n\\.\n' in script
    assert 'COPY "registered_entries" ("id", "entry_id", "admin") FROM STDIN;\n1\te1\tt\n2\te\\t2\tf\n\\.\n' in script
    assert "setval(pg_get_serial_sequence('\"bundles\"', 'id'), coalesce(max(id), 0) + 1, false) FROM \"bundles\"" \
        in script
    assert 'migrations' not in script
    assert fp['counts'] == {'bundles': 1, 'ca_journals': 0, 'registered_entries': 2}
    assert fp['bundles'] == {'spiffe://example.org': hashlib.sha256(b'\x00\x09\n').hexdigest()}


# --- the throw-away server that creates the schema (a stand-in executable: what is tested is the process handling) ---

def _fake_server(tmp_path, body):
    path = tmp_path / 'fake-spire-server'
    path.write_text('#!/bin/sh\n' + body)
    path.chmod(0o755)
    return str(path)


def test_create_schema_stops_the_server_once_healthy_and_leaves_nothing(tmp_path):
    pid_file = tmp_path / 'pid'
    binary = _fake_server(tmp_path, 'echo $$ > %s\nexec sleep 60\n' % pid_file)
    checks = []

    def run(argv):
        checks.append(argv)
        return (0, '', '') if len(checks) >= 2 and pid_file.exists() else (1, '', 'not yet')
    create_schema(binary, 'example.org', 'dbname=spire password=Sup3rSecret', str(tmp_path), 30, run)
    assert checks[0][:2] == [binary, 'healthcheck'] and len(checks) >= 2
    pid = int(pid_file.read_text())
    assert not os.path.exists('/proc/%d' % pid)
    assert [name for name in os.listdir(str(tmp_path)) if name.startswith('.spire-schema-')] == []


def test_create_schema_names_the_exit_and_redacts_the_log(tmp_path):
    binary = _fake_server(tmp_path, 'echo "cannot connect with password=$SPIRE_MIGRATE_CONNECTION_STRING"\nexit 3\n')
    with pytest.raises(DatastoreMigrationError) as failure:
        create_schema(binary, 'example.org', 'Sup3rSecret', str(tmp_path), 30, lambda argv: (1, '', ''),
                      secrets=('Sup3rSecret',))
    message = str(failure.value)
    assert 'the spire-server that creates the schema exited with status 3' in message
    assert 'cannot connect with password=********' in message and 'Sup3rSecret' not in message
    assert [name for name in os.listdir(str(tmp_path)) if name.startswith('.spire-schema-')] == []


def test_create_schema_gives_up_after_the_timeout(tmp_path):
    binary = _fake_server(tmp_path, 'echo starting\nexec sleep 60\n')

    def run(argv):
        time.sleep(0.5)  # the stand-in has written its line by then
        return 1, '', ''
    with pytest.raises(DatastoreMigrationError, match='creates the schema was not healthy after 0s: starting'):
        create_schema(binary, 'example.org', 'x', str(tmp_path), 0, run)

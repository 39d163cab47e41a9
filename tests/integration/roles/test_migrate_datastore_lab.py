"""playbooks/migrate.yml --tags datastore on real systemd lab hosts: a SPIRE server installed on sqlite3 (which also
runs Debian's PostgreSQL 15 on loopback) and one agent. The server gets 200 entries, a federated bundle, a
federation relationship and a join token; the migration to PostgreSQL keeps all of them, the CA (authorities and
keys.json), the agent's identity and its workloads' SVIDs. The migration runs at -vvvv: neither the PostgreSQL
password nor the join token it copies reaches its output, a host journal or a file but the few that must hold one.

The tests run in file order on one lab (each part starts from what the previous one left)."""

import datetime
import hashlib
import json
import os
import re
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.lab import hosts as labhosts
from tests.lab import leaks
from tests.lab.common import wait_for
from tests.lab.stack import AGENT_DATA, TRUST_DOMAIN, Stack, agent_svid as lab_agent_svid, fetch_workload_svid, spiffe_id, total

NAME = 'it-migrate-ds'
GROUPS = {'spire_servers': ['spire-server1'], 'spire_agents': ['spire-agent1']}
SERVER = 'spire-server1'
AGENT = 'spire-agent1'
SERVER_SOCKET = '/run/spire/server/private/api.sock'
AGENT_SOCKET = '/run/spire/agent/public/api.sock'
SQLITE = '/var/lib/spire/server/datastore.sqlite3'
KEYS = '/var/lib/spire/server/keys.json'
CONF = '/etc/spire/server/server.conf'
FED_TD = 'partner.example'
ENTRY_COUNT = 200
PG_PASSWORD = 'Lab-pg-%s' % hashlib.sha256(os.urandom(16)).hexdigest()[:20]


@pytest.fixture(scope='module')
def stack():
    timings = {}
    since = time.time()
    stack = Stack.from_layer(NAME, groups=GROUPS)  # installed on sqlite3: the stack layer
    try:
        stack.since = since
        stack.outputs = {}
        timings['boot_from_layer'] = stack.boot_seconds
        started = time.monotonic()
        start_postgres(stack)
        timings['postgres'] = round(time.monotonic() - started, 1)
        stack.target_vars = os.path.join(stack.files_dir, 'migrate-datastore.json')
        with open(os.open(stack.target_vars, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as handle:
            json.dump({'spire_server_datastore': 'postgres', 'spire_server_postgres_host': '127.0.0.1',
                       'spire_server_postgres_password': PG_PASSWORD, 'spire_server_postgres_sslmode': 'require'},
                      handle)
        stack.timings = timings
        yield stack
    finally:
        print('\nmigrate datastore timings (s): %s' % json.dumps(timings))
        labhosts.destroy(NAME)


def sh(stack, host, script, *args, check=True, timeout=120):
    return stack.lab.exec(host, ['sh', '-c', script, 'sh'] + list(args), check=check, timeout=timeout)


def start_postgres(stack):
    """Debian's PostgreSQL 15 of the lab rootfs (unit disabled) on loopback, a spire role and database."""
    stack.lab.exec(SERVER, ['systemctl', 'enable', '--now', 'postgresql@15-main.service'], check=True)
    wait_for(lambda: stack.lab.exec(SERVER, ['pg_isready', '-h', '127.0.0.1']).returncode == 0, timeout=60,
             interval=0.5, what='PostgreSQL on spire-server1')
    # SQL on stdin: runuser logs its command line to the journal, which the leak test reads.
    sh(stack, SERVER, 'printf "CREATE ROLE spire LOGIN PASSWORD \'%s\';\\nCREATE DATABASE spire OWNER spire;\\n" "$1" | '
                      'runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1', PG_PASSWORD)


def psql(stack, sql):
    out = sh(stack, SERVER, 'printf "%s\\n" "$1" | runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -d spire', sql)
    return out.stdout.strip()


def server_json(stack, *argv):
    out = stack.lab.exec(SERVER, ['spire-server'] + list(argv) + ['-socketPath', SERVER_SOCKET, '-output', 'json'],
                         check=True, timeout=120)
    return json.loads(out.stdout)


def entries_digest(entries):
    items = sorted(json.dumps({'spiffe_id': e['spiffe_id'], 'parent_id': e['parent_id'],
                               'selectors': sorted('%s:%s' % (s['type'], s['value']) for s in e.get('selectors', [])),
                               'dns_names': sorted(e.get('dns_names') or []), 'admin': bool(e.get('admin')),
                               'federates_with': sorted(e.get('federates_with') or []),
                               'x509_svid_ttl': e.get('x509_svid_ttl'), 'hint': e.get('hint') or ''},
                              sort_keys=True) for e in entries)
    return hashlib.sha256('\n'.join(items).encode()).hexdigest()


def state(stack):
    """What the server serves, and the files that carry its CA and the agent's identity."""
    entries = server_json(stack, 'entry', 'show')['entries']
    bundle = server_json(stack, 'bundle', 'show')
    fed = server_json(stack, 'bundle', 'list')['bundles']
    return {
        'entry_count': len(entries),
        'entries_digest': entries_digest(entries),
        'entry_ids': sorted(e['id'] for e in entries),
        'authorities': sorted(a['asn1'] for a in bundle['x509_authorities']),
        'jwt_keys': sorted(k['key_id'] for k in bundle.get('jwt_authorities', [])),
        'federated': sorted((b['trust_domain'], tuple(sorted(a['asn1'] for a in b['x509_authorities'])))
                            for b in fed if b['trust_domain'] != TRUST_DOMAIN),
        'relationships': sorted((r['trust_domain'], r['bundle_endpoint_url'])
                                for r in server_json(stack, 'federation', 'list').get('federation_relationships', [])),
        'agents': sorted('spiffe://%s%s' % (a['id']['trust_domain'], a['id']['path'])
                         for a in server_json(stack, 'agent', 'list').get('agents', [])),
        'keys_sha256': hashlib.sha256(stack.lab.exec(SERVER, ['cat', KEYS], check=True).stdout.encode()).hexdigest(),
    }


def agent_svid(stack):
    return lab_agent_svid(stack.lab, AGENT)


def federated_ca_pem():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, FED_TD)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier('spiffe://' + FED_TD)]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def migrate(stack, label, *args):
    started = time.monotonic()
    proc = stack.run('migrate', ['--tags', 'datastore', '-e', '@' + stack.target_vars] + list(args))
    stack.timings[label] = round(time.monotonic() - started, 1)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert PG_PASSWORD not in proc.stdout + proc.stderr, 'the database password is in the output'
    stack.outputs[label] = proc.stdout + proc.stderr
    return proc


def workload_gets_svid(stack):
    """A workload on the agent host (user demo, the demo entry) gets an X.509 SVID through the agent."""
    fetched = fetch_workload_svid(stack.lab, AGENT)
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert 'spiffe://%s/workload/demo' % TRUST_DOMAIN in fetched.stdout


# --- the parts, in order -------------------------------------------------------------------------------------

def test_populate_the_sqlite3_server(stack):
    started = time.monotonic()
    entries = [{'spiffe_id': 'spiffe://%s/migrate/w%03d' % (TRUST_DOMAIN, i),
                'parent_id': 'spiffe://%s/node/%s' % (TRUST_DOMAIN, AGENT),
                'selectors': [{'type': 'unix', 'value': 'uid:%d' % (20000 + i)}],
                'dns_names': ['w%03d.migrate.test' % i] if i % 10 == 0 else [],
                'federates_with': ['spiffe://' + FED_TD] if i % 50 == 0 else [],
                'admin': i % 7 == 0, 'x509_svid_ttl': 1800, 'jwt_svid_ttl': 300, 'hint': 'h%d' % (i % 3)}
               for i in range(ENTRY_COUNT)]
    sh(stack, SERVER, 'printf %s "$1" > /root/fed.pem && spire-server bundle set -id spiffe://' + FED_TD +
       ' -path /root/fed.pem -socketPath ' + SERVER_SOCKET, federated_ca_pem())
    server_json(stack, 'federation', 'create', '-trustDomain', FED_TD, '-bundleEndpointURL',
                'https://%s:8443' % FED_TD, '-bundleEndpointProfile', 'https_web')
    sh(stack, SERVER, 'printf %s "$1" > /root/entries.json', json.dumps({'entries': entries}))
    created = server_json(stack, 'entry', 'create', '-data', '/root/entries.json')
    assert all(r['status']['code'] == 0 for r in created['results']), created['results'][:3]
    token = server_json(stack, 'token', 'generate', '-spiffeID', 'spiffe://%s/spare' % TRUST_DOMAIN, '-ttl', '3600')
    stack.join_token = token['value']
    stack.timings['populate'] = round(time.monotonic() - started, 1)
    assert 'sqlite3' in stack.lab.exec(SERVER, ['cat', CONF], check=True).stdout


def test_check_mode_reports_the_migration_and_changes_nothing(stack):
    before = state(stack)
    proc = migrate(stack, 'check', '--check', '--diff')
    assert total(proc.stdout) > 0
    assert 'would copy' in proc.stdout
    assert '"sqlite3"' in stack.lab.exec(SERVER, ['cat', CONF], check=True).stdout
    assert psql(stack, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == '0'
    assert stack.lab.exec(SERVER, ['test', '-f', SQLITE]).returncode == 0
    assert state(stack) == before


def test_migration_keeps_entries_agents_ca_and_federation(stack):
    before = state(stack)
    assert before['entry_count'] >= ENTRY_COUNT and before['federated'] and before['relationships']
    assert len(before['agents']) == 2  # the stack layer attested spire-agent1 and spire-agent2 (not booted here)
    svid_before = agent_svid(stack)
    agent_data_before = stack.lab.exec(AGENT, ['cat', AGENT_DATA], check=True).stdout
    proc = migrate(stack, 'migrate', '-vvvv')
    assert 'ESTABLISH SSH CONNECTION' in proc.stdout, 'the migration must run at -vvvv'
    assert 'datastore: sqlite3 -> postgres copied' in proc.stdout

    conf = stack.lab.exec(SERVER, ['cat', CONF], check=True).stdout
    assert 'database_type = "postgres"' in conf and PG_PASSWORD not in conf
    after = state(stack)
    assert after == before
    # The rows are PostgreSQL's, and the SQLite file is kept next to it with a timestamp suffix.
    assert int(psql(stack, 'SELECT count(*) FROM registered_entries')) == before['entry_count']
    assert int(psql(stack, 'SELECT count(*) FROM attested_node_entries')) == len(before['agents'])
    assert int(psql(stack, 'SELECT count(*) FROM join_tokens')) == 1
    assert psql(stack, 'SELECT count(*) FROM federated_trust_domains') == '1'
    assert int(psql(stack, 'SELECT count(*) FROM ca_journals')) >= 1
    assert stack.lab.exec(SERVER, ['test', '-e', SQLITE]).returncode != 0
    kept = [path for path in sh(stack, SERVER, 'ls %s.2*' % SQLITE).stdout.split()
            if re.search(r'\.\d{8}T\d{6}Z$', path)]
    assert len(kept) == 1, kept
    # The kept file (with its -wal, renamed alongside) still holds every entry: a rollback has them.
    rows = stack.lab.exec(SERVER, ['python3', '-c', 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('
                                   '"SELECT count(*) FROM registered_entries").fetchone()[0])', kept[0]], check=True)
    assert int(rows.stdout) == before['entry_count']
    # The copy's id sequences continue past the copied rows: a new entry gets a fresh row.
    created = server_json(stack, 'entry', 'create', '-spiffeID', 'spiffe://%s/after-migration' % TRUST_DOMAIN,
                          '-parentID', 'spiffe://%s/node/%s' % (TRUST_DOMAIN, AGENT), '-selector', 'unix:uid:30000')
    assert created['results'][0]['status']['code'] == 0, created
    assert psql(stack, "SELECT count(*) FROM registered_entries WHERE spiffe_id LIKE '%/after-migration'") == '1'
    server_json(stack, 'entry', 'delete', '-entryID', created['results'][0]['entry']['id'])

    # The agent keeps its identity: same SPIFFE ID, listed by the server, and it renews through the new datastore.
    assert spiffe_id(agent_svid(stack)) == spiffe_id(svid_before)
    assert stack.lab.exec(AGENT, ['cat', AGENT_DATA], check=True).stdout.strip() and agent_data_before
    assert stack.lab.exec(AGENT, ['spire-agent', 'healthcheck', '-socketPath', AGENT_SOCKET]).returncode == 0
    started = time.monotonic()
    stack.lab.exec(AGENT, ['systemctl', 'restart', 'spire-agent'], check=True)
    wait_for(lambda: stack.lab.exec(AGENT, ['spire-agent', 'healthcheck', '-socketPath', AGENT_SOCKET]).returncode == 0,
             timeout=60, interval=1, what='the agent after its restart')
    workload_gets_svid(stack)
    stack.timings['agent_check'] = round(time.monotonic() - started, 1)
    assert spiffe_id(agent_svid(stack)) == spiffe_id(svid_before)
    assert any(agent['id']['path'] in spiffe_id(svid_before) for agent in server_json(stack, 'agent', 'list')['agents'])
    # The join token made on sqlite3 is still in the datastore (not in any output).
    assert psql(stack, "SELECT count(*) FROM join_tokens WHERE token = '%s'" % stack.join_token) == '1'
    assert stack.join_token not in proc.stdout


def test_second_run_changes_nothing(stack):
    proc = migrate(stack, 'second_run')
    assert total(proc.stdout) == 0, proc.stdout[-4000:]
    assert 'datastore: nothing to do, the server runs on postgres' in proc.stdout


# Files that hold a secret by design, each with why; each is checked private (0600 or 0640, owned by root or by the
# service that reads it).
ALLOWED = [
    ('*/files/migrate-datastore.json', "this test's 0600 vars file (-e @file): the PostgreSQL password"),
    ('*/hosts/spire-server1/upper/etc/spire/server/server.env',
     "the server's connection string (SPIRE_SERVER_DATASTORE_CONNECTION_STRING): it cannot connect without it"),
    ('*/hosts/spire-server1/upper/var/lib/spire/server/datastore.sqlite3*',
     'the sqlite3 datastore (kept for a rollback): it holds the join token, as the server keeps it'),
    ('*/hosts/spire-server1/upper/var/lib/postgresql/*', "PostgreSQL's own storage: the copied join_tokens row"),
]


def test_the_migration_leaks_no_secret(stack):
    """The PostgreSQL password and the join token the migration copies: in no output of the migration runs (the
    real one at -vvvv), no host journal, no file but the allowed ones."""
    assert 'ESTABLISH SSH CONNECTION' in stack.outputs['migrate']
    secrets = {'postgres password': PG_PASSWORD, 'join token': stack.join_token}
    output = ''.join(stack.outputs.values())
    assert not leaks.text_leaks(output, secrets), leaks.text_leaks(output, secrets)
    found, held, scanned = leaks.scan_lab(stack.lab, secrets, stack.since, ALLOWED)
    assert not found, 'secrets outside the allowed files:\n' + leaks.report(found)
    assert scanned > 100, scanned
    print(leaks.summary(scanned, secrets, held))
    held_paths = sorted({path for path, _label, _reason in held})
    assert any(path.endswith('/etc/spire/server/server.env') for path in held_paths), held
    uids = {user: int(stack.lab.exec(SERVER, ['id', '-u', user], check=True).stdout) for user in ('spire', 'postgres')}
    for path in held_paths:
        owners = (0, uids['postgres']) if '/var/lib/postgresql/' in path else (0, uids['spire']) if '/var/lib/spire/' in path else (0,)
        assert leaks.private_file_problem(path, owners) is None, leaks.private_file_problem(path, owners)

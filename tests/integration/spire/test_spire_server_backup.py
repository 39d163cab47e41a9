"""spire_server_backup against real spire-servers: a sqlite3 datastore saved while the server runs with 200
entries, check mode, age encryption, a PostgreSQL datastore (real PostgreSQL 15) saved with pg_dump, the
restore plan in check mode (the server already runs its backup), a keys.json of another server refused at
backup and at restore (before any service action; the forced restore runs on a systemd lab host), and bad
input."""

import base64
import hashlib
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from tests.lab.common import COLLECTIONS_PATH
from tests.lab.postgres import PostgresServer, spire_server_on_postgres
from tests.lab.spire import SpireServer, spire_server_module_args

sys.path.insert(0, COLLECTIONS_PATH)
from ansible_collections.trustroot.ops.plugins.module_utils._backup.archive import write_archive  # noqa: E402
from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import BackupError  # noqa: E402
from ansible_collections.trustroot.ops.plugins.module_utils._backup.verify import verify_archive  # noqa: E402
from ansible_collections.trustroot.ops.plugins.module_utils._spire_backup import (  # noqa: E402
    bundle_summary, entries_digest)

ENTRY_COUNT = 200


def make_entries(server, count, prefix='backup'):
    entries = [{'spiffe_id': server.spiffe_id('%s/w%d' % (prefix, i)), 'parent_id': server.spiffe_id('node/agent'),
                'selectors': [{'type': 'unix', 'value': 'uid:%d' % (3000 + i)}], 'x509_svid_ttl': 600 + i % 3,
                'dns_names': ['w%d.example.org' % i] if i % 10 == 0 else [], 'hint': 'h%d' % (i % 4)}
               for i in range(count)]
    results = []
    for start in range(0, count, 50):
        results += server.create_entries(entries[start:start + 50])
    assert all(r['status']['code'] == 0 for r in results), results[:3]


def backup_args(server, dest, **extra):
    args = dict(spire_server_module_args(server), sqlite_path=server.datastore_path, keys_path=server.keys_path,
                config_path=server.config_path, dest_dir=str(dest))
    args.update(extra)
    return args


def run_tasks(ansible, tasks, verbosity=0):
    """Run spire_server_backup once per (args, task options) in ONE playbook (each task ignore_errors);
    return the registered results in order and the playbook's output."""
    index = len(ansible.runs)
    result_path = os.path.join(ansible.workdir, 'results-%d.json' % index)
    body = [dict(options, name='task %d' % i, register='r%d' % i, ignore_errors=True,
                 **{'trustroot.ops.spire_server_backup': args}) for i, (args, options) in enumerate(tasks)]
    body.append({'name': 'save results', 'check_mode': False, 'diff': False, 'ansible.builtin.copy': {
        'content': '{{ [%s] | to_json }}' % ', '.join('r%d' % i for i in range(len(tasks))),
        'dest': result_path, 'mode': '0600'}})
    play_path = os.path.join(ansible.workdir, 'play-%d.yml' % index)
    with open(play_path, 'w') as handle:
        json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': body}], handle)
    proc = ansible.playbook(play_path, verbosity=verbosity)
    assert os.path.exists(result_path), proc.stdout[-3000:] + proc.stderr[-2000:]
    with open(result_path) as handle:
        return json.load(handle), proc.stdout + proc.stderr


CHECK = {'check_mode': True, 'diff': True}


def age_key(path):
    subprocess.run(['age-keygen', '-o', str(path)], check=True, capture_output=True)
    return subprocess.run(['age-keygen', '-y', str(path)], check=True, capture_output=True, text=True).stdout.strip()


def test_saves_a_running_sqlite_server(ansible, spire_server, spire_server_b, tmp_path):
    make_entries(spire_server, ENTRY_COUNT)
    spire_server.set_federated_bundle(spire_server_b)
    dest = tmp_path / 'backups'
    dest.mkdir()
    args = backup_args(spire_server, dest)

    pid = spire_server.pid
    [check, result, again], _out = run_tasks(ansible, [(args, CHECK), (args, {}), (args, CHECK)])
    assert not check.get('failed'), check
    assert check['changed'] is True and check['archive'] is None
    assert check['diff'] == {'before': {'archive': None}, 'after': {'archive': '(a new archive)'}}
    assert not result.get('failed'), result
    assert result['changed'] is True
    assert again['diff']['before'] == {'archive': os.path.basename(result['archive'])}
    archive = result['archive']
    assert os.path.isfile(archive) and archive.endswith('.tar.gz')
    assert os.path.basename(archive).startswith('spire-server-')
    # Check mode wrote nothing: one archive and its sidecar.
    assert sorted(os.listdir(str(dest))) == sorted([os.path.basename(archive), os.path.basename(archive) + '.json'])
    assert spire_server.healthcheck() and spire_server.pid == pid

    info = result['info']
    live_bundle = spire_server.bundle()
    assert info['entry_count'] == ENTRY_COUNT
    assert info['entries_sha256'] == entries_digest(spire_server.entries())
    assert info['trust_domain'] == 'example.org' and info['datastore'] == 'sqlite3'
    assert info['spire_version'].startswith('1.15.3')
    assert info['agent_count'] == 0
    assert info['federated_trust_domains'] == ['other.example']
    assert info['federation_relationship_count'] == 0
    assert info['x509_authorities'] == bundle_summary(live_bundle)['x509_authorities'] == sorted(
        hashlib.sha256(base64.b64decode(a['asn1'])).hexdigest() for a in live_bundle['x509_authorities'])
    assert info['jwt_key_ids'] == sorted(a['key_id'] for a in live_bundle['jwt_authorities'])
    assert info['pair_attempts'] == 1

    out = tmp_path / 'extract'
    out.mkdir()
    manifest = verify_archive(archive, extract_to=str(out))
    assert manifest['system'] == 'spire-server' and manifest['info'] == info
    assert sorted(manifest['parts']) == ['bundle.json', 'datastore.sqlite3', 'keys.json', 'server.conf']
    with open(spire_server.keys_path, 'rb') as handle:
        keys = handle.read()
    assert (out / 'keys.json').read_bytes() == keys
    assert manifest['parts']['keys.json']['sha256'] == hashlib.sha256(keys).hexdigest() == info['keys_sha256']
    assert json.loads((out / 'bundle.json').read_text()) == live_bundle
    assert (out / 'server.conf').read_text() == open(spire_server.config_path).read()
    conn = sqlite3.connect(str(out / 'datastore.sqlite3'))
    try:
        assert conn.execute('PRAGMA integrity_check').fetchone() == ('ok',)
        assert conn.execute('SELECT count(*) FROM registered_entries').fetchone() == (ENTRY_COUNT,)
    finally:
        conn.close()


def test_encrypted_archive_and_the_restore_plan_in_check_mode(ansible, spire_server, tmp_path):
    make_entries(spire_server, 5)
    dest = tmp_path / 'backups'
    dest.mkdir()
    recipient = age_key(tmp_path / 'operator.agekey')
    age_key(tmp_path / 'other.agekey')
    restore = dict(spire_server_module_args(spire_server), state='restored', sqlite_path=spire_server.datastore_path,
                   keys_path=spire_server.keys_path, dest_dir=str(dest), owner='root', group='root',
                   age_identity=str(tmp_path / 'operator.agekey'))
    # Restores in check mode of the newest archive in dest_dir, right after it was written.
    [result, same, forced, wrong], _out = run_tasks(ansible, [
        (backup_args(spire_server, dest, age_recipients=[recipient]), {}),
        (restore, CHECK), (dict(restore, force=True), CHECK),
        (dict(restore, age_identity=str(tmp_path / 'other.agekey')), CHECK)])
    assert not result.get('failed'), result
    archive = result['archive']
    assert archive.endswith('.tar.gz.age') and result['sidecar']['encrypted'] is True
    assert verify_archive(archive, identity=str(tmp_path / 'operator.agekey'))['info']['entry_count'] == 5
    with pytest.raises(BackupError, match='no identity matched'):
        verify_archive(archive, identity=str(tmp_path / 'other.agekey'))

    # The server runs this very backup: nothing to do.
    assert not same.get('failed'), same
    assert same['changed'] is False and same['restored'] is False and same['archive'] == archive
    assert 'already runs this backup' in same['reason']
    assert not forced.get('failed'), forced
    assert forced['changed'] is True and forced['restored'] is False
    keys_sha = result['info']['keys_sha256']
    assert forced['diff']['before'] == forced['diff']['after'] == {
        'keys_sha256': keys_sha, 'x509_authorities': result['info']['x509_authorities'], 'entry_count': 5}
    assert wrong.get('failed') and 'no identity matched' in wrong['msg'] and wrong['changed'] is False
    assert spire_server.healthcheck()


def test_saves_a_postgres_server_with_pg_dump(ansible, tmp_path):
    password = 'pg-Secret-%s' % os.getpid()
    pg = PostgresServer().start()
    server = None
    try:
        pg.create_database('spire', 'spire', password)
        connection_string = pg.connection_string('spire', 'spire', password)
        server = spire_server_on_postgres(str(tmp_path), connection_string)
        server.start()
        make_entries(server, 20, prefix='pg')
        dest = tmp_path / 'backups'
        dest.mkdir()
        args = dict(spire_server_module_args(server), datastore='postgres', connection_string=connection_string,
                    keys_path=server.keys_path, config_path=server.config_path, dest_dir=str(dest))
        wrong_string = connection_string.replace(password, 'not-the-password')
        [result, wrong], output = run_tasks(ansible, [(args, {}), (dict(args, connection_string=wrong_string), {})],
                                            verbosity=3)
        assert not result.get('failed'), result
        for secret in (password, 'not-the-password'):
            assert secret not in output and secret not in json.dumps([result, wrong])
        assert wrong.get('failed') and 'pg_dump of the datastore failed' in wrong['msg']
        assert 'password authentication failed' in wrong['msg']
        info = result['info']
        assert info['datastore'] == 'postgres' and info['entry_count'] == 20
        assert info['entries_sha256'] == entries_digest(server.entries())
        out = tmp_path / 'extract'
        out.mkdir()
        manifest = verify_archive(result['archive'], extract_to=str(out))
        assert sorted(manifest['parts']) == ['bundle.json', 'datastore.pgdump', 'keys.json', 'server.conf']
        dump = (out / 'datastore.pgdump').read_bytes()
        assert dump.startswith(b'PGDMP') and password.encode() not in dump
        listing = subprocess.run(['pg_restore', '--list', str(out / 'datastore.pgdump')], capture_output=True,
                                 text=True, check=True).stdout
        assert 'TABLE DATA public registered_entries' in listing
        assert not [name for name in os.listdir(str(dest)) if name.startswith('.')]

    finally:
        if server is not None:
            server.cleanup()
        pg.stop()


def test_bad_input_names_the_field(ansible_cases, spire_server, tmp_path):
    dest = tmp_path / 'backups'
    dest.mkdir()
    base = backup_args(spire_server, dest)
    cases = [
        dict(base, dest_dir=None),
        dict(base, datastore='postgres'),
        dict(base, datastore='postgres', connection_string="host=db password='open"),
        dict(base, connection_string='host=db'),
        dict(base, keys_path=str(tmp_path / 'missing.json')),
        dict(base, path=str(tmp_path / 'x.tar.gz')),
        dict(base, age_recipients=['not-a-key']),
        dict(base, state='restored', keep_count=3, owner='root', group='root'),
        dict(base, state='restored', dest_dir=None, owner='root', group='root'),
        dict(base, state='restored', owner='no-such-user-here', group='root'),
    ]
    results = ansible_cases('spire_server_backup', cases)
    expected = ['dest_dir is required', 'connection_string is required with datastore=postgres',
                'connection_string: unterminated quoted value', 'connection_string applies only to datastore=postgres',
                'keys_path: %s does not exist' % (tmp_path / 'missing.json'), 'path applies only to state=restored',
                'age_recipients[0] must be an age public key', 'keep_count applies only to state=saved',
                'path (an archive) or dest_dir (its newest backup) is required',
                'owner: no-such-user-here does not exist']
    for result, message in zip(results, expected):
        assert result.get('failed') and message in result['msg'], (message, result.get('msg'))
        assert result['changed'] is False
    assert os.listdir(str(dest)) == []


def extract(archive, directory):
    os.makedirs(directory)
    return verify_archive(archive, extract_to=directory)


def active_x509_authorities(server):
    """The active X.509 authority ID of each CA journal in the server's datastore, oldest journal first."""
    conn = sqlite3.connect('file:%s?mode=ro' % server.datastore_path, uri=True)
    try:
        return [row[0] for row in conn.execute('SELECT active_x509_authority_id FROM ca_journals ORDER BY id')]
    finally:
        conn.close()


def test_a_keys_json_of_another_server_is_refused(ansible, spire_server, tmp_path):
    """Refusals change nothing, so they need no service manager: the forced restore, which stops and starts
    the server's unit, runs on a systemd lab host (tests/integration/roles/test_spire_restore_lab.py)."""
    server_a = spire_server
    server_b = SpireServer(str(tmp_path), name='server-b')     # same trust domain, a CA of its own
    try:
        server_b.start()
        make_entries(server_a, 5)
        dest_a, dest_b, dest_mixed = tmp_path / 'a', tmp_path / 'b', tmp_path / 'mixed'
        for directory in (dest_a, dest_b, dest_mixed):
            directory.mkdir()
        # A backup of server A with server B's keys file (keys_path of another server) writes nothing.
        [saved_a, saved_b, unpaired], _out = run_tasks(ansible, [
            (backup_args(server_a, dest_a), {}), (backup_args(server_b, dest_b), {}),
            (backup_args(server_a, dest_mixed, keys_path=server_b.keys_path), {})])
        assert not saved_a.get('failed') and not saved_b.get('failed'), (saved_a, saved_b)
        [x509_a] = active_x509_authorities(server_a)
        [jwt_a] = [a['key_id'] for a in server_a.bundle()['jwt_authorities']]     # a new server: its one JWT key
        assert unpaired.get('failed') and unpaired['changed'] is False, unpaired
        assert 'keys_path %s and sqlite_path %s are not a pair' % (server_b.keys_path, server_a.datastore_path) \
            in unpaired['msg']
        assert "keys.json x509-CA-A does not hold the key of the datastore's CA journal active X.509 CA slot A " \
               "(authority %s)" % x509_a in unpaired['msg']
        assert os.listdir(str(dest_mixed)) == []

        # An archive of A's datastore with B's keys.json, in the archive format of _backup (as an operator
        # assembling the pair by hand would make it).
        manifest_a = extract(saved_a['archive'], str(tmp_path / 'parts-a'))
        extract(saved_b['archive'], str(tmp_path / 'parts-b'))
        parts = [(name, str(tmp_path / 'parts-a' / name)) for name in sorted(manifest_a['parts']) if name != 'keys.json']
        parts.append(('keys.json', str(tmp_path / 'parts-b' / 'keys.json')))
        sidecar = write_archive(str(dest_mixed), 'spire-server', parts, manifest_a['info'])
        mixed = os.path.join(str(dest_mixed), sidecar['archive'])

        pid = server_a.pid
        with open(server_a.keys_path, 'rb') as handle:
            keys_before = handle.read()
        bundle_before = server_a.bundle()
        count_before = server_a.cli(['entry', 'count'])['count']

        # The refusal comes before any service action: this host has no systemd, so a stop of the unit
        # (service_name, the default spire-server) would fail here with another message.
        restore = dict(spire_server_module_args(server_a), state='restored', path=mixed,
                       sqlite_path=server_a.datastore_path, keys_path=server_a.keys_path, owner='root', group='root')
        [checked, refused], _out = run_tasks(ansible, [(restore, CHECK), (restore, {})])
        for result in (checked, refused):
            assert result.get('failed') and result['changed'] is False and result.get('restored') is False, result
            assert "keys.json x509-CA-A does not hold the key of the datastore's CA journal active X.509 CA slot A " \
                   "(authority %s)" % x509_a in result['msg']
            assert "keys.json JWT-Signer-A does not hold the key of the datastore's CA journal active JWT key slot A " \
                   "(authority %s)" % jwt_a in result['msg']
            assert '%s: its keys.json does not belong to its datastore.sqlite3' % mixed in result['msg']
            assert 'force_key_mismatch=true' in result['msg']
            assert len(result['key_mismatch']) == 2, result['key_mismatch']
            assert 'systemctl' not in result['msg']
        # Nothing changed: the same process, keys.json, bundle, entries and CA journal; no restore directory left.
        assert server_a.pid == pid and server_a.healthcheck()
        with open(server_a.keys_path, 'rb') as handle:
            assert handle.read() == keys_before
        assert server_a.bundle() == bundle_before
        assert server_a.cli(['entry', 'count'])['count'] == count_before
        assert active_x509_authorities(server_a) == [x509_a]
        assert [n for n in os.listdir(server_a.data_dir) if 'restore' in n] == []
        assert sorted(os.listdir(str(dest_mixed))) == sorted([sidecar['archive'], sidecar['archive'] + '.json'])
    finally:
        server_b.cleanup()

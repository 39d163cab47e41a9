"""Pure logic of backup_restore_check: options, archive choice, scratch server configuration, checks."""

import contextlib
import json
import os
import socket
import sys
import time

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils import _scratch as sc

DIGEST = {
    'kv': {'apps': {'secrets': 2, 'sha256': 'a' * 64}, 'legacy': {'secrets': 1, 'sha256': 'b' * 64}},
    'kv_secrets': 3, 'kv_sha256': 'c' * 64, 'policies': ['default', 'root'], 'policies_sha256': 'd' * 64,
    'mounts': [{'path': 'apps/', 'type': 'kv', 'version': '2'}], 'mounts_sha256': 'e' * 64,
    'auth_methods': [{'path': 'token/', 'type': 'token'}], 'auth_sha256': 'f' * 64, 'leader': 'http://x',
}
VAULT_INFO = {'cluster_id': 'cid-1', 'cluster_name': 'vault-cluster-1', 'digest': DIGEST}
SPIRE_INFO = {'trust_domain': 'example.org', 'datastore': 'sqlite3', 'entry_count': 3, 'entries_sha256': '1' * 64,
              'agent_count': 1, 'federated_trust_domains': ['other.example'], 'x509_authorities': ['x1'],
              'jwt_key_ids': ['j1']}
BUNDLE = {'trust_domain': 'example.org', 'x509_authorities': ['x1'], 'jwt_key_ids': ['j1']}


def params(**kwargs):
    base = dict(vault_archive=None, spire_archive=None, backup_dir=None, age_identity=None, key_material_path=None,
                material_age_identity=None, timeout=180, workdir=None)
    base.update(kwargs)
    return base


# --- options ---

def test_option_errors_need_an_archive():
    assert sc.option_errors(params()) == ['one of vault_archive, spire_archive or backup_dir is required']


def test_option_errors_name_each_field(tmp_path):
    errors = sc.option_errors(params(vault_archive=str(tmp_path / 'nope.tar.gz'), backup_dir=str(tmp_path / 'no'),
                                     material_age_identity=str(tmp_path / 'id'), timeout=0))
    assert 'material_age_identity applies only with key_material_path' in errors
    assert 'timeout must be a positive number of seconds, got 0' in errors
    assert any(e.startswith('vault_archive: ') for e in errors)
    assert any(e.startswith('backup_dir: ') for e in errors)
    assert any(e.startswith('material_age_identity: ') for e in errors)


def test_option_errors_ok(tmp_path):
    archive = tmp_path / 'vault.tar.gz'
    archive.write_bytes(b'x')
    assert sc.option_errors(params(vault_archive=str(archive), workdir=str(tmp_path))) == []


def test_select_archives_explicit_paths_win():
    calls = []

    def latest(directory, system):
        calls.append(system)
        return {'path': '/b/%s-latest.tar.gz' % system}
    chosen = sc.select_archives('/a/v.tar.gz', None, '/b', latest)
    assert chosen == {'vault': '/a/v.tar.gz', 'spire-server': '/b/spire-server-latest.tar.gz'}
    assert calls == ['spire-server']


def test_select_archives_system_without_backup_is_left_out():
    assert sc.select_archives(None, None, '/b', lambda d, s: None if s == 'vault' else {'path': 'p'}) == \
        {'spire-server': 'p'}
    assert sc.select_archives(None, None, None, None) == {}


# --- key material ---

def test_material_errors():
    good = {'unseal_keys_b64': ['a', 'b', 'c'], 'unseal_threshold': 2, 'root_token': 't'}
    assert sc.material_errors(good) == []
    assert 'PGP-encrypted' in sc.material_errors(dict(good, keys_pgp_encrypted=True))[0]
    assert 'holds no unseal keys' in sc.material_errors({'recovery_keys_b64': ['r'], 'root_token': 't'})[0]
    assert 'unseal_threshold' in sc.material_errors(dict(good, unseal_threshold=4))[0]
    assert 'unseal_threshold' in sc.material_errors(dict(good, unseal_threshold=None))[0]


def test_material_errors_never_quote_keys():
    text = json.dumps(sc.material_errors({'unseal_keys_b64': ['SECRETKEY'], 'unseal_threshold': 9,
                                          'keys_pgp_encrypted': True}))
    assert 'SECRETKEY' not in text


def test_digest_token_error():
    assert sc.digest_token_error({'root_token': 't'}, None) is None
    assert sc.digest_token_error({}, 'given') is None
    assert 'vault_token' in sc.digest_token_error({}, None)
    assert 'PGP-encrypted' in sc.digest_token_error({'root_token': 'x', 'root_token_pgp_encrypted': True}, None)


# --- SPIRE archive datastore ---

def spire_manifest(datastore='sqlite3', parts=('datastore.sqlite3', 'keys.json', 'bundle.json'), **info):
    return {'system': 'spire-server', 'info': dict(SPIRE_INFO, datastore=datastore, **info),
            'parts': dict((p, {'sha256': '0' * 64, 'size': 1}) for p in parts)}


def test_spire_datastore_sqlite():
    assert sc.spire_datastore(spire_manifest()) == ('sqlite3', 'datastore.sqlite3')


def test_spire_datastore_postgres_needs_a_scratch_database():
    manifest = spire_manifest('postgres', ('datastore.pgdump', 'keys.json'))
    with pytest.raises(sc.ScratchError) as err:
        sc.spire_datastore(manifest)
    assert str(err.value) == 'a postgres datastore backup needs scratch_postgres_connection_string'
    assert sc.spire_datastore(manifest, 'host=db') == ('postgres', 'datastore.pgdump')


def test_spire_datastore_missing_parts_and_unknown_store():
    with pytest.raises(sc.ScratchError, match='no keys.json part'):
        sc.spire_datastore(spire_manifest(parts=('datastore.sqlite3',)))
    with pytest.raises(sc.ScratchError, match='mysql'):
        sc.spire_datastore(spire_manifest('mysql'))
    with pytest.raises(sc.ScratchError, match='trust_domain'):
        sc.spire_datastore(spire_manifest(trust_domain=''))


# --- configuration ---

def test_vault_config_loopback_raft():
    text = sc.vault_config('/w/data "x"', 18200, 18201)
    assert 'storage "raft" {\n  path = "/w/data \\"x\\""' in text
    assert 'address = "127.0.0.1:18200"' in text
    assert 'cluster_address = "127.0.0.1:18201"' in text
    assert 'tls_disable = true' in text
    assert 'api_addr = "http://127.0.0.1:18200"' in text
    assert 'cluster_addr = "http://127.0.0.1:18201"' in text
    assert 'disable_mlock = true' in text
    assert '0.0.0.0' not in text


def test_spire_config_restored_pair():
    text = sc.spire_config('example.org', '/w/data', '/tmp/s/api.sock', 18081, '/w/parts/keys.json', 'sqlite3',
                           '/w/parts/datastore.sqlite3', {'ca_key_type': 'rsa-2048'})
    assert 'bind_address = "127.0.0.1"' in text
    assert 'bind_port = "18081"' in text
    assert 'trust_domain = "example.org"' in text
    assert 'socket_path = "/tmp/s/api.sock"' in text
    assert 'ca_key_type = "rsa-2048"' in text
    assert 'jwt_key_type' not in text
    assert 'database_type = "sqlite3"\n            connection_string = "/w/parts/datastore.sqlite3"' in text
    assert 'keys_path = "/w/parts/keys.json"' in text
    assert 'NodeAttestor "join_token"' in text


def test_server_conf_settings():
    conf = 'server {\n    ca_key_type = "ec-p384"\n    jwt_key_type = "bogus"\n    # ca_key_type = "rsa-4096"\n}\n'
    assert sc.server_conf_settings(conf) == {'ca_key_type': 'ec-p384'}
    assert sc.server_conf_settings('') == {}
    assert sc.server_conf_settings(None) == {}


# --- checks ---

def failed(checks):
    return [c['check'] for c in checks if not c['ok']]


def test_vault_checks_pass():
    digest = dict(DIGEST, leader='http://scratch')
    checks = sc.vault_checks(VAULT_INFO, {'sealed': False, 'cluster_id': 'cid-1'}, digest)
    assert failed(checks) == []
    names = [c['check'] for c in checks]
    assert names[:2] == ['unsealed_with_original_keys', 'cluster_id']
    assert 'kv_sha256' in names and 'kv[apps]' in names and 'kv[legacy]' in names and 'leader' not in names
    assert all(c['system'] == 'vault' for c in checks)


def test_vault_checks_find_a_changed_mount_and_a_missing_one():
    digest = json.loads(json.dumps(DIGEST))
    digest['kv']['apps']['sha256'] = '9' * 64
    digest['kv']['extra'] = {'secrets': 1, 'sha256': '8' * 64}
    del digest['kv']['legacy']
    digest['kv_sha256'] = '7' * 64
    checks = sc.vault_checks(VAULT_INFO, {'sealed': False, 'cluster_id': 'cid-1'}, digest)
    assert failed(checks) == ['kv_sha256', 'kv[apps]', 'kv[extra]', 'kv[legacy]']


def test_vault_checks_sealed_or_no_digest():
    checks = sc.vault_checks(VAULT_INFO, {'sealed': True}, None, 'still sealed')
    assert failed(checks) == ['unsealed_with_original_keys', 'cluster_id', 'digest']
    assert checks[-1]['actual'] == 'still sealed'
    assert failed(sc.vault_checks({'cluster_id': 'c'}, {'sealed': False, 'cluster_id': 'c'}, DIGEST)) == ['digest']


def test_digest_mounts():
    assert sc.digest_mounts(DIGEST) == ['apps', 'legacy']
    assert sc.digest_mounts({'kv': {}}) is None
    assert sc.digest_mounts(None) is None


def test_spire_checks_pass_with_an_extra_prepared_authority():
    bundle = dict(BUNDLE, x509_authorities=['x0', 'x1'])
    checks = sc.spire_checks(SPIRE_INFO, True, bundle, 3, '1' * 64, 1, ['other.example', 'third.example'])
    assert failed(checks) == []
    assert [c['check'] for c in checks] == ['healthcheck', 'trust_domain', 'x509_authorities', 'jwt_key_ids',
                                            'entry_count', 'entries_sha256', 'agent_count', 'federated_trust_domains']


def test_spire_checks_fail():
    bundle = {'trust_domain': 'other.org', 'x509_authorities': ['x9'], 'jwt_key_ids': []}
    checks = sc.spire_checks(SPIRE_INFO, True, bundle, 2, '2' * 64, 0, [])
    assert failed(checks) == ['trust_domain', 'x509_authorities', 'jwt_key_ids', 'entry_count', 'entries_sha256',
                              'agent_count', 'federated_trust_domains']


def test_spire_checks_no_bundle():
    assert failed(sc.spire_checks(SPIRE_INFO, False, None)) == ['healthcheck', 'bundle']


def test_spire_checks_empty_backup_authorities_never_pass():
    checks = sc.spire_checks(dict(SPIRE_INFO, x509_authorities=[]), True, BUNDLE, 3, '1' * 64, 1, ['other.example'])
    assert failed(checks) == ['x509_authorities']


def test_federated_domains():
    bundles = {'bundles': [{'trust_domain': 'example.org'}, {'trust_domain': 'b.org'}, {'trust_domain': 'a.org'}]}
    assert sc.federated_domains(bundles, 'example.org') == ['a.org', 'b.org']
    assert sc.federated_domains(None, 'x') == []


def test_summarize():
    ok = [sc.check('vault', 'a', 1, 1)]
    assert sc.summarize(ok) == (True, 'all 1 checks passed')
    passed, message = sc.summarize(ok + [sc.check('spire-server', 'entry_count', 3, 2)])
    assert not passed
    assert message == 'failed checks: spire-server entry_count (expected 3, got 2)'


def test_check_ok_override():
    assert sc.check('vault', 'x', [1], [1, 2], ok=True)['ok'] is True
    assert sc.check('vault', 'x', 1, 2)['ok'] is False


# --- processes ---

def raiser(exc):
    def predicate():
        raise exc
    return predicate


def test_wait_until_returns_value_and_times_out():
    values = iter([None, ValueError('boom'), 'ready'])

    def predicate():
        value = next(values)
        if isinstance(value, Exception):
            raise value
        return value
    assert sc.wait_until(predicate, 5, 'x', interval=0.01) == 'ready'
    with pytest.raises(sc.ScratchError, match=r'waiting for the thing \(boom\)'):
        sc.wait_until(raiser(ValueError('boom')), 0.05, 'the thing', interval=0.01)


def test_wait_until_scratch_error_stops_at_once():
    start = time.time()
    with pytest.raises(sc.ScratchError, match='exited'):
        sc.wait_until(raiser(sc.ScratchError('exited')), 30, 'x')
    assert time.time() - start < 5


def test_free_port_is_below_the_ephemeral_range_and_bindable():
    low = sc.ephemeral_low()
    port = sc.free_port()
    assert (sc.LOWEST_PORT <= port < low) if low > sc.LOWEST_PORT + 1000 else 0 < port < 65536
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(('127.0.0.1', port))


class Scripted(object):
    """An rng whose randrange returns the given ports in turn."""

    def __init__(self, ports):
        self.ports = list(ports)

    def randrange(self, start, stop):
        port = self.ports.pop(0)
        assert start <= port < stop
        return port


def test_free_port_skips_a_port_in_use():
    with contextlib.closing(socket.socket()) as taken:
        taken.bind(('127.0.0.1', 0))
        busy = taken.getsockname()[1]
        with contextlib.closing(socket.socket()) as probe:
            probe.bind(('127.0.0.1', 0))
            other = probe.getsockname()[1]
        assert sc.free_port(low=65536, rng=Scripted([busy, other])) == other


def test_free_port_falls_back_to_the_kernel_when_no_room_is_left_below_the_range(tmp_path):
    assert 0 < sc.free_port(low=sc.LOWEST_PORT + 10, rng=Scripted([])) < 65536
    bad = tmp_path / 'range'
    bad.write_text('garbage')
    assert sc.ephemeral_low(str(bad)) == 32768
    good = tmp_path / 'good'
    good.write_text('40000\t60999\n')
    assert sc.ephemeral_low(str(good)) == 40000


def test_scratch_process_start_stop_by_pid(tmp_path):
    log = str(tmp_path / 'log')
    proc = sc.ScratchProcess('sleeper', [sys.executable, '-c', 'import time; print("up", flush=True); time.sleep(60)'],
                             log).start()
    pid = proc.pid
    assert proc.running()
    sc.wait_until(lambda: 'up' in open(log).read(), 10, 'output', interval=0.05)
    proc.stop()
    assert proc.pid is None
    with pytest.raises(OSError):
        os.kill(pid, 0)
    proc.stop()


def test_scratch_process_exit_reports_log_tail(tmp_path):
    proc = sc.ScratchProcess('failing', [sys.executable, '-c', 'import sys; print("bad config"); sys.exit(3)'],
                             str(tmp_path / 'log')).start()
    proc.proc.wait()
    error = proc.exited_error()
    assert 'failing exited with status 3: bad config' in str(error)
    assert oct(os.stat(str(tmp_path / 'log')).st_mode & 0o777) == '0o600'


def test_scratch_process_missing_binary(tmp_path):
    with pytest.raises(sc.ScratchError, match='could not start'):
        sc.ScratchProcess('x', [str(tmp_path / 'missing')], str(tmp_path / 'log')).start()

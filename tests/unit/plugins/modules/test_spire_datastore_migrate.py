"""spire_datastore_migrate through main(), with a fake spire-server client at the boundary."""
import pytest

from ansible_collections.trustroot.ops.plugins.module_utils import _spire_migrate
from ansible_collections.trustroot.ops.plugins.modules import spire_datastore_migrate

from .conftest import assert_no_secret

SECRET = 's3cr3t-pw'
CONN = 'postgres://spire:%s@127.0.0.1:5432/spire' % SECRET
ANSWERS = {
    ('bundle', 'show'): {'trust_domain': 'example.org'},
    ('entry', 'show'): {'entries': []},
    ('agent', 'list'): {'agents': []},
    ('bundle', 'list'): {'bundles': []},
    ('federation', 'list'): {'federation_relationships': []},
}


class FakeCLI(object):
    socket_path = '/tmp/fake.sock'

    def __init__(self):
        self.calls = []
        self.health = True

    def __call__(self, binary, socket_path, run):
        return self

    def healthy(self):
        self.calls.append(['healthcheck'])
        return self.health

    def json(self, args):
        self.calls.append(list(args))
        return ANSWERS[tuple(args)]


@pytest.fixture
def cli(monkeypatch):
    fake = FakeCLI()
    monkeypatch.setattr(spire_datastore_migrate, 'SpireCLI', fake)
    monkeypatch.setattr(spire_datastore_migrate, 'find_spire_server', lambda path: '/usr/bin/spire-server')
    return fake


def test_copied_without_connection_string_fails_naming_it(run_main, cli):
    ended = run_main(spire_datastore_migrate.main, {'state': 'copied'})
    assert ended.failed and ended.result['msg'] == 'connection_string is required with state=copied'
    assert ended.result['changed'] is False and cli.calls == []


def test_bad_connection_string_never_shows_it(run_main, cli):
    ended = run_main(spire_datastore_migrate.main, {'state': 'copied', 'connection_string': 'mysql://u:%s@h/db' % SECRET})
    assert ended.failed and ended.result['msg'].startswith('connection_string') and cli.calls == []
    assert_no_secret(ended.result, SECRET)


def test_already_on_postgres_changes_nothing(run_main, cli, tmp_path):
    conf = tmp_path / 'server.conf'
    conf.write_text('server {\n  trust_domain = "example.org"\n}\nplugins {\n  DataStore "sql" {\n    plugin_data {\n'
                    '      database_type = "postgres"\n      connection_string = "${SPIRE_DB}"\n    }\n  }\n}\n')
    ended = run_main(spire_datastore_migrate.main, {'state': 'copied', 'connection_string': CONN, 'config_path': str(conf)})
    assert not ended.failed, ended.result
    assert (ended.result['changed'], ended.result['current'], ended.result['action']) == (False, 'postgres', 'none')
    assert_no_secret(ended.result, SECRET)


def test_missing_config_fails_naming_config_path(run_main, cli, tmp_path):
    ended = run_main(spire_datastore_migrate.main, {'state': 'copied', 'connection_string': CONN,
                                                    'config_path': str(tmp_path / 'none.conf')})
    assert ended.failed and ended.result['msg'].startswith('config_path: ')


def verified_args(tmp_path):
    return {'state': 'verified', 'sqlite_path': str(tmp_path / 'datastore.sqlite3'),
            'expected': _spire_migrate.take_summary(FakeCLI()), 'wait_timeout': 5}


def test_verified_check_mode_keeps_the_sqlite_file(run_main, cli, tmp_path):
    (tmp_path / 'datastore.sqlite3').write_bytes(b'db')
    ended = run_main(spire_datastore_migrate.main, verified_args(tmp_path), check_mode=True)
    assert not ended.failed, ended.result
    assert ended.result['changed'] is False and (tmp_path / 'datastore.sqlite3').exists()
    assert ended.result['kept_as'].startswith(str(tmp_path / 'datastore.sqlite3'))


def test_verified_apply_then_second_run(run_main, cli, tmp_path):
    (tmp_path / 'datastore.sqlite3').write_bytes(b'db')
    (tmp_path / 'datastore.sqlite3-wal').write_bytes(b'wal')
    first = run_main(spire_datastore_migrate.main, verified_args(tmp_path))
    assert not first.failed and first.result['changed'] is True
    assert not (tmp_path / 'datastore.sqlite3').exists()
    with open(first.result['kept_as'], 'rb') as handle:
        assert handle.read() == b'db'
    with open(first.result['kept_as'] + '-wal', 'rb') as handle:
        assert handle.read() == b'wal'
    second = run_main(spire_datastore_migrate.main, verified_args(tmp_path))
    assert not second.failed and second.result['changed'] is False


def test_verified_with_a_different_server_fails_with_the_after_state(run_main, cli, tmp_path):
    args = verified_args(tmp_path)
    args['expected'] = dict(args['expected'], trust_domain='other.org')
    ended = run_main(spire_datastore_migrate.main, args)
    assert ended.failed and 'does not serve what it served on SQLite' in ended.result['msg']
    assert ended.result['after'] == _spire_migrate.take_summary(FakeCLI())

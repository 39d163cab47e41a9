"""spire_server_backup through main(), with a fake spire-server client at the boundary (the archive format
and restore flow themselves are covered in test_spire_backup.py and the integration tests)."""
import pytest

from ansible_collections.trustroot.ops.plugins.module_utils import _spire_server_backup
from ansible_collections.trustroot.ops.plugins.modules import spire_server_backup

from .conftest import assert_no_secret

SECRET = 's3cr3t-pw'


class FakeCLI(object):
    socket_path = '/tmp/fake.sock'

    def __init__(self):
        self.calls = []

    def json(self, args):
        self.calls.append(list(args))
        if args == ['bundle', 'show']:
            return {'trust_domain': 'example.org'}
        raise AssertionError('unexpected call %r' % (args,))


@pytest.fixture
def cli(monkeypatch):
    fake = FakeCLI()
    monkeypatch.setattr(_spire_server_backup, 'spire_cli', lambda module: fake)
    return fake


@pytest.fixture
def files(tmp_path):
    (tmp_path / 'datastore.sqlite3').write_bytes(b'db')
    (tmp_path / 'keys.json').write_text('{}')
    (tmp_path / 'backups').mkdir()
    return {'sqlite_path': str(tmp_path / 'datastore.sqlite3'), 'keys_path': str(tmp_path / 'keys.json'),
            'dest_dir': str(tmp_path / 'backups')}


def test_connection_string_with_sqlite_fails_naming_it_and_never_shows_it(run_main, cli, files):
    ended = run_main(spire_server_backup.main, dict(files, connection_string='postgres://u:%s@h/db' % SECRET))
    assert ended.failed and ended.result['msg'] == 'connection_string applies only to datastore=postgres'
    assert ended.result['changed'] is False and cli.calls == []
    assert_no_secret(ended.result, SECRET)


def test_restore_options_with_saved_are_refused(run_main, cli, files):
    ended = run_main(spire_server_backup.main, dict(files, force=True))
    assert ended.failed and 'force applies only to state=restored' in ended.result['msg'] and cli.calls == []


def test_saved_check_mode_asks_the_server_and_writes_nothing(run_main, cli, files, tmp_path):
    ended = run_main(spire_server_backup.main, files, check_mode=True, diff=True)
    assert not ended.failed, ended.result
    assert ended.result['changed'] is True and ended.result['archive'] is None
    assert ended.result['diff'] == {'before': {'archive': None}, 'after': {'archive': '(a new archive)'}}
    assert cli.calls == [['bundle', 'show']] and list((tmp_path / 'backups').iterdir()) == []


def test_restored_from_an_empty_dest_dir_fails_naming_it(run_main, cli, files):
    ended = run_main(spire_server_backup.main, dict(files, state='restored', owner='root', group='root'))
    assert ended.failed and ended.result['msg'] == 'dest_dir: %s holds no backup of the SPIRE server' % files['dest_dir']
    assert cli.calls == []

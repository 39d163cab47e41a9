"""spire_posture_info through main(), with a fake spire-server client at the boundary."""
import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._spire import SpireError
from ansible_collections.trustroot.ops.plugins.modules import spire_posture_info

from ._spire_fake import FakeSpireServerCLI

CONF = '''server {
  trust_domain = "example.org"
  default_x509_svid_ttl = "1h"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "postgres"
      connection_string = "${SPIRE_DB}"
    }
  }
}
'''


class FakeCLI(FakeSpireServerCLI):
    def __init__(self, fail=False):
        super(FakeCLI, self).__init__()
        self.fail = fail

    def answer(self, args):
        if self.fail:
            return SpireError('SPIRE server not reachable on socket_path /x (spire-server entry show): refused')
        return {('entry', 'show'): {'entries': []}, ('agent', 'list'): {'agents': []},
                ('federation', 'list'): {}, ('bundle', 'list'): {'bundles': []},
                ('localauthority', 'x509', 'show'): {}}[tuple(args)]


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / 'server.conf'
    path.write_text(CONF)
    return str(path)


def test_bad_fetch_timeout_type_fails_naming_it(run_main, monkeypatch, conf):
    fake = FakeCLI()
    monkeypatch.setattr(spire_posture_info, 'SpireServerCLI', fake)
    ended = run_main(spire_posture_info.main, {'config_path': conf, 'fetch_timeout': 'soon'})
    assert ended.failed and 'fetch_timeout' in ended.result['msg'] and fake.calls == []


def test_check_mode_reads_only(run_main, monkeypatch, conf):
    fake = FakeCLI()
    monkeypatch.setattr(spire_posture_info, 'SpireServerCLI', fake)
    ended = run_main(spire_posture_info.main, {'config_path': conf}, check_mode=True)
    assert not ended.failed and ended.result['changed'] is False
    posture = ended.result['posture']
    assert posture['trust_domain'] == 'example.org' and posture['federations'] == []
    assert posture['join_tokens']['listable'] is False and 'postgres' in posture['join_tokens']['reason']
    assert [c[:2] for c in fake.calls] == [['entry', 'show'], ['agent', 'list'], ['federation', 'list'],
                                           ['bundle', 'list'], ['localauthority', 'x509']]


def test_unreadable_config_and_unreachable_server_are_answers(run_main, monkeypatch, conf, tmp_path):
    monkeypatch.setattr(spire_posture_info, 'SpireServerCLI', FakeCLI())
    ended = run_main(spire_posture_info.main, {'config_path': str(tmp_path / 'none.conf')})
    assert not ended.failed and ended.result['posture']['error'].startswith('config %s' % (tmp_path / 'none.conf'))
    monkeypatch.setattr(spire_posture_info, 'SpireServerCLI', FakeCLI(fail=True))
    ended = run_main(spire_posture_info.main, {'config_path': conf})
    assert not ended.failed and ended.result['posture'] == {
        'error': 'SPIRE server not reachable on socket_path /x (spire-server entry show): refused'}

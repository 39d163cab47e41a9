"""spire_join_token through main(), with a fake spire-server client at the boundary."""
import pytest

from ansible_collections.trustroot.ops.plugins.modules import spire_join_token

from .conftest import assert_no_secret

TOKEN = '6f3e1c2a-9b7d-4e55-a0c1-2d8f7e6b5a43'


class FakeCLI(object):
    def __init__(self):
        self.calls = []

    def __call__(self, module):
        return self

    def run_json(self, args):
        self.calls.append(list(args))
        if args == ['bundle', 'show']:
            return {'trust_domain': 'example.org'}
        if args[:2] == ['token', 'generate']:
            return {'value': TOKEN, 'expires_at': 1900000000}
        raise AssertionError(args)


@pytest.fixture
def cli(monkeypatch):
    fake = FakeCLI()
    monkeypatch.setattr(spire_join_token, 'SpireServerCLI', fake)
    return fake


def test_bad_ttl_fails_naming_it_before_any_call(run_main, cli):
    ended = run_main(spire_join_token.main, {'ttl': 0})
    assert ended.failed and 'ttl' in ended.result['msg'] and cli.calls == []


def test_spiffe_id_of_another_trust_domain_is_refused(run_main, cli):
    ended = run_main(spire_join_token.main, {'spiffe_id': 'spiffe://other.org/agent/a'})
    assert ended.failed and 'spiffe_id' in ended.result['msg']
    assert ['token', 'generate'] not in [c[:2] for c in cli.calls]


def test_check_mode_generates_nothing(run_main, cli):
    ended = run_main(spire_join_token.main, {'spiffe_id': 'spiffe://example.org/agent/a'}, check_mode=True)
    assert not ended.failed and ended.result['changed'] is True and ended.result['token'] is None
    assert cli.calls == [['bundle', 'show']]


def test_token_to_a_file_never_reaches_the_result(run_main, cli, tmp_path):
    path = tmp_path / 'token'
    ended = run_main(spire_join_token.main, {'ttl': 300, 'output_path': str(path)})
    assert not ended.failed, ended.result
    assert ended.result['output_path'] == str(path) and ended.result['expires_at'] == 1900000000
    assert path.read_text() == TOKEN + '\n' and (path.stat().st_mode & 0o077) == 0
    assert cli.calls == [['token', 'generate', '-ttl', '300']]
    assert_no_secret(ended.result, TOKEN)


def test_token_returned_when_no_output_path(run_main, cli):
    ended = run_main(spire_join_token.main, {})
    assert not ended.failed and ended.result['token'] == TOKEN and ended.result['changed'] is True

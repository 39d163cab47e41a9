"""spire_join_token through main(), with a fake spire-server CLI at the boundary."""
import os

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._spire import SpireError
from ansible_collections.trustroot.ops.plugins.modules import spire_join_token

from ._spire_fake import FakeSpireServerCLI

from .conftest import assert_no_secret

TOKEN = 'c0ffee00-1111-2222-3333-444455556666'


class FakeCLI(FakeSpireServerCLI):
    def __init__(self, answers):
        super(FakeCLI, self).__init__()
        self.answers = answers

    def answer(self, args):
        return self.answers[' '.join(args[:2])]


@pytest.fixture
def cli(monkeypatch):
    fake = FakeCLI({'bundle show': {'trust_domain': 'example.org'},
                    'token generate': {'value': TOKEN, 'expires_at': 1900000000}})
    monkeypatch.setattr(spire_join_token, 'SpireServerCLI', fake)
    return fake


def test_a_bad_ttl_fails_before_any_call(run_main, cli):
    ended = run_main(spire_join_token.main, {'ttl': 0})
    assert ended.failed and 'ttl' in ended.result['msg']
    assert cli.calls == []


def test_an_id_of_another_trust_domain_is_refused(run_main, cli):
    ended = run_main(spire_join_token.main, {'spiffe_id': 'spiffe://other.org/host/a'})
    assert ended.failed and 'other.org' in ended.result['msg']
    assert [c[:2] for c in cli.calls] == [['bundle', 'show']]


def test_check_mode_generates_nothing(run_main, cli):
    ended = run_main(spire_join_token.main, {'spiffe_id': 'spiffe://example.org/host/a'}, check_mode=True)
    assert not ended.failed and ended.result['changed'] is True and ended.result['token'] is None
    assert [c[:2] for c in cli.calls] == [['bundle', 'show']]


def test_the_token_goes_to_output_path_and_not_into_the_result(run_main, cli, tmp_path):
    path = str(tmp_path / 'token')
    ended = run_main(spire_join_token.main, {'ttl': 300, 'output_path': path})
    assert not ended.failed, ended.result
    assert ['token', 'generate', '-ttl', '300'] in cli.calls
    with open(path) as handle:
        assert handle.read() == TOKEN + '\n'
    assert oct(os.stat(path).st_mode & 0o777) == '0o600'
    assert ended.result['output_path'] == path
    assert_no_secret(ended.result, TOKEN)


def test_a_server_error_fails_with_its_message(run_main, cli):
    cli.answers['token generate'] = SpireError('spire-server token generate: connection refused')
    ended = run_main(spire_join_token.main, {})
    assert ended.failed and ended.result['msg'] == 'spire-server token generate: connection refused'


def test_the_token_is_returned_when_there_is_no_output_path(run_main, cli):
    ended = run_main(spire_join_token.main, {})
    assert not ended.failed and ended.result['token'] == TOKEN and ended.result['changed'] is True
    assert ended.result['output_path'] is None and ended.result['expires_at'] == 1900000000

"""spire_server_info through main(), with a fake spire-server client at the boundary."""
from ansible_collections.trustroot.ops.plugins.module_utils._spire import SpireError
from ansible_collections.trustroot.ops.plugins.modules import spire_server_info

from ._spire_fake import FakeSpireServerCLI


class FakeCLI(FakeSpireServerCLI):
    socket_path = '/run/spire/api.sock'

    def __init__(self, health=(0, '', ''), fail=None):
        super(FakeCLI, self).__init__()
        self.health = health
        self.fail = fail

    def run_bare(self, args):
        self.calls.append(list(args))
        return 0, '', '1.13.3\n'  # spire-server prints its version on stderr

    def run_plain(self, args):
        self.calls.append(list(args))
        return self.health

    def answer(self, args):
        if self.fail:
            return SpireError(self.fail)
        return {('bundle', 'show'): {'trust_domain': 'example.org'}, ('entry', 'count'): {'count': 3},
                ('agent', 'count'): {'count': 2}}.get(tuple(args), {})


def test_bad_option_type_fails_naming_it(run_main, monkeypatch):
    fake = FakeCLI()
    monkeypatch.setattr(spire_server_info, 'SpireServerCLI', fake)
    ended = run_main(spire_server_info.main, {'fail_on_unhealthy': 'maybe'})
    assert ended.failed and 'fail_on_unhealthy' in ended.result['msg'] and fake.calls == []


def test_healthy_server_in_check_mode(run_main, monkeypatch):
    monkeypatch.setattr(spire_server_info, 'SpireServerCLI', FakeCLI())
    ended = run_main(spire_server_info.main, {}, check_mode=True)
    result = ended.result
    assert not ended.failed and result['changed'] is False
    assert (result['healthy'], result['reachable'], result['version'], result['trust_domain']) == (
        True, True, '1.13.3', 'example.org')
    assert (result['entry_count'], result['agent_count']) == (3, 2)


def test_unreachable_server_is_an_answer_unless_asked_to_fail(run_main, monkeypatch):
    health = (1, '', 'Error: connection error: desc = "transport: error while dialing: dial unix /x: connect: '
                     'no such file or directory"\n')
    monkeypatch.setattr(spire_server_info, 'SpireServerCLI', FakeCLI(health=health))
    ended = run_main(spire_server_info.main, {})
    assert not ended.failed and ended.result['reachable'] is False and ended.result['healthy'] is False
    assert ended.result['error'].startswith('health check failed on socket_path /run/spire/api.sock: connection error')
    ended = run_main(spire_server_info.main, {'fail_on_unhealthy': True})
    assert ended.failed and ended.result['msg'].startswith('health check failed') and ended.result['reachable'] is False

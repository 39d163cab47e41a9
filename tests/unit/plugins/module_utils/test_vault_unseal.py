"""The unseal loop, driven by scripted nodes that behave like Vault's sys/unseal."""
from ansible_collections.trustroot.ops.plugins.module_utils._vault import VaultError
from ansible_collections.trustroot.ops.plugins.module_utils._vault_unseal import (
    UnsealRun, summarize_unseal)

GOOD = ('a2V5MQ==', 'a2V5Mg==', 'a2V5Mw==')


class ScriptedNode(object):
    """Shamir node with threshold t; ``join_after`` polls model a raft follower finishing its join."""

    def __init__(self, url, t=2, sealed=True, initialized=True, join_after=0, uninit_polls=0,
                 good_keys=GOOD, down=False):
        self.url, self.t, self.is_sealed, self.initialized = url, t, sealed, initialized
        self.progress, self.join_after, self.uninit_polls = 0, join_after, uninit_polls
        self.good_keys, self.down, self.submitted = good_keys, down, []
        self._joining = None

    def seal_status(self):
        if self.down:
            raise VaultError(self.url, 'unreachable (ConnectionError)')
        if self.uninit_polls:
            self.uninit_polls -= 1
            return {'initialized': False, 'sealed': True, 't': 0, 'progress': 0}
        if self._joining is not None:
            self._joining -= 1
            if self._joining <= 0:
                self.is_sealed, self._joining = False, None
        return {'initialized': True, 'sealed': self.is_sealed, 't': self.t, 'progress': self.progress}

    def submit(self, key, migrate):
        self.submitted.append((key, migrate))
        if key not in self.good_keys:
            self.progress = 0
            raise VaultError(self.url, 'HTTP 400 from sys/unseal: cipher: message authentication failed', 400)
        self.progress += 1
        if self.progress >= self.t:
            self.progress = 0
            if self.join_after:
                self._joining = self.join_after
                return {'sealed': True, 'progress': 0, 't': self.t}
            self.is_sealed = False
        return {'sealed': self.is_sealed, 'progress': self.progress, 't': self.t}


def run(nodes, keys=GOOD, **kwargs):
    clock = [0.0]
    kwargs.setdefault('wait_timeout', 30)
    return UnsealRun(nodes, keys, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s),
                     **kwargs).run()


def test_sends_only_needed_keys_and_skips_unsealed():
    sealed, unsealed = ScriptedNode('http://a'), ScriptedNode('http://b', sealed=False)
    results = run([sealed, unsealed])
    assert len(sealed.submitted) == 2 and unsealed.submitted == []
    assert results[0]['changed'] is True and results[0]['sealed'] is False
    assert results[1]['changed'] is False
    assert summarize_unseal(results)['all_unsealed'] is True


def test_raft_follower_sealed_after_last_key_is_waited_for_without_resubmitting():
    follower = ScriptedNode('http://f', join_after=3)
    results = run([follower])
    assert len(follower.submitted) == 2, 'keys must not be sent again while the follower joins'
    assert results[0]['sealed'] is False and results[0]['waited_for_join'] is True
    assert results[0]['error'] is None


def test_uninitialized_follower_waits_for_join_then_gets_keys():
    follower = ScriptedNode('http://f', uninit_polls=2)
    results = run([follower])
    assert results[0]['sealed'] is False and len(follower.submitted) == 2


def test_follower_that_never_joins_times_out_with_reason():
    follower = ScriptedNode('http://f', join_after=10 ** 6)
    results = run([follower], wait_timeout=5)
    assert 'after its last key' in results[0]['error']


def test_wrong_key_fails_that_node_others_unsealed():
    bad = ScriptedNode('http://bad', good_keys=['other'])
    good = ScriptedNode('http://good')
    results = run([bad, good])
    assert 'key rejected' in results[0]['error'] and len(bad.submitted) == 1
    assert results[1]['sealed'] is False
    summary = summarize_unseal(results)
    assert summary['failed_nodes'] == ['http://bad'] and 'http://bad' in summary['message']


def test_unreachable_node_named():
    results = run([ScriptedNode('http://down', down=True), ScriptedNode('http://up')])
    assert results[0]['error'].startswith('unreachable') and results[1]['sealed'] is False


def test_too_few_keys_sends_nothing():
    node = ScriptedNode('http://a', t=3)
    results = run([node], keys=list(GOOD[:2]))
    assert node.submitted == [] and 'needs 3 more key(s), 2 given' in results[0]['error']


def test_check_mode_sends_nothing_and_reports_change():
    node, joining = ScriptedNode('http://a'), ScriptedNode('http://b', uninit_polls=100)
    results = run([node, joining], check_mode=True)
    assert node.submitted == [] and joining.submitted == []
    assert results[0]['changed'] is True and results[1]['changed'] is True


def test_migrate_flag_is_sent():
    node = ScriptedNode('http://a')
    run([node], migrate=True)
    assert all(migrate for _key, migrate in node.submitted)

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unsealing many nodes: which keys to send, when to wait, and what each node ends up as.

The loop talks to nodes through two calls (``seal_status()`` and ``submit(key, migrate)``) so unit tests
drive it with scripted nodes. Rules it follows:
- an unsealed node is left alone (no key sent);
- keys go one at a time and stop as soon as the node unseals, so no more keys than needed are sent;
- a raft follower that joins through retry_join is uninitialized until the leader is unsealed, and it
  reports ``sealed: true`` with progress reset right after its last key while it joins: both are waited
  for, never treated as failures and never answered by sending keys again;
- a wrong key or an unreachable node fails that node only; the others are still unsealed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.trustroot.ops.plugins.module_utils._vault import SEAL_STATUS, VaultError


def new_node_result(url):
    return {'url': url, 'sealed_before': None, 'sealed': None, 'initialized': None, 'changed': False,
            'keys_submitted': 0, 'waited_for_join': False, 'error': None}


class UnsealRun(object):
    """State of one unseal pass over several nodes."""

    def __init__(self, nodes, keys, migrate=False, wait_timeout=120, poll_interval=1.0, check_mode=False,
                 clock=time.monotonic, sleep=time.sleep):
        self.nodes = nodes
        self.keys = list(keys)
        self.migrate = migrate
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self.check_mode = check_mode
        self.clock = clock
        self.sleep = sleep
        self.results = [new_node_result(node.url) for node in nodes]
        # Nodes that got a whole threshold of keys and now only need time (raft join).
        self._keys_done = set()

    def run(self):
        deadline = self.clock() + self.wait_timeout
        pending = list(range(len(self.nodes)))
        while pending:
            pending = [i for i in pending if not self._step(i)]
            if not pending:
                break
            if self.clock() >= deadline:
                for i in pending:
                    self.results[i]['error'] = self._timeout_reason(i)
                break
            self.sleep(self.poll_interval)
        return self.results

    def _timeout_reason(self, index):
        result = self.results[index]
        if result['initialized'] is False:
            return 'not initialized after %ss (a raft follower joins only once a leader is unsealed)' % self.wait_timeout
        if index in self._keys_done:
            return 'still sealed %ss after its last key (raft join did not finish)' % self.wait_timeout
        return 'still sealed after %ss' % self.wait_timeout

    def _step(self, index):
        """Advance one node; True when it needs nothing more (unsealed, failed, or check mode decided)."""
        node, result = self.nodes[index], self.results[index]
        try:
            status = node.seal_status()
        except VaultError as exc:
            result['error'] = exc.reason
            return True
        result['initialized'] = bool(status.get('initialized'))
        if result['sealed_before'] is None:
            result['sealed_before'] = bool(status.get('sealed'))
        result['sealed'] = bool(status.get('sealed'))
        if not status.get('sealed'):
            return True
        if not status.get('initialized'):
            if self.check_mode:
                # It would be unsealed once it joins; waiting here would change nothing.
                result['changed'] = True
                return True
            result['waited_for_join'] = True
            return False
        if index in self._keys_done:
            result['waited_for_join'] = True
            return False
        needed = max(int(status.get('t') or 0) - int(status.get('progress') or 0), 0)
        if needed > len(self.keys):
            result['error'] = 'needs %d more key(s), %d given' % (needed, len(self.keys))
            return True
        if self.check_mode:
            result['changed'] = True
            return True
        return self._submit_keys(index, status)

    def _submit_keys(self, index, status):
        node, result = self.nodes[index], self.results[index]
        for key in self.keys:
            try:
                answer = node.submit(key, self.migrate)
            except VaultError as exc:
                result['error'] = 'key rejected or node failed: %s' % exc.reason
                return True
            result['keys_submitted'] += 1
            result['changed'] = True
            if not answer.get('sealed'):
                result['sealed'] = False
                return True
            if int(answer.get('progress') or 0) == 0:
                # Threshold reached, progress reset, still sealed: a raft follower finishing its join.
                self._keys_done.add(index)
                result['waited_for_join'] = True
                return False
        result['error'] = 'still sealed after all %d key(s): progress %s of %s' % (
            len(self.keys), answer.get('progress'), answer.get('t'))
        return True


class UnsealClient(object):
    """Adapts a VaultNode to the two calls UnsealRun uses."""

    def __init__(self, node):
        self.node = node
        self.url = node.url

    def seal_status(self):
        return self.node.seal_status()

    def submit(self, key, migrate):
        payload = {'key': key}
        if migrate:
            payload['migrate'] = True
        return self.node.call('PUT', 'sys/unseal', auth=False, json=payload, expect=SEAL_STATUS)


def summarize_unseal(results):
    failed = [r for r in results if r['error']]
    return {
        'changed': any(r['changed'] for r in results),
        'all_unsealed': not failed and all(r['sealed'] is False for r in results),
        'failed_nodes': [r['url'] for r in failed],
        'message': '; '.join('%s: %s' % (r['url'], r['error']) for r in failed),
    }

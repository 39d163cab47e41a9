"""Fault drill on a real spire-server: the server is SIGKILLed while spire_entry converges 10,000 entries in batches.

The kill is triggered by what the server holds (a thread counts the entries through the server's own API and kills
it once a share of them exist), not by a sleep: the run is then in the middle of its batches whatever the speed of
the machine."""

import collections
import json
import signal
import threading
import time

from tests.lab.spire import spire_server_module_args

TOTAL = 10000
KILL_AT = 2000
PREFIX = 'drill'


def entry_count(server):
    proc = server.cli_raw(['entry', 'count'], timeout=30)
    if proc.returncode != 0:
        return None
    return int(json.loads(proc.stdout).get('count') or 0)


def kill_when_count_reaches(server, threshold):
    """Start a thread that SIGKILLs ``server`` once it holds ``threshold`` entries; returns (thread, record)."""
    record = {'count_at_kill': None}
    proc = server.proc

    def watch():
        while proc.poll() is None:
            count = entry_count(server)
            if count is not None and count >= threshold:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                record['count_at_kill'] = count
                return
            time.sleep(0.2)   # about 50 entries at the server's pace: the kill still lands mid-run
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, record


def entry_keys(server):
    """(spiffe_id, parent_id, sorted selectors) of every stored entry, read with the raw CLI."""
    keys = []
    for entry in server.entries():
        keys.append(('spiffe://%s%s' % (entry['spiffe_id']['trust_domain'], entry['spiffe_id']['path']),
                     'spiffe://%s%s' % (entry['parent_id']['trust_domain'], entry['parent_id']['path']),
                     tuple(sorted('%s:%s' % (s['type'], s['value']) for s in entry['selectors']))))
    return keys


def test_server_killed_mid_batch_run_then_rerun_converges(ansible, spire_server, tmp_path):
    parent = spire_server.spiffe_id('agent/drill')
    entries = [{'spiffe_id': spire_server.spiffe_id('drill/w%d' % i), 'parent_id': parent,
                'selectors': ['unix:uid:%d' % (20000 + i)]} for i in range(TOTAL)]
    wanted = set((e['spiffe_id'], parent, tuple(e['selectors'])) for e in entries)
    path = tmp_path / 'entries.json'
    path.write_text(json.dumps({'entries': entries}))
    args = dict(spire_server_module_args(spire_server), entries_file=str(path), entry_id_prefix=PREFIX,
                batch_size=100, parallel=2, report_limit=5)

    thread, record = kill_when_count_reaches(spire_server, KILL_AT)
    killed = ansible.module('spire_entry', args)
    thread.join(timeout=60)
    assert record['count_at_kill'] is not None, 'the server was never killed: %s' % killed.get('msg')
    assert killed.get('failed') is True, killed
    # The failure names the server's socket and says how far the run got.
    created, unconfirmed = killed['counts']['created'], killed['unconfirmed']
    assert spire_server.socket_path in killed['msg'], killed['msg']
    assert 'applied before this error: %d created, 0 updated, 0 deleted, of %d planned changes' % (
        created, TOTAL) in killed['msg'], killed['msg']
    # The batches in flight when the server died (two at a time) are reported as sent without an answer.
    assert '%d more were sent in commands that got no answer' % unconfirmed in killed['msg'], killed['msg']
    assert 0 < unconfirmed <= 2 * 100 and KILL_AT - 2 * 100 <= created < TOTAL, (created, unconfirmed)
    assert killed['changed'] is True

    spire_server.start()
    survived = entry_keys(spire_server)
    # What the server kept lies between what it confirmed and what was sent to it.
    assert len(survived) == len(set(survived)) and created <= len(survived) <= created + unconfirmed

    rerun = ansible.module('spire_entry', args)
    assert not rerun.get('failed'), rerun.get('msg')
    assert rerun['changed'] is True
    assert rerun['counts']['created'] + rerun['counts']['unchanged'] == TOTAL, rerun['counts']
    assert rerun['counts']['unchanged'] == len(survived), rerun['counts']

    stored = entry_keys(spire_server)
    duplicates = [key for key, n in collections.Counter(stored).items() if n > 1]
    assert duplicates == [] and len(stored) == TOTAL and set(stored) == wanted

    third = ansible.module('spire_entry', args)
    assert not third.get('failed'), third.get('msg')
    assert third['changed'] is False and third['counts']['unchanged'] == TOTAL, third['counts']

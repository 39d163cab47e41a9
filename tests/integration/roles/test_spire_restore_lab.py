"""spire_server_backup on a real systemd host (the spire_server role's install): a backup of a server with
registration entries, a wiped server (datastore and keys deleted: a new CA), a restore that brings the bundle
and the entries back, a second restore that changes nothing, a tampered archive that fails before the
service is touched, and, through the role's restore entry point, an archive whose keys.json is another
server's (the wiped one's): refused before the service is touched, restored with a warning when forced."""

import base64
import json
import os
import sys
import time

import pytest

from tests.lab import hosts as labhosts
from tests.lab.common import COLLECTIONS_PATH
from tests.lab.stack import TRUST_DOMAIN, Stack, failure_report

sys.path.insert(0, COLLECTIONS_PATH)
from ansible_collections.trustroot.ops.plugins.module_utils._backup.archive import write_archive  # noqa: E402
from ansible_collections.trustroot.ops.plugins.module_utils._backup.verify import verify_archive  # noqa: E402

LAB = 'spire-restore'
HOST = 'spire-server1'
SOCKET = '/run/spire/server/private/api.sock'
DATA = '/var/lib/spire/server'
DEST = '/var/backups/spire'
ENTRIES = 30


@pytest.fixture(scope='module')
def stack():
    stack = Stack.from_layer(LAB, groups={'spire_servers': [HOST]})
    try:
        yield stack
    finally:
        labhosts.destroy(LAB)


def spire(stack, *args):
    proc = stack.lab.exec(HOST, ['spire-server'] + list(args) + ['-socketPath', SOCKET, '-output', 'json'],
                          check=True)
    return json.loads(proc.stdout)


def authorities(stack):
    return sorted(a['asn1'] for a in spire(stack, 'bundle', 'show')['x509_authorities'])


def main_pid(stack):
    return stack.lab.exec(HOST, ['systemctl', 'show', '-p', 'MainPID', '--value', 'spire-server'],
                          check=True).stdout.strip()


def run_tasks(stack, tmp_path, name, tasks, check=False):
    """Run ``tasks`` (each registered as r<i>, ignore_errors) on the server host; return the registered results."""
    out = tmp_path / ('%s.json' % name)
    body = []
    for index, task in enumerate(tasks):
        body.append(dict(task, register='r%d' % index, ignore_errors=True))
    body.append({'name': 'save results', 'delegate_to': 'localhost', 'check_mode': False, 'diff': False,
                 'ansible.builtin.copy': {'content': '{{ [%s] | to_json }}' % ', '.join(
                     'r%d' % i for i in range(len(tasks))), 'dest': str(out), 'mode': '0600'}})
    play = [{'name': name, 'hosts': 'spire_servers', 'gather_facts': False, 'tasks': body}]
    path = tmp_path / ('%s.yml' % name)
    path.write_text(json.dumps(play))
    proc = stack.run(str(path), ['--check'] if check else [], timeout=600)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads(out.read_text())


def backup_task(**extra):
    args = {'socket_path': SOCKET, 'dest_dir': DEST}
    args.update(extra)
    return {'name': 'spire_server_backup', 'trustroot.ops.spire_server_backup': args}


def mixed_archive(archive, keys, directory):
    """An archive in the format of _backup of ``archive``'s parts and manifest info, with the keys.json ``keys``
    (bytes) instead of its own (as an operator assembling the pair by hand would make it); returns its path."""
    parts_dir = os.path.join(directory, 'parts')
    os.makedirs(parts_dir)
    manifest = verify_archive(archive, extract_to=parts_dir)
    keys_path = os.path.join(directory, 'other-keys.json')
    with open(os.open(keys_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), 'wb') as handle:
        handle.write(keys)
    parts = [(name, os.path.join(parts_dir, name)) for name in sorted(manifest['parts']) if name != 'keys.json']
    out = os.path.join(directory, 'out')
    os.makedirs(out)
    sidecar = write_archive(out, 'spire-server', parts + [('keys.json', keys_path)], manifest['info'])
    return os.path.join(out, sidecar['archive'])


def role_restores(stack, tmp_path, archive):
    """The role's restore entry point twice in one play: ``archive`` as it is (refused), then with
    spire_server_restore_force_key_mismatch; returns (refused, MainPID between the two, forced, output)."""
    out = tmp_path / 'mismatch.json'
    restore = {'name': 'trustroot.ops.spire_server', 'tasks_from': 'restore'}
    play = [{'name': 'mismatch', 'hosts': 'spire_servers', 'gather_facts': False, 'tasks': [
        {'name': 'restore (refused)', 'ignore_errors': True, 'ansible.builtin.import_role': restore,
         'vars': {'spire_server_restore_archive': archive}},
        {'name': 'keep the refusal', 'ansible.builtin.set_fact': {'refused': '{{ spire_server_restore }}'}},
        {'name': 'main PID', 'ansible.builtin.command': 'systemctl show -p MainPID --value spire-server',
         'register': 'pid', 'changed_when': False},
        {'name': 'restore (forced)', 'ignore_errors': True, 'ansible.builtin.import_role': restore,
         'vars': {'spire_server_restore_archive': archive, 'spire_server_restore_force_key_mismatch': True}},
        {'name': 'save results', 'delegate_to': 'localhost', 'ansible.builtin.copy': {
            'content': '{{ [refused, pid.stdout, spire_server_restore] | to_json }}', 'dest': str(out), 'mode': '0600'}},
    ]}]
    path = tmp_path / 'mismatch.yml'
    path.write_text(json.dumps(play))
    proc = stack.run(str(path), timeout=600)
    assert out.exists(), failure_report(proc)
    return json.loads(out.read_text()) + [proc.stdout + proc.stderr]


def test_backup_wipe_restore_and_a_tampered_archive(stack, tmp_path):
    entries = [{'spiffe_id': 'spiffe://%s/restore/w%d' % (TRUST_DOMAIN, i),
                'parent_id': 'spiffe://%s/node/restore' % TRUST_DOMAIN,
                'selectors': [{'type': 'unix', 'value': 'uid:%d' % (4000 + i)}]} for i in range(ENTRIES)]
    stack.lab.exec(HOST, ['sh', '-c', 'umask 077; printf %s "$1" > /root/entries.json', 'sh',
                          json.dumps({'entries': entries})], check=True)
    created = spire(stack, 'entry', 'create', '-data', '/root/entries.json')['results']
    assert all(r['status']['code'] == 0 for r in created)
    count = spire(stack, 'entry', 'count')['count']
    assert count >= ENTRIES
    original = authorities(stack)

    [mkdir, saved] = run_tasks(stack, tmp_path, 'backup', [
        {'name': 'backup directory', 'ansible.builtin.file': {'path': DEST, 'state': 'directory', 'mode': '0700'}},
        backup_task()])
    assert not mkdir.get('failed'), mkdir
    assert not saved.get('failed') and saved['changed'], saved
    assert saved['info']['entry_count'] == count
    archive = saved['archive']
    assert archive.startswith(DEST + '/spire-server-') and archive.endswith('.tar.gz')
    original_archive = tmp_path / os.path.basename(archive)     # a copy on the controller, and its sidecar
    for source, copy in ((archive, original_archive), (archive + '.json', tmp_path / (original_archive.name + '.json'))):
        copy.write_bytes(base64.b64decode(stack.lab.exec(HOST, ['base64', '-w0', source], check=True).stdout))

    # Wipe: a new datastore and new keys, so a new CA and no entries.
    stack.lab.exec(HOST, ['systemctl', 'stop', 'spire-server'], check=True)
    stack.lab.exec(HOST, ['sh', '-c', 'rm -f %s/datastore.sqlite3* %s/keys.json' % (DATA, DATA)], check=True)
    stack.lab.exec(HOST, ['systemctl', 'start', 'spire-server'], check=True)
    stack.lab.exec(HOST, ['sh', '-c', 'for i in $(seq 60); do spire-server healthcheck -socketPath %s && exit 0; '
                                      'sleep 1; done; exit 1' % SOCKET], check=True, timeout=90)
    assert authorities(stack) != original
    assert spire(stack, 'entry', 'count')['count'] == 0
    wiped_pid = main_pid(stack)
    # The wiped server is another server of the same trust domain: its keys.json holds none of the backup's keys.
    other_keys = stack.lab.exec(HOST, ['cat', DATA + '/keys.json'], check=True).stdout.encode()

    [check] = run_tasks(stack, tmp_path, 'restore-check', [backup_task(state='restored')], check=True)
    assert not check.get('failed') and check['changed'] and check['restored'] is False, check
    assert main_pid(stack) == wiped_pid

    [first, second] = run_tasks(stack, tmp_path, 'restore', [backup_task(state='restored'),
                                                             backup_task(state='restored')])
    assert not first.get('failed'), first
    assert first['changed'] is True and first['restored'] is True and first['archive'] == archive
    assert [c['name'] for c in first['checks'] if not c['ok']] == []
    assert {c['name'] for c in first['checks']} >= {'healthcheck', 'trust_domain', 'x509_authorities', 'entry_count',
                                                    'entries_sha256'}
    assert authorities(stack) == original
    assert spire(stack, 'entry', 'count')['count'] == count
    assert not second.get('failed') and second['changed'] is False and second['restored'] is False, second
    owner = stack.lab.exec(HOST, ['stat', '-c', '%U:%G %a', DATA + '/keys.json', DATA + '/datastore.sqlite3'],
                           check=True).stdout.split('\n')
    assert owner[:2] == ['spire:spire 600', 'spire:spire 600']

    # A tampered archive (one byte appended) fails the checksum before the service is touched.
    restored_pid = main_pid(stack)
    stack.lab.exec(HOST, ['sh', '-c', 'printf x >> "$1"', 'sh', archive], check=True)
    [tampered] = run_tasks(stack, tmp_path, 'tampered', [backup_task(state='restored', path=archive, force=True)])
    assert tampered.get('failed') and 'checksum mismatch' in tampered['msg'], tampered
    assert tampered['changed'] is False
    assert main_pid(stack) == restored_pid
    assert authorities(stack) == original
    leftovers = stack.lab.exec(HOST, ['sh', '-c', 'ls -A %s | grep -c restore || true' % DATA], check=True).stdout
    assert leftovers.strip() == '0'
    assert os.path.basename(archive).startswith('spire-server-')

    # The backup's datastore with the wiped server's keys.json: refused before the service is touched, then
    # restored with a warning when forced (SPIRE finds no key for the journal's CA and prepares a new one).
    started = time.monotonic()
    mixed = mixed_archive(str(original_archive), other_keys, str(tmp_path / 'mixed'))
    refused, pid_between, forced, output = role_restores(stack, tmp_path, mixed)
    name = os.path.basename(mixed)
    assert refused.get('failed') and refused['changed'] is False and refused['restored'] is False, refused
    assert 'its keys.json does not belong to its datastore.sqlite3' in refused['msg'] and name in refused['msg']
    assert "does not hold the key of the datastore's CA journal active X.509 CA slot" in refused['msg']
    assert 'force_key_mismatch=true' in refused['msg']
    assert pid_between == restored_pid
    assert not forced.get('failed'), forced
    assert forced['changed'] is True and forced['restored'] is True, forced
    assert len(forced['key_mismatch']) == 2 and 'x509-CA-' in forced['key_mismatch'][0], forced['key_mismatch']
    assert [c['name'] for c in forced['checks'] if not c['ok']] == [], forced['checks']
    assert [w for w in forced.get('warnings') or [] if w.startswith('force_key_mismatch: restoring ') and name in w
            and 'does not belong to its datastore.sqlite3' in w], forced.get('warnings')
    assert '[WARNING]: force_key_mismatch: restoring' in output
    assert main_pid(stack) not in (restored_pid, '0')
    stack.lab.exec(HOST, ['spire-server', 'healthcheck', '-socketPath', SOCKET], check=True)
    after = authorities(stack)
    assert set(original) < set(after)     # the backup's authorities and the new CA's
    assert spire(stack, 'entry', 'count')['count'] == count
    print('mismatched pair (refused, forced): %.1f s' % (time.monotonic() - started))

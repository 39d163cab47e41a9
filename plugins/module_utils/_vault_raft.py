# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Integrated storage (raft): peers, autopilot, join, remove-peer, snapshots.

Decisions are pure functions (which state options apply, whether a removal is safe, whether a node is
already a member, what a snapshot's metadata says); the calls to servers and the streaming to and from
files sit at the bottom and are used by the vault_raft and vault_raft_snapshot modules.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import collections
import datetime
import json
import os
import re
import time

from ansible_collections.trustroot.ops.plugins.module_utils._files import (
    WriteBehind, atomic_write, atomic_writer, check_writable_target, sha256_and_size)
from ansible_collections.trustroot.ops.plugins.module_utils._vault import (
    LEADER, RAFT_CONFIGURATION, Optional, VaultError, detect_flavour, nodes_from_params, normalize_url, shape_problem,
    url_problem)
from ansible_collections.trustroot.ops.plugins.module_utils._vault_status import shape_raft_peers
from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError

try:
    from requests.exceptions import RequestException
except ImportError:  # reported by ensure_hvac() before anything here runs
    class RequestException(Exception):
        pass

METADATA_FORMAT = 'trustroot.ops/raft-snapshot/v1'
GZIP_MAGIC = b'\x1f\x8b'
SHA256_RE = re.compile(r'^[0-9a-fA-F]{64}$')
TIME_FORMAT = '%Y-%m-%dT%H:%M:%SZ'
# Bytes held in memory at a time while downloading, hashing or uploading a snapshot.
CHUNK = 64 * 1024


class RaftError(TrustrootError):
    """A refused or failed raft operation; the message names the field and the rule where one applies."""


# --- vault_raft: options per state ------------------------------------------------------------------

# Options that only mean something for one state. Connection options and ``state`` apply everywhere.
STATE_OPTIONS = {
    'joined': ('leader_api_addr', 'leader_ca_cert', 'leader_client_cert', 'leader_client_key',
               'leader_tls_servername', 'auto_join', 'auto_join_scheme', 'auto_join_port', 'retry',
               'non_voter'),
    'removed': ('server_id', 'force'),
    'show': (),
}

# Defaults of the state options (set values equal to these count as "not given").
STATE_OPTION_DEFAULTS = {'retry': False, 'non_voter': False, 'force': False}

PEM_RE = re.compile(r'-----BEGIN [A-Z0-9 ]+-----')


def state_option_errors(params):
    """Messages for options given with a state they do not apply to, and for malformed join options."""
    state = params.get('state') or 'show'
    errors = []
    for other_state, names in sorted(STATE_OPTIONS.items()):
        if other_state == state:
            continue
        for name in names:
            value = params.get(name)
            if value is None or value == STATE_OPTION_DEFAULTS.get(name, None):
                continue
            errors.append('%s applies only to state=%s, not state=%s' % (name, other_state, state))
    if state == 'removed' and not params.get('server_id'):
        errors.append('server_id is required with state=removed')
    if state == 'joined':
        if not params.get('leader_api_addr') and not params.get('auto_join'):
            errors.append('leader_api_addr (or auto_join) is required with state=joined')
        address = params.get('leader_api_addr')
        problem = url_problem(address) if address else None
        if problem:
            errors.append('leader_api_addr %s' % problem)
        for name in ('leader_ca_cert', 'leader_client_cert', 'leader_client_key'):
            value = params.get(name)
            if value and not PEM_RE.search(value):
                # Never echo the value: leader_client_key is a secret.
                errors.append('%s must be PEM text (-----BEGIN ...-----), not a file name; '
                              'read a file with lookup(\'file\', ...)' % name)
        if bool(params.get('leader_client_cert')) != bool(params.get('leader_client_key')):
            errors.append('leader_client_cert and leader_client_key must be given together')
        port = params.get('auto_join_port')
        if port is not None and not 0 < port < 65536:
            errors.append('auto_join_port must be between 1 and 65535, got %s' % port)
    return errors


def join_payload(params):
    """The body of sys/storage/raft/join from the module options (only the options that are set)."""
    payload = {}
    for name in ('leader_api_addr', 'leader_ca_cert', 'leader_client_cert', 'leader_client_key',
                 'leader_tls_servername', 'auto_join', 'auto_join_scheme', 'auto_join_port'):
        if params.get(name) not in (None, ''):
            payload[name] = params[name]
    if payload.get('leader_api_addr'):
        payload['leader_api_addr'] = normalize_url(payload['leader_api_addr'])
    payload['retry'] = bool(params.get('retry'))
    payload['non_voter'] = bool(params.get('non_voter'))
    return payload


# --- vault_raft: peers and autopilot ----------------------------------------------------------------

def shape_autopilot(state):
    """sys/storage/raft/autopilot/state -> stable shape with servers as a list sorted by id."""
    servers = []
    for key, server in sorted((state.get('servers') or {}).items()):
        servers.append({
            'id': server.get('id') or key,
            'name': server.get('name'),
            'address': server.get('address'),
            'node_status': server.get('node_status'),
            'status': server.get('status'),
            'node_type': server.get('node_type'),
            'healthy': bool(server.get('healthy')),
            'last_contact': server.get('last_contact'),
            'last_term': server.get('last_term'),
            'last_index': server.get('last_index'),
            'stable_since': server.get('stable_since'),
            'version': server.get('version'),
        })
    return {
        'healthy': bool(state.get('healthy')),
        'failure_tolerance': state.get('failure_tolerance'),
        'leader': state.get('leader'),
        'voters': list(state.get('voters') or []),
        'servers': servers,
    }


def leader_peer(peers):
    for peer in peers:
        if peer['leader']:
            return peer['node_id']
    return None


def quorum(voters):
    """Votes a raft configuration of ``voters`` voters needs to commit: a strict majority."""
    return voters // 2 + 1


def removal_decision(peers, server_id, autopilot=None, force=False):
    """Decide a removal of ``server_id`` from ``peers`` (shape_raft_peers entries).

    Returns a dict: ``action`` is 'none' (not a peer), 'remove' or 'refuse'; ``reason`` explains it;
    ``peers_after`` is the configuration after the removal. The rule, unless ``force``:

    * the current leader is never removed (step it down first, or remove it from another node's view
      after a new leader is elected);
    * a voter is removed only when the voters that remain and are healthy (the leader, and every other
      voter autopilot reports healthy) are at least a quorum (a strict majority) of the voters that
      remain. Without autopilot state only the leader counts as healthy.

    Removing a non-voter never changes the quorum and is always allowed.
    """
    target = [p for p in peers if p['node_id'] == server_id]
    after = [p for p in peers if p['node_id'] != server_id]
    if not target:
        return {'action': 'none', 'reason': '%s is not a raft peer' % server_id, 'peers_after': list(peers)}
    target = target[0]
    decision = {'action': 'remove', 'reason': None, 'peers_after': after}
    if force:
        decision['reason'] = 'forced'
        return decision
    if target['leader']:
        decision.update(action='refuse', reason=(
            'server_id %s is the current raft leader: removing it is refused unless force=true '
            '(step the leader down first so another node leads)' % server_id))
        return decision
    if not target['voter']:
        decision['reason'] = '%s is a non-voter; the quorum does not change' % server_id
        return decision
    remaining = [p for p in after if p['voter']]
    healthy = set()
    if autopilot is not None:
        healthy = set(s['id'] for s in autopilot.get('servers') or [] if s.get('healthy'))
    healthy_remaining = [p['node_id'] for p in remaining if p['leader'] or p['node_id'] in healthy]
    needed = quorum(len(remaining))
    if not remaining or len(healthy_remaining) < needed:
        decision.update(action='refuse', reason=(
            'removing server_id %s would leave %d healthy voter(s) (%s) of %d remaining voters, fewer than '
            'the quorum of %d: refused unless force=true%s' % (
                server_id, len(healthy_remaining), ', '.join(healthy_remaining) or 'none', len(remaining),
                needed, '' if autopilot is not None else ' (autopilot state unavailable: only the leader '
                'counts as healthy)')))
        return decision
    decision['reason'] = '%d of %d remaining voters are healthy, quorum is %d' % (
        len(healthy_remaining), len(remaining), needed)
    return decision


def peers_diff(before, after):
    return {'before': {'peers': before}, 'after': {'peers': after}}


# --- vault_raft: join -------------------------------------------------------------------------------

JOIN_NOT_JOINED = 'not_joined'
JOIN_PENDING_UNSEAL = 'pending_unseal'
JOIN_JOINED = 'joined'
JOIN_OTHER_CLUSTER = 'other_cluster'


def join_status(node_seal, leader_seal=None):
    """Where a node stands toward the cluster of the leader, from both seal-status answers.

    * not_joined: the node's storage is not initialized (a fresh node; join is needed);
    * pending_unseal: initialized but sealed (a joined node waits for its unseal keys; while sealed its
      cluster cannot be read, so it is taken as the member it claims to be);
    * joined: unsealed, and in the leader's cluster (same cluster_id, or the leader's unknown);
    * other_cluster: unsealed with another cluster_id than the leader's.
    """
    if not node_seal.get('initialized'):
        return JOIN_NOT_JOINED
    if node_seal.get('sealed'):
        return JOIN_PENDING_UNSEAL
    node_cluster = node_seal.get('cluster_id')
    leader_cluster = (leader_seal or {}).get('cluster_id')
    if node_cluster and leader_cluster and node_cluster != leader_cluster:
        return JOIN_OTHER_CLUSTER
    return JOIN_JOINED


# --- vault_raft_snapshot: files and metadata --------------------------------------------------------

def metadata_path(path):
    return path + '.json'


def utc_timestamp(epoch=None):
    return time.strftime(TIME_FORMAT, time.gmtime(time.time() if epoch is None else epoch))


def parse_timestamp(value):
    """'2026-01-02T03:04:05Z' -> epoch seconds; None when unparseable."""
    try:
        return calendar.timegm(datetime.datetime.strptime(value, TIME_FORMAT).timetuple())
    except (TypeError, ValueError):
        return None


def build_metadata(sha256, size, seal_status, leader_url, leader_node_id, created=None, path=None):
    flavour, _parsed, version = detect_flavour(seal_status or {})
    return {
        'format': METADATA_FORMAT,
        'file': os.path.basename(path) if path else None,
        'sha256': sha256,
        'size': size,
        'cluster_id': (seal_status or {}).get('cluster_id'),
        'cluster_name': (seal_status or {}).get('cluster_name'),
        'flavour': flavour,
        'version': version,
        'leader_url': leader_url,
        'leader_node_id': leader_node_id,
        'created': created or utc_timestamp(),
    }


def serialize_metadata(metadata):
    return (json.dumps(metadata, indent=2, sort_keys=True) + '\n').encode('utf-8')


def metadata_errors(metadata):
    """Why a parsed metadata document is not usable (empty list when it is)."""
    if not isinstance(metadata, dict):
        return ['not a JSON object']
    errors = []
    if metadata.get('format') != METADATA_FORMAT:
        errors.append('format is not %s' % METADATA_FORMAT)
    if not SHA256_RE.match(str(metadata.get('sha256') or '')):
        errors.append('sha256 is not 64 hex digits')
    size = metadata.get('size')
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        errors.append('size is not a positive integer')
    if parse_timestamp(metadata.get('created')) is None:
        errors.append('created is not a UTC timestamp (%s)' % TIME_FORMAT)
    return errors


def read_metadata(path):
    """(metadata, None) for the metadata file of snapshot ``path``; (None, reason) when absent or invalid."""
    meta_path = metadata_path(path)
    try:
        with open(meta_path, 'rb') as handle:
            data = handle.read(1024 * 1024)
    except (IOError, OSError) as exc:
        return None, 'cannot read %s: %s' % (meta_path, exc.strerror or exc)
    try:
        metadata = json.loads(data.decode('utf-8'))
    except ValueError:
        return None, '%s is not JSON' % meta_path
    errors = metadata_errors(metadata)
    if errors:
        return None, '%s is not snapshot metadata: %s' % (meta_path, '; '.join(errors))
    return metadata, None


def snapshot_age(metadata, now=None):
    created = parse_timestamp(metadata.get('created'))
    if created is None:
        return None
    return (time.time() if now is None else now) - created


def fresh_snapshot(path, max_age, now=None):
    """Metadata of the snapshot at ``path`` when it is younger than ``max_age`` seconds and intact
    (size and sha256 match its metadata); otherwise None and the reason it does not count."""
    if not os.path.isfile(path):
        return None, '%s does not exist' % path
    metadata, reason = read_metadata(path)
    if metadata is None:
        return None, reason
    age = snapshot_age(metadata, now)
    if age is None or age < 0 or age >= max_age:
        return None, 'snapshot is %s seconds old (skip_if_newer_than is %s)' % (
            'an unknown number of' if age is None else int(age), max_age)
    problem = verify_snapshot_file(path, metadata['sha256'], metadata['size'])
    if problem:
        return None, problem
    return metadata, None


def verify_snapshot_file(path, expected_sha256, expected_size=None):
    """None when the file at ``path`` is a non-empty gzip stream with the expected checksum (and size),
    else the reason (the message names the file and both values)."""
    try:
        with open(path, 'rb') as handle:
            head = handle.read(len(GZIP_MAGIC))
    except (IOError, OSError) as exc:
        return 'cannot read %s: %s' % (path, exc.strerror or exc)
    if not head:
        return '%s is empty (0 bytes): not a snapshot' % path
    if head != GZIP_MAGIC:
        return '%s is not a raft snapshot (not gzip data)' % path
    sha256, size = sha256_and_size(path)
    if expected_size is not None and size != expected_size:
        return 'size mismatch for %s: %d bytes, metadata says %d' % (path, size, expected_size)
    if sha256.lower() != str(expected_sha256).lower():
        return 'sha256 mismatch for %s: file is %s, expected %s' % (path, sha256, expected_sha256)
    return None


def stream_to_file(chunks, path, before_commit=None, mode=0o600):
    """Write an iterable of byte chunks to ``path`` atomically, hashing while writing.

    Memory holds one chunk at a time. An empty stream, a stream that does not start like a gzip file,
    or any error while reading or writing leaves ``path`` as it was (no partial file).
    ``before_commit(sha256, size)`` runs after the last byte and before ``path`` is replaced; an error
    there also leaves ``path`` untouched. Returns (sha256, size).
    """
    started = False
    with atomic_writer(path, mode) as handle:
        # The write and the hash run behind the download (WriteBehind): the next piece comes off the socket while
        # the last one goes to disk.
        with WriteBehind(handle, depth=64) as writer:  # 64 pieces of CHUNK: 4 MiB at most
            for chunk in chunks:
                if not chunk:
                    continue
                if not started and not chunk.startswith(GZIP_MAGIC[:len(chunk)]):
                    raise RaftError('the server sent something that is not a raft snapshot (not gzip data)')
                started = True
                writer.put(chunk)
            sha256, size = writer.finish()
        if size == 0:
            raise RaftError('the server sent an empty (0 byte) snapshot; nothing was written to %s' % path)
        if before_commit is not None:
            before_commit(sha256, size)
    return sha256, size


def snapshot_target_errors(path):
    """Why a snapshot cannot be written at ``path`` (and its metadata next to it, in the same directory)."""
    for target in (path, metadata_path(path)):
        reason = check_writable_target(target)
        if reason:
            return ['path %s: %s' % (target, reason)]
        if os.path.exists(target) and not os.access(target, os.W_OK):
            # A rename would replace it, but a read-only file is a sign it is not ours to replace.
            return ['path %s: exists and is not writable' % target]
    return []


# --- calls to servers --------------------------------------------------------------------------------

# What shape_autopilot reads; the per-server fields stay optional (they differ between versions).
AUTOPILOT_STATE = {'healthy': bool, 'servers': dict, 'leader': Optional(str), 'voters': Optional([str]),
                   'failure_tolerance': Optional(int)}
AUTOPILOT_SERVER = {'healthy': bool, 'id': Optional(str), 'address': Optional(str)}


def read_peers(node):
    return shape_raft_peers(node.call('GET', 'sys/storage/raft/configuration', expect=RAFT_CONFIGURATION))


def read_autopilot(node):
    """(autopilot shape, None) or (None, error) — autopilot may be missing or forbidden to the token."""
    try:
        state = node.call('GET', 'sys/storage/raft/autopilot/state', expect=AUTOPILOT_STATE)
    except VaultError as exc:
        return None, str(exc)
    for server_id, server in state['servers'].items():
        problem = shape_problem(server, AUTOPILOT_SERVER)
        if problem:
            return None, '%s: GET sys/storage/raft/autopilot/state answered %s for server %s' % (
                node.url, problem, server_id)
    return shape_autopilot(state), None


def remove_peer(node, server_id):
    node.call('POST', 'sys/storage/raft/remove-peer', json={'server_id': server_id})


def join(node, payload):
    """POST sys/storage/raft/join on the node to join. The endpoint is unauthenticated: no token is sent."""
    return node.call('POST', 'sys/storage/raft/join', auth=False, json=payload, expect={'joined': bool})


def ask_leader(node):
    """sys/leader of one node: (answer, None) or (None, why it cannot say)."""
    try:
        status, body = node.raw('GET', 'sys/leader', auth=False, ok_statuses=(503,))
    except VaultError as exc:
        return None, str(exc)
    if status == 503:
        return None, '%s: sealed' % node.url
    problem = shape_problem(body, LEADER)
    if problem:
        return None, '%s: GET sys/leader answered %s' % (node.url, problem)
    if not body['ha_enabled']:
        return None, '%s: HA is not enabled' % node.url
    return body, None


def find_leader(urls, make_node):
    """The active node among ``urls`` (or the address they point at): (VaultNode, notes).

    Nodes are asked in order; a node that names the leader sends the search to that URL next, so a
    stopped or sealed node costs one failed call. ``notes`` lists the nodes skipped and why. Raises
    RaftError when no node leads.
    """
    queue = collections.deque(normalize_url(u) for u in urls)
    asked = set()
    notes = []
    while queue:
        url = queue.popleft()
        if url in asked:
            continue
        asked.add(url)
        node = make_node(url)
        answer, problem = ask_leader(node)
        if problem:
            notes.append(problem)
            continue
        if answer.get('is_self'):
            return node, notes
        address = normalize_url(answer.get('leader_address') or '')
        if address and address not in asked:
            if address in queue:
                queue.remove(address)
            queue.appendleft(address)
        notes.append('%s: standby (leader is %s)' % (url, address or 'unknown'))
    raise RaftError('no active node found among nodes: %s' % '; '.join(notes or ['no node given']))


def leader_node_id(node):
    """node_id of the raft leader as the node sees it (None when the token cannot read the peers)."""
    try:
        return leader_peer(read_peers(node))
    except VaultError:
        return None


def snapshot_interrupted(url, path, exc):
    """The message for a download cut off in the middle (the node died, the connection broke): names the node,
    the call and the file left as it was (pure)."""
    return ('%s: GET sys/storage/raft/snapshot was cut off before the end of the snapshot (%s); %s was left as it '
            'was and no partial file was kept' % (url, exc.__class__.__name__, path))


def take_snapshot(node, path, before_commit=None):
    """Stream sys/storage/raft/snapshot from ``node`` into ``path``; returns (sha256, size)."""
    response = node.stream('GET', 'sys/storage/raft/snapshot')
    try:
        try:
            return stream_to_file(response.iter_content(CHUNK), path, before_commit=before_commit)
        except RequestException as exc:
            raise RaftError(snapshot_interrupted(node.url, path, exc))
    finally:
        response.close()


def save_snapshot(node, path, seal_status, node_id=None):
    """Take a snapshot and write its metadata next to it; returns the metadata."""
    holder = {}

    def write_metadata(sha256, size):
        holder['metadata'] = build_metadata(sha256, size, seal_status, node.url, node_id, path=path)
        atomic_write(metadata_path(path), serialize_metadata(holder['metadata']))

    take_snapshot(node, path, before_commit=write_metadata)
    return holder['metadata']


def restore_snapshot(node, path, force=False):
    """POST the file at ``path`` (streamed from disk) to the node's restore endpoint."""
    endpoint = 'sys/storage/raft/snapshot-force' if force else 'sys/storage/raft/snapshot'
    with open(path, 'rb') as handle:
        node.raw('POST', endpoint, data=handle, headers={'Content-Type': 'application/octet-stream'})
    return endpoint


def snapshot_option_errors(params):
    """Pure. What is wrong with vault_raft_snapshot's options, each naming its option (empty: nothing)."""
    errors = []
    state = params['state']
    if state == 'saved':
        for name in ('sha256', 'force'):
            if params[name]:
                errors.append('%s applies only to state=restored' % name)
        if params['skip_if_newer_than'] is not None and params['skip_if_newer_than'] <= 0:
            errors.append('skip_if_newer_than must be a positive number of seconds, got %s'
                          % params['skip_if_newer_than'])
    else:
        if params['skip_if_newer_than'] is not None:
            errors.append('skip_if_newer_than applies only to state=saved')
        if params['sha256'] is not None and not SHA256_RE.match(params['sha256']):
            errors.append('sha256 must be 64 hexadecimal digits')
    if not nodes_from_params(params):
        errors.append('url or nodes is required (or set VAULT_ADDR / BAO_ADDR)')
    if not params['token']:
        errors.append('token is required to take or restore a raft snapshot (set token or VAULT_TOKEN)')
    return errors

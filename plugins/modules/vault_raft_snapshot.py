#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: vault_raft_snapshot
short_description: Save and restore integrated storage (raft) snapshots of Vault / OpenBao
version_added: 0.1.0
description:
  - O(state=saved) streams C(GET sys/storage/raft/snapshot) from the active node to O(path) and writes a
    metadata file C(<path>.json) next to it (sha256, size, cluster ID and name, flavour, version, leader,
    creation time). The snapshot is written in chunks through a temporary file in the same directory
    (mode 0600) that replaces O(path) only when the download is complete, so memory use does not grow
    with the snapshot and a failed or interrupted download leaves no partial file. An empty answer is
    an error.
  - O(state=restored) checks the file's sha256 against O(sha256) or against its metadata file, then
    streams it from disk to C(sys/storage/raft/snapshot) (or C(sys/storage/raft/snapshot-force) with
    O(force=true)) on the active node. A checksum mismatch fails before any call to a server.
  - The active node is found with C(sys/leader). The nodes in O(nodes) (or O(url)) are asked in order,
    stopped and sealed nodes are skipped, and a standby's answer points at the leader.
  - Saving is an action; every run takes a new snapshot unless O(skip_if_newer_than) finds a recent,
    intact one at O(path). Restoring is an action; every run restores.
options:
  state:
    description: V(saved) takes a snapshot into O(path); V(restored) restores O(path) into the cluster.
    type: str
    choices: [saved, restored]
    default: saved
  path:
    description:
      - Snapshot file on the host that runs the module. Its metadata is C(<path>.json).
      - With O(state=saved) its directory must exist and be writable.
    type: path
    required: true
  nodes:
    description:
      - URLs of the cluster's nodes, in the order to ask for the leader. When omitted, O(url) is asked.
    type: list
    elements: str
  skip_if_newer_than:
    description:
      - With O(state=saved), no new snapshot is taken (no change) when O(path) holds a snapshot whose
        metadata is valid, whose size and sha256 match the file, and which is younger than this many seconds.
    type: int
  sha256:
    description:
      - With O(state=restored), the expected sha256 of O(path). When omitted, the metadata file
        C(<path>.json) must exist and its checksum and size are checked.
    type: str
  force:
    description:
      - With O(state=restored), use C(sys/storage/raft/snapshot-force). Needed to restore a snapshot taken
        by another cluster (another set of unseal keys or seal), for example into a freshly initialized
        cluster during disaster recovery. Without it the server refuses such a snapshot, and the module
        refuses before the call when the metadata's cluster ID differs from the target's.
      - After a forced restore the cluster uses the snapshot's keys; unseal it with the keys and tokens
        of the cluster the snapshot came from.
    type: bool
    default: false
extends_documentation_fragment:
  - trustroot.ops.vault_connection
attributes:
  check_mode:
    support: full
    description:
      - O(state=saved) finds the leader and reports a change without writing a file.
      - O(state=restored) verifies the file and finds the leader without restoring.
  diff_mode:
    support: full
    description: The snapshot file's checksum before and after, or the cluster and the snapshot restored.
notes:
  - The token needs C(read) on C(sys/storage/raft/snapshot) to save and C(update) on
    C(sys/storage/raft/snapshot) or C(sys/storage/raft/snapshot-force) to restore.
  - A restore replaces all data (secrets, policies, tokens, leases) with the snapshot's.
  - A restore refuses an empty file or one that is not gzip data, before any call to a server.
  - After a forced restore the target seals itself; restart it and unseal it with the keys of the cluster the
    snapshot came from. Its root token and data are then the snapshot's.
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Take a snapshot from whichever node leads, at most one per hour
  trustroot.ops.vault_raft_snapshot:
    nodes:
      - https://vault1.example.com:8200
      - https://vault2.example.com:8200
      - https://vault3.example.com:8200
    token: "{{ vault_token }}"
    path: /var/backups/vault/raft.snap
    skip_if_newer_than: 3600
  register: snapshot

- name: Restore it (checksum from /var/backups/vault/raft.snap.json)
  trustroot.ops.vault_raft_snapshot:
    state: restored
    url: https://vault1.example.com:8200
    token: "{{ vault_token }}"
    path: /var/backups/vault/raft.snap

- name: Restore another cluster's snapshot into a new cluster (disaster recovery)
  trustroot.ops.vault_raft_snapshot:
    state: restored
    url: https://vault-dr1.example.com:8200
    token: "{{ new_cluster_root_token }}"
    path: /var/backups/vault/raft.snap
    sha256: "{{ expected_sha256 }}"
    force: true
'''

RETURN = r'''
path:
  description: The snapshot file.
  returned: always
  type: str
sha256:
  description: sha256 of the snapshot written or restored (null in check mode for O(state=saved)).
  returned: always
  type: str
size:
  description: Size of the snapshot in bytes (null in check mode for O(state=saved)).
  returned: always
  type: int
metadata_path:
  description: The metadata file (C(<path>.json)); for O(state=restored), null when it was not used.
  returned: always
  type: str
metadata:
  description:
    - Contents of the metadata file (format, file, sha256, size, cluster_id, cluster_name, flavour, version,
      leader_url, leader_node_id, created).
  returned: when a metadata file was written or read
  type: dict
leader:
  description: URL of the active node used (for a skipped save, the leader recorded in the metadata).
  returned: always
  type: str
kept_recent:
  description: Whether O(skip_if_newer_than) found a recent snapshot, so none was taken.
  returned: when O(state=saved)
  type: bool
skip_reason:
  description: Why the snapshot at O(path) did not count as recent (missing, too old, metadata invalid, checksum).
  returned: when O(skip_if_newer_than) is set and a snapshot was taken
  type: str
endpoint:
  description: API path the snapshot was (or would be) posted to.
  returned: when O(state=restored)
  type: str
skipped_nodes:
  description: Nodes asked for the leader that were unreachable, sealed or standby, with the reason.
  returned: when a leader was searched
  type: list
  elements: str
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._snapshot_upload import upload_snapshot
from ansible_collections.trustroot.ops.plugins.module_utils._vault import (
    VaultError, VaultNode, connection_argument_spec, ensure_connection, nodes_from_params)
from ansible_collections.trustroot.ops.plugins.module_utils._vault_raft import (
    RaftError, find_leader, fresh_snapshot, leader_node_id, metadata_path, read_metadata, save_snapshot,
    snapshot_option_errors, snapshot_target_errors, verify_snapshot_file)


def locate_leader(module):
    urls = nodes_from_params(module.params)
    return find_leader(urls, lambda url: VaultNode.from_params(module.params, url))


def run_saved(module):
    params = module.params
    path = params['path']
    errors = snapshot_target_errors(path)
    if errors:
        raise InputError('; '.join(errors))
    result = dict(changed=False, path=path, metadata_path=metadata_path(path), sha256=None, size=None,
                  leader=None, kept_recent=False)
    previous, _reason = read_metadata(path)
    if params['skip_if_newer_than']:
        recent, reason = fresh_snapshot(path, params['skip_if_newer_than'])
        if recent:
            result.update(kept_recent=True, sha256=recent['sha256'], size=recent['size'], metadata=recent,
                          leader=recent.get('leader_url'))
            return result
        result['skip_reason'] = reason
    node, notes = locate_leader(module)
    result.update(leader=node.url, skipped_nodes=notes, changed=True)
    before = {'path': path, 'sha256': (previous or {}).get('sha256'), 'created': (previous or {}).get('created')}
    if module.check_mode:
        if module._diff:
            result['diff'] = {'before': before, 'after': {'path': path, 'sha256': '(new snapshot)',
                                                          'created': '(now)'}}
        return result
    seal_status = node.seal_status()
    metadata = save_snapshot(node, path, seal_status, leader_node_id(node))
    result.update(sha256=metadata['sha256'], size=metadata['size'], metadata=metadata)
    if module._diff:
        result['diff'] = {'before': before,
                          'after': {'path': path, 'sha256': metadata['sha256'], 'created': metadata['created']}}
    return result


def run_restored(module):
    params = module.params
    path = params['path']
    metadata, meta_problem = read_metadata(path)
    expected, expected_size = params['sha256'], None
    if expected is None:
        if metadata is None:
            raise InputError('sha256 is required when the metadata file cannot be used: %s' % meta_problem)
        expected, expected_size = metadata['sha256'], metadata['size']
    problem = verify_snapshot_file(path, expected, expected_size)
    if problem:
        raise TrustrootError(problem, results=dict(path=path))
    # From here the file is the snapshot that was asked for.
    node, notes = locate_leader(module)
    endpoint = 'sys/storage/raft/snapshot-force' if params['force'] else 'sys/storage/raft/snapshot'
    current = node.seal_status()
    # The metadata tells where the snapshot came from only when it describes this very file.
    describes_file = bool(metadata) and metadata['sha256'].lower() == expected.lower()
    source_cluster = metadata.get('cluster_id') if describes_file else None
    result = dict(changed=True, path=path, sha256=expected.lower(), size=os.path.getsize(path), leader=node.url,
                  skipped_nodes=notes, endpoint=endpoint,
                  metadata_path=metadata_path(path) if describes_file else None)
    if describes_file:
        result['metadata'] = metadata
    if source_cluster and current.get('cluster_id') and source_cluster != current['cluster_id'] \
            and not params['force']:
        raise TrustrootError('the snapshot is from cluster %s, the target is cluster %s: set force=true to restore '
                             'another cluster\'s snapshot (its unseal keys then apply)' % (
                                 source_cluster, current['cluster_id']), results=dict(result, changed=False))
    if module._diff:
        result['diff'] = {
            'before': {'cluster_id': current.get('cluster_id')},
            'after': {'cluster_id': source_cluster or current.get('cluster_id'), 'restored_from': path,
                      'sha256': expected.lower()}}
    if module.check_mode:
        return result
    upload_snapshot(node, path, force=params['force'])
    return result


def run(module):
    ensure_connection(module)
    errors = snapshot_option_errors(module.params)
    if errors:
        raise InputError('; '.join(errors))
    runner = run_saved if module.params['state'] == 'saved' else run_restored
    try:
        return runner(module)
    except (VaultError, RaftError) as exc:
        raise TrustrootError(str(exc), results=dict(path=module.params['path']))
    except (IOError, OSError) as exc:
        raise TrustrootError('path %s: %s' % (module.params['path'], exc.strerror or exc))


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        state=dict(type='str', default='saved', choices=['saved', 'restored']),
        path=dict(type='path', required=True),
        nodes=dict(type='list', elements='str'),
        skip_if_newer_than=dict(type='int'),
        sha256=dict(type='str'),
        force=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, run)


if __name__ == '__main__':
    main()

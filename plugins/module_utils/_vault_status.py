# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the state of Vault / OpenBao nodes into one stable shape (pure shaping + the reads)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.trustroot.ops.plugins.module_utils._vault import (
    LEADER, RAFT_CONFIGURATION, VaultError, detect_flavour)

# sys/health status codes -> role of the node (Vault and OpenBao agree on these).
HEALTH_STATES = {
    200: 'active',
    429: 'standby',
    472: 'dr_secondary',
    473: 'performance_standby',
    501: 'uninitialized',
    503: 'sealed',
}


def shape_node(url, seal_status, health_code=None, leader=None, raft_config=None):
    """One node's state from its raw answers; every key is always present."""
    flavour, _version_tuple, version = detect_flavour(seal_status)
    node = {
        'url': url,
        'reachable': True,
        'error': None,
        'flavour': flavour,
        'version': version,
        'initialized': bool(seal_status.get('initialized')),
        'sealed': bool(seal_status.get('sealed')),
        'seal_type': seal_status.get('type'),
        'recovery_seal': bool(seal_status.get('recovery_seal')),
        'threshold': seal_status.get('t'),
        'shares': seal_status.get('n'),
        'progress': seal_status.get('progress'),
        'migration': bool(seal_status.get('migration')),
        'storage_type': seal_status.get('storage_type'),
        'cluster_name': seal_status.get('cluster_name'),
        'cluster_id': seal_status.get('cluster_id'),
        'state': HEALTH_STATES.get(health_code, 'unknown' if health_code is not None else None),
        'ha_enabled': None,
        'is_leader': None,
        'leader_address': None,
        'raft_peers': None,
    }
    if leader:
        node['ha_enabled'] = bool(leader.get('ha_enabled'))
        node['is_leader'] = bool(leader.get('is_self'))
        node['leader_address'] = leader.get('leader_address') or None
    if raft_config is not None:
        node['raft_peers'] = shape_raft_peers(raft_config)
    return node


def shape_raft_peers(raft_config):
    servers = (raft_config.get('config') or {}).get('servers') or []
    return [{
        'node_id': server.get('node_id'),
        'address': server.get('address'),
        'leader': bool(server.get('leader')),
        'voter': bool(server.get('voter')),
    } for server in servers]


def unreachable_node(url, message):
    node = dict.fromkeys(shape_node(url, {}).keys())
    node.update({'url': url, 'reachable': False, 'error': message})
    return node


def summarize(nodes):
    """Cluster-level view over per-node states."""
    reachable = [n for n in nodes if n['reachable']]
    leaders = [n['url'] for n in reachable if n.get('is_leader')]
    return {
        'all_reachable': len(reachable) == len(nodes),
        'all_initialized': bool(nodes) and all(n['initialized'] for n in reachable) and len(reachable) == len(nodes),
        'all_unsealed': bool(nodes) and all(not n['sealed'] for n in reachable) and len(reachable) == len(nodes),
        'sealed_nodes': [n['url'] for n in reachable if n['sealed']],
        'unreachable_nodes': [n['url'] for n in nodes if not n['reachable']],
        'leader': leaders[0] if leaders else None,
    }


def read_node(node, with_raft=True):
    """Query one VaultNode; never raises: an unreachable node comes back with ``reachable: false``."""
    try:
        seal_status = node.seal_status()
        health_code, _health = node.health()
        leader = None
        if seal_status.get('initialized') and not seal_status.get('sealed'):
            leader = node.call('GET', 'sys/leader', auth=False, expect=LEADER)
    except VaultError as exc:
        return unreachable_node(node.url, str(exc))
    raft_config, raft_error = None, None
    if with_raft and node.has_token and leader is not None and seal_status.get('storage_type') == 'raft':
        try:
            raft_config = node.call('GET', 'sys/storage/raft/configuration', expect=RAFT_CONFIGURATION)
        except VaultError as exc:
            # A reachable node whose raft peers cannot be read (token lacks the policy, say).
            raft_error = str(exc)
    shaped = shape_node(node.url, seal_status, health_code, leader, raft_config)
    shaped['error'] = raft_error
    return shaped

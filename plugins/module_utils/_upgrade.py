# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rolling upgrade planning for SPIRE and Vault / OpenBao (pure: versions in, ordered plan or refusal out).

Every rule is checked on the whole plan before the first node is touched; a refusal names the rule, the nodes
and, for SPIRE, the chain of versions to go through instead.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError
from ansible_collections.trustroot.ops.plugins.module_utils._restart_order import leader_last


class UpgradeError(TrustrootError):
    """A plan that breaks an upgrade rule, or input that cannot be planned on."""


# Strict SemVer 2.0 with an optional leading 'v'. _vault.parse_version exists but is not reused: it lives next to
# the hvac/Ansible imports of _vault.py and reads only a prefix ("1.2.3garbage" -> (1, 2, 3), "x" -> ()), while a
# plan must refuse what it cannot read.
_VERSION = re.compile(r'^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)'
                      r'(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$')


def parse_version(text, field):
    """'1.15.3' / 'v1.15.3' -> a tuple that sorts like SemVer precedence.

    A pre-release ('2.7.2-rc1') sorts before its release (2.7.2-rc1 < 2.7.2; identifiers compared as SemVer
    says: numbers numerically and below words). Build metadata ('1.15.3+abc', Vault's '1.15.0+ent') is ignored,
    as SemVer precedence ignores it: 1.15.3+abc counts as at 1.15.3. Anything else: UpgradeError naming ``field``.
    """
    match = _VERSION.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise UpgradeError('%s: %r is not a version (expected x.y.z, optionally v-prefixed, with an optional '
                           '-pre-release and +build suffix)' % (field, text))
    major, minor, patch, pre = int(match.group(1)), int(match.group(2)), int(match.group(3)), match.group(4)
    if pre is None:
        return (major, minor, patch, 1, ())
    return (major, minor, patch, 0, tuple((0, int(part), '') if part.isdigit() else (1, 0, part)
                                          for part in pre.split('.')))


def _text(version):
    """A parsed version back as x.y.z[-pre] for messages."""
    text = '%d.%d.%d' % version[:3]
    if not version[3]:
        text += '-' + '.'.join(str(num) if kind == 0 else word for kind, num, word in version[4])
    return text


def _minor(version):
    return version[:2]


def _minors_apart(older, newer):
    """How many minor releases separate two versions (None across majors)."""
    if older[0] != newer[0]:
        return None
    return newer[1] - older[1]


def _chain(current, target):
    """'1.13.3 -> 1.14.x -> 1.15.3': the minor releases a node has to pass through."""
    steps = [_text(current)]
    if current[0] == target[0]:
        steps += ['%d.%d.x' % (current[0], minor) for minor in range(current[1] + 1, target[1])]
    else:
        steps.append('(every minor release of %d.x up to the last, then %d.0.x ...)' % (current[0], target[0]))
    steps.append(_text(target))
    return ' -> '.join(steps)


def _hosts(value, field):
    if not isinstance(value, dict):
        raise UpgradeError('%s: expected a dict host -> version string, got %s' % (field, type(value).__name__))
    parsed = {}
    for host, version in value.items():
        if not isinstance(host, str) or not host:
            raise UpgradeError('%s: host names must be non-empty strings, got %r' % (field, host))
        parsed[host] = parse_version(version, '%s[%s]' % (field, host))
    return parsed


# SPIRE, doc/upgrading.md of github.com/spiffe/spire (https://github.com/spiffe/spire/blob/main/doc/upgrading.md):
#   "Version skew within a SPIRE Server cluster is supported within +/- 1 minor version. In other words, the newest
#    and oldest SPIRE Server instances in any given cluster must be within one minor version of each other."
#   "SPIRE Agents must not be newer than the oldest SPIRE Server that they communicate with, and may be up to one
#    minor version older."
#   "SPIRE Servers must be upgraded before SPIRE Agents, and is limited to a jump of at most one minor version
#    (regardless of patch version). Upgrades that jump two or more minor versions (e.g. 1.1.1 to 1.3.0) are not
#    supported."
#   "Upgrade SPIRE Server instances from 1.1.1 to 1.2.3 one instance at a time / Ensure that the SPIRE Server
#    cluster is operating as expected / Upgrade SPIRE Agent instances from 1.1.1 to 1.2.3 one instance at a time or
#    in batches"
# The 0.12.x <-> 1.0.x exception of that page is not encoded: a change of major version is refused.
#
# Shared SQL datastore: upgrading.md says nothing about it; the server's own migration code does
# (pkg/server/datastore/sqlstore/migration.go, SPIRE 1.15): "The DB schema version can get ahead of us if the
# cluster is in the middle of an upgrade. So long as the version is compatible, log a warning and continue.
# Otherwise, we should bail out. Migration rollbacks are not supported." -- compatible meaning the same major and
# +/- 1 minor of the newest code version stored in the datastore (isCompatibleCodeVersion). With the skew rule
# above enforced, every older server of the roll is within one minor of the target, so it keeps running on (and can
# restart against) the migrated schema: no server has to be stopped early. What the migration does change is the
# way back: the first upgraded server migrates the shared schema for everyone and that is never undone, so a
# downgrade needs the datastore restored from a backup taken before that server starts -> datastore.backup_before.


def _spire_check_point(servers, agents, when):
    """Refuse if the versions ``servers`` / ``agents`` hold at one point of the roll break a compatibility rule."""
    oldest = min(servers.values())
    newest = max(servers.values())
    if _minors_apart(oldest, newest) not in (0, 1):
        raise UpgradeError(
            'SPIRE server skew %s: servers must stay within one minor version of each other (doc/upgrading.md), '
            'but the oldest is at %s (%s) and the newest at %s (%s)' % (
                when, _text(oldest), ', '.join(h for h, v in servers.items() if v == oldest),
                _text(newest), ', '.join(h for h, v in servers.items() if v == newest)))
    too_old = [h for h, v in agents.items() if _minors_apart(v, oldest) not in (0, 1) and v < oldest]
    if too_old:
        raise UpgradeError(
            'SPIRE agent skew %s: agents may be at most one minor version older than the oldest server (%s), but %s '
            'would be broken; bring those agents within one minor of %s before the servers get there (%s)' % (
                when, _text(oldest), ', '.join('%s (%s)' % (h, _text(agents[h])) for h in too_old), _text(oldest),
                '; '.join('%s: %s' % (h, _chain(agents[h], oldest)) for h in too_old)))
    too_new = [h for h, v in agents.items() if v > oldest]
    if too_new:
        raise UpgradeError(
            'SPIRE agent skew %s: agents must not be newer than the oldest server (%s), but %s are' % (
                when, _text(oldest), ', '.join('%s (%s)' % (h, _text(agents[h])) for h in too_new)))


def _spire_refuse_jumps(nodes, target, kind):
    for host, version in nodes.items():
        if version > target:
            raise UpgradeError('SPIRE %s %s is at %s, newer than the target %s: downgrades are refused (agents go down '
                               'before servers, by hand)' % (kind, host, _text(version), _text(target)))
    jumps = [h for h, v in nodes.items() if _minors_apart(v, target) not in (0, 1)]
    if jumps:
        raise UpgradeError(
            'SPIRE %s upgrade jumps more than one minor version (doc/upgrading.md: at most one minor at a time): %s' % (
                kind, '; '.join('%s: %s' % (h, _chain(nodes[h], target)) for h in jumps)))


def spire_upgrade_plan(servers, agents, target_server, target_agent=None, shared_datastore=False):
    """Plan a rolling SPIRE upgrade: servers one at a time (inventory order), then agents.

    ``servers`` / ``agents``: dict host -> version string as each node reports it. ``target_agent`` defaults to
    ``target_server``. Raises UpgradeError, before any change, when a rule of doc/upgrading.md would be broken at
    any point of the roll. Returns a plain dict (see spire_upgrade_plan.yml).
    """
    current_servers = _hosts(servers, 'servers')
    current_agents = _hosts(agents if agents is not None else {}, 'agents')
    if not current_servers:
        raise UpgradeError('servers: no SPIRE server given (the agents rule is relative to the oldest server)')
    server_target = parse_version(target_server, 'target_server')
    agent_target = parse_version(target_server if target_agent in (None, '') else target_agent, 'target_agent')
    if agent_target > server_target:
        raise UpgradeError('target_agent %s is newer than target_server %s: agents must not be newer than the oldest '
                           'server (doc/upgrading.md)' % (_text(agent_target), _text(server_target)))
    if _minors_apart(agent_target, server_target) not in (0, 1):
        raise UpgradeError('target_agent %s is more than one minor version older than target_server %s (agents may be '
                           'up to one minor version older than the oldest server)' % (_text(agent_target), _text(server_target)))
    _spire_refuse_jumps(current_servers, server_target, 'server')
    _spire_refuse_jumps(current_agents, agent_target, 'agent')

    server_order = [h for h, v in current_servers.items() if v != server_target]
    agent_order = [h for h, v in current_agents.items() if v != agent_target]

    # Walk the roll: before anything, after each server, after each agent. An agent newer than the oldest server
    # before the roll is already off the rules; raising the servers is what mends it, so that state is let through
    # and reported in warnings rather than refused.
    now_servers, now_agents = dict(current_servers), dict(current_agents)
    warnings = []
    oldest = min(now_servers.values())
    ahead = [h for h, v in now_agents.items() if v > oldest]
    if ahead:
        warnings.append('agents newer than the oldest server before the roll (%s): upgrading the servers first mends it'
                        % ', '.join('%s (%s)' % (h, _text(now_agents[h])) for h in ahead))
    _spire_check_point(now_servers, {h: v for h, v in now_agents.items() if h not in ahead}, 'before the roll')
    for host in server_order:
        now_servers[host] = server_target
        _spire_check_point(now_servers, {h: v for h, v in now_agents.items() if v <= min(now_servers.values())},
                           'after upgrading server %s' % host)
    for host in agent_order:
        now_agents[host] = agent_target
        _spire_check_point(now_servers, now_agents, 'after upgrading agent %s' % host)

    steps = ['%s: %s -> %s (server)' % (h, _text(current_servers[h]), _text(server_target)) for h in server_order]
    steps += ['%s: %s -> %s (agent)' % (h, _text(current_agents[h]), _text(agent_target)) for h in agent_order]
    migrates = bool(shared_datastore) and bool(server_order)
    return {
        'changed': bool(server_order or agent_order),
        'target_server': _text(server_target),
        'target_agent': _text(agent_target),
        'servers': server_order,
        'agents': agent_order,
        'servers_already': [h for h in current_servers if h not in server_order],
        'agents_already': [h for h in current_agents if h not in agent_order],
        'steps': steps,
        'warnings': warnings,
        'datastore': {
            'shared': bool(shared_datastore),
            # The server whose start migrates the shared schema; a backup must exist before it starts.
            'migrated_by': server_order[0] if migrates else None,
            'backup_before': migrates,
            # Servers that could not run on the migrated schema: none can be left once the skew rule holds.
            'stop_first': [],
        },
    }


# Vault / OpenBao HA upgrade (https://openbao.org/docs/upgrading/ha-upgrade, the same procedure as HashiCorp's
# https://developer.hashicorp.com/vault/docs/upgrading/vault-ha-upgrade):
#   "Regardless of the method you use, do not fail over from a newer version of OpenBao to an older version. Our
#    suggested procedure is designed to prevent this."
#   "At this point all standby nodes are upgraded and ready to take over. The upgrade will not complete until one
#    of the upgraded standby nodes takes over active duty." -- then "Properly shut down the remaining (active)
#    node", and HashiCorp's page adds: "DO NOT attempt to issue a step-down operation at any time during the
#    upgrade process."
_ROLES = {'active': 'active', 'standby': 'standby', 'perfstandby': 'standby', 'performance_standby': 'standby'}


def _vault_node(node, index, target):
    if not isinstance(node, dict):
        raise UpgradeError('nodes[%d]: expected a dict, got %s' % (index, type(node).__name__))
    host = node.get('host') or node.get('url')
    if not isinstance(host, str) or not host:
        raise UpgradeError('nodes[%d]: no host (or url) given' % index)
    if node.get('reachable') is False:
        raise UpgradeError('node %s did not answer (%s): every node must be up and unsealed before an upgrade'
                           % (host, node.get('error') or 'unreachable'))
    if node.get('initialized') is not True:
        raise UpgradeError('node %s is not initialized: every node must be initialized and unsealed before an upgrade'
                           % host)
    if node.get('sealed') is not False:
        raise UpgradeError('node %s is sealed: every node must be unsealed before an upgrade (an upgraded standby must '
                           'be able to take over)' % host)
    # ha_mode as `bao status` / sys/leader name it, else state as vault_status_info reports it (from sys/health).
    reported = node.get('ha_mode') if node.get('ha_mode') is not None else node.get('state')
    role = _ROLES.get(reported)
    if role is None:
        raise UpgradeError('node %s has an unknown role %r (expected active, standby or perfstandby)' % (host, reported))
    if node.get('is_leader') is not None and bool(node['is_leader']) != (role == 'active'):
        raise UpgradeError('node %s reports role %s but is_leader %s: the answers disagree, read the cluster again'
                           % (host, reported, node['is_leader']))
    version = parse_version(node.get('version'), 'nodes[%s].version' % host)
    if version > target:
        raise UpgradeError('node %s is at %s, newer than the target %s: downgrades (or a cluster already partly on a '
                           'newer version) are refused' % (host, _text(version), _text(target)))
    return host, role, version


def check_no_failover_to_older(order, roles, versions, target):
    """Raise unless every node that can take over when the active node stops is already at ``target``.

    ``order``: hosts in upgrade order; ``roles`` / ``versions``: host -> role / parsed version before the roll.
    Standbys hold no HA lock: stopping one moves nothing. Stopping the active node hands the lock to a standby,
    so by then every other node must run the target.
    """
    now = dict(versions)
    for host in order:
        if roles[host] == 'active':
            older = [h for h in now if h != host and now[h] != target]
            if older:
                raise UpgradeError(
                    'stopping the active node %s would let a node not yet at %s take over (%s): never fail over to an '
                    'older version' % (host, _text(target), ', '.join('%s at %s' % (h, _text(now[h])) for h in older)))
        now[host] = target


def vault_upgrade_order(nodes, target, hosts=None):
    """Order a rolling Vault / OpenBao upgrade: standbys not yet at ``target`` (inventory order), the active last.

    ``nodes``: list of dicts with host (or url), version, initialized, sealed and ha_mode (or vault_status_info's
    state); reachable and is_leader are checked when present. ``hosts``: names for the nodes, in the same order
    (inventory names for vault_status_info's answers, which carry URLs). Returns dict(order, already, steps, active,
    target).
    """
    if not isinstance(nodes, list) or not nodes:
        raise UpgradeError('nodes: expected a non-empty list of node dicts')
    if hosts is not None:
        if not isinstance(hosts, list) or len(hosts) != len(nodes):
            raise UpgradeError('hosts: expected a list of %d names, one per node, got %r' % (len(nodes), hosts))
        nodes = [dict(node, host=host) if isinstance(node, dict) else node for node, host in zip(nodes, hosts)]
    goal = parse_version(target, 'target')
    roles, versions, hosts = {}, {}, []
    for index, node in enumerate(nodes):
        host, role, version = _vault_node(node, index, goal)
        if host in roles:
            raise UpgradeError('node %s is listed twice' % host)
        roles[host], versions[host] = role, version
        hosts.append(host)
    active = [h for h in hosts if roles[h] == 'active']
    if len(active) != 1:
        raise UpgradeError('exactly one active node is needed, found %d%s' % (
            len(active), (': ' + ', '.join(active)) if active else ''))
    order = leader_last([h for h in hosts if versions[h] != goal], active[0])
    check_no_failover_to_older(order, roles, versions, goal)
    return {
        'changed': bool(order),
        'target': _text(goal),
        'active': active[0],
        'order': order,
        'already': [h for h in hosts if h not in order],
        'steps': ['%s: %s -> %s (%s)' % (h, _text(versions[h]), _text(goal), roles[h]) for h in order],
    }

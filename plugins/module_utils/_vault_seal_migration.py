# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Seal migration (Shamir <-> auto-unseal): what the cluster runs now, what to do, and the key material after.

Pure functions: role vault_server_migrate's `seal` entry point asks vault_status_info for the nodes, and these
decide. After a migration the same key shares change role: Shamir unseal keys become the recovery keys of
an auto seal, and recovery keys become Shamir unseal keys. The material file follows (keys moved between
the ``unseal_*`` and ``recovery_*`` fields; nothing else changes).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import datetime

from ansible_collections.trustroot.ops.plugins.module_utils._material import utc_now
from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError
from ansible_collections.trustroot.ops.plugins.module_utils._restart_order import leader_last

SHAMIR = 'shamir'
# What OpenBao 2.7 answers on sys/seal-status of a standby unsealed with migrate=true, until the leader has migrated.
MIGRATING_STANDBY = 'does not match loaded type'
KEY_FIELDS = ('keys_b64', 'keys_hex', 'shares', 'threshold')


class SealMigrationError(TrustrootError):
    pass


def plan_seal_migration(nodes, target_type):
    """Compare the cluster's seal (its leader's sys/seal-status) with ``target_type``.

    ``nodes`` is vault_status_info's list. Returns a dict: action ('none' or 'migrate'), current, target,
    direction ('to_auto' or 'to_shamir' when migrating), leader (URL), standbys (URLs), message."""
    # A standby unsealed with migrate=true by an earlier, stopped run is not "unreachable": the run resumes.
    unreachable = [n['url'] for n in nodes if not n.get('reachable') and MIGRATING_STANDBY not in (n.get('error') or '')]
    if unreachable:
        raise SealMigrationError('nodes not reachable: %s (every node must serve before a seal migration)'
                                 % ', '.join(unreachable))
    leaders = [n for n in nodes if n.get('is_leader')]
    if len(leaders) != 1:
        raise SealMigrationError('the cluster has %d active nodes; one is needed (unseal it first)' % len(leaders))
    leader = leaders[0]
    current = leader.get('seal_type')
    if not current:
        raise SealMigrationError('%s reports no seal type' % leader['url'])
    plan = {'current': current, 'target': target_type, 'leader': leader['url'],
            'standbys': leader_last([n['url'] for n in nodes], leader['url'])[:-1], 'direction': None}
    if current == target_type and not leader.get('migration'):
        plan.update(action='none', message='seal is %s already: nothing to migrate' % current)
        return plan
    if current != SHAMIR and target_type != SHAMIR and current != target_type:
        raise SealMigrationError('migrating from one auto seal (%s) to another (%s) is not supported: migrate to '
                                 'shamir first' % (current, target_type))
    sealed = [n['url'] for n in nodes if n.get('sealed')]
    if sealed:
        raise SealMigrationError('sealed nodes: %s (unseal every node before a seal migration)' % ', '.join(sealed))
    plan.update(action='migrate', direction='to_shamir' if target_type == SHAMIR else 'to_auto',
                message='seal %s -> %s: standbys %s one at a time, then the leader %s' % (
                    current, target_type, ', '.join(plan['standbys']) or '(none)', leader['url']))
    return plan


def migration_done(nodes, target_type):
    """True once an active node reports the target seal and no migration in progress."""
    for node in nodes:
        if node.get('reachable') and node.get('is_leader') and not node.get('sealed'):
            return node.get('seal_type') == target_type and not node.get('migration') and \
                bool(node.get('recovery_seal')) == (target_type != SHAMIR)
    return False


def material_for_seal(material, keys_as):
    """(new material, changed): the key shares moved to the ``keys_as`` fields ('unseal' or 'recovery').

    Already there: unchanged. Keys in both places, or in neither, is an error (ambiguous or empty)."""
    if keys_as not in ('unseal', 'recovery'):
        raise SealMigrationError('keys_as must be unseal or recovery, not %r' % (keys_as,))
    source = 'unseal' if keys_as == 'recovery' else 'recovery'
    has = {kind: bool(material.get('%s_keys_b64' % kind) or material.get('%s_keys_hex' % kind))
           for kind in ('unseal', 'recovery')}
    if has[keys_as] and has[source]:
        raise SealMigrationError('the material holds both unseal and recovery keys: cannot tell which are current')
    if has[keys_as]:
        return material, False
    if not has[source]:
        raise SealMigrationError('the material holds no unseal or recovery keys')
    new = copy.deepcopy(material)
    for field in KEY_FIELDS:
        value = new.pop('%s_%s' % (source, field), None)
        if value is not None:
            new['%s_%s' % (keys_as, field)] = value
    new['kind'] = 'seal_migration'
    new['created'] = utc_now()
    return new, True


def key_layout(material, keys_as):
    """Shares and threshold of the ``keys_as`` keys (no key values)."""
    return {'shares': material.get('%s_shares' % keys_as), 'threshold': material.get('%s_threshold' % keys_as)}


def archive_name(path, now=None, exists=lambda candidate: False):
    """``path`` + a UTC timestamp suffix (rotate_rekey's convention); -1, -2... when that name is taken."""
    stamp = (now or datetime.datetime.now(datetime.timezone.utc)).strftime('%Y%m%dT%H%M%SZ')
    candidate = '%s.%s' % (path, stamp)
    index = 0
    while exists(candidate):
        index += 1
        candidate = '%s.%s-%d' % (path, stamp, index)
    return candidate

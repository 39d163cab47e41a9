# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Audit devices (pure): the desired devices checked, compared with sys/audit, turned into actions.

HashiCorp Vault enables and disables devices through sys/audit and refuses to change one in place, so a change is
a disable then an enable. OpenBao (from 2.3.2, CVE-2025-54997) refuses API creation unless the server sets
``unsafe_allow_api_audit_creation``; its devices are declared by ``audit`` stanzas in the server configuration
(applied by the active node at start and on SIGHUP), and a declared device is never changed through the API.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError

TYPES = ('file', 'syslog', 'socket')
# The option each type cannot work without.
REQUIRED_OPTIONS = {'file': 'file_path', 'socket': 'address'}
PATH = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*$')
# One device in the sys/audit answer (a map of "<path>/" to this), checked with _vault.shape_problem.
AUDIT_DEVICE = {'type': str}
# What is read from sys/config/state/sanitized on OpenBao; absent fields mean an older server.
SANITIZED_CONFIG = {}


class AuditError(TrustrootError, ValueError):
    """Bad input, naming the field."""


def clean_path(path):
    return str(path or '').strip().strip('/')


def option_string(value):
    """Vault takes audit options as strings: true -> 'true', 2 -> '2'."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def normalize_desired(devices):
    """The desired devices, checked: [{path, state, type, description, local, options}], paths without slashes.

    description and local None: whatever the server has is fine. Raises AuditError naming the field."""
    result = []
    seen = set()
    for index, device in enumerate(devices):
        where = 'devices[%d]' % index
        if not isinstance(device, dict):
            raise AuditError('%s must be a dictionary' % where)
        path = clean_path(device.get('path'))
        if not path or not PATH.match(path):
            raise AuditError('%s.path must be a device path such as "file" or "audit/second" (letters, digits, '
                             '".", "_", "-" and inner "/"), got %r' % (where, device.get('path')))
        if path in seen:
            raise AuditError('%s.path %s is given twice' % (where, path))
        seen.add(path)
        state = device.get('state') or 'present'
        if state not in ('present', 'absent'):
            raise AuditError('%s.state must be present or absent' % where)
        entry = dict(path=path, state=state)
        if state == 'present':
            kind = device.get('type')
            if kind not in TYPES:
                raise AuditError('%s.type must be one of %s (device %s)' % (where, ', '.join(TYPES), path))
            options = device.get('options') or {}
            if not isinstance(options, dict):
                raise AuditError('%s.options must be a dictionary (device %s)' % (where, path))
            options = dict((str(k), option_string(v)) for k, v in options.items())
            needed = REQUIRED_OPTIONS.get(kind)
            if needed and not options.get(needed):
                raise AuditError('%s.options.%s is required for a %s device (device %s)' % (where, needed, kind, path))
            local = device.get('local')
            if local is not None and not isinstance(local, bool):
                raise AuditError('%s.local must be a boolean (device %s)' % (where, path))
            description = device.get('description')
            entry.update(type=kind, options=options, local=local,
                         description=None if description is None else str(description))
        result.append(entry)
    return result


def current_devices(answer):
    """sys/audit's answer ({"<path>/": {...}}, each entry already shape-checked) -> {path: device}."""
    devices = {}
    for key, entry in (answer or {}).items():
        if not isinstance(entry, dict) or 'type' not in entry:
            continue  # request_id, lease_id ... when the body itself was given
        path = clean_path(entry.get('path') or key)
        devices[path] = dict(path=path, type=entry['type'], description=entry.get('description') or '',
                             local=bool(entry.get('local')),
                             options=dict((str(k), option_string(v)) for k, v in (entry.get('options') or {}).items()))
    return devices


def differences(desired, current):
    """The fields of a present desired device that the current one does not match (empty: it matches)."""
    fields = []
    if desired['type'] != current['type']:
        fields.append('type')
    if desired['description'] is not None and desired['description'] != current['description']:
        fields.append('description')
    if desired['local'] is not None and desired['local'] != current['local']:
        fields.append('local')
    if desired['options'] != current['options']:
        fields.append('options')
    return fields


def plan(desired, current, exclusive=False):
    """Actions that make ``current`` ({path: device}) what ``desired`` (normalize_desired) says.

    Each action is {action: enable|disable|replace, path, reason, device (the new one, for enable/replace)}.
    A replace is a disable then an enable of the same path (no server changes a device in place). With
    ``exclusive``, devices not named in ``desired`` are disabled."""
    actions = []
    named = set()
    for device in desired:
        path = device['path']
        named.add(path)
        have = current.get(path)
        if device['state'] == 'absent':
            if have:
                actions.append(dict(action='disable', path=path, reason='state is absent'))
            continue
        if not have:
            actions.append(dict(action='enable', path=path, reason='not enabled', device=target(device, None)))
            continue
        changed = differences(device, have)
        if changed:
            actions.append(dict(action='replace', path=path, device=target(device, have),
                                reason='%s differ%s' % (', '.join(changed), '' if len(changed) > 1 else 's')))
    if exclusive:
        for path in sorted(current):
            if path not in named:
                actions.append(dict(action='disable', path=path, reason='not in devices (exclusive)'))
    return actions


def target(device, have):
    """The device as it will be enabled: fields left open (None) keep the current value, else the default."""
    return dict(path=device['path'], type=device['type'], options=dict(device['options']),
                description=device['description'] if device['description'] is not None else (
                    have['description'] if have else ''),
                local=device['local'] if device['local'] is not None else (have['local'] if have else False))


def after(current, actions):
    """The devices once the actions are applied (for diff and check mode)."""
    result = dict((path, dict(device)) for path, device in current.items())
    for action in actions:
        if action['action'] == 'disable':
            result.pop(action['path'], None)
        else:
            result[action['path']] = dict(action['device'])
    return result


def enable_payload(device):
    return dict(type=device['type'], description=device['description'], local=device['local'],
                options=device['options'])


def api_allowed(flavour, sanitized):
    """Whether sys/audit may create devices: always on Vault; on OpenBao only with unsafe_allow_api_audit_creation
    (a server too old to know the setting has no such restriction)."""
    if flavour != 'openbao':
        return True
    return bool((sanitized or {}).get('unsafe_allow_api_audit_creation', True))


def declared_paths(sanitized):
    """Paths of the devices the server configuration declares (OpenBao's sanitized config lists them)."""
    paths = set()
    for entry in (sanitized or {}).get('audits') or []:
        if isinstance(entry, dict) and entry.get('path'):
            paths.add(clean_path(entry['path']))
    return paths


def hcl_string(value):
    return json.dumps(value)


def stanzas(devices):
    """OpenBao ``audit`` stanzas for the present devices (as the server configuration must declare them)."""
    blocks = []
    for device in devices:
        if device.get('state', 'present') != 'present':
            continue
        lines = ['audit %s %s {' % (hcl_string(device['type']), hcl_string(device['path']))]
        if device.get('description') is not None:
            lines.append('  description = %s' % hcl_string(device['description']))
        if device.get('local') is not None:
            lines.append('  local = %s' % ('true' if device['local'] else 'false'))
        lines.append('  options {')
        lines.extend('    %s = %s' % (key, hcl_string(value)) for key, value in sorted(device['options'].items()))
        lines.append('  }')
        lines.append('}')
        blocks.append('\n'.join(lines))
    return '\n\n'.join(blocks) + ('\n' if blocks else '')


def describe(actions):
    return '; '.join('%s %s (%s)' % (a['action'], a['path'], a['reason']) for a in actions)


def config_path_message(url, version, actions, declared):
    """Why the module cannot act on OpenBao without the unsafe flag, and what the server allows instead."""
    return ('%s: OpenBao %s creates audit devices only from its configuration (unsafe_allow_api_audit_creation is '
            'off: sys/audit refuses to enable a device, and a device declared in the configuration is neither '
            'disabled nor changed through the API). Needed: %s. Declare the devices as `audit "<type>" "<path>" {...}` '
            'stanzas (config_stanzas in this result) in the server configuration of every node, then send SIGHUP '
            'to each node (or restart it): the active node adds new devices and removes dropped ones on SIGHUP; a '
            'changed device is refused on SIGHUP and applied at the next start, or removed (drop its stanza, '
            'SIGHUP) then added (new stanza, SIGHUP). Declared now: %s. The vault_server role writes these stanzas '
            '(vault_server_audit_*).' % (url, version or '?', describe(actions),
                                         ', '.join(sorted(declared)) or 'none'))


def declared_conflicts(actions, declared):
    """Actions that would disable or replace a device the configuration declares (OpenBao refuses those)."""
    return [a for a in actions if a['path'] in declared and a['action'] in ('disable', 'replace')]

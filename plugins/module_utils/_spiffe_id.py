# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SPIFFE ID, trust domain, selector and DNS name validation. Pure: no I/O, no Ansible imports.

The rules are those of the SPIFFE ID specification and of SPIRE's server API (v1.15):
- a SPIFFE ID is ``spiffe://<trust domain><path>``; the scheme is lowercase ``spiffe``; the trust
  domain uses ``[a-z0-9._-]`` only (no port, no user info, no upper case); the path is empty or a
  sequence of ``/segment`` where a segment is non-empty, is neither ``.`` nor ``..`` and uses
  ``[A-Za-z0-9._-]``; no trailing slash, no query or fragment; 2048 bytes at most.
- a selector is ``type:value``: the type is non-empty and has no ``:``; the value is non-empty (it may
  contain ``:``, as in ``unix:uid:1000``).
- a DNS name for an SVID: ASCII, at most one ``*`` and only as a whole first label (``*.example.org``),
  labels of 1 to 63 letters, digits and hyphens not starting or ending with a hyphen, no trailing dot,
  253 characters at most.
Every error is a SpiffeError whose text names the field and the rule.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError

SCHEME = 'spiffe://'
MAX_ID_LENGTH = 2048
RESERVED_PATH = '/spire'

_TRUST_DOMAIN = re.compile(r'^[a-z0-9._-]+$')
_SEGMENT = re.compile(r'^[A-Za-z0-9._-]+$')
# A whole valid SPIFFE ID, for the common case; errors are then explained by the detailed checks.
_VALID_ID = re.compile(r'spiffe://[a-z0-9._-]+(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._-]+)*\Z')
_DNS_LABEL = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$')


class SpiffeError(InputError):
    """An invalid SPIFFE ID, trust domain, selector or DNS name; the text names the field and the rule."""


def _field(field):
    return '%s: ' % field if field else ''


def trust_domain_error(value):
    """Why ``value`` is not a valid trust domain name, or None."""
    if not isinstance(value, str) or not value:
        return 'a trust domain name must be a non-empty string'
    if not _TRUST_DOMAIN.match(value):
        return ('trust domain %r may only use lowercase letters, digits, dots, hyphens and underscores '
                '([a-z0-9._-])' % value)
    return None


def path_error(path):
    """Why ``path`` (with its leading slash, or empty) is not a valid SPIFFE ID path, or None."""
    if path == '':
        return None
    if not path.startswith('/'):
        return 'path %r must start with /' % path
    if path.endswith('/'):
        return 'path %r must not end with /' % path
    for segment in path[1:].split('/'):
        if segment == '':
            return 'path %r has an empty segment (//)' % path
        if segment in ('.', '..'):
            return 'path %r has a %r segment' % (path, segment)
        if not _SEGMENT.match(segment):
            return ('path segment %r may only use letters, digits, dots, hyphens and underscores '
                    '([A-Za-z0-9._-])' % segment)
    return None


def spiffe_id_error(value):
    """Why ``value`` is not a valid SPIFFE ID, or None."""
    if not isinstance(value, str) or not value:
        return 'a SPIFFE ID must be a non-empty string'
    if _VALID_ID.match(value) and len(value) <= MAX_ID_LENGTH:
        return None
    if len(value.encode('utf-8')) > MAX_ID_LENGTH:
        return 'SPIFFE ID is longer than %d bytes' % MAX_ID_LENGTH
    if not value.startswith(SCHEME):
        if value.lower().startswith(SCHEME):
            return 'SPIFFE ID %r: the scheme must be lowercase spiffe://' % value
        return 'SPIFFE ID %r must start with spiffe://' % value
    rest = value[len(SCHEME):]
    for char, what in (('?', 'a query'), ('#', 'a fragment')):
        if char in rest:
            return 'SPIFFE ID %r must not have %s' % (value, what)
    slash = rest.find('/')
    trust_domain, path = (rest, '') if slash < 0 else (rest[:slash], rest[slash:])
    if not trust_domain:
        return 'SPIFFE ID %r has no trust domain' % value
    if ':' in trust_domain:
        return 'SPIFFE ID %r: the trust domain must not have a port' % value
    if '@' in trust_domain:
        return 'SPIFFE ID %r: the trust domain must not have user info' % value
    error = trust_domain_error(trust_domain)
    if error:
        return 'SPIFFE ID %r: %s' % (value, error)
    error = path_error(path)
    if error:
        return 'SPIFFE ID %r: %s' % (value, error)
    return None


def parse_spiffe_id(value, field=None):
    """{'id', 'trust_domain', 'path', 'segments'} of a valid SPIFFE ID; SpiffeError otherwise."""
    error = spiffe_id_error(value)
    if error:
        raise SpiffeError(_field(field) + error)
    rest = value[len(SCHEME):]
    slash = rest.find('/')
    trust_domain, path = (rest, '') if slash < 0 else (rest[:slash], rest[slash:])
    return {'id': value, 'trust_domain': trust_domain, 'path': path,
            'segments': path[1:].split('/') if path else []}


def is_spiffe_id(value):
    return spiffe_id_error(value) is None


def check_spiffe_id(value, field, trust_domain=None, path_required=True, workload=False):
    """Validate a SPIFFE ID for ``field``; when ``trust_domain`` is given the ID must belong to it.
    ``path_required``: a member ID (not the trust domain's own ID). ``workload``: not in SPIRE's
    reserved /spire namespace. Returns the parsed ID."""
    parsed = parse_spiffe_id(value, field)
    if trust_domain is not None and parsed['trust_domain'] != trust_domain:
        raise SpiffeError('%s: %s is in trust domain %r, not in the server\'s trust domain %r'
                          % (field, value, parsed['trust_domain'], trust_domain))
    if path_required and not parsed['path']:
        raise SpiffeError('%s: %s has no path; an ID of a member of the trust domain is needed' % (field, value))
    if workload and (parsed['path'] == RESERVED_PATH or parsed['path'].startswith(RESERVED_PATH + '/')):
        raise SpiffeError('%s: %s is in the /spire namespace that SPIRE reserves for its servers and agents'
                          % (field, value))
    return parsed


def normalize_trust_domain(value, field=None):
    """A trust domain name from ``example.org`` or ``spiffe://example.org``; SpiffeError otherwise."""
    if isinstance(value, str) and value.startswith(SCHEME):
        parsed = parse_spiffe_id(value, field)
        if parsed['path']:
            raise SpiffeError('%s%s is a SPIFFE ID with a path, not a trust domain' % (_field(field), value))
        return parsed['trust_domain']
    error = trust_domain_error(value)
    if error:
        raise SpiffeError(_field(field) + error)
    return value


def selector_error(value):
    """Why ``value`` (``type:value`` string) is not a valid selector, or None."""
    if not isinstance(value, str) or not value:
        return 'a selector must be a non-empty type:value string'
    if ':' not in value:
        return 'selector %r must be type:value' % value
    kind, rest = value.split(':', 1)
    if not kind.strip():
        return 'selector %r has an empty type' % value
    if not rest:
        return 'selector %r has an empty value' % value
    return None


def parse_selector(value, field=None):
    """(type, value) from ``type:value`` or from a {'type', 'value'} mapping; SpiffeError otherwise."""
    if isinstance(value, dict):
        kind, rest = value.get('type'), value.get('value')
        if not isinstance(kind, str) or not kind or ':' in kind:
            raise SpiffeError('%sselector %r: type must be a non-empty string without ":"' % (_field(field), value))
        if not isinstance(rest, str) or not rest:
            raise SpiffeError('%sselector %r: value must be a non-empty string' % (_field(field), value))
        return kind, rest
    error = selector_error(value)
    if error:
        raise SpiffeError(_field(field) + error)
    kind, rest = value.split(':', 1)
    return kind, rest


def dns_name_error(value):
    """Why ``value`` is not a valid DNS name for an SVID (SPIRE's rules), or None."""
    if not isinstance(value, str) or not value.strip():
        return 'a DNS name must be a non-empty string'
    try:
        value.encode('ascii')
    except UnicodeError:
        return 'DNS name %r must be ASCII (use its punycode form)' % value
    name = value
    stars = name.count('*')
    if stars > 1:
        return 'DNS name %r has more than one wildcard' % value
    if stars == 1:
        if not name.startswith('*.'):
            return 'DNS name %r: a wildcard must be the whole first label (*.example.org)' % value
        name = name[2:]
    if name.endswith('.'):
        return 'DNS name %r must not end with a dot' % value
    if len(name) > 253:
        return 'DNS name %r is longer than 253 characters' % value
    for label in name.split('.'):
        if not _DNS_LABEL.match(label):
            return ('DNS name %r: label %r must be 1 to 63 letters, digits or hyphens, not starting or '
                    'ending with a hyphen' % (value, label))
    return None


def check_dns_name(value, field=None):
    error = dns_name_error(value)
    if error:
        raise SpiffeError(_field(field) + error)
    return value

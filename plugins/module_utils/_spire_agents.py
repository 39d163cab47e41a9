# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic for SPIRE agents and join tokens: list filters, readable agent records, evict/ban/purge
decisions, durations and times in the forms the spire-server CLI accepts (no I/O)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError
from ansible_collections.trustroot.ops.plugins.module_utils._spiffe_id import check_spiffe_id, parse_spiffe_id
from ansible_collections.trustroot.ops.plugins.module_utils._spire_federation import id_from_proto, iso_time, to_int

MATCH_MODES = ('exact', 'any', 'superset', 'subset')
AGENT_STATES = ('evicted', 'banned', 'purged')
# `agent list -expiresBefore` takes exactly this Go layout: "2006-01-02 15:04:05 -0700 -07".
GO_EXPIRES_LAYOUT = '%Y-%m-%d %H:%M:%S +0000 +00'
MAX_TTL = 2 ** 31 - 1
_DURATION = re.compile(r'^(?:\d+(?:\.\d+)?(?:ns|us|\u00b5s|ms|s|m|h|d))+$')
_DURATION_PART = re.compile(r'(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h|d)')
_UNIT_SECONDS = {'ns': 1e-9, 'us': 1e-6, '\u00b5s': 1e-6, 'ms': 1e-3, 's': 1, 'm': 60, 'h': 3600, 'd': 86400}


def selector_error(value):
    if not isinstance(value, str) or ':' not in value:
        return 'must be "type:value" (got %r)' % (value,)
    kind, sep, rest = value.partition(':')
    if not kind or not rest:
        return 'must be "type:value" with a non-empty type and value (got %r)' % value
    return None


def check_selectors(values, field='selectors'):
    for index, value in enumerate(values or []):
        reason = selector_error(value)
        if reason:
            raise InputError('%s[%d] %s' % (field, index, reason))
    return list(values or [])


def parse_time(value, field, now=None):
    """A UTC datetime from an ISO 8601 text (``2026-01-31``, ``2026-01-31T12:00:00Z``, with an offset),
    Unix seconds (int or digits), or ``+<duration>`` relative to now; raises InputError."""
    if isinstance(value, bool):
        raise InputError('%s must be a time, not a boolean' % field)
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
        return datetime.datetime.fromtimestamp(int(value), tz=datetime.timezone.utc)
    text = str(value).strip()
    if text.startswith('+'):
        now = now or datetime.datetime.now(datetime.timezone.utc)
        return now + datetime.timedelta(seconds=duration_seconds(text[1:], field))
    candidate = text.replace('Z', '+00:00').replace('z', '+00:00')
    if ' ' in candidate and 'T' not in candidate:
        candidate = candidate.replace(' ', 'T', 1).replace(' ', '')
    try:
        parsed = datetime.datetime.fromisoformat(candidate)
    except ValueError:
        raise InputError('%s must be an ISO 8601 time (2026-01-31T12:00:00Z), Unix seconds, or +<duration> '
                         '(got %r)' % (field, value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc)


def go_expires_before(moment):
    """The ``-expiresBefore`` text SPIRE parses (layout "2006-01-02 15:04:05 -0700 -07"), in UTC."""
    return moment.astimezone(datetime.timezone.utc).strftime(GO_EXPIRES_LAYOUT)


def duration_seconds(value, field):
    """Seconds of a duration given as an int (seconds) or Go-style text (``720h``, ``30m``, ``1h30m``,
    plus ``d`` for days); raises InputError."""
    if isinstance(value, bool):
        raise InputError('%s must be a duration' % field)
    if isinstance(value, int):
        seconds = value
    else:
        text = str(value).strip()
        if text.isdigit():
            seconds = int(text)
        elif _DURATION.match(text):
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
        else:
            raise InputError('%s must be seconds or a duration like 720h, 30m, 1h30m or 30d (got %r)'
                             % (field, value))
    if seconds < 0:
        raise InputError('%s must not be negative' % field)
    return seconds


def go_duration(seconds):
    """A Go ``time.ParseDuration`` text for whole seconds (``-expiredFor``)."""
    return '%ds' % int(seconds)


def list_args(params):
    """argv after ``spire-server`` for ``agent list`` with the module's filters; raises InputError."""
    args = ['agent', 'list']
    selectors = check_selectors(params.get('selectors'))
    for sel in selectors:
        args += ['-selector', sel]
    match = params.get('match') or 'superset'
    if match not in MATCH_MODES:
        raise InputError('match must be one of %s (got %r)' % (', '.join(MATCH_MODES), match))
    if selectors:
        args += ['-matchSelectorsOn', match]
    if params.get('attestation_type'):
        args += ['-attestationType', params['attestation_type']]
    for name, flag in (('can_reattest', '-canReattest'), ('banned', '-banned')):
        if params.get(name) is not None:
            args += [flag, 'true' if params[name] else 'false']
    if params.get('expires_before') not in (None, ''):
        args += ['-expiresBefore', go_expires_before(parse_time(params['expires_before'], 'expires_before'))]
    return args


def selector_strings(selectors):
    return ['%s:%s' % (s.get('type'), s.get('value')) for s in selectors or []]


def agent_view(raw):
    """A readable agent from ``agent list|show -output json``."""
    spiffe_id = id_from_proto(raw.get('id'))
    expires = to_int(raw.get('x509svid_expires_at'))
    return {
        'spiffe_id': spiffe_id,
        'trust_domain': (raw.get('id') or {}).get('trust_domain') if isinstance(raw.get('id'), dict)
        else parse_spiffe_id(spiffe_id, 'agent id')['trust_domain'],
        'attestation_type': raw.get('attestation_type') or '',
        'x509svid_serial_number': raw.get('x509svid_serial_number') or '',
        'x509svid_expires_at': expires,
        'x509svid_expires_at_iso': iso_time(expires),
        'banned': bool(raw.get('banned')),
        'can_reattest': bool(raw.get('can_reattest')),
        'selectors': selector_strings(raw.get('selectors')),
        'agent_version': raw.get('agent_version') or '',
    }


def agents_view(answer):
    return [agent_view(a) for a in (answer or {}).get('agents') or []]


def agent_state(agent):
    """The state of one agent for diffs: absent / attested / banned."""
    if agent is None:
        return 'absent'
    return 'banned' if agent['banned'] else 'attested'


def plan_agent(state, current, spiffe_id):
    """The CLI action for ``state`` given the current agent (None when the server does not know it).

    Returns (action or None, after-state). Raises InputError for a ban of an unknown agent: SPIRE bans
    attested agents only (a ban keeps the record and refuses re-attestation).
    """
    before = agent_state(current)
    if state == 'evicted':
        if current is None:
            return None, before
        return 'evict', 'absent'
    if state == 'banned':
        if current is None:
            raise InputError('spiffe_id %s is not an attested agent of this server; only attested agents '
                             'can be banned' % spiffe_id)
        if current['banned']:
            return None, before
        return 'ban', 'banned'
    raise InputError('state must be one of %s (got %r)' % (', '.join(AGENT_STATES), state))


def check_agent_id(value, field='spiffe_id', trust_domain=None):
    """An agent's SPIFFE ID (spiffe://<td>/spire/agent/...); raises InputError."""
    parsed = check_spiffe_id(value, field)
    td, path = parsed['trust_domain'], parsed['path']
    if not path.startswith('/spire/agent/'):
        raise InputError('%s must be an agent ID: spiffe://<trust domain>/spire/agent/... (got %r)' % (field, value))
    if trust_domain and td != trust_domain:
        raise InputError('%s %s is not in the server\'s trust domain %s' % (field, value, trust_domain))
    return value


def purge_view(answer):
    """(agents, errors) from ``agent purge -output json``: {"expired_agents": [{agent_id, deleted, error}]}."""
    agents = []
    errors = []
    for item in (answer or {}).get('expired_agents') or []:
        entry = {'spiffe_id': id_from_proto(item.get('agent_id')), 'deleted': bool(item.get('deleted')),
                 'error': item.get('error') or ''}
        agents.append(entry)
        if entry['error']:
            errors.append(entry)
    return agents, errors


def check_token_ttl(ttl):
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1 or ttl > MAX_TTL:
        raise InputError('ttl must be a whole number of seconds between 1 and %d (got %r)' % (MAX_TTL, ttl))
    return ttl


def check_token_spiffe_id(value, trust_domain=None):
    """The optional SPIFFE ID a join token assigns: a workload-style ID in the server's trust domain,
    outside SPIRE's reserved /spire/ path (SPIRE's own rule)."""
    parsed = check_spiffe_id(value, 'spiffe_id')
    td, path = parsed['trust_domain'], parsed['path']
    if path == '/spire' or path.startswith('/spire/'):
        raise InputError('spiffe_id must not be under the reserved /spire/ path (got %r)' % value)
    if trust_domain and td != trust_domain:
        raise InputError('spiffe_id %s is not in the server\'s trust domain %s' % (value, trust_domain))
    return value


def token_view(answer):
    """(token, expires_at) of ``token generate -output json``: {"value", "expires_at"}."""
    return (answer or {}).get('value'), to_int((answer or {}).get('expires_at'))

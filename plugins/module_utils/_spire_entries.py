# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declarative SPIRE registration entries: normalisation, validation and the plan. Pure (no I/O).

An entry is identified by its key: (SPIFFE ID, parent ID, sorted selectors), the triple SPIRE itself
refuses to store twice (ALREADY_EXISTS). Every other field is compared for equality.

Ownership follows spire-controller-manager: entries whose ID is ``<entry_id_prefix>.<uuid>`` belong to
this configuration; others are never updated or deleted (a desired key that collides with one of them is
reported as an unmanaged conflict). Without a prefix, an entry that matches a desired key is managed
in place, and nothing is pruned.

Current entries are consumed as an iterator (one pass): only the desired entries, the changes and the
conflicts are kept, so reconciling 100,000 entries holds the normalised desired set, not the server's.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import json
import re
import uuid

from ansible_collections.trustroot.ops.plugins.module_utils._spiffe_id import (
    RESERVED_PATH, SpiffeError, check_dns_name, check_spiffe_id, normalize_trust_domain, parse_selector,
    spiffe_id_error)
from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError
# The fields compared between the desired and the current entry, and their defaults: one definition.
from ansible_collections.trustroot.ops.plugins.module_utils._spire_entry_model import (
    ALL_FIELDS, DEFAULTS, KEY_FIELDS, VALUE_FIELDS)

INPUT_FIELDS = ALL_FIELDS + ('entry_id', 'node')
MAX_TTL = 2 ** 31 - 1
MAX_HINT = 1024
MAX_ENTRY_ID = 255
MAX_PAYLOAD_BYTES = 1 << 20
MAX_BATCH_SIZE = 1000
# Entries per create/update command by default: each command is a process start and a round trip, and at
# 500 entries one command's cost is close to that of a single command for every entry.
DEFAULT_BATCH_SIZE = 500
# Up to this many desired entries (and without prune) the current state is read entry by entry;
# above it, one `entry show` of the whole server is streamed.
TARGETED_READ_LIMIT = 16
SERVER_PATH = '/spire/server'
NODE_PARENT = '(the server of the trust domain)'

_ENTRY_ID = re.compile(r'^[A-Za-z0-9._-]+$')
# Ansible's booleans (ansible.module_utils.parsing.convert_bool), for entries and entries_file alike.
_TRUE = ('true', 'yes', 'on', '1', 'y', 't')
_FALSE = ('false', 'no', 'off', '0', 'n', 'f')

# One normalised entry. ``id`` is None for a desired entry without an explicit ID. ``index`` is the
# position in the input (desired entries) or None (current entries).
Entry = collections.namedtuple('Entry', ('id',) + ALL_FIELDS + ('index',))


# Parent IDs already checked (they repeat across entries).
_VALID_PARENTS = set()


def _reserved(spiffe_id):
    """Whether a valid SPIFFE ID's path is in SPIRE's reserved /spire namespace."""
    rest = spiffe_id[len('spiffe://'):]
    slash = rest.find('/')
    path = rest[slash:] if slash >= 0 else ''
    return path == RESERVED_PATH or path.startswith(RESERVED_PATH + '/')


class EntryInputError(TrustrootError, ValueError):
    """Invalid desired entries; the text names the field (``entries[3].spiffe_id``) and the rule."""


_INTERNED = {}


def _intern(value):
    """One copy of strings that repeat across entries (parent IDs, trust domains)."""
    return _INTERNED.setdefault(value, value)


def key_of(entry):
    return (entry.spiffe_id, entry.parent_id, entry.selectors)


# Positions of the compared fields in an Entry (after 'id').
_ALL_SLICE = slice(1, 1 + len(ALL_FIELDS))
_VALUE_SLICE = slice(1 + len(KEY_FIELDS), 1 + len(ALL_FIELDS))


def values_of(entry):
    return entry[_VALUE_SLICE]


def describe_key(key):
    """Readable key: 'spiffe://td/web <- spiffe://td/agent [unix:uid:1000, ...]'."""
    return '%s <- %s [%s]' % (key[0], key[1], ', '.join(key[2]))


def describe(entry):
    text = describe_key(key_of(entry))
    return '%s (entry %s)' % (text, entry.id) if entry.id else text


def owned(entry_id, prefix):
    """Whether this configuration manages an existing entry with ``entry_id``."""
    if not prefix:
        return True
    return bool(entry_id) and entry_id.startswith(prefix + '.')


def new_entry_id(prefix):
    return '%s.%s' % (prefix, uuid.uuid4())


def entry_id_error(value):
    if not isinstance(value, str) or not value:
        return 'must be a non-empty string'
    if len(value) > MAX_ENTRY_ID:
        return 'is longer than %d characters' % MAX_ENTRY_ID
    if not _ENTRY_ID.match(value):
        return 'may only use letters, digits, dots, hyphens and underscores ([A-Za-z0-9._-])'
    return None


def check_prefix(prefix):
    """Validate entry_id_prefix (IDs will be ``<prefix>.<uuid>``, 36 characters after the dot)."""
    error = entry_id_error(prefix)
    if error is None and len(prefix) > MAX_ENTRY_ID - 37:
        error = 'is longer than %d characters' % (MAX_ENTRY_ID - 37)
    if error is None and prefix.endswith('.'):
        error = 'must not end with a dot (IDs are <prefix>.<uuid>)'
    if error:
        raise EntryInputError('entry_id_prefix: %s' % error)
    return prefix


# --- desired entries ------------------------------------------------------------------------------------

def _int_field(raw, name, where):
    value = raw.get(name)
    if value is None:
        return DEFAULTS[name]
    if isinstance(value, bool):
        raise EntryInputError('%s.%s: must be an integer' % (where, name))
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise EntryInputError('%s.%s: must be an integer, got %r' % (where, name, raw.get(name)))
    if value < 0:
        raise EntryInputError('%s.%s: must be >= 0 (0 means the server default), got %d' % (where, name, value))
    if name != 'expires_at' and value > MAX_TTL:
        raise EntryInputError('%s.%s: must be at most %d seconds' % (where, name, MAX_TTL))
    return value


def _bool_field(raw, name, where):
    value = raw.get(name)
    if value is None:
        return DEFAULTS[name]
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE:
        return True
    if isinstance(value, str) and value.lower() in _FALSE:
        return False
    raise EntryInputError('%s.%s: must be a boolean' % (where, name))


def _list_field(raw, name, where):
    value = raw.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        # As Ansible reads a list option given as a string: comma-separated.
        return value.split(',') if value else []
    if not isinstance(value, (list, tuple)):
        raise EntryInputError('%s.%s: must be a list' % (where, name))
    return value


def normalize_desired(raw, index, state='present'):
    """One desired entry (a dict in the module's input shape) as an Entry; EntryInputError otherwise.

    Syntax only: bind_trust_domain() then checks the entries against the server's trust domain. With
    ``state='absent'`` an entry is either ``entry_id`` alone or a full key."""
    where = 'entries[%d]' % index
    if not isinstance(raw, dict):
        raise EntryInputError('%s: must be a dictionary' % where)
    unknown = sorted(set(k for k, v in raw.items() if v is not None) - set(INPUT_FIELDS))
    if unknown:
        raise EntryInputError('%s: unknown field(s) %s' % (where, ', '.join(unknown)))
    entry_id = raw.get('entry_id')
    if entry_id is not None:
        error = entry_id_error(entry_id)
        if error:
            raise EntryInputError('%s.entry_id: %s' % (where, error))
    if state == 'absent' and entry_id and not raw.get('spiffe_id') and not raw.get('selectors'):
        return Entry(entry_id, None, None, None, index=index, **DEFAULTS)

    try:
        spiffe_id = raw.get('spiffe_id')
        if not spiffe_id:
            raise EntryInputError('%s.spiffe_id: is required' % where)
        if spiffe_id_error(spiffe_id) is not None or _reserved(spiffe_id):
            check_spiffe_id(spiffe_id, '%s.spiffe_id' % where, workload=True)

        parent_id = raw.get('parent_id')
        if raw.get('node'):
            if parent_id:
                raise EntryInputError('%s: node and parent_id are mutually exclusive (a node entry\'s parent is '
                                      'the server)' % where)
            parent_id = NODE_PARENT
        elif not parent_id:
            raise EntryInputError('%s.parent_id: is required (or node: true)' % where)
        elif parent_id not in _VALID_PARENTS:
            check_spiffe_id(parent_id, '%s.parent_id' % where)
            if len(_VALID_PARENTS) < 100000:
                _VALID_PARENTS.add(parent_id)

        selectors = _list_field(raw, 'selectors', where)
        if not selectors:
            raise EntryInputError('%s.selectors: at least one type:value selector is required' % where)
        normalized = set()
        for position, selector in enumerate(selectors):
            kind, value = parse_selector(selector, '%s.selectors[%d]' % (where, position))
            normalized.add('%s:%s' % (kind, value))

        federates_with = set()
        for position, name in enumerate(_list_field(raw, 'federates_with', where)):
            federates_with.add(_intern(normalize_trust_domain(name, '%s.federates_with[%d]' % (where, position))))

        dns_names = []
        for position, name in enumerate(_list_field(raw, 'dns_names', where)):
            check_dns_name(name, '%s.dns_names[%d]' % (where, position))
            if name not in dns_names:
                dns_names.append(name)
    except SpiffeError as err:
        raise EntryInputError(str(err))

    hint = raw.get('hint') or ''
    if not isinstance(hint, str):
        raise EntryInputError('%s.hint: must be a string' % where)
    if len(hint) > MAX_HINT:
        raise EntryInputError('%s.hint: is longer than %d characters' % (where, MAX_HINT))
    store_svid = _bool_field(raw, 'store_svid', where)
    sorted_selectors = tuple(sorted(normalized))
    if store_svid and len(set(s.split(':', 1)[0] for s in sorted_selectors)) > 1:
        raise EntryInputError('%s.selectors: with store_svid every selector must have the same type' % where)
    disable_prefetch = _bool_field(raw, 'disable_x509_svid_prefetch', where)
    if store_svid and disable_prefetch:
        raise EntryInputError('%s: store_svid and disable_x509_svid_prefetch are mutually exclusive' % where)

    return Entry(
        id=entry_id,
        spiffe_id=spiffe_id,
        parent_id=_intern(parent_id),
        selectors=sorted_selectors,
        x509_svid_ttl=_int_field(raw, 'x509_svid_ttl', where),
        jwt_svid_ttl=_int_field(raw, 'jwt_svid_ttl', where),
        federates_with=tuple(sorted(federates_with)),
        dns_names=tuple(dns_names),
        admin=_bool_field(raw, 'admin', where),
        downstream=_bool_field(raw, 'downstream', where),
        hint=hint,
        store_svid=store_svid,
        expires_at=_int_field(raw, 'expires_at', where),
        disable_x509_svid_prefetch=disable_prefetch,
        jwt_svid_include_jti=_bool_field(raw, 'jwt_svid_include_jti', where),
        index=index,
    )


def normalize_desired_list(raw_entries, state='present'):
    """Every desired entry normalised (syntax only); duplicate keys or entry IDs are an error naming both
    positions. Node entries carry a placeholder parent until bind_trust_domain()."""
    desired = []
    by_id = {}
    for index, raw in enumerate(raw_entries or []):
        entry = normalize_desired(raw, index, state)
        if entry.id is not None:
            if entry.id in by_id:
                raise EntryInputError('entries[%d].entry_id: %s is also given in entries[%d]'
                                      % (index, entry.id, by_id[entry.id]))
            by_id[entry.id] = index
        desired.append(entry)
    return desired


def reads_whole_server(count, prune):
    """Whether the current state is read with one `entry show` of the whole server (True) or entry by
    entry. ``count`` is the number of desired entries, None when not known before reading them (a file)."""
    return bool(prune) or count is None or count > TARGETED_READ_LIMIT


def bind_trust_domain(desired, trust_domain):
    """Check every entry against the server's trust domain and resolve node parents. Returns the list.

    A SPIFFE ID or parent ID in another trust domain, or federates_with naming the server's own trust
    domain, is an EntryInputError naming the field. Duplicate keys are detected here (after node parents
    are known)."""
    prefix = 'spiffe://%s/' % trust_domain
    node_parent = _intern('spiffe://%s%s' % (trust_domain, SERVER_PATH))
    by_key = {}
    for position, entry in enumerate(desired):
        if entry.spiffe_id is None:
            continue
        where = 'entries[%d]' % entry.index
        if entry.parent_id == NODE_PARENT:
            entry = entry._replace(parent_id=node_parent)
            desired[position] = entry
        for name in ('spiffe_id', 'parent_id'):
            value = getattr(entry, name)
            if not value.startswith(prefix):
                raise EntryInputError('%s.%s: %s is in trust domain %r, not in the server\'s trust domain %r'
                                      % (where, name, value, value[len('spiffe://'):].split('/', 1)[0],
                                         trust_domain))
        if trust_domain in entry.federates_with:
            raise EntryInputError('%s.federates_with: %s is the server\'s own trust domain' % (where, trust_domain))
        key = key_of(entry)
        if key in by_key:
            raise EntryInputError('%s: same SPIFFE ID, parent ID and selectors as entries[%d] (%s)'
                                  % (where, by_key[key], describe_key(key)))
        by_key[key] = entry.index
    return desired


# --- current entries ------------------------------------------------------------------------------------

def _id_string(value):
    if isinstance(value, dict):
        return 'spiffe://%s%s' % (value.get('trust_domain') or '', value.get('path') or '')
    return value or ''


def normalize_current(raw):
    """An entry as ``entry show -output json`` prints it (IDs as {trust_domain, path}) as an Entry.

    Called once per entry on the server (a no-op run of 100,000 entries reads them all): the Entry is built
    positionally, and the common shapes (ID objects, no federation) take the short paths."""
    get = raw.get
    attributes = get('additional_attributes') or _EMPTY
    federates_with = get('federates_with')
    return _new_entry((
        get('id') or get('entry_id'),
        _id_string(get('spiffe_id')),
        _intern(_id_string(get('parent_id'))),
        tuple(sorted(['%s:%s' % (s.get('type'), s.get('value')) for s in get('selectors') or ()])),
        int(get('x509_svid_ttl') or 0),
        int(get('jwt_svid_ttl') or 0),
        tuple(sorted(_intern(normalize_federated_name(n)) for n in federates_with)) if federates_with else (),
        tuple(get('dns_names') or ()),
        bool(get('admin')),
        bool(get('downstream')),
        get('hint') or '',
        bool(get('store_svid')),
        int(get('expires_at') or get('entryExpiry') or 0),
        bool(attributes.get('disable_x509_svid_prefetch')),
        bool(attributes.get('jwt_svid_include_jti')),
        None,
    ))


_EMPTY = {}
_new_entry = Entry._make  # from one positional tuple, without keyword handling


def normalize_federated_name(name):
    return name[len('spiffe://'):] if name.startswith('spiffe://') else name


# --- the plan ---------------------------------------------------------------------------------------------

class Plan(object):
    """What reconciliation will do. ``create``: desired Entries (``id`` set when known beforehand);
    ``update``: (current, desired) pairs, desired carrying the current ID; ``delete``: current Entries;
    ``conflicts``: (current, desired or None, reason) triples; ``unchanged``: a count."""

    def __init__(self):
        self.create = []
        self.update = []
        self.delete = []
        self.conflicts = []
        self.unchanged = 0

    @property
    def changed(self):
        return bool(self.create or self.update or self.delete)

    def counts(self):
        return {'created': len(self.create), 'updated': len(self.update), 'deleted': len(self.delete),
                'unchanged': self.unchanged, 'conflicts': len(self.conflicts)}


def plan_present(desired, current, prefix=None, prune=False):
    """Plan ``state=present``. ``current`` is any iterable of current Entries, consumed once."""
    plan = Plan()
    by_key = {}
    by_id = {}
    for entry in desired:
        if entry.id is not None:
            by_id[entry.id] = entry
        else:
            by_key[key_of(entry)] = entry
    explicit_keys = dict((key_of(entry), entry) for entry in by_id.values())
    # matched[i]: ID of the current entry that matched desired entry i (indexes are input positions), so
    # an entry listed twice (targeted reads by ID and by key) is recognised; '' for a conflict.
    matched = [None] * (max([e.index for e in desired] or [-1]) + 1)

    for entry in current:
        key = key_of(entry)
        want = by_id.get(entry.id)
        if want is None:
            want = by_key.get(key)
        if want is not None and matched[want.index] is not None:
            if matched[want.index] == entry.id:
                continue          # the same entry again
            want = None
        if want is not None:
            matched[want.index] = entry.id
            if want.id is not None:
                _compare(plan, entry, want, full=True)
            elif owned(entry.id, prefix):
                _compare(plan, entry, want, full=False)
            else:
                plan.conflicts.append((entry, want, _conflict_reason(entry, want, prefix)))
            continue
        want = explicit_keys.get(key)
        if want is not None:
            # The key is held by another entry than the requested entry_id: SPIRE refuses a second one.
            if matched[want.index] is None:
                plan.conflicts.append((entry, want, 'entries[%d] asks for entry ID %s but entry %s already has '
                                       'this SPIFFE ID, parent ID and selectors' % (want.index, want.id, entry.id)))
                matched[want.index] = ''
            continue
        if prune and prefix and owned(entry.id, prefix):
            plan.delete.append(entry)

    for entry in desired:
        if matched[entry.index] is None:
            if entry.id is None and prefix:
                entry = entry._replace(id=new_entry_id(prefix))
            plan.create.append(entry)
    plan.create.sort(key=lambda e: e.index)
    plan.update.sort(key=lambda pair: pair[1].index)
    return plan


def _conflict_reason(current, want, prefix):
    same = values_of(current) == values_of(want)
    return 'entry %s is not owned (its ID does not start with %s.)%s' % (
        current.id, prefix, '' if same else '; its fields differ and are left as they are')


def _compare(plan, current, want, full):
    fields = _ALL_SLICE if full else _VALUE_SLICE
    if current[fields] != want[fields]:
        plan.update.append((current, want._replace(id=current.id)))
    else:
        plan.unchanged += 1


def plan_absent(desired, current, prefix=None):
    """Plan ``state=absent``: delete the listed entries that exist. An entry given by ``entry_id`` is
    deleted whoever owns it; one given by key only when owned (any, without a prefix)."""
    plan = Plan()
    by_id = dict((e.id, e) for e in desired if e.id is not None)
    by_key = dict((key_of(e), e) for e in desired if e.spiffe_id is not None and e.id is None)
    seen = set()
    for entry in current:
        if entry.id in seen:
            continue
        seen.add(entry.id)
        if entry.id in by_id:
            plan.delete.append(entry)
            continue
        want = by_key.get(key_of(entry))
        if want is not None:
            if owned(entry.id, prefix):
                plan.delete.append(entry)
            else:
                plan.conflicts.append((entry, want, 'entry %s is not owned (its ID does not start with %s.); '
                                       'it is not deleted' % (entry.id, prefix)))
    plan.unchanged = 0
    return plan


def changed_fields(current, desired):
    """{field: {'before': ..., 'after': ...}} for every field that differs."""
    changes = {}
    for name in ALL_FIELDS:
        before, after = getattr(current, name), getattr(desired, name)
        if before != after:
            changes[name] = {'before': _plain(before), 'after': _plain(after)}
    return changes


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


# --- CLI payloads -----------------------------------------------------------------------------------------

def to_input(entry):
    """The legacy ``-data`` input shape of ``entry create|update`` for an Entry (every field)."""
    data = {
        'spiffe_id': entry.spiffe_id,
        'parent_id': entry.parent_id,
        'selectors': [dict(zip(('type', 'value'), s.split(':', 1))) for s in entry.selectors],
        'x509_svid_ttl': entry.x509_svid_ttl,
        'jwt_svid_ttl': entry.jwt_svid_ttl,
        'federates_with': list(entry.federates_with),
        'dns_names': list(entry.dns_names),
        'admin': entry.admin,
        'downstream': entry.downstream,
        'entryExpiry': entry.expires_at,
        'store_svid': entry.store_svid,
        'hint': entry.hint,
    }
    if entry.id:
        data['entry_id'] = entry.id
    if entry.disable_x509_svid_prefetch or entry.jwt_svid_include_jti:
        data['additional_attributes'] = {'disable_x509_svid_prefetch': entry.disable_x509_svid_prefetch,
                                         'jwt_svid_include_jti': entry.jwt_svid_include_jti}
    return data


def batch_payload(entries):
    return json.dumps({'entries': [to_input(e) for e in entries]}, separators=(',', ':'))


def payload_batches(items, max_count, max_bytes=MAX_PAYLOAD_BYTES, entry_of=None):
    """Yield (batch of items, ``-data`` payload) with at most ``max_count`` items and, beyond the first item
    of a batch, at most ``max_bytes`` of JSON: gRPC messages are capped at 4 MiB, and the answer echoes
    the entries back, so a batch stays well under that. ``entry_of(item)`` gives the Entry to send
    (default: the item itself)."""
    batch, parts, size = [], [], 0
    for entry in items:
        part = json.dumps(to_input(entry_of(entry) if entry_of else entry), separators=(',', ':'))
        if batch and (len(batch) >= max_count or size + len(part) > max_bytes):
            yield batch, '{"entries":[%s]}' % ','.join(parts)
            batch, parts, size = [], [], 0
        batch.append(entry)
        parts.append(part)
        size += len(part) + 1
    if batch:
        yield batch, '{"entries":[%s]}' % ','.join(parts)


def delete_payload(entry_ids):
    return json.dumps({'ids': list(entry_ids)}, separators=(',', ':'))


def show_args_for_key(key):
    """``entry show`` arguments that list the entries with exactly this key."""
    args = ['entry', 'show', '-spiffeID', key[0], '-parentID', key[1]]
    for selector in key[2]:
        args += ['-selector', selector]
    return args + ['-matchSelectorsOn', 'exact']


# --- results ----------------------------------------------------------------------------------------------

def to_result(entry):
    """An Entry as returned to the user."""
    result = {'entry_id': entry.id}
    for name in ALL_FIELDS:
        result[name] = _plain(getattr(entry, name))
    return result


def diff_view(entry):
    """The fields of an entry as they appear in the diff (keyed by describe_key elsewhere)."""
    view = {'entry_id': entry.id}
    for name in VALUE_FIELDS:
        view[name] = _plain(getattr(entry, name))
    return view


def build_diff(plan):
    """Ansible's before/after diff: dictionaries keyed by the readable entry key."""
    before, after = {}, {}
    for current, desired in plan.update:
        before[describe(current)] = diff_view(current)
        after[describe(current)] = diff_view(desired)
        if key_of(current) != key_of(desired):
            after[describe(current)]['key'] = describe_key(key_of(desired))
    for entry in plan.create:
        after[describe_key(key_of(entry))] = diff_view(entry)
    for entry in plan.delete:
        before[describe(entry)] = diff_view(entry)
    return {'before': before, 'after': after,
            'before_header': 'registration entries (changed or deleted)',
            'after_header': 'registration entries (changed or created)'}


def interruption_note(planned, created, updated, deleted, unconfirmed):
    """How far a run stopped by a command error got (pure): the changes SPIRE confirmed, and those sent in
    commands that got no answer (the server died, the socket went away). SPIRE may have applied part of the
    latter; a re-run reads the entries back and sends only what is missing, so nothing is made twice."""
    note = 'applied before this error: %d created, %d updated, %d deleted, of %d planned changes' % (
        created, updated, deleted, planned)
    if unconfirmed:
        note += ('; %d more were sent in commands that got no answer: SPIRE may have applied some of them, '
                 'a re-run reads them back' % unconfirmed)
    return note

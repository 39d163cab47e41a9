#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: spire_entry
short_description: Declare SPIRE registration entries
version_added: 0.1.0
description:
  - Makes the registration entries of a SPIRE server match a list, the way spire-controller-manager does.
  - An entry is identified by its key, the SPIFFE ID, the parent ID and the sorted selectors, which SPIRE
    refuses to store twice. Entries of the list that do not exist are created, existing ones whose other
    fields differ are updated (every field is sent, since SPIRE replaces the whole entry), and with
    O(prune=true) the entries this configuration owns that are not in the list are deleted.
  - "Ownership: with O(entry_id_prefix), new entries get the ID C(<entry_id_prefix>.<uuid>), and only
    entries whose ID carries that prefix are ever updated or deleted. Entries made by other means that
    have a key of the list are left alone and reported in RV(unmanaged_conflicts). Without
    O(entry_id_prefix), an existing entry with a key of the list is updated in place, and nothing is pruned."
  - Every entry is validated before the first change; an error names the entry and the field.
  - Changes are sent in batches (50 creations or updates, 200 deletions per command). SPIRE answers each
    entry of a batch separately; when some fail, the others are still applied, and the task fails listing
    each failed entry with SPIRE's message.
  - Two runs with the same list at the same time do not create duplicates. SPIRE refuses a second entry
    with the same key (ALREADY_EXISTS); the module then reads the entry back and treats it as existing.
options:
  entries:
    description:
      - The registration entries. With O(state=absent), an entry may be given by O(entries[].entry_id) alone.
      - An empty list with O(prune=true) deletes every entry this configuration owns.
      - Exactly one of O(entries) and O(entries_file) is required.
      - The module checks every field of every entry itself, by the same rules as for O(entries_file); an error
        names the entry and the field (C(entries[3].spiffe_id)).
      - For thousands of entries, O(entries_file) is faster; inline entries are templated and sent by the
        controller as task arguments.
    type: list
    elements: dict
    suboptions:
      spiffe_id:
        description:
          - SPIFFE ID of the workload, in the server's trust domain, outside the C(/spire) namespace.
        type: str
      parent_id:
        description:
          - SPIFFE ID of the parent (an agent, or an entry used as a node alias), in the server's trust domain.
          - Required unless O(entries[].node=true).
        type: str
      node:
        description:
          - A node entry (node alias) whose parent is the server (C(spiffe://<trust domain>/spire/server)).
        type: bool
        default: false
      selectors:
        description:
          - Selectors as C(type:value) strings, for example V(unix:uid:1000) or V(k8s:ns:payments).
          - Their order does not matter.
        type: list
        elements: str
      entry_id:
        description:
          - Explicit ID of the entry. The entry with this ID is managed whatever its prefix.
          - Letters, digits, dots, hyphens and underscores; at most 255 characters.
        type: str
      x509_svid_ttl:
        description: Lifetime of X.509-SVIDs in seconds; V(0) means the server's default.
        type: int
        default: 0
      jwt_svid_ttl:
        description: Lifetime of JWT-SVIDs in seconds; V(0) means the server's default.
        type: int
        default: 0
      federates_with:
        description:
          - Trust domains (V(other.example) or V(spiffe://other.example)) whose bundles the workload receives.
          - The server must already have a bundle for each of them.
        type: list
        elements: str
        default: []
      dns_names:
        description: DNS names added to the X.509-SVID (the first one is its common name).
        type: list
        elements: str
        default: []
      admin:
        description: Grant the workload access to the server's administrative APIs.
        type: bool
        default: false
      downstream:
        description: The workload is a downstream SPIRE server.
        type: bool
        default: false
      hint:
        description: Hint that tells entries with the same SPIFFE ID apart (at most 1024 characters).
        type: str
        default: ''
      store_svid:
        description: Store the issued SVID through an SVIDStore plugin.
        type: bool
        default: false
      expires_at:
        description: Expiry of the entry as seconds since the epoch; V(0) means never.
        type: int
        default: 0
      disable_x509_svid_prefetch:
        description: Tell agents not to prefetch X.509-SVIDs for this entry.
        type: bool
        default: false
      jwt_svid_include_jti:
        description: Add a unique C(jti) claim to JWT-SVIDs of this entry.
        type: bool
        default: false
  entries_file:
    description:
      - Path, on the host that runs the module, of a JSON file with the entries, either a list or an
        object with an C(entries) list, each entry with the fields of O(entries).
      - Meant for thousands of entries. The file is read as a stream by the module, so the controller does not
        template and send the entries as task arguments and the module never holds the raw list; each
        entry is validated by the same rules.
    type: path
  batch_size:
    description:
      - Entries created or updated per C(spire-server) command (deletions go by 200).
      - Each command costs a process start, so fewer, larger batches are faster; for a few entries the
        size makes no difference. A batch is also cut at 1 MiB of JSON so requests stay well under SPIRE's
        4 MiB message limit.
    type: int
    default: 500
  parallel:
    description:
      - How many C(spire-server) batch commands run at the same time within each step (creations, then
        updates, then deletions); at most 8. Each entry still gets its own result.
      - Much of the time of a command is its process start, which overlaps with the server's work on
        another batch. V(1) runs the batches one after the other.
    type: int
    default: 2
  state:
    description:
      - V(present) creates and updates the entries; V(absent) deletes them.
      - With V(absent), an entry given by O(entries[].entry_id) is deleted whoever created it; an entry
        given by its key is deleted only when it is owned (see O(entry_id_prefix)).
    type: str
    choices: [present, absent]
    default: present
  entry_id_prefix:
    description:
      - Marks the entries this configuration owns (C(<entry_id_prefix>.<uuid>)). Required for O(prune).
      - Letters, digits, dots, hyphens and underscores; use one prefix per source of truth.
    type: str
  prune:
    description:
      - With O(state=present), delete the owned entries (ID prefixed with O(entry_id_prefix)) that are
        not in O(entries).
    type: bool
    default: false
  report_limit:
    description:
      - Return the created, updated and deleted entries themselves only up to this many of each (the
        counts are always returned). The diff always lists every change.
    type: int
    default: 100
extends_documentation_fragment:
  - trustroot.ops.spire_server
attributes:
  check_mode:
    support: full
    description: Reads the current entries and reports the changes without making them.
  diff_mode:
    support: full
    description: Before and after of every created, updated and deleted entry, keyed by the entry's key.
author:
  - trustroot.ops maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Declare the workloads of the payments team
  trustroot.ops.spire_entry:
    entry_id_prefix: payments
    prune: true
    entries:
      - spiffe_id: spiffe://example.org/payments/api
        parent_id: spiffe://example.org/spire/agent/x509pop/0a1b2c
        selectors: ["unix:uid:1001", "unix:gid:1001"]
        x509_svid_ttl: 3600
        dns_names: [api.payments.example.org]
      - spiffe_id: spiffe://example.org/payments/worker
        parent_id: spiffe://example.org/spire/agent/x509pop/0a1b2c
        selectors: ["unix:uid:1002"]
        federates_with: [partner.example]

- name: Remove one entry by ID
  trustroot.ops.spire_entry:
    state: absent
    entries:
      - entry_id: payments.6b0b9d6e-3c39-4d6c-9d0f-6a1f5a7c2e11

- name: Entries kept in a file of the repository, checked on pull requests with --check --diff
  trustroot.ops.spire_entry:
    socket_path: /run/spire/server/private/api.sock
    entry_id_prefix: gitops
    prune: true
    entries: "{{ lookup('ansible.builtin.file', 'spire/entries.json') | from_json }}"

- name: Copy a large set of entries next to the server
  ansible.builtin.copy:
    src: spire/entries.json
    dest: /var/lib/spire/declared-entries.json
    mode: "0600"

- name: Reconcile tens of thousands of entries from that file
  trustroot.ops.spire_entry:
    entries_file: /var/lib/spire/declared-entries.json
    entry_id_prefix: gitops
    prune: true
    batch_size: 500
    report_limit: 0
'''

RETURN = r'''
counts:
  description: How many entries were (or, in check mode, would be) created, updated, deleted, left unchanged,
    and how many desired entries collide with entries this configuration does not own.
  returned: always
  type: dict
  contains:
    created: {description: Entries created., type: int, returned: always}
    updated: {description: Entries updated., type: int, returned: always}
    deleted: {description: Entries deleted., type: int, returned: always}
    unchanged: {description: Desired entries that already matched., type: int, returned: always}
    conflicts: {description: Desired entries that collide with an entry not owned., type: int, returned: always}
  sample: {created: 2, updated: 0, deleted: 1, unchanged: 40, conflicts: 0}
created:
  description:
    - The created entries (up to O(report_limit)), with their fields. In check mode RV(created[].entry_id)
      is the ID the entry would get, or null when the server would choose it.
  returned: always
  type: list
  elements: dict
  contains:
    entry_id: {description: ID of the entry., type: str, returned: always}
    spiffe_id: {description: SPIFFE ID., type: str, returned: always}
    parent_id: {description: Parent ID., type: str, returned: always}
    selectors: {description: "Selectors as C(type:value), sorted.", type: list, elements: str, returned: always}
  sample:
    - entry_id: payments.6b0b9d6e-3c39-4d6c-9d0f-6a1f5a7c2e11
      spiffe_id: spiffe://example.org/payments/api
      parent_id: spiffe://example.org/spire/agent/x509pop/0a1b2c
      selectors: ["unix:gid:1001", "unix:uid:1001"]
      x509_svid_ttl: 3600
      jwt_svid_ttl: 0
      federates_with: []
      dns_names: [api.payments.example.org]
      admin: false
      downstream: false
      hint: ''
      store_svid: false
      expires_at: 0
      disable_x509_svid_prefetch: false
      jwt_svid_include_jti: false
updated:
  description: The updated entries (up to O(report_limit)), each with the fields that changed.
  returned: always
  type: list
  elements: dict
  contains:
    entry_id: {description: ID of the entry., type: str, returned: always}
    spiffe_id: {description: SPIFFE ID after the update., type: str, returned: always}
    parent_id: {description: Parent ID after the update., type: str, returned: always}
    selectors: {description: Selectors after the update., type: list, elements: str, returned: always}
    changes:
      description: "For each changed field, C({before: ..., after: ...})."
      type: dict
      returned: always
deleted:
  description: The deleted entries (up to O(report_limit)), with their fields.
  returned: always
  type: list
  elements: dict
unmanaged_conflicts:
  description:
    - Desired entries whose key is held by an entry this configuration does not own (or, with an explicit
      O(entries[].entry_id), by another entry). Those entries are left as they are.
  returned: always
  type: list
  elements: dict
  contains:
    entry_id: {description: ID of the existing entry., type: str, returned: always}
    index: {description: Position of the desired entry in O(entries)., type: int, returned: always}
    key: {description: "The key: C(<spiffe_id> <- <parent_id> [selectors])", type: str, returned: always}
    reason: {description: Why the entry is left alone., type: str, returned: always}
    fields_differ: {description: Whether the existing entry's other fields differ from the desired ones., type: bool,
                    returned: always}
truncated:
  description: Whether RV(created), RV(updated), RV(deleted) or RV(unmanaged_conflicts) were cut at O(report_limit).
  returned: always
  type: bool
trust_domain:
  description: The server's trust domain.
  returned: success
  type: str
  sample: example.org
failures:
  description: On failure, one item per entry SPIRE refused, C({item, code, message}).
  returned: failure
  type: list
  elements: dict
unconfirmed:
  description:
    - When a command failed as a whole (the server stopped, the socket went away), how many entry changes were in
      commands sent without an answer. SPIRE may have applied some of them; a re-run reads the entries back and
      makes no duplicate.
  returned: when a command failed as a whole
  type: int
'''

import collections
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._spire import (
    ALREADY_EXISTS, CODE_NAMES, MAX_DELETE_BATCH, NOT_FOUND, SpireError, SpireServerCLI, chunked,
    iter_json_array, server_argument_spec)
from ansible_collections.trustroot.ops.plugins.module_utils._spire_entries import (
    DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, EntryInputError, bind_trust_domain, build_diff, changed_fields, check_prefix,
    delete_payload, describe, describe_key, interruption_note, key_of, normalize_current, normalize_desired_list, owned,
    payload_batches, reads_whole_server, plan_absent, plan_present, show_args_for_key, to_result, values_of)

MAX_PARALLEL = 8


def read_entries(cli, args):
    """Current Entries listed by `entry show <filters>`; none when an -entryID lookup finds nothing."""
    try:
        answer = cli.run_json(args)
    except SpireError as err:
        if err.grpc_code == 'NotFound':
            return []
        raise
    return [normalize_current(raw) for raw in answer.get('entries') or []]


def stream_all(cli):
    for raw in cli.stream_json_array(['entry', 'show'], 'entries'):
        yield normalize_current(raw)


def read_current(cli, desired, full):
    """The current entries that matter: all of them (streamed) or, for a few desired entries, those
    found by their keys and IDs."""
    if full:
        return stream_all(cli)
    found = []
    for entry in desired:
        if entry.id is not None:
            found.extend(read_entries(cli, ['entry', 'show', '-entryID', entry.id]))
        if entry.spiffe_id is not None:
            found.extend(read_entries(cli, show_args_for_key(key_of(entry))))
    return found


class Prefetch(object):
    """`entry show` of the whole server, started before the desired entries are validated: the server's
    answer is most of a no-op run, and the module's own work (validation, the trust domain) overlaps
    with it. A thread waits for the first entry (the process start and the server's listing); the rest is
    streamed by the caller, so the answer is never held whole."""

    def __init__(self, cli):
        self._stream = stream_all(cli)
        self._first = []
        self._error = None
        self._thread = threading.Thread(target=self._wait_first)
        self._thread.daemon = True
        self._thread.start()

    def _wait_first(self):
        try:
            self._first.append(next(self._stream))
        except StopIteration:
            pass
        except Exception as err:  # pylint: disable=broad-except
            # Raised again in the module's thread by entries().
            self._error = err

    def entries(self):
        """Every current Entry (an iterator, consumed once); raises what the read raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return itertools.chain(self._first, self._stream)


class Applier(object):
    """Runs a plan in batches and records what was applied and what SPIRE refused."""

    def __init__(self, cli, prefix, batch_size=DEFAULT_BATCH_SIZE, parallel=1):
        self.cli = cli
        self.prefix = prefix
        self.batch_size = batch_size
        self.parallel = parallel
        self.created = []
        self.updated = []
        self.deleted = []
        self.failures = []
        self.concurrent = 0
        self.unconfirmed = 0

    def _results(self, args, payload, size):
        answer = self.cli.run_json(args, data=payload)
        results = answer.get('results') or []
        if len(results) != size:
            raise SpireError('%s answered %d results for %d entries' % (' '.join(args[:2]), len(results), size))
        return results

    def _batches(self, args, batches):
        """Run each (batch, payload) of ``batches``, up to ``parallel`` commands at once, and yield (batch,
        results) in order. After a command fails, no new one starts; those already running finish and
        are yielded, then the error is raised."""
        if self.parallel <= 1:
            for batch, payload in batches:
                try:
                    results = self._results(args, payload, len(batch))
                except SpireError:
                    self.unconfirmed += len(batch)
                    raise
                yield batch, results
            return
        error = None
        pending = collections.deque()
        source = iter(batches)
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            while True:
                while error is None and len(pending) < self.parallel:
                    item = next(source, None)
                    if item is None:
                        break
                    pending.append((item[0], pool.submit(self._results, args, item[1], len(item[0]))))
                if not pending:
                    break
                batch, future = pending.popleft()
                try:
                    results = future.result()
                except SpireError as err:
                    # Sent, but no answer read: SPIRE may or may not have applied this batch.
                    error = error or err
                    self.unconfirmed += len(batch)
                    continue
                yield batch, results
        if error is not None:
            raise error

    def _fail(self, item, status):
        code = int(status.get('code') or 0)
        self.failures.append({'item': item, 'code': code, 'message': status.get('message') or CODE_NAMES.get(code)})

    def create(self, entries):
        existing = []
        for batch, results in self._batches(['entry', 'create', '-data', '-'],
                                            payload_batches(entries, self.batch_size)):
            for entry, result in zip(batch, results):
                status = result.get('status') or {}
                code = int(status.get('code') or 0)
                if code == 0:
                    self.created.append(entry._replace(id=(result.get('entry') or {}).get('id') or entry.id))
                elif code == ALREADY_EXISTS:
                    existing.append(entry)
                else:
                    self._fail(describe_key(key_of(entry)), status)
        return existing

    def update(self, pairs):
        batches = payload_batches(pairs, self.batch_size, entry_of=lambda pair: pair[1])
        for batch, results in self._batches(['entry', 'update', '-data', '-'], batches):
            for (current, desired), result in zip(batch, results):
                status = result.get('status') or {}
                if int(status.get('code') or 0) == 0:
                    self.updated.append((current, desired))
                else:
                    self._fail(describe(current), status)

    def delete(self, entries):
        batches = ((batch, delete_payload(e.id for e in batch)) for batch in chunked(entries, MAX_DELETE_BATCH))
        for batch, results in self._batches(['entry', 'delete', '-file', '-'], batches):
            for entry, result in zip(batch, results):
                status = result.get('status') or {}
                code = int(status.get('code') or 0)
                if code == 0:
                    self.deleted.append(entry)
                elif code != NOT_FOUND:   # already gone (deleted by a concurrent run): nothing to do
                    self._fail(describe(entry), status)

    def resolve_existing(self, entries, conflicts):
        """Creations refused with ALREADY_EXISTS: a concurrent run (or someone) made an entry with the same
        key in between. Read it back: the same owned entry counts as existing, an owned one with other
        fields is updated, one not owned is a conflict."""
        wanted = dict((key_of(e), e) for e in entries)
        if not reads_whole_server(len(entries), False):
            current = []
            for entry in entries:
                current.extend(read_entries(self.cli, show_args_for_key(key_of(entry))))
        else:
            current = (e for e in stream_all(self.cli) if key_of(e) in wanted)
        updates = []
        for entry in current:
            want = wanted.pop(key_of(entry), None)
            if want is None:
                continue
            if not owned(entry.id, self.prefix):
                conflicts.append((entry, want, 'entry %s was created by someone else while this task ran'
                                  % entry.id))
            elif values_of(entry) == values_of(want):
                self.concurrent += 1
            else:
                updates.append((entry, want._replace(id=entry.id)))
        for want in wanted.values():
            self.failures.append({'item': describe_key(key_of(want)), 'code': ALREADY_EXISTS,
                                  'message': 'SPIRE reported a similar entry but none was found when read back'})
        if updates:
            self.update(updates)


def conflict_view(current, desired, reason):
    return {'entry_id': current.id, 'index': desired.index if desired is not None else None,
            'key': describe_key(key_of(current)), 'reason': reason,
            'fields_differ': desired is not None and values_of(current) != values_of(desired)}


def updated_view(current, desired):
    view = {'entry_id': current.id, 'spiffe_id': desired.spiffe_id, 'parent_id': desired.parent_id,
            'selectors': list(desired.selectors), 'changes': changed_fields(current, desired)}
    return view


def build_result(trust_domain, created, updated, deleted, unchanged, conflicts, limit):
    truncated = any(len(items) > limit for items in (created, updated, deleted, conflicts))
    return dict(
        trust_domain=trust_domain,
        counts={'created': len(created), 'updated': len(updated), 'deleted': len(deleted),
                'unchanged': unchanged, 'conflicts': len(conflicts)},
        created=[to_result(e) for e in created[:limit]],
        updated=[updated_view(c, d) for c, d in updated[:limit]],
        deleted=[to_result(e) for e in deleted[:limit]],
        unmanaged_conflicts=[conflict_view(*c) for c in conflicts[:limit]],
        truncated=truncated,
    )


def read_entries_file(path):
    """Raw entries streamed from a JSON file: a list, or an object with an ``entries`` list."""
    with open(path, 'r') as handle:
        chunks = iter(lambda: handle.read(1 << 20), '')
        first = next(chunks, '')
        key = None if first.lstrip()[:1] == '[' else 'entries'
        yield from iter_json_array(itertools.chain([first], chunks), key)


def main():
    argument_spec = server_argument_spec()
    argument_spec.update(
        # No sub-options here: normalize_desired() checks every field of every entry (the same rules as for
        # entries_file), and AnsibleModule's own per-entry checks and copies cost more than the server's
        # answer for thousands of entries.
        entries=dict(type='list', elements='dict'),
        entries_file=dict(type='path'),
        batch_size=dict(type='int', default=DEFAULT_BATCH_SIZE),
        parallel=dict(type='int', default=2),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        entry_id_prefix=dict(type='str'),
        prune=dict(type='bool', default=False),
        report_limit=dict(type='int', default=100),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('prune', True, ('entry_id_prefix',))],
                           required_one_of=[('entries', 'entries_file')],
                           mutually_exclusive=[('entries', 'entries_file')])
    params = module.params
    state = params['state']
    prefix = params['entry_id_prefix']
    limit = max(0, params['report_limit'])

    cli = SpireServerCLI(module)
    # A whole-server read is started now when it will be needed (a count not known before reading
    # entries_file counts as many): it overlaps with the validation below.
    prefetch = None
    if reads_whole_server(len(params['entries'] or ()) if not params['entries_file'] else None, params['prune']):
        prefetch = Prefetch(cli)

    # Validation of the input alone, before any call.
    try:
        if prefix is not None:
            check_prefix(prefix)
        if state == 'absent' and params['prune']:
            raise EntryInputError('prune: applies to state=present only')
        if not 1 <= params['batch_size'] <= MAX_BATCH_SIZE:
            raise EntryInputError('batch_size: must be between 1 and %d' % MAX_BATCH_SIZE)
        if not 1 <= params['parallel'] <= MAX_PARALLEL:
            raise EntryInputError('parallel: must be between 1 and %d' % MAX_PARALLEL)
        if params['entries_file']:
            try:
                desired = normalize_desired_list(read_entries_file(params['entries_file']), state)
            except (IOError, OSError) as err:
                raise EntryInputError('entries_file: cannot read %s: %s' % (params['entries_file'], err))
            except ValueError as err:
                if isinstance(err, EntryInputError):
                    raise
                raise EntryInputError('entries_file: %s is not a JSON list of entries (or an object with '
                                      'an "entries" list): %s' % (params['entries_file'], err))
        else:
            desired = normalize_desired_list(params['entries'], state)
    except EntryInputError as err:
        module.fail_json(msg=str(err))
    # The raw input is no longer needed: drop it so only the normalised entries stay in memory.
    params['entries'] = None

    try:
        trust_domain = cli.run_json(['bundle', 'show']).get('trust_domain')
    except SpireError as err:
        module.fail_json(msg=err.message)
    try:
        bind_trust_domain(desired, trust_domain)
    except EntryInputError as err:
        module.fail_json(msg=str(err))

    try:
        if prefetch is not None:
            current = prefetch.entries()
        else:
            current = read_current(cli, desired, reads_whole_server(len(desired), params['prune']))
        if state == 'present':
            plan = plan_present(desired, current, prefix=prefix, prune=params['prune'])
        else:
            plan = plan_absent(desired, current, prefix=prefix)
    except SpireError as err:
        module.fail_json(msg=err.message)
    del desired

    diff = build_diff(plan) if module._diff else None
    if module.check_mode:
        result = build_result(trust_domain, plan.create, plan.update, plan.delete, plan.unchanged, plan.conflicts,
                              limit)
        if diff is not None:
            result['diff'] = diff
        _warn_conflicts(module, plan.conflicts)
        module.exit_json(changed=plan.changed, **result)

    applier = Applier(cli, prefix, params['batch_size'], params['parallel'])
    conflicts = list(plan.conflicts)
    try:
        if plan.create:
            existing = applier.create(plan.create)
            if existing:
                applier.resolve_existing(existing, conflicts)
        if plan.update:
            applier.update(plan.update)
        if plan.delete:
            applier.delete(plan.delete)
    except SpireError as err:
        result = build_result(trust_domain, applier.created, applier.updated, applier.deleted, plan.unchanged,
                              conflicts, limit)
        refused = ''
        if applier.failures:
            refused = '; SPIRE also refused: %s' % '; '.join(
                '%s: %s' % (f['item'], f['message']) for f in applier.failures)
        planned = len(plan.create) + len(plan.update) + len(plan.delete)
        module.fail_json(msg='%s (%s)%s' % (err.message, interruption_note(
            planned, len(applier.created), len(applier.updated), len(applier.deleted), applier.unconfirmed), refused),
            changed=bool(applier.created or applier.updated or applier.deleted or applier.unconfirmed),
            failures=applier.failures + err.failures, unconfirmed=applier.unconfirmed, **result)

    result = build_result(trust_domain, applier.created, applier.updated, applier.deleted,
                          plan.unchanged + applier.concurrent, conflicts, limit)
    changed = bool(applier.created or applier.updated or applier.deleted)
    if diff is not None:
        result['diff'] = diff
    if applier.failures:
        total = len(plan.create) + len(plan.update) + len(plan.delete)
        module.fail_json(
            msg='SPIRE refused %d of %d entry changes; the other changes were applied (%d created, %d updated, '
                '%d deleted): %s' % (
                    len(applier.failures), total, len(applier.created), len(applier.updated), len(applier.deleted),
                    '; '.join('%s: %s (%s)' % (f['item'], f['message'], CODE_NAMES.get(f['code'], f['code']))
                              for f in applier.failures)),
            changed=changed, failures=applier.failures, **result)
    _warn_conflicts(module, conflicts)
    module.exit_json(changed=changed, **result)


def _warn_conflicts(module, conflicts):
    differing = [c for c in conflicts if c[1] is not None and values_of(c[0]) != values_of(c[1])]
    if differing:
        module.warn('%d desired entries collide with entries this configuration does not own and whose fields '
                    'differ; they were left as they are (see unmanaged_conflicts)' % len(differing))


if __name__ == '__main__':
    main()

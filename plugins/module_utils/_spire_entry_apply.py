# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""spire_entry's run over the SPIRE client: the current entries read (the whole server prefetched while the input
is validated, or only those the desired entries name), the plan of ``_spire_entries`` applied in parallel batches,
creations refused as existing read back, and the result with what was applied when a command fails."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.trustroot.ops.plugins.module_utils._spire_cli import server_trust_domain
from ansible_collections.trustroot.ops.plugins.module_utils._spire import (
    ALREADY_EXISTS, CODE_NAMES, MAX_DELETE_BATCH, NOT_FOUND, SpireError, SpireServerCLI, chunked, iter_json_array)
from ansible_collections.trustroot.ops.plugins.module_utils._spire_entries import (
    DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, EntryInputError, bind_trust_domain, build_diff, changed_fields, check_prefix,
    delete_payload, describe, describe_key, interruption_note, key_of, normalize_current, normalize_desired_list,
    owned, payload_batches, reads_whole_server, plan_absent, plan_present, show_args_for_key, to_result, values_of)

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


def converge_entries(module):
    """The whole run of spire_entry; returns its result, raises SpireError / EntryInputError (with what was
    applied) otherwise."""
    params = module.params
    cli = SpireServerCLI(module)
    # A whole-server read is started now when it will be needed (a count not known before reading
    # entries_file counts as many): it overlaps with the validation below.
    prefetch = None
    if reads_whole_server(len(params['entries'] or ()) if not params['entries_file'] else None, params['prune']):
        prefetch = Prefetch(cli)
    desired = desired_entries(params)
    # The raw input is no longer needed: drop it so only the normalised entries stay in memory.
    params['entries'] = None

    trust_domain = server_trust_domain(cli)
    bind_trust_domain(desired, trust_domain)
    if prefetch is not None:
        current = prefetch.entries()
    else:
        current = read_current(cli, desired, reads_whole_server(len(desired), params['prune']))
    if params['state'] == 'present':
        plan = plan_present(desired, current, prefix=params['entry_id_prefix'], prune=params['prune'])
    else:
        plan = plan_absent(desired, current, prefix=params['entry_id_prefix'])
    del desired

    diff = build_diff(plan) if module._diff else None
    limit = max(0, params['report_limit'])
    if module.check_mode:
        result = build_result(trust_domain, plan.create, plan.update, plan.delete, plan.unchanged, plan.conflicts,
                              limit)
        if diff is not None:
            result['diff'] = diff
        _warn_conflicts(module, plan.conflicts)
        return dict(result, changed=plan.changed)
    applier, conflicts = apply_plan(cli, plan, params, trust_domain, limit)
    result = build_result(trust_domain, applier.created, applier.updated, applier.deleted,
                          plan.unchanged + applier.concurrent, conflicts, limit)
    changed = bool(applier.created or applier.updated or applier.deleted)
    if diff is not None:
        result['diff'] = diff
    if applier.failures:
        raise SpireError(refused_message(plan, applier), results=dict(result, failures=applier.failures),
                         changed=changed)
    _warn_conflicts(module, conflicts)
    return dict(result, changed=changed)


def desired_entries(params):
    """The desired entries, normalised and checked, with every other option checked: before any call."""
    if params['entry_id_prefix'] is not None:
        check_prefix(params['entry_id_prefix'])
    if params['state'] == 'absent' and params['prune']:
        raise EntryInputError('prune: applies to state=present only')
    if not 1 <= params['batch_size'] <= MAX_BATCH_SIZE:
        raise EntryInputError('batch_size: must be between 1 and %d' % MAX_BATCH_SIZE)
    if not 1 <= params['parallel'] <= MAX_PARALLEL:
        raise EntryInputError('parallel: must be between 1 and %d' % MAX_PARALLEL)
    if not params['entries_file']:
        return normalize_desired_list(params['entries'], params['state'])
    try:
        return normalize_desired_list(read_entries_file(params['entries_file']), params['state'])
    except (IOError, OSError) as err:
        raise EntryInputError('entries_file: cannot read %s: %s' % (params['entries_file'], err))
    except EntryInputError:
        raise
    except ValueError as err:
        raise EntryInputError('entries_file: %s is not a JSON list of entries (or an object with an "entries" '
                              'list): %s' % (params['entries_file'], err))


def apply_plan(cli, plan, params, trust_domain, limit):
    """Create, update, delete in batches: (the Applier, the conflicts). A command that fails as a whole raises
    SpireError with what was applied and how many changes are unconfirmed."""
    applier = Applier(cli, params['entry_id_prefix'], params['batch_size'], params['parallel'])
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
        note = interruption_note(planned_count(plan), len(applier.created), len(applier.updated),
                                 len(applier.deleted), applier.unconfirmed)
        raise SpireError('%s (%s)%s' % (err.message, note, refused),
                         results=dict(result, failures=applier.failures + err.failures,
                                      unconfirmed=applier.unconfirmed),
                         changed=bool(applier.created or applier.updated or applier.deleted or applier.unconfirmed))
    return applier, conflicts


def planned_count(plan):
    return len(plan.create) + len(plan.update) + len(plan.delete)


def refused_message(plan, applier):
    return ('SPIRE refused %d of %d entry changes; the other changes were applied (%d created, %d updated, '
            '%d deleted): %s' % (
                len(applier.failures), planned_count(plan), len(applier.created), len(applier.updated),
                len(applier.deleted), '; '.join('%s: %s (%s)' % (f['item'], f['message'],
                                                                 CODE_NAMES.get(f['code'], f['code']))
                                                for f in applier.failures)))


def _warn_conflicts(module, conflicts):
    differing = [c for c in conflicts if c[1] is not None and values_of(c[0]) != values_of(c[1])]
    if differing:
        module.warn('%d desired entries collide with entries this configuration does not own and whose fields '
                    'differ; they were left as they are (see unmanaged_conflicts)' % len(differing))

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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import run_module
from ansible_collections.trustroot.ops.plugins.module_utils._spire import server_argument_spec
from ansible_collections.trustroot.ops.plugins.module_utils._spire_entries import DEFAULT_BATCH_SIZE
from ansible_collections.trustroot.ops.plugins.module_utils._spire_entry_apply import converge_entries


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
    run_module(module, converge_entries)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: spire_datastore_migrate
short_description: Move a SPIRE server's datastore from SQLite to PostgreSQL, keeping every row
version_added: 0.1.0
description:
  - Runs on the host of the SPIRE server. SPIRE has no tool that converts its SQLite datastore to PostgreSQL;
    this module copies it, table by table, so that the server keeps its registration entries, attested agents,
    bundles (its own and federated ones), federation relationships, join tokens and CA journal. With the same
    C(keys.json) the server keeps its CA, and agents keep their SPIFFE IDs and renew their SVIDs as before.
  - The server's current datastore is read from O(config_path) (the C(DataStore "sql") plugin). When it is
    already C(postgres), nothing happens.
  - O(state=copied) takes the server's state through its API (entries digest, agents, bundle authorities,
    federated bundles, federation relationships), checks the target database, creates SPIRE's schema there
    when it has none (a one-time C(spire-server) with a temporary configuration, a memory key manager, its own
    loopback port and socket, stopped by its PID once healthy), checks that the schema version equals the
    SQLite file's, stops the systemd unit O(service_name), and copies every table's rows in dependency order in
    one transaction (C(psql --single-transaction) with C(COPY FROM STDIN); booleans, timestamps and binary
    columns converted by the PostgreSQL column types; C(id) sequences set past the copied rows). The row counts,
    bundles, CA journals and entry IDs of both sides are then compared. The unit stays stopped; when anything
    fails after the stop, it is started again on SQLite.
  - The target database must hold no SPIRE data, or exactly this server's data (a run that stopped before the
    server was switched); otherwise the module fails and names the tables that hold rows.
  - The caller then switches the server's configuration to C(postgres) and starts it (the role
    C(trustroot.ops.spire_server), entry point C(migrate_datastore)).
  - O(state=verified) waits for the health check, takes the server's state again, compares it with O(expected)
    (the C(before) of O(state=copied)) and, when it matches, renames the SQLite file (and its C(-wal)/C(-shm)
    files) with a UTC timestamp suffix, kept for a rollback.
options:
  state:
    description: V(copied) copies the datastore (server stopped afterwards); V(verified) checks the switched server.
    type: str
    choices: [copied, verified]
    default: copied
  config_path:
    description: The server's configuration file; its C(DataStore "sql") plugin tells the current datastore.
    type: path
    default: /etc/spire/server/server.conf
  sqlite_path:
    description: The SQLite datastore file. When omitted, the C(connection_string) of O(config_path).
    type: path
  connection_string:
    description:
      - libpq connection string of the target PostgreSQL database, keyword/value or URI. Required with
        O(state=copied).
      - Its password is handed to C(psql) in a temporary file of mode 0600 and to the one-time server through its
        environment, never on a command line, and never appears in results or messages.
    type: str
  service_name:
    description: The systemd unit of the server.
    type: str
    default: spire-server
  expected:
    description: With O(state=verified), the RV(before) that O(state=copied) returned.
    type: dict
  wait_timeout:
    description: Seconds to wait for a server's health check (the real one and the one-time one).
    type: int
    default: 120
extends_documentation_fragment:
  - trustroot.ops.spire_server
attributes:
  check_mode:
    support: full
    description: Reads the configuration, the server's state and the target database, reports what would be done,
      and touches nothing.
  diff_mode:
    support: full
    description: Shows the datastore type and the row counts before and after.
notes:
  - Run as root on the SPIRE server host.
  - The SQLite file is never changed by O(state=copied); a rollback is the old configuration with that file.
requirements:
  - C(psql) (the PostgreSQL client) and systemd on the host.
seealso:
  - module: trustroot.ops.spire_server_backup
  - module: trustroot.ops.spire_server_info
author:
  - trustroot.ops maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Copy the SQLite datastore into PostgreSQL (the server is stopped afterwards)
  trustroot.ops.spire_datastore_migrate:
    state: copied
    socket_path: /run/spire/server/private/api.sock
    connection_string: "{{ spire_server_datastore_connection_string }}"
  register: copy

# ... write server.conf with database_type "postgres" and start the server ...

- name: Compare the switched server with what it served before, keep the SQLite file
  trustroot.ops.spire_datastore_migrate:
    state: verified
    socket_path: /run/spire/server/private/api.sock
    sqlite_path: "{{ copy.sqlite_path }}"
    expected: "{{ copy.before }}"
  when: copy.action != 'none'
'''

RETURN = r'''
current:
  description: The datastore type in O(config_path) when the module started (V(sqlite3) or V(postgres)).
  returned: always
  type: str
action:
  description: V(none) (already postgres), V(copy) (into an empty database) or V(recopy) (the database already
    held exactly this server's data).
  returned: with O(state=copied)
  type: str
reason:
  description: Why.
  returned: always
  type: str
sqlite_path:
  description: The SQLite file.
  returned: when the current datastore is sqlite3
  type: str
schema_version:
  description: SPIRE's schema version of the SQLite file (and of the target).
  returned: when a copy was made or planned
  type: int
counts:
  description: Rows per table in SQLite (and, after the copy, equal in PostgreSQL).
  returned: when a copy was made or planned
  type: dict
before:
  description: What the server served before (trust_domain, x509_authorities and jwt_key_ids of its bundle,
    entry_count, entries_sha256, agents, federated_bundles, federation_relationships). No secrets.
  returned: with O(state=copied) when the server answered
  type: dict
after:
  description: The same, from the switched server.
  returned: with O(state=verified)
  type: dict
kept_as:
  description: Where the SQLite file was renamed to.
  returned: with O(state=verified)
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError, file_error_message, run_module
from ansible_collections.trustroot.ops.plugins.module_utils._runner import module_runner
from ansible_collections.trustroot.ops.plugins.module_utils._spire import server_argument_spec
from ansible_collections.trustroot.ops.plugins.module_utils._spire_backup import SpireCLI, find_spire_server
from ansible_collections.trustroot.ops.plugins.module_utils._spire_migrate import migrate, option_errors


def _run(module):
    errors = option_errors(module.params)
    if errors:
        raise InputError('; '.join(errors))
    result = dict(changed=False)
    try:
        binary = find_spire_server(module.params['spire_server_path'])
        return migrate(module, SpireCLI(binary, module.params['socket_path'], module_runner(module)), binary, result)
    except TrustrootError as exc:
        exc.results = dict(result, **exc.results)
        raise
    except EnvironmentError as exc:
        raise TrustrootError(file_error_message(exc), results=result)


def main():
    argument_spec = server_argument_spec()
    argument_spec.update(
        state=dict(type='str', default='copied', choices=['copied', 'verified']),
        config_path=dict(type='path', default='/etc/spire/server/server.conf'),
        sqlite_path=dict(type='path'),
        connection_string=dict(type='str', no_log=True),
        service_name=dict(type='str', default='spire-server'),
        expected=dict(type='dict'),
        wait_timeout=dict(type='int', default=120),
    )
    run_module(AnsibleModule(argument_spec=argument_spec, supports_check_mode=True), _run)


if __name__ == '__main__':
    main()

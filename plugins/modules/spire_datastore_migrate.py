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

import datetime
import os
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils import _runner
from ansible_collections.trustroot.ops.plugins.module_utils._runner import module_runner
from ansible_collections.trustroot.ops.plugins.module_utils._spire import server_argument_spec
from ansible_collections.trustroot.ops.plugins.module_utils._spire_backup import (
    SpireBackupError, SpireCLI, find_spire_server, parse_connection_string)
from ansible_collections.trustroot.ops.plugins.module_utils._spire_datastore import (
    MIGRATIONS_TABLE, DatastoreMigrationError, PostgresTarget, SqliteSource, column_plan, count_problems,
    create_schema, kept_name, parse_datastore_config, parse_trust_domain, server_summary, summary_problems,
    table_order, target_decision, write_copy_script)


def read_config(path):
    try:
        with open(path) as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        raise DatastoreMigrationError('config_path: %s cannot be read: %s' % (path, exc.strerror or exc))
    try:
        return parse_datastore_config(text), parse_trust_domain(text)
    except ValueError as err:
        raise DatastoreMigrationError('config_path: %s %s' % (path, err))


def systemctl(module, action, unit):
    _runner.systemctl(module_runner(module), action, unit, error=DatastoreMigrationError)


def wait_healthy(cli, timeout):
    deadline = time.monotonic() + timeout
    while not cli.healthy():
        if time.monotonic() > deadline:
            raise DatastoreMigrationError('the SPIRE server was not healthy (spire-server healthcheck, socket_path %s) '
                                          'after %ss' % (cli.socket_path, timeout))
        time.sleep(1)


def take_summary(cli):
    return server_summary(cli.json(['bundle', 'show']), cli.json(['entry', 'show']), cli.json(['agent', 'list']),
                          cli.json(['bundle', 'list']), cli.json(['federation', 'list']))


def run_copied(module, cli, binary, config, trust_domain, result):
    params = module.params
    sqlite_path = params['sqlite_path'] or config['connection_string']
    result['sqlite_path'] = sqlite_path
    run = module_runner(module)
    # The before state comes from the running server (started when it is not: the copy needs a stopped one
    # anyway, and its state is what the switched server must serve).
    if not cli.healthy():
        if module.check_mode:
            raise DatastoreMigrationError('the SPIRE server does not answer (socket_path %s): cannot plan the copy'
                                          % cli.socket_path)
        systemctl(module, 'start', params['service_name'])
        wait_healthy(cli, params['wait_timeout'])
    result['before'] = take_summary(cli)
    workdir = tempfile.mkdtemp(prefix='.spire-datastore-migrate-', dir=os.path.dirname(os.path.abspath(sqlite_path)))
    stopped = False
    try:
        os.chmod(workdir, 0o700)
        target = PostgresTarget(params['connection_string'], workdir, run)
        source = SqliteSource(sqlite_path)
        try:
            version, _code = source.schema_version()
            result['schema_version'] = version
            result['counts'] = dict((t, n) for t, n in source.counts().items() if t != MIGRATIONS_TABLE)
            pg_columns = target.columns()
            source_tables = source.tables()
            spire_tables = [t for t in pg_columns if t in source_tables]
            target_counts = target.counts(spire_tables)
            target_fp = target.fingerprint(spire_tables) if MIGRATIONS_TABLE in pg_columns and \
                all(t in pg_columns for t in ('bundles', 'ca_journals', 'registered_entries')) else None
            decision, reason = target_decision(target_counts, source.fingerprint(), target_fp)
        finally:
            source.close()
        if decision == 'refuse':
            raise DatastoreMigrationError('connection_string: %s; empty it or name another database' % reason)
        result.update(changed=True, action='copy' if decision == 'copy' else 'recopy', reason=reason)
        if module._diff:
            result['diff'] = {'before': {'datastore': 'sqlite3', 'postgres_rows': target_counts},
                              'after': {'datastore': 'postgres', 'postgres_rows': result['counts']}}
        if module.check_mode:
            return result
        if MIGRATIONS_TABLE not in pg_columns:
            create_schema(binary, trust_domain, params['connection_string'], workdir, params['wait_timeout'], run,
                          secrets=_secrets(params['connection_string']))
            pg_columns = target.columns()
        pg_version, _code = target.schema_version()
        if pg_version != version:
            raise DatastoreMigrationError('schema versions differ: SQLite %s, PostgreSQL %s (migrate with the same '
                                          'spire-server version that runs on SQLite)' % (version, pg_version))
        # The one-time server wrote its own CA bundle and journal: emptied now (SPIRE's tables only), so that a
        # failure from here on leaves an empty database behind.
        target.empty_tables([t for t in pg_columns if t in source_tables and t != MIGRATIONS_TABLE])
        systemctl(module, 'stop', params['service_name'])
        stopped = True
        source = SqliteSource(sqlite_path)
        try:
            plan, problems = column_plan(source.columns(), pg_columns)
            if problems:
                raise DatastoreMigrationError('the schemas differ: %s' % '; '.join(problems))
            order = table_order(list(plan), target.foreign_keys())
            script = os.path.join(workdir, 'copy.sql')
            fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, 'w', encoding='utf-8') as handle:
                write_copy_script(handle, source, plan, order)
            target.script(script, 'copying the rows')
            os.unlink(script)
            source_fp = source.fingerprint()
            result['counts'] = source_fp['counts']
        finally:
            source.close()
        target_fp = target.fingerprint(list(plan))
        problems = count_problems(source_fp['counts'], target_fp['counts'])
        if problems or source_fp != target_fp:
            raise DatastoreMigrationError('the copy differs from SQLite: %s' % (
                '; '.join(problems) or 'bundles, CA journals or entry IDs differ'))
        target.close()
        stopped = False   # the caller switches the configuration and starts the server
        result['reason'] = 'copied %d rows of %d tables; the server is stopped' % (
            sum(source_fp['counts'].values()), len(plan))
        return result
    except BaseException:
        if stopped:
            # Back on SQLite (its file was only read): the server runs as before.
            try:
                systemctl(module, 'start', params['service_name'])
            except DatastoreMigrationError:
                pass
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _secrets(connection_string):
    values = [connection_string]
    try:
        password = parse_connection_string(connection_string).get('password')
    except ValueError:
        password = None
    if password:
        values.append(password)
    return values


def run_verified(module, cli, result):
    params = module.params
    wait_healthy(cli, params['wait_timeout'])
    after = take_summary(cli)
    result['after'] = after
    problems = summary_problems(params['expected'], after)
    if problems:
        raise DatastoreMigrationError('the server on PostgreSQL does not serve what it served on SQLite: %s' %
                                      '; '.join(problems))
    path = params['sqlite_path']
    kept = kept_name(path, datetime.datetime.now(datetime.timezone.utc))
    result.update(reason='the server on PostgreSQL serves the same entries, agents, authorities and federation',
                  kept_as=kept)
    if module.check_mode:
        return result
    if os.path.exists(path):
        os.rename(path, kept)
        result['changed'] = True
        for suffix in ('-wal', '-shm'):
            if os.path.exists(path + suffix):
                os.rename(path + suffix, kept + suffix)
    return result


def option_errors(params):
    errors = []
    if params['state'] == 'copied':
        if not params['connection_string']:
            errors.append('connection_string is required with state=copied')
        else:
            try:
                parse_connection_string(params['connection_string'])
            except ValueError as err:
                errors.append(str(err) if str(err).startswith('connection_string') else 'connection_string: %s' % err)
        if params['expected']:
            errors.append('expected applies only to state=verified')
    else:
        if not params['expected']:
            errors.append('expected (the before of state=copied) is required with state=verified')
        if not params['sqlite_path']:
            errors.append('sqlite_path is required with state=verified')
    if params['wait_timeout'] <= 0:
        errors.append('wait_timeout must be a positive number of seconds, got %s' % params['wait_timeout'])
    return errors


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
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    errors = option_errors(module.params)
    if errors:
        module.fail_json(msg='; '.join(errors), changed=False)
    result = dict(changed=False)
    try:
        binary = find_spire_server(module.params['spire_server_path'])
        cli = SpireCLI(binary, module.params['socket_path'], module_runner(module))
        if module.params['state'] == 'verified':
            result['current'] = 'postgres'
            result = run_verified(module, cli, result)
        else:
            config, trust_domain = read_config(module.params['config_path'])
            current = config['database_type']
            result.update(current=current, action='none')
            if current == 'postgres':
                result['reason'] = 'the server already runs on postgres'
            elif current != 'sqlite3':
                raise DatastoreMigrationError('config_path: database_type %s is not supported (sqlite3 -> postgres only)'
                                              % current)
            else:
                result = run_copied(module, cli, binary, config, trust_domain, result)
    except (DatastoreMigrationError, SpireBackupError) as exc:
        module.fail_json(msg=str(exc), **result)
    except (IOError, OSError) as exc:
        module.fail_json(msg='%s: %s' % (getattr(exc, 'filename', None) or 'file', exc.strerror or exc), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()

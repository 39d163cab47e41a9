# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps of spire_datastore_migrate (SQLite -> PostgreSQL): option checks, the copy with its before
state and fingerprints, and the verification of the switched server. ``module`` is duck-typed: ``params``,
``check_mode``, ``_diff`` and ``run_command``/``get_bin_path`` (through _runner.module_runner)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import shutil
import tempfile
import time

from ansible_collections.trustroot.ops.plugins.module_utils import _runner
from ansible_collections.trustroot.ops.plugins.module_utils._runner import module_runner
from ansible_collections.trustroot.ops.plugins.module_utils._spire_backup import (
    connection_string_problem, parse_connection_string)
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
        problem = connection_string_problem(params['connection_string'], 'state=copied')
        if problem:
            errors.append(problem)
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


def migrate(module, cli, binary, result):
    """The module's work for either state; ``result`` holds what was reached when an error is raised."""
    if module.params['state'] == 'verified':
        result['current'] = 'postgres'
        return run_verified(module, cli, result)
    config, trust_domain = read_config(module.params['config_path'])
    current = config['database_type']
    result.update(current=current, action='none')
    if current == 'postgres':
        result['reason'] = 'the server already runs on postgres'
        return result
    if current != 'sqlite3':
        raise DatastoreMigrationError('config_path: database_type %s is not supported (sqlite3 -> postgres only)' % current)
    return run_copied(module, cli, binary, config, trust_domain, result)

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scratch servers that a backup is restored into, to prove it restores: configuration, checks, processes.

The decisions are pure functions (the configuration of a scratch ``bao server`` and ``spire-server``, the
options' rules, and the comparison of what the scratch server holds with what the backup's manifest says,
as a list of checks). ``ScratchProcess`` starts a server in its own session and stops it by its PID.
Python standard library only.

A check is ``{system, check, expected, actual, ok}`` and never holds a secret: digests, counts, names,
fingerprints and identifiers only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import time

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError

VAULT_SYSTEM = 'vault'
SPIRE_SYSTEM = 'spire-server'
VAULT_SNAPSHOT_PART = 'raft.snap'
SPIRE_SQLITE_PART = 'datastore.sqlite3'
SPIRE_PGDUMP_PART = 'datastore.pgdump'
SPIRE_KEYS_PART = 'keys.json'
SPIRE_CONFIG_PART = 'server.conf'
# Digest keys compared after a Vault restore, in this order (see _vault_digest.cluster_digest).
VAULT_DIGEST_CHECKS = ('kv_secrets', 'kv_sha256', 'policies', 'policies_sha256', 'mounts_sha256', 'auth_sha256')
KEY_TYPES = ('rsa-2048', 'rsa-4096', 'ec-p256', 'ec-p384')
POSTGRES_NEEDS = 'a postgres datastore backup needs scratch_postgres_connection_string'


class ScratchError(TrustrootError):
    """A scratch server that could not be prepared, started or reached; the message names the step."""


# --- options ---------------------------------------------------------------------------------------------

def option_errors(params):
    """Messages for options that cannot work together, each naming the option (no file access)."""
    errors = []
    if not (params.get('vault_archive') or params.get('spire_archive') or params.get('backup_dir')):
        errors.append('one of vault_archive, spire_archive or backup_dir is required')
    if params.get('material_age_identity') and not params.get('key_material_path'):
        errors.append('material_age_identity applies only with key_material_path')
    timeout = params.get('timeout')
    if timeout is not None and timeout <= 0:
        errors.append('timeout must be a positive number of seconds, got %s' % timeout)
    for name in ('vault_archive', 'spire_archive'):
        value = params.get(name)
        if value and not os.path.isfile(value):
            errors.append('%s: %s is not a file' % (name, value))
    for name in ('age_identity', 'key_material_path', 'material_age_identity'):
        value = params.get(name)
        if value and not (os.path.isfile(value) and os.access(value, os.R_OK)):
            errors.append('%s: %s is not a readable file' % (name, value))
    for name in ('backup_dir', 'workdir'):
        value = params.get(name)
        if value and not os.path.isdir(value):
            errors.append('%s: %s is not a directory' % (name, value))
    return errors


def select_archives(vault_archive, spire_archive, backup_dir, latest):
    """{system: archive path} to check. Explicit paths win; with ``backup_dir`` the latest backup of each
    other system (``latest(directory, system)`` -> sidecar with 'path', or None) is taken."""
    chosen = {}
    if vault_archive:
        chosen[VAULT_SYSTEM] = vault_archive
    if spire_archive:
        chosen[SPIRE_SYSTEM] = spire_archive
    if backup_dir:
        for system in (VAULT_SYSTEM, SPIRE_SYSTEM):
            if system not in chosen:
                found = latest(backup_dir, system)
                if found:
                    chosen[system] = found['path']
    return chosen


def material_errors(material):
    """Why key material cannot unseal a scratch copy, or []. Never quotes a key or token."""
    errors = []
    if material.get('keys_pgp_encrypted'):
        errors.append('key_material_path: the unseal keys are PGP-encrypted; decrypt them first')
    if not (material.get('unseal_keys_b64') or material.get('unseal_keys_hex')):
        errors.append('key_material_path holds no unseal keys (a cluster with auto-unseal needs its seal to '
                      'open a restored copy, which a scratch check does not have)')
    threshold = material.get('unseal_threshold')
    keys = material.get('unseal_keys_b64') or material.get('unseal_keys_hex') or []
    if keys and (not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1
                 or threshold > len(keys)):
        errors.append('key_material_path: unseal_threshold must be between 1 and the number of keys (%d)'
                      % len(keys))
    return errors


def digest_token_error(material, token):
    """Why no token can read the restored data, or None."""
    if token:
        return None
    if material.get('root_token_pgp_encrypted'):
        return ('key_material_path: the root token is PGP-encrypted; set vault_token to a token of the '
                'backed-up cluster that can read its content')
    if not material.get('root_token'):
        return ('key_material_path holds no root token; set vault_token to a token of the backed-up cluster '
                'that can read its content')
    return None


def spire_datastore(manifest, connection_string=None):
    """('sqlite3'|'postgres', datastore part name) of a SPIRE archive; raises ScratchError when it cannot be
    restored into a scratch server."""
    info = manifest.get('info') or {}
    parts = manifest.get('parts') or {}
    datastore = info.get('datastore') or ('postgres' if SPIRE_PGDUMP_PART in parts else 'sqlite3')
    if datastore == 'sqlite3':
        part = SPIRE_SQLITE_PART
    elif datastore == 'postgres':
        if not connection_string:
            raise ScratchError(POSTGRES_NEEDS)
        part = SPIRE_PGDUMP_PART
    else:
        raise ScratchError('the SPIRE archive holds a %s datastore; only sqlite3 and postgres can be restored'
                           % datastore)
    missing = [name for name in (part, SPIRE_KEYS_PART) if name not in parts]
    if missing:
        raise ScratchError('the SPIRE archive has no %s part' % ' or '.join(missing))
    if not info.get('trust_domain'):
        raise ScratchError('the SPIRE archive\'s manifest names no trust_domain')
    return datastore, part


# --- configuration of the scratch servers ----------------------------------------------------------------

def hcl_string(value):
    """A double-quoted HCL string (JSON escaping is valid HCL)."""
    return json.dumps(str(value))


def vault_config(data_dir, api_port, cluster_port, node_id='scratch'):
    """``bao server`` configuration: raft storage in ``data_dir``, a plain-HTTP listener on loopback only
    (the scratch server holds a copy of production data and must not be reachable from elsewhere)."""
    api = 'http://127.0.0.1:%d' % api_port
    return (
        'storage "raft" {\n'
        '  path = %s\n'
        '  node_id = %s\n'
        '}\n'
        'listener "tcp" {\n'
        '  address = "127.0.0.1:%d"\n'
        '  cluster_address = "127.0.0.1:%d"\n'
        '  tls_disable = true\n'
        '}\n'
        'api_addr = %s\n'
        'cluster_addr = "http://127.0.0.1:%d"\n'
        'disable_mlock = true\n'
        'ui = false\n'
        'log_level = "info"\n'
    ) % (hcl_string(data_dir), hcl_string(node_id), api_port, cluster_port, hcl_string(api), cluster_port)


def server_conf_settings(text):
    """{'ca_key_type', 'jwt_key_type'} set in an archived server.conf (HCL), when they are valid key types.

    The scratch server keeps the original key types so that it finds its CA keys in keys.json."""
    settings = {}
    for name in ('ca_key_type', 'jwt_key_type'):
        match = re.search(r'^\s*%s\s*=\s*"([^"]+)"' % name, text or '', re.MULTILINE)
        if match and match.group(1) in KEY_TYPES:
            settings[name] = match.group(1)
    return settings


def spire_config(trust_domain, data_dir, socket_path, bind_port, keys_path, datastore, connection_string,
                 settings=None):
    """``spire-server`` configuration for a scratch server on loopback, the restored datastore and keys."""
    settings = settings or {}
    key_types = ''.join('    %s = %s\n' % (name, hcl_string(settings[name]))
                        for name in ('ca_key_type', 'jwt_key_type') if settings.get(name))
    return (
        'server {\n'
        '    bind_address = "127.0.0.1"\n'
        '    bind_port = "%d"\n'
        '    socket_path = %s\n'
        '    trust_domain = %s\n'
        '    data_dir = %s\n'
        '    log_level = "INFO"\n'
        '%s'
        '}\n'
        '\n'
        'plugins {\n'
        '    DataStore "sql" {\n'
        '        plugin_data {\n'
        '            database_type = %s\n'
        '            connection_string = %s\n'
        '        }\n'
        '    }\n'
        '    KeyManager "disk" {\n'
        '        plugin_data {\n'
        '            keys_path = %s\n'
        '        }\n'
        '    }\n'
        '    NodeAttestor "join_token" {\n'
        '        plugin_data {}\n'
        '    }\n'
        '}\n'
    ) % (bind_port, hcl_string(socket_path), hcl_string(trust_domain), hcl_string(data_dir), key_types,
         hcl_string(datastore), hcl_string(connection_string), hcl_string(keys_path))


# --- checks ----------------------------------------------------------------------------------------------

def check(system, name, expected, actual, ok=None):
    """One check; ``ok`` defaults to expected == actual."""
    return {'system': system, 'check': name, 'expected': expected, 'actual': actual,
            'ok': bool(expected == actual if ok is None else ok)}


def archive_check(system, path, sidecar_sha256, problem=None):
    return check(system, 'archive', sidecar_sha256, None if problem else sidecar_sha256, ok=problem is None)


def vault_checks(info, seal_status, digest, digest_error=None):
    """Checks of a Vault backup restored into a scratch server and unsealed with the original keys.

    ``seal_status``: the scratch server's sys/seal-status after the unseal; ``digest``: its
    vault_data_digest_info result (None when it could not be computed, ``digest_error`` says why)."""
    system = VAULT_SYSTEM
    seal_status = seal_status or {}
    checks = [check(system, 'unsealed_with_original_keys', True, not seal_status.get('sealed', True))]
    if info.get('cluster_id'):
        checks.append(check(system, 'cluster_id', info['cluster_id'], seal_status.get('cluster_id')))
    expected = info.get('digest')
    if not isinstance(expected, dict) or not expected:
        checks.append(check(system, 'digest', 'a digest in the manifest', None, ok=False))
        return checks
    if digest is None:
        checks.append(check(system, 'digest', expected.get('kv_sha256'), digest_error or 'not computed', ok=False))
        return checks
    for key in VAULT_DIGEST_CHECKS:
        if key in expected:
            checks.append(check(system, key, expected[key], digest.get(key)))
    for mount in sorted(set(expected.get('kv') or {}) | set(digest.get('kv') or {})):
        want = (expected.get('kv') or {}).get(mount) or {}
        have = (digest.get('kv') or {}).get(mount) or {}
        checks.append(check(system, 'kv[%s]' % mount, want.get('sha256'), have.get('sha256')))
    return checks


def digest_mounts(expected_digest):
    """The KV mounts to digest on the scratch copy: the ones the backup's digest covered (None: all)."""
    mounts = sorted((expected_digest or {}).get('kv') or {})
    return mounts or None


def spire_checks(info, healthy, bundle, entry_count=None, entries_sha256=None, agent_count=None,
                 federated_trust_domains=None):
    """Checks of a SPIRE backup restored into a scratch server.

    ``bundle``: bundle_summary of the scratch server's ``bundle show`` (None when it did not answer). Every
    X.509 authority and JWT key of the backup must be in the bundle (a server may add a prepared one at
    start); every federated trust domain of the backup must have its bundle."""
    system = SPIRE_SYSTEM
    checks = [check(system, 'healthcheck', True, bool(healthy))]
    if bundle is None:
        checks.append(check(system, 'bundle', info.get('trust_domain'), None, ok=False))
        return checks
    checks.append(check(system, 'trust_domain', info.get('trust_domain'), bundle.get('trust_domain')))
    expected_x509 = sorted(info.get('x509_authorities') or [])
    actual_x509 = sorted(bundle.get('x509_authorities') or [])
    checks.append(check(system, 'x509_authorities', expected_x509, actual_x509,
                        ok=bool(expected_x509) and set(expected_x509) <= set(actual_x509)))
    if info.get('jwt_key_ids') is not None:
        expected_jwt = sorted(info.get('jwt_key_ids') or [])
        actual_jwt = sorted(bundle.get('jwt_key_ids') or [])
        checks.append(check(system, 'jwt_key_ids', expected_jwt, actual_jwt, ok=set(expected_jwt) <= set(actual_jwt)))
    if info.get('entry_count') is not None:
        checks.append(check(system, 'entry_count', info['entry_count'], entry_count))
    if info.get('entries_sha256'):
        checks.append(check(system, 'entries_sha256', info['entries_sha256'], entries_sha256))
    if info.get('agent_count') is not None:
        checks.append(check(system, 'agent_count', info['agent_count'], agent_count))
    if info.get('federated_trust_domains') is not None:
        expected_td = sorted(info.get('federated_trust_domains') or [])
        actual_td = sorted(federated_trust_domains or [])
        checks.append(check(system, 'federated_trust_domains', expected_td, actual_td,
                            ok=set(expected_td) <= set(actual_td)))
    return checks


def federated_domains(bundle_list, own_trust_domain):
    """Trust domains with a bundle in ``bundle list -output json``, other than the server's own."""
    bundles = (bundle_list or {}).get('bundles') or []
    return sorted(set(b.get('trust_domain') for b in bundles
                      if b.get('trust_domain') and b.get('trust_domain') != own_trust_domain))


def summarize(checks):
    """(passed, message listing the failed checks)."""
    failed = [c for c in checks if not c['ok']]
    if not failed:
        return True, 'all %d checks passed' % len(checks)
    return False, 'failed checks: %s' % '; '.join(
        '%s %s (expected %s, got %s)' % (c['system'], c['check'], _short(c['expected']), _short(c['actual']))
        for c in failed)


def _short(value, limit=120):
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + '...'


# --- processes -------------------------------------------------------------------------------------------

# Scratch servers listen below the kernel's ephemeral port range: a port the kernel hands out (bind to port 0) is
# free only for a moment, and any outgoing connection of the host may take it while a scratch server restarts
# (backup_restore_check restarts the restored bao server on the same ports, which raft records).
LOWEST_PORT = 10000
EPHEMERAL_RANGE = '/proc/sys/net/ipv4/ip_local_port_range'


def ephemeral_low(path=EPHEMERAL_RANGE, default=32768):
    """The lowest port of the kernel's ephemeral range."""
    try:
        with open(path) as handle:
            return int(handle.read().split()[0])
    except (IOError, OSError, ValueError, IndexError):
        return default


def free_port(low=None, attempts=64, rng=None):
    """A TCP port on 127.0.0.1 that nothing listens on right now, chosen at random below the ephemeral range
    (when that range leaves room below it; else one the kernel picks)."""
    low = ephemeral_low() if low is None else low
    rng = rng or random.SystemRandom()
    for _attempt in range(attempts if low > LOWEST_PORT + 1000 else 0):
        port = rng.randrange(LOWEST_PORT, low)
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            try:
                sock.bind(('127.0.0.1', port))
            except OSError:
                continue
            return port
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout, what, interval=0.5):
    """Call ``predicate`` until it returns a true value (returned); ScratchError naming ``what`` on timeout.

    Exceptions from ``predicate`` count as "not yet" until the deadline; the last one is in the message."""
    deadline = time.time() + timeout
    last = None
    while True:
        try:
            value = predicate()
        except ScratchError:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            value, last = None, exc
        if value:
            return value
        if time.time() >= deadline:
            detail = ' (%s)' % last if last else ''
            raise ScratchError('timed out after %ss waiting for %s%s' % (timeout, what, detail))
        time.sleep(interval)


class ScratchProcess(object):
    """One server process in its own session, output to ``log_path``, stopped by its PID."""

    def __init__(self, name, argv, log_path, env=None, cwd=None):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self.proc = subprocess.Popen(self.argv, stdout=fd, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=self.env, cwd=self.cwd, start_new_session=True)
        except OSError as exc:
            raise ScratchError('%s could not start %s: %s' % (self.name, self.argv[0], exc.strerror or exc))
        finally:
            os.close(fd)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def exited_error(self):
        """ScratchError with the end of the log when the process has exited, else None."""
        if self.proc is None or self.proc.poll() is None:
            return None
        return ScratchError('%s exited with status %s: %s' % (self.name, self.proc.returncode, self.log_tail()))

    def log_tail(self, limit=1500):
        try:
            with open(self.log_path, 'rb') as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - limit))
                text = handle.read().decode('utf-8', 'replace')
        except (IOError, OSError):
            return ''
        return ' '.join(line.strip() for line in text.splitlines() if line.strip())[-limit:]

    def stop(self, timeout=20):
        """SIGTERM to the PID, SIGKILL after ``timeout`` seconds; idempotent."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: spire_server_backup
short_description: Consistent backup and restore of a SPIRE server (datastore and keys.json as a pair)
version_added: 0.1.0
description:
  - Runs on the host of the SPIRE server. A SPIRE server finds its CA by matching the disk key manager's keys
    (C(keys.json)) to the authorities recorded in its datastore, so a backup is only usable as a consistent
    pair of both. This module saves and restores that pair.
  - O(state=saved) copies the datastore while the server runs (SQLite through SQLite's online backup API,
    then C(PRAGMA integrity_check) on the copy; PostgreSQL through C(pg_dump --format=custom)), reads
    C(keys.json) and the trust bundle before and after the copy and takes the pair again (up to 3 times) when
    either changed in between (a CA rotation). The archive holds the datastore, C(keys.json), C(bundle.json)
    (C(bundle show)) and C(server.conf) for reference; its manifest records the trust domain, SPIRE version,
    entry and agent counts, a digest of the registration entries, federated trust domains, the X.509
    authorities' sha256 and the JWT key IDs. The copied C(keys.json) must hold the keys of the copied datastore's
    CA journal (as for a restore, below); otherwise nothing is written and the task fails naming the key ID and
    the journal slot (O(keys_path) and O(sqlite_path) or O(connection_string) of different servers). The archive
    is written, optionally encrypted to age recipients, read back and checked, then uploaded and pruned per the
    shared backup options.
  - O(state=restored) verifies the archive first (sidecar checksum, decryption with O(age_identity), every part
    against the manifest), so a tampered archive or a wrong key fails with nothing touched. When the server already
    runs the backup (its C(keys.json) has the archive's sha256 and its bundle the archive's X.509 authorities),
    nothing happens unless O(force=true). Otherwise the archive's C(keys.json) must hold the key of every slot of
    the archive datastore's CA journal that SPIRE loads at start (the newest entry of each slot of the X.509 CA,
    JWT and WIT keys unless old or expired, under key IDs such as C(x509-CA-A) and C(JWT-Signer-B)). A
    C(keys.json) that does not belong to the datastore (taken from another backup or server) would make SPIRE
    prepare a new CA without a word, so the task fails naming the key ID and the journal slot before anything is
    changed, unless O(force_key_mismatch=true) (then it warns and restores). Then the systemd unit
    O(service_name) is stopped, the datastore and C(keys.json) are put back (SQLite file replaced atomically with stale C(-wal)/C(-shm) files removed;
    PostgreSQL through C(pg_restore --clean --if-exists --single-transaction)), the unit is started, and the
    module waits for C(spire-server healthcheck) and compares the trust domain, the X.509 authorities, the entry
    count and the entries digest with the manifest. A mismatch fails the task and names it.
options:
  state:
    description: V(saved) writes a new archive into O(dest_dir); V(restored) puts an archive back.
    type: str
    choices: [saved, restored]
    default: saved
  datastore:
    description: The server's datastore type (its C(DataStore "sql") C(database_type)).
    type: str
    choices: [sqlite3, postgres]
    default: sqlite3
  sqlite_path:
    description: The SQLite datastore file (with O(datastore=sqlite3)).
    type: path
    default: /var/lib/spire/server/datastore.sqlite3
  connection_string:
    description:
      - libpq connection string of the PostgreSQL datastore (with O(datastore=postgres)), keyword/value
        (C(host=db dbname=spire user=spire password=...)) or URI (C(postgres://user:password@db/spire)).
      - Its password is handed to C(pg_dump) / C(pg_restore) in a temporary file of mode 0600, never on a
        command line, and never appears in results or messages.
    type: str
  keys_path:
    description: The disk key manager's keys file (C(KeyManager "disk") C(keys_path)).
    type: path
    default: /var/lib/spire/server/keys.json
  config_path:
    description:
      - The server's configuration file, archived for reference when it exists (it is not restored).
        Set to an empty string to leave it out.
    type: path
    default: /etc/spire/server/server.conf
  path:
    description:
      - With O(state=restored), the archive to restore (its sidecar C(<path>.json) must be next to it).
      - When omitted, the newest backup of the SPIRE server in O(dest_dir).
    type: path
  age_identity:
    description: With O(state=restored), an age identity file that decrypts an encrypted archive.
    type: path
  service_name:
    description: With O(state=restored), the systemd unit of the server.
    type: str
    default: spire-server
  owner:
    description: With O(state=restored), owner of the restored datastore and keys files.
    type: str
    default: spire
  group:
    description: With O(state=restored), group of the restored datastore and keys files.
    type: str
    default: spire
  force:
    description: With O(state=restored), restore even when the server already runs this backup.
    type: bool
    default: false
  force_key_mismatch:
    description:
      - With O(state=restored), restore even when the archive's C(keys.json) does not hold the keys of its
        datastore's CA journal; the task then warns and returns the mismatches in RV(key_mismatch).
      - SPIRE then starts with a new CA (and JWT key), so the restored server does not sign as the backed-up one.
    type: bool
    default: false
  wait_timeout:
    description: With O(state=restored), seconds to wait for the server's health check after the start.
    type: int
    default: 120
extends_documentation_fragment:
  - trustroot.ops.spire_server
  - trustroot.ops.backup
attributes:
  check_mode:
    support: full
    description:
      - O(state=saved) checks the options and that the server answers, and writes nothing.
      - O(state=restored) verifies the archive, checks its C(keys.json) against its datastore (extracted into a
        private temporary directory, removed afterwards) and decides whether a restore is needed, without
        touching the service or the server's files.
  diff_mode:
    support: full
    description:
      - O(state=restored) shows the sha256 of C(keys.json), the X.509 authorities and the entry count before and
        after. O(state=saved) shows the newest archive before and after.
notes:
  - Restoring an older datastore brings back the registration entries and agents of that time. Agents that
    attested with x509pop (or another re-attestable method) attest again by themselves; agents that attested with
    a join token need new join tokens.
  - The restored server keeps the CA it had at backup time; when that CA expired since, the server prepares a new
    one at start.
  - SQLite and PostgreSQL datastores cannot be converted into each other; restore into the same type.
  - Run as root (or the server's user with systemctl rights) so the files and the unit can be handled.
requirements:
  - C(pg_dump) and C(pg_restore) (the PostgreSQL client, at least the server's major version) with O(datastore=postgres).
  - C(age) on the host to encrypt (O(age_recipients)) or decrypt (O(age_identity)).
  - systemd for O(state=restored).
seealso:
  - module: trustroot.ops.spire_server_info
author:
  - trustroot.ops maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Back up the SPIRE server, encrypted, keeping 14 archives
  trustroot.ops.spire_server_backup:
    socket_path: /run/spire/server/private/api.sock
    dest_dir: /var/backups/spire
    age_recipients:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
    keep_count: 14
  register: spire_backup

- name: Back up a server with a PostgreSQL datastore
  trustroot.ops.spire_server_backup:
    socket_path: /run/spire/server/private/api.sock
    datastore: postgres
    connection_string: "{{ spire_server_datastore_connection_string }}"
    dest_dir: /var/backups/spire

- name: Restore the newest backup (no change when the server already runs it)
  trustroot.ops.spire_server_backup:
    state: restored
    socket_path: /run/spire/server/private/api.sock
    dest_dir: /var/backups/spire
    age_identity: /root/.config/spire-backup.agekey
'''

RETURN = r'''
archive:
  description: The archive written (O(state=saved)) or restored; null in check mode for O(state=saved).
  returned: always
  type: str
info:
  description:
    - Facts of the backup, from its manifest (trust_domain, spire_version, datastore, entry_count, entries_sha256,
      agent_count, federated_trust_domains, federation_relationship_count, x509_authorities (sha256 of each),
      jwt_key_ids, keys_sha256, pair_attempts).
  returned: when an archive was written or verified
  type: dict
sidecar:
  description: The archive's sidecar (sha256, size, encrypted, created, parts).
  returned: when O(state=saved) wrote an archive
  type: dict
uploaded:
  description: S3 keys uploaded.
  returned: when O(state=saved) wrote an archive
  type: list
  elements: str
deleted:
  description: Archives removed by retention.
  returned: when O(state=saved) wrote an archive
  type: list
  elements: str
metric_path:
  description: The Prometheus textfile written, or null.
  returned: when O(state=saved) wrote an archive
  type: str
restored:
  description: Whether the datastore and keys were put back.
  returned: when O(state=restored)
  type: bool
reason:
  description: Why a restore was (or was not) needed.
  returned: when O(state=restored)
  type: str
checks:
  description: The comparisons made after the restore, each with C(name) and C(ok).
  returned: when O(state=restored)
  type: list
  elements: dict
key_mismatch:
  description:
    - Why the archive's C(keys.json) does not belong to its datastore's CA journal, one line per slot (key ID and
      journal slot); empty when it does. Non-empty only with O(force_key_mismatch=true) (otherwise the task fails).
  returned: when O(state=restored) and a restore was needed
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._backup.options import backup_argument_spec
from ansible_collections.trustroot.ops.plugins.module_utils._errors import run_module
from ansible_collections.trustroot.ops.plugins.module_utils._spire import server_argument_spec
from ansible_collections.trustroot.ops.plugins.module_utils._spire_server_backup import run


def main():
    argument_spec = server_argument_spec()
    argument_spec.update(backup_argument_spec())
    argument_spec.update(
        state=dict(type='str', default='saved', choices=['saved', 'restored']),
        datastore=dict(type='str', default='sqlite3', choices=['sqlite3', 'postgres']),
        sqlite_path=dict(type='path', default='/var/lib/spire/server/datastore.sqlite3'),
        connection_string=dict(type='str', no_log=True),
        keys_path=dict(type='path', default='/var/lib/spire/server/keys.json', no_log=False),
        config_path=dict(type='path', default='/etc/spire/server/server.conf'),
        path=dict(type='path'),
        age_identity=dict(type='path'),
        service_name=dict(type='str', default='spire-server'),
        owner=dict(type='str', default='spire'),
        group=dict(type='str', default='spire'),
        force=dict(type='bool', default=False),
        force_key_mismatch=dict(type='bool', default=False),
        wait_timeout=dict(type='int', default=120),
    )
    run_module(AnsibleModule(argument_spec=argument_spec, supports_check_mode=True), run)


if __name__ == '__main__':
    main()

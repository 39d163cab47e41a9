#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_restore_check
short_description: Prove that Vault / OpenBao and SPIRE backups restore, in scratch servers
version_added: 0.1.0
description:
  - Restores backup archives (written by C(playbooks/backup.yml) and M(trustroot.ops.spire_server_backup))
    into throwaway servers started on the host that runs the module, and compares what they hold with what
    the archive's manifest recorded at backup time. Nothing outside the scratch servers is touched.
  - Every archive is verified first (sha256 against its sidecar, the manifest and every part; decrypted
    with O(age_identity) when encrypted). A tampered, truncated or undecryptable archive fails the task
    before any server is started.
  - "Vault / OpenBao: a scratch C(bao server) (raft storage in the work directory) is initialized with one
    key, the snapshot is restored with C(sys/storage/raft/snapshot-force), the server is restarted so that
    it is sealed, and it is unsealed with the B(original) cluster's unseal keys from O(key_material_path)
    (as many as its threshold) - proof that the keys kept open the backup. The content is then digested
    with the original cluster's root token (or O(vault_token)) the same way as
    M(trustroot.ops.vault_data_digest_info) and compared with the digest in the manifest, and the cluster ID
    with the one recorded."
  - "SPIRE: a scratch C(spire-server) runs with the archive's trust domain, the restored datastore and the
    restored C(keys.json) (disk KeyManager). It must pass its health check; its trust bundle must hold every
    X.509 authority and JWT key of the backup; the number and the digest of the registration entries, the
    number of agents, and the federated trust domains' bundles are compared with the manifest."
  - Every scratch process is stopped by its PID and the work directory removed, whatever happens.
  - The scratch servers listen on 127.0.0.1 only. The Vault one uses plain HTTP on loopback (C(tls_disable));
    it holds a copy of production data for the length of the check, so run the module on a host whose
    local users are trusted, normally the controller that keeps the backups.
options:
  vault_archive:
    description: A Vault / OpenBao backup archive (system C(vault), part C(raft.snap)).
    type: path
  spire_archive:
    description: A SPIRE server backup archive (system C(spire-server)).
    type: path
  backup_dir:
    description:
      - Directory of archives; the newest verified backup of each system not given by O(vault_archive) or
        O(spire_archive) is checked. A system without a backup there is not checked.
    type: path
  age_identity:
    description: age identity file that decrypts encrypted archives.
    type: path
  key_material_path:
    description:
      - The key material file of the backed-up cluster (as M(trustroot.ops.vault_init) writes it), with its
        unseal keys, threshold and root token. Required to check a Vault archive.
    type: path
  material_age_identity:
    description: age identity file that decrypts O(key_material_path) when it is encrypted.
    type: path
  vault_token:
    description:
      - Token of the backed-up cluster used to digest the restored content, when the key material holds no
        usable root token. Never logged or returned.
    type: str
  bao_path:
    description: The C(bao) binary. Default is C(bao) from the PATH.
    type: path
  spire_server_path:
    description: The C(spire-server) binary. Default is C(spire-server) from the PATH, /opt/spire/bin, /usr/local/bin, /usr/bin.
    type: path
  scratch_postgres_connection_string:
    description:
      - A PostgreSQL database the check may overwrite, for a SPIRE backup of a C(postgres) datastore; the dump
        is restored into it with C(pg_restore) and the scratch server uses it. Without it such an archive fails
        the task. Never logged or returned.
    type: str
  workdir:
    description:
      - Existing directory in which a private temporary work directory is made (and removed afterwards).
        Default is the system temporary directory. It needs room for the extracted archives.
    type: path
  timeout:
    description: Seconds to wait for each scratch server to start, unseal or become healthy.
    type: int
    default: 180
attributes:
  check_mode:
    support: full
    description: Verifies the archives (checksums, decryption, manifest) without extracting them or starting a server.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
notes:
  - Needs the C(bao) binary for a Vault archive and the C(spire-server) binary (same or newer version than the
    backed-up server; SPIRE migrates a datastore forward only) for a SPIRE archive, C(age) for encrypted
    archives or key material, and C(pg_restore) for a postgres datastore.
  - A Vault cluster with auto-unseal cannot be checked this way; its restored copy needs the seal.
  - A scratch SPIRE server may try to refresh the bundles of its federation relationships from their
    endpoints, as the original does; it serves nothing beyond 127.0.0.1.
  - Secrets (unseal keys, tokens, the scratch server's own key and token, the connection string) are never
    returned or logged. The checks hold digests, counts, names, fingerprints and identifiers only.
author:
  - Trustroot maintainers (@trustroot)
'''

EXAMPLES = r'''
- name: Restore the newest backups into scratch servers and compare
  trustroot.ops.backup_restore_check:
    backup_dir: /srv/backups
    age_identity: /etc/trustroot/backup-age-identity.txt
    key_material_path: /srv/secure/vault-init.json.age
    material_age_identity: /etc/trustroot/material-age-identity.txt
    bao_path: /usr/local/bin/bao
    spire_server_path: /usr/local/bin/spire-server
  register: restore_check

- name: One Vault archive
  trustroot.ops.backup_restore_check:
    vault_archive: /srv/backups/vault-20260101T020000Z.tar.gz.age
    age_identity: /etc/trustroot/backup-age-identity.txt
    key_material_path: /srv/secure/vault-init.json
'''

RETURN = r'''
passed:
  description: Whether every check passed.
  returned: always
  type: bool
checks:
  description: One entry per comparison, without secrets.
  returned: always
  type: list
  elements: dict
  contains:
    system: {description: V(vault) or V(spire-server)., type: str, returned: always}
    check:
      description:
        - "What was compared: archive, unsealed_with_original_keys, cluster_id, kv_sha256, kv[<mount>],
          policies_sha256, healthcheck, trust_domain, x509_authorities, entry_count, entries_sha256, ..."
        - V(restore) when a step of the restore failed (the error is in RV(checks[].actual)).
      type: str
      returned: always
    expected: {description: The value recorded in the archive., type: raw, returned: always}
    actual: {description: The value read from the scratch server (or the error)., type: raw, returned: always}
    ok: {description: Whether this check passed., type: bool, returned: always}
archives:
  description: Per system, the archive checked (C(path), C(name), C(created)).
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.trustroot.ops.plugins.module_utils._errors import run_module
from ansible_collections.trustroot.ops.plugins.module_utils._restore_check import check_restores


def main():
    module = AnsibleModule(
        argument_spec=dict(
            vault_archive=dict(type='path'),
            spire_archive=dict(type='path'),
            backup_dir=dict(type='path'),
            age_identity=dict(type='path'),
            key_material_path=dict(type='path', no_log=False),
            material_age_identity=dict(type='path'),
            vault_token=dict(type='str', no_log=True),
            bao_path=dict(type='path'),
            spire_server_path=dict(type='path'),
            scratch_postgres_connection_string=dict(type='str', no_log=True),
            workdir=dict(type='path'),
            timeout=dict(type='int', default=180),
        ),
        supports_check_mode=True,
    )
    run_module(module, check_restores)


if __name__ == '__main__':
    main()

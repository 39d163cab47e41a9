# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Destination options of every module that writes backups (see module_utils/_backup/options.py).
    DOCUMENTATION = r'''
options:
  dest_dir:
    description:
      - Directory on the host that runs the module where the archive C(<system>-<YYYYmmddTHHMMSSZ>.tar.gz)
        (C(.tar.gz.age) when encrypted) and its sidecar C(<archive>.json) are written. It must exist and be writable.
      - Required to write a backup.
    type: path
  age_recipients:
    description:
      - age public keys (C(age1...)). When given, the archive is encrypted to them with the C(age) command and
        only a matching identity can read it. The sidecar (checksums, facts) stays readable.
    type: list
    elements: str
    default: []
  keep_count:
    description:
      - Keep at most this many backups of the system in O(dest_dir) (and in S3 when O(s3) is set); older ones
        are deleted after the new backup is written. At least 1.
      - The newest backup and the newest verified backup (proven after writing, e.g. restored by verify_backup.yml) are never deleted.
    type: int
  max_age:
    description:
      - Delete backups of the system older than this many seconds, after the new backup is written.
      - The newest backup and the newest verified backup (proven after writing, e.g. restored by verify_backup.yml) are never deleted.
    type: int
  metric_textfile_dir:
    description:
      - Directory of the node_exporter textfile collector. After a successful backup the file
        C(trustroot_backup_<system>.prom) there (mode 0644) reports
        C(trustroot_backup_last_success_timestamp_seconds) and C(trustroot_backup_last_size_bytes).
    type: path
  s3:
    description:
      - Copy the archive and then its sidecar to an S3-compatible object store (path-style requests,
        Signature Version 4), and apply O(keep_count) and O(max_age) there too.
    type: dict
    suboptions:
      endpoint:
        description: Base URL of the store, C(https://host[:port]) (C(http://) for a store on loopback).
        type: str
        required: true
      bucket:
        description: Bucket name. The bucket must exist.
        type: str
        required: true
      access_key:
        description: Access key ID.
        type: str
        required: true
      secret_key:
        description: Secret access key. Never logged or returned.
        type: str
        required: true
      region:
        description: Region used in the request signatures.
        type: str
        default: us-east-1
      prefix:
        description: Key prefix (a folder such as C(backups/spire/)) for the archives in the bucket.
        type: str
        default: ''
      ca_file:
        description: CA bundle to verify the store's TLS certificate, when it is not in the system's trust store.
        type: path
notes:
  - Archives, sidecars and metric files are written through a temporary file in the target directory that
    replaces the target only when complete; a failed or interrupted backup leaves no partial file. An archive
    is read back and checked before its sidecar is written; a sidecar exists only for an archive that checked out.
'''

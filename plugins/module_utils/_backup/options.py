# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options every module that writes backups shares (documented in the trustroot.ops.backup fragment) and their
checks.

Stdlib only (and other host-shared files of this collection): it runs in modules and in the host program."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.trustroot.ops.plugins.module_utils._backup.format import (
    BackupError, check_system, directory_errors, part_errors, recipient_errors)
from ansible_collections.trustroot.ops.plugins.module_utils._backup.retention import retention_errors

S3_REQUIRED = ('endpoint', 'bucket', 'access_key', 'secret_key')


def backup_argument_spec():
    """The destination options, in AnsibleModule argument_spec form."""
    return dict(
        dest_dir=dict(type='path'),
        age_recipients=dict(type='list', elements='str', default=[]),
        keep_count=dict(type='int'),
        max_age=dict(type='int'),
        metric_textfile_dir=dict(type='path'),
        s3=dict(type='dict', options=dict(
            endpoint=dict(type='str', required=True),
            bucket=dict(type='str', required=True),
            access_key=dict(type='str', required=True, no_log=False),
            secret_key=dict(type='str', required=True, no_log=True),
            region=dict(type='str', default='us-east-1'),
            prefix=dict(type='str', default=''),
            ca_file=dict(type='path'),
        )),
    )


def backup_option_errors(params):
    """Field-named problems of the destination options in ``params``; [] when they are usable."""
    errors = directory_errors(params.get('dest_dir'), 'dest_dir')
    errors += recipient_errors(params.get('age_recipients'))
    errors += retention_errors(params.get('keep_count'), params.get('max_age'))
    if params.get('metric_textfile_dir'):
        errors += directory_errors(params['metric_textfile_dir'], 'metric_textfile_dir')
    s3 = params.get('s3')
    if s3 is not None:
        if not isinstance(s3, dict):
            errors.append('s3 must be a dict')
        else:
            for key in S3_REQUIRED:
                if not s3.get(key):
                    errors.append('s3.%s is required' % key)
            endpoint = s3.get('endpoint') or ''
            if endpoint and not re.match(r'^https?://[^/\s]+/?$', endpoint):
                errors.append('s3.endpoint must be http(s)://host[:port] (path-style requests), got %s' % endpoint)
            bucket = s3.get('bucket') or ''
            if bucket and not re.match(r'^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$', bucket):
                errors.append('s3.bucket %s is not a valid bucket name' % bucket)
            prefix = s3.get('prefix') or ''
            if prefix.startswith('/') or '..' in prefix.split('/'):
                errors.append('s3.prefix must be relative without .. (for example backups/spire/)')
            if s3.get('ca_file') and not os.path.isfile(s3['ca_file']):
                errors.append('s3.ca_file %s does not exist' % s3['ca_file'])
    return errors


# The options of backup_archive that belong to one state only.
PRESENT_ONLY = ('parts',)
VERIFIED_ONLY = ('path', 'age_identity', 'extract_to')


def archive_option_errors(params, age_available):
    """Pure. Field-named problems of backup_archive's options (``age_available``: the age command is on PATH)."""
    errors = []
    if params['state'] == 'present':
        for name in VERIFIED_ONLY:
            if params[name]:
                errors.append('%s applies only to state=verified' % name)
        if params['mark_verified']:
            errors.append('mark_verified applies only to state=verified')
        if not params['system']:
            errors.append('system is required with state=present')
        else:
            try:
                check_system(params['system'])
            except BackupError as exc:
                errors.append(str(exc))
        if not params['parts']:
            errors.append('parts must list at least one file with state=present')
        else:
            errors += part_errors([(p['name'], p['path']) for p in params['parts']])
        errors += backup_option_errors(params)
        if params['age_recipients'] and not age_available:
            errors.append('age_recipients needs the age command on the host that runs the module')
    else:
        for name in PRESENT_ONLY:
            if params[name]:
                errors.append('%s applies only to state=present' % name)
        if not params['path'] and not (params['dest_dir'] and params['system']):
            errors.append('state=verified needs path, or dest_dir and system (the latest backup there)')
        if params['path'] and params['dest_dir']:
            errors.append('path and dest_dir are mutually exclusive with state=verified')
        if params['system']:
            try:
                check_system(params['system'])
            except BackupError as exc:
                errors.append(str(exc))
        if params['extract_to'] and not os.path.isdir(params['extract_to']):
            errors.append('extract_to %s does not exist or is not a directory' % params['extract_to'])
        if not re.match(r'^[a-z0-9_-]+$', params['verified_how'] or ''):
            errors.append('verified_how must match [a-z0-9_-]+, got %r' % (params['verified_how'],))
        if params['age_identity'] and not os.path.isfile(params['age_identity']):
            errors.append('age_identity %s is not a file' % params['age_identity'])
    return errors

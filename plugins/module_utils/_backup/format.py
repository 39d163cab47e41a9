# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every part of the backup code shares: the errors, the archive format constants, names and times, the
checks of inputs.

Stdlib only (and other host-shared files of this collection): it runs in modules and in the host program."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import datetime
import json
import os
import re
import signal
import tempfile
import threading

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError


FORMAT = 'trustroot.ops/backup/v1'
MANIFEST = 'manifest.json'
CHUNK = 1024 * 1024
MAX_MANIFEST_SIZE = 16 * 1024 * 1024
SYSTEM_RE = re.compile(r'^[a-z0-9_-]+$')
MEMBER_RE = re.compile(r'^[A-Za-z0-9._-]+$')
SHA256_RE = re.compile(r'^[0-9a-f]{64}$')
STAMP_FORMAT = '%Y%m%dT%H%M%SZ'
ISO_FORMAT = '%Y-%m-%dT%H:%M:%SZ'
ARCHIVE_SUFFIXES = ('.tar.gz', '.tar.gz.age')
AGE_MAGIC = b'age-encryption.org/'


class BackupError(TrustrootError):
    """A backup that cannot be written, read or trusted. The message names the file or field and the rule."""


class Terminated(BaseException):
    """SIGTERM received while a backup file was being written (handled like KeyboardInterrupt)."""


@contextlib.contextmanager
def sigterm_raises():
    """Within the block, SIGTERM raises Terminated (so cleanup runs) unless the caller installed its own handler."""
    installed = False
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None):
            def _raise(_signum, _frame):
                raise Terminated('terminated by SIGTERM')
            signal.signal(signal.SIGTERM, _raise)
            installed = True
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def aware_utc(value, field='created'):
    if not isinstance(value, datetime.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise BackupError('%s must be a timezone-aware datetime, got %r' % (field, value))
    return value.astimezone(datetime.timezone.utc).replace(microsecond=0)


def iso(value):
    return aware_utc(value).strftime(ISO_FORMAT)


def parse_iso(text, field='created'):
    try:
        return datetime.datetime.strptime(text, ISO_FORMAT).replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        raise BackupError('%s must be a UTC time like 2026-11-30T23:15:00Z, got %r' % (field, text))


def check_system(system):
    if not isinstance(system, str) or not SYSTEM_RE.match(system):
        raise BackupError('system must match [a-z0-9_-]+, got %r' % (system,))
    return system


def archive_name(system, created):
    """Base name of the archive of ``system`` made at ``created`` (aware datetime): 'spire-20261130T231500Z'."""
    return '%s-%s' % (check_system(system), aware_utc(created).strftime(STAMP_FORMAT))


def sidecar_path(archive_path):
    return archive_path + '.json'


def is_archive_name(name):
    return not name.startswith('.') and name.endswith(ARCHIVE_SUFFIXES)


def part_errors(parts):
    """Field-named problems of ``parts`` (list of (member_name, source_path)); [] when they can be archived."""
    errors = []
    seen = set()
    if not parts:
        return ['parts must list at least one file']
    for index, part in enumerate(parts):
        try:
            name, path = part
        except (TypeError, ValueError):
            errors.append('parts[%d] must be a (name, path) pair' % index)
            continue
        if not isinstance(name, str) or not MEMBER_RE.match(name) or name in ('.', '..'):
            errors.append('parts[%d].name %r must be a plain file name of [A-Za-z0-9._-]' % (index, name))
        elif name == MANIFEST:
            errors.append('parts[%d].name must not be %s (the archive\'s own manifest)' % (index, MANIFEST))
        elif name in seen:
            errors.append('parts[%d].name %s is used twice: member names must be unique' % (index, name))
        seen.add(name)
        if not isinstance(path, str) or not path:
            errors.append('parts[%d].path must be a file path' % index)
        elif not os.path.exists(path):
            errors.append('parts[%d].path %s does not exist' % (index, path))
        elif not os.path.isfile(path):
            errors.append('parts[%d].path %s is not a regular file' % (index, path))
        elif os.path.getsize(path) == 0:
            errors.append('parts[%d].path %s is empty (zero bytes): an empty file is never a backup' % (index, path))
        elif not os.access(path, os.R_OK):
            errors.append('parts[%d].path %s is not readable' % (index, path))
    return errors


def recipient_errors(recipients):
    errors = []
    for index, recipient in enumerate(recipients or ()):
        if not isinstance(recipient, str) or not recipient.startswith('age1') or any(c.isspace() for c in recipient):
            errors.append('age_recipients[%d] must be an age public key starting with age1' % index)
    return errors


def directory_errors(directory, field='dest_dir'):
    if not directory:
        return ['%s is required' % field]
    if not os.path.isdir(directory):
        return ['%s %s does not exist or is not a directory' % (field, directory)]
    if not os.access(directory, os.W_OK | os.X_OK):
        return ['%s %s is not writable' % (field, directory)]
    return []


def json_bytes(value):
    return json.dumps(value, sort_keys=True, indent=2).encode('utf-8') + b'\n'


def temp_path(directory, name):
    fd, path = tempfile.mkstemp(dir=directory, prefix='.%s.' % name, suffix='.part')
    os.fchmod(fd, 0o600)
    os.close(fd)
    return path


def text_of(value):
    return value.decode('utf-8', 'replace').strip() if isinstance(value, bytes) else (value or '').strip()


def epoch_seconds(created):
    return (created - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)).total_seconds()

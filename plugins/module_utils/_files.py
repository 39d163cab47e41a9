# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files that must never be half-written: atomic writes (temp file + rename), space reserved ahead of a write
that must not fail, checksums, age encryption."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import hashlib
import os
import queue
import tempfile
import threading

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError
from ansible_collections.trustroot.ops.plugins.module_utils._runner import module_runner

CHUNK = 1024 * 1024
AGE_ARMOR_HEADER = b'-----BEGIN AGE ENCRYPTED FILE-----'


class FileError(TrustrootError):
    pass


def check_writable_target(path, overwrite=True):
    """Return None when ``path`` can be written atomically, else the reason (for a field error)."""
    directory = os.path.dirname(os.path.abspath(path)) or '.'
    if not os.path.isdir(directory):
        return 'directory %s does not exist' % directory
    if not os.access(directory, os.W_OK | os.X_OK):
        return 'directory %s is not writable' % directory
    if os.path.isdir(path):
        return '%s is a directory' % path
    if not overwrite and os.path.exists(path):
        return '%s already exists' % path
    return None


@contextlib.contextmanager
def atomic_writer(path, mode=0o600):
    """Yield a binary file; on success it replaces ``path`` whole, on any error nothing is left behind.

    The temp file lives in the target directory (same filesystem, so the rename is atomic) and has its
    final mode from the start, so a secret is never readable by others even for a moment.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(path), suffix='.part')
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, 'wb') as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        raise
    fsync_directory(directory)


class WriteBehind(object):
    """Writes and hashes (sha256) the chunks given to ``put`` in a thread of its own, so that a download's next
    read from its socket overlaps the write of the last chunk; written data is pushed to disk every
    ``sync_every`` bytes, so the fsync that commits the file finds little left to write. Memory: at most
    ``depth`` chunks wait. Use as a context manager around the writes to ``handle``; ``finish()`` returns
    (sha256 hex, size) once everything is written. An error in the writer is raised by the next ``put`` or by
    ``finish``; leaving the block on an error stops the writer before the error goes on."""

    _END = object()

    def __init__(self, handle, depth=8, sync_every=64 * 1024 * 1024):
        self._handle = handle
        self._sync_every = sync_every
        self._queue = queue.Queue(maxsize=depth)
        self._digest = hashlib.sha256()
        self._size = 0
        self._error = None
        self._thread = threading.Thread(target=self._run, name='write-behind')
        self._thread.daemon = True

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._thread.is_alive():
            self._stop()
        return False

    def _run(self):
        unsynced = 0
        while True:
            chunk = self._queue.get()
            if chunk is self._END:
                return
            if self._error is not None:
                continue  # drain: the caller learns of the error at its next put or at finish
            try:
                self._handle.write(chunk)
                self._digest.update(chunk)
                self._size += len(chunk)
                unsynced += len(chunk)
                if unsynced >= self._sync_every:
                    self._handle.flush()
                    os.fdatasync(self._handle.fileno())
                    unsynced = 0
            except Exception as exc:  # pylint: disable=broad-except  # handed to the caller's thread
                self._error = exc

    def _stop(self):
        self._queue.put(self._END)
        self._thread.join()

    def _raise_error(self):
        if self._error is not None:
            raise self._error

    def put(self, chunk):
        self._raise_error()
        self._queue.put(chunk)

    def finish(self):
        self._stop()
        self._raise_error()
        return self._digest.hexdigest(), self._size


def atomic_write(path, data, mode=0o600):
    with atomic_writer(path, mode) as handle:
        handle.write(data)


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(directory):
    """Make a rename in ``directory`` durable; a filesystem that cannot fsync a directory is not an error."""
    with contextlib.suppress(OSError):
        fsync_path(directory)


def reserve_space(target_path, size):
    """Create a hidden 0600 placeholder beside ``target_path`` holding ``size`` bytes on disk; return its path.

    The bytes are really written and fsynced (os.access and free-space figures can lie: root on a full or
    read-only filesystem, NFS root_squash, FUSE), so the blocks are allocated when this returns. They are
    random, not zeros: a compressing or deduplicating filesystem would not allocate blocks for zeros.
    Raises OSError with nothing left behind.
    """
    directory = os.path.dirname(os.path.abspath(target_path))
    fd, path = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(target_path), suffix='.reserved')
    _fill_new_file(fd, path, os.urandom(size), 0o600)
    return path


def write_reserved(path, data):
    """Write ``data`` over the start of a placeholder made by reserve_space, cut it to size, fsync it.

    Opened read-write without truncating first: the blocks stay allocated, so a disk filled since the
    reservation cannot fail the write (on filesystems that overwrite in place; copy-on-write ones, btrfs
    and ZFS, still need free blocks)."""
    fd = os.open(path, os.O_RDWR | getattr(os, 'O_NOFOLLOW', 0))
    try:
        _write_all(fd, data)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_reserved(path, target, overwrite=True):
    """Rename the filled placeholder onto ``target`` (atomic, same directory) and make the rename durable."""
    if not overwrite and os.path.lexists(target):
        raise OSError(errno.EEXIST, os.strerror(errno.EEXIST), target)
    os.replace(path, target)
    fsync_directory(os.path.dirname(os.path.abspath(target)))


def write_new_file(path, data, mode=0o600):
    """Create ``path`` (never replacing anything) with ``mode`` from the start, write and fsync it and its
    directory; raises OSError with nothing left behind."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0), mode)
    _fill_new_file(fd, path, data, mode)


def _fill_new_file(fd, path, data, mode):
    """Give the just-created file ``fd`` (at ``path``) ``mode``, write ``data``, fsync it and its directory, close
    it; on any error it is closed and removed, and the error raised."""
    try:
        os.fchmod(fd, mode)
        _write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        remove_quietly(path)
        raise
    os.close(fd)
    fsync_directory(os.path.dirname(os.path.abspath(path)))


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[:CHUNK]):]


def remove_quietly(path):
    if path:
        with contextlib.suppress(OSError):
            os.unlink(path)


def os_error_text(exc):
    """'no space left on device' from an OSError (lower case, without the path it names)."""
    text = getattr(exc, 'strerror', None) or str(exc)
    return text[:1].lower() + text[1:]


def sha256_and_size(path):
    """(sha256 hex, size in bytes) of a file read in chunks: memory does not grow with the file."""
    digest = hashlib.sha256()
    size = 0
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b''):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def is_age_encrypted(data):
    return data.lstrip().startswith(AGE_ARMOR_HEADER) or data.startswith(b'age-encryption.org/')


def age_encrypt(module, data, recipients):
    """Encrypt bytes to age recipients (ASCII armor) with the ``age`` CLI; raises FileError."""
    age = module.get_bin_path('age')
    if not age:
        raise FileError('age_recipients needs the age command on the host that runs the module')
    argv = [age, '--armor']
    for recipient in recipients:
        argv += ['--recipient', recipient]
    rc, out, err = module_runner(module)(argv, data)
    if rc != 0:
        raise FileError('age could not encrypt to age_recipients: %s' % _text(err).strip())
    return out


def age_decrypt(module, data, identity_file):
    age = module.get_bin_path('age')
    if not age:
        raise FileError('decrypting needs the age command on the host that runs the module')
    rc, out, err = module_runner(module)([age, '--decrypt', '--identity', identity_file], data)
    if rc != 0:
        raise FileError('age could not decrypt with age_identity %s: %s' % (identity_file, _text(err).strip()))
    return out


def _text(value):
    return value.decode('utf-8', 'replace') if isinstance(value, bytes) else (value or '')

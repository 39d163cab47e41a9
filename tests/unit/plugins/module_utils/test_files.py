"""_files.WriteBehind: the write and hash that run behind a download."""

import hashlib
import os
import threading

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils import _files


def test_write_behind_writes_every_chunk_in_order_and_hashes_them(tmp_path):
    chunks = [os.urandom(1000 + n) for n in range(50)]
    path = tmp_path / 'out'
    with open(str(path), 'wb') as handle:
        with _files.WriteBehind(handle, depth=2) as writer:
            for chunk in chunks:
                writer.put(chunk)
            sha256, size = writer.finish()
    data = b''.join(chunks)
    assert path.read_bytes() == data
    assert (sha256, size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_write_behind_pushes_data_to_disk_along_the_way(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(_files.os, 'fdatasync', synced.append)
    with open(str(tmp_path / 'out'), 'wb') as handle:
        with _files.WriteBehind(handle, sync_every=3000) as writer:
            for _n in range(10):
                writer.put(b'x' * 1000)
            writer.finish()
        assert synced == [handle.fileno()] * 3


class FailingHandle(object):
    def __init__(self, fail_after):
        self.written = 0
        self.fail_after = fail_after

    def write(self, chunk):
        if self.written + len(chunk) > self.fail_after:
            raise OSError(28, 'No space left on device')
        self.written += len(chunk)

    def flush(self):
        pass

    def fileno(self):
        return -1


def test_a_write_error_reaches_the_caller():
    with pytest.raises(OSError, match='No space left'):
        with _files.WriteBehind(FailingHandle(2500), depth=1) as writer:
            for _n in range(100):
                writer.put(b'y' * 1000)
            writer.finish()


def test_a_write_error_after_the_last_put_is_raised_by_finish():
    writer = _files.WriteBehind(FailingHandle(500))
    with writer:
        writer.put(b'z' * 1000)
        with pytest.raises(OSError, match='No space left'):
            writer.finish()


def test_an_error_of_the_caller_stops_the_writer():
    before = threading.active_count()
    with pytest.raises(ValueError):
        with _files.WriteBehind(FailingHandle(10 ** 9)) as writer:
            writer.put(b'a')
            raise ValueError('the download broke')
    assert threading.active_count() == before

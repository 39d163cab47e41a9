# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A raft snapshot file sent as a request body in large pieces.

urllib3 reads a file body 16 KiB at a time (http.client 8 KiB), one socket write each: a 500 MB snapshot
then costs some 30,000 round trips through Python. FileBody hands out 1 MiB pieces whatever size is
asked for, and gives its length so the request still carries a Content-Length (not chunked encoding).
Memory holds one piece at a time."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

UPLOAD_PIECE = 1 << 20


class FileBody(object):
    """``handle`` (a binary file open for reading, at its start) as a request body of ``size`` bytes."""

    def __init__(self, handle, size, piece=UPLOAD_PIECE):
        if piece < 1:
            raise ValueError('piece must be at least 1 byte')
        self._handle = handle
        self._size = size
        self._piece = piece

    def __len__(self):
        return self._size

    def read(self, _amount=-1):
        """The next piece (b'' at the end); the size the HTTP library asks for is ignored on purpose."""
        return self._handle.read(self._piece)


def upload_snapshot(node, path, force=False):
    """POST the snapshot file at ``path`` to the node's restore endpoint (streamed from disk); the endpoint."""
    endpoint = 'sys/storage/raft/snapshot-force' if force else 'sys/storage/raft/snapshot'
    with open(path, 'rb') as handle:
        node.raw('POST', endpoint, data=FileBody(handle, os.fstat(handle.fileno()).st_size),
                 headers={'Content-Type': 'application/octet-stream'})
    return endpoint

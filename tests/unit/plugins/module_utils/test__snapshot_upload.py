import io

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._snapshot_upload import UPLOAD_PIECE, FileBody, upload_snapshot


def test_pieces_whatever_size_is_asked_for():
    data = bytes(range(256)) * 41   # 10,496 bytes
    body = FileBody(io.BytesIO(data), len(data), piece=4096)
    assert len(body) == len(data)
    pieces = []
    while True:
        piece = body.read(16384)     # what urllib3 asks for
        if not piece:
            break
        pieces.append(piece)
    assert [len(p) for p in pieces] == [4096, 4096, 2304]
    assert b''.join(pieces) == data


def test_default_piece_and_bad_piece():
    assert UPLOAD_PIECE == 1 << 20
    with pytest.raises(ValueError):
        FileBody(io.BytesIO(b'x'), 1, piece=0)


def test_requests_sends_it_with_a_content_length():
    requests = pytest.importorskip('requests')
    data = b'\x1f\x8b' + b'z' * 3000000
    prepared = requests.Request('POST', 'http://127.0.0.1:1/v1/sys/storage/raft/snapshot',
                                data=FileBody(io.BytesIO(data), len(data))).prepare()
    assert prepared.headers['Content-Length'] == str(len(data))
    assert 'Transfer-Encoding' not in prepared.headers


class Node(object):
    def __init__(self):
        self.calls = []

    def raw(self, method, path, **kwargs):
        body = kwargs['data']
        sent = b''.join(iter(lambda: body.read(16384), b''))
        self.calls.append((method, path, len(body), sent, kwargs['headers']))
        return 204, None


@pytest.mark.parametrize('force, endpoint', [
    (False, 'sys/storage/raft/snapshot'), (True, 'sys/storage/raft/snapshot-force')])
def test_upload_snapshot(tmp_path, force, endpoint):
    path = tmp_path / 'raft.snap'
    path.write_bytes(b'\x1f\x8b' + b'a' * (UPLOAD_PIECE + 5))
    node = Node()
    assert upload_snapshot(node, str(path), force=force) == endpoint
    assert node.calls == [('POST', endpoint, UPLOAD_PIECE + 7, path.read_bytes(),
                           {'Content-Type': 'application/octet-stream'})]

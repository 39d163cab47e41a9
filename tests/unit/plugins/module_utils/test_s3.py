"""Signature Version 4 against AWS's published S3 examples, and the pure parts of the S3 client."""

import socket

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils import _s3 as s3

ACCESS = 'AKIAIOSFODNN7EXAMPLE'
SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
DATE = '20130524T000000Z'
HOST = 'examplebucket.s3.amazonaws.com'


def test_get_object_example():
    """AWS S3 docs, 'Example: GET Object' (Authorization header, Range request)."""
    headers = {'Host': HOST, 'Range': 'bytes=0-9', 'x-amz-content-sha256': s3.EMPTY_SHA256, 'x-amz-date': DATE}
    canonical, signed = s3.canonical_request('GET', '/test.txt', {}, headers, s3.EMPTY_SHA256)
    assert canonical == '\n'.join([
        'GET', '/test.txt', '',
        'host:examplebucket.s3.amazonaws.com', 'range:bytes=0-9',
        'x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'x-amz-date:20130524T000000Z', '',
        'host;range;x-amz-content-sha256;x-amz-date',
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'])
    scope = s3.credential_scope(DATE, 'us-east-1')
    assert scope == '20130524/us-east-1/s3/aws4_request'
    text = s3.string_to_sign(DATE, scope, canonical)
    assert text == '\n'.join(['AWS4-HMAC-SHA256', DATE, scope,
                              '7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972'])
    expected = 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41'
    assert s3.signature(SECRET, DATE, 'us-east-1', text) == expected
    assert s3.authorization(ACCESS, SECRET, 'us-east-1', 'GET', '/test.txt', {}, headers, s3.EMPTY_SHA256, DATE) == (
        'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, '
        'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=' + expected)


def test_list_objects_example():
    """AWS S3 docs, 'Example: GET Bucket (List Objects)': query string sorted and encoded."""
    headers = {'Host': HOST, 'x-amz-content-sha256': s3.EMPTY_SHA256, 'x-amz-date': DATE}
    auth = s3.authorization(ACCESS, SECRET, 'us-east-1', 'GET', '/', {'prefix': 'J', 'max-keys': '2'}, headers,
                            s3.EMPTY_SHA256, DATE)
    assert auth.endswith('Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7')


def test_canonical_query_and_path_encoding():
    assert s3.canonical_query({'prefix': 'a b/c', 'list-type': '2'}) == 'list-type=2&prefix=a%20b%2Fc'
    assert s3.canonical_query([('continuation-token', '1+/=')]) == 'continuation-token=1%2B%2F%3D'
    canonical, _signed = s3.canonical_request('put', '/bucket/dir/a b~.tar.gz', {}, {'Host': 'h'}, 'x')
    assert canonical.split('\n')[:2] == ['PUT', '/bucket/dir/a%20b~.tar.gz']


def test_signing_key_depends_on_every_part():
    keys = {s3.signing_key(SECRET, '20130524', 'us-east-1'), s3.signing_key(SECRET, '20130525', 'us-east-1'),
            s3.signing_key(SECRET, '20130524', 'eu-west-1'), s3.signing_key(SECRET + 'x', '20130524', 'us-east-1')}
    assert len(keys) == 4


def test_parse_error():
    body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
            b'<Message>The specified key does not exist.</Message><Key>a</Key></Error>')
    assert s3.parse_error(body) == ('NoSuchKey', 'The specified key does not exist.')
    assert s3.parse_error(b'') == (None, None)
    assert s3.parse_error(b'<html>oops') == (None, None)


def test_parse_list_pages():
    body = (b'<?xml version="1.0" encoding="UTF-8"?>'
            b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>'
            b'<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>'
            b'<NextContinuationToken>tok==</NextContinuationToken>'
            b'<Contents><Key>p/a</Key><LastModified>2026-11-30T23:15:00.000Z</LastModified><Size>3</Size></Contents>'
            b'<Contents><Key>p/b</Key><LastModified>2026-11-30T23:16:00.000Z</LastModified><Size>4</Size></Contents>'
            b'</ListBucketResult>')
    objects, token = s3.parse_list(body)
    assert token == 'tok=='
    assert objects == [{'key': 'p/a', 'size': 3, 'last_modified': '2026-11-30T23:15:00.000Z'},
                       {'key': 'p/b', 'size': 4, 'last_modified': '2026-11-30T23:16:00.000Z'}]
    last = body.replace(b'<IsTruncated>true</IsTruncated>', b'<IsTruncated>false</IsTruncated>')
    assert s3.parse_list(last)[1] is None


def test_store_prefix_and_paths():
    store = s3.S3Store('http://127.0.0.1:9000/', 'backups', 'user', 'topsecret', prefix='/site-a')
    assert store.prefix == 'site-a/' and store.host == '127.0.0.1:9000'
    assert store._path('x.tar.gz') == '/backups/site-a/x.tar.gz' and store._path() == '/backups'
    assert 'topsecret' not in repr(store) and 'topsecret' not in str(vars(store).get('prefix'))
    assert s3.S3Store('https://s3.example.com', 'b', 'a', 's').prefix == ''


@pytest.mark.parametrize('endpoint, bucket, message', [
    ('127.0.0.1:9000', 'b', 'endpoint must be'),
    ('ftp://host', 'b', 'endpoint must be'),
    ('http://host/path', 'b', 'endpoint must be'),
    ('http://host', '', 'bucket must be'),
    ('http://host', 'a/b', 'bucket must be'),
])
def test_store_rejects(endpoint, bucket, message):
    with pytest.raises(s3.S3Error, match=message):
        s3.S3Store(endpoint, bucket, 'a', 'secret')


def test_unreachable_store_error_has_no_secret():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    store = s3.S3Store('http://127.0.0.1:%d' % port, 'b', 'a', 'the-secret-key', timeout=5)
    with pytest.raises(s3.S3Error) as exc:
        store.bucket_exists()
    assert exc.value.status is None and 'the-secret-key' not in str(exc.value)
    assert 'HEAD bucket b at http://127.0.0.1:' in str(exc.value)

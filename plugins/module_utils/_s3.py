# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A minimal client for S3-compatible object stores (AWS S3, MinIO, Ceph RGW, ...), for backup archives.

Path-style requests (``<endpoint>/<bucket>/<key>``) signed with AWS Signature Version 4; uploads are streamed
from disk with the payload's sha256 in the signature (the store checks it), downloads are streamed to a
temporary file that replaces the target only when complete. The signing functions are pure. One PUT carries
one object (no multipart upload), which S3 allows up to 5 GiB.

Host-shared: standard library only (it also runs in a plain Python 3 command on hosts). The secret key is used
only to derive signing keys; it is never logged, never part of an error message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import hmac
import http.client
import ssl
import urllib.parse
from xml.etree import ElementTree

from ansible_collections.trustroot.ops.plugins.module_utils._files import atomic_writer, sha256_and_size
from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError

ALGORITHM = 'AWS4-HMAC-SHA256'
EMPTY_SHA256 = hashlib.sha256(b'').hexdigest()
UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD'
S3_NS = '{http://s3.amazonaws.com/doc/2006-03-01/}'
CHUNK = 1024 * 1024
_UNRESERVED = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~'


class S3Error(TrustrootError):
    """A failed S3 request: ``status`` (HTTP status or None when the store was not reached), ``code`` (the S3
    error Code such as NoSuchKey), and a message naming the operation, bucket and key."""

    def __init__(self, message, status=None, code=None):
        super(S3Error, self).__init__(message)
        self.status = status
        self.code = code


# --- Signature Version 4 (pure) ---

def uri_encode(text, safe_slash=False):
    """RFC 3986 encoding as SigV4 wants it: unreserved characters kept, '/' kept only in paths."""
    return urllib.parse.quote(text, safe=_UNRESERVED + ('/' if safe_slash else ''))


def canonical_query(query):
    """Canonical query string from a dict or list of pairs (sorted by encoded name, then value)."""
    pairs = query.items() if isinstance(query, dict) else (query or [])
    encoded = sorted((uri_encode(str(k)), uri_encode(str(v))) for k, v in pairs)
    return '&'.join('%s=%s' % pair for pair in encoded)


def canonical_request(method, path, query, headers, payload_hash):
    """(canonical request text, signed headers) of a request; ``headers`` is a dict of the headers to sign."""
    lowered = {}
    for name, value in headers.items():
        lowered[name.strip().lower()] = ' '.join(str(value).strip().split())
    names = sorted(lowered)
    signed = ';'.join(names)
    text = '\n'.join([
        method.upper(),
        uri_encode(path or '/', safe_slash=True),
        canonical_query(query),
        ''.join('%s:%s\n' % (name, lowered[name]) for name in names),
        signed,
        payload_hash,
    ])
    return text, signed


def credential_scope(amz_date, region, service='s3'):
    return '%s/%s/%s/aws4_request' % (amz_date[:8], region, service)


def string_to_sign(amz_date, scope, canonical):
    return '\n'.join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode('utf-8')).hexdigest()])


def signing_key(secret_key, date_stamp, region, service='s3'):
    key = ('AWS4' + secret_key).encode('utf-8')
    for part in (date_stamp, region, service, 'aws4_request'):
        key = hmac.new(key, part.encode('utf-8'), hashlib.sha256).digest()
    return key


def signature(secret_key, amz_date, region, text_to_sign, service='s3'):
    key = signing_key(secret_key, amz_date[:8], region, service)
    return hmac.new(key, text_to_sign.encode('utf-8'), hashlib.sha256).hexdigest()


def authorization(access_key, secret_key, region, method, path, query, headers, payload_hash, amz_date,
                  service='s3'):
    """The Authorization header value for a request whose ``headers`` (to sign) include host, x-amz-date and
    x-amz-content-sha256."""
    canonical, signed = canonical_request(method, path, query, headers, payload_hash)
    scope = credential_scope(amz_date, region, service)
    sig = signature(secret_key, amz_date, region, string_to_sign(amz_date, scope, canonical), service)
    return '%s Credential=%s/%s, SignedHeaders=%s, Signature=%s' % (ALGORITHM, access_key, scope, signed, sig)


def amz_date(now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.astimezone(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')


def parse_error(body):
    """(Code, Message) from an S3 XML error body, or (None, None)."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None, None
    code = root.findtext('Code') or root.findtext(S3_NS + 'Code')
    message = root.findtext('Message') or root.findtext(S3_NS + 'Message')
    return code, message


def parse_list(body):
    """(objects, next continuation token or None) from a ListObjectsV2 answer."""
    root = ElementTree.fromstring(body)
    ns = S3_NS if root.tag.startswith(S3_NS) else ''
    objects = []
    for item in root.findall(ns + 'Contents'):
        objects.append({'key': item.findtext(ns + 'Key'), 'size': int(item.findtext(ns + 'Size') or 0),
                        'last_modified': item.findtext(ns + 'LastModified')})
    truncated = (root.findtext(ns + 'IsTruncated') or '').lower() == 'true'
    token = root.findtext(ns + 'NextContinuationToken') if truncated else None
    return objects, token


class S3Store(object):
    """Objects of one bucket under an optional ``prefix``; every key given to or returned by a method is
    relative to that prefix."""

    def __init__(self, endpoint, bucket, access_key, secret_key, region='us-east-1', prefix='', ca_file=None,
                 timeout=60):
        parts = urllib.parse.urlsplit(endpoint or '')
        if parts.scheme not in ('http', 'https') or not parts.netloc or parts.path not in ('', '/'):
            raise S3Error('endpoint must be http(s)://host[:port], got %r' % (endpoint,))
        if not bucket or '/' in bucket:
            raise S3Error('bucket must be a bucket name, got %r' % (bucket,))
        self.scheme = parts.scheme
        self.host = parts.netloc
        self.endpoint = '%s://%s' % (parts.scheme, parts.netloc)
        self.bucket = bucket
        self.access_key = access_key
        self._secret_key = secret_key
        self.region = region or 'us-east-1'
        prefix = (prefix or '').lstrip('/')
        self.prefix = prefix if not prefix or prefix.endswith('/') else prefix + '/'
        self.ca_file = ca_file
        self.timeout = timeout

    def __repr__(self):
        return 'S3Store(%s/%s/%s)' % (self.endpoint, self.bucket, self.prefix)

    # --- transport ---

    def _connection(self):
        if self.scheme == 'https':
            context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else ssl.create_default_context()
            return http.client.HTTPSConnection(self.host, timeout=self.timeout, context=context, blocksize=CHUNK)
        return http.client.HTTPConnection(self.host, timeout=self.timeout, blocksize=CHUNK)

    def _path(self, key=None):
        return '/%s' % self.bucket if key is None else '/%s/%s' % (self.bucket, self.prefix + key)

    def _where(self, key=None):
        return '%s/%s' % (self.bucket, self.prefix + key) if key is not None else self.bucket

    def _send(self, method, key=None, query=None, body=None, payload_hash=EMPTY_SHA256, extra=None, ok=(200,),
              what=None):
        """Send one signed request; return (status, response, connection) with the body unread."""
        date = amz_date()
        headers = {'host': self.host, 'x-amz-date': date, 'x-amz-content-sha256': payload_hash}
        headers.update(extra or {})
        path = self._path(key)
        headers['authorization'] = authorization(self.access_key, self._secret_key, self.region, method, path,
                                                 query or {}, {k: v for k, v in headers.items()
                                                               if k != 'content-length'}, payload_hash, date)
        url = uri_encode(path, safe_slash=True)
        if query:
            url += '?' + canonical_query(query)
        conn = self._connection()
        label = '%s %s' % (what or method, self._where(key))
        try:
            conn.request(method, url, body=body, headers=headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise S3Error('S3 %s at %s: %s' % (label, self.endpoint, getattr(exc, 'strerror', None) or exc))
        if response.status not in ok:
            data = response.read() if method != 'HEAD' else b''
            conn.close()
            code, message = parse_error(data)
            raise S3Error('S3 %s: HTTP %d%s%s' % (label, response.status, ' %s' % code if code else '',
                                                  ': %s' % message if message else ''),
                          status=response.status, code=code)
        return response.status, response, conn

    def _simple(self, method, key=None, query=None, ok=(200,), what=None, body=None, payload_hash=EMPTY_SHA256):
        status, response, conn = self._send(method, key, query, body=body, payload_hash=payload_hash, ok=ok,
                                            what=what)
        try:
            data = response.read() if method != 'HEAD' else b''
        finally:
            conn.close()
        return status, data

    # --- operations ---

    def bucket_exists(self):
        status, _data = self._simple('HEAD', ok=(200, 404), what='HEAD bucket')
        return status == 200

    def create_bucket(self):
        body = b''
        if self.region != 'us-east-1':
            body = ('<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    '<LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>' % self.region).encode()
        self._simple('PUT', body=body, payload_hash=hashlib.sha256(body).hexdigest(), what='create bucket')

    def put_file(self, key, path):
        """Upload ``path`` as ``key``, streamed from disk (its sha256 is signed, so the store checks the body)."""
        digest, size = sha256_and_size(path)
        with open(path, 'rb') as handle:
            self._put(key, handle, digest, size)
        return {'key': key, 'sha256': digest, 'size': size}

    def _put(self, key, handle, digest, size):
        status, response, conn = self._send('PUT', key, body=handle, payload_hash=digest,
                                            extra={'content-length': str(size),
                                                   'content-type': 'application/octet-stream'})
        try:
            response.read()
        finally:
            conn.close()
        return status

    def get_file(self, key, path):
        """Download ``key`` to ``path`` (mode 0600), streamed through a temporary file in the same directory."""
        _status, response, conn = self._send('GET', key, what='GET')
        size = 0
        try:
            with atomic_writer(path, 0o600) as handle:
                for chunk in iter(lambda: response.read(CHUNK), b''):
                    handle.write(chunk)
                    size += len(chunk)
                expected = response.getheader('content-length')
                if expected is not None and int(expected) != size:
                    raise S3Error('S3 GET %s: the answer ended after %d of %s bytes'
                                  % (self._where(key), size, expected))
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, S3Error):
                raise
            raise S3Error('S3 GET %s: %s' % (self._where(key), getattr(exc, 'strerror', None) or exc))
        finally:
            conn.close()
        return {'key': key, 'size': size}

    def get_bytes(self, key):
        """Content of a small object (a sidecar)."""
        return self._simple('GET', key, what='GET')[1]

    def list(self, prefix=''):
        """Objects whose key starts with ``prefix``: [{key, size, last_modified}] (keys relative to the store's
        prefix), every page of ListObjectsV2."""
        objects = []
        token = None
        while True:
            query = {'list-type': '2', 'prefix': self.prefix + (prefix or '')}
            if token:
                query['continuation-token'] = token
            _status, data = self._simple('GET', query=query, what='LIST')
            try:
                page, token = parse_list(data)
            except ElementTree.ParseError as exc:
                raise S3Error('S3 LIST %s: the answer is not XML: %s' % (self.bucket, exc))
            for obj in page:
                obj['key'] = obj['key'][len(self.prefix):]
                objects.append(obj)
            if not token:
                return objects

    def delete(self, key):
        self._simple('DELETE', key, ok=(200, 204), what='DELETE')

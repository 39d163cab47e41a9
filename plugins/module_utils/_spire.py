# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SPIRE server CLI runner: every SPIRE server module calls ``spire-server`` through this file.

Commands are argv lists (never a shell string). ``-socketPath`` and ``-output json`` are added here,
the JSON on stdout is parsed (never scraped), and batch answers are read result by result: with
``-output json`` a batch in which some results failed still exits 0. Documentation of the shared
options is the ``trustroot.ops.spire_server`` doc fragment.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import env_fallback

from ansible_collections.trustroot.ops.plugins.module_utils._der import DERError, der_children, der_read
from ansible_collections.trustroot.ops.plugins.module_utils._spire_cli import (  # noqa: F401 pylint: disable=unused-import
    ALREADY_EXISTS, BINARY_DIRS, BINARY_NOT_FOUND, CODE_NAMES, DEFAULT_SERVER_SOCKET, MAX_BATCH, MAX_DELETE_BATCH, NOT_FOUND,
    SpireClient, SpireError, check_results, chunked, clean_stderr, describe_command, find_spire_server, format_failures, grpc_error,
    iter_json_array, looks_unreachable, result_failures, _decoded)


def server_argument_spec():
    """Options every SPIRE server module accepts (documented in the trustroot.ops.spire_server fragment)."""
    return dict(
        socket_path=dict(type='path', default=DEFAULT_SERVER_SOCKET,
                         fallback=(env_fallback, ['SPIRE_SERVER_SOCKET'])),
        spire_server_path=dict(type='path'),
        timeout=dict(type='int', default=60),
    )


class SpireServerCLI(SpireClient):
    """The SPIRE client of a module: the binary from spire_server_path or the module's PATH lookup, the socket and
    timeout from its options. A missing binary raises SpireError naming spire_server_path."""

    def __init__(self, module):
        path = module.params.get('spire_server_path')
        binary = find_spire_server(path) if path else module.get_bin_path('spire-server', opt_dirs=BINARY_DIRS)
        if not binary:  # get_bin_path already searched PATH and BINARY_DIRS
            raise SpireError(BINARY_NOT_FOUND)
        super(SpireServerCLI, self).__init__(binary, module.params.get('socket_path'),
                                             timeout=module.params.get('timeout') or 60)
        self.module = module


def unix_to_iso(seconds):
    """'2026-11-23T11:30:38Z' from seconds since the epoch (int or the string protojson prints for int64)."""
    import datetime
    seconds = int(seconds or 0)
    moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=seconds)
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


def _der_children(data, start, end):
    """(tag, content start, content end) of the elements inside a constructed element."""
    return [(tag, cstart, cend) for tag, cstart, cend, _pos in der_children(data, start, end)]


def _der_time(tag, raw):
    text = raw.decode('ascii')
    if tag == 0x17:     # UTCTime YYMMDDHHMMSSZ
        year = int(text[:2])
        text = ('19' if year >= 50 else '20') + text
    if not text.endswith('Z') or len(text) != 15:
        raise DERError('unsupported time %r' % raw)
    import calendar
    import time
    return calendar.timegm(time.strptime(text, '%Y%m%d%H%M%SZ'))


def certificate_info(der):
    """{'serial', 'not_before', 'not_after' (ISO 8601 UTC), 'not_before_unix', 'not_after_unix',
    'subject_key_id' (lowercase hex or None)} of a DER X.509 certificate, read without a crypto library."""
    data = bytearray(der)
    tag, start, end = der_read(data, 0)
    if tag != 0x30:
        raise DERError('not a certificate')
    tag, tstart, tend = _der_children(data, start, end)[0]
    fields = _der_children(data, tstart, tend)
    index = 1 if fields and fields[0][0] == 0xa0 else 0     # [0] version
    serial = bytes(data[fields[index][1]:fields[index][2]])
    validity = _der_children(data, fields[index + 3][1], fields[index + 3][2])
    not_before = _der_time(validity[0][0], bytes(data[validity[0][1]:validity[0][2]]))
    not_after = _der_time(validity[1][0], bytes(data[validity[1][1]:validity[1][2]]))
    subject_key_id = None
    for tag, cstart, cend in fields[index + 6:]:
        if tag != 0xa3:     # [3] extensions
            continue
        extensions = _der_children(data, cstart, cend)[0]
        for ext_tag, estart, eend in _der_children(data, extensions[1], extensions[2]):
            parts = _der_children(data, estart, eend)
            if bytes(data[parts[0][1]:parts[0][2]]) == b'\x55\x1d\x0e':      # 2.5.29.14
                octets = parts[-1]
                inner = der_read(data, octets[1])
                subject_key_id = bytes(data[inner[1]:inner[2]]).hex()
    return {'serial': str(int.from_bytes(serial, 'big')), 'not_before': unix_to_iso(not_before),
            'not_after': unix_to_iso(not_after), 'not_before_unix': not_before, 'not_after_unix': not_after,
            'subject_key_id': subject_key_id}


def bundle_summary(bundle):
    """The authorities of a ``bundle show -output json`` answer, with X.509 expiries read from the ASN.1."""
    import base64
    x509 = []
    for authority in bundle.get('x509_authorities') or []:
        item = {'tainted': bool(authority.get('tainted'))}
        try:
            item.update(certificate_info(base64.b64decode(authority.get('asn1') or '')))
        except (DERError, ValueError, IndexError) as err:
            item['error'] = 'unreadable certificate: %s' % err
        x509.append(item)
    jwt = []
    for authority in bundle.get('jwt_authorities') or []:
        expires = int(authority.get('expires_at') or 0)
        jwt.append({'key_id': authority.get('key_id'), 'tainted': bool(authority.get('tainted')),
                    'expires_at': unix_to_iso(expires) if expires else None, 'expires_at_unix': expires})
    return {'trust_domain': bundle.get('trust_domain'),
            'sequence_number': int(bundle.get('sequence_number') or 0),
            'refresh_hint': int(bundle.get('refresh_hint') or 0),
            'x509_authorities': x509, 'jwt_authorities': jwt}


def local_authority_summary(show):
    """{'active'|'prepared'|'old': {'authority_id', 'expires_at', 'expires_at_unix',
    'upstream_authority_subject_key_id'} or None} from ``localauthority x509|jwt show``."""
    summary = {}
    for slot in ('active', 'prepared', 'old'):
        raw = show.get(slot)
        if not raw or not raw.get('authority_id'):
            summary[slot] = None
            continue
        expires = int(raw.get('expires_at') or 0)
        summary[slot] = {'authority_id': raw.get('authority_id'),
                         'expires_at': unix_to_iso(expires) if expires else None, 'expires_at_unix': expires,
                         'upstream_authority_subject_key_id': raw.get('upstream_authority_subject_key_id') or None}
    return summary

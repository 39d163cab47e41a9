# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic for SPIRE trust domains, bundles and federation relationships (no I/O).

- SPIFFE ID, trust domain and bundle endpoint URL validation (the SPIFFE-ID standard, strict: no
  characters that SPIRE accepts only for backward compatibility).
- A small DER reader: the Subject Key Identifier of a CA certificate (SPIRE's X.509 authority ID) and
  the JWK form of a public key, so bundles read with ``-output json`` can be shown as PEM or as a SPIFFE
  bundle (JWKS) and compared with a desired bundle by their authorities, without extra libraries.
- Desired vs current federation relationships: what to create, update and delete.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import datetime
import hashlib
import json
import re

from ansible_collections.trustroot.ops.plugins.module_utils._der import DERError, der_children, der_read
from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError
from ansible_collections.trustroot.ops.plugins.module_utils._spiffe_id import (
    SCHEME, check_spiffe_id, normalize_trust_domain)

PROFILES = ('https_web', 'https_spiffe')
BUNDLE_FORMATS = ('spiffe', 'pem')


def id_from_proto(value):
    """``spiffe://td/path`` from protojson ``{"trust_domain", "path"}`` (or a string, returned as is)."""
    if isinstance(value, dict):
        return '%s%s%s' % (SCHEME, value.get('trust_domain') or '', value.get('path') or '')
    return value or ''


def bundle_endpoint_url_error(value):
    """Why ``value`` cannot be a bundle endpoint URL, by SPIRE's own rules (https, a host, no user info)."""
    if not isinstance(value, str) or not value:
        return 'must be an https:// URL'
    match = re.match(r'^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)(.*)$', value)
    if not match:
        return 'must be an absolute https:// URL (got %r)' % value
    scheme, authority, rest = match.groups()
    if scheme.lower() != 'https':
        return 'must use the https scheme (got %r)' % value
    if '@' in authority:
        return 'must not contain user info (got %r)' % value
    host = authority
    if host.startswith('['):
        if ']' not in host:
            return 'has an invalid IPv6 host (got %r)' % value
        port = host[host.index(']') + 1:]
        host = host[:host.index(']') + 1]
        if port and not re.match(r'^:\d{1,5}$', port):
            return 'has an invalid port (got %r)' % value
    elif ':' in host:
        host, port = host.rsplit(':', 1)
        if not port.isdigit() or not 0 < int(port) < 65536:
            return 'has an invalid port (got %r)' % value
    if not host:
        return 'must name a host (got %r)' % value
    if re.search(r'\s', value):
        return 'must not contain whitespace (got %r)' % value
    return None


# ---------------------------------------------------------------------------------------------------
# Minimal DER reader

OID_SUBJECT_KEY_ID = '2.5.29.14'
OID_RSA = '1.2.840.113549.1.1.1'
OID_EC = '1.2.840.10045.2.1'
OID_ED25519 = '1.3.101.112'
CURVES = {
    '1.2.840.10045.3.1.7': ('P-256', 32),
    '1.3.132.0.34': ('P-384', 48),
    '1.3.132.0.35': ('P-521', 66),
}


def der_oid(content):
    if not content:
        raise DERError('empty OID')
    first = content[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7f)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return '.'.join(str(p) for p in parts)


def _tbs_fields(cert_der):
    tag, start, end = der_read(cert_der)
    if tag != 0x30:
        raise DERError('not a certificate')
    tag, tstart, tend = der_read(cert_der, start)
    if tag != 0x30:
        raise DERError('not a certificate')
    fields = der_children(cert_der, tstart, tend)
    if fields and fields[0][0] == 0xa0:   # [0] EXPLICIT version
        fields = fields[1:]
    if len(fields) < 6:
        raise DERError('certificate has too few fields')
    return fields


def x509_spki(cert_der):
    """The DER SubjectPublicKeyInfo of a certificate."""
    cert_der = bytes(cert_der)
    tag, cstart, cend, estart = _tbs_fields(cert_der)[5]
    return cert_der[estart:cend]


def x509_subject_key_id(cert_der):
    """The Subject Key Identifier as SPIRE prints authority IDs (lowercase hex), or None."""
    cert_der = bytes(cert_der)
    for tag, cstart, cend, estart in _tbs_fields(cert_der)[6:]:
        if tag != 0xa3:           # [3] EXPLICIT extensions
            continue
        etag, estart2, eend = der_read(cert_der, cstart)
        for xtag, xstart, xend, xel in der_children(cert_der, estart2, eend):
            parts = der_children(cert_der, xstart, xend)
            if not parts or parts[0][0] != 0x06:
                continue
            if der_oid(cert_der[parts[0][1]:parts[0][2]]) != OID_SUBJECT_KEY_ID:
                continue
            octet = parts[-1]
            itag, istart, iend = der_read(cert_der, octet[1])
            if itag != 0x04:
                raise DERError('malformed subject key identifier')
            return x509_hex(cert_der[istart:iend])
    return None


def x509_hex(raw):
    text = binascii.hexlify(raw).decode('ascii')
    return text


def _b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b'=').decode('ascii')


def _b64url_decode(text):
    text = str(text)
    return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))


def _int_bytes(content):
    return content.lstrip(b'\x00') or b'\x00'


def jwk_from_spki(spki_der):
    """The public JWK members (kty, crv, x, y / n, e) of a DER SubjectPublicKeyInfo, as go-jose writes them."""
    spki_der = bytes(spki_der)
    tag, start, end = der_read(spki_der)
    parts = der_children(spki_der, start, end)
    if tag != 0x30 or len(parts) != 2 or parts[1][0] != 0x03:
        raise DERError('not a SubjectPublicKeyInfo')
    alg = der_children(spki_der, parts[0][1], parts[0][2])
    oid = der_oid(spki_der[alg[0][1]:alg[0][2]])
    bits = spki_der[parts[1][1] + 1:parts[1][2]]     # skip the unused-bits byte
    if oid == OID_RSA:
        rtag, rstart, rend = der_read(bits)
        ints = der_children(bits, rstart, rend)
        n = _int_bytes(bits[ints[0][1]:ints[0][2]])
        e = _int_bytes(bits[ints[1][1]:ints[1][2]])
        return {'kty': 'RSA', 'n': _b64url(n), 'e': _b64url(e)}
    if oid == OID_EC:
        curve_oid = der_oid(spki_der[alg[1][1]:alg[1][2]]) if len(alg) > 1 else ''
        if curve_oid not in CURVES:
            raise DERError('unsupported EC curve %s' % curve_oid)
        name, size = CURVES[curve_oid]
        if not bits or bits[0] != 0x04 or len(bits) != 1 + 2 * size:
            raise DERError('unsupported EC point encoding')
        return {'kty': 'EC', 'crv': name, 'x': _b64url(bits[1:1 + size]), 'y': _b64url(bits[1 + size:])}
    if oid == OID_ED25519:
        return {'kty': 'OKP', 'crv': 'Ed25519', 'x': _b64url(bits)}
    raise DERError('unsupported public key algorithm %s' % oid)


def key_identity(jwk):
    """A comparable identity of a public JWK (base64url padding and leading zeros do not matter)."""
    kty = jwk.get('kty')
    try:
        if kty == 'RSA':
            return ('RSA', int.from_bytes(_b64url_decode(jwk['n']), 'big'),
                    int.from_bytes(_b64url_decode(jwk['e']), 'big'))
        if kty == 'EC':
            return ('EC', jwk.get('crv'), int.from_bytes(_b64url_decode(jwk['x']), 'big'),
                    int.from_bytes(_b64url_decode(jwk['y']), 'big'))
        if kty == 'OKP':
            return ('OKP', jwk.get('crv'), _b64url_decode(jwk['x']))
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise InputError('a key of type %s lacks valid public key members' % kty)
    raise InputError('unsupported key type %r' % kty)


# ---------------------------------------------------------------------------------------------------
# Bundles

def _b64decode(text, what):
    try:
        return base64.b64decode(text or '', validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise InputError('%s is not valid base64' % what)


def iso_time(seconds):
    """ISO 8601 UTC text of a Unix time (None for 0 / missing)."""
    seconds = to_int(seconds)
    if not seconds:
        return None
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def to_int(value):
    """protojson int64 fields are strings."""
    if value in (None, ''):
        return 0
    return int(value)


def bundle_view(proto):
    """A readable bundle from ``bundle show|list -output json``: authorities with IDs, expiry, tainted."""
    x509 = []
    for item in proto.get('x509_authorities') or []:
        der = _b64decode(item.get('asn1'), 'x509_authorities.asn1')
        try:
            skid = x509_subject_key_id(der)
        except DERError:
            skid = None
        x509.append({'authority_id': skid, 'tainted': bool(item.get('tainted')),
                     'asn1': item.get('asn1')})
    jwt = []
    for item in proto.get('jwt_authorities') or []:
        jwt.append({'authority_id': item.get('key_id'), 'tainted': bool(item.get('tainted')),
                    'expires_at': to_int(item.get('expires_at')),
                    'expires_at_iso': iso_time(item.get('expires_at')),
                    'public_key': item.get('public_key')})
    return {
        'trust_domain': proto.get('trust_domain'),
        'x509_authorities': x509,
        'jwt_authorities': jwt,
        'refresh_hint': to_int(proto.get('refresh_hint')),
        'sequence_number': to_int(proto.get('sequence_number')),
    }


def bundle_pem(proto):
    """The X.509 authorities of a protojson bundle as PEM text."""
    blocks = []
    for item in proto.get('x509_authorities') or []:
        der = _b64decode(item.get('asn1'), 'x509_authorities.asn1')
        body = base64.b64encode(der).decode('ascii')
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        blocks.append('-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n' % '\n'.join(lines))
    return ''.join(blocks)


def bundle_spiffe(proto):
    """The SPIFFE bundle document (JWKS) of a protojson bundle, as ``bundle show -format spiffe`` prints it."""
    keys = []
    for item in proto.get('x509_authorities') or []:
        der = _b64decode(item.get('asn1'), 'x509_authorities.asn1')
        key = {'use': 'x509-svid'}
        key.update(jwk_from_spki(x509_spki(der)))
        key['x5c'] = [base64.b64encode(der).decode('ascii')]
        keys.append(key)
    for item in proto.get('jwt_authorities') or []:
        key = {'use': 'jwt-svid', 'kid': item.get('key_id')}
        key.update(jwk_from_spki(_b64decode(item.get('public_key'), 'jwt_authorities.public_key')))
        keys.append(key)
    doc = {'keys': keys}
    if to_int(proto.get('refresh_hint')) > 0:
        doc['spiffe_refresh_hint'] = to_int(proto.get('refresh_hint'))
    if to_int(proto.get('sequence_number')) > 0:
        doc['spiffe_sequence'] = to_int(proto.get('sequence_number'))
    return doc


def authorities_from_proto(proto):
    """Comparable authorities of a protojson bundle: {'x509': set of DER, 'jwt': set of (kid, key)}."""
    x509 = set()
    for item in (proto or {}).get('x509_authorities') or []:
        x509.add(_b64decode(item.get('asn1'), 'x509_authorities.asn1'))
    jwt = set()
    for item in (proto or {}).get('jwt_authorities') or []:
        der = _b64decode(item.get('public_key'), 'jwt_authorities.public_key')
        try:
            identity = key_identity(jwk_from_spki(der))
        except (DERError, InputError):
            identity = ('DER', der)     # a key this reader does not know: compared by its bytes
        jwt.add((item.get('key_id') or '', identity))
    return {'x509': x509, 'jwt': jwt}


def pem_certificates(text, field):
    """DER certificates of PEM text; raises InputError naming ``field``."""
    blocks = re.findall(r'-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----', text, re.S)
    if not blocks:
        raise InputError('%s holds no PEM certificate' % field)
    ders = []
    for kind, body in blocks:
        if kind != 'CERTIFICATE':
            raise InputError('%s holds a PEM block of type %s; only CERTIFICATE is allowed' % (field, kind))
        der = _b64decode(re.sub(r'\s+', '', body), '%s (PEM body)' % field)
        try:
            _tbs_fields(der)
        except DERError as exc:
            raise InputError('%s holds a certificate that cannot be read: %s' % (field, exc))
        ders.append(der)
    return ders


def parse_spiffe_bundle(text, field):
    """The parsed SPIFFE bundle document (dict), checked the way SPIRE parses it; raises InputError."""
    if isinstance(text, dict):
        doc = text
    else:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise InputError('%s is not a JSON SPIFFE bundle: %s' % (field, exc))
    if not isinstance(doc, dict) or not isinstance(doc.get('keys'), list):
        raise InputError('%s must be a SPIFFE bundle: a JSON object with a "keys" list' % field)
    for index, key in enumerate(doc['keys']):
        if not isinstance(key, dict):
            raise InputError('%s keys[%d] must be an object' % (field, index))
        use = key.get('use')
        if use == 'x509-svid':
            x5c = key.get('x5c')
            if not isinstance(x5c, list) or len(x5c) != 1:
                raise InputError('%s keys[%d] (x509-svid) must have exactly one certificate in x5c' % (field, index))
            der = _b64decode(x5c[0], '%s keys[%d].x5c[0]' % (field, index))
            try:
                _tbs_fields(der)
            except DERError as exc:
                raise InputError('%s keys[%d].x5c[0] is not a certificate: %s' % (field, index, exc))
        elif use == 'jwt-svid':
            if not key.get('kid'):
                raise InputError('%s keys[%d] (jwt-svid) must have a kid' % (field, index))
            try:
                key_identity(key)
            except InputError as exc:
                raise InputError('%s keys[%d]: %s' % (field, index, exc))
    return doc


def authorities_from_input(text, fmt, field):
    """Comparable authorities of a desired bundle given as SPIFFE JSON or PEM."""
    if fmt == 'pem':
        return {'x509': set(pem_certificates(text, field)), 'jwt': set()}
    doc = parse_spiffe_bundle(text, field)
    x509 = set()
    jwt = set()
    for key in doc['keys']:
        if key.get('use') == 'x509-svid':
            x509.add(base64.b64decode(key['x5c'][0]))
        elif key.get('use') == 'jwt-svid':
            jwt.add((key['kid'], key_identity(key)))
    if not x509 and not jwt:
        raise InputError('%s holds no x509-svid or jwt-svid authority' % field)
    return {'x509': x509, 'jwt': jwt}


def authorities_summary(authorities):
    """A diff-friendly, sorted summary of comparable authorities."""
    if authorities is None:
        return None
    x509 = []
    for der in authorities['x509']:
        try:
            skid = x509_subject_key_id(der)
        except DERError:
            skid = None
        x509.append(skid or 'sha256:%s' % hashlib.sha256(der).hexdigest())
    return {'x509_authorities': sorted(x509), 'jwt_authorities': sorted(kid for kid, key in authorities['jwt'])}


def same_authorities(a, b):
    return a is not None and b is not None and a['x509'] == b['x509'] and a['jwt'] == b['jwt']


# ---------------------------------------------------------------------------------------------------
# Federation relationships

def desired_relationship(item, index, own_trust_domain=None):
    """Validate and normalize one desired relationship (``trust_domain_bundle`` content already loaded).

    Returns a dict with trust_domain, bundle_endpoint_url, bundle_endpoint_profile, endpoint_spiffe_id,
    and bundle / bundle_format (or None).
    """
    where = 'relationships[%d]' % index
    td = normalize_trust_domain(item.get('trust_domain'), '%s.trust_domain' % where)
    if own_trust_domain and td == own_trust_domain:
        raise InputError('%s.trust_domain %s is the server\'s own trust domain; a server cannot federate '
                         'with itself' % (where, td))
    url = item.get('bundle_endpoint_url')
    reason = bundle_endpoint_url_error(url)
    if reason:
        raise InputError('%s.bundle_endpoint_url %s' % (where, reason))
    profile = item.get('bundle_endpoint_profile') or 'https_spiffe'
    if profile not in PROFILES:
        raise InputError('%s.bundle_endpoint_profile must be one of %s (got %r)'
                         % (where, ', '.join(PROFILES), profile))
    endpoint_id = item.get('endpoint_spiffe_id') or None
    if profile == 'https_spiffe':
        if not endpoint_id:
            raise InputError('%s.endpoint_spiffe_id is required when bundle_endpoint_profile is https_spiffe'
                             % where)
        check_spiffe_id(endpoint_id, '%s.endpoint_spiffe_id' % where, path_required=False)
    elif endpoint_id:
        raise InputError('%s.endpoint_spiffe_id is only used with bundle_endpoint_profile https_spiffe' % where)
    fmt = item.get('trust_domain_bundle_format') or 'spiffe'
    if fmt not in BUNDLE_FORMATS:
        raise InputError('%s.trust_domain_bundle_format must be one of %s (got %r)'
                         % (where, ', '.join(BUNDLE_FORMATS), fmt))
    bundle = item.get('trust_domain_bundle')
    if bundle is not None:
        field = '%s.trust_domain_bundle' % where
        if fmt == 'pem':
            pem_certificates(bundle, field)
        else:
            bundle = parse_spiffe_bundle(bundle, field)
    return {
        'trust_domain': td,
        'bundle_endpoint_url': url,
        'bundle_endpoint_profile': profile,
        'endpoint_spiffe_id': endpoint_id if profile == 'https_spiffe' else None,
        'bundle': bundle,
        'bundle_format': fmt if bundle is not None else None,
    }


def desired_relationships(items, own_trust_domain=None):
    out = []
    seen = set()
    for index, item in enumerate(items or []):
        rel = desired_relationship(item, index, own_trust_domain)
        if rel['trust_domain'] in seen:
            raise InputError('relationships[%d].trust_domain %s is listed twice' % (index, rel['trust_domain']))
        seen.add(rel['trust_domain'])
        out.append(rel)
    return out


def current_relationship(proto):
    """A relationship from ``federation list -output json`` in the module's terms."""
    if proto.get('https_spiffe') is not None:
        profile = 'https_spiffe'
        endpoint_id = (proto.get('https_spiffe') or {}).get('endpoint_spiffe_id') or None
    else:
        profile = 'https_web'
        endpoint_id = None
    return {
        'trust_domain': proto.get('trust_domain'),
        'bundle_endpoint_url': proto.get('bundle_endpoint_url'),
        'bundle_endpoint_profile': profile,
        'endpoint_spiffe_id': endpoint_id,
        'has_bundle': bool(proto.get('trust_domain_bundle')),
    }


def current_relationships(answer):
    return [current_relationship(p) for p in (answer or {}).get('federation_relationships') or []]


COMPARED = ('bundle_endpoint_url', 'bundle_endpoint_profile', 'endpoint_spiffe_id')


def public_relationship(rel):
    """A relationship without its bundle, for results and diffs."""
    return dict((k, rel.get(k)) for k in ('trust_domain',) + COMPARED)


def plan_federation(desired, current, prune=False, managed=()):
    """What to change: {'create': [...], 'update': [...], 'delete': [td...], 'unchanged': [td...]}.

    A desired bootstrap bundle is sent on create, and on update only when the server holds no bundle for
    that trust domain yet: once SPIRE has refreshed a bundle, a stale bootstrap bundle must not overwrite it.
    ``prune`` deletes current relationships whose trust domain is in ``managed`` and not desired; others
    are never touched.
    """
    by_td = dict((c['trust_domain'], c) for c in current)
    wanted = set(d['trust_domain'] for d in desired)
    plan = {'create': [], 'update': [], 'delete': [], 'unchanged': [], 'bootstrap': []}
    for rel in desired:
        cur = by_td.get(rel['trust_domain'])
        if cur is None:
            plan['create'].append(rel)
            continue
        needs_bundle = rel['bundle'] is not None and not cur['has_bundle']
        if any(rel[k] != cur[k] for k in COMPARED) or needs_bundle:
            update = dict(rel)
            if not needs_bundle:
                update['bundle'] = None
                update['bundle_format'] = None
            else:
                plan['bootstrap'].append(rel['trust_domain'])
            plan['update'].append(update)
        else:
            plan['unchanged'].append(rel['trust_domain'])
    if prune:
        managed = set(managed or ())
        for cur in current:
            if cur['trust_domain'] in managed and cur['trust_domain'] not in wanted:
                plan['delete'].append(cur['trust_domain'])
    plan['delete'].sort()
    return plan


def relationship_payload(rel):
    """One item of ``federation create|update -data`` (camelCase keys, see federation/common.go)."""
    item = {
        'trustDomain': rel['trust_domain'],
        'bundleEndpointURL': rel['bundle_endpoint_url'],
        'bundleEndpointProfile': rel['bundle_endpoint_profile'],
    }
    if rel['bundle_endpoint_profile'] == 'https_spiffe':
        item['endpointSPIFFEID'] = rel['endpoint_spiffe_id']
    if rel.get('bundle') is not None:
        # spiffe: the document itself (a JSON object); pem: a JSON string.
        item['trustDomainBundle'] = rel['bundle']
        item['trustDomainBundleFormat'] = rel['bundle_format']
    return item


def relationships_data(rels):
    return json.dumps({'federationRelationships': [relationship_payload(r) for r in rels]}, sort_keys=True)


def federation_diff(current, desired_after):
    """before/after of the relationships, by trust domain, bundles left out."""
    before = dict((c['trust_domain'], public_relationship(c)) for c in current)
    after = dict((c['trust_domain'], public_relationship(c)) for c in desired_after)
    return {'before': before, 'after': after}


def relationships_after(current, plan):
    """The relationship list the server will hold once ``plan`` is applied (for check mode and diff)."""
    by_td = dict((c['trust_domain'], public_relationship(c)) for c in current)
    for rel in plan['create'] + plan['update']:
        by_td[rel['trust_domain']] = public_relationship(rel)
    for td in plan['delete']:
        by_td.pop(td, None)
    return [by_td[k] for k in sorted(by_td)]

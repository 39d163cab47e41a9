# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the posture checks read from a Vault / OpenBao cluster (vault_posture_info): each node's seal state, the
TLS versions it accepts and its certificate's expiry, whether sys/metrics is open, and through the first unsealed
node the root tokens, audit devices, autopilot and raft peers. Facts only; the findings are made in _posture."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import socket
import ssl
import warnings

from ansible_collections.trustroot.ops.plugins.module_utils._der import DERError
from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError, TrustrootError
from ansible_collections.trustroot.ops.plugins.module_utils._spire import certificate_info
from ansible_collections.trustroot.ops.plugins.module_utils._vault import VaultError, VaultNode, normalize_url

try:
    import requests
except ImportError:  # the module's ensure_connection reports hvac (and requests) missing
    requests = None

TOKEN_LIST = {'keys': [str]}
TOKEN_LOOKUP = {'policies': [str], 'accessor': str}
AUTOPILOT = {'healthy': bool, 'failure_tolerance': int}
RAFT_CONFIG = {'config': {'servers': [{'node_id': str}]}}
VERSIONS = [('1.0', 'TLSv1'), ('1.1', 'TLSv1_1'), ('1.2', 'TLSv1_2'), ('1.3', 'TLSv1_3')]


def host_port(url):
    rest = url.split('://', 1)[-1].split('/', 1)[0]
    host, _sep, port = rest.rpartition(':')
    return (host.strip('[]'), int(port)) if host else (rest, 443)


def handshake(address, version_name, ca_cert=None, timeout=5):
    """(accepted, certificate DER or None); accepted is None when this machine cannot offer that version."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the version probe judges versions, the expiry read judges the cert
        try:
            version = getattr(ssl.TLSVersion, version_name)
            if version_name != 'TLSv1_3':
                context.set_ciphers('ALL:@SECLEVEL=0')
            context.minimum_version = version
            context.maximum_version = version
        except (AttributeError, ValueError, ssl.SSLError):
            return None, None
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=address[0]) as tls:
                return True, tls.getpeercert(binary_form=True)
    except ssl.SSLError as err:
        if 'NO_PROTOCOLS_AVAILABLE' in str(err) or 'no protocols available' in str(err):
            return None, None
        return False, None
    except (OSError, socket.timeout):
        return False, None


def probe_tls(url, ca_cert):
    address = host_port(url)
    accepted, der = [], None
    known = True
    for label, name in VERSIONS:
        ok, cert = handshake(address, name, ca_cert)
        if ok is None:
            if label in ('1.0', '1.1'):
                known = False
            continue
        if ok:
            accepted.append(label)
            der = der or cert
    out = {'accepted_versions': accepted if known else None}
    if der:
        try:
            out['not_after_unix'] = certificate_info(der)['not_after_unix']
        except (DERError, ValueError, IndexError, KeyError):
            out['error'] = 'served certificate unreadable'
    return out


def metrics_open(url, ca_cert, timeout):
    """Whether sys/metrics answers 200 without a token (None when it cannot be asked)."""
    try:
        response = requests.get(url + '/v1/sys/metrics', params={'format': 'prometheus'}, verify=ca_cert or True,
                                timeout=timeout)
    except requests.exceptions.RequestException:
        return None
    return response.status_code == 200


def root_tokens(node, own_accessor, token_is_init, limit):
    accessors = node.call('LIST', 'auth/token/accessors', expect=TOKEN_LIST)['keys']
    found = []
    for accessor in accessors[:limit]:
        try:
            info = node.call('POST', 'auth/token/lookup-accessor', json={'accessor': accessor}, expect=TOKEN_LOOKUP)
        except VaultError as err:
            if err.status in (400, 403, 404):   # revoked or expired between the list and the lookup
                continue
            raise
        if 'root' in info['policies']:
            found.append({'display_name': info.get('display_name') or '', 'creation_time': info.get('creation_time'),
                          'expire_time': info.get('expire_time'),
                          'init': bool(token_is_init and accessor == own_accessor)})
    return found


def collect_posture(params):
    """The posture facts of the cluster of ``params`` (the module's options)."""
    urls = [normalize_url(u) for u in params['nodes']] or ([normalize_url(params['url'])] if params['url'] else [])
    if not urls:
        raise InputError('nodes (or url) is required')
    out = {'tls': {}, 'metrics': {}, 'nodes': []}
    # The cluster's own view: the first node that answers.
    leader = None
    for url in urls:
        node = VaultNode.from_params(params, url=url)
        try:
            seal = node.seal_status()
            out['nodes'].append({'url': url, 'reachable': True, 'sealed': seal.get('sealed')})
            if leader is None and not seal.get('sealed'):
                leader = node
                out['seal'] = {'type': seal.get('type'), 't': seal.get('t'), 'n': seal.get('n'),
                               'recovery_seal': bool(seal.get('recovery_seal'))}
                out['flavour'] = node.flavour()[0]
        except VaultError as err:
            out['nodes'].append({'url': url, 'reachable': False, 'error': str(err)})
        out['tls'][url] = probe_tls(url, params['ca_cert'])
        out['metrics'][url] = metrics_open(url, params['ca_cert'], params['timeout'])
    if params['material_path']:
        path = params['material_path']
        exists = os.path.isfile(path)
        out['material'] = {'path': path, 'exists': exists,
                           'mode': '%04o' % (os.stat(path).st_mode & 0o7777) if exists else None}
    if leader is None:
        out['error'] = 'no unsealed node answered'
        return out
    if not params['token']:
        raise InputError('token is required to read audit devices, token accessors and raft state')
    try:
        own = leader.call('GET', 'auth/token/lookup-self', expect={'accessor': str})['accessor']
    except VaultError as err:
        raise TrustrootError('the token does not work: %s' % err.reason)
    try:
        out['root_tokens'] = root_tokens(leader, own, params['token_is_init'], params['max_lookups'])
    except VaultError as err:
        out['root_tokens'], out['tokens_error'] = None, err.reason
    try:
        answer = leader.call('GET', 'sys/audit', expect={})
        out['audit_devices'] = sorted(
            [{'path': path.rstrip('/'), 'type': dev.get('type'),
              'file_path': (dev.get('options') or {}).get('file_path')}
             for path, dev in answer.items() if isinstance(dev, dict) and 'type' in dev], key=lambda d: d['path'])
    except VaultError as err:
        out['audit_devices'], out['audit_error'] = None, err.reason
    try:
        auto = leader.call('GET', 'sys/storage/raft/autopilot/state', expect=AUTOPILOT)
        out['autopilot'] = {'healthy': auto['healthy'], 'failure_tolerance': auto['failure_tolerance'],
                            'voters': list(auto.get('voters') or []),
                            'servers': dict((name, bool((srv or {}).get('healthy')))
                                            for name, srv in (auto.get('servers') or {}).items())}
    except VaultError as err:
        out['autopilot'], out['autopilot_error'] = None, err.reason
    try:
        raft = leader.call('GET', 'sys/storage/raft/configuration', expect=RAFT_CONFIG)
        out['raft_peers'] = sorted(s['node_id'] for s in raft['config']['servers'])
    except VaultError as err:
        out['raft_peers'], out['raft_error'] = None, err.reason
    return out

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection to Vault / OpenBao: shared options, an hvac-backed client, flavour and version detection.

Every Vault module builds its argument spec from ``connection_argument_spec()`` and talks to servers
through ``VaultNode``. Decisions that do not need a server (which API path, how to read a version)
are pure functions here so unit tests reach them directly.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

try:
    import hvac
    from hvac.adapters import RawAdapter
    import requests
except ImportError:
    HAS_HVAC = False
    HVAC_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_HVAC = True
    HVAC_IMPORT_ERROR = None

# First OpenBao release whose unauthenticated sys/rekey* endpoints are off by default; from here the
# token-authenticated sys/rotate/root* and sys/rotate/recovery* endpoints are the path.
OPENBAO_ROTATE_ROOT_SINCE = (2, 5, 0)


def connection_argument_spec():
    """Options every Vault module accepts (documented in the trustroot.ops.vault_connection fragment)."""
    return dict(
        url=dict(type='str', fallback=(env_fallback, ['VAULT_ADDR', 'BAO_ADDR'])),
        token=dict(type='str', no_log=True, fallback=(env_fallback, ['VAULT_TOKEN', 'BAO_TOKEN'])),
        ca_cert=dict(type='path', aliases=['cacert'], fallback=(env_fallback, ['VAULT_CACERT', 'BAO_CACERT'])),
        client_cert=dict(type='path', fallback=(env_fallback, ['VAULT_CLIENT_CERT', 'BAO_CLIENT_CERT'])),
        client_key=dict(type='path', no_log=False, fallback=(env_fallback, ['VAULT_CLIENT_KEY', 'BAO_CLIENT_KEY'])),
        namespace=dict(type='str', fallback=(env_fallback, ['VAULT_NAMESPACE', 'BAO_NAMESPACE'])),
        timeout=dict(type='int', default=30),
        validate_certs=dict(type='bool', default=True),
    )


class VaultError(Exception):
    """A failed call to one server, with the node's URL in the message."""

    def __init__(self, url, message, status=None):
        super(VaultError, self).__init__('%s: %s' % (url, message))
        self.url = url
        self.status = status
        self.reason = message


def ensure_hvac(module):
    if not HAS_HVAC:
        module.fail_json(msg=missing_required_lib('hvac'), exception=HVAC_IMPORT_ERROR)


def normalize_url(url):
    return url.rstrip('/') if url else url


def detect_flavour(seal_status):
    """Return ('openbao'|'vault', version tuple, version string) from a sys/seal-status answer.

    OpenBao reports ``commit_date`` where Vault reports ``build_date``, and OpenBao's versions start at 2.
    """
    version = str(seal_status.get('version') or '')
    parsed = parse_version(version)
    if 'commit_date' in seal_status or (parsed and parsed[0] >= 2):
        return 'openbao', parsed, version
    return 'vault', parsed, version


def parse_version(version):
    """'2.7.2' -> (2, 7, 2); '1.15.0+ent' -> (1, 15, 0); unparseable -> ()."""
    match = re.match(r'v?(\d+)\.(\d+)\.(\d+)', version or '')
    return tuple(int(part) for part in match.groups()) if match else ()


def keyring_rotate_path(flavour):
    return 'sys/rotate/keyring' if flavour == 'openbao' else 'sys/rotate'


def uses_rotate_root_api(flavour, version):
    """True when rekeying goes through the token-authenticated sys/rotate/{root,recovery} endpoints."""
    return flavour == 'openbao' and bool(version) and tuple(version) >= OPENBAO_ROTATE_ROOT_SINCE


def api_errors(body):
    """Vault answers errors as {"errors": [...]}; join them into one readable line."""
    if isinstance(body, dict) and body.get('errors'):
        return '; '.join(str(e) for e in body['errors'])
    return None


class VaultNode(object):
    """One server. Unauthenticated calls (seal status, unseal, init) pass ``auth=False``."""

    def __init__(self, url, token=None, ca_cert=None, client_cert=None, client_key=None,
                 namespace=None, timeout=30, validate_certs=True):
        self.url = normalize_url(url)
        verify = (ca_cert or True) if validate_certs else False
        cert = (client_cert, client_key) if client_cert and client_key else client_cert
        self._token = token
        common = dict(url=self.url, verify=verify, cert=cert, timeout=timeout, namespace=namespace,
                      adapter=RawAdapter)
        self._client = hvac.Client(token=token, **common)
        # Unauthenticated calls (seal status, unseal, init) go without the token, so it is not sent where
        # it is not needed.
        self._anonymous = hvac.Client(token=None, **common) if token else self._client
        self._flavour = None

    @classmethod
    def from_params(cls, params, url=None):
        return cls(url or params['url'], token=params.get('token'), ca_cert=params.get('ca_cert'),
                   client_cert=params.get('client_cert'), client_key=params.get('client_key'),
                   namespace=params.get('namespace'), timeout=params.get('timeout', 30),
                   validate_certs=params.get('validate_certs', True))

    @property
    def has_token(self):
        return bool(self._token)

    def raw(self, method, path, auth=True, ok_statuses=(), **kwargs):
        """Send a request; return (status, parsed JSON or None). Raises VaultError on transport failure
        and on error statuses not listed in ``ok_statuses``."""
        client = self._client if auth else self._anonymous
        try:
            response = client.adapter.request(method, '/v1/' + path.lstrip('/'), raise_exception=False, **kwargs)
        except requests.exceptions.RequestException as exc:
            raise VaultError(self.url, 'unreachable (%s)' % exc.__class__.__name__)
        body = None
        if response.content and not kwargs.get('stream'):
            try:
                body = response.json()
            except ValueError:
                body = None
        if response.status_code >= 400 and response.status_code not in ok_statuses:
            raise VaultError(self.url, 'HTTP %s from %s: %s' % (
                response.status_code, path, api_errors(body) or response.reason), status=response.status_code)
        return response.status_code, body

    def call(self, method, path, auth=True, **kwargs):
        """Send a request and return its JSON body's ``data`` when present, else the body itself."""
        status, body = self.raw(method, path, auth=auth, **kwargs)
        if isinstance(body, dict) and isinstance(body.get('data'), dict):
            return body['data']
        return body or {}

    def stream(self, method, path, **kwargs):
        """Return the raw streaming response (caller closes it); raises VaultError on error status."""
        try:
            response = self._client.adapter.request(method, '/v1/' + path.lstrip('/'), raise_exception=False,
                                                    stream=True, **kwargs)
        except requests.exceptions.RequestException as exc:
            raise VaultError(self.url, 'unreachable (%s)' % exc.__class__.__name__)
        if response.status_code >= 400:
            try:
                message = api_errors(response.json()) or response.reason
            except ValueError:
                message = response.reason
            response.close()
            raise VaultError(self.url, 'HTTP %s from %s: %s' % (response.status_code, path, message),
                             status=response.status_code)
        return response

    def seal_status(self):
        return self.call('GET', 'sys/seal-status', auth=False)

    def flavour(self):
        """(flavour, version tuple, version string), read once per node."""
        if self._flavour is None:
            self._flavour = detect_flavour(self.seal_status())
        return self._flavour

    def health(self):
        # sys/health encodes state in the status code; every one of these is an answer, not a failure.
        status, body = self.raw('GET', 'sys/health', auth=False,
                                params={'standbyok': 'false', 'perfstandbyok': 'false'},
                                ok_statuses=(429, 472, 473, 501, 503))
        return status, body or {}


def nodes_from_params(params, option='nodes'):
    """URLs to act on: ``nodes`` when given, else the single ``url``."""
    urls = params.get(option) or ([params['url']] if params.get('url') else [])
    return [normalize_url(u) for u in urls]


def require_url(module):
    if not module.params.get('url'):
        module.fail_json(msg='url is required (or set VAULT_ADDR or BAO_ADDR)')


def require_token(module, node, purpose):
    if not node.has_token:
        module.fail_json(msg='token is required to %s (set token or VAULT_TOKEN)' % purpose)

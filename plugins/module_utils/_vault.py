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

import json
import re
import traceback
from urllib.parse import urlsplit

from ansible.module_utils.basic import env_fallback, missing_required_lib
from ansible_collections.trustroot.ops.plugins.module_utils._errors import DependencyError, InputError, TrustrootError

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


class VaultError(TrustrootError):
    """A failed call to one server, with the node's URL in the message."""

    def __init__(self, url, message, status=None):
        super(VaultError, self).__init__('%s: %s' % (url, message))
        self.url = url
        self.status = status
        self.reason = message


def ensure_hvac():
    if not HAS_HVAC:
        raise DependencyError(missing_required_lib('hvac'), results={'exception': HVAC_IMPORT_ERROR})


def ensure_connection(module, node_options=('url', 'nodes')):
    """Fail before any call when hvac is missing or a server address option is malformed (naming the option)."""
    ensure_hvac()
    problems = connection_option_errors(module.params, node_options)
    if problems:
        raise InputError('; '.join(problems))


def url_problem(url):
    """Why ``url`` is not a server's API address (scheme://host[:port], nothing after it), or None.

    A path is refused because the collection appends /v1/... itself: the UI's address (/ui/) answers every
    path with its HTML page, and /v1/ makes every call land on a wrong path whose error reads like the node's state.
    """
    if not isinstance(url, str) or not url.strip():
        return 'is empty'
    if url != url.strip() or any(c.isspace() for c in url):
        return 'contains white space'
    parts = urlsplit(url)
    if parts.scheme not in ('http', 'https'):
        return 'must start with http:// or https:// (got %r)' % url
    if not parts.hostname:
        return 'has no host name (got %r)' % url
    if parts.username is not None or parts.password is not None:
        return 'must not carry credentials before the host name'
    try:
        port = parts.port
    except ValueError:
        return 'has a port that is not a number between 1 and 65535 (got %r)' % url
    if port is not None and not 0 < port < 65536:
        return 'has a port that is not a number between 1 and 65535 (got %r)' % url
    if parts.path not in ('', '/'):
        return ('must be the server address without a path, e.g. %s://%s (got path %r: the collection adds /v1/... '
                'itself, and the UI answers every path under /ui/ with its web page)' % (
                    parts.scheme, parts.netloc, parts.path))
    if parts.query or parts.fragment:
        return 'must not have a query or a fragment (got %r)' % url
    return None


def connection_option_errors(params, node_options=('url', 'nodes')):
    """Messages for malformed server addresses in ``params``: ``url``, or ``nodes[i]`` for list options."""
    errors = []
    for option in node_options:
        value = params.get(option)
        if value in (None, '', []):
            continue
        values = value if isinstance(value, list) else [value]
        for index, url in enumerate(values):
            problem = url_problem(url)
            if problem:
                name = '%s[%d]' % (option, index) if isinstance(value, list) else option
                errors.append('%s %s' % (name, problem))
    return errors


def normalize_url(url):
    return url.rstrip('/') if url else url


# --- answers ------------------------------------------------------------------------------------------------
# What the collection reads from each call is declared as a shape and checked before anything is read, so an
# unexpected body (a web page, an empty or cut-off answer, another API's JSON) is an error naming the node and
# the call instead of missing fields read as defaults. A shape is a dict of field -> rule; a rule is a type or a
# tuple of types (int never accepts bool), a nested shape (dict), a one-element list [rule] for a list whose
# items follow rule, or Optional(rule) for a field that may be absent or null.


class Optional(object):
    def __init__(self, rule):
        self.rule = rule


TYPE_NAMES = {bool: 'a boolean', int: 'a number', float: 'a number', str: 'a string', list: 'a list',
              dict: 'an object', type(None): 'null'}


def _type_name(value):
    return TYPE_NAMES.get(type(value), type(value).__name__)


def _rule_name(rule):
    if isinstance(rule, dict):
        return 'an object'
    if isinstance(rule, list):
        return 'a list'
    types = rule if isinstance(rule, tuple) else (rule,)
    return ' or '.join(TYPE_NAMES.get(t, t.__name__) for t in types)


def _follows(value, rule):
    if isinstance(rule, dict):
        return isinstance(value, dict)
    if isinstance(rule, list):
        return isinstance(value, list)
    types = rule if isinstance(rule, tuple) else (rule,)
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def shape_problem(value, shape, where=''):
    """Why ``value`` does not follow ``shape`` (naming the field, never echoing values), or None."""
    if value is None:
        return 'an empty answer' if not where else '%s is missing' % where
    if not isinstance(value, dict):
        return '%s instead of a JSON object' % _type_name(value) if not where else '%s is %s, not an object' % (
            where, _type_name(value))
    for name, rule in shape.items():
        field = '%s.%s' % (where, name) if where else name
        optional = isinstance(rule, Optional)
        rule = rule.rule if optional else rule
        if value.get(name) is None:
            if optional:
                continue
            return 'no "%s" field' % field if name not in value else '"%s" is null' % field
        item = value[name]
        if not _follows(item, rule):
            return '"%s" is %s, not %s' % (field, _type_name(item), _rule_name(rule))
        if isinstance(rule, dict):
            problem = shape_problem(item, rule, field)
        elif isinstance(rule, list):
            problem = _list_problem(item, rule[0], field)
        else:
            problem = None
        if problem:
            return problem
    return None


def _list_problem(items, rule, field):
    for index, item in enumerate(items):
        where = '%s[%d]' % (field, index)
        if isinstance(rule, dict):
            problem = shape_problem(item, rule, where)
        elif not _follows(item, rule):
            problem = '"%s" is %s, not %s' % (where, _type_name(item), _rule_name(rule))
        else:
            problem = None
        if problem:
            return problem
    return None


# Shapes of the answers read in more than one place.
SEAL_STATUS = {'type': str, 'initialized': bool, 'sealed': bool, 't': int, 'n': int, 'progress': int,
               'version': str}
HEALTH = {'initialized': bool, 'sealed': bool}
# OpenBao before 2.7 leaves is_self out of a standby's answer (Go's omitempty on false): absent reads as false.
LEADER = {'ha_enabled': bool, 'is_self': Optional(bool), 'leader_address': str}
RAFT_CONFIGURATION = {'config': {'servers': [{'node_id': str, 'address': str, 'leader': bool, 'voter': bool}]}}


def transport_problem(exc):
    """A readable cause for a requests exception (the class name alone says little to an operator)."""
    text = str(exc)
    name = exc.__class__.__name__
    if name in ('InvalidSchema', 'MissingSchema', 'InvalidURL'):
        return 'url is not an http:// or https:// address (%s)' % name
    if name == 'SSLError':
        lowered = text.lower()
        if 'wrong version number' in lowered or 'record layer failure' in lowered or 'unknown protocol' in lowered:
            return ('TLS handshake failed: https:// against a listener that speaks plain HTTP '
                    '(use http://, or turn TLS on in the listener) (SSLError)')
        if 'certificate verify failed' in lowered:
            if 'hostname mismatch' in lowered or "doesn't match" in lowered or 'ip address mismatch' in lowered:
                return ('the server certificate does not name this host (use the name in its certificate) '
                        '(SSLError)')
            return ('the server certificate is not trusted (set ca_cert to the CA that signed it) (SSLError)')
        return 'TLS handshake failed (SSLError)'
    if name in ('ConnectTimeout', 'ReadTimeout', 'Timeout'):
        return 'unreachable: no answer within the timeout (%s)' % name
    if name in ('ChunkedEncodingError', 'ContentDecodingError'):
        return 'the answer was cut off (%s)' % name
    if name == 'ConnectionError':
        if 'refused' in text.lower():
            return 'unreachable: connection refused, nothing listens at that address (ConnectionError)'
        if 'name or service not known' in text.lower() or 'failed to resolve' in text.lower() or \
                'nodename nor servname' in text.lower() or 'temporary failure in name resolution' in text.lower():
            return 'unreachable: the host name does not resolve (ConnectionError)'
        if 'reset by peer' in text.lower() or 'remotedisconnected' in text.lower() or 'aborted' in text.lower():
            return 'unreachable: the server closed the connection without an answer (ConnectionError)'
        return 'unreachable (ConnectionError)'
    return 'unreachable (%s)' % name


def http_error_message(status, body, text, reason):
    """The message of an error status: the API's errors, or a known plain-text cause, or the reason."""
    errors = api_errors(body)
    if errors:
        return errors
    if status == 400 and 'HTTP request to an HTTPS server' in (text or ''):
        return 'http:// against a listener that speaks TLS: use https://'
    return reason


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


def parse_json_body(content, content_type):
    """(parsed body or None, problem or None) of an answer's bytes: JSON only, announced as JSON."""
    if not content:
        return None, None
    media = (content_type or '').split(';')[0].strip().lower()
    if media != 'application/json' and not media.endswith('+json'):
        return None, ('%s instead of JSON: is url the API address (scheme://host:port), not a page of the UI?'
                      % (media or 'a body without a content type'))
    try:
        return json.loads(content.decode('utf-8') if isinstance(content, bytes) else content), None
    except ValueError:
        return None, 'a body that is not valid JSON (cut off?)'


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
        """Send a request; return (status, parsed JSON or None when the answer has no body).

        Raises VaultError on transport failure, on error statuses not listed in ``ok_statuses``, and on a
        successful answer whose body is not JSON (a web page, a cut-off body)."""
        client = self._client if auth else self._anonymous
        call = '%s %s' % (method, path)
        try:
            response = client.adapter.request(method, '/v1/' + path.lstrip('/'), raise_exception=False, **kwargs)
        except requests.exceptions.RequestException as exc:
            raise VaultError(self.url, '%s: %s' % (call, transport_problem(exc)))
        status = response.status_code
        if kwargs.get('stream'):
            return status, None
        try:
            content = response.content
        except requests.exceptions.RequestException as exc:
            raise VaultError(self.url, '%s: %s' % (call, transport_problem(exc)))
        body, problem = parse_json_body(content, response.headers.get('Content-Type'))
        if status >= 400 and status not in ok_statuses:
            raise VaultError(self.url, 'HTTP %s from %s: %s' % (
                status, path, http_error_message(status, body, response.text if problem else '', response.reason)),
                status=status)
        if problem:
            raise VaultError(self.url, '%s answered %s (HTTP %s)' % (call, problem, status), status=status)
        return status, body

    def call(self, method, path, auth=True, expect=None, **kwargs):
        """Send a request and return its JSON body's ``data`` when present, else the body itself.

        ``expect`` is the shape of what the caller reads (see shape_problem); an answer that does not follow it
        is a VaultError naming the node and the call. Without ``expect`` the answer is not read: None comes back
        for an empty body."""
        status, body = self.raw(method, path, auth=auth, **kwargs)
        answer = body['data'] if isinstance(body, dict) and isinstance(body.get('data'), dict) else body
        if expect is not None:
            problem = shape_problem(answer, expect)
            if problem:
                raise VaultError(self.url, '%s %s answered %s' % (method, path, problem), status=status)
        return answer

    def stream(self, method, path, **kwargs):
        """Return the raw streaming response (caller closes it); raises VaultError on error status."""
        try:
            response = self._client.adapter.request(method, '/v1/' + path.lstrip('/'), raise_exception=False,
                                                    stream=True, **kwargs)
        except requests.exceptions.RequestException as exc:
            raise VaultError(self.url, '%s %s: %s' % (method, path, transport_problem(exc)))
        if response.status_code >= 400:
            body, problem = parse_json_body(response.content, response.headers.get('Content-Type'))
            message = http_error_message(response.status_code, body, response.text if problem else '', response.reason)
            response.close()
            raise VaultError(self.url, 'HTTP %s from %s: %s' % (response.status_code, path, message),
                             status=response.status_code)
        return response

    def seal_status(self):
        return self.call('GET', 'sys/seal-status', auth=False, expect=SEAL_STATUS)

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
        problem = shape_problem(body, HEALTH)
        if problem:
            raise VaultError(self.url, 'GET sys/health answered %s (HTTP %s)' % (problem, status), status=status)
        return status, body


def nodes_from_params(params, option='nodes'):
    """URLs to act on: ``nodes`` when given, else the single ``url``."""
    urls = params.get(option) or ([params['url']] if params.get('url') else [])
    return [normalize_url(u) for u in urls]


def require_url(module):
    if not module.params.get('url'):
        raise InputError('url is required (or set VAULT_ADDR or BAO_ADDR)')
    problem = url_problem(module.params['url'])
    if problem:
        raise InputError('url %s' % problem)


def require_token(node, purpose):
    if not node.has_token:
        raise InputError('token is required to %s (set token or VAULT_TOKEN)' % purpose)

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The connection to a Kubernetes API server that every module touching Kubernetes shares: options, a client
from a kubeconfig (the ``kubernetes`` client library), and calls whose failures name the server and the call.

kubernetes.core is not a dependency: the collection needs a handful of objects (Secrets holding init material,
a ServiceAccount with its RBAC, a ConfigMap), and the same client library kubernetes.core uses reaches them.

    api = KubeAPI.connect(kubeconfig='/etc/trustroot/admin.kubeconfig')
    secret = api.get('read Secret vault/init', api.core.read_namespaced_secret, 'init', 'vault')   # None if absent
    api.call('create Secret vault/init', api.core.create_namespaced_secret, 'vault', body)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import json
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib
from ansible_collections.trustroot.ops.plugins.module_utils._errors import DependencyError, TrustrootError

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import ApiException
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()
    ApiException = None
else:
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None


class KubernetesError(TrustrootError):
    """A failed or unexpected call to the API server; the message names the server and the call."""

    def __init__(self, message, status=None):
        super(KubernetesError, self).__init__(message)
        self.status = status


def ensure_kubernetes():
    if not HAS_KUBERNETES:
        raise DependencyError(missing_required_lib('kubernetes'), results={'exception': KUBERNETES_IMPORT_ERROR})


def connection_options():
    """Where the cluster is: documented in the trustroot.ops.kubernetes fragment (kubernetes.core's names and
    environment variables, so an existing setup carries over)."""
    return dict(
        kubeconfig=dict(type='path', fallback=(env_fallback, ['K8S_AUTH_KUBECONFIG'])),
        context=dict(type='str', fallback=(env_fallback, ['K8S_AUTH_CONTEXT'])),
    )


def api_error_text(exc):
    """``HTTP <status> <reason>: <message>`` from an ApiException, the Status object's message when it has one."""
    message = ''
    try:
        body = json.loads(exc.body or '{}')
        if isinstance(body, dict) and isinstance(body.get('message'), str):
            message = body['message']
    except (TypeError, ValueError):
        message = (exc.body or '')[:300] if isinstance(exc.body, str) else ''
    return 'HTTP %s %s%s' % (exc.status, exc.reason or '', (': ' + message) if message else '')


class KubeAPI(object):
    """One API server: ``core``, ``rbac`` and ``authn`` APIs, and ``call``/``get`` that turn failures into
    KubernetesError naming ``server`` and the call."""

    def __init__(self, api_client, server):
        self.api_client = api_client
        self.server = server
        self.core = k8s_client.CoreV1Api(api_client)
        self.rbac = k8s_client.RbacAuthorizationV1Api(api_client)
        self.authn = k8s_client.AuthenticationV1Api(api_client)

    @classmethod
    def connect(cls, kubeconfig=None, context=None):
        """From a kubeconfig file (``~/.kube/config`` when None), or the in-cluster service account when no file
        is given and the module runs in a pod."""
        try:
            if kubeconfig is None and _in_cluster():
                k8s_config.load_incluster_config()
                api_client = k8s_client.ApiClient()
            else:
                api_client = k8s_config.new_client_from_config(config_file=kubeconfig, context=context)
        except (k8s_config.ConfigException, OSError, ValueError, TypeError) as exc:
            where = (kubeconfig or '(default)') + (' context %s' % context if context else '')
            raise KubernetesError('kubeconfig %s: %s' % (where, exc))
        return cls(api_client, api_client.configuration.host)

    def call(self, what, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ApiException as exc:
            raise KubernetesError('%s: %s: %s' % (self.server, what, api_error_text(exc)), status=exc.status)
        except (OSError, ValueError) as exc:  # connection refused, TLS, a body the client cannot read
            raise KubernetesError('%s: %s: %s' % (self.server, what, exc))

    def get(self, what, func, *args, **kwargs):
        """Like call, but an object that does not exist is None."""
        try:
            return self.call(what, func, *args, **kwargs)
        except KubernetesError as exc:
            if exc.status == 404:
                return None
            raise

    def close(self):
        self.api_client.close()


def _in_cluster():
    import os
    return bool(os.environ.get('KUBERNETES_SERVICE_HOST')) and os.path.exists(
        '/var/run/secrets/kubernetes.io/serviceaccount/token')


def jwt_claims(token):
    """The claims of a JWT, read without checking its signature (only to learn when it expires or whom it names:
    the API server is what verifies it). KubernetesError when it is not a JWT."""
    parts = token.split('.') if isinstance(token, str) else []
    if len(parts) != 3:
        raise KubernetesError('not a JWT (expected three dot-separated parts)')
    payload = parts[1] + '=' * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode('ascii')).decode('utf-8'))
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise KubernetesError('JWT payload is not base64url JSON: %s' % exc)
    if not isinstance(claims, dict):
        raise KubernetesError('JWT payload is not a JSON object')
    return claims


def secret_data(secret):
    """A Secret object's data as {key: bytes}; KubernetesError when a value is not base64."""
    out = {}
    for key, value in ((secret.data or {}) if secret is not None else {}).items():
        try:
            out[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise KubernetesError('Secret %s/%s: key %s is not base64' % (
                secret.metadata.namespace, secret.metadata.name, key))
    return out


def encode_data(data):
    """{key: bytes or str} -> a Secret's base64 ``data``."""
    return dict((key, base64.b64encode(value if isinstance(value, bytes) else value.encode('utf-8')).decode('ascii'))
                for key, value in data.items())

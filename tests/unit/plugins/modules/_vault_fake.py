"""One stand-in for the Vault / OpenBao HTTP API, shared by the Vault module tests.

It replaces hvac's RawAdapter (the transport under ``_vault.VaultNode``), so the module, VaultNode's status
handling and answer-shape checks all run as in production; only the bytes on the wire are scripted."""
import json

import requests
from hvac.adapters import RawAdapter

URL = 'http://node1:8200'
SEALED = {'type': 'shamir', 'initialized': True, 'sealed': True, 't': 2, 'n': 3, 'progress': 0,
          'version': '2.1.0', 'build_date': '2025-01-01T00:00:00Z', 'storage_type': 'raft'}
UNSEALED = dict(SEALED, sealed=False)


class FakeVault(object):
    """Answers requests from ``routes``: {(method, path): answer} or {(url, method, path): answer}, where an
    answer is (status, body) - body JSON-able, bytes for a download, None for none - or a list of them served in
    turn (the last repeats), or an exception to raise, or a callable ``(call) -> answer``. Every request is
    recorded in ``calls`` as a dict (url, method, path, json, params, token)."""

    def __init__(self, routes=None):
        self.routes = dict(routes or {})
        self.calls = []

    def answer(self, call):
        for key in ((call['url'], call['method'], call['path']), (call['method'], call['path'])):
            if key in self.routes:
                answer = self.routes[key]
                if isinstance(answer, list):
                    answer = answer.pop(0) if len(answer) > 1 else answer[0]
                return answer(call) if callable(answer) else answer
        raise AssertionError('unexpected call %(method)s %(url)s/v1/%(path)s' % call)

    def paths(self, method=None):
        """(method, path) of every call, or the paths called with ``method``."""
        if method:
            return [c['path'] for c in self.calls if c['method'] == method]
        return [(c['method'], c['path']) for c in self.calls]

    def writes(self):
        return [(c['method'], c['path']) for c in self.calls if c['method'] not in ('GET', 'LIST')]

    def respond(self, adapter, method, url, kwargs):
        call = dict(url=adapter.base_uri.rstrip('/'), method=method.upper(), path=url.split('/v1/', 1)[-1],
                    json=kwargs.get('json'), params=kwargs.get('params'), token=adapter.token)
        self.calls.append(call)
        answer = self.answer(call)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        response = requests.models.Response()
        response.status_code = status
        response.reason = 'scripted'
        if isinstance(body, bytes):  # a download (a raft snapshot): read whole or with iter_content
            response._content, response._content_consumed = body, True
            response.headers['Content-Type'] = 'application/octet-stream'
        elif body is not None:
            response._content = json.dumps(body).encode()
            response.headers['Content-Type'] = 'application/json'
        else:
            response._content = b''
        return response

    def adapter(self):
        """An hvac adapter class whose requests this fake answers (installed by the ``vault`` fixture)."""
        fake = self

        class ScriptedAdapter(RawAdapter):
            def request(self, method, url, headers=None, raise_exception=True, **kwargs):
                return fake.respond(self, method, url, kwargs)
        return ScriptedAdapter

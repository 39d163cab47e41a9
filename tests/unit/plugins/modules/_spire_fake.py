"""The stand-in for SpireServerCLI that the SPIRE module tests share: the module builds it (the instance itself is
returned), every argv it runs is recorded in ``calls`` (what it feeds on stdin in ``stdin``), and a test's subclass
gives the ``-output json`` reply in ``answer(args)`` (an exception instance is raised instead, as the real client
raises SpireError)."""
from ansible_collections.trustroot.ops.plugins.module_utils._spire import SpireError


class FakeSpireServerCLI(object):
    socket_path = '/run/spire/server/private/api.sock'

    def __init__(self):
        self.calls = []
        self.stdin = []

    def __call__(self, module):
        return self

    def run_json(self, args, data=None):
        self.calls.append(list(args))
        if data is not None:
            self.stdin.append(data)
        reply = self.answer(list(args))
        if isinstance(reply, Exception):
            raise reply
        return reply

    def stream_json_array(self, args, key, data=None):
        """The elements of ``key`` in the reply to ``args``, one at a time, as the real client streams them."""
        yield from self.run_json(args, data).get(key) or []

    def answer(self, args):
        raise AssertionError('unexpected spire-server call %r' % (args,))


def not_found(what):
    """What the server answers for an unknown object."""
    return SpireError('rpc error: code = NotFound desc = %s not found' % what, grpc_code='NotFound')

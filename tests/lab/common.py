"""Helpers every lab shares: free loopback ports, polling until a condition holds, and the environment
ansible-playbook runs with against this checkout."""

import os
import socket
import threading
import time
import urllib.error


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
COLLECTIONS_PATH = os.path.join(ROOT, '.cache', 'collections')


def ansible_env(extra=None):
    """os.environ for ansible-playbook with this checkout as trustroot.ops and the .venv tools first on
    PATH; connection settings a developer may have exported (VAULT_ADDR, ...) are dropped so they cannot
    reach a module under test."""
    env = dict(os.environ)
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS_PATH,
        'ANSIBLE_NOCOLOR': '1',  # callers read the output
        'ANSIBLE_RETRY_FILES_ENABLED': '0',
        'ANSIBLE_LOCALHOST_WARNING': '0',
        'PATH': VENV_BIN + os.pathsep + os.path.join(ROOT, '.cache', 'bin') + os.pathsep + env.get('PATH', ''),
    })
    for name in ('VAULT_ADDR', 'VAULT_TOKEN', 'BAO_ADDR', 'BAO_TOKEN'):
        env.pop(name, None)
    env.update(extra or {})
    return env


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout=30.0, interval=0.2, what='condition'):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
        except (OSError, urllib.error.URLError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError('timed out after %ss waiting for %s' % (timeout, what))
        time.sleep(interval)


class Sampler(threading.Thread):
    """Calls ``sample()`` every ``interval`` seconds while a playbook runs, in a thread of its own; ``stop()``
    returns the list of what it returned. Used to watch what clients see during a rolling operation."""

    def __init__(self, sample, interval=0.05):
        super().__init__(daemon=True)
        self.sample = sample
        self.interval = interval
        self.samples = []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            self.samples.append(self.sample())
            time.sleep(self.interval)

    def stop(self):
        self.stopping.set()
        self.join(10)
        return self.samples

"""Helpers every lab shares: free loopback ports, polling until a condition holds, and the environment
ansible-playbook runs with against this checkout."""

import contextlib
import os
import random
import socket
import subprocess
import threading
import time
import urllib.error


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# scripts/oldest_ansible_check.sh points this at a virtualenv with the oldest ansible-core requires_ansible claims.
VENV_BIN = os.environ.get('TRUSTROOT_ANSIBLE_BIN') or os.path.join(ROOT, '.venv', 'bin')
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


# Ports for test servers come from below the kernel's ephemeral range (32768-60999 by default), where outgoing
# connections take their local ports: a port chosen here and bound a moment later by a server cannot have been
# taken by a client connection meanwhile. A process never hands the same port out twice.
SERVER_PORTS = (20000, 32000)
_handed_out = set()
_ports_lock = threading.Lock()


def free_port():
    """A port on 127.0.0.1 that is free now, never given out before in this process."""
    with _ports_lock:
        for _attempt in range(200):
            port = random.randrange(*SERVER_PORTS)
            if port in _handed_out:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind(('127.0.0.1', port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    raise OSError('no free port in %d-%d on 127.0.0.1' % SERVER_PORTS)


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


@contextlib.contextmanager
def tmpfs(path, size):
    """A tmpfs of ``size`` (mount's size=) mounted at ``path`` (made here): a disk that really fills up. Unmounted
    afterwards. Needs root."""
    os.makedirs(str(path))
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%s,mode=0700' % size, 'tmpfs', str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(['umount', str(path)], check=False)

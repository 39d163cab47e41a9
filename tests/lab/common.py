"""Helpers every lab shares: free loopback ports and polling until a condition holds."""

import socket
import time
import urllib.error


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

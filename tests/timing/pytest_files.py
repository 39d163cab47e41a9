"""A pytest plugin: how long each test file took, written as JSON for the gate's timing table.

Loaded with ``-p tests.timing.pytest_files``; writes to the path in TRUSTROOT_TEST_TIMING_FILE (nothing when unset).
Under xdist it runs in the controller, which receives every worker's reports. For each file it records the
summed durations of its tests' setup, call and teardown (the worker time it cost) and the wall-clock span from
its first start to its last stop (what it added to the run where files ran side by side).
"""

import json
import os
import time

ENV = 'TRUSTROOT_TEST_TIMING_FILE'


def file_of(nodeid):
    return nodeid.split('::', 1)[0]


class FileTimes(object):
    def __init__(self, path):
        self.path = path
        self.files = {}
        self.started = time.time()

    def pytest_runtest_logreport(self, report):
        entry = self.files.setdefault(file_of(report.nodeid), {
            'seconds': 0.0, 'first_start': None, 'last_stop': None, 'tests': 0, 'failed': 0, 'worker': None})
        entry['seconds'] += report.duration
        start, stop = getattr(report, 'start', None), getattr(report, 'stop', None)
        if start is not None:
            entry['first_start'] = start if entry['first_start'] is None else min(entry['first_start'], start)
        if stop is not None:
            entry['last_stop'] = stop if entry['last_stop'] is None else max(entry['last_stop'], stop)
        if report.when == 'call':
            entry['tests'] += 1
        if report.failed:
            entry['failed'] += 1
        node = getattr(report, 'node', None)
        worker = getattr(node, 'gateway', None)
        if worker is not None:
            entry['worker'] = worker.id

    def pytest_sessionfinish(self, session):
        out = {}
        for name, entry in sorted(self.files.items()):
            span = None
            if entry['first_start'] is not None and entry['last_stop'] is not None:
                span = round(entry['last_stop'] - entry['first_start'], 1)
            out[name] = {'seconds': round(entry['seconds'], 1), 'span_s': span, 'tests': entry['tests'],
                         'failed': entry['failed'], 'worker': entry['worker']}
        data = {'total_s': round(time.time() - self.started, 1), 'files': out}
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.path)


def pytest_configure(config):
    path = os.environ.get(ENV)
    # Only the controller writes: xdist workers have workerinput.
    if path and not hasattr(config, 'workerinput'):
        config.pluginmanager.register(FileTimes(path), 'trustroot-file-times')

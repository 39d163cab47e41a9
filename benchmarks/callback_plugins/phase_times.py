# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark helper (not part of the collection): the start time of every task, written as JSON lines.

Enabled by benchmarks/disaster_recovery.py with ANSIBLE_CALLBACK_PLUGINS pointing here,
ANSIBLE_CALLBACKS_ENABLED=phase_times and PHASE_TIMES_PATH=<file>. Each line: {"t": monotonic seconds,
"play": play name, "task": task name, "path": task file:line}; the last line has "task": null (the end)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: phase_times
type: aggregate
short_description: start time of every task, for benchmarks
description: Writes one JSON line per task start to the file named by PHASE_TIMES_PATH.
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'phase_times'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._path = os.environ.get('PHASE_TIMES_PATH')
        self._play = None

    def _write(self, task, path):
        if not self._path:
            return
        with open(self._path, 'a') as handle:
            handle.write(json.dumps({'t': time.monotonic(), 'play': self._play, 'task': task, 'path': path}) + '\n')

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._write(task.get_name(), task.get_path())

    def v2_playbook_on_handler_task_start(self, task):
        self._write(task.get_name(), task.get_path())

    def v2_playbook_on_stats(self, stats):
        self._write(None, None)

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one adapter from AnsibleModule.run_command to the ``run(argv, data=None) -> (rc, stdout, stderr)``
callables that the host-shared code (_backup, _spire_backup, _scratch) takes; on hosts, without Ansible,
they get _backup.subprocess_run instead."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def module_runner(module):
    """Bytes in and out, argv lists only, the program looked up on PATH, messages in the C locale."""
    def run(argv, data=None):
        argv = list(argv)
        argv[0] = module.get_bin_path(argv[0]) or argv[0]
        return module.run_command(argv, data=data, binary_data=True, encoding=None,
                                  environ_update={'LANG': 'C', 'LC_ALL': 'C'})
    return run

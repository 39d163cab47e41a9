# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Former home of ``module_runner``; it lives in _runner now (kept importable for modules not yet moved)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.trustroot.ops.plugins.module_utils._runner import module_runner  # noqa: F401 pylint: disable=unused-import

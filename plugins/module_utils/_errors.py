# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error hierarchy and the one way a module ends.

Every error the collection raises on purpose derives from ``TrustrootError``; its text is safe to show (no
secret ever goes into it) and names the field, node or call at fault. ``run_module`` is how every module ends:
it maps those errors (and file errors) to ``fail_json`` with the partial result reached so far, and lets
anything else through as the bug it is. Stdlib only: the host-side backup program imports it too."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class TrustrootError(Exception):
    """Base of every deliberate error. ``results`` is what was already done or observed when it was raised
    (returned next to ``msg``); ``changed`` says whether anything was changed before the failure."""

    def __init__(self, *args, **kwargs):
        self.results = dict(kwargs.pop('results', None) or {})
        self.changed = bool(kwargs.pop('changed', False))
        super(TrustrootError, self).__init__(*args, **kwargs)

    @property
    def user_message(self):
        return getattr(self, 'message', None) or str(self)


class InputError(TrustrootError, ValueError):
    """Bad module input, found before any call; the message names the option."""


class DependencyError(TrustrootError):
    """A Python library the module needs is missing on the host that runs it (``results['exception']`` holds
    the import traceback, as ``fail_json`` shows it)."""


def file_error_message(exc):
    """``path: reason`` for an OSError, without the errno noise."""
    return '%s: %s' % (getattr(exc, 'filename', None) or 'file', exc.strerror or exc)


def failure_result(exc):
    """The keyword arguments for ``fail_json`` from a deliberate or file error."""
    if isinstance(exc, TrustrootError):
        result = dict(exc.results)
        result.setdefault('changed', exc.changed)
        result['msg'] = exc.user_message
        return result
    if isinstance(exc, EnvironmentError):
        return dict(changed=False, msg=file_error_message(exc))
    return dict(changed=False, msg=str(exc))


def run_module(module, runner, known_errors=()):
    """Run ``runner(module)`` and exit with the result dict it returns. A ``TrustrootError`` (or one of the
    older ``known_errors`` while they are being moved under it) or a file error fails the module with its
    message and partial result; nothing else is caught."""
    try:
        result = runner(module)
    except (TrustrootError, EnvironmentError) + tuple(known_errors) as exc:
        module.fail_json(**failure_result(exc))
    module.exit_json(**result)

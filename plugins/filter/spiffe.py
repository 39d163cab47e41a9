# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SPIFFE ID filters: spiffe_id_parse and spiffe_id_valid (documented in spiffe_id_parse.yml and
spiffe_id_valid.yml next to this file)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.trustroot.ops.plugins.module_utils._spiffe_id import (
    SpiffeError, check_spiffe_id, parse_spiffe_id, spiffe_id_error)


def spiffe_id_parse(value, trust_domain=None):
    """{'id', 'trust_domain', 'path', 'segments'} of a SPIFFE ID; an error naming the rule otherwise."""
    if not isinstance(value, str):
        raise AnsibleFilterError('spiffe_id_parse: expected a string, got %s' % type(value).__name__)
    try:
        if trust_domain is not None:
            return check_spiffe_id(value, 'spiffe_id_parse', trust_domain=to_text(trust_domain),
                                   path_required=False)
        return parse_spiffe_id(value, 'spiffe_id_parse')
    except SpiffeError as err:
        raise AnsibleFilterError(str(err))


def spiffe_id_valid(value, trust_domain=None, require_path=False):
    """Whether ``value`` is a valid SPIFFE ID (in ``trust_domain`` when given, with a path when asked)."""
    if not isinstance(value, str) or spiffe_id_error(value) is not None:
        return False
    parsed = parse_spiffe_id(value)
    if trust_domain is not None and parsed['trust_domain'] != to_text(trust_domain):
        return False
    if require_path and not parsed['path']:
        return False
    return True


class FilterModule(object):
    def filters(self):
        return {
            'spiffe_id_parse': spiffe_id_parse,
            'spiffe_id_valid': spiffe_id_valid,
        }

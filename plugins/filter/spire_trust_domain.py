# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The spire_trust_domain_entries filter (documented in spire_trust_domain_entries.yml next to this file)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.trustroot.ops.plugins.module_utils._spiffe_id import SpiffeError
from ansible_collections.trustroot.ops.plugins.module_utils._spire_trust_domain import migrate_entries


def spire_trust_domain_entries(entries, step, old_trust_domain, new_trust_domain):
    """Entries for one step of a trust-domain migration; an error naming the argument otherwise."""
    try:
        return migrate_entries(list(entries or []), step, old_trust_domain, new_trust_domain)
    except SpiffeError as err:
        raise AnsibleFilterError('spire_trust_domain_entries: %s' % err)


class FilterModule(object):
    def filters(self):
        return {'spire_trust_domain_entries': spire_trust_domain_entries}

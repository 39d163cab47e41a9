# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""DER elements: tag and bounds of one element, the elements inside a constructed one.

Python standard library only: the backup program the backup role installs on SPIRE hosts (plain python3, no
third-party packages) reads certificates and keys with it too. Hand-written because the standard library has no
ASN.1 reader and the collection reads only tags and bounds, never a whole certificate model.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError


class DERError(TrustrootError, ValueError):
    pass


def der_read(data, pos=0):
    """(tag, content start, content end) of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise DERError('truncated DER element')
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7f
        if count == 0 or count > 4 or pos + count > len(data):
            raise DERError('unsupported DER length')
        length = int.from_bytes(data[pos:pos + count], 'big')
        pos += count
    if pos + length > len(data):
        raise DERError('truncated DER content')
    return tag, pos, pos + length


def der_children(data, start, end):
    """Elements inside a constructed element, as (tag, start, end, element start)."""
    out = []
    pos = start
    while pos < end:
        tag, cstart, cend = der_read(data, pos)
        out.append((tag, cstart, cend, pos))
        pos = cend
    return out

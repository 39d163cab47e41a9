# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup archive format of trustroot.ops, written and checked the same way everywhere.

An archive is ``<system>-<YYYYmmddTHHMMSSZ>.tar.gz`` (or ``.tar.gz.age`` when encrypted to age
recipients). Its first member is ``manifest.json`` (format, system, name, created, info, and the sha256
and size of every part); the parts follow, each a plain file. Next to the archive a sidecar
``<archive>.json`` records the archive's own sha256 and size, whether it is encrypted, the manifest's
facts, and the last verification. A sidecar is written only for an archive that was read back from disk
and checked, so listing sidecars lists usable backups.

Files are never half-written: archives, sidecars, extracted parts and metric files go through a
temporary file in the target directory (mode 0600, or the final mode, from the start) that replaces
the target only when complete; any error or interruption removes it.

This file runs in Ansible modules and, unchanged, in a plain Python 3 command on hosts (systemd timers):
it imports only the standard library and other host-shared files of this collection. Commands (``age``)
are argv lists run through a ``run(argv, data=None) -> (rc, stdout_bytes, stderr_bytes)`` callable.
One module per concern: ``format`` (errors, constants, names and times, input checks), ``archive`` (writing),
``tar`` (members written and checked), ``verify`` (reading back, listing), ``retention``,
``metrics``, ``options`` (the shared module options), ``remote`` (S3) and ``finish`` (what follows a written backup).
"""

"""Secret-leak scans for the lab tests: no secret a playbook handles may reach its output (at any verbosity), a
host's journal or any file but the few that must hold it.

Secrets are given as {label: value}; what is reported names the label and the spelling found, never the value.
Each secret is looked for as it is, JSON-escaped, and for key shares (base64 or hex) in the other encoding of the
same bytes: a share printed in either form is a leak.
"""

import base64
import binascii
import fnmatch
import json
import os
import re
import stat
import tempfile

MIN_LENGTH = 8  # shorter values would match by chance (and no secret of the stack is that short)
# JSON keys whose non-empty value is a secret that the lab cannot read back afterwards (the OTP of a root token
# generation and the token XORed with it are known only inside the module run).
SECRET_KEYS = ('otp', 'encoded_token', 'encoded_root_token')
CENSORED = ('VALUE_SPECIFIED_IN_NO_LOG_PARAMETER', '********')
# A used join token is public by SPIRE's design: it ends the agent's SPIFFE ID (spiffe://<td>/spire/agent/join_token/
# <token>), which the server and agent log and entries name as their parent; the server deletes the token on use.
# Only where it is not part of that ID is it a secret.
PUBLIC_PREFIXES = (b'/join_token/', b'\\/join_token\\/')


class LeakError(ValueError):
    pass


def _other_encodings(value):
    """The same bytes in the other key-share encoding: hex of a base64 value, base64 of a hex value."""
    out = []
    if re.fullmatch(r'(?:[0-9a-fA-F]{2}){8,}', value):
        raw = binascii.unhexlify(value)
        out += [base64.b64encode(raw).decode(), base64.b64encode(raw).decode().rstrip('=')]
    if re.fullmatch(r'[A-Za-z0-9+/]{11,}={0,2}', value) and len(value.rstrip('=')) % 4 != 1:
        try:
            raw = base64.b64decode(value + '=' * (-len(value) % 4), validate=True)
        except binascii.Error:
            raw = b''
        if len(raw) >= 8:
            out.append(raw.hex())
    return out


def forms(value):
    """The spellings of one secret to look for (pure): as is, JSON-escaped (json.dumps, and '/' as '\\/' as some
    encoders write it), and a key share's other encoding."""
    spellings = [value] + _other_encodings(value)
    out = []
    for text in spellings:
        for form in (text, json.dumps(text)[1:-1], text.replace('/', '\\/')):
            if form not in out:
                out.append(form)
    return out


def checked(secrets):
    """{label: value} with every value a string of MIN_LENGTH or more: a missing or short secret would make a scan
    pass for nothing, so it is an error naming the label."""
    if not secrets:
        raise LeakError('no secret to look for')
    for label, value in secrets.items():
        if not isinstance(value, str) or len(value) < MIN_LENGTH:
            raise LeakError('secret %s: not a string of %d characters or more' % (label, MIN_LENGTH))
    return secrets


def occurs(data, form):
    """``form`` (bytes) occurs in ``data`` other than right after a PUBLIC_PREFIXES prefix."""
    public = sum(data.count(prefix + form) for prefix in PUBLIC_PREFIXES)
    return data.count(form) > public


def text_leaks(text, secrets):
    """[(label, form)] of the secrets found in ``text`` (str or bytes)."""
    data = text.encode() if isinstance(text, str) else text
    found = []
    for label, value in checked(secrets).items():
        for form in forms(value):
            if occurs(data, form.encode()):
                found.append((label, form if form != value else 'as is'))
                break
    return found


def named_value_leaks(text, keys=SECRET_KEYS):
    """The JSON keys of ``keys`` that carry a non-empty, uncensored value in ``text`` (quotes plain or escaped)."""
    found = []
    for key in keys:
        pattern = r'\\?"%s\\?"\s*:\s*\\?"([^"\\]+)' % re.escape(key)
        if any(value not in CENSORED for value in re.findall(pattern, text)):
            found.append(key)
    return found


def encoded_token_leaks(text, token):
    """Base64 strings of ``text`` that are ``token`` XORed with an alphanumeric one-time password of its length:
    the encoded token of a root token generation (its OTP is not known afterwards, the token is)."""
    raw_token = token.encode()
    found = []
    for candidate in set(re.findall(r'[A-Za-z0-9+/_-]{%d,}={0,2}' % (len(raw_token) * 4 // 3), text)):
        body = candidate.rstrip('=')
        for alphabet in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                raw = alphabet(body + '=' * (-len(body) % 4))
            except (binascii.Error, ValueError):
                continue
            if len(raw) == len(raw_token) and bytes(a ^ b for a, b in zip(raw, raw_token)).isalnum():
                found.append(candidate)
                break
    return found


def material_secrets(material, prefix=''):
    """{label: value} of an init material (pure): each unseal and recovery share (base64 and hex), the root token."""
    out = {}
    for field in ('unseal_keys_b64', 'unseal_keys_hex', 'recovery_keys_b64', 'recovery_keys_hex'):
        for index, value in enumerate(material.get(field) or []):
            out['%s%s[%d]' % (prefix, field, index)] = value
    if material.get('root_token'):
        out[prefix + 'root_token'] = material['root_token']
    return out


def join_tokens(agent_list):
    """The join tokens that agents attested with, from `spire-server agent list -output json` (pure): a join-token
    agent's ID ends with its token, which the server deletes once used: this is where the lab can still read it."""
    paths = [agent['id']['path'] for agent in agent_list.get('agents') or []]
    return {'join_token %s' % path.rsplit('/', 1)[1][:8]: path.rsplit('/', 1)[1] for path in paths
            if path.startswith('/spire/agent/join_token/')}


def allowed_reason(path, allowed):
    """The reason of the first (glob, reason) of ``allowed`` that ``path`` matches, else None."""
    for pattern, reason in allowed:
        if fnmatch.fnmatchcase(path, pattern):
            return reason
    return None


def walk_files(roots, skip=()):
    """Regular files under ``roots`` (files or directories; missing ones are skipped), never entering a directory
    that matches a glob of ``skip`` (an overlay's merged view, its work directory)."""
    for root in roots:
        if os.path.isfile(root) and not os.path.islink(root):
            yield root
            continue
        for directory, dirs, files in os.walk(root):
            dirs[:] = [name for name in dirs
                       if not any(fnmatch.fnmatchcase(os.path.join(directory, name), pattern) for pattern in skip)]
            for name in files:
                path = os.path.join(directory, name)
                try:
                    if stat.S_ISREG(os.lstat(path).st_mode):
                        yield path
                except FileNotFoundError:
                    continue


def file_leaks(roots, secrets, allowed=(), skip=()):
    """Scan every regular file under ``roots``: ([(path, label, form)] leaks outside the allowed files,
    [(path, label, reason)] secrets found in allowed files, number of files scanned)."""
    secrets = checked(secrets)
    leaks, held, scanned = [], [], 0
    for path in walk_files(roots, skip):
        try:
            with open(path, 'rb') as handle:
                data = handle.read()
        except (FileNotFoundError, PermissionError):
            continue
        scanned += 1
        found = text_leaks(data, secrets)
        if not found:
            continue
        reason = allowed_reason(path, allowed)
        for label, form in found:
            if reason:
                held.append((path, label, reason))
            else:
                leaks.append((path, label, form))
    return leaks, held, scanned


def private_file_problem(path, owners=(0,)):
    """Why an allowed secret-holding file is not private enough (mode beyond 0640, or an owner not in ``owners``,
    uids), or None."""
    info = os.lstat(path)
    mode = stat.S_IMODE(info.st_mode)
    if mode & ~0o640:
        return '%s: mode %o (0600 or 0640 expected)' % (path, mode)
    if info.st_uid not in owners:
        return '%s: owned by uid %d (%s expected)' % (path, info.st_uid, ', '.join(str(uid) for uid in owners))
    return None


def controller_temp_roots(since, tmp=None, home=None):
    """The controller's Ansible scratch places: ~/.ansible/tmp and the entries of the temp directory named ansible*
    (tempfile tasks, module payloads) changed since ``since`` (a time.time())."""
    tmp = tmp or tempfile.gettempdir()
    roots = [os.path.join(home or os.path.expanduser('~'), '.ansible', 'tmp')]
    for name in sorted(os.listdir(tmp)):
        path = os.path.join(tmp, name)
        try:
            if name.startswith('ansible') and os.lstat(path).st_mtime >= since:
                roots.append(path)
        except FileNotFoundError:
            continue
    return roots


def changed_since(root, since, skip_names=('.git', '.venv', '.cache', '.lab')):
    """Files directly or deeply under ``root`` (the playbook runs' working directory) changed since ``since``,
    skipping the big trees of ``skip_names`` (version control, tools, caches, labs: scanned on their own)."""
    out = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [name for name in dirs if name not in skip_names]
        for name in files:
            path = os.path.join(directory, name)
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode) and info.st_mtime >= since:
                out.append(path)
    return out


def report(leaks):
    return '\n'.join('%s: %s (%s)' % item for item in leaks)


# --- a lab: its controller-side files, its hosts' files and journals -----------------------------------------

def lab_roots(lab, since, extra=()):
    """What a lab test's playbook runs could have written, as (roots, skip globs): the lab directory (its files/,
    inventory, and each host's overlay upper directory: exactly the files the host wrote since it booted; never
    the merged root or the overlay work directory), ``extra`` (backups, kept files), the controller's Ansible
    scratch places and the files of the working directory changed since ``since``."""
    from tests.lab.common import ROOT
    roots = [lab.dir] + list(extra) + controller_temp_roots(since) + changed_since(ROOT, since)
    skip = [os.path.join(lab.host_dir(host), sub) for host in lab.hosts for sub in ('root', 'work')]
    return roots, skip


def scan_lab(lab, secrets, since, allowed=(), extra=()):
    """file_leaks over lab_roots, and every host's journal (read with journalctl: journal files may be
    compressed). Returns (leaks, held, scanned); a journal leak's path is 'journal:<host>'."""
    roots, skip = lab_roots(lab, since, extra)
    leaks, held, scanned = file_leaks(roots, secrets, allowed, skip)
    for host in lab.hosts:
        journal = lab.exec(host, ['journalctl', '--no-pager', '-o', 'json'], timeout=120, check=True).stdout
        leaks += journal_leaks(journal, secrets, host)
    return leaks, held, scanned


def journal_leaks(journal, secrets, host):
    """[('journal:<host>:<who logged it>', label, form)] of `journalctl -o json` output (one entry a line)."""
    found = []
    for line in journal.splitlines():
        hits = text_leaks(line, secrets)
        if not hits:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            entry = {}
        who = entry.get('SYSLOG_IDENTIFIER') or entry.get('_COMM') or entry.get('_SYSTEMD_UNIT') or '?'
        found += [('journal:%s:%s' % (host, who), label, form) for label, form in hits
                  if ('journal:%s:%s' % (host, who), label, form) not in found]
    return found


def summary(scanned, secrets, held):
    """One line for the test log: what was scanned and which allowed files hold a secret (labels, never values)."""
    files = sorted({(path, reason) for path, _label, reason in held})
    return 'leak scan: %d files, %d secrets; allowed files holding one: %s' % (scanned, len(secrets), files)

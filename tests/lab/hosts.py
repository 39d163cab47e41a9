"""Real systemd Debian hosts for role tests, molecule scenarios and the demo.

One implementation, used as a library (``Lab``) and through the CLI below. Each host is a Debian
bookworm system booted with ``systemd-nspawn --boot`` on an overlayfs copy of one cached rootfs, with
its own network namespace plugged into a bridge and /24 subnet that belong to the lab. The machine
reaches every host over SSH with a key generated for the lab; the hosts reach each other.

    python -m tests.lab.hosts rootfs                       # build the cached rootfs (once, minutes)
    python -m tests.lab.hosts create --name demo --hosts vault1,vault2,vault3 [--dir .lab/demo]
    python -m tests.lab.hosts status --name demo [--json]
    python -m tests.lab.hosts inventory --name demo        # Ansible YAML inventory on stdout
    python -m tests.lab.hosts destroy --name demo [--keep-files]

Needs root, systemd-nspawn (systemd-container), debootstrap, iproute2, util-linux (mount, nsenter)
and openssh-client. The machine needs neither systemd as PID 1 nor systemd-machined: containers are
started with --register=no --keep-unit.

Everything a lab creates is recorded in <dir>/state.json (bridge with its ifindex, overlay mounts,
supervisor PID) and <dir>/hosts/<host>/runtime.json (nspawn PID, container init PID, veth name, boot
count), and ``destroy`` removes exactly that: processes by recorded PID (checked against their start
time), mounts under the lab directory, links by recorded name and ifindex.

Environment:
    TRUSTROOT_LAB_ROOTFS   cached rootfs directory (default ~/.cache/trustroot-ops/lab/rootfs-bookworm-<hash>)
    TRUSTROOT_LAB_MIRROR   Debian mirror for debootstrap (default: the machine's APT sources)
    TRUSTROOT_LAB_RUN      registry of labs by name, and the allocation lock (default /run/trustroot-lab)
    TRUSTROOT_LAB_NET      first two octets of the lab subnets (default 10.213: 10.213.<n>.0/24)
"""

import argparse
import contextlib
import errno
import fcntl
import glob
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SUITE = 'bookworm'
# What the hosts need: a systemd that boots, SSH, and what Ansible modules use on a target
# (python3-apt for apt, acl for become to unprivileged users, unzip for unarchive,
# python3-cryptography for crypto modules, curl/openssl for health checks and certificates).
PACKAGES = (
    'systemd', 'systemd-sysv', 'dbus', 'openssh-server', 'python3', 'python3-apt', 'iproute2',
    'iputils-ping', 'ca-certificates', 'sudo', 'procps', 'netbase', 'acl', 'unzip', 'curl', 'openssl',
    'python3-cryptography',
    # debootstrap does not resolve virtual packages: python3-cryptography depends on
    # python3-cffi-backend-api-min/-max, which only this package provides.
    'python3-cffi-backend',
    # age: the backup role encrypts archives on the host, and restores decrypt them there.
    'age',
    # SPIRE's postgres datastore on a lab host (the hosts cannot reach a mirror later). Installed
    # disabled: only a host that is given the database role starts it.
    'postgresql',
    # logrotate: the vault_server role rotates the audit files with it.
    'logrotate',
)
# Units installed enabled that no host runs unless a role or test asks for them.
DISABLED_UNITS = ('postgresql.service',)
# Bump when customize_rootfs() changes: the stamp then no longer matches and the cache is rebuilt.
ROOTFS_LAYOUT = 2
# Timers that would reach for the network (which the hosts do not have) or hold the APT lock while
# Ansible runs apt.
MASKED_UNITS = ('apt-daily.timer', 'apt-daily-upgrade.timer')

STATE_FORMAT = 'trustroot.ops/lab/v1'
# Subnet indexes that dynamic allocation never takes: a lab booted from a layer (a converged install kept as
# read-only overlay layers, tests/lab/layers.py) needs the very addresses its hosts had when the layer was made.
LAYER_NETWORK_INDEXES = range(240, 255)
BRIDGE_PREFIX = 'trbr'
FIRST_HOST_OCTET = 11
MAX_HOSTS = 200
REBOOT_EXIT_STATUS = 133
CGROUP_PARENT = 'trustroot-lab'
SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

LAB_NAME_RE = re.compile(r'^[a-z][a-z0-9-]{0,19}$')
HOST_NAME_RE = re.compile(r'^[a-z][a-z0-9-]{0,30}$')
GROUP_NAME_RE = re.compile(r'^[a-z_][a-z0-9_]{0,62}$')
UNSAFE_PATH_CHARS = set(',:= \t\n\\')


class LabError(Exception):
    """A lab could not be created, reached or destroyed; the message says what and why."""


# ---------------------------------------------------------------------------------------------------
# Configuration and defaults

def default_rootfs():
    """One directory per package list and layout (its stamp hash in the name): labs that still run on an
    older rootfs keep it while a new one is built beside it."""
    return os.environ.get('TRUSTROOT_LAB_ROOTFS') or os.path.join(
        machine_cache(), 'lab', 'rootfs-%s-%s' % (SUITE, rootfs_stamp()[:12]))


def machine_cache():
    """The machine's cache for what depends on no checkout (the rootfs is a function of its stamp alone): a fresh
    checkout reuses it. Builds in it happen under a lock beside the built directory."""
    return os.path.join(os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'trustroot-ops')


def run_dir():
    return os.environ.get('TRUSTROOT_LAB_RUN') or '/run/trustroot-lab'


def net_base():
    base = os.environ.get('TRUSTROOT_LAB_NET') or '10.213'
    parts = base.split('.')
    if len(parts) != 2 or not all(p.isdigit() and 0 <= int(p) <= 255 for p in parts):
        raise LabError('TRUSTROOT_LAB_NET must be two octets such as 10.213, got %r' % base)
    return base


def default_lab_dir(name):
    return os.path.join(ROOT, '.lab', name)


# ---------------------------------------------------------------------------------------------------
# Pure parts: validation, allocation, rendering, parsing (unit-tested in tests/unit/lab)

def validate_lab_name(name):
    if not isinstance(name, str) or not LAB_NAME_RE.match(name) or name.endswith('-'):
        raise LabError('name: %r is not a lab name (lowercase letter first, then lowercase letters, digits '
                       'or "-", at most 20 characters, not ending with "-")' % (name,))
    return name


def validate_host_names(hosts):
    """The list of host names, checked: DNS labels, unique, at least one, at most MAX_HOSTS."""
    if isinstance(hosts, str):
        hosts = [h.strip() for h in hosts.split(',') if h.strip()]
    hosts = list(hosts)
    if not hosts:
        raise LabError('hosts: at least one host name is required')
    if len(hosts) > MAX_HOSTS:
        raise LabError('hosts: at most %d hosts per lab, got %d' % (MAX_HOSTS, len(hosts)))
    seen = set()
    for host in hosts:
        if not isinstance(host, str) or not HOST_NAME_RE.match(host) or host.endswith('-'):
            raise LabError('hosts: %r is not a host name (lowercase letter first, then lowercase letters, '
                           'digits or "-", at most 31 characters, not ending with "-")' % (host,))
        if host in seen:
            raise LabError('hosts: %r is listed twice' % host)
        seen.add(host)
    return hosts


def validate_lab_path(path, what='dir'):
    bad = sorted(UNSAFE_PATH_CHARS.intersection(path))
    if bad:
        raise LabError('%s: %r contains %s, which overlayfs mount options cannot carry'
                       % (what, path, ' '.join(repr(c) for c in bad)))
    return path


def machine_name(lab, host):
    """The nspawn machine name: unique across labs, so that veth names and nspawn's runtime
    directories (/run/systemd/nspawn/propagate/<machine>) never collide."""
    return '%s-%s' % (lab, host)


def bridge_name(index):
    return '%s%d' % (BRIDGE_PREFIX, index)


def lab_network(index, base=None):
    return ipaddress.IPv4Network('%s.%d.0/24' % (base or net_base(), index))


def host_addresses(index, hosts, base=None, fixed=None):
    """[(host, address)] in the given order: .11, .12, ... of the lab subnet; .1 is the bridge.

    fixed: {host: address} of a layer's hosts, which keep their addresses; the other hosts take the addresses
    after the highest of them (also of layer hosts not booted now), in order, so no address is reused."""
    network = lab_network(index, base)
    if len(hosts) > MAX_HOSTS:
        raise LabError('hosts: at most %d hosts per lab' % MAX_HOSTS)
    fixed = dict(fixed or {})
    for host, address in fixed.items():
        if ipaddress.IPv4Address(address) not in network:
            raise LabError('%s: address %s is not in the lab subnet %s' % (host, address, network))
    first_free = FIRST_HOST_OCTET
    if fixed:
        first_free = max(int(ipaddress.IPv4Address(a)) - int(network.network_address) for a in fixed.values()) + 1
    free = iter(range(first_free, 255))
    out = []
    for host in hosts:
        if host in fixed:
            out.append((host, fixed[host]))
            continue
        octet = next(free, None)
        if octet is None:
            raise LabError('hosts: no address left in %s for %s' % (network, host))
        out.append((host, str(network.network_address + octet)))
    return out


def gateway_address(index, base=None):
    return str(lab_network(index, base).network_address + 1)


def used_network_indexes(link_names, networks, base=None):
    """Subnet indexes already taken on the machine: a trbr<n> link exists, or an address or route
    overlaps <base>.<n>.0/24."""
    base = base or net_base()
    used = set()
    pattern = re.compile(r'^%s(\d{1,3})$' % BRIDGE_PREFIX)
    for name in link_names:
        match = pattern.match(name)
        if match:
            used.add(int(match.group(1)))
    wide = ipaddress.IPv4Network('%s.0.0/16' % base)
    for net in networks:
        net = ipaddress.ip_network(net, strict=False)
        if net.version != 4 or not net.overlaps(wide):
            continue
        if net.prefixlen < 16:
            # A route or address covering the whole /16 (0.0.0.0/0 is filtered out by the caller).
            return set(range(1, 255))
        first = int(net.network_address.packed[2])
        last = int(net.broadcast_address.packed[2])
        used.update(range(first, last + 1))
    return used


def pick_network_index(used):
    """The first free subnet index below the ones kept for labs booted from a layer (LAYER_NETWORK_INDEXES)."""
    for index in range(1, LAYER_NETWORK_INDEXES[0]):
        if index not in used:
            return index
    raise LabError('no free lab subnet: %s.1-%d.0/24 are all in use' % (net_base(), LAYER_NETWORK_INDEXES[0] - 1))


def parse_apt_sources(files):
    """[(types, uris, suites)] from {path: text} of sources.list (one-line) and *.sources (deb822)."""
    entries = []
    for path, text in sorted(files.items()):
        if path.endswith('.sources'):
            for stanza in re.split(r'\n\s*\n', text):
                fields = {}
                for line in stanza.splitlines():
                    if not line.strip() or line.lstrip().startswith('#'):
                        continue
                    if ':' in line and not line[0].isspace():
                        key, value = line.split(':', 1)
                        fields[key.strip().lower()] = value.strip()
                if fields.get('enabled', 'yes').lower() == 'no' or 'uris' not in fields:
                    continue
                entries.append((fields.get('types', '').split(), fields['uris'].split(),
                                fields.get('suites', '').split()))
        else:
            for line in text.splitlines():
                line = line.split('#', 1)[0].strip()
                if not line:
                    continue
                parts = line.split()
                if parts[1:2] and parts[1].startswith('['):
                    # Options such as [arch=amd64 signed-by=...]: drop them up to the closing bracket.
                    while parts[1:] and not parts[1].endswith(']'):
                        del parts[1]
                    del parts[1]
                if len(parts) >= 3:
                    entries.append(([parts[0]], [parts[1]], [parts[2]]))
    return entries


def pick_mirror(entries, suite=SUITE):
    """The URI of the first 'deb' source for exactly <suite> (not -updates, not -security)."""
    for types, uris, suites in entries:
        if 'deb' in types and suite in suites and uris:
            return uris[0].rstrip('/')
    return None


def rootfs_stamp(packages=PACKAGES, suite=SUITE, layout=ROOTFS_LAYOUT):
    text = json.dumps({'suite': suite, 'packages': sorted(packages), 'layout': layout}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def nspawn_command(root, machine, hostname, bridge, nspawn='systemd-nspawn'):
    """The container's command line.

    --register=no --keep-unit: the machine has no systemd-machined and no systemd as PID 1; without
        them nspawn asks D-Bus for a machine registration and a scope unit and fails with
        "Failed to open system bus".
    --private-users=no: the rootfs is owned by the real root; a user namespace would need a shifted
        copy or idmapped mounts on the overlay.
    --capability=CAP_IPC_LOCK: a real host has it; Vault/OpenBao units ask for it
        (AmbientCapabilities=CAP_IPC_LOCK) to lock memory. nspawn's default set lacks it.
    --link-journal=no: keep the host journal in the host, touch nothing in the machine's /var/log.
    --resolv-conf=off, --timezone=off: the rootfs files stay as built, nothing from the machine.
    --console=read-only: boot messages and the console go to our log, no terminal is needed.
    """
    return [
        nspawn, '--boot', '--register=no', '--keep-unit', '--private-users=no',
        '--network-bridge=%s' % bridge, '--directory=%s' % root,
        '--machine=%s' % machine, '--hostname=%s' % hostname,
        '--capability=CAP_IPC_LOCK', '--link-journal=no', '--resolv-conf=off', '--timezone=off',
        '--console=read-only',
    ]


def render_etc_hosts(addresses):
    lines = [
        '127.0.0.1\tlocalhost',
        '::1\tlocalhost ip6-localhost ip6-loopback',
        'ff02::1\tip6-allnodes',
        'ff02::2\tip6-allrouters',
        '',
        '# lab hosts',
    ]
    lines += ['%s\t%s' % (address, host) for host, address in addresses]
    return '\n'.join(lines) + '\n'


def render_sshd_config():
    return (
        '# Lab host: one host key (generated per host), root logs in with the lab key only.\n'
        'HostKey /etc/ssh/ssh_host_ed25519_key\n'
        'PermitRootLogin prohibit-password\n'
        'PasswordAuthentication no\n'
        'KbdInteractiveAuthentication no\n'
        'UseDNS no\n'
    )


def render_known_hosts(addresses, host_keys):
    """known_hosts lines: '<name>,<address> <type> <key>' from {host: 'ssh-ed25519 AAAA... comment'}."""
    lines = []
    for host, address in addresses:
        kind, key = host_keys[host].split()[:2]
        lines.append('%s,%s %s %s' % (host, address, kind, key))
    return '\n'.join(lines) + '\n'


def render_ssh_config(addresses, key, known_hosts):
    """An ssh_config for `ssh -F <file> <host>`."""
    out = []
    for host, address in addresses:
        out += ['Host %s %s' % (host, address), '    HostName %s' % address, '']
    out += [
        'Host *',
        '    User root',
        '    IdentityFile %s' % key,
        '    IdentitiesOnly yes',
        '    UserKnownHostsFile %s' % known_hosts,
        '    StrictHostKeyChecking yes',
        '    BatchMode yes',
        '    ConnectTimeout 10',
        '',
    ]
    return '\n'.join(out)


def group_of(host):
    """Inventory group of a host: its name without the trailing digits ('vault2' -> 'vault',
    'spire-agent1' -> 'spire_agent'); None when nothing is left or nothing was stripped."""
    stem = re.sub(r'[-_]*\d+$', '', host)
    if not stem or stem == host:
        return None
    return stem.replace('-', '_')


SSH_ARGS_NO_COMPRESSION = '-o ControlMaster=auto -o ControlPersist=60s'


def _yaml_str(value):
    return json.dumps(str(value))  # a JSON string is a YAML double-quoted scalar


def render_inventory(lab, addresses, key, known_hosts, control_dir, bridge, gateway, network, extra_groups=None):
    """The lab as an Ansible YAML inventory.

    Hosts sit in group lab_<name> (which carries the connection variables), in a group named
    after their stem (vault1, vault2 -> vault) and in the extra groups given (e.g. vault_servers)."""
    lab_group = 'lab_' + lab.replace('-', '_')
    ssh_args = '-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes' % known_hosts
    out = [
        '# Lab %s: systemd hosts (%d) on bridge %s (%s), made by tests/lab/hosts.py' % (
            lab, len(addresses), bridge, network),
        'all:',
        '  children:',
        '    %s:' % lab_group,
        '      hosts:',
    ]
    for host, address in addresses:
        out += ['        %s:' % host, '          ansible_host: %s' % _yaml_str(address)]
    out += [
        '      vars:',
        '        ansible_connection: ssh',
        '        ansible_user: root',
        '        ansible_python_interpreter: /usr/bin/python3',
        '        ansible_ssh_private_key_file: %s' % _yaml_str(key),
        '        ansible_ssh_common_args: %s' % _yaml_str(ssh_args),
        # Ansible's default ssh_args add -C: zlib over a local bridge costs the controller seconds of CPU for
        # every artifact copied (the bao binary alone is ~180 MB) and saves no time. The rest of the default stays.
        '        ansible_ssh_args: %s' % _yaml_str(SSH_ARGS_NO_COMPRESSION),
        '        ansible_control_path_dir: %s' % _yaml_str(control_dir),
        '        lab_name: %s' % _yaml_str(lab),
        '        lab_bridge: %s' % _yaml_str(bridge),
        '        lab_gateway: %s' % _yaml_str(gateway),
        '        lab_network: %s' % _yaml_str(network),
    ]
    groups = {}
    for host, _address in addresses:
        group = group_of(host)
        if group and group != lab_group:
            groups.setdefault(group, []).append(host)
    for group, members in (extra_groups or {}).items():
        groups.setdefault(group, [])
        groups[group] += [host for host in members if host not in groups[group]]
    for group in sorted(groups):
        out += ['    %s:' % group, '      hosts:']
        out += ['        %s: {}' % host for host in groups[group]]
    return '\n'.join(out) + '\n'


def parse_groups(specs, hosts):
    """Extra inventory groups from 'group=host1,host2' strings; every host must be in the lab."""
    groups = {}
    for spec in specs or ():
        group, sep, members = spec.partition('=')
        if not sep or not GROUP_NAME_RE.match(group):
            raise LabError('group: %r is not GROUP=HOST[,HOST...] with a group name of [a-z_][a-z0-9_]*' % spec)
        names = [m.strip() for m in members.split(',') if m.strip()]
        unknown = [m for m in names if m not in hosts]
        if unknown or not names:
            raise LabError('group %s: %s not among the lab hosts' % (group, ', '.join(unknown) or 'no host'))
        groups.setdefault(group, [])
        groups[group] += [m for m in names if m not in groups[group]]
    return groups


def cgroup_dirs(mountinfo, machine):
    """Where a host's nspawn process is placed before it starts: <hierarchy>/trustroot-lab/<machine> in
    the cgroup2 hierarchy and in the named v1 'systemd' hierarchy (the ones nspawn and systemd use).

    Started from the same cgroup, every nspawn would make the same <cgroup>/payload its container's
    root cgroup: the containers' systemd instances then create and delete each other's unit cgroups
    (units fail at random with status 219/CGROUP)."""
    dirs = []
    for line in mountinfo.splitlines():
        pre, _sep, post = line.partition(' - ')
        fields = post.split()
        if len(fields) < 3:
            continue
        fstype, options = fields[0], fields[2].split(',')
        if fstype == 'cgroup2' or (fstype == 'cgroup' and 'name=systemd' in options):
            dirs.append(os.path.join(pre.split()[4], CGROUP_PARENT, machine))
    return sorted(set(dirs))


def parse_proc_stat(text):
    """(state, ppid, starttime) from the text of /proc/<pid>/stat."""
    rest = text[text.rindex(')') + 2:].split()
    return rest[0], int(rest[1]), int(rest[19])


def parse_nspid(status_text):
    """The NSpid list of /proc/<pid>/status: [pid in our namespace, ..., pid in its own]."""
    for line in status_text.splitlines():
        if line.startswith('NSpid:'):
            return [int(x) for x in line.split()[1:]]
    return []


# ---------------------------------------------------------------------------------------------------
# Small system helpers

# Every host's systemd (PID 1 and its services) holds inotify instances of root's on this machine; Debian's
# default of 128 runs out with a few labs up at once ("Failed to allocate manager object: Too many open files").
INOTIFY_LIMITS = {'/proc/sys/fs/inotify/max_user_instances': 1024, '/proc/sys/fs/inotify/max_user_watches': 524288}


def raise_inotify_limits(limits=None):
    """Raise the machine's inotify limits to at least ``limits`` (never lowers one); returns what was raised."""
    raised = {}
    for path, wanted in (limits or INOTIFY_LIMITS).items():
        try:
            with open(path) as handle:
                current = int(handle.read().split()[0])
            if current < wanted:
                with open(path, 'w') as handle:
                    handle.write('%d\n' % wanted)
                raised[path] = (current, wanted)
                _log('%s raised from %d to %d' % (os.path.basename(path), current, wanted))
        except (OSError, ValueError, IndexError) as err:
            _log('cannot raise %s: %s' % (path, err))
    return raised


def _log(msg):
    sys.stderr.write('[lab %s] %s\n' % (time.strftime('%H:%M:%S'), msg))
    sys.stderr.flush()


def _tool(name):
    path = shutil.which(name, path=os.environ.get('PATH', '') + ':' + SYSTEM_PATH)
    if not path:
        raise LabError('%s is not installed (Debian packages: debootstrap systemd-container iproute2 '
                       'util-linux openssh-client)' % name)
    return path


def _run(argv, check=True, timeout=60, **kwargs):
    argv = [_tool(argv[0])] + list(argv[1:])
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                              timeout=timeout, check=False, **kwargs)
    except subprocess.TimeoutExpired:
        raise LabError('%s timed out after %ss' % (' '.join(argv), timeout))
    if check and proc.returncode != 0:
        raise LabError('%s failed (status %d): %s' % (' '.join(argv), proc.returncode,
                                                      (proc.stderr or proc.stdout).strip()))
    return proc


def _read(path, default=None):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return default


def _write(path, text, mode=0o644):
    tmp = '%s.tmp-%d' % (path, os.getpid())
    with open(tmp, 'w') as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def _write_json(path, data):
    _write(path, json.dumps(data, indent=2, sort_keys=True) + '\n')


def _read_json(path):
    text = _read(path)
    return json.loads(text) if text else None


def _write_into_root(root, relpath, text, mode=0o644, uid=0, gid=0):
    """Write a file inside a container root without following a symlink out of it."""
    parts = relpath.strip('/').split('/')
    current = root
    for part in parts[:-1]:
        current = os.path.join(current, part)
        if os.path.islink(current):
            raise LabError('%s is a symlink inside the host root; refusing to write through it' % current)
        if not os.path.isdir(current):
            os.mkdir(current, 0o755)
    target = os.path.join(current, parts[-1])
    if os.path.lexists(target):
        os.unlink(target)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, 'w') as handle:
        handle.write(text)
    os.chmod(target, mode)
    os.chown(target, uid, gid)


def proc_start_time(pid):
    """Start time of a live, non-zombie process (clock ticks since boot), else None."""
    if not pid:
        return None
    text = _read('/proc/%d/stat' % pid)
    if not text:
        return None
    state, _ppid, start = parse_proc_stat(text)
    if state in ('Z', 'X'):
        return None
    return start


def pid_alive(pid, start):
    """The process recorded as (pid, start time) still runs; a reused PID does not count."""
    return bool(pid) and start is not None and proc_start_time(pid) == start


def _signal(pid, start, sig):
    if pid_alive(pid, start):
        try:
            os.kill(pid, sig)
            return True
        except ProcessLookupError:
            pass
    return False


def _wait_gone(pid, start, timeout):
    deadline = time.monotonic() + timeout
    while pid_alive(pid, start):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _children(pid):
    kids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        text = _read('/proc/%s/stat' % entry)
        if text:
            try:
                if parse_proc_stat(text)[1] == pid:
                    kids.append(int(entry))
            except (ValueError, IndexError):
                continue
    return kids


def container_init(nspawn_pid):
    """PID (in our namespace) of the container's init: the child of nspawn that is PID 1 in its own
    PID namespace."""
    for kid in _children(nspawn_pid):
        nspid = parse_nspid(_read('/proc/%d/status' % kid, ''))
        if len(nspid) > 1 and nspid[-1] == 1:
            return kid
    return None


def mounts_under(directory):
    """Mount points at or below <directory>, deepest first (from /proc/self/mountinfo)."""
    directory = os.path.realpath(directory)
    found = []
    for line in (_read('/proc/self/mountinfo') or '').splitlines():
        point = line.split()[4].replace('\\040', ' ').replace('\\011', '\t').replace('\\012', '\n') \
            .replace('\\134', '\\')
        if point == directory or point.startswith(directory + '/'):
            found.append(point)
    return sorted(set(found), key=len, reverse=True)


def overlays_with_lower(lowerdir):
    """Mount points of overlays that use <lowerdir>, or a directory below it, as a lower directory."""
    lowerdir = os.path.realpath(lowerdir)
    found = []
    for line in (_read('/proc/self/mountinfo') or '').splitlines():
        pre, _sep, post = line.partition(' - ')
        fields = post.split()
        if not fields or fields[0] != 'overlay':
            continue
        for option in post.split(' ', 2)[-1].split(','):
            # Several lower directories are joined with ':' (a host booted from a layer).
            if option.startswith('lowerdir=') and any(
                    lower == lowerdir or lower.startswith(lowerdir + '/') for lower in option[9:].split(':')):
                found.append(pre.split()[4])
    return found


def link_info(name=None):
    """{name: ip -j link entry} of the machine's links."""
    argv = ['ip', '-j', 'link', 'show'] + ([name] if name else [])
    proc = _run(argv, check=False)
    if proc.returncode != 0:
        return {}
    return {entry['ifname']: entry for entry in json.loads(proc.stdout or '[]')}


def _machine_networks():
    nets = []
    for entry in json.loads(_run(['ip', '-j', '-4', 'addr', 'show']).stdout or '[]'):
        for info in entry.get('addr_info', []):
            nets.append('%s/%s' % (info['local'], info['prefixlen']))
    for route in json.loads(_run(['ip', '-j', '-4', 'route', 'show', 'table', 'all']).stdout or '[]'):
        dst = route.get('dst')
        if dst and dst != 'default' and dst != '0.0.0.0/0':
            nets.append(dst if '/' in dst else dst + '/32')
    return nets


def remove_cgroup_tree(path):
    """rmdir a cgroup and its children, leaves first; returns the cgroups that could not be removed
    (still holding processes)."""
    left = []
    if not os.path.isdir(path):
        return left
    for current, _dirs, _files in os.walk(path, topdown=False):
        try:
            os.rmdir(current)
        except OSError as err:
            if err.errno != errno.ENOENT:
                left.append(current)
    parent = os.path.dirname(path)
    if os.path.basename(parent) == CGROUP_PARENT:
        try:
            os.rmdir(parent)  # only when no other lab uses it
        except OSError:
            pass
    return left


@contextlib.contextmanager
def _flock(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'a') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def nsenter(pid, argv, timeout=60, check=False, all_namespaces=True):
    """Run argv inside the namespaces of the container whose init is <pid>."""
    ns = ['-a'] if all_namespaces else ['-n']
    env = {'PATH': SYSTEM_PATH, 'LANG': 'C.UTF-8', 'SYSTEMD_PAGER': '', 'SYSTEMD_COLORS': '0'}
    return _run(['nsenter', '-t', str(pid)] + ns + list(argv), check=check, timeout=timeout, env=env)


# ---------------------------------------------------------------------------------------------------
# The cached rootfs

def machine_apt_files():
    files = {}
    for path in ['/etc/apt/sources.list'] + sorted(glob.glob('/etc/apt/sources.list.d/*.list')) + \
            sorted(glob.glob('/etc/apt/sources.list.d/*.sources')):
        text = _read(path)
        if text:
            files[path] = text
    return files


def find_mirror():
    mirror = os.environ.get('TRUSTROOT_LAB_MIRROR')
    if mirror:
        return mirror.rstrip('/')
    mirror = pick_mirror(parse_apt_sources(machine_apt_files()))
    if not mirror:
        raise LabError('no Debian mirror for %s found in /etc/apt/sources.list or /etc/apt/sources.list.d; '
                       'set TRUSTROOT_LAB_MIRROR' % SUITE)
    return mirror


def customize_rootfs(root):
    """What every host shares, applied once to the cached rootfs after debootstrap."""
    for key in glob.glob(os.path.join(root, 'etc/ssh/ssh_host_*')):
        os.unlink(key)  # each host gets its own, generated when the lab is created
    _write_into_root(root, 'etc/ssh/sshd_config.d/10-lab.conf', render_sshd_config())
    _write_into_root(root, 'etc/machine-id', '', mode=0o444)  # each host gets its own
    dbus_id = os.path.join(root, 'var/lib/dbus/machine-id')
    if os.path.lexists(dbus_id):
        os.unlink(dbus_id)
    os.symlink('/etc/machine-id', dbus_id)
    _write_into_root(root, 'etc/hostname', 'debian\n')
    _write_into_root(root, 'etc/hosts', render_etc_hosts([]))
    _write_into_root(root, 'etc/resolv.conf', '# Lab hosts have no DNS: names of lab hosts are in /etc/hosts.\n')
    for unit in MASKED_UNITS:
        path = os.path.join(root, 'etc/systemd/system', unit)
        if os.path.lexists(path):
            os.unlink(path)
        os.symlink('/dev/null', path)
    for unit in DISABLED_UNITS:
        for link in glob.glob(os.path.join(root, 'etc/systemd/system/*.wants', unit)):
            os.unlink(link)
    ssh_dir = os.path.join(root, 'root/.ssh')
    os.makedirs(ssh_dir, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    for deb in glob.glob(os.path.join(root, 'var/cache/apt/archives/*.deb')):
        os.unlink(deb)


def rootfs_ready(path):
    stamp = _read_json(path + '.stamp') or {}
    return stamp.get('hash') == rootfs_stamp() and os.path.isfile(os.path.join(path, 'usr/lib/systemd/systemd'))


def ensure_rootfs(path=None, mirror=None):
    """The cached Debian rootfs, built with debootstrap when missing or made from another package
    list (<path>.stamp holds the hash). Several processes may call this at once: one builds."""
    path = os.path.realpath(path or default_rootfs())
    validate_lab_path(path, 'rootfs')
    if rootfs_ready(path):
        return path
    with _flock(path + '.lock'):
        if rootfs_ready(path):
            return path
        in_use = overlays_with_lower(path)
        if in_use:
            raise LabError('rootfs %s is out of date but labs still use it (%s): destroy them first'
                           % (path, ', '.join(in_use)))
        mirror = mirror or find_mirror()
        tmp = '%s.build' % path
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        log_path = path + '.debootstrap.log'
        _log('building the %s rootfs in %s from %s (a few minutes, once; log: %s)' % (SUITE, path, mirror, log_path))
        started = time.monotonic()
        with open(log_path, 'w') as log:
            proc = subprocess.run([_tool('debootstrap'), '--variant=minbase', '--components=main',
                                   '--include=' + ','.join(PACKAGES), SUITE, tmp, mirror],
                                  stdout=log, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            raise LabError('debootstrap failed with status %d: see %s' % (proc.returncode, log_path))
        customize_rootfs(tmp)
        if os.path.exists(path):
            old = '%s.old-%d' % (path, os.getpid())
            os.rename(path, old)
            shutil.rmtree(old)
        os.rename(tmp, path)
        _write_json(path + '.stamp', {'hash': rootfs_stamp(), 'suite': SUITE, 'packages': list(PACKAGES),
                                      'layout': ROOTFS_LAYOUT, 'mirror': mirror,
                                      'built_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())})
        _log('rootfs ready in %.0fs' % (time.monotonic() - started))
    return path


# ---------------------------------------------------------------------------------------------------
# Labs

def _registry_path(name):
    return os.path.join(run_dir(), name)


def find_lab_dir(name, directory=None):
    if directory:
        return os.path.abspath(directory)
    link = _registry_path(name)
    if os.path.islink(link):
        return os.readlink(link)
    return default_lab_dir(name)


class Lab(object):
    """A lab of systemd hosts, loaded from its state file (see Lab.create)."""

    def __init__(self, directory):
        self.dir = os.path.abspath(directory)
        self.state = _read_json(self.state_path)
        if not self.state or self.state.get('format') != STATE_FORMAT:
            raise LabError('no lab state at %s' % self.state_path)

    # --- paths and lookups -----------------------------------------------------------------------
    @property
    def state_path(self):
        return os.path.join(self.dir, 'state.json')

    @property
    def name(self):
        return self.state['name']

    @property
    def hosts(self):
        return [h['name'] for h in self.state['hosts']]

    @property
    def addresses(self):
        return [(h['name'], h['address']) for h in self.state['hosts']]

    def address(self, host):
        return dict(self.addresses)[host]

    @property
    def key(self):
        return self.state['ssh']['key']

    @property
    def known_hosts(self):
        return self.state['ssh']['known_hosts']

    @property
    def inventory_path(self):
        return os.path.join(self.dir, 'inventory.yml')

    def host_dir(self, host):
        return os.path.join(self.dir, 'hosts', host)

    def runtime(self, host):
        return _read_json(os.path.join(self.host_dir(host), 'runtime.json')) or {}

    def init_pid(self, host):
        """PID of the host's systemd (container init) while it runs, else None."""
        rt = self.runtime(host)
        if pid_alive(rt.get('leader_pid'), rt.get('leader_start')):
            return rt['leader_pid']
        return None

    @classmethod
    def load(cls, name, directory=None):
        return cls(find_lab_dir(validate_lab_name(name), directory))

    def _save(self):
        _write_json(self.state_path, self.state)

    # --- create ------------------------------------------------------------------------------------
    @classmethod
    def create(cls, name, hosts, directory=None, rootfs=None, timeout=120, keep_on_failure=False, groups=None,
               layer=None):
        """Create and boot a lab; returns it once every host runs systemd and answers SSH.

        groups: extra inventory groups, {group: [host, ...]} or ['group=host1,host2', ...].
        layer: boot some hosts on top of a kept install instead of the bare rootfs: {'network_index': n,
            'addresses': {host: address}, 'uppers': {host: directory}}. Those hosts get the layer's subnet and
            addresses (their configuration names them), and each one's overlay stacks its kept upper directory
            (read-only) on the rootfs under a fresh upper directory; hosts not in the layer boot bare."""
        started = time.monotonic()
        name = validate_lab_name(name)
        hosts = validate_host_names(hosts)
        if not isinstance(groups, dict):
            groups = parse_groups(groups, hosts)
        directory = os.path.abspath(directory or default_lab_dir(name))
        validate_lab_path(directory)
        if os.geteuid() != 0:
            raise LabError('creating a lab needs root (mounts, links, systemd-nspawn)')
        for tool in ('systemd-nspawn', 'nsenter', 'ip', 'mount', 'umount', 'ssh', 'ssh-keygen'):
            _tool(tool)
        raise_inotify_limits()
        rootfs = ensure_rootfs(rootfs)
        t_rootfs = time.monotonic()
        if os.path.exists(os.path.join(directory, 'state.json')):
            old = _read_json(os.path.join(directory, 'state.json')) or {}
            if not old.get('destroyed'):
                raise LabError('dir: a lab already exists in %s (destroy it first)' % directory)
        os.makedirs(directory, exist_ok=True)
        state = {'format': STATE_FORMAT, 'name': name, 'dir': directory, 'rootfs': rootfs, 'layer': layer,
                 'created_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'destroyed': False,
                 'bridge': None, 'hosts': [], 'supervisor': None, 'ssh': {}, 'timings': {}, 'groups': groups}
        _write_json(os.path.join(directory, 'state.json'), state)
        lab = cls(directory)
        try:
            lab._create(hosts, timeout, layer)
        except BaseException:
            if keep_on_failure:
                _log('creation failed; lab left as it is in %s' % directory)
            else:
                _log('creation failed; removing what was made')
                try:
                    lab.destroy(keep_files=True)
                except Exception as err:  # report the first failure, not the cleanup's
                    _log('cleanup after failed creation: %s' % err)
            raise
        lab.state['timings'] = {'rootfs_s': round(t_rootfs - started, 2),
                                'total_s': round(time.monotonic() - started, 2),
                                'boot_s': lab.state['timings'].get('boot_s')}
        lab._save()
        return lab

    def _create(self, hosts, timeout, layer=None):
        name = self.name
        # 1. Name and bridge/subnet, under the machine-wide lock.
        with _flock(os.path.join(run_dir(), '.lock')):
            link = _registry_path(name)
            if os.path.lexists(link):
                other = os.readlink(link) if os.path.islink(link) else link
                raise LabError('name: lab %r already exists (%s): destroy it first' % (name, other))
            used = used_network_indexes(link_info().keys(), _machine_networks())
            while True:
                index = layer['network_index'] if layer else pick_network_index(used)
                bridge = bridge_name(index)
                if layer and index in used:
                    raise LabError('layer: subnet %s (index %d) is in use in this network namespace, and the '
                                   "layer's hosts need it: destroy the lab that holds it" % (lab_network(index), index))
                proc = _run(['ip', 'link', 'add', bridge, 'type', 'bridge'], check=False)
                if proc.returncode == 0:
                    break
                if 'exists' not in proc.stderr or layer:
                    raise LabError('ip link add %s type bridge failed: %s' % (bridge, proc.stderr.strip()))
                used.add(index)
            info = link_info(bridge)[bridge]
            self.state['bridge'] = {'name': bridge, 'ifindex': info['ifindex'], 'index': index,
                                    'network': str(lab_network(index)), 'address': gateway_address(index)}
            self._save()
            os.symlink(self.dir, link)
            self.state['registry'] = link
            self._save()
        _run(['ip', 'addr', 'add', '%s/24' % gateway_address(index), 'dev', bridge])
        # Hosts talk to each other and to the machine; nothing arriving on the bridge is routed on.
        with open('/proc/sys/net/ipv4/conf/%s/forwarding' % bridge, 'w') as handle:
            handle.write('0\n')
        _run(['ip', 'link', 'set', bridge, 'up'])

        # 2. The lab's SSH key.
        ssh_dir = os.path.join(self.dir, 'ssh')
        os.makedirs(os.path.join(ssh_dir, 'cp'), exist_ok=True)
        os.chmod(ssh_dir, 0o700)
        key = os.path.join(ssh_dir, 'id_ed25519')
        for path in (key, key + '.pub'):
            if os.path.exists(path):
                os.unlink(path)
        _run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'lab-%s' % name, '-f', key])
        pubkey = _read(key + '.pub')
        known_hosts = os.path.join(ssh_dir, 'known_hosts')
        self.state['ssh'] = {'key': key, 'known_hosts': known_hosts, 'config': os.path.join(ssh_dir, 'config'),
                             'control_dir': os.path.join(ssh_dir, 'cp')}

        # 3. One overlay per host, with its identity written through the mount.
        uppers = (layer or {}).get('uppers') or {}
        addresses = host_addresses(index, hosts, fixed=(layer or {}).get('addresses'))
        host_keys = {}
        for host, address in addresses:
            hdir = self.host_dir(host)
            root = os.path.join(hdir, 'root')
            if os.path.exists(hdir):
                if mounts_under(hdir):
                    raise LabError('%s still has mounts' % hdir)
                shutil.rmtree(hdir)
            for sub in ('upper', 'work', 'root'):
                os.makedirs(os.path.join(hdir, sub))
            entry = {'name': host, 'address': address, 'machine': machine_name(name, host), 'root': root}
            self.state['hosts'].append(entry)
            self._save()
            lower = ([validate_lab_path(uppers[host], 'layer')] if host in uppers else []) + [self.state['rootfs']]
            _run(['mount', '-t', 'overlay', 'overlay', '-o', 'lowerdir=%s,upperdir=%s,workdir=%s' % (
                ':'.join(lower), os.path.join(hdir, 'upper'), os.path.join(hdir, 'work')), root])
            _write_into_root(root, 'etc/hostname', host + '\n')
            _write_into_root(root, 'etc/hosts', render_etc_hosts(addresses))
            _write_into_root(root, 'etc/machine-id', os.urandom(16).hex() + '\n', mode=0o444)
            _write_into_root(root, 'root/.ssh/authorized_keys', pubkey, mode=0o600)
            os.chmod(os.path.join(root, 'root/.ssh'), 0o700)
            hostkey = os.path.join(root, 'etc/ssh/ssh_host_ed25519_key')
            for old in (hostkey, hostkey + '.pub'):  # a host booted from a layer has the layer's
                if os.path.lexists(old):
                    os.unlink(old)
            _run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'root@%s' % host, '-f', hostkey])
            host_keys[host] = _read(hostkey + '.pub')

        _write(known_hosts, render_known_hosts(addresses, host_keys))
        _write(self.state['ssh']['config'], render_ssh_config(addresses, key, known_hosts))
        _write(self.inventory_path, self.inventory())
        self._save()

        # 4. The supervisor boots every host (and boots again those that reboot).
        boot_started = time.monotonic()
        log = open(os.path.join(self.dir, 'supervisor.log'), 'a')
        try:
            proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), '_supervise', '--dir', self.dir],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True, cwd='/')
        finally:
            log.close()
        start = None
        for _attempt in range(100):
            start = proc_start_time(proc.pid)
            if start is not None:
                break
            time.sleep(0.01)
        self.state['supervisor'] = {'pid': proc.pid, 'start': start}
        self._save()
        self._popen = proc  # keeps the child reapable by this process
        self.wait_ready(timeout=timeout)
        self.state['timings']['boot_s'] = round(time.monotonic() - boot_started, 2)
        self._save()

    # --- readiness ---------------------------------------------------------------------------------
    def wait_ready(self, hosts=None, timeout=120, min_boot=1):
        """Wait until each host is up (boot count >= min_boot, address set), systemd reports running
        (or degraded, logged with its failed units) and SSH logs in. Returns {host: system state}."""
        hosts = hosts or self.hosts
        results, errors = {}, {}

        def one(host):
            try:
                results[host] = self._wait_host(host, time.monotonic() + timeout, min_boot)
            except Exception as err:  # collected and raised below
                errors[host] = err

        threads = [threading.Thread(target=one, args=(h,)) for h in hosts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise LabError('; '.join('%s: %s' % (h, errors[h]) for h in sorted(errors)))
        return results

    def _wait_host(self, host, deadline, min_boot):
        def remaining():
            left = deadline - time.monotonic()
            if left <= 0:
                raise LabError('not ready in time; console: %s' % self._console_tail(host))
            return left

        while True:
            rt = self.runtime(host)
            if rt.get('state') in ('stopped', 'failed'):
                raise LabError('container exited with status %s%s; console: %s' % (
                    rt.get('exit_status'), ' (%s)' % rt['error'] if rt.get('error') else '', self._console_tail(host)))
            if rt.get('state') == 'up' and rt.get('boot', 0) >= min_boot and self.init_pid(host):
                break
            if not self.supervisor_alive():
                raise LabError('the lab supervisor is not running (see %s)' % os.path.join(self.dir, 'supervisor.log'))
            remaining()
            time.sleep(0.05)
        pid = rt['leader_pid']
        while True:
            out = nsenter(pid, ['systemctl', 'is-system-running'], timeout=min(10, remaining())).stdout.strip()
            if out in ('running', 'degraded'):
                break
            remaining()
            time.sleep(0.1)
        if out == 'degraded':
            failed = nsenter(pid, ['systemctl', '--failed', '--plain', '--no-legend']).stdout.strip()
            _log('%s: systemd is degraded; failed units: %s' % (host, failed.replace('\n', '; ')))
        address = self.address(host)
        while True:
            try:
                with socket.create_connection((address, 22), timeout=min(2, remaining())):
                    break
            except OSError:
                remaining()
                time.sleep(0.1)
        while True:
            try:
                if self.ssh(host, 'true', timeout=min(20, remaining())).returncode == 0:
                    break
            except LabError:  # an ssh that timed out
                pass
            remaining()
            time.sleep(0.2)
        return out

    def _console_tail(self, host, lines=15):
        text = re.sub(r'\x1b\[[0-9;]*m', '', _read(os.path.join(self.host_dir(host), 'console.log'), ''))
        return ' | '.join(line for line in text.strip().splitlines()[-lines:] if line.strip())

    def supervisor_alive(self):
        sup = self.state.get('supervisor') or {}
        return pid_alive(sup.get('pid'), sup.get('start'))

    # --- use ---------------------------------------------------------------------------------------
    def ssh_argv(self, host, strict=True):
        """ssh command line (up to and including the destination) for a host of the lab."""
        opts = ['-F', '/dev/null', '-i', self.key, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
                '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR']
        if strict:
            opts += ['-o', 'UserKnownHostsFile=%s' % self.known_hosts, '-o', 'StrictHostKeyChecking=yes']
        else:
            opts += ['-o', 'UserKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=no']
        return ['ssh'] + opts + ['root@%s' % self.address(host)]

    def ssh(self, host, command, timeout=60, check=False):
        return _run(self.ssh_argv(host) + [command], check=check, timeout=timeout)

    def exec(self, host, argv, timeout=60, check=False):
        """Run argv in the host through nsenter (no SSH needed)."""
        pid = self.init_pid(host)
        if not pid:
            raise LabError('%s is not running' % host)
        return nsenter(pid, argv, timeout=timeout, check=check)

    def reboot(self, host, timeout=120):
        """Reboot a host from inside and wait until it is back."""
        boot = self.runtime(host).get('boot', 0)
        self.exec(host, ['systemctl', 'reboot'], check=True)
        return self.wait_ready([host], timeout=timeout, min_boot=boot + 1)[host]

    def inventory(self):
        bridge = self.state['bridge']
        ssh = self.state['ssh']
        return render_inventory(self.name, self.addresses, ssh['key'], ssh['known_hosts'], ssh['control_dir'],
                                bridge['name'], bridge['address'], bridge['network'], self.state.get('groups'))

    def status(self):
        bridge = self.state.get('bridge') or {}
        out = {'name': self.name, 'dir': self.dir, 'destroyed': self.state.get('destroyed', False),
               'bridge': bridge.get('name'), 'network': bridge.get('network'),
               'supervisor_running': self.supervisor_alive(), 'inventory': self.inventory_path,
               'ssh_key': (self.state.get('ssh') or {}).get('key'), 'hosts': []}
        for entry in self.state['hosts']:
            rt = self.runtime(entry['name'])
            pid = self.init_pid(entry['name'])
            system = None
            if pid:
                system = nsenter(pid, ['systemctl', 'is-system-running'], timeout=10).stdout.strip() or None
            out['hosts'].append({'name': entry['name'], 'address': entry['address'], 'state': rt.get('state'),
                                 'boot': rt.get('boot'), 'system': system, 'init_pid': pid,
                                 'nspawn_pid': rt.get('nspawn_pid'), 'veth': rt.get('veth'),
                                 'exits': rt.get('exits', [])})
        return out

    # --- destroy -----------------------------------------------------------------------------------
    def destroy(self, keep_files=False, timeout=60):
        """Stop every process, unmount every overlay, delete the links this lab made. Idempotent.
        Returns what was done: {'stopped': [...], 'killed': [...], 'unmounted': [...], 'deleted_links': [...]}."""
        done = {'stopped': [], 'killed': [], 'removed_cgroups': [], 'unmounted': [], 'deleted_links': []}
        sup = self.state.get('supervisor') or {}
        runtimes = {h: self.runtime(h) for h in self.hosts}
        # Processes: the supervisor turns SIGTERM into a clean shutdown of every container (nspawn
        # sends SIGRTMIN+3 to the container's systemd, which halts) and then exits.
        if _signal(sup.get('pid'), sup.get('start'), signal.SIGTERM):
            if _wait_gone(sup['pid'], sup['start'], timeout):
                done['stopped'].append('supervisor %d' % sup['pid'])
        for host, rt in runtimes.items():
            for kind in ('nspawn', 'leader'):
                pid, start = rt.get(kind + '_pid'), rt.get(kind + '_start')
                if pid_alive(pid, start):
                    if kind == 'nspawn' and _signal(pid, start, signal.SIGTERM) and _wait_gone(pid, start, 15):
                        done['stopped'].append('%s %s %d' % (host, kind, pid))
                        continue
                    if _signal(pid, start, signal.SIGKILL):
                        _wait_gone(pid, start, 10)
                        done['killed'].append('%s %s %d' % (host, kind, pid))
        if _signal(sup.get('pid'), sup.get('start'), signal.SIGKILL):
            _wait_gone(sup['pid'], sup['start'], 10)
            done['killed'].append('supervisor %d' % sup['pid'])
        popen = getattr(self, '_popen', None)
        if popen is not None:
            popen.poll()
        for host, rt in runtimes.items():
            for cgroup in rt.get('cgroups', []):
                if os.path.isdir(cgroup):
                    left = remove_cgroup_tree(cgroup)
                    if left:
                        raise LabError('cgroups of %s still hold processes: %s' % (host, ', '.join(left)))
                    done['removed_cgroups'].append(cgroup)
        # SSH connection masters Ansible left in the lab's control directory.
        control_dir = (self.state.get('ssh') or {}).get('control_dir')
        for sock in glob.glob(os.path.join(control_dir, '*')) if control_dir else []:
            _run(['ssh', '-o', 'ControlPath=%s' % sock, '-O', 'exit', 'lab'], check=False, timeout=10)
            with contextlib.suppress(FileNotFoundError):  # the exiting master may remove it meanwhile
                os.unlink(sock)
        # Mounts: only those under this lab's directory, deepest first.
        for point in mounts_under(self.dir):
            proc = _run(['umount', point], check=False)
            for _attempt in range(50):
                if proc.returncode == 0 or point not in mounts_under(self.dir):
                    break
                time.sleep(0.1)
                proc = _run(['umount', point], check=False)
            if point in mounts_under(self.dir):
                _log('umount %s: %s; detaching it lazily' % (point, proc.stderr.strip()))
                _run(['umount', '--lazy', point], check=False)
            done['unmounted'].append(point)
        # Links: veths recorded by the supervisor (normally gone with their container) and our bridge.
        links = link_info()
        for host, rt in runtimes.items():
            veth = rt.get('veth')
            if veth and veth in links and links[veth].get('ifindex') == rt.get('veth_ifindex'):
                _run(['ip', 'link', 'del', veth], check=False)
                done['deleted_links'].append(veth)
        bridge = self.state.get('bridge') or {}
        if bridge.get('name') in links and links[bridge['name']].get('ifindex') == bridge.get('ifindex'):
            _run(['ip', 'link', 'del', bridge['name']])
            done['deleted_links'].append(bridge['name'])
        for entry in self.state['hosts']:
            propagate = '/run/systemd/nspawn/propagate/%s' % entry['machine']
            if os.path.isdir(propagate) and not os.listdir(propagate):
                os.rmdir(propagate)
        link = self.state.get('registry')
        if link and os.path.islink(link) and os.readlink(link) == self.dir:
            os.unlink(link)
        self.state['destroyed'] = True
        self._save()
        leftover = mounts_under(self.dir)
        if leftover:
            raise LabError('mounts left under %s: %s' % (self.dir, ', '.join(leftover)))
        if not keep_files:
            shutil.rmtree(self.dir)
        return done


def destroy(name, directory=None, keep_files=False):
    """Destroy a lab by name (or directory); a lab that is not there is not an error."""
    directory = find_lab_dir(validate_lab_name(name), directory)
    try:
        lab = Lab(directory)
    except LabError:
        link = _registry_path(name)
        if os.path.islink(link) and os.readlink(link) == directory:
            os.unlink(link)
        return None
    return lab.destroy(keep_files=keep_files)


# ---------------------------------------------------------------------------------------------------
# The supervisor: one process per lab, one thread per host

class _HostRunner(object):
    def __init__(self, lab_dir, state, entry, stop):
        self.state = state
        self.entry = entry
        self.stop = stop
        self.host = entry['name']
        self.hdir = os.path.join(lab_dir, 'hosts', self.host)
        self.proc = None
        self.lock = threading.RLock()
        self.halt = threading.Event()  # this host only: no boot again
        self.rt = {'boot': 0, 'state': 'new', 'exits': []}

    def _save(self, **changes):
        self.rt.update(changes)
        _write_json(os.path.join(self.hdir, 'runtime.json'), self.rt)

    def terminate(self):
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)

    def run(self):
        bridge = self.state['bridge']
        nspawn = nspawn_command(self.entry['root'], self.entry['machine'], self.host, bridge['name'],
                                nspawn=_tool('systemd-nspawn'))
        cgroups = cgroup_dirs(_read('/proc/self/mountinfo', ''), self.entry['machine'])
        # The shell joins the host's own cgroups, then becomes nspawn (same PID).
        script = ''.join('echo $$ > %s/cgroup.procs && ' % d for d in cgroups) + 'exec "$@"'
        argv = ['/bin/sh', '-c', script, 'nspawn'] + nspawn
        self.rt['cgroups'] = cgroups
        while not (self.stop.is_set() or self.halt.is_set()):
            boot = self.rt['boot'] + 1
            for cgroup in cgroups:
                remove_cgroup_tree(cgroup)  # what the last boot left behind
                os.makedirs(cgroup, exist_ok=True)
            with open(os.path.join(self.hdir, 'console.log'), 'a') as console:
                console.write('=== boot %d at %s\n' % (boot, time.strftime('%Y-%m-%d %H:%M:%S')))
                console.flush()
                with self.lock:
                    if self.stop.is_set():
                        break
                    self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console,
                                                 stderr=subprocess.STDOUT, close_fds=True)
            self._save(boot=boot, state='booting', nspawn_pid=self.proc.pid,
                       nspawn_start=proc_start_time(self.proc.pid), leader_pid=None, leader_start=None)
            try:
                self._configure(boot)
            except Exception as err:  # a host without its address is of no use: shut it down
                _log('%s: boot %d: %s' % (self.host, boot, err))
                self._save(error='boot %d: %s' % (boot, err))
                self.halt.set()
                self.terminate()
            status = self.proc.wait()
            self.rt['exits'].append({'boot': boot, 'status': status, 'at': time.strftime('%H:%M:%S')})
            _log('%s: boot %d ended with status %d' % (self.host, boot, status))
            if status == REBOOT_EXIT_STATUS and not (self.stop.is_set() or self.halt.is_set()):
                self._save(state='rebooting', leader_pid=None, leader_start=None)
                continue
            failed = status != 0 and not self.stop.is_set() or self.halt.is_set()
            self._save(state='failed' if failed else 'stopped', exit_status=status,
                       leader_pid=None, leader_start=None)
            return
        self._save(state='stopped')

    def _configure(self, boot):
        """Find the container's init, then give host0 its address and route from outside."""
        deadline = time.monotonic() + 60
        leader = None
        while leader is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise LabError('no container init appeared')
            leader = container_init(self.proc.pid)
            if leader is None:
                time.sleep(0.02)
        self._save(leader_pid=leader, leader_start=proc_start_time(leader))
        while True:
            proc = nsenter(leader, ['ip', '-j', 'link', 'show', 'host0'], all_namespaces=False, timeout=10)
            if proc.returncode == 0:
                host0 = json.loads(proc.stdout)[0]
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise LabError('host0 did not appear in the container')
            time.sleep(0.02)
        address, gateway = self.entry['address'], self.state['bridge']['address']
        nsenter(leader, ['ip', 'addr', 'add', '%s/24' % address, 'dev', 'host0'], all_namespaces=False, check=True)
        nsenter(leader, ['ip', 'link', 'set', 'host0', 'up'], all_namespaces=False, check=True)
        nsenter(leader, ['ip', 'route', 'add', 'default', 'via', gateway], all_namespaces=False, check=True)
        veth = None
        for name, info in link_info().items():
            if info.get('ifindex') == host0.get('link_index'):
                veth = (name, info['ifindex'])
        self._save(state='up', veth=veth[0] if veth else None, veth_ifindex=veth[1] if veth else None)
        _log('%s: boot %d up (init %d, %s on %s)' % (self.host, boot, leader, address, veth[0] if veth else '?'))


def supervise(lab_dir):
    state = _read_json(os.path.join(lab_dir, 'state.json'))
    stop = threading.Event()
    runners = [_HostRunner(lab_dir, state, entry, stop) for entry in state['hosts']]

    def on_signal(signum, _frame):
        _log('signal %d: shutting every host down' % signum)
        stop.set()
        for runner in runners:
            runner.terminate()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    threads = [threading.Thread(target=r.run, name=r.host) for r in runners]
    for thread in threads:
        thread.start()
    _log('supervising %d hosts of lab %s' % (len(runners), state['name']))
    deadline = None
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(0.2)
        if stop.is_set():
            deadline = deadline or time.monotonic() + 30
            if time.monotonic() > deadline:
                for runner in runners:
                    with runner.lock:
                        if runner.proc is not None and runner.proc.poll() is None:
                            runner.proc.kill()
                deadline = time.monotonic() + 30
    _log('every host has stopped')
    return 0


# ---------------------------------------------------------------------------------------------------
# CLI

def _cli_create(args):
    lab = Lab.create(args.name, args.hosts, directory=args.dir, timeout=args.timeout,
                     keep_on_failure=args.keep_on_failure, groups=args.group)
    timings = lab.state['timings']
    print('lab %s: %d hosts up in %.1fs (boot %.1fs) on %s %s' % (
        lab.name, len(lab.hosts), timings['total_s'], timings['boot_s'], lab.state['bridge']['name'],
        lab.state['bridge']['network']))
    for host, address in lab.addresses:
        print('  %-20s %s' % (host, address))
    print('inventory: %s' % lab.inventory_path)
    print('ssh:       ssh -F %s <host>' % lab.state['ssh']['config'])
    return 0


def _cli_destroy(args):
    done = destroy(args.name, directory=args.dir, keep_files=args.keep_files)
    if done is None:
        print('lab %s: nothing to destroy' % args.name)
    else:
        print('lab %s destroyed: %s' % (args.name, json.dumps(done)))
    return 0


def _cli_status(args):
    status = Lab.load(args.name, args.dir).status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print('lab %s (%s): bridge %s %s, supervisor %s%s' % (
        status['name'], status['dir'], status['bridge'], status['network'],
        'running' if status['supervisor_running'] else 'not running',
        ', destroyed' if status['destroyed'] else ''))
    for host in status['hosts']:
        print('  %-20s %-15s %-10s boot %-3s systemd %s' % (
            host['name'], host['address'], host['state'], host['boot'], host['system']))
    return 0


def _cli_inventory(args):
    sys.stdout.write(Lab.load(args.name, args.dir).inventory())
    return 0


def _cli_rootfs(args):
    print(ensure_rootfs(args.path))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True)
    create = sub.add_parser('create', help='create and boot a lab')
    create.add_argument('--name', required=True)
    create.add_argument('--hosts', required=True, help='comma-separated host names')
    create.add_argument('--dir', help='lab directory (default .lab/<name> in the checkout)')
    create.add_argument('--timeout', type=float, default=120, help='seconds for every host to be ready')
    create.add_argument('--keep-on-failure', action='store_true', help='leave a failed lab for inspection')
    create.add_argument('--group', action='append', metavar='GROUP=HOST[,HOST...]',
                        help='an extra inventory group (repeatable), e.g. vault_servers=vault1,vault2,vault3')
    for name, helptext in (('destroy', 'stop and remove a lab'), ('status', 'show a lab'),
                           ('inventory', 'print the Ansible inventory of a lab')):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument('--name', required=True)
        cmd.add_argument('--dir', help='lab directory (default: where the lab of that name was created)')
        if name == 'destroy':
            cmd.add_argument('--keep-files', action='store_true', help='keep the lab directory (logs, disks)')
        if name == 'status':
            cmd.add_argument('--json', action='store_true')
    rootfs = sub.add_parser('rootfs', help='build the cached rootfs if missing or outdated')
    rootfs.add_argument('--path', help='rootfs directory (default %s)' % default_rootfs())
    supervise_cmd = sub.add_parser('_supervise')
    supervise_cmd.add_argument('--dir', required=True)
    args = parser.parse_args(argv)
    if args.command == '_supervise':
        return supervise(args.dir)
    handlers = {'create': _cli_create, 'destroy': _cli_destroy, 'status': _cli_status,
                'inventory': _cli_inventory, 'rootfs': _cli_rootfs}
    try:
        return handlers[args.command](args)
    except LabError as err:
        sys.stderr.write('error: %s\n' % err)
        return 1


if __name__ == '__main__':
    sys.exit(main())

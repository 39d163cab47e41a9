"""Converged installs kept as read-only overlay layers: a lab test starts from an installed stack in seconds.

A layer is made once for the code that makes it. install.yml runs on fresh lab hosts at a subnet kept for layers
(their configuration names their addresses), the hosts are shut down cleanly (raft, the SPIRE datastore and its keys
closed on disk), and each host's overlay upper directory is kept, with the controller-side files of the stack (age
key, init material, lab CA) and the output of that install. A lab booted from the layer stacks the kept directory,
read-only, under a fresh upper directory of its own: what a test changes is thrown away with its lab.

A layer is keyed by a hash of everything the install depends on: the collection's roles, plugins, playbooks and
meta, the binaries installed (their sha256 in .cache/artifacts.json), the lab rootfs (its stamp), the lab variables
(tests/lab/stack.py), the Python requirements and this file. A layer made by other code has another key and is never
used; it is rebuilt, and the old one removed once no lab uses it.

    python -m tests.lab.layers key [--name stack]      # the key the current code gives
    python -m tests.lab.layers build [--name stack]    # make it now (what the first test that needs it would do)
    python -m tests.lab.layers list
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import sys
import time

from tests.lab import hosts as labhosts
from tests.lab.common import ROOT

LAYER_FORMAT = 'trustroot.ops/lab-layer/v1'
LAYERS_DIR = os.path.join(ROOT, '.cache', 'layers')
# What install.yml depends on, relative to the checkout: directories are walked, files read.
INPUTS = ('roles', 'plugins', 'playbooks', 'meta', 'galaxy.yml', 'requirements.txt', 'requirements-dev.txt',
          'tests/lab/stack.py', 'tests/lab/layers.py', '.cache/artifacts.json')
# An agent's X.509 SVID lives default_x509_svid_ttl (1h) and an agent that attested with a join token cannot
# attest again: a layer older than this is made anew, so its agents boot with an SVID they can still renew.
MAX_AGE_S = 40 * 60

# name -> the inventory groups installed and the subnet index the layer's hosts keep (one of
# hosts.LAYER_NETWORK_INDEXES, which no other lab takes).
DEFINITIONS = {
    'stack': {'groups': {'vault_servers': ['vault1', 'vault2', 'vault3'], 'spire_servers': ['spire-server1'],
                         'spire_agents': ['spire-agent1', 'spire-agent2']},
              'network_index': 250},
    # The same hosts on the releases before the current ones (OpenBao, SPIRE): what the rolling upgrade test upgrades.
    'stack-previous': {'groups': {'vault_servers': ['vault1', 'vault2', 'vault3'], 'spire_servers': ['spire-server1'],
                                  'spire_agents': ['spire-agent1', 'spire-agent2']},
                       'release': 'previous', 'network_index': 249},
}


class LayerError(Exception):
    """A layer could not be made or used; the message says which and why."""


# ---------------------------------------------------------------------------------------------------
# The key (pure but for reading files; unit-tested in tests/unit/lab)

def input_files(root, inputs=INPUTS):
    """Sorted relative paths of every file the key covers (compiled Python and caches left out)."""
    out = []
    for item in inputs:
        path = os.path.join(root, item)
        if os.path.isfile(path):
            out.append(item)
            continue
        for current, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d != '__pycache__')
            for name in files:
                if not name.endswith(('.pyc', '.pyo')):
                    out.append(os.path.relpath(os.path.join(current, name), root))
    return sorted(out)


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def layer_key(name, root=ROOT, inputs=INPUTS, rootfs_stamp=None, definitions=None):
    """sha256 over the layer's definition, the rootfs stamp and (path, sha256) of every input file."""
    definition = (definitions or DEFINITIONS)[name]
    digest = hashlib.sha256()
    digest.update(json.dumps({'format': LAYER_FORMAT, 'name': name, 'definition': definition,
                              'rootfs': rootfs_stamp or labhosts.rootfs_stamp()}, sort_keys=True).encode())
    for rel in input_files(root, inputs):
        digest.update(('%s\0%s\n' % (rel, file_digest(os.path.join(root, rel)))).encode())
    return digest.hexdigest()


def layer_is_usable(meta, key, now, max_age=MAX_AGE_S):
    """(usable, why not) for a layer's layer.json against the current key (pure)."""
    if not meta or meta.get('format') != LAYER_FORMAT:
        return False, 'no layer'
    if meta.get('key') != key:
        return False, 'made by other code (key %s, now %s)' % (meta.get('key', '?')[:12], key[:12])
    age = now - meta.get('built_at', 0)
    if age > max_age:
        return False, 'made %d min ago, more than %d min: its agents\' SVIDs expire' % (age // 60, max_age // 60)
    return True, ''


# ---------------------------------------------------------------------------------------------------
# Layers on disk (a lab is booted from one by tests/lab/stack.py: Stack.from_layer)

class Layer(object):
    """A layer on disk: <LAYERS_DIR>/<name>/<key>/ with layer.json, hosts/<host>/ (kept upper directories),
    files/ (the stack's controller-side files) and install.log (the output of the install that made it)."""

    def __init__(self, directory):
        self.dir = directory
        self.meta = labhosts._read_json(os.path.join(directory, 'layer.json'))
        if not self.meta:
            raise LayerError('no layer at %s' % directory)

    @property
    def name(self):
        return self.meta['name']

    @property
    def groups(self):
        return self.meta['groups']

    @property
    def hosts(self):
        return sorted(self.meta['addresses'])

    @property
    def files_dir(self):
        return os.path.join(self.dir, 'files')

    def install_output(self):
        with open(os.path.join(self.dir, 'install.log')) as handle:
            return handle.read()

    def lab_layer(self, hosts):
        """What hosts.Lab.create takes to boot ``hosts`` on this layer (each must be one of the layer's)."""
        unknown = sorted(set(hosts) - set(self.hosts))
        if unknown:
            raise LayerError('layer %s has no host %s (it has %s)'
                             % (self.name, ', '.join(unknown), ', '.join(self.hosts)))
        return {'network_index': self.meta['network_index'], 'addresses': dict(self.meta['addresses']),
                'uppers': {host: os.path.join(self.dir, 'hosts', host) for host in hosts}}


def ensure(name, make, log=print):
    """The layer ``name`` for the current code: the newest kept one whose key matches and that is fresh, else one
    made now by ``make(name, definition, directory)``, which fills ``directory`` with hosts/<host>/, files/ and
    install.log and returns {'addresses': {host: address}}. Several processes may ask at once: one makes it, the
    others wait for it. Layers no mounted overlay uses any more are removed when another is made."""
    if name not in DEFINITIONS:
        raise LayerError('no layer definition %r (known: %s)' % (name, ', '.join(sorted(DEFINITIONS))))
    base = os.path.join(LAYERS_DIR, name)
    key = layer_key(name)
    with labhosts._flock(base + '.lock'):
        now = time.time()
        why = 'none kept'
        for entry in sorted(os.listdir(base) if os.path.isdir(base) else [], reverse=True):
            usable, why = layer_is_usable(labhosts._read_json(os.path.join(base, entry, 'layer.json')), key, now)
            if usable:
                return Layer(os.path.join(base, entry))
        log('layer %s: making it (%s)' % (name, why))
        _remove_unused(base)
        started = time.monotonic()
        directory = os.path.join(base, '%d-%s' % (now, key[:16]))
        tmp = directory + '.tmp'
        os.makedirs(os.path.join(tmp, 'hosts'))
        try:
            made = make(name, DEFINITIONS[name], tmp)
            meta = {'format': LAYER_FORMAT, 'name': name, 'key': key, 'groups': DEFINITIONS[name]['groups'],
                    'network_index': DEFINITIONS[name]['network_index'], 'addresses': made['addresses'],
                    'built_at': now, 'build_seconds': round(time.monotonic() - started, 1)}
            with open(os.path.join(tmp, 'layer.json'), 'w') as handle:
                json.dump(meta, handle, indent=1, sort_keys=True)
            os.rename(tmp, directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log('layer %s: made in %.0f s' % (name, meta['build_seconds']))
        return Layer(directory)


def _remove_unused(base):
    """Remove the layers under ``base`` (and unfinished ones) that no mounted overlay uses."""
    for entry in os.listdir(base) if os.path.isdir(base) else []:
        path = os.path.join(base, entry)
        if os.path.isdir(path) and not labhosts.overlays_with_lower(path):
            shutil.rmtree(path)


def _cli(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tests.lab.layers', description=__doc__.split('\n\n', maxsplit=1)[0])
    sub = parser.add_subparsers(dest='command', required=True)
    for command in ('key', 'build'):
        cmd = sub.add_parser(command)
        cmd.add_argument('--name', default='stack')
    sub.add_parser('list')
    args = parser.parse_args(argv)
    if args.command == 'key':
        print(layer_key(args.name))
    elif args.command == 'build':
        from tests.lab.stack import make_layer
        # Stopped from outside (make test stops it when a check fails): unwind, so the maker destroys its lab.
        signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
        print(ensure(args.name, make_layer).dir)
    else:
        for name in sorted(os.listdir(LAYERS_DIR)) if os.path.isdir(LAYERS_DIR) else []:
            for entry in sorted(os.listdir(os.path.join(LAYERS_DIR, name))):
                meta = labhosts._read_json(os.path.join(LAYERS_DIR, name, entry, 'layer.json')) or {}
                print('%s %s built %s in %ss' % (name, entry, time.strftime(
                    '%H:%M:%S', time.localtime(meta.get('built_at', 0))), meta.get('build_seconds')))
    return 0


if __name__ == '__main__':
    sys.exit(_cli())

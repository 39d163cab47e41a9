"""The whole stack on lab hosts: a lab with the install playbook's inventory groups, and the variables
that point the roles at this machine's binaries (local artifacts, as on an air-gapped site), lab CAs
and an age key. One implementation for `make demo`, the role integration tests and the benchmark.

    python -m tests.lab.stack up --name demo      # lab + files; prints the ansible-playbook arguments
    python -m tests.lab.stack down --name demo

Files of a stack (age key, init material, CAs, vars.yml) sit in <lab dir>/files and go with the lab.
"""

import argparse
import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

from cryptography import x509

from tests.lab import hosts as labhosts
from tests.lab import layers
from tests.lab.common import ROOT, VENV_BIN, ansible_env, wait_for

ARTIFACTS = os.path.join(ROOT, '.cache', 'artifacts.json')

# Hosts of the demo: 3 Vault / OpenBao nodes, 1 SPIRE server, 2 agent hosts.
DEMO_GROUPS = {
    'vault_servers': ['vault1', 'vault2', 'vault3'],
    'spire_servers': ['spire-server1'],
    'spire_agents': ['spire-agent1', 'spire-agent2'],
}
TRUST_DOMAIN = 'demo.trustroot.test'
DEMO_USER = 'demo'
AGENT_SOCKET = '/run/spire/agent/public/api.sock'
SERVER_SOCKET = '/run/spire/server/private/api.sock'
AGENT_DATA = '/var/lib/spire/agent/agent-data.json'


def hosts_of(groups):
    out = []
    for members in groups.values():
        out += [host for host in members if host not in out]
    return out


def demo_entries(agents, trust_domain=TRUST_DOMAIN, user=DEMO_USER):
    """One workload entry per agent host: processes of `user` get spiffe://<td>/workload/<user>. The parent
    is the agent host's alias (its join token gave it), which holds no token."""
    return [{'spiffe_id': 'spiffe://%s/workload/%s' % (trust_domain, user),
             'parent_id': agent_alias(agent, trust_domain),
             'selectors': ['unix:user:%s' % user]} for agent in agents]


def agent_alias(agent, trust_domain=TRUST_DOMAIN):
    return 'spiffe://%s/node/%s' % (trust_domain, agent)


def release_binaries(artifacts, release='current'):
    """{'bao': (name in .cache/bin, version or None), 'spire-server': ..., 'spire-agent': ...} (pure).

    ``current``: the binaries the roles' default versions name (bao, spire-server, spire-agent). ``previous``: the
    older releases scripts/bootstrap.sh keeps as <binary>@<version> for the rolling upgrade test (the version comes
    from that name, so bootstrap.sh is the one place that sets it)."""
    if release == 'current':
        return {binary: (binary, None) for binary in ('bao', 'spire-server', 'spire-agent')}
    if release != 'previous':
        raise ValueError('release must be current or previous, got %r' % (release,))
    out = {}
    for binary in ('bao', 'spire-server', 'spire-agent'):
        found = sorted(name for name in artifacts if name.startswith(binary + '@'))
        if len(found) != 1:
            raise labhosts.LabError('.cache/artifacts.json has %s previous %s (%s): run scripts/bootstrap.sh'
                                    % ('no' if not found else 'more than one', binary, ', '.join(found)))
        out[binary] = (found[0], found[0].split('@', 1)[1])
    return out


def stack_vars(files_dir, groups, artifacts, age_recipient, trust_domain=TRUST_DOMAIN, release='current'):
    """Variables for playbooks/install.yml on a lab (pure: paths and checksums are given). ``release``: see
    release_binaries; the previous release also sets the roles' version variables."""
    binaries = release_binaries(artifacts, release)
    out = {}
    if groups.get('vault_servers'):
        name, version = binaries['bao']
        out.update({
            'vault_server_artifact_path': os.path.join(ROOT, '.cache', 'bin', name),
            'vault_server_artifact_sha256': artifacts[name],
            'vault_server_tls_lab_ca_dir': os.path.join(files_dir, 'vault-ca'),
            'vault_server_material_path': os.path.join(files_dir, 'vault-init.json.age'),
            'vault_server_age_identity': os.path.join(files_dir, 'operator.agekey'),
            'vault_server_age_recipients': [age_recipient],
            'vault_server_init_secret_shares': 5,
            'vault_server_init_secret_threshold': 3,
        })
        if version:
            out['vault_server_version'] = version
    if groups.get('spire_servers'):
        name, version = binaries['spire-server']
        out.update({
            'spire_server_artifact_path': os.path.join(ROOT, '.cache', 'bin', name),
            'spire_server_artifact_sha256': artifacts[name],
            'spire_server_trust_domain': trust_domain,
            # Prometheus on another lab host scrapes SPIRE's telemetry (the roles' default is 127.0.0.1).
            'spire_server_telemetry_prometheus_host': '{{ ansible_host }}',
            'spire_registration_entry_id_prefix': 'demo-',
            'spire_registration_entries': demo_entries(groups.get('spire_agents', []), trust_domain),
        })
        if version:
            out['spire_server_version'] = version
    if groups.get('spire_agents'):
        name, version = binaries['spire-agent']
        out.update({
            'spire_agent_artifact_path': os.path.join(ROOT, '.cache', 'bin', name),
            'spire_agent_artifact_sha256': artifacts[name],
            'spire_agent_trust_domain': trust_domain,
            'spire_agent_telemetry_prometheus_host': '{{ ansible_host }}',
            'spire_agent_join_token_alias': '{{ "spiffe://%s/node/" ~ inventory_hostname }}' % trust_domain,
        })
        if version:
            out['spire_agent_version'] = version
    return out


def read_artifacts(path=ARTIFACTS):
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise labhosts.LabError('%s is missing: run scripts/bootstrap.sh first' % path)


def ensure_age_key(path):
    if not os.path.exists(path):
        subprocess.run(['age-keygen', '-o', path], check=True, capture_output=True)
    return subprocess.run(['age-keygen', '-y', path], check=True, capture_output=True, text=True).stdout.strip()


class Stack(object):
    """A lab plus the files and variables the install playbook needs."""

    def __init__(self, lab, groups, vars_groups=None, release='current'):
        self.lab = lab
        self.release = release  # which binaries the install variables name (stack_vars)
        self.groups = groups
        self.vars_groups = vars_groups or groups  # the groups the install variables are made for
        self.files_dir = os.path.join(lab.dir, 'files')
        self.vars_path = os.path.join(self.files_dir, 'vars.yml')

    @classmethod
    def up(cls, name, groups=None, directory=None, extra_vars=None, layer=None, vars_groups=None, release='current'):
        """Reuse the lab of that name when it runs, or create it; (re)write its variables. ``layer``: see
        hosts.Lab.create (used to make a layer; tests boot from one with from_layer)."""
        groups = groups or DEMO_GROUPS
        try:
            lab = labhosts.Lab.load(name, directory)
            if lab.state.get('destroyed') or not lab.supervisor_alive():
                raise labhosts.LabError('not running')
        except (labhosts.LabError, OSError):
            labhosts.destroy(name, directory)
            lab = labhosts.Lab.create(name, hosts_of(groups), directory=directory, groups=groups, layer=layer)
        stack = cls(lab, groups, vars_groups, release)
        stack.write_vars(extra_vars)
        return stack

    @classmethod
    def from_layer(cls, name, groups=None, layer='stack', extra_vars=None):
        """A new lab whose hosts of the layer ``layer`` boot converged (see tests/lab/layers.py), back to the state
        install.yml left: OpenBao unsealed with one active node, SPIRE server and agents healthy. Hosts of ``groups``
        that the layer lacks boot bare. The variables are the layer's (install.yml converges on them: a second run
        changes nothing), with ``extra_vars`` on top. ``stack.layer`` is the layer (its install output, timings)."""
        kept = layers.ensure(layer, make_layer)
        groups = groups or kept.groups
        hosts = hosts_of(groups)
        labhosts.destroy(name)
        started = time.monotonic()
        lab = labhosts.Lab.create(name, hosts, groups=groups,
                                  layer=kept.lab_layer([host for host in hosts if host in kept.hosts]))
        stack = cls(lab, groups, vars_groups=kept.groups, release=layers.DEFINITIONS[layer].get('release', 'current'))
        try:
            shutil.copytree(kept.files_dir, stack.files_dir, symlinks=True)
            stack.write_vars(extra_vars)
            stack.layer = kept
            stack.wake(kept)
        except BaseException:
            labhosts.destroy(name)
            raise
        stack.boot_seconds = round(time.monotonic() - started, 1)
        return stack

    def wake(self, layer, timeout=120):
        """After a boot from ``layer``: unseal its OpenBao nodes with the stack's material (what unseal.yml does after
        a restart), wait for one active node and every other one standby, and for its SPIRE servers and agents to
        report healthy."""
        booted = set(self.lab.state['layer']['uppers'])
        vaults = [host for host in layer.groups.get('vault_servers', []) if host in booted]
        if vaults:
            material = self.decrypt(os.path.join(self.files_dir, 'vault-init.json.age'))
            keys = material['unseal_keys_b64'][:material['unseal_threshold']]
            for host in vaults:
                wait_for(lambda h=host: self.vault_api(h, 'sys/seal-status')[0] == 200, timeout=timeout,
                         what='%s answering' % host)
                for key in keys:
                    status, body = self.vault_api(host, 'sys/unseal', 'PUT', {'key': key})
                    if status != 200:
                        raise labhosts.LabError('%s: sys/unseal answered %s %s' % (host, status, body))
                    if body.get('sealed') is False:
                        break

            def active_and_standbys():
                codes = sorted(self.vault_api(host, 'sys/health')[0] for host in vaults)
                return codes == [200] + [429] * (len(vaults) - 1)

            wait_for(active_and_standbys, timeout=timeout, interval=0.5,
                     what='one active OpenBao node and the others standby')
        checks = [(host, ['spire-server', 'healthcheck', '-socketPath', SERVER_SOCKET])
                  for host in layer.groups.get('spire_servers', []) if host in booted]
        checks += [(host, ['spire-agent', 'healthcheck', '-socketPath', AGENT_SOCKET])
                   for host in layer.groups.get('spire_agents', []) if host in booted]
        for host, argv in checks:
            wait_for(lambda h=host, a=argv: self.lab.exec(h, a).returncode == 0, timeout=timeout, interval=0.5,
                     what='%s healthy' % host)

    def write_vars(self, extra_vars=None):
        os.makedirs(self.files_dir, mode=0o700, exist_ok=True)
        recipient = ensure_age_key(os.path.join(self.files_dir, 'operator.agekey'))
        data = stack_vars(self.files_dir, self.vars_groups, read_artifacts(), recipient, release=self.release)
        data.update(extra_vars or {})
        with open(self.vars_path, 'w') as handle:
            json.dump(data, handle, indent=2)  # JSON is YAML

    def env(self):
        return ansible_env({'ANSIBLE_PIPELINING': '1'})

    def decrypt(self, path):
        """The JSON of an age-encrypted file of this stack (init material, its archives) with the operator key."""
        out = subprocess.run(['age', '--decrypt', '--identity', os.path.join(self.files_dir, 'operator.agekey'), path],
                             check=True, capture_output=True)
        return json.loads(out.stdout)

    def vault_secrets(self):
        """The unseal keys (base64 and hex) and root token of the stack's init material: what no output may hold."""
        material = self.decrypt(os.path.join(self.files_dir, 'vault-init.json.age'))
        return material['unseal_keys_b64'] + material['unseal_keys_hex'] + [material['root_token']]

    def write_secret_vars(self, name, data):
        """A vars file in files/ that holds a token: 0600 from the start. Returns its path."""
        path = os.path.join(self.files_dir, name)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as handle:
            json.dump(data, handle)
        return path

    def vault_api(self, host, path, method='GET', body=None, token=None, timeout=5):
        """(status, JSON answer) of one call to one OpenBao node of the stack, over TLS checked with the lab CA."""
        context = ssl.create_default_context(cafile=os.path.join(self.files_dir, 'vault-ca', 'ca.crt'))
        request = urllib.request.Request('https://%s:8200/v1/%s' % (self.lab.address(host), path), method=method,
                                         data=json.dumps(body).encode() if body is not None else None)
        if token:
            request.add_header('X-Vault-Token', token)
        try:
            with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b'{}')
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b'{}')

    def playbook_argv(self, playbook, args=()):
        """A playbook of the collection by name ('install'), or a playbook file by path."""
        target = playbook if playbook.endswith('.yml') else 'trustroot.ops.' + playbook
        return [os.path.join(VENV_BIN, 'ansible-playbook'), target,
                '-i', self.lab.inventory_path, '-e', '@' + self.vars_path] + list(args)

    def run(self, playbook, args=(), timeout=1200, capture=True):
        """ansible-playbook on the lab (see playbook_argv); returns the CompletedProcess."""
        return subprocess.run(self.playbook_argv(playbook, args), env=self.env(), cwd=ROOT, timeout=timeout,
                              capture_output=capture, text=True, check=False)


def make_layer(name, definition, directory):
    """layers.ensure's maker: install.yml (at -vvvv: the stack's leak test reads this output) on fresh hosts at the
    layer's subnet, a clean shutdown (OpenBao and SPIRE close their data on disk), then each host's upper directory,
    the controller-side files and the install output are kept in ``directory``."""
    lab_name = 'layer-' + name
    labhosts.destroy(lab_name)
    stack = Stack.up(lab_name, groups=definition['groups'], release=definition.get('release', 'current'),
                     layer={'network_index': definition['network_index'], 'addresses': {}, 'uppers': {}})
    try:
        proc = stack.run('install', ['-vvvv'], timeout=1800)
        if proc.returncode != 0:
            raise layers.LayerError('layer %s: install.yml failed:\n%s' % (name, failure_report(proc)))
        with open(os.path.join(directory, 'install.log'), 'w') as handle:
            handle.write(proc.stdout + proc.stderr)
        addresses = dict(stack.lab.addresses)
        stack.lab.destroy(keep_files=True)
        for host in addresses:
            os.rename(os.path.join(stack.lab.host_dir(host), 'upper'), os.path.join(directory, 'hosts', host))
        shutil.copytree(stack.files_dir, os.path.join(directory, 'files'), symlinks=True)
        os.remove(os.path.join(directory, 'files', 'vars.yml'))  # each lab writes its own, with its own paths
    finally:
        labhosts.destroy(lab_name)
    return {'addresses': addresses}


def agent_svid(lab, host):
    """The agent's own X.509 SVID on ``host``, as it keeps it in agent-data.json."""
    data = json.loads(lab.exec(host, ['cat', AGENT_DATA], check=True).stdout)
    return x509.load_pem_x509_certificate(base64.b64decode(data['svid'][0]))


def spiffe_id(cert):
    """The URI SAN of an SVID."""
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier)[0]


def fetch_workload_svid(lab, host, user=DEMO_USER, timeout=90, args=()):
    """A workload (a process of ``user``, the demo entry's selector) asks the agent on ``host`` for its X.509 SVID
    until it gets one or ``timeout`` passes; returns the last attempt (a CompletedProcess). An agent that has
    just (re)attested or moved learns its entries on its next sync: until then the Workload API answers "no
    identity issued"."""
    lab.exec(host, ['useradd', '--system', '--no-create-home', user])  # fails harmlessly when it exists
    attempts = []

    def fetch():
        attempts.append(lab.exec(host, ['runuser', '-u', user, '--', 'spire-agent', 'api', 'fetch', 'x509',
                                        '-socketPath', AGENT_SOCKET, '-timeout', '10s'] + list(args)))
        return attempts[-1].returncode == 0

    try:
        wait_for(fetch, timeout=timeout, interval=2, what='a workload SVID on %s' % host)
    except TimeoutError:
        pass  # the caller asserts on the last attempt, whose output says why
    return attempts[-1]


def failure_report(proc, tail=4000):
    """What to show when a playbook run failed: every task failure line of the whole output (a long run's failure
    may be far from its end), then the output's tail and stderr."""
    failures = [line for line in proc.stdout.splitlines() if line.startswith(('fatal: ', 'failed: '))
                or 'FAILED!' in line or line.startswith('ERROR')]
    return '\n'.join(failures)[-4000:] + '\n---\n' + proc.stdout[-tail:] + proc.stderr[-2000:]


def recap(output):
    """PLAY RECAP counts per host: {'vault1': {'ok': 30, 'changed': 0, ...}}."""
    counts = {}
    in_recap = False
    for line in output.splitlines():
        if line.startswith('PLAY RECAP'):
            in_recap = True
            continue
        if in_recap and ':' in line:
            host, _sep, rest = line.partition(':')
            fields = dict(part.split('=') for part in rest.split() if '=' in part)
            counts[host.strip()] = {key: int(value) for key, value in fields.items()}
    return counts


def total(output, field='changed'):
    return sum(host.get(field, 0) for host in recap(output).values())


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tests.lab.stack', description=__doc__.split('\n\n', maxsplit=1)[0])
    sub = parser.add_subparsers(dest='command', required=True)
    up = sub.add_parser('up', help='create (or reuse) the lab and write its variables')
    up.add_argument('--name', default='demo')
    down = sub.add_parser('down', help='destroy the lab and its files')
    down.add_argument('--name', default='demo')
    args = parser.parse_args(argv)
    try:
        if args.command == 'up':
            stack = Stack.up(args.name)
            print(json.dumps({'inventory': stack.lab.inventory_path, 'vars': stack.vars_path,
                              'files': stack.files_dir, 'hosts': dict(stack.lab.addresses),
                              'ssh_config': stack.lab.state['ssh']['config']}))
        else:
            labhosts.destroy(args.name)
    except labhosts.LabError as err:
        print('lab: %s' % err, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

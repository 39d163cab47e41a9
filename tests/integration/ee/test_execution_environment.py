"""install.yml, unseal.yml and health.yml run INSIDE the trustroot.ops execution environment (ee/, `make ee`) the way AWX
runs a job: `ansible-runner transmit <private data dir> -p <playbook> | podman run ... <image> ansible-runner worker |
ansible-runner process <dir>`, against lab hosts booted converged from the stack layer, and judged by the job events
(playbook_on_stats of each run, health's summary). The private data directory holds what AWX would put there: the
inventory, the machine credential's SSH key (env/ssh_key), the age identity of the trustroot.ops age identity credential
type (a file, its path in an extra variable), the extra variables; controller paths the variables name (the artifacts,
the lab CA and init material) are exposed to the container read-only, as AWX's "Paths to expose to isolated jobs" does.

The image is built by the fixture only when `make ee`'s image of the current content key is missing (ee/build.sh)."""

import glob
import json
import os
import shutil
import subprocess
import time

import pytest
import yaml

from tests.lab import hosts as labhosts
from tests.lab.common import ROOT, VENV_BIN
from tests.lab.stack import Stack

NAME = 'it-ee'
CACHE = os.path.join(ROOT, '.cache', 'ee')
RUNNER = os.path.join(VENV_BIN, 'ansible-runner')
VAULTS = ['vault1', 'vault2', 'vault3']


def podman_env():
    env = dict(os.environ)
    env.update({'CONTAINERS_CONF': os.path.join(ROOT, 'ee', 'containers.conf'),
                'CONTAINERS_STORAGE_CONF': os.path.join(CACHE, 'storage.conf')})
    return env


def outside_namespace():
    """argv prefix that runs a command in the network namespace of the pytest process that started this xdist worker:
    the worker's own namespace (tests/integration/conftest.py) has only loopback, and a build fetches from Debian and
    PyPI. Empty when not under xdist."""
    if not os.environ.get('PYTEST_XDIST_WORKER'):
        return []
    return ['nsenter', '--net=/proc/%d/ns/net' % os.getppid(), '--']


@pytest.fixture(scope='module')
def image():
    if not shutil.which('podman'):
        pytest.skip('podman is not installed (apt-get install podman runc): the EE cannot run here')
    started = time.monotonic()
    proc = subprocess.run(outside_namespace() + [os.path.join(ROOT, 'ee', 'build.sh')], cwd=ROOT, capture_output=True,
                          text=True, timeout=1800, check=False)
    assert proc.returncode == 0, 'ee/build.sh failed:\n' + proc.stderr[-4000:]
    name = proc.stdout.strip().splitlines()[-1]
    print('EE image %s ready in %.1fs: %s' % (name, time.monotonic() - started, proc.stderr.strip()))
    probe = subprocess.run(['podman', 'run', '--rm', name, 'true'], env=podman_env(), capture_output=True, text=True,
                           timeout=120, check=False)
    if probe.returncode != 0:
        pytest.skip('podman cannot run a container here: %s' % probe.stderr.strip()[-500:])
    return name


@pytest.fixture(scope='module')
def stack():
    stack = Stack.from_layer(NAME)
    try:
        yield stack
    finally:
        labhosts.destroy(NAME)


def container_inventory(text, known_hosts):
    """The lab inventory as AWX would hold it (pure): no controller key file (the machine credential's key comes through
    ssh-agent) nor control path directory, known_hosts at its path inside the private data directory."""
    data = yaml.safe_load(text)
    for group in data['all']['children'].values():
        conn = (group or {}).get('vars') or {}
        if 'ansible_ssh_private_key_file' in conn:
            del conn['ansible_ssh_private_key_file']
            conn.pop('ansible_control_path_dir', None)
            conn['ansible_ssh_common_args'] = ('-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes' % known_hosts)
    return yaml.safe_dump(data, default_flow_style=False)


def exposed_paths(extra_vars):
    """Controller paths the variables name that the job reads: (extra vars with artifact paths resolved, [paths])."""
    out = dict(extra_vars)
    paths = []
    for name, value in extra_vars.items():
        if name.endswith('_artifact_path') and value:
            out[name] = os.path.realpath(value)
            paths.append(out[name])
    return out, paths


def private_data_dir(stack, base, playbook):
    """A private data directory for one job, laid out as AWX lays it out."""
    pdd = os.path.join(base, playbook)
    for sub in ('inventory', 'env', 'project', 'credentials'):
        os.makedirs(os.path.join(pdd, sub), mode=0o700)
    shutil.copy(stack.lab.known_hosts, os.path.join(pdd, 'credentials', 'known_hosts'))
    with open(stack.lab.inventory_path) as handle:
        inventory = container_inventory(handle.read(), '/runner/credentials/known_hosts')
    with open(os.path.join(pdd, 'inventory', 'hosts.yml'), 'w') as handle:
        handle.write(inventory)
    shutil.copy(stack.lab.key, os.path.join(pdd, 'env', 'ssh_key'))
    # The age identity credential: AWX writes the identity to a 0600 file and passes its path.
    shutil.copy(os.path.join(stack.files_dir, 'operator.agekey'), os.path.join(pdd, 'credentials', 'age_identity'))
    os.chmod(os.path.join(pdd, 'credentials', 'age_identity'), 0o600)
    with open(stack.vars_path) as handle:
        extra_vars, paths = exposed_paths(json.load(handle))
    extra_vars['vault_server_age_identity'] = '/runner/credentials/age_identity'
    with open(os.path.join(pdd, 'env', 'extravars'), 'w') as handle:
        json.dump(extra_vars, handle)
    with open(os.path.join(pdd, 'env', 'envvars'), 'w') as handle:
        json.dump({'ANSIBLE_PIPELINING': '1', 'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_RETRY_FILES_ENABLED': '0'}, handle)
    # An AWX project holds playbook files: this one runs the collection's playbook as installed in the image.
    with open(os.path.join(pdd, 'project', playbook + '.yml'), 'w') as handle:
        handle.write('---\n- name: trustroot.ops.%s\n  ansible.builtin.import_playbook: trustroot.ops.%s\n' % (playbook, playbook))
    return pdd, paths + [stack.files_dir]


def run_job(stack, image, base, playbook):
    """transmit | podman run ... worker | process, as AWX does. Returns (job events, status, seconds)."""
    pdd, paths = private_data_dir(stack, base, playbook)
    out = os.path.join(base, playbook + '-out')
    mounts = ' '.join('-v %s:%s:ro' % (path, path) for path in paths)
    # --user 0: AWX runs the EE with rootless podman, where the container's root is the AWX user; the lab's files
    # here are root's. --network host: the network namespace of this test process, where the lab bridge is.
    pipeline = ('set -o pipefail; {runner} transmit {pdd} -p {playbook}.yml '
                '| podman run --rm -i --network host --user 0 {mounts} {image} ansible-runner worker --private-data-dir=/runner '
                '| {runner} process {out}').format(runner=RUNNER, pdd=pdd, playbook=playbook, mounts=mounts, image=image,
                                                   out=out)
    started = time.monotonic()
    proc = subprocess.run(['bash', '-c', pipeline], env=podman_env(), capture_output=True, text=True, timeout=900, check=False)
    seconds = round(time.monotonic() - started, 1)
    events = []
    for path in glob.glob(os.path.join(out, 'artifacts', '**', 'job_events', '*.json'), recursive=True):
        with open(path) as handle:
            events.append(json.load(handle))
    events.sort(key=lambda event: event.get('counter', 0))
    status = ''
    for path in glob.glob(os.path.join(out, 'artifacts', '**', 'status'), recursive=True):
        with open(path) as handle:
            status = handle.read().strip()
    assert events, '%s: no job events (rc %s)\n%s\n%s' % (playbook, proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    print('%s in the EE: %s, %.1fs' % (playbook, status, seconds))
    return events, status, seconds


def stats(events):
    found = [event for event in events if event.get('event') == 'playbook_on_stats']
    assert len(found) == 1, [event.get('event') for event in events][-10:]
    return found[0]['event_data']


def failures_report(events):
    lines = [event.get('stdout', '') for event in events if event.get('event') in ('runner_on_failed', 'runner_on_unreachable')]
    return '\n'.join(lines)[-4000:] + '\n---\n' + '\n'.join(event.get('stdout', '') for event in events[-15:])[-3000:]


def seal_states(stack):
    return {host: stack.vault_api(host, 'sys/seal-status')[1].get('sealed') for host in VAULTS}


def test_container_reaches_the_lab_bridge(stack, image):
    # --network host in this (xdist) process's own network namespace: the lab's hosts are reachable from inside.
    address = stack.lab.address('vault1')
    probe = ('import socket; s = socket.create_connection(("%s", 22), timeout=5); print(s.recv(64).decode().strip())'
             % address)
    proc = subprocess.run(['podman', 'run', '--rm', '--network', 'host', image, 'python3', '-c', probe],
                          env=podman_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith('SSH-2.0-'), proc.stdout


def test_install_unseal_health_in_the_execution_environment(stack, image, tmp_path):
    timings = {}
    # install.yml: a second converge of the layer's stack changes nothing.
    events, status, timings['install'] = run_job(stack, image, str(tmp_path), 'install')
    data = stats(events)
    assert status == 'successful' and not data['failures'] and not data['dark'], failures_report(events)
    assert set(stack.lab.hosts) <= set(data['ok']), data['ok']
    assert sum(data['changed'].values()) == 0, data['changed']

    # Every node restarted comes back sealed; unseal.yml (one run_once unseal from the controller) unseals them.
    for host in VAULTS:
        stack.lab.exec(host, ['systemctl', 'restart', 'openbao'], check=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and set(seal_states(stack).values()) != {True}:
        time.sleep(0.5)
    assert set(seal_states(stack).values()) == {True}
    events, status, timings['unseal'] = run_job(stack, image, str(tmp_path), 'unseal')
    data = stats(events)
    assert status == 'successful' and not data['failures'] and not data['dark'], failures_report(events)
    assert sum(data['changed'].values()) == 1, data['changed']
    assert set(seal_states(stack).values()) == {False}

    # health.yml reports every part healthy, in its summary event.
    events, status, timings['health'] = run_job(stack, image, str(tmp_path), 'health')
    data = stats(events)
    assert status == 'successful' and not data['failures'] and not data['dark'], failures_report(events)
    assert sum(data['changed'].values()) == 0, data['changed']
    summary = [event['event_data']['res']['msg'] for event in events if event.get('event') == 'runner_on_ok'
               and event['event_data'].get('task') == 'Health']
    assert len(summary) == 1, [event['event_data'].get('task') for event in events if event.get('event') == 'runner_on_ok']
    lines = summary[0]
    assert lines[0].startswith('Vault / OpenBao: all unsealed, leader '), lines
    assert 'SPIRE server spire-server1: healthy' in '\n'.join(lines), lines
    assert [line for line in lines if line.startswith('SPIRE agent ')] == \
        ['SPIRE agent spire-agent1: healthy', 'SPIRE agent spire-agent2: healthy'], lines
    print('EE job timings (s): %s' % timings)

"""The spire_server and spire_agent roles' Kubernetes settings applied through ansible-playbook to lab hosts booted from
the stack layer (a SPIRE server and an agent, systemd, SSH), with a real API server listening on the lab bridge.

The server role creates its Kubernetes account and kubeconfig on the controller and installs it, configures k8s_psat
and the k8sbundle notifier; the agent (first evicted from its join-token attestation) attests again with k8s_psat from
a pod-bound token file on its host. Check mode changes nothing; a second run changes nothing."""

import base64
import json
import os
import re
import time
import uuid

import pytest

from tests.lab import hosts as labhosts
from tests.lab.common import ROOT
from tests.lab.kube import KubeCluster
from tests.lab.stack import SERVER_SOCKET, TRUST_DOMAIN, Stack, total

NAME = 'it-spire-k8s'
GROUPS = {'spire_servers': ['spire-server1'], 'spire_agents': ['spire-agent1']}
CLUSTER = 'lab'
NAMESPACE = 'spire'
TOKEN_PATH = '/etc/spire/agent/k8s-psat.token'

PLAYBOOK = """
- name: Evict the join-token agent, so that it attests again with k8s_psat
  hosts: spire_agents
  gather_facts: false
  tasks:
    - name: Evict
      ansible.builtin.include_role:
        name: trustroot.ops.spire_server
        tasks_from: rotate_agent
      when: lab_reattest | bool

- name: SPIRE server with k8s_psat and the bundle ConfigMap
  hosts: spire_servers
  gather_facts: false
  roles:
    - trustroot.ops.spire_server

- name: SPIRE agent attested with k8s_psat
  hosts: spire_agents
  gather_facts: false
  roles:
    - trustroot.ops.spire_agent
"""


def server_cli(stack, args):
    proc = stack.lab.exec('spire-server1', ['spire-server'] + args + ['-socketPath', SERVER_SOCKET], check=True)
    return proc.stdout


def pem_certs(text):
    blocks = re.findall(r'-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----', text, re.S)
    return {base64.b64decode(''.join(block.split())) for block in blocks}


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    started = time.monotonic()
    stack = Stack.from_layer(NAME, groups=GROUPS)
    # from_layer: with the layer's rebuild when roles or plugins changed since it was made (boot_from_layer: without).
    timings = {'from_layer': round(time.monotonic() - started, 1), 'boot_from_layer': stack.boot_seconds}
    kube = None
    try:
        workdir = str(tmp_path_factory.mktemp('spire-k8s-lab'))
        # The API server listens on the lab bridge, where the hosts reach it.
        kube = KubeCluster(workdir, address=stack.lab.state['bridge']['address']).start()
        node_uid = kube.node('spire-agent1')
        pod = 'spire-agent-' + uuid.uuid4().hex[:6]
        kube.pod(NAMESPACE, pod, 'spire-agent', 'spire-agent1')
        token = kube.token(NAMESPACE, 'spire-agent', pod=pod, audience='spire-server')
        # The projected token the host "already has": readable by the agent's group only.
        script = 'umask 077; printf %%s "$1" | base64 -d > %s && chgrp spire %s && chmod 0640 %s' % (
            TOKEN_PATH, TOKEN_PATH, TOKEN_PATH)
        stack.lab.exec('spire-agent1', ['sh', '-c', script, 'sh', base64.b64encode(token.encode()).decode()], check=True)
        controller_dir = os.path.join(workdir, 'controller')
        os.makedirs(controller_dir, mode=0o700)
        extra = {
            'spire_server_k8s_admin_kubeconfig': kube.admin_kubeconfig,
            'spire_server_k8s_controller_kubeconfig': os.path.join(controller_dir, 'spire-server1.kubeconfig'),
            'spire_server_k8s_api_url': kube.url,
            'spire_server_k8s_psat_clusters': {CLUSTER: {'service_account_allow_list': [NAMESPACE + ':spire-agent']}},
            'spire_server_k8s_bundle': {'namespace': NAMESPACE},
            'spire_agent_node_attestor': 'k8s_psat', 'spire_agent_k8s_psat_cluster': CLUSTER,
            'spire_agent_k8s_psat_token_path': TOKEN_PATH,
        }
        vars_path = stack.write_secret_vars('k8s-vars.json', extra)
        play = os.path.join(stack.files_dir, 'spire-k8s.yml')
        with open(play, 'w') as handle:
            handle.write(PLAYBOOK)
        timings['setup'] = round(time.monotonic() - started, 1)
        yield {'stack': stack, 'kube': kube, 'node_uid': node_uid, 'token': token, 'play': play,
               'vars': vars_path, 'runs': {}, 'timings': timings}
    finally:
        if kube is not None:
            kube.stop()
        labhosts.destroy(NAME)
        timings['total'] = round(time.monotonic() - started, 1)
        # xdist keeps a worker's output: the figures go to a file beside the other timings.
        os.makedirs(os.path.join(ROOT, '.cache', 'timings'), exist_ok=True)
        with open(os.path.join(ROOT, '.cache', 'timings', 'spire_k8s_lab.json'), 'w') as handle:
            json.dump(timings, handle, indent=1)


def run(lab, name, reattest, args=()):
    started = time.monotonic()
    proc = lab['stack'].run(lab['play'], ['-e', '@' + lab['vars'], '-e', 'lab_reattest=%s' % reattest] + list(args))
    lab['timings'][name] = round(time.monotonic() - started, 1)
    lab['runs'][name] = proc
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc


def test_agent_role_refuses_a_token_file_the_agent_cannot_read(lab):
    stack = lab['stack']
    stack.lab.exec('spire-agent1', ['sh', '-c', 'umask 077; echo not-a-token > /etc/spire/agent/root-only.token'],
                   check=True)
    for path, reason in (('/etc/spire/agent/absent.token', 'does not exist'),
                         ('/etc/spire/agent/root-only.token', 'is not a file the user spire (group spire) can read')):
        proc = lab['stack'].run(lab['play'], ['-e', '@' + lab['vars'], '-e', 'lab_reattest=false', '--check',
                                              '--limit', 'spire_agents', '-e', 'spire_agent_k8s_psat_token_path=' + path])
        assert proc.returncode != 0
        assert 'spire_agent_k8s_psat_token_path %s on spire-agent1 %s' % (path, reason) in proc.stdout, proc.stdout[-3000:]
        assert 'not-a-token' not in proc.stdout + proc.stderr
        # It fails before the role changes anything: its first task that could is not reached.
        assert 'Create the spire group' not in proc.stdout


def test_check_mode_changes_nothing(lab):
    stack, kube = lab['stack'], lab['kube']
    conf_before = stack.lab.exec('spire-server1', ['cat', '/etc/spire/server/server.conf'], check=True).stdout
    proc = run(lab, 'check', False, ['--check'])
    assert total(proc.stdout) > 0
    names = [sa.metadata.name for sa in kube.core().list_namespaced_service_account(NAMESPACE).items]
    assert 'spire-server' not in names, names
    assert stack.lab.exec('spire-server1', ['cat', '/etc/spire/server/server.conf'], check=True).stdout == conf_before
    assert stack.lab.exec('spire-server1', ['test', '-e', '/etc/spire/server/kubernetes.kubeconfig']).returncode != 0


def test_apply_attests_the_agent_with_k8s_psat_and_publishes_the_bundle(lab):
    stack, kube = lab['stack'], lab['kube']
    proc = run(lab, 'apply', True)
    assert total(proc.stdout) > 0
    for output in (proc.stdout, proc.stderr, lab['runs']['check'].stdout):
        assert lab['token'] not in output

    expected = 'spiffe://%s/spire/agent/k8s_psat/%s/%s' % (TRUST_DOMAIN, CLUSTER, lab['node_uid'])
    shown = json.loads(server_cli(stack, ['agent', 'show', '-spiffeID', expected, '-output', 'json']))
    selectors = {'%s:%s' % (s['type'], s['value']) for s in shown['selectors']}
    assert {'k8s_psat:cluster:' + CLUSTER, 'k8s_psat:agent_ns:' + NAMESPACE, 'k8s_psat:agent_sa:spire-agent',
            'k8s_psat:agent_node_name:spire-agent1'} <= selectors, selectors

    mode = stack.lab.exec('spire-server1', ['stat', '-c', '%a %U', '/etc/spire/server/kubernetes.kubeconfig'],
                          check=True).stdout.split()
    assert mode == ['600', 'spire']
    conf = stack.lab.exec('spire-server1', ['cat', '/etc/spire/server/server.conf'], check=True).stdout
    assert 'NodeAttestor "k8s_psat"' in conf and 'Notifier "k8sbundle"' in conf

    bundle = pem_certs(server_cli(stack, ['bundle', 'show', '-format', 'pem']))
    data = kube.core().read_namespaced_config_map('spire-bundle', NAMESPACE).data or {}
    assert bundle and pem_certs(data.get('bundle.crt', '')) == bundle


def test_second_run_changes_nothing(lab):
    proc = run(lab, 'again', False)
    assert total(proc.stdout) == 0, proc.stdout[-4000:]
    assert lab['token'] not in proc.stdout + proc.stderr
    # The agent is still the k8s_psat one and healthy.
    health = lab['stack'].lab.exec('spire-agent1', ['spire-agent', 'healthcheck', '-socketPath',
                                                    '/run/spire/agent/public/api.sock'])
    assert health.returncode == 0, health.stdout + health.stderr

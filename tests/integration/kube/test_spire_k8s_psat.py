"""SPIRE on Kubernetes against the real API server (tests/lab/kube.py) and real SPIRE processes (tests/lab/spire.py).

The spire_server role's Kubernetes entry point (tasks/kubernetes.yml: trustroot.ops.kubernetes_access run as the
controller, the kubeconfig installed) runs through ansible-playbook on this machine at -vvvv, and the roles' own templates
render server.conf and agent.conf; the SPIRE processes run those files. Then: the agent attests with k8s_psat (ID and
selectors), a workload under its node alias (spire_registration role) gets an SVID, tokens of a service account that
is not allowed or bound to a deleted pod are refused, and the bundle ConfigMap holds the server's bundle and follows a
CA rotation (spire_authority prepared).

One module-scoped lab; the tests read it in order (pytest keeps file order).
"""

import base64
import json
import os
import re
import subprocess
import time
import uuid

import pytest
import yaml

from tests.lab.common import ROOT, VENV_BIN, ansible_env, wait_for
from tests.lab.spire import SpireAgent, SpireServer

CLUSTER = 'lab'
TRUST_DOMAIN = 'example.org'
SERVER_ROLE = os.path.join(ROOT, 'roles', 'spire_server')
AGENT_ROLE = os.path.join(ROOT, 'roles', 'spire_agent')


class RenderedServer(SpireServer):
    """A spire-server that runs the server.conf the spire_server role's template rendered."""
    rendered = None

    def render_config(self):
        with open(self.rendered) as handle:
            return handle.read()


class RenderedAgent(SpireAgent):
    """A spire-agent that runs the agent.conf the spire_agent role's template rendered (k8s_psat: no join token)."""
    rendered = None

    def __init__(self, workdir, server, name, rendered):
        super(RenderedAgent, self).__init__(workdir, server, name=name)
        self.attestation = 'k8s_psat'
        self.rendered = rendered

    def render_config(self):
        with open(self.rendered) as handle:
            return handle.read()

    def launch(self):
        """Start without waiting for health (an agent that must be refused never gets healthy)."""
        with open(self.trust_bundle_path, 'w') as handle:
            handle.write(self.server.bundle_pem())
        with open(self.config_path, 'w') as handle:
            handle.write(self.render_config())
        log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen([self.binary, 'run', '-config', self.config_path], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir,
                                     start_new_session=True)
        log.close()
        return self

    def log(self):
        with open(self.log_path, errors='replace') as handle:
            return handle.read()


def write_token(path, token):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as handle:
        handle.write(token)
    return path


def playbook(workdir, name, plays, extra_vars, check=False, args=()):
    """Run ansible-playbook on localhost; return (rc, output, recap changed count)."""
    play_path = os.path.join(workdir, name + '.yml')
    vars_path = os.path.join(workdir, name + '-vars.json')
    with open(play_path, 'w') as handle:
        yaml.safe_dump(plays, handle, sort_keys=False)
    with open(os.open(vars_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as handle:
        json.dump(extra_vars, handle)
    argv = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', play_path,
            '-e', '@' + vars_path] + (['--check'] if check else []) + list(args)
    env = ansible_env({'ANSIBLE_PYTHON_INTERPRETER': os.path.join(VENV_BIN, 'python'),
                       'ANSIBLE_INVENTORY_UNPARSED_WARNING': '0'})
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=workdir, timeout=300, check=False)
    output = proc.stdout + proc.stderr
    recap = re.search(r'localhost\s*:\s*ok=\d+\s+changed=(\d+)', output)
    return proc.returncode, output, int(recap.group(1)) if recap else None


def pem_certs(text):
    """The DER bytes of every certificate in a PEM text, as a set."""
    blocks = re.findall(r'-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----', text, re.S)
    return {base64.b64decode(''.join(block.split())) for block in blocks}


SERVER_PLAY = [{
    'name': 'SPIRE server and agent configuration for Kubernetes',
    'hosts': 'localhost',
    'gather_facts': False,
    'tasks': [
        {'name': 'The server Kubernetes access (role spire_server, entry point kubernetes)',
         'ansible.builtin.include_role': {'name': 'trustroot.ops.spire_server', 'tasks_from': 'kubernetes', 'public': True}},
        {'name': 'server.conf from the role template',
         'ansible.builtin.template': {'src': os.path.join(SERVER_ROLE, 'templates', 'server.conf.j2'),
                                      'dest': '{{ lab_server_conf }}', 'mode': '0600'}},
        {'name': 'The agent role defaults',
         'ansible.builtin.include_vars': {'file': os.path.join(AGENT_ROLE, 'defaults', 'main.yml')}},
        {'name': 'agent.conf from the role template',
         'ansible.builtin.template': {'src': os.path.join(AGENT_ROLE, 'templates', 'agent.conf.j2'),
                                      'dest': '{{ lab_agent_conf }}', 'mode': '0600'}},
    ],
}]


@pytest.fixture(scope='module')
def lab(kube_cluster, tmp_path_factory):
    kube = kube_cluster
    workdir = str(tmp_path_factory.mktemp('spire-k8s'))
    suffix = uuid.uuid4().hex[:6]
    ns = kube.namespace('spire-psat-' + suffix)
    node = 'spire-psat-node-' + suffix
    node_uid = kube.node(node)
    kube.pod(ns, 'spire-agent-a', 'spire-agent', node)
    kube.core().patch_namespaced_pod('spire-agent-a', ns, {'metadata': {'labels': {'app': 'spire-agent', 'tier': 'x'}}})

    server = RenderedServer(workdir, name='server')
    agent = RenderedAgent(workdir, server, 'agent-a', os.path.join(workdir, 'agent.conf'))
    server.rendered = os.path.join(workdir, 'server.conf')
    controller_dir = os.path.join(workdir, 'controller')
    os.makedirs(controller_dir, mode=0o700)
    token_path = write_token(os.path.join(workdir, 'agent-a.token'),
                             kube.token(ns, 'spire-agent', pod='spire-agent-a', audience='spire-server'))
    extra = {
        'lab_server_conf': server.rendered, 'lab_agent_conf': agent.rendered,
        # spire_server role
        'spire_server_trust_domain': TRUST_DOMAIN, 'spire_server_user': 'root', 'spire_server_group': 'root',
        'spire_server_config_dir': server.workdir, 'spire_server_data_dir': server.data_dir,
        'spire_server_bind_address': '127.0.0.1', 'spire_server_bind_port': server.bind_port,
        'spire_server_socket_path': server.socket_path, 'spire_server_health_checks_bind_port': server.health_port,
        'spire_server_telemetry_prometheus_enabled': False, 'spire_server_node_attestors': [],
        'spire_server_k8s_admin_kubeconfig': kube.admin_kubeconfig,
        'spire_server_k8s_controller_kubeconfig': os.path.join(controller_dir, 'spire-server.kubeconfig'),
        'spire_server_k8s_namespace': ns, 'spire_server_k8s_service_account': 'spire-server',
        'spire_server_k8s_api_url': kube.url, 'spire_server_k8s_token_ttl': 86400,
        'spire_server_k8s_psat_clusters': {CLUSTER: {'service_account_allow_list': ['%s:spire-agent' % ns],
                                                     'allowed_pod_label_keys': ['app']}},
        'spire_server_k8s_bundle': {'namespace': ns},
        # spire_agent role (template only)
        'spire_agent_trust_domain': TRUST_DOMAIN, 'spire_agent_data_dir': agent.data_dir,
        'spire_agent_server_address': '127.0.0.1', 'spire_agent_server_port': server.bind_port,
        'spire_agent_socket_path': agent.socket_path, 'spire_agent_trust_bundle_path': agent.trust_bundle_path,
        'spire_agent_node_attestor': 'k8s_psat', 'spire_agent_k8s_psat_cluster': CLUSTER,
        'spire_agent_k8s_psat_token_path': token_path, 'spire_agent_workload_attestors': ['unix'],
        'spire_agent_health_checks_bind_port': agent.health_port, 'spire_agent_telemetry_prometheus_enabled': False,
    }
    state = {'kube': kube, 'ns': ns, 'node': node, 'node_uid': node_uid, 'workdir': workdir, 'server': server,
             'agent': agent, 'extra': extra, 'runs': []}
    started = []
    try:
        # At -vvvv: the token must not reach the output. (Check mode and a second run with nothing changed are
        # proven on lab hosts with the whole roles: test_spire_k8s_lab.py.)
        rc, output, changed = playbook(workdir, 'server-apply', SERVER_PLAY, extra, args=('-vvvv',))
        state['runs'].append({'name': 'apply', 'rc': rc, 'output': output, 'changed': changed})
        assert rc == 0, output[-4000:]
        server.start()
        started.append(server)
        agent.start()
        started.append(agent)
        yield state
    finally:
        for proc in reversed(started + state.get('extra_agents', [])):
            proc.cleanup()
        if server not in started:
            server.cleanup()


def test_role_entry_point_makes_the_kubeconfig_and_the_config(lab):
    apply, = lab['runs']
    assert apply['changed'] > 0

    # The server's kubeconfig: 0600, a token of the spire-server account, the URL asked for; no token in any output.
    path = os.path.join(lab['server'].workdir, 'kubernetes.kubeconfig')
    controller_copy = lab['extra']['spire_server_k8s_controller_kubeconfig']
    for kubeconfig in (path, controller_copy):
        assert oct(os.stat(kubeconfig).st_mode & 0o777) == '0o600'
    with open(path) as handle:
        config = yaml.safe_load(handle)
    assert config['clusters'][0]['cluster']['server'] == lab['kube'].url
    token = config['users'][0]['user']['token']
    payload = json.loads(base64.urlsafe_b64decode(token.split('.')[1] + '=='))
    assert payload['sub'] == 'system:serviceaccount:%s:spire-server' % lab['ns']
    assert 'ESTABLISH LOCAL CONNECTION' in apply['output'], 'the apply run must be at -vvvv'
    for run in lab['runs']:
        assert token not in run['output'] and token.split('.')[2] not in run['output']

    # server.conf: the attestor's cluster got the role's kubeconfig, the notifier SPIRE's setting names.
    with open(lab['server'].rendered) as handle:
        conf = handle.read()
    assert '"kube_config_file" = "%s"' % path in conf
    assert '"service_account_allow_list" = ["%s:spire-agent"]' % lab['ns'] in conf
    assert 'Notifier "k8sbundle"' in conf
    for line in ('namespace = "%s"' % lab['ns'], 'config_map = "spire-bundle"', 'config_map_key = "bundle.crt"',
                 'kube_config_file_path = "%s"' % path):
        assert line in conf


def test_rbac_is_least_privilege(lab):
    """The server's account may create TokenReviews, get pods and nodes, and get/patch only its ConfigMap."""
    from kubernetes import client
    kube, ns = lab['kube'], lab['ns']
    user = 'system:serviceaccount:%s:spire-server' % ns
    authz = client.AuthorizationV1Api(kube.api)

    def allowed(verb, resource, group='', namespace=None, name=None):
        attrs = {'verb': verb, 'resource': resource, 'group': group}
        if namespace:
            attrs['namespace'] = namespace
        if name:
            attrs['name'] = name
        body = {'spec': {'user': user, 'groups': ['system:serviceaccounts', 'system:serviceaccounts:' + ns],
                         'resourceAttributes': attrs}}
        return authz.create_subject_access_review(body).status.allowed

    assert allowed('create', 'tokenreviews', 'authentication.k8s.io')
    assert allowed('get', 'pods', namespace='default', name='x')
    assert allowed('get', 'nodes', name='x')
    assert allowed('get', 'configmaps', namespace=ns, name='spire-bundle')
    assert allowed('patch', 'configmaps', namespace=ns, name='spire-bundle')
    assert not allowed('list', 'pods', namespace='default')
    assert not allowed('get', 'secrets', namespace=ns, name='x')
    assert not allowed('patch', 'configmaps', namespace=ns, name='other')
    assert not allowed('delete', 'configmaps', namespace=ns, name='spire-bundle')
    assert not allowed('patch', 'nodes', name='x')


def test_agent_attests_with_k8s_psat(lab):
    server, agent = lab['server'], lab['agent']
    expected = 'spiffe://%s/spire/agent/k8s_psat/%s/%s' % (TRUST_DOMAIN, CLUSTER, lab['node_uid'])
    assert agent.spiffe_id == expected
    shown = server.cli(['agent', 'show', '-spiffeID', expected])
    selectors = {'%s:%s' % (s['type'], s['value']) for s in shown['selectors']}
    pod_uid = lab['kube'].core().read_namespaced_pod('spire-agent-a', lab['ns']).metadata.uid
    for value in ('cluster:' + CLUSTER, 'agent_ns:' + lab['ns'], 'agent_sa:spire-agent', 'agent_pod_name:spire-agent-a',
                  'agent_pod_uid:' + pod_uid, 'agent_node_name:' + lab['node'], 'agent_node_uid:' + lab['node_uid'],
                  'agent_pod_label:app:spire-agent'):
        assert 'k8s_psat:' + value in selectors, selectors
    # Only the allowed label key becomes a selector.
    assert not [s for s in selectors if 'tier' in s], selectors


def test_workload_under_the_node_alias_gets_an_svid(lab):
    server, agent, ns = lab['server'], lab['agent'], lab['ns']
    alias = server.spiffe_id('k8s-node/%s/%s' % (CLUSTER, lab['node']))
    workload = server.spiffe_id('node-workload/root')
    entries = [
        {'spiffe_id': alias, 'parent_id': server.server_id,
         'selectors': ['k8s_psat:cluster:' + CLUSTER, 'k8s_psat:agent_ns:' + ns, 'k8s_psat:agent_sa:spire-agent',
                       'k8s_psat:agent_node_name:' + lab['node']]},
        {'spiffe_id': workload, 'parent_id': alias, 'selectors': ['unix:uid:%d' % os.getuid()], 'x509_svid_ttl': 600},
    ]
    plays = [{'name': 'Entries under a k8s_psat node alias', 'hosts': 'localhost', 'gather_facts': False,
              'roles': [{'role': 'trustroot.ops.spire_registration'}]}]
    extra = {'spire_registration_entries': entries, 'spire_registration_entry_id_prefix': 'k8s-psat-lab',
             'spire_registration_socket_path': server.socket_path}
    rc, output, changed = playbook(lab['workdir'], 'registration', plays, extra)
    assert rc == 0 and changed == 1, output[-3000:]

    deadline = time.monotonic() + 60
    body = None
    while time.monotonic() < deadline:
        rc, body, _err = agent.fetch_x509()
        if rc == 0 and [s for s in (body or {}).get('svids') or [] if s.get('spiffe_id') == workload]:
            break
        time.sleep(0.5)
    else:
        raise AssertionError('no SVID for %s; last answer %r' % (workload, body))


def refused(lab, name, token, reasons, timeout=40):
    """Start an agent with ``token``; wait until its log shows the server refusing it with one of ``reasons``."""
    path = write_token(os.path.join(lab['workdir'], name + '.token'), token)
    rendered = os.path.join(lab['workdir'], name + '.conf')
    agent = RenderedAgent(lab['workdir'], lab['server'], name, rendered)
    lab.setdefault('extra_agents', []).append(agent)
    with open(lab['agent'].rendered) as handle:
        conf = handle.read()
    for old, new in ((lab['agent'].data_dir, agent.data_dir), (lab['agent'].socket_path, agent.socket_path),
                     (lab['agent'].trust_bundle_path, agent.trust_bundle_path),
                     (lab['extra']['spire_agent_k8s_psat_token_path'], path),
                     ('bind_port = "%d"' % lab['agent'].health_port, 'bind_port = "%d"' % agent.health_port)):
        assert old in conf
        conf = conf.replace(old, new)
    with open(rendered, 'w') as handle:
        handle.write(conf)
    agent.launch()
    try:
        wait_for(lambda: any(reason in agent.log() for reason in reasons), timeout=timeout,
                 what='%s refused (%s)' % (name, agent.log_path))
        assert not agent.healthcheck()
        listed = lab['server'].cli(['agent', 'list']).get('agents') or []
        assert len(listed) == 1, listed
    finally:
        agent.stop()
    return agent.log()


def test_token_of_a_service_account_not_allowed_is_refused(lab):
    kube, ns = lab['kube'], lab['ns']
    node = lab['node'] + '-b'
    kube.node(node)
    kube.pod(ns, 'intruder', 'intruder', node)
    log = refused(lab, 'agent-intruder', kube.token(ns, 'intruder', pod='intruder', audience='spire-server'),
                  ['"%s:intruder" is not an allowed service account' % ns,
                   '\\"%s:intruder\\" is not an allowed service account' % ns])
    assert 'PermissionDenied' in log


def test_token_bound_to_a_deleted_pod_is_refused(lab):
    kube, ns = lab['kube'], lab['ns']
    node = lab['node'] + '-c'
    kube.node(node)
    kube.pod(ns, 'spire-agent-c', 'spire-agent', node)
    token = kube.token(ns, 'spire-agent', pod='spire-agent-c', audience='spire-server')
    kube.delete_pod(ns, 'spire-agent-c')
    # Refused by the TokenReview (the API server invalidates a token whose pod is gone) or, while its cache still
    # accepts the token, because the pod the token names is gone.
    log = refused(lab, 'agent-deleted', token, ['service account token has been invalidated',
                                                'token not authenticated according to TokenReview API',
                                                'fail to get pod from k8s API server'])
    assert 'nodeattestor(k8s_psat)' in log


def config_map_certs(lab):
    data = lab['kube'].core().read_namespaced_config_map('spire-bundle', lab['ns']).data or {}
    return pem_certs(data.get('bundle.crt', ''))


def test_bundle_config_map_follows_the_bundle_and_a_ca_rotation(lab):
    server = lab['server']
    before = pem_certs(server.bundle_pem())
    assert len(before) == 1
    wait_for(lambda: config_map_certs(lab) == before, timeout=30, what='the bundle in the ConfigMap')

    plays = [{'name': 'Prepare a new X.509 authority', 'hosts': 'localhost', 'gather_facts': False, 'tasks': [
        {'name': 'Prepare', 'trustroot.ops.spire_authority': {
            'authority_type': 'x509', 'state': 'prepared', 'wait': True, 'socket_path': server.socket_path}}]}]
    rc, output, changed = playbook(lab['workdir'], 'rotate', plays, {})
    assert rc == 0 and changed == 1, output[-3000:]
    after = pem_certs(server.bundle_pem())
    assert len(after) == 2 and before < after
    wait_for(lambda: config_map_certs(lab) == after, timeout=30, what='the rotated bundle in the ConfigMap')


def test_bad_cluster_settings_are_refused_naming_the_field(lab):
    extra = dict(lab['extra'], spire_server_k8s_psat_clusters={
        CLUSTER: {'service_account_allow_list': ['%s:spire-agent' % lab['ns']], 'allowed_pod_labels': ['app']}},
        spire_server_k8s_bundle={'namespace': lab['ns'], 'configmap': 'x'})
    rc, output, _changed = playbook(lab['workdir'], 'bad-cluster', SERVER_PLAY, extra, check=True)
    assert rc != 0
    assert 'spire_server_k8s_psat_clusters[%s]: unknown setting(s) allowed_pod_labels' % CLUSTER in output
    extra['spire_server_k8s_psat_clusters'] = lab['extra']['spire_server_k8s_psat_clusters']
    rc, output, _changed = playbook(lab['workdir'], 'bad-bundle', SERVER_PLAY, extra, check=True)
    assert rc != 0
    assert 'spire_server_k8s_bundle: unknown setting(s) configmap' in output

"""Init material in a Kubernetes Secret: vault_init -> vault_unseal (after a restart) -> vault_rekey -> vault_unseal,
against a real OpenBao and a real API server, the material nowhere but in the Secret, every run at -vvvv."""

import base64
import json
import subprocess
import uuid

from tests.lab.openbao import http

AGE_HEADER = b'-----BEGIN AGE ENCRYPTED FILE-----'


def secret_data(kube, namespace, name):
    """(data {key: bytes}, labels, annotations) of a Secret, or None when it does not exist."""
    from kubernetes.client.rest import ApiException
    try:
        secret = kube.core().read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    data = dict((k, base64.b64decode(v)) for k, v in (secret.data or {}).items())
    return data, secret.metadata.labels or {}, secret.metadata.annotations or {}


def secrets_of(material):
    values = []
    for name, value in material.items():
        if name.endswith(('_keys_b64', '_keys_hex')):
            values.extend(value)
    return values + ([material['root_token']] if material.get('root_token') else [])


def assert_no_leak(output, results, secrets):
    text = output + json.dumps(results)
    for secret in secrets:
        assert secret not in text, 'a key or token from the Secret reached the output'


def sealed(url):
    return http('GET', url + '/v1/sys/seal-status')[1]['sealed']


def age_pair(tmp_path):
    identity = tmp_path / 'operator.agekey'
    subprocess.run(['age-keygen', '-o', str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(['age-keygen', '-y', str(identity)], check=True, capture_output=True,
                               text=True).stdout.strip()
    return str(identity), recipient


def test_init_unseal_rekey_with_the_material_only_in_a_secret(ansible, bao_single, kube_cluster, tmp_path):
    kube, url = kube_cluster, bao_single.url
    namespace = kube.namespace('vault-material-%s' % uuid.uuid4().hex[:8])
    where = {'namespace': namespace, 'name': 'vault-init', 'kubeconfig': kube.admin_kubeconfig}
    identity, recipient = age_pair(tmp_path)

    # init: check mode writes nothing (a server-side dry run), then the run initializes.
    init = {'url': url, 'secret_shares': 3, 'secret_threshold': 2, 'output_secret': where}
    results, output = ansible.modules([('vault_init', init, {'check_mode': True}), ('vault_init', init)], diff=True,
                                      verbosity=4)
    checked, done = results
    assert checked['changed'] is True and not checked.get('failed'), checked
    assert done['changed'] is True and done['initialized'] is True, done
    assert done['output_secret'] == {'namespace': namespace, 'name': 'vault-init', 'key': 'material.json'}
    data, labels, annotations = secret_data(kube, namespace, 'vault-init')
    assert list(data) == ['material.json']
    first = json.loads(data['material.json'])
    assert first['format'] == 'trustroot.ops/vault-init/v1' and first['kind'] == 'init'
    assert len(first['unseal_keys_b64']) == 3 and first['unseal_threshold'] == 2 and first['root_token']
    assert labels['trustroot.ops/holds'] == 'vault-key-material'
    assert annotations['trustroot.ops/state'] == 'stored' and annotations['trustroot.ops/encrypted'] == 'none'
    assert annotations['trustroot.ops/material-key'] == 'material.json'
    metadata = json.dumps([labels, annotations])
    assert not any(secret in metadata for secret in secrets_of(first))
    assert_no_leak(output, results, secrets_of(first))
    assert 'vault-init' in output and 'module_args' in output, 'the run was not at -vvvv'

    # unseal after a restart, keys read from the Secret.
    bao_single.restart()
    assert sealed(url) is True
    unseal = {'url': url, 'material_secret': where}
    results, output = ansible.modules([('vault_unseal', unseal)], verbosity=4)
    assert results[0]['changed'] is True and results[0]['all_unsealed'] is True, results[0]
    assert sealed(url) is False
    assert_no_leak(output, results, secrets_of(first))

    # rekey: the Secret already holds material, so without overwrite_output it is refused before any attempt;
    # with it the new keys (age armor) replace it and the old material stays as previous-<stamp>.json.
    rekey = {'url': url, 'token': first['root_token'], 'material_secret': where, 'output_secret': where,
             'secret_shares': 4, 'secret_threshold': 3, 'age_recipients': [recipient]}
    results, output = ansible.modules([('vault_rekey', rekey), ('vault_rekey', dict(rekey, overwrite_output=True))],
                                      verbosity=4)
    refused, rekeyed = results
    assert refused['failed'] is True and not refused.get('changed'), refused
    assert 'output_secret: Secret %s/vault-init key material.json already holds key material' % namespace in \
        refused['msg'], refused['msg']
    assert 'nothing was sent to the server' in refused['msg']
    assert rekeyed['changed'] is True and rekeyed['verified'] is True and not rekeyed.get('failed'), rekeyed
    previous = rekeyed['output_secret']['previous']
    assert previous.startswith('previous-') and previous.endswith('.json')
    data, labels, annotations = secret_data(kube, namespace, 'vault-init')
    assert sorted(data) == sorted(['material.json', previous]), 'no staged or reserved key may be left'
    assert json.loads(data[previous]) == first, 'the old material is kept as it was'
    assert data['material.json'].startswith(AGE_HEADER)
    assert annotations['trustroot.ops/encrypted'] == 'age' and annotations['trustroot.ops/kind'] == 'rekey'
    second = json.loads(subprocess.run(['age', '-d', '-i', identity], input=data['material.json'], check=True,
                                       capture_output=True).stdout)
    assert len(second['unseal_keys_b64']) == 4 and second['unseal_threshold'] == 3
    assert not set(second['unseal_keys_b64']) & set(first['unseal_keys_b64'])
    assert http('GET', url + '/v1/sys/seal-status')[1]['n'] == 4
    assert_no_leak(output, results, secrets_of(first) + secrets_of(second))

    # the new material (age armor) unseals after a restart.
    bao_single.restart()
    results, output = ansible.modules([('vault_unseal', dict(unseal, age_identity=identity))], verbosity=4)
    unsealed = results[0]
    assert unsealed['changed'] is True and unsealed['all_unsealed'] is True, unsealed
    assert unsealed['nodes'][0]['keys_submitted'] == 3
    assert sealed(url) is False
    assert_no_leak(output, results, secrets_of(first) + secrets_of(second))


def test_unwritable_missing_or_foreign_secret_fails_before_the_server_is_initialized(
        ansible, bao_single, kube_cluster, tmp_path):
    from kubernetes import client
    kube, url = kube_cluster, bao_single.url
    namespace = kube.namespace('vault-material-%s' % uuid.uuid4().hex[:8])
    # A ServiceAccount without any RBAC rights: its token authenticates, every Secret call is forbidden.
    kube.service_account(namespace, 'no-rights')
    powerless = kube.kubeconfig(str(tmp_path / 'no-rights.kubeconfig'), token=kube.token(namespace, 'no-rights'))
    # One that may read Secrets but not write them: only the reservation (a write) can stop it before the server.
    kube.service_account(namespace, 'read-only')
    rbac = client.RbacAuthorizationV1Api(kube.api)
    rbac.create_namespaced_role(namespace, {'metadata': {'name': 'read-secrets'}, 'rules': [
        {'apiGroups': [''], 'resources': ['secrets'], 'verbs': ['get', 'list']}]})
    rbac.create_namespaced_role_binding(namespace, {
        'metadata': {'name': 'read-secrets'}, 'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'Role',
                                                          'name': 'read-secrets'},
        'subjects': [{'kind': 'ServiceAccount', 'name': 'read-only', 'namespace': namespace}]})
    reader = kube.kubeconfig(str(tmp_path / 'read-only.kubeconfig'), token=kube.token(namespace, 'read-only'))
    kube.core().create_namespaced_secret(namespace, {'metadata': {'name': 'foreign'},
                                                     'data': {'material.json': base64.b64encode(b'db password').decode()}})

    def init(overwrite_output=False, **where):
        return {'url': url, 'overwrite_output': overwrite_output, 'output_secret': dict(
            {'namespace': namespace, 'name': 'vault-init', 'kubeconfig': kube.admin_kubeconfig}, **where)}
    results, output = ansible.modules([
        ('vault_init', init(kubeconfig=powerless), {'check_mode': True}),
        ('vault_init', init(kubeconfig=powerless)),
        ('vault_init', init(kubeconfig=reader), {'check_mode': True}),
        ('vault_init', init(kubeconfig=reader)),
        ('vault_init', init(namespace='vault-material-absent')),
        ('vault_init', init(name='foreign')),
        ('vault_unseal', {'url': url, 'material_secret': {'namespace': namespace, 'name': 'foreign',
                                                          'kubeconfig': kube.admin_kubeconfig}}),
        ('vault_init', init(name='vault-check'), {'check_mode': True}),
    ], verbosity=4)
    checked = results.pop()
    assert checked['changed'] is True and not checked.get('failed'), checked
    for result in results:
        assert result['failed'] is True and not result.get('changed'), result
    check, forbidden, check_read_only, read_only, absent, foreign, unseal_foreign = results
    for result in (check, forbidden):
        assert result['msg'].startswith('output_secret: '), result['msg']
        assert 'Secret %s/vault-init' % namespace in result['msg'] and 'HTTP 403' in result['msg'], result['msg']
        assert 'nothing was sent to the server' in result['msg']
    for result in (check_read_only, read_only):
        assert 'create Secret %s/vault-init: HTTP 403' % namespace in result['msg'], result['msg']
        assert 'nothing was sent to the server' in result['msg']
    assert 'vault-material-absent/vault-init' in absent['msg'] and 'HTTP 404' in absent['msg'], absent['msg']
    assert 'output_secret: Secret %s/foreign key material.json holds something that is not key material' % (
        namespace) in foreign['msg'], foreign['msg']
    assert 'material_secret: Secret %s/foreign key material.json is not a key material file' % namespace in \
        unseal_foreign['msg'], unseal_foreign['msg']
    assert 'db password' not in output

    assert http('GET', url + '/v1/sys/seal-status')[1]['initialized'] is False
    assert secret_data(kube, namespace, 'vault-init') is None, 'nothing may be left in the namespace'
    assert secret_data(kube, namespace, 'vault-check') is None, 'check mode writes nothing'
    assert secret_data(kube, namespace, 'foreign')[0] == {'material.json': b'db password'}

"""vault_rekey against real OpenBao 2.7.2 servers (3-node raft cluster, auto-unseal, legacy listener)."""

import base64
import json
import os
import stat

import pytest

from tests.lab.openbao import BaoServer, free_port, http, wait_for


# --- helpers: raw API calls (the harness's own client, not the collection's) ---

def api(method, url, path, payload=None, token=None):
    return http(method, url + '/v1/' + path, payload, token=token)


def rotate_status(url, token, target='root'):
    status, body = api('GET', url, 'sys/rotate/%s/init' % target, token=token)
    assert status == 200, body
    return body['data']


def active_url(cluster):
    """Rekey attempts live on the active node: raw checks of them go there."""
    leader = http('GET', cluster.urls[0] + '/v1/sys/leader')[1]
    return leader['leader_address'].rstrip('/')


def a_standby(cluster):
    active = active_url(cluster)
    return next(node for node in cluster.nodes if node.url != active)


def layout(url):
    status = http('GET', url + '/v1/sys/seal-status')[1]
    return status['n'], status['t']


def wait_layout(urls, shares, threshold):
    for url in urls:
        wait_for(lambda u=url: layout(u) == (shares, threshold), timeout=30,
                 what='%s to report %d/%d' % (url, threshold, shares))


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def run_many(ansible, module, arg_sets, tmp_path):
    """Run the module once per argument set, all in one ansible-playbook run; return the results in order
    (each with '_stdout', the whole run's output)."""
    results_path = str(tmp_path / ('%s-results.json' % module))
    tasks = [{'name': 'case %d' % i, 'trustroot.ops.%s' % module: args, 'register': 'case%d' % i,
              'ignore_errors': True} for i, args in enumerate(arg_sets)]
    tasks.append({'name': 'save results', 'ansible.builtin.copy': {
        'content': '{{ [%s] | to_json }}' % ', '.join('case%d' % i for i in range(len(arg_sets))),
        'dest': results_path, 'mode': '0600'}})
    play_path = str(tmp_path / ('%s-cases.yml' % module))
    with open(play_path, 'w') as handle:
        json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}], handle)
    proc = ansible.playbook(play_path)
    assert os.path.exists(results_path), proc.stdout + proc.stderr
    results = read_json(results_path)
    for result in results:
        result['_stdout'] = proc.stdout
    return results


def file_mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def submit_unseal(server, keys):
    """Send keys to a sealed node one by one; return the last answer (status, body)."""
    answer = None
    for key in keys:
        answer = http('PUT', server.url + '/v1/sys/unseal', {'key': key})
        if answer[0] == 200 and answer[1] and not answer[1].get('sealed'):
            break
    return answer


def restart_sealed(server):
    server.restart()
    wait_for(lambda: (server.seal_status() or {}).get('sealed') is True, timeout=30, what='node sealed')


def assert_unseals_with(server, keys):
    submit_unseal(server, keys)
    wait_for(lambda: server.seal_status() and not server.seal_status()['sealed'], timeout=60,
             what='%s to unseal with the new keys' % server.node_id)


def assert_rejects(server, keys):
    """A threshold of these keys does not unseal the node (the server rejects the combined key)."""
    status, body = submit_unseal(server, keys)
    assert server.seal_status()['sealed'] is True
    assert status == 400 and body['errors'], (status, body)
    http('PUT', server.url + '/v1/sys/unseal', {'reset': True})


def assert_no_secrets(result, secrets):
    text = result['_stdout'] + json.dumps({k: v for k, v in result.items() if k != '_stdout'})
    for secret in secrets:
        assert secret and secret not in text


def cluster_secrets(cluster):
    return list(cluster.keys) + list(cluster.init['keys']) + [cluster.root_token]


def material_secrets(path):
    material = read_json(path)
    values = []
    for name, value in material.items():
        if name.endswith(('_keys_b64', '_keys_hex')):
            values += value
    return values


# --- tests on the 3-node cluster ---

def test_rekey_3_2_to_5_3_new_keys_unseal_old_do_not(ansible, bao_unsealed, tmp_path):
    cluster = bao_unsealed
    init_file = cluster.write_init_file(tmp_path / 'init.json')
    output = str(tmp_path / 'rekey.json')
    result = ansible.module('vault_rekey', {
        'url': cluster.urls[0], 'token': cluster.root_token, 'key_material_path': init_file,
        'secret_shares': 5, 'secret_threshold': 3, 'output_path': output}, diff=True, verbosity=4)
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is True
    assert (result['api'], result['target'], result['shares'], result['threshold']) == ('rotate_root', 'unseal', 5, 3)
    assert (result['previous_shares'], result['previous_threshold']) == (3, 2)
    assert result['verified'] is True and result['output_path'] == output and result['nonce']
    assert result['diff'] == {'before': {'shares': 3, 'threshold': 2}, 'after': {'shares': 5, 'threshold': 3}}

    material = read_json(output)
    assert file_mode(output) == 0o600
    assert material['kind'] == 'rekey' and material['keys_pgp_encrypted'] is False
    assert (material['unseal_shares'], material['unseal_threshold']) == (5, 3)
    new_keys = material['unseal_keys_b64']
    assert len(new_keys) == 5 and not set(new_keys) & set(cluster.keys)
    assert 'root_token' not in material
    assert_no_secrets(result, cluster_secrets(cluster) + material_secrets(output))

    wait_layout([result['active_node']], 5, 3)
    assert rotate_status(active_url(cluster), cluster.root_token)['started'] is False
    # A restarted node is sealed: the old keys no longer open it, the new ones do.
    follower = a_standby(cluster)
    restart_sealed(follower)
    assert follower.seal_status()['t'] == 3
    assert_rejects(follower, cluster.keys[:2] + [cluster.keys[2]])
    assert_unseals_with(follower, new_keys[2:5])


def test_check_mode_reports_change_and_starts_nothing(ansible, bao_unsealed, tmp_path):
    cluster = bao_unsealed
    output = str(tmp_path / 'rekey.json')
    result = ansible.module('vault_rekey', {
        'url': cluster.urls[1], 'token': cluster.root_token, 'keys': cluster.keys,
        'secret_shares': 4, 'secret_threshold': 2, 'output_path': output}, check=True, diff=True)
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is True and result['nonce'] is None and result['output_path'] is None
    assert result['diff']['after'] == {'shares': 4, 'threshold': 2}
    assert not os.path.exists(output)
    assert rotate_status(active_url(cluster), cluster.root_token)['started'] is False
    assert layout(cluster.urls[0]) == (3, 2)
    assert_no_secrets(result, cluster_secrets(cluster))


def test_without_verification_then_rerun_is_refused(ansible, bao_unsealed, tmp_path):
    """require_verification=false takes effect on the last current key; a second run with the same
    output_path is refused before it touches the server (a rekey is an action, guarded by the file)."""
    cluster = bao_unsealed
    output = str(tmp_path / 'rekey.json')
    args = {'url': cluster.urls[0], 'token': cluster.root_token, 'keys': cluster.keys,
            'secret_shares': 3, 'secret_threshold': 3, 'require_verification': False, 'output_path': output}
    first = ansible.module('vault_rekey', args)
    assert not first.get('failed'), first.get('msg')
    assert first['changed'] is True and first['verified'] is False
    wait_layout([first['active_node']], 3, 3)
    new_keys = read_json(output)['unseal_keys_b64']
    before = open(output).read()

    second = ansible.module('vault_rekey', dict(args, keys=new_keys))
    assert second['failed'] is True and second['changed'] is False
    assert 'output_path' in second['msg'] and 'already exists' in second['msg']
    assert open(output).read() == before
    assert rotate_status(active_url(cluster), cluster.root_token)['started'] is False
    assert layout(first['active_node']) == (3, 3)
    assert_no_secrets(first, cluster_secrets(cluster) + new_keys)
    assert_no_secrets(second, cluster_secrets(cluster) + new_keys)

    # The material of this run feeds the next one (overwrite in place), with the default verification.
    third = ansible.module('vault_rekey', {
        'url': cluster.urls[0], 'token': cluster.root_token, 'key_material_path': output,
        'output_path': output, 'overwrite_output': True})
    assert not third.get('failed'), third.get('msg')
    assert (third['shares'], third['threshold'], third['verified']) == (3, 3, True)
    newest = read_json(output)['unseal_keys_b64']
    assert not set(newest) & set(new_keys)
    assert_no_secrets(third, new_keys + newest)
    standby = a_standby(cluster)
    restart_sealed(standby)
    assert_unseals_with(standby, newest[:3])


def test_pgp_encrypted_shares_with_server_backup(ansible, bao_unsealed, tmp_path, gpg):
    cluster = bao_unsealed
    pgp_keys = [gpg.new_key('officer%d' % i) for i in range(3)]
    output = str(tmp_path / 'rekey-pgp.json')
    result = ansible.module('vault_rekey', {
        'url': cluster.urls[0], 'token': cluster.root_token, 'keys': cluster.keys,
        'secret_shares': 3, 'secret_threshold': 2, 'pgp_keys': pgp_keys, 'backup': True,
        'require_verification': False, 'output_path': output})
    assert not result.get('failed'), result.get('msg')
    assert len(result['pgp_fingerprints']) == 3

    material = read_json(output)
    assert material['keys_pgp_encrypted'] is True
    blobs = material['unseal_keys_b64']
    assert len(blobs) == 3
    # Each blob is a PGP message that gpg decrypts to a hex unseal key.
    plain = [gpg.decrypt_b64(blob).decode().strip() for blob in blobs[:2]]
    assert all(len(p) > 60 and all(c in '0123456789abcdef' for c in p) for p in plain)
    assert not set(plain) & set(cluster.init['keys'])
    assert_no_secrets(result, cluster_secrets(cluster) + plain)

    status, backup = api('GET', active_url(cluster), 'sys/rotate/root/backup', token=cluster.root_token)
    assert status == 200 and backup['data']['nonce'] == result['nonce']

    wait_layout([result['active_node']], 3, 2)
    standby = a_standby(cluster)
    restart_sealed(standby)
    assert_unseals_with(standby, plain)


def test_cancel_stale_attempt(ansible, bao_unsealed, tmp_path):
    cluster = bao_unsealed
    url, token = active_url(cluster), cluster.root_token
    status, body = api('PUT', url, 'sys/rotate/root/init', {'secret_shares': 1, 'secret_threshold': 1}, token=token)
    assert status == 200
    stale_nonce = body['data']['nonce']
    args = {'url': url, 'token': token, 'keys': cluster.keys, 'output_path': str(tmp_path / 'out.json')}

    refused = ansible.module('vault_rekey', args)
    assert refused['failed'] is True
    assert 'already in progress' in refused['msg'] and 'cancel_stale' in refused['msg']
    assert rotate_status(url, token)['nonce'] == stale_nonce
    assert not os.path.exists(args['output_path'])

    check = ansible.module('vault_rekey', dict(args, cancel_stale=True), check=True)
    assert check['changed'] is True and check['stale_cancelled'] is True
    assert rotate_status(url, token)['nonce'] == stale_nonce

    done = ansible.module('vault_rekey', dict(args, cancel_stale=True))
    assert not done.get('failed'), done.get('msg')
    assert done['stale_cancelled'] is True and done['nonce'] != stale_nonce
    assert (done['shares'], done['threshold']) == (3, 2)
    assert rotate_status(url, token)['started'] is False
    assert_no_secrets(done, cluster_secrets(cluster) + material_secrets(args['output_path']))


def test_bad_inputs_change_nothing(ansible, bao_unsealed, tmp_path, gpg):
    cluster = bao_unsealed
    url, token = active_url(cluster), cluster.root_token
    one_pgp_key = gpg.new_key('only')
    base = {'url': url, 'token': token, 'keys': cluster.keys, 'output_path': str(tmp_path / 'out.json')}
    a_directory = tmp_path / 'a-directory'
    a_directory.mkdir()
    existing = tmp_path / 'existing.json'
    existing.write_text('{}')
    cases = [
        (dict(secret_shares=3, secret_threshold=4), ['secret_threshold', 'larger than secret_shares']),
        (dict(secret_shares=3, secret_threshold=1), ['secret_threshold', 'greater than 1']),
        (dict(secret_shares=0, secret_threshold=0), ['secret_shares', 'at least 1']),
        (dict(secret_shares=3, secret_threshold=2, pgp_keys=[one_pgp_key], require_verification=False),
         ['pgp_keys', 'one key per share', '1 given']),
        (dict(pgp_keys=[one_pgp_key]), ['require_verification', 'pgp_keys']),
        (dict(pgp_keys=['not base64!'], require_verification=False), ['pgp_keys[0]']),
        (dict(backup=True), ['backup', 'pgp_keys']),
        (dict(output_path=str(tmp_path / 'missing' / 'out.json')), ['output_path', 'does not exist']),
        (dict(output_path=str(a_directory)), ['output_path', 'is a directory']),
        (dict(output_path=str(existing)), ['output_path', 'already exists', 'overwrite_output']),
        (dict(keys=cluster.keys[:1]), ['keys', '1 current key', 'threshold', '2']),
        (dict(keys=['%%%%']), ['keys[0]', 'neither hex nor base64']),
        (dict(keys=[cluster.keys[0], cluster.keys[0]]), ['keys', 'more than once']),
        (dict(target='recovery'), ['target', 'Shamir', 'target=unseal']),
        (dict(token=None), ['token is required', 'sys/rotate/root']),
        (dict(url=None), ['url is required']),
        (dict(age_recipients=['age1notarecipient']), ['age_recipients']),
        (dict(keys=None, key_material_path=str(tmp_path / 'nope.json')), ['key_material_path', 'cannot read']),
    ]
    arg_sets = [{k: v for k, v in dict(base, **extra).items() if v is not None} for extra, _words in cases]
    results = run_many(ansible, 'vault_rekey', arg_sets, tmp_path)
    for (extra, words), result in zip(cases, results):
        assert result['failed'] is True, (extra, result)
        assert result['changed'] is False
        for word in words:
            assert word in result['msg'], (extra, result['msg'])
    assert_no_secrets(results[0], cluster_secrets(cluster) + [one_pgp_key])
    for result in results:
        assert_no_secrets(dict(result, _stdout=''), cluster_secrets(cluster) + [one_pgp_key])
    assert rotate_status(url, token)['started'] is False
    assert layout(url) == (3, 2)
    assert not os.path.exists(base['output_path'])
    assert existing.read_text() == '{}'


def test_wrong_current_key_cancels_the_attempt(ansible, bao_unsealed, tmp_path):
    cluster = bao_unsealed
    url, token = a_standby(cluster).url, cluster.root_token
    # A well-formed share that belongs to no cluster (33 bytes like the real ones).
    wrong = base64.b64encode(os.urandom(33)).decode()
    output = str(tmp_path / 'out.json')
    result = ansible.module('vault_rekey', {'url': url, 'token': token, 'keys': [cluster.keys[0], wrong],
                                            'secret_shares': 5, 'secret_threshold': 3, 'output_path': output})
    assert result['failed'] is True
    assert 'keys' in result['msg'] and 'rejected' in result['msg'] and 'attempt was cancelled' in result['msg']
    assert '%!w' not in result['msg']
    assert result['active_node'] == active_url(cluster) != url
    assert rotate_status(active_url(cluster), token)['started'] is False
    assert layout(active_url(cluster)) == (3, 2)
    assert not os.path.exists(output)
    assert_no_secrets(result, cluster_secrets(cluster) + [wrong])
    # The old keys still work for a rekey right after.
    again = ansible.module('vault_rekey', {'url': url, 'token': token, 'keys': cluster.keys,
                                           'output_path': output})
    assert not again.get('failed'), again.get('msg')


@pytest.mark.parametrize('verify', [True, False], ids=['verified', 'unverified'])
def test_full_disk_is_refused_before_the_rekey_starts(ansible, bao_unsealed, full_tmpfs, verify):
    """New keys that could not be kept must never be made: without verification they would replace the old
    ones and be lost."""
    cluster = bao_unsealed
    url, token = active_url(cluster), cluster.root_token
    output = os.path.join(full_tmpfs, 'rekey.json')
    result = ansible.module('vault_rekey', {'url': url, 'token': token, 'keys': cluster.keys, 'secret_shares': 5,
                                            'secret_threshold': 3, 'require_verification': verify,
                                            'output_path': output})
    assert result['failed'] is True and not result.get('changed'), result
    assert result['msg'].startswith('output_path: no space left on device in %s (needed ~' % full_tmpfs), result['msg']
    assert 'nothing was sent to the server' in result['msg'] and not result.get('nonce')
    assert os.listdir(full_tmpfs) == ['filler'], 'no placeholder left behind'
    assert rotate_status(url, token)['started'] is False
    assert layout(url) == (3, 2)
    assert_no_secrets(result, cluster_secrets(cluster))
    # The old keys still open a node that seals.
    standby = a_standby(cluster)
    restart_sealed(standby)
    assert_unseals_with(standby, cluster.keys[:2])


def test_sealed_and_stopped_server(ansible, bao_cluster, tmp_path):
    cluster = bao_cluster  # sealed
    args = {'url': cluster.urls[0], 'token': cluster.root_token, 'keys': cluster.keys,
            'output_path': str(tmp_path / 'out.json')}
    sealed = ansible.module('vault_rekey', args)
    assert sealed['failed'] is True and 'sealed' in sealed['msg']
    cluster.nodes[0].stop()
    stopped = ansible.module('vault_rekey', args)
    assert stopped['failed'] is True
    assert cluster.urls[0] in stopped['msg'] and 'unreachable' in stopped['msg']
    assert not os.path.exists(args['output_path'])


# --- auto-unseal: recovery keys ---

def test_recovery_keys_on_auto_unseal(ansible, bao_autounseal_single, tmp_path):
    server = bao_autounseal_single
    status, init = http('PUT', server.url + '/v1/sys/init', {'recovery_shares': 3, 'recovery_threshold': 2})
    assert status == 200, init
    token, old = init['root_token'], init['recovery_keys_base64']
    wait_for(lambda: not server.seal_status()['sealed'], timeout=30, what='auto-unseal')
    wait_for(lambda: http('GET', server.url + '/v1/sys/leader')[1].get('is_self'), timeout=30, what='leader')
    secrets = old + init['recovery_keys'] + [token]
    base = {'url': server.url, 'token': token, 'output_path': str(tmp_path / 'recovery.json')}

    # The refused run (wrong target, nothing sent) and the real one share one playbook run, in that order.
    (wrong_target, result), output = ansible.modules([
        ('vault_rekey', dict(base, keys=old)),
        ('vault_rekey', dict(base, keys=old, target='recovery', secret_shares=5, secret_threshold=3), {'diff': True})])
    result['_stdout'] = output
    assert wrong_target['failed'] is True
    assert 'target' in wrong_target['msg'] and 'target=recovery' in wrong_target['msg']

    assert not result.get('failed'), result.get('msg')
    assert (result['target'], result['api'], result['verified']) == ('recovery', 'rotate_root', True)
    assert result['diff']['before'] == {'shares': 3, 'threshold': 2}
    material = read_json(base['output_path'])
    assert (material['recovery_shares'], material['recovery_threshold']) == (5, 3)
    new = material['recovery_keys_b64']
    assert len(new) == 5 and 'unseal_keys_b64' not in material
    assert layout(server.url) == (5, 3)
    assert_no_secrets(result, secrets + new)

    # The old recovery keys are refused now (and that attempt is cancelled); the new ones work.
    stale_old = ansible.module('vault_rekey', dict(base, keys=old, target='recovery',
                                                   output_path=str(tmp_path / 'again.json')))
    assert stale_old['failed'] is True and 'rejected' in stale_old['msg'] and 'cancelled' in stale_old['msg']
    assert rotate_status(server.url, token, 'recovery')['started'] is False
    again = ansible.module('vault_rekey', dict(base, key_material_path=base['output_path'], target='recovery',
                                               output_path=str(tmp_path / 'again.json'), secret_shares=3,
                                               secret_threshold=2))
    assert not again.get('failed'), again.get('msg')
    assert layout(server.url) == (3, 2)
    assert_no_secrets(again, secrets + new + material_secrets(str(tmp_path / 'again.json')))


# --- the unauthenticated sys/rekey API (HashiCorp Vault, OpenBao < 2.5, or re-enabled on a listener) ---

@pytest.fixture
def bao_legacy_listener(tmp_path):
    """A single node with a second listener that serves the unauthenticated rekey / generate-root endpoints."""
    server = BaoServer(str(tmp_path), 'legacy')
    server.legacy_port = free_port()
    server.seal_stanza = ('listener "tcp" {\n  address = "127.0.0.1:%d"\n  tls_disable = true\n'
                          '  disable_unauthed_rekey_endpoints = false\n'
                          '  disable_unauthed_generate_root_endpoints = false\n}\n') % server.legacy_port
    server.start()
    status, init = http('PUT', server.url + '/v1/sys/init', {'secret_shares': 3, 'secret_threshold': 2})
    assert status == 200, init
    for key in init['keys_base64'][:2]:
        http('PUT', server.url + '/v1/sys/unseal', {'key': key})
    wait_for(lambda: http('GET', server.url + '/v1/sys/leader')[1].get('is_self'), timeout=30, what='leader')
    server.init = init
    server.legacy_url = 'http://127.0.0.1:%d' % server.legacy_port
    yield server
    server.stop()


def test_unauthenticated_rekey_api(ansible, bao_legacy_listener, tmp_path):
    server = bao_legacy_listener
    keys, token = server.init['keys_base64'], server.init['root_token']
    secrets = keys + server.init['keys'] + [token]
    output = str(tmp_path / 'legacy.json')

    # Two refused runs (nothing sent) and the real one share one playbook run, in that order.
    (turned_off, no_token, result), output_text = ansible.modules([
        ('vault_rekey', {'url': server.url, 'keys': keys, 'api': 'rekey', 'output_path': output}),
        ('vault_rekey', {'url': server.legacy_url, 'keys': keys, 'output_path': output}),
        ('vault_rekey', {'url': server.legacy_url, 'keys': keys, 'api': 'rekey', 'secret_shares': 4,
                         'secret_threshold': 3, 'output_path': output})])
    result['_stdout'] = output_text
    assert turned_off['failed'] is True
    assert 'disable_unauthed_rekey_endpoints = false' in turned_off['msg'] and 'token' in turned_off['msg']
    assert no_token['failed'] is True and 'token is required' in no_token['msg']

    assert not result.get('failed'), result.get('msg')
    assert (result['api'], result['verified'], result['shares'], result['threshold']) == ('rekey', True, 4, 3)
    assert layout(server.url) == (4, 3)
    new = read_json(output)['unseal_keys_b64']
    assert_no_secrets(result, secrets + new)
    status, body = http('GET', server.legacy_url + '/v1/sys/rekey/init')
    assert status == 200 and body['started'] is False
    restart_sealed(server)
    assert_rejects(server, keys[:3])
    assert_unseals_with(server, new[1:4])

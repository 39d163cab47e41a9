"""vault_root_token against real OpenBao 2.7.2 servers.

OpenBao 2.7.2 serves the token-authenticated sys/generate-root-token endpoints and turns the
unauthenticated sys/generate-root ones off unless a listener sets
disable_unauthed_generate_root_endpoints = false: both paths are tested, and the error when it is off.
"""

import base64
import json
import os
import stat
import subprocess

import pytest

from tests.integration.probes import answer_of, exists, http_probe, play, stat_probe, task
from tests.lab.openbao import BaoServer, free_port, http, wait_for


def api(method, url, path, payload=None, token=None):
    return http(method, url + '/v1/' + path, payload, token=token)


def active_url(cluster):
    leader = http('GET', cluster.urls[0] + '/v1/sys/leader')[1]
    return leader['leader_address'].rstrip('/')


def a_standby(cluster):
    active = active_url(cluster)
    return next(node for node in cluster.nodes if node.url != active)


def attempt_status(url, token):
    status, body = api('GET', url, 'sys/generate-root-token/attempt', token=token)
    assert status == 200, body
    return body['data']


def token_policies(url, token):
    status, body = api('GET', url, 'auth/token/lookup-self', token=token)
    return body['data']['policies'] if status == 200 else None


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def root_token(args, **options):
    """A vault_root_token task (options: check_mode, diff)."""
    return task('vault_root_token', args, **options)


def attempt_probe(url, token):
    """Reads the sys/generate-root-token attempt at that point of the run: see attempt_of()."""
    return http_probe(url + '/v1/sys/generate-root-token/attempt', token)


def attempt_of(probe):
    status, body = answer_of(probe)
    assert status == 200, body
    return body['data']


def policies_probe(url, token):
    """Looks the token up at that point of the run: see policies_of()."""
    return http_probe(url + '/v1/auth/token/lookup-self', token, status_code=(200, 403))


def policies_of(probe):
    """The policies of the probed token, None when it is not valid (as token_policies)."""
    status, body = answer_of(probe)
    assert status in (200, 403), (status, body)
    return body['data']['policies'] if status == 200 else None


def run_many(ansible, module, arg_sets, tmp_path):
    """Run the module once per argument set, all in one ansible-playbook run; return the results in order
    (each with '_stdout', the whole run's output)."""
    return play(ansible, tmp_path, [('trustroot.ops.%s' % module, args, {}) for args in arg_sets])


def assert_no_secrets(result, secrets):
    text = result['_stdout'] + json.dumps({k: v for k, v in result.items() if k != '_stdout'})
    for secret in secrets:
        assert secret and secret not in text


def cluster_secrets(cluster):
    return list(cluster.keys) + list(cluster.init['keys']) + [cluster.root_token]


def age_identity(tmp_path):
    path = str(tmp_path / 'operator.agekey')
    subprocess.run(['age-keygen', '-o', path], check=True, capture_output=True)
    recipient = subprocess.run(['age-keygen', '-y', path], check=True, capture_output=True, text=True).stdout.strip()
    return path, recipient


def age_decrypt(path, identity):
    return subprocess.run(['age', '--decrypt', '--identity', identity, path], check=True,
                          capture_output=True).stdout


# --- a sealed, then stopped, server (its own cluster: the shared one below stays unsealed) ---
# Runs before the tests on the shared cluster: both start on the cluster template's data, at its ports.

def test_sealed_and_stopped_server(ansible, bao_cluster, tmp_path):
    cluster = bao_cluster  # sealed
    args = {'url': cluster.urls[0], 'token': cluster.root_token, 'keys': cluster.keys,
            'output_path': str(tmp_path / 'root.json')}
    sealed = ansible.module('vault_root_token', args)
    assert sealed['failed'] is True and 'sealed' in sealed['msg']
    cluster.nodes[0].stop()
    stopped, revoke = run_many(ansible, 'vault_root_token', [
        args, {'url': cluster.urls[0], 'state': 'absent', 'token_to_revoke': cluster.root_token}], tmp_path)
    assert stopped['failed'] is True
    assert cluster.urls[0] in stopped['msg'] and 'unreachable' in stopped['msg']
    assert revoke['failed'] is True and 'unreachable' in revoke['msg']
    assert not os.path.exists(args['output_path'])


# --- one unsealed cluster shared by the tests that only add tokens of their own and leave no attempt behind ---

@pytest.fixture
def unsealed(bao_unsealed_shared):
    """The shared cluster, unsealed, with no root token generation in progress (a failed test may leave one: it must
    not fail the next test)."""
    url, token = active_url(bao_unsealed_shared), bao_unsealed_shared.root_token
    if attempt_status(url, token)['started']:
        status, body = api('DELETE', url, 'sys/generate-root-token/attempt', token=token)
        assert status in (200, 204), body
    return bao_unsealed_shared


# --- the authenticated sys/generate-root-token endpoints (OpenBao >= 2.6.0) ---

def test_generate_with_token_check_mode_then_real_then_refused_rerun(ansible, unsealed, tmp_path):
    cluster = unsealed
    init_file = cluster.write_init_file(tmp_path / 'init.json')
    output = str(tmp_path / 'root.json')
    # Through a standby: the module runs the attempt on the active node.
    args = {'url': a_standby(cluster).url, 'token': cluster.root_token, 'key_material_path': init_file,
            'output_path': output}
    active = active_url(cluster)

    # Check mode, the real run and the refused re-run in one playbook run (-vvvv), the output file and the attempt
    # read after each.
    (check, output_after_check, attempt_after_check, result, attempt_after_result, rerun, attempt_after_rerun) = play(
        ansible, tmp_path, [root_token(args, check_mode=True, diff=True), stat_probe(output),
                            attempt_probe(active, cluster.root_token), root_token(args),
                            attempt_probe(active, cluster.root_token), root_token(args),
                            attempt_probe(active, cluster.root_token)], verbosity=4)
    assert not check.get('failed'), check.get('msg')
    assert check['changed'] is True and check['api'] == 'generate_root_token'
    assert check['diff'] == {'before': {'new_root_token': False},
                             'after': {'new_root_token': True, 'output_path': output}}
    assert not exists(output_after_check), 'check mode wrote the output'
    assert attempt_of(attempt_after_check)['started'] is False, 'check mode started an attempt'

    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is True and result['verified'] is True and result['recovery_keys'] is False
    assert result['active_node'] == active_url(cluster) and result['nonce']
    assert stat.S_IMODE(os.stat(output).st_mode) == 0o600
    material = read_json(output)
    assert material['kind'] == 'root_token' and material['root_token_pgp_encrypted'] is False
    new_token = material['root_token']
    assert new_token != cluster.root_token
    assert token_policies(cluster.urls[0], new_token) == ['root']
    assert attempt_of(attempt_after_result)['started'] is False
    assert_no_secrets(result, cluster_secrets(cluster) + [new_token])
    assert 'otp' not in json.dumps({k: v for k, v in result.items() if k != '_stdout'}).lower()

    assert rerun['failed'] is True and rerun['changed'] is False
    assert 'output_path' in rerun['msg'] and 'already exists' in rerun['msg']
    assert read_json(output)['root_token'] == new_token
    assert attempt_of(attempt_after_rerun)['started'] is False


def test_unauthenticated_endpoints_off_by_default(ansible, unsealed, tmp_path):
    cluster = unsealed
    output = str(tmp_path / 'root.json')
    cases = ({}, {'token': cluster.root_token, 'api': 'generate_root'})
    results = run_many(ansible, 'vault_root_token', [dict({'url': cluster.urls[0], 'keys': cluster.keys,
                                                           'output_path': output}, **extra) for extra in cases], tmp_path)
    for extra, result in zip(cases, results):
        assert result['failed'] is True, extra
        assert 'disable_unauthed_generate_root_endpoints = false' in result['msg'], (extra, result['msg'])
        assert 'listener' in result['msg'] and 'sys/generate-root-token' in result['msg'], (extra, result['msg'])
        assert_no_secrets(result, cluster_secrets(cluster))
    assert not os.path.exists(output)
    assert attempt_status(active_url(cluster), cluster.root_token)['started'] is False


def test_pgp_encrypted_token(ansible, unsealed, tmp_path, gpg):
    cluster = unsealed
    output = str(tmp_path / 'root-pgp.json')
    # The generation and the refused revocation of what it wrote, in one playbook run.
    result, revoke_refused = run_many(ansible, 'vault_root_token', [
        {'url': cluster.urls[0], 'token': cluster.root_token, 'keys': cluster.keys, 'pgp_key': gpg.new_key('officer'),
         'output_path': output},
        {'url': cluster.urls[0], 'state': 'absent', 'token_material_path': output}], tmp_path)
    assert not result.get('failed'), result.get('msg')
    assert result['verified'] is False and result['pgp_fingerprint']
    material = read_json(output)
    assert material['root_token_pgp_encrypted'] is True
    token = gpg.decrypt_b64(material['root_token']).decode().strip()
    assert token_policies(cluster.urls[0], token) == ['root']
    assert_no_secrets(result, cluster_secrets(cluster) + [token])

    assert revoke_refused['failed'] is True and 'PGP-encrypted' in revoke_refused['msg']
    assert token_policies(cluster.urls[0], token) == ['root']


def test_wrong_key_and_stale_attempt(ansible, unsealed, tmp_path):
    cluster = unsealed
    url, token = active_url(cluster), cluster.root_token
    output = str(tmp_path / 'root.json')
    wrong = base64.b64encode(os.urandom(33)).decode()
    base = {'url': url, 'token': token, 'keys': cluster.keys, 'output_path': output}
    stale_attempt = http_probe(url + '/v1/sys/generate-root-token/attempt', token, method='PUT', body={})
    # In one playbook run: the wrong key, a stale attempt started by another client (through the API), the run
    # that refuses it, the check-mode and the real cancel_stale runs; the attempt read after each.
    (result, output_after_wrong, attempt_after_wrong, started, refused, attempt_after_refused, check,
     attempt_after_check, done) = play(ansible, tmp_path, [
         root_token(dict(base, keys=[wrong, cluster.keys[1]])), stat_probe(output), attempt_probe(url, token),
         stale_attempt, root_token(base), attempt_probe(url, token),
         root_token(dict(base, cancel_stale=True), check_mode=True), attempt_probe(url, token),
         root_token(dict(base, cancel_stale=True))])
    assert result['failed'] is True
    assert 'keys' in result['msg'] and 'rejected' in result['msg'] and 'attempt was cancelled' in result['msg']
    assert attempt_of(attempt_after_wrong)['started'] is False
    assert not exists(output_after_wrong)
    assert_no_secrets(result, cluster_secrets(cluster) + [wrong])

    status, body = answer_of(started)
    assert status == 200, body
    stale_nonce = body['data']['nonce']
    assert refused['failed'] is True and 'already in progress' in refused['msg'] and 'cancel_stale' in refused['msg']
    assert attempt_of(attempt_after_refused)['nonce'] == stale_nonce
    assert check['changed'] is True and check['stale_cancelled'] is True
    assert attempt_of(attempt_after_check)['nonce'] == stale_nonce
    assert not done.get('failed'), done.get('msg')
    assert done['stale_cancelled'] is True and done['nonce'] != stale_nonce
    assert attempt_status(url, token)['started'] is False
    assert token_policies(url, read_json(output)['root_token']) == ['root']


def test_bad_inputs(ansible, unsealed, tmp_path):
    cluster = unsealed
    url, token = cluster.urls[0], cluster.root_token
    existing = tmp_path / 'existing.json'
    existing.write_text('{}')
    base = {'url': url, 'token': token, 'keys': cluster.keys, 'output_path': str(tmp_path / 'out.json')}
    cases = [
        (dict(keys=cluster.keys[:1]), ['keys', '1 unseal key', 'threshold is 2']),
        (dict(keys=['%%%%']), ['keys[0]', 'neither hex nor base64']),
        (dict(output_path=str(tmp_path / 'missing' / 'root.json')), ['output_path', 'does not exist']),
        (dict(output_path=str(existing)), ['output_path', 'already exists', 'overwrite_output']),
        (dict(pgp_key='not base64!'), ['pgp_key', 'base64']),
        (dict(age_recipients=['age1notarecipient']), ['age_recipients']),
        (dict(output_path=None), ['output_path']),
        (dict(api='generate_root_token', token=None), ['token is required']),
        (dict(state='absent', keys=None, output_path=None), ['token_to_revoke', 'token_material_path']),
    ]
    arg_sets = [{k: v for k, v in dict(base, **extra).items() if v is not None} for extra, _words in cases]
    results = run_many(ansible, 'vault_root_token', arg_sets, tmp_path)
    for (extra, words), result in zip(cases, results):
        assert result['failed'] is True, (extra, result)
        assert result['changed'] is False
        for word in words:
            assert word in result['msg'], (extra, result['msg'])
    assert_no_secrets(results[0], cluster_secrets(cluster))
    for result in results:
        assert_no_secrets(dict(result, _stdout=''), cluster_secrets(cluster))
    assert attempt_status(active_url(cluster), token)['started'] is False
    assert not os.path.exists(base['output_path'])
    assert existing.read_text() == '{}'


# --- revocation ---

def new_root_token(cluster):
    status, body = api('PUT', cluster.urls[0], 'auth/token/create-orphan', {'policies': ['root']},
                       token=cluster.root_token)
    assert status == 200, body
    return body['auth']['client_token']


def test_revoke_with_another_token_is_idempotent(ansible, unsealed, tmp_path):
    cluster = unsealed
    victim = new_root_token(cluster)
    args = {'url': cluster.urls[1], 'token': cluster.root_token, 'state': 'absent', 'token_to_revoke': victim}

    # Check mode, the revocation and its re-run in one playbook run (-vvvv), the victim looked up after each of the
    # first two.
    check, victim_after_check, first, victim_after_first, root_after_first, second = play(ansible, tmp_path, [
        root_token(args, check_mode=True, diff=True), policies_probe(cluster.urls[0], victim),
        root_token(args, diff=True), policies_probe(cluster.urls[0], victim),
        policies_probe(cluster.urls[0], cluster.root_token), root_token(args)], verbosity=4)
    assert check['changed'] is True and check['diff']['before'] == {'token_valid': True}
    assert policies_of(victim_after_check) == ['root'], 'check mode revoked the token'

    assert not first.get('failed'), first.get('msg')
    assert first['changed'] is True and first['revoked'] is True and first['method'] == 'auth/token/revoke'
    assert first['diff'] == {'before': {'token_valid': True}, 'after': {'token_valid': False}}
    assert policies_of(victim_after_first) is None
    assert policies_of(root_after_first) == ['root']

    assert not second.get('failed'), second.get('msg')
    assert second['changed'] is False and second['revoked'] is False
    for result in (check, first, second):
        assert_no_secrets(result, cluster_secrets(cluster) + [victim])


def test_revoke_self_from_material_and_refuse_non_root(ansible, unsealed, tmp_path):
    cluster = unsealed
    output = str(tmp_path / 'root.json')
    status, body = api('PUT', cluster.urls[0], 'auth/token/create', {'policies': ['default']},
                       token=cluster.root_token)
    assert status == 200, body
    plain = body['auth']['client_token']
    args = {'url': cluster.urls[0], 'state': 'absent', 'token_material_path': output}
    # The generation, the revocation of what it wrote (twice) and the refused revocation of a non-root token, in one
    # playbook run.
    made, first, second, refused = run_many(ansible, 'vault_root_token', [
        {'url': cluster.urls[0], 'token': cluster.root_token, 'keys': cluster.keys, 'output_path': output},
        args, args, {'url': cluster.urls[0], 'state': 'absent', 'token_to_revoke': plain}], tmp_path)
    assert not made.get('failed'), made.get('msg')
    generated = read_json(output)['root_token']

    assert not first.get('failed'), first.get('msg')
    assert first['changed'] is True and first['method'] == 'auth/token/revoke-self'
    assert token_policies(cluster.urls[0], generated) is None
    assert second['changed'] is False and not second.get('failed')

    assert refused['failed'] is True and 'not a root token' in refused['msg'] and 'default' in refused['msg']
    assert token_policies(cluster.urls[0], plain) == ['default']
    for result in (made, first, second, refused):
        assert_no_secrets(result, cluster_secrets(cluster) + [generated, plain])


# --- auto-unseal: recovery keys, age-encrypted material both ways ---

def test_recovery_keys_and_age_material(ansible, bao_autounseal_single, tmp_path):
    server = bao_autounseal_single
    status, init = http('PUT', server.url + '/v1/sys/init', {'recovery_shares': 3, 'recovery_threshold': 2})
    assert status == 200, init
    wait_for(lambda: not server.seal_status()['sealed'], timeout=30, what='auto-unseal')
    wait_for(lambda: http('GET', server.url + '/v1/sys/leader')[1].get('is_self'), timeout=30, what='leader')
    identity, recipient = age_identity(tmp_path)
    # The recovery keys, in an age-encrypted material file.
    plain_path = tmp_path / 'recovery.json'
    plain_path.write_text(json.dumps({'format': 'trustroot.ops/vault-init/v1', 'kind': 'init',
                                      'recovery_keys_b64': init['recovery_keys_base64'],
                                      'recovery_shares': 3, 'recovery_threshold': 2}))
    encrypted = str(tmp_path / 'recovery.json.age')
    subprocess.run(['age', '--armor', '--recipient', recipient, '--output', encrypted, str(plain_path)], check=True)
    plain_path.unlink()
    output = str(tmp_path / 'root.json.age')

    result = ansible.module('vault_root_token', {
        'url': server.url, 'token': init['root_token'], 'key_material_path': encrypted, 'age_identity': identity,
        'output_path': output, 'age_recipients': [recipient]})
    assert not result.get('failed'), result.get('msg')
    assert result['recovery_keys'] is True and result['verified'] is True
    with open(output, 'rb') as handle:
        assert handle.read().startswith(b'-----BEGIN AGE ENCRYPTED FILE-----')
    material = json.loads(age_decrypt(output, identity))
    assert material['kind'] == 'root_token'
    assert token_policies(server.url, material['root_token']) == ['root']
    assert_no_secrets(result, init['recovery_keys_base64'] + init['recovery_keys'] +
                      [init['root_token'], material['root_token']])


# --- the unauthenticated sys/generate-root endpoints, turned back on for one listener ---

@pytest.fixture
def bao_legacy_listener(tmp_path):
    server = BaoServer(str(tmp_path), 'legacy')
    port = free_port()
    server.seal_stanza = ('listener "tcp" {\n  address = "127.0.0.1:%d"\n  tls_disable = true\n'
                          '  disable_unauthed_generate_root_endpoints = false\n}\n') % port
    server.start()
    status, init = http('PUT', server.url + '/v1/sys/init', {'secret_shares': 3, 'secret_threshold': 2})
    assert status == 200, init
    for key in init['keys_base64'][:2]:
        http('PUT', server.url + '/v1/sys/unseal', {'key': key})
    wait_for(lambda: http('GET', server.url + '/v1/sys/leader')[1].get('is_self'), timeout=30, what='leader')
    server.init = init
    server.legacy_url = 'http://127.0.0.1:%d' % port
    yield server
    server.stop()


def test_unauthenticated_generate_root_when_enabled(ansible, bao_legacy_listener, tmp_path):
    server = bao_legacy_listener
    keys, token = server.init['keys_base64'], server.init['root_token']
    output = str(tmp_path / 'root.json')
    # The generation on the legacy listener, and the refused one on the same server's default listener (the
    # unauthenticated endpoints stay off there), in one playbook run.
    result, off = run_many(ansible, 'vault_root_token', [
        {'url': server.legacy_url, 'keys': keys, 'output_path': output},
        {'url': server.url, 'keys': keys, 'output_path': str(tmp_path / 'other.json')}], tmp_path)
    assert not result.get('failed'), result.get('msg')
    assert result['api'] == 'generate_root' and result['verified'] is True
    generated = read_json(output)['root_token']
    assert token_policies(server.url, generated) == ['root']
    status, body = http('GET', server.legacy_url + '/v1/sys/generate-root/attempt')
    assert status == 200 and body['started'] is False
    assert_no_secrets(result, keys + server.init['keys'] + [token, generated])

    assert off['failed'] is True and 'disable_unauthed_generate_root_endpoints' in off['msg']
    assert not os.path.exists(str(tmp_path / 'other.json'))

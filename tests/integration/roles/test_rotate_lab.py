"""playbooks/rotate.yml on real systemd lab hosts (3 OpenBao nodes, 1 SPIRE server, 1 agent), one lab for every
part: the end state of each part, and a last run of every part with its flag off that changes nothing. The parts
that handle key shares and root tokens (root_token, rekey) run at -vvvv, and the last test checks that none of their
secrets reached any output, host journal or file but the material.

The tests run in file order on one cluster (each part starts from what the previous one left)."""

import base64
import glob
import json
import os
import re
import ssl
import time

import pytest
from cryptography import x509

from tests.lab import hosts as labhosts
from tests.lab import leaks
from tests.lab.common import Sampler
from tests.lab.stack import Stack, agent_svid as lab_agent_svid, fetch_workload_svid, spiffe_id, total

NAME = 'it-rotate'
GROUPS = {
    'vault_servers': ['vault1', 'vault2', 'vault3'],
    'spire_servers': ['spire-server1'],
    'spire_agents': ['spire-agent1'],
}
VAULTS = GROUPS['vault_servers']
SERVER = 'spire-server1'
AGENT = 'spire-agent1'
SERVER_SOCKET = '/run/spire/server/private/api.sock'
AGENT_SOCKET = '/run/spire/agent/public/api.sock'


def decrypt(stack, path):
    return stack.decrypt(path)


@pytest.fixture(scope='module')
def stack():
    since = time.time()
    stack = Stack.from_layer(NAME, groups=GROUPS)
    try:
        stack.since = since
        stack.outputs = {}  # label: stdout + stderr of the -vvvv runs
        material = decrypt(stack, os.path.join(stack.files_dir, 'vault-init.json.age'))
        stack.secrets = leaks.material_secrets(material, 'initial ')
        # The admin token of the rotation calls: the initial root token, kept in a 0600 vars file.
        token = material['root_token']
        stack.token = token
        stack.token_vars = stack.write_secret_vars('rotate-token.json', {'vault_server_rotate_token': token})
        stack.timings = {}
        yield stack
    finally:
        timings = getattr(stack, 'timings', {})
        print('\nrotate timings (s): boot from the layer %s, %s' % (getattr(stack, 'boot_seconds', '-'), json.dumps(timings)))
        labhosts.destroy(NAME)


def rotate(stack, label, *args):
    started = time.monotonic()
    proc = stack.run('rotate', ['-e', '@' + stack.token_vars] + list(args))
    stack.timings[label] = round(time.monotonic() - started, 1)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    if '-vvvv' in args:
        assert re.search(r'ESTABLISH (SSH|LOCAL) CONNECTION', proc.stdout), 'the run must be at -vvvv'
        stack.outputs[label] = proc.stdout + proc.stderr
    return proc


# --- Vault / OpenBao helpers ------------------------------------------------------------------------------

def api(stack, host, path, method='GET', body=None, token=None):
    return stack.vault_api(host, path, method, body, token)


def seal_states(stack):
    out = {}
    for host in VAULTS:
        try:
            out[host] = api(stack, host, 'sys/seal-status')[1]['sealed']
        except Exception:  # a node being restarted refuses connections: that is what is watched
            out[host] = None
    return out


def wait_sealed(stack, host, sealed, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if seal_states(stack)[host] is sealed:
            return
        time.sleep(0.5)
    raise AssertionError('%s did not become %s' % (host, 'sealed' if sealed else 'unsealed'))


def standby(stack):
    for host in VAULTS:
        status, data = api(stack, host, 'sys/leader')
        if status == 200 and not data.get('is_self'):
            return host
    raise AssertionError('no standby')


def served_serial(stack, host):
    pem = ssl.get_server_certificate((stack.lab.address(host), 8200))
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def main_pids(stack):
    return {host: stack.lab.exec(host, ['systemctl', 'show', '-p', 'MainPID', '--value', 'openbao'],
                                 check=True).stdout.strip() for host in VAULTS}


def seal_watcher(stack):
    """A Sampler of how many nodes are sealed or down at each moment."""
    return Sampler(lambda: sum(1 for sealed in seal_states(stack).values() if sealed is not False))


# --- SPIRE helpers -------------------------------------------------------------------------------------------

def server_json(stack, *argv):
    out = stack.lab.exec(SERVER, ['spire-server'] + list(argv) + ['-socketPath', SERVER_SOCKET, '-output', 'json'],
                         check=True)
    return json.loads(out.stdout)


def bundle_ids(stack):
    """X.509 authority Subject Key IDs and JWT key IDs of the server's bundle."""
    bundle = server_json(stack, 'bundle', 'show')
    skis = set()
    for authority in bundle.get('x509_authorities', []):
        cert = x509.load_der_x509_certificate(base64.b64decode(authority['asn1']))
        skis.add(cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex())
    return skis, {key['key_id'] for key in bundle.get('jwt_authorities', [])}


def agent_svid(stack):
    return lab_agent_svid(stack.lab, AGENT)


def aki(cert):
    return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier.hex()


# --- the parts, in order -------------------------------------------------------------------------------------

def test_keyring_rotation_increases_the_term(stack):
    before = api(stack, 'vault1', 'sys/key-status', token=stack.token)[1]['term']
    proc = rotate(stack, 'keyring', '--tags', 'keyring', '-e', 'rotate_keyring=true')
    after = api(stack, 'vault1', 'sys/key-status', token=stack.token)[1]['term']
    assert after == before + 1
    assert total(proc.stdout) == 1
    assert 'keyring: term %d -> %d (rotated)' % (before, after) in proc.stdout


def test_root_token_is_generated_proven_and_revoked(stack):
    kept = os.path.join(stack.files_dir, 'break-glass-root-token.json.age')
    proc = rotate(stack, 'root_token', '--tags', 'root_token', '-e', 'rotate_root_token=true',
                  '-e', 'vault_server_rotate_root_token_path=' + kept, '-vvvv')
    assert 'proven with lookup-self, revoked with auth/token/revoke-self' in proc.stdout
    token = decrypt(stack, kept)['root_token']
    stack.secrets['break-glass root_token'] = token
    assert token and token not in proc.stdout and token not in proc.stderr
    assert api(stack, 'vault1', 'auth/token/lookup-self', token=token)[0] == 403, 'the break-glass root token still works'
    # The admin token is still valid (only the new token was revoked).
    assert api(stack, 'vault1', 'auth/token/lookup-self', token=stack.token)[0] == 200


def test_rekey_replaces_the_keys_keeps_the_old_material_and_proves_the_new_keys(stack):
    material = os.path.join(stack.files_dir, 'vault-init.json.age')
    old = decrypt(stack, material)
    watcher = seal_watcher(stack)
    watcher.start()
    try:
        proc = rotate(stack, 'rekey', '--tags', 'rekey', '-e', 'rotate_rekey=true', '-vvvv')
    finally:
        samples = watcher.stop()
    new = decrypt(stack, material)
    stack.secrets.update(leaks.material_secrets(new, 'rekeyed '))
    archives = glob.glob(material + '.2*')
    assert len(archives) == 1 and re.search(r'\.\d{8}T\d{6}Z$', archives[0])
    assert decrypt(stack, archives[0])['unseal_keys_b64'] == old['unseal_keys_b64']
    assert oct(os.stat(archives[0]).st_mode & 0o777) == '0o600'
    assert set(new['unseal_keys_b64']).isdisjoint(old['unseal_keys_b64'])
    proven = re.search(r'proven by sealing and unsealing (vault\d)', proc.stdout)
    assert proven, proc.stdout[-3000:]
    # The playbook sealed exactly one standby (restart) and unsealed it: never more than one node down.
    assert max(samples) == 1, samples
    assert all(sealed is False for sealed in seal_states(stack).values())
    for key in old['unseal_keys_b64'] + new['unseal_keys_b64']:
        assert key not in proc.stdout and key not in proc.stderr

    # The old keys no longer unseal; the new ones do.
    host = standby(stack)
    stack.lab.exec(host, ['systemctl', 'restart', 'openbao'], check=True)
    wait_sealed(stack, host, True)
    answers = [api(stack, host, 'sys/unseal', 'PUT', {'key': key}) for key in old['unseal_keys_b64'][:3]]
    assert answers[-1][0] >= 400 or answers[-1][1].get('sealed') is True, answers[-1]
    time.sleep(3)
    assert seal_states(stack)[host] is True, 'the old keys unsealed the node'
    api(stack, host, 'sys/unseal', 'PUT', {'reset': True})
    for key in new['unseal_keys_b64'][:3]:
        assert api(stack, host, 'sys/unseal', 'PUT', {'key': key})[0] == 200
    wait_sealed(stack, host, False)


def test_tls_rotation_reloads_every_node_without_sealing_any(stack):
    serials = {host: served_serial(stack, host) for host in VAULTS}
    pids = main_pids(stack)
    watcher = seal_watcher(stack)
    watcher.start()
    try:
        proc = rotate(stack, 'tls', '--tags', 'tls', '-e', 'rotate_tls=true')
    finally:
        samples = watcher.stop()
    assert len(samples) > 20
    assert max(samples) == 0, 'a node was sealed or down during the TLS rotation: %s' % samples
    assert main_pids(stack) == pids, 'a node was restarted'
    for host in VAULTS:
        assert served_serial(stack, host) != serials[host]
        deployed = stack.lab.exec(host, ['cat', '/etc/openbao/tls/server.crt'], check=True).stdout
        assert x509.load_pem_x509_certificate(deployed.encode()).serial_number == served_serial(stack, host)
    assert proc.stdout.count('(new, reloaded)') == 3
    assert glob.glob(os.path.join(stack.files_dir, 'vault-ca', 'openbao-vault1.crt.2*'))


def test_spire_ca_rotation_moves_the_agent_to_the_new_authority(stack):
    x509_before, jwt_before = bundle_ids(stack)
    assert aki(agent_svid(stack)) in x509_before
    rotate(stack, 'spire_ca', '--tags', 'spire_ca', '-e', 'rotate_spire_ca=true')
    x509_after, jwt_after = bundle_ids(stack)
    active = server_json(stack, 'localauthority', 'x509', 'show')['active']['authority_id']
    assert x509_after == {active}, 'the old X.509 authority is still in the bundle'
    assert x509_before.isdisjoint(x509_after)
    assert jwt_before.isdisjoint(jwt_after) and len(jwt_after) == 1
    assert aki(agent_svid(stack)) == active
    assert stack.lab.exec(AGENT, ['spire-agent', 'healthcheck', '-socketPath', AGENT_SOCKET]).returncode == 0


def test_spire_agents_reattest_with_a_new_identity(stack):
    before = agent_svid(stack)
    rotate(stack, 'spire_agents', '--tags', 'spire_agents', '-e', json.dumps({'rotate_spire_agents': [AGENT]}))
    after = agent_svid(stack)
    assert spiffe_id(after) != spiffe_id(before)
    assert after.serial_number != before.serial_number
    # The old identity is evicted, the new one listed; the stack layer's other agent (not booted here) stays.
    agents = [agent['id']['path'] for agent in server_json(stack, 'agent', 'list').get('agents', [])]
    assert len(agents) == 2 and not any(spiffe_id(before).endswith(path) for path in agents)
    assert any(spiffe_id(after).endswith(path) for path in agents)
    # A workload on the host gets an SVID through the re-attested agent (the demo entry: processes of user demo).
    fetched = fetch_workload_svid(stack.lab, AGENT)
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert 'spiffe://demo.trustroot.test/workload/demo' in fetched.stdout


def test_every_part_with_its_flag_off_changes_nothing(stack):
    proc = rotate(stack, 'all_parts_again')
    assert total(proc.stdout) == 0, proc.stdout[-5000:]
    for said in ('rekey: nothing to do', 'root_token: nothing to do', 'spire_ca: nothing to do',
                 'spire_agents: nothing to do', '(unchanged)', 'not due'):
        assert said in proc.stdout, said


# Controller files that hold a secret by design (the shares and tokens are otherwise only in the age-encrypted
# material, whose ciphertext never holds them): each with why, each private.
ALLOWED = [
    ('*/files/rotate-token.json', "the admin token of the rotation calls: this test's 0600 vars file (-e @file)"),
]


def test_root_token_and_rekey_at_vvvv_leak_no_secret(stack):
    """Every share before and after the rekey (base64, hex), the initial root token (the admin token of every run)
    and the break-glass root token: in no -vvvv output, no host journal, no file but the allowed ones. The OTP and
    the encoded token of the generation are known only inside the module: no output carries an otp or
    encoded_token value, nor any string that decodes to the break-glass token XOR an alphanumeric OTP."""
    assert set(stack.outputs) == {'root_token', 'rekey'}, 'both parts must have run at -vvvv'
    assert len(stack.secrets) == 22, sorted(stack.secrets)  # 2 x (5 b64 + 5 hex) shares, 2 root tokens
    output = ''.join(stack.outputs.values())
    assert not leaks.text_leaks(output, stack.secrets), leaks.text_leaks(output, stack.secrets)
    assert not leaks.named_value_leaks(output)
    assert not leaks.encoded_token_leaks(stack.outputs['root_token'], stack.secrets['break-glass root_token'])

    found, held, scanned = leaks.scan_lab(stack.lab, stack.secrets, stack.since, ALLOWED)
    assert not found, 'secrets outside the material:\n' + leaks.report(found)
    assert scanned > 100, scanned
    print(leaks.summary(scanned, stack.secrets, held))
    assert {path for path, _label, _reason in held} == {stack.token_vars}, held
    for path in {path for path, _label, _reason in held}:
        assert leaks.private_file_problem(path) is None, leaks.private_file_problem(path)

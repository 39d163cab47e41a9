"""playbooks/migrate.yml --tags seal_migration on real systemd lab hosts: a 3-node OpenBao raft cluster moved from
Shamir to transit auto-unseal and back. The transit seal is served by a fourth host (a single-node OpenBao installed
by the same role, its own cluster and material).

The tests run in file order on one cluster (each part starts from what the previous one left)."""

import json
import os
import time
import urllib.error

import pytest

from tests.lab import hosts as labhosts
from tests.lab.common import wait_for
from tests.lab.stack import Stack, failure_report, total

NAME = 'it-migrate-seal'
GROUPS = {
    'vault_servers': ['vault1', 'vault2', 'vault3'],
    'transit_servers': ['transit1'],
}
VAULTS = GROUPS['vault_servers']
TRANSIT = 'transit1'
KEY_NAME = 'autounseal'


def api(stack, host, path, method='GET', body=None, token=None):
    return stack.vault_api(host, path, method, body, token)


def ok(answer, also=()):
    status, data = answer
    assert status in (200, 204) + tuple(also), (status, data)
    return data


def seal_status(stack, host):
    try:
        return api(stack, host, 'sys/seal-status')[1]
    except (OSError, urllib.error.URLError):  # a node being restarted refuses connections
        return None


def leader(stack):
    for host in VAULTS:
        status, data = api(stack, host, 'sys/leader')
        if status == 200 and data.get('is_self'):
            return host
    raise AssertionError('no leader')


def standby(stack):
    active = leader(stack)
    return next(host for host in VAULTS if host != active)


@pytest.fixture(scope='module')
def stack():
    stack = Stack.from_layer(NAME, groups=GROUPS)  # the cluster from the stack layer; transit1 boots bare
    stack.timings = {'boot_from_layer': stack.boot_seconds}
    try:

        # The transit provider: same role, its own group, cluster name and (1-share) material.
        started = time.monotonic()
        transit_material = os.path.join(stack.files_dir, 'transit-init.json.age')
        transit_vars = os.path.join(stack.files_dir, 'transit-vars.json')
        with open(transit_vars, 'w') as handle:
            json.dump({'vault_server_cluster_group': 'transit_servers', 'vault_server_cluster_name': 'transit',
                       'vault_server_material_path': transit_material,
                       'vault_server_init_secret_shares': 1, 'vault_server_init_secret_threshold': 1}, handle)
        proc = stack.run('tests/lab/playbooks/transit_server.yml', ['-e', '@' + transit_vars])
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        root = stack.decrypt(transit_material)['root_token']
        # (400: mounted already, on a lab kept from an earlier run)
        ok(api(stack, TRANSIT, 'sys/mounts/transit', 'POST', {'type': 'transit'}, root), also=(400,))
        ok(api(stack, TRANSIT, 'transit/keys/' + KEY_NAME, 'POST', {}, root))
        policy = ('path "transit/encrypt/%s" { capabilities = ["update"] }\n'
                  'path "transit/decrypt/%s" { capabilities = ["update"] }\n') % (KEY_NAME, KEY_NAME)
        ok(api(stack, TRANSIT, 'sys/policies/acl/autounseal', 'PUT', {'policy': policy}, root))
        token = ok(api(stack, TRANSIT, 'auth/token/create', 'POST',
                       {'policies': ['autounseal'], 'no_parent': True, 'period': '24h'}, root))['auth']['client_token']
        stack.seal_token = token
        stack.timings['install_transit'] = round(time.monotonic() - started, 1)

        # Target seals, as an operator keeps them: the token in a 0600 vars file.
        stack.to_transit = stack.write_secret_vars('seal-transit.json', {
            'vault_server_seal_type': 'transit',
            'vault_server_seal_options': {
                'address': 'https://%s:8200' % stack.lab.address(TRANSIT), 'token': token, 'key_name': KEY_NAME,
                'mount_path': 'transit/', 'tls_ca_cert': '/etc/openbao/tls/ca.crt'}})
        stack.to_shamir = stack.write_secret_vars('seal-shamir.json',
                                                  {'vault_server_seal_type': 'shamir', 'vault_server_seal_options': {}})

        # A secret written before any migration, read after each one.
        material = stack.decrypt(os.path.join(stack.files_dir, 'vault-init.json.age'))
        stack.root = material['root_token']
        stack.first_keys = material['unseal_keys_b64']
        stack.first_keys_hex = material['unseal_keys_hex']
        host = leader(stack)
        ok(api(stack, host, 'sys/mounts/kv', 'POST', {'type': 'kv', 'options': {'version': '1'}}, stack.root),
           also=(400,))
        ok(api(stack, host, 'kv/before-migration', 'PUT', {'value': 'kept'}, stack.root))
        yield stack
    finally:
        print('\nmigrate seal timings (s): %s' % json.dumps(getattr(stack, 'timings', {})))
        labhosts.destroy(NAME)


def migrate(stack, label, seal_vars, *args):
    started = time.monotonic()
    proc = stack.run('migrate', ['--tags', 'seal_migration', '-e', '@' + seal_vars] + list(args))
    stack.timings[label] = round(time.monotonic() - started, 1)
    return proc


def assert_no_secret(stack, output):
    """Neither the transit token, the root token nor any key share (base64 or hex) is in the output."""
    secrets = [stack.seal_token, stack.root] + stack.first_keys + stack.first_keys_hex
    leaked = [index for index, secret in enumerate(secrets) if secret in output]
    assert not leaked, 'secret(s) #%s in the output' % leaked


def read_kv(stack):
    host = leader(stack)
    return ok(api(stack, host, 'kv/before-migration', token=stack.root))['data']['value']


def config(stack, host):
    return stack.lab.exec(host, ['cat', '/etc/openbao/openbao.hcl'], check=True).stdout


def test_missing_material_is_refused_before_any_change(stack):
    proc = migrate(stack, 'missing_material', stack.to_transit, '-e', '{"vault_server_material_path": ""}')
    assert proc.returncode != 0
    assert 'vault_server_material_path' in proc.stdout
    assert all('seal "transit"' not in config(stack, host) for host in VAULTS)


def test_check_mode_reports_and_changes_nothing(stack):
    proc = migrate(stack, 'check_to_transit', stack.to_transit, '--check', '--diff')
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert 'seal shamir -> transit' in proc.stdout and 'check mode' in proc.stdout
    assert all('seal "transit"' not in config(stack, host) for host in VAULTS)
    assert all(seal_status(stack, host)['type'] == 'shamir' for host in VAULTS)
    assert 'recovery_keys_b64' not in stack.decrypt(os.path.join(stack.files_dir, 'vault-init.json.age'))
    assert_no_secret(stack, proc.stdout + proc.stderr)


def test_shamir_to_transit(stack):
    # At -vvvv: the shares are sent with migrate=true and the transit token is in the seal stanza written.
    proc = migrate(stack, 'to_transit', stack.to_transit, '-vvvv')
    assert proc.returncode == 0, failure_report(proc)
    output = proc.stdout + proc.stderr
    assert 'ESTABLISH SSH CONNECTION' in output, 'the migration must run at -vvvv'
    for host in VAULTS:
        status = seal_status(stack, host)
        assert (status['type'], status['recovery_seal'], status['sealed']) == ('transit', True, False), (host, status)
        assert 'seal "transit"' in config(stack, host) and 'disabled' not in config(stack, host)
    material = stack.decrypt(os.path.join(stack.files_dir, 'vault-init.json.age'))
    assert material['recovery_keys_b64'] == stack.first_keys and 'unseal_keys_b64' not in material
    archives = [name for name in os.listdir(stack.files_dir) if name.startswith('vault-init.json.age.')]
    assert len(archives) == 1
    assert 'unseal_keys_b64' in stack.decrypt(os.path.join(stack.files_dir, archives[0]))
    assert read_kv(stack) == 'kept'
    # A node restarted now unseals itself through transit: no key is sent.
    host = standby(stack)
    stack.lab.exec(host, ['systemctl', 'restart', 'openbao'], check=True)
    wait_for(lambda: (seal_status(stack, host) or {}).get('sealed') is False, timeout=60, what='%s unsealed' % host)
    assert_no_secret(stack, output)

    again = migrate(stack, 'to_transit_again', stack.to_transit)
    assert again.returncode == 0, again.stdout[-5000:] + again.stderr[-2000:]
    assert total(again.stdout) == 0, again.stdout[-5000:]
    assert 'seal is transit already' in again.stdout


def test_transit_to_shamir(stack):
    # At -vvvv: the shares are sent with migrate=true and the transit token is in the seal stanza written.
    proc = migrate(stack, 'to_shamir', stack.to_shamir, '-vvvv')
    assert proc.returncode == 0, failure_report(proc)
    output = proc.stdout + proc.stderr
    assert 'ESTABLISH SSH CONNECTION' in output, 'the migration must run at -vvvv'
    for host in VAULTS:
        status = seal_status(stack, host)
        assert (status['type'], status['recovery_seal'], status['sealed']) == ('shamir', False, False), (host, status)
        assert 'seal "' not in config(stack, host)
    material = stack.decrypt(os.path.join(stack.files_dir, 'vault-init.json.age'))
    assert material['unseal_keys_b64'] == stack.first_keys and 'recovery_keys_b64' not in material
    assert read_kv(stack) == 'kept'
    # A node restarted now comes back sealed, and the keys of the material unseal it.
    host = standby(stack)
    stack.lab.exec(host, ['systemctl', 'restart', 'openbao'], check=True)
    wait_for(lambda: (seal_status(stack, host) or {}).get('sealed') is True, timeout=60, what='%s sealed' % host)
    for key in material['unseal_keys_b64'][:material['unseal_threshold']]:
        answer = ok(api(stack, host, 'sys/unseal', 'PUT', {'key': key}))
    assert answer['sealed'] is False or answer['progress'] == 0
    wait_for(lambda: (seal_status(stack, host) or {}).get('sealed') is False, timeout=60, what='%s unsealed' % host)
    assert_no_secret(stack, output)

    again = migrate(stack, 'to_shamir_again', stack.to_shamir)
    assert again.returncode == 0, again.stdout[-5000:] + again.stderr[-2000:]
    assert total(again.stdout) == 0, again.stdout[-5000:]
    assert 'seal is shamir already' in again.stdout

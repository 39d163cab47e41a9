"""vault_data_digest_info against a real 3-node OpenBao raft cluster (and a second, single-node one)."""

import pytest

from tests.lab.openbao import BaoServer, api, http, mount_kv, wait_for

SECRET_VALUES = ('s3cr3t-db-password-1', 's3cr3t-api-key-2', 's3cr3t-legacy-3', 'changed-s3cr3t-4')
POLICY_TEXT = 'path "apps/data/web/*" { capabilities = ["read"] }'


def leader_url(cluster):
    """URL of the active node (writes go there; a standby does not take them)."""
    return cluster.leader_and_followers()[0].url


def populate(url, token):
    """KV v2 and v1 mounts with nested secrets, and two policies (raw API calls)."""
    mount_kv(url, token, 'apps', version='2')
    mount_kv(url, token, 'legacy', version='1')
    api(url, token, 'POST', 'apps/data/web/db', {'data': {'password': SECRET_VALUES[0], 'user': 'web'}})
    api(url, token, 'POST', 'apps/data/web/api/key', {'data': {'key': SECRET_VALUES[1]}})
    api(url, token, 'POST', 'apps/data/top', {'data': {'n': 1}})
    api(url, token, 'POST', 'legacy/team/one', {'value': SECRET_VALUES[2]})
    api(url, token, 'PUT', 'sys/policies/acl/web-read', {'policy': POLICY_TEXT})
    api(url, token, 'PUT', 'sys/policies/acl/ops', {'policy': 'path "sys/health" { capabilities = ["read"] }'})
    api(url, token, 'POST', 'sys/auth/userpass', {'type': 'userpass'})


@pytest.fixture
def second_server(tmp_path):
    """A single-node raft server, initialized and unsealed (another cluster, other keys)."""
    server = BaoServer(str(tmp_path / 'other'), 'other').start()
    try:
        status, init = http('PUT', server.url + '/v1/sys/init', {'secret_shares': 1, 'secret_threshold': 1})
        assert status == 200, init
        http('PUT', server.url + '/v1/sys/unseal', {'key': init['keys_base64'][0]})
        wait_for(lambda: http('GET', server.url + '/v1/sys/leader')[1].get('is_self'), timeout=60,
                 what='the second server to lead')
        yield server, init['root_token']
    finally:
        server.stop()


def test_digest_changes_with_content_and_matches_another_cluster(ansible, bao_unsealed_shared, second_server):
    cluster = bao_unsealed_shared
    token = cluster.root_token
    leader = leader_url(cluster)
    populate(leader, token)

    # The digest, the same in check mode, and one restricted to one mount, in one playbook run (-vvvv).
    (first, checked, only), output = ansible.modules([
        ('vault_data_digest_info', {'nodes': cluster.urls, 'token': token}),
        ('vault_data_digest_info', {'nodes': cluster.urls, 'token': token}, {'check_mode': True}),
        ('vault_data_digest_info', {'url': leader, 'token': token, 'kv_mounts': ['legacy/']})], verbosity=4)
    assert not first.get('failed'), first.get('msg')
    assert first['changed'] is False
    assert first['kv_secrets'] == 4
    assert first['kv']['apps']['secrets'] == 3
    assert first['kv']['legacy']['secrets'] == 1
    assert first['policies'] == ['default', 'ops', 'root', 'web-read']
    assert {'path': 'apps/', 'type': 'kv', 'version': '2'} in first['mounts']
    assert {'path': 'userpass/', 'type': 'userpass'} in first['auth_methods']
    for value in SECRET_VALUES + (token,) + tuple(cluster.keys):
        assert value not in output

    # Check mode reads the same.
    assert checked['kv_sha256'] == first['kv_sha256']

    # Restricted to one mount.
    assert list(only['kv']) == ['legacy']
    assert only['kv_sha256'] == only['kv']['legacy']['sha256']

    # One secret changes: its mount's digest and the overall one change, the others do not. The same content in
    # another cluster (other keys, accessors, UUIDs) gives the same digest: both read in one playbook run (-vvvv).
    api(leader, token, 'POST', 'apps/data/web/db', {'data': {'password': SECRET_VALUES[3], 'user': 'web'}})
    other_server, other_token = second_server
    other_url = other_server.url
    populate(other_url, other_token)
    api(other_url, other_token, 'POST', 'apps/data/web/db', {'data': {'password': SECRET_VALUES[3], 'user': 'web'}})
    (changed, other), output = ansible.modules([
        ('vault_data_digest_info', {'url': leader, 'token': token}),
        ('vault_data_digest_info', {'url': other_url, 'token': other_token})], verbosity=4)
    assert not changed.get('failed'), changed.get('msg')
    assert changed['kv']['apps']['sha256'] != first['kv']['apps']['sha256']
    assert changed['kv']['legacy'] == first['kv']['legacy']
    assert changed['kv_sha256'] != first['kv_sha256']
    assert changed['policies_sha256'] == first['policies_sha256']
    for value in SECRET_VALUES + (token, other_token):
        assert value not in output

    assert not other.get('failed'), other.get('msg')
    for key in ('kv', 'kv_secrets', 'kv_sha256', 'policies', 'policies_sha256', 'mounts_sha256', 'auth_sha256'):
        assert other[key] == changed[key], key
    # A policy text differs: only the policies digest differs.
    api(other_url, other_token, 'PUT', 'sys/policies/acl/ops', {'policy': 'path "sys/*" { capabilities = ["read"] }'})
    other2 = ansible.module('vault_data_digest_info', {'url': other_url, 'token': other_token})
    assert other2['policies_sha256'] != changed['policies_sha256']
    assert other2['kv_sha256'] == changed['kv_sha256']


def test_bad_input_names_the_field(ansible, bao_unsealed_shared):
    # The module's cluster (whatever the test above wrote there): these runs only read it.
    token = bao_unsealed_shared.root_token
    url = leader_url(bao_unsealed_shared)
    # Every refusal in one playbook run (no token in the environment either).
    (missing, not_kv, no_token, bad_token), _output = ansible.modules([
        ('vault_data_digest_info', {'url': url, 'token': token, 'kv_mounts': ['nope']}),
        ('vault_data_digest_info', {'url': url, 'token': token, 'kv_mounts': ['sys']}),
        ('vault_data_digest_info', {'url': url}),
        ('vault_data_digest_info', {'url': url, 'token': 'not-a-token'})], env={'VAULT_TOKEN': '', 'BAO_TOKEN': ''})
    assert missing['failed'] and 'kv_mounts: no mount at nope' in missing['msg']
    assert not_kv['failed'] and 'kv_mounts: sys is a system mount' in not_kv['msg']
    assert no_token['failed'] and 'token is required' in no_token['msg']
    assert bad_token['failed'] and '403' in bad_token['msg']

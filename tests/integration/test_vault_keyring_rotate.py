"""vault_keyring_rotate against a real OpenBao cluster."""
from tests.lab.openbao import http


def term(cluster):
    return http('GET', cluster.urls[0] + '/v1/sys/key-status', token=cluster.root_token)[1]['data']['term']


def test_check_rotate_and_min_age(ansible, bao_unsealed):
    leader = bao_unsealed.cluster.wait_leader(bao_unsealed.root_token)['leader_address']
    args = {'url': leader, 'token': bao_unsealed.root_token}
    start = term(bao_unsealed)

    checked = ansible.module('vault_keyring_rotate', args, check=True, diff=True)
    assert checked['changed'] is True and checked['rotated'] is False, checked
    assert checked['diff'] == {'before': {'term': start}, 'after': {'term': start + 1}}
    assert term(bao_unsealed) == start

    rotated = ansible.module('vault_keyring_rotate', args)
    assert rotated['changed'] is True and rotated['rotated'] is True
    assert (rotated['term_before'], rotated['term']) == (start, start + 1)
    assert term(bao_unsealed) == start + 1
    assert bao_unsealed.root_token not in rotated['_stdout']

    # The key just installed is younger than a day: a scheduled re-run changes nothing.
    guarded = ansible.module('vault_keyring_rotate', dict(args, min_age='1d'))
    assert guarded['changed'] is False and guarded['term'] == start + 1
    assert term(bao_unsealed) == start + 1


def test_bad_inputs(ansible, bao_unsealed):
    url = bao_unsealed.urls[0]
    no_token = ansible.module('vault_keyring_rotate', {'url': url})
    assert no_token['failed'] is True and 'token' in no_token['msg']
    bad_age = ansible.module('vault_keyring_rotate', {'url': url, 'token': 'x', 'min_age': 'ten days'})
    assert bad_age['failed'] is True and 'min_age' in bad_age['msg']
    wrong_token = ansible.module('vault_keyring_rotate', {'url': url, 'token': 'not-a-real-token'})
    assert wrong_token['failed'] is True and '403' in wrong_token['msg']


def test_sealed_node_is_a_clear_error(ansible, bao_cluster):
    result = ansible.module('vault_keyring_rotate', {'url': bao_cluster.urls[0], 'token': bao_cluster.root_token})
    assert result['failed'] is True and bao_cluster.urls[0] in result['msg']

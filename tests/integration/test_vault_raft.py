"""vault_raft against a real 3-node OpenBao raft cluster."""

from tests.lab.openbao import BaoServer, free_port, http, wait_for


def run_tasks(ansible, module, arg_list, verbosity=0):
    """One ``module`` task per entry of ``arg_list`` in a single playbook: (results, output)."""
    return ansible.modules([(module, args) for args in arg_list], verbosity=verbosity)


def servers(url, token):
    status, body = http('GET', url + '/v1/sys/storage/raft/configuration', token=token)
    assert status == 200, body
    return body['data']['config']['servers']


def peer_ids(url, token):
    return sorted(s['node_id'] for s in servers(url, token))


def autopilot_state(url, token):
    status, body = http('GET', url + '/v1/sys/storage/raft/autopilot/state', token=token)
    return body['data'] if status == 200 else None


def leader_of(cluster):
    """(leader BaoServer, running followers) as the nodes report them."""
    return cluster.leader_and_followers()


def active_node(cluster):
    return leader_of(cluster)[0]


def quick_autopilot(cluster):
    """Autopilot timings for loopback: a node is promoted to voter after 2 s of stability and seen unhealthy 5 s after
    its last contact (defaults 10 s each), so that the waits below end sooner; what autopilot reports is unchanged."""
    status, body = http('POST', active_node(cluster).url + '/v1/sys/storage/raft/autopilot/configuration',
                        {'server_stabilization_time': '2s', 'last_contact_threshold': '5s'}, token=cluster.root_token)
    assert status in (200, 204), body


def wait_all_voters(cluster, count=3):
    """Autopilot promotes joined nodes to voters once they are stable."""
    token = cluster.root_token
    quick_autopilot(cluster)

    def voters():
        state = autopilot_state(active_node(cluster).url, token)
        return state and len(state.get('voters') or []) >= count
    wait_for(voters, timeout=90, what='%d raft voters' % count)


def test_info_reports_peers_and_autopilot(ansible, bao_unsealed):
    leader = active_node(bao_unsealed)
    result = ansible.module('vault_raft', {'url': bao_unsealed.urls[1], 'token': bao_unsealed.root_token})
    assert not result.get('failed'), result
    assert result['changed'] is False
    assert sorted(p['node_id'] for p in result['peers']) == ['node1', 'node2', 'node3']
    assert [p['node_id'] for p in result['peers'] if p['leader']] == [leader.node_id]
    assert result['leader'] == leader.node_id
    assert all(p['address'].startswith('127.0.0.1:') for p in result['peers'])
    autopilot = result['autopilot']
    assert autopilot is not None and result['autopilot_error'] is None
    assert sorted(s['id'] for s in autopilot['servers']) == ['node1', 'node2', 'node3']
    assert autopilot['leader'] == leader.node_id
    assert isinstance(autopilot['healthy'], bool) and isinstance(autopilot['failure_tolerance'], int)
    assert bao_unsealed.root_token not in result['_stdout']


def test_info_needs_a_token_and_a_reachable_node(ansible, bao_unsealed):
    result = ansible.module('vault_raft', {'url': bao_unsealed.urls[0]})
    assert result['failed'] is True and 'token is required' in result['msg']
    stopped = bao_unsealed.nodes[2]
    stopped.stop()
    result = ansible.module('vault_raft', {'url': stopped.url, 'token': bao_unsealed.root_token})
    assert result['failed'] is True
    assert stopped.url in result['msg'] and 'unreachable' in result['msg']


def test_remove_a_stopped_peer(ansible, bao_unsealed):
    token = bao_unsealed.root_token
    wait_all_voters(bao_unsealed)
    leader, followers = leader_of(bao_unsealed)
    dead = followers[-1]
    dead.stop()
    args = {'url': leader.url, 'token': token, 'state': 'removed', 'server_id': dead.node_id}

    check = ansible.module('vault_raft', args, check=True, diff=True)
    assert not check.get('failed'), check
    assert check['changed'] is True and check['removed'] == dead.node_id
    assert len(check['diff']['before']['peers']) == 3 and len(check['diff']['after']['peers']) == 2
    assert dead.node_id in peer_ids(leader.url, token), 'check mode removed the peer'

    real = ansible.module('vault_raft', args, diff=True)
    assert not real.get('failed'), real
    assert real['changed'] is True
    assert sorted(p['node_id'] for p in real['peers']) == sorted(n.node_id for n in [leader] + followers[:-1])
    assert dead.node_id not in [p['node_id'] for p in real['diff']['after']['peers']]
    assert peer_ids(leader.url, token) == sorted(n.node_id for n in [leader] + followers[:-1])

    again = ansible.module('vault_raft', args)
    assert not again.get('failed'), again
    assert again['changed'] is False and again['removed'] is None
    assert len(again['peers']) == 2
    assert token not in real['_stdout'] + check['_stdout'] + again['_stdout']


def test_removing_the_leader_needs_force(ansible, bao_unsealed):
    token = bao_unsealed.root_token
    leader = active_node(bao_unsealed)
    result = ansible.module('vault_raft', {'url': leader.url, 'token': token, 'state': 'removed',
                                           'server_id': leader.node_id})
    assert result['failed'] is True
    assert 'leader' in result['msg'] and 'force=true' in result['msg'] and leader.node_id in result['msg']
    assert len(peer_ids(leader.url, token)) == 3


def test_removal_that_breaks_quorum_is_refused(ansible, bao_unsealed):
    token = bao_unsealed.root_token
    wait_all_voters(bao_unsealed)
    leader, (alive, dead) = leader_of(bao_unsealed)
    dead.stop()

    def dead_unhealthy():
        state = autopilot_state(leader.url, token)
        return state and not state['servers'][dead.node_id]['healthy']
    wait_for(dead_unhealthy, timeout=90, what='autopilot to see %s unhealthy' % dead.node_id)

    result = ansible.module('vault_raft', {'url': leader.url, 'token': token, 'state': 'removed',
                                           'server_id': alive.node_id})
    assert result['failed'] is True
    assert 'server_id %s' % alive.node_id in result['msg'] and 'quorum of 2' in result['msg']
    assert len(peer_ids(leader.url, token)) == 3
    # Removing the dead one is still allowed.
    result = ansible.module('vault_raft', {'url': leader.url, 'token': token, 'state': 'removed',
                                           'server_id': dead.node_id}, check=True)
    assert not result.get('failed'), result
    assert result['changed'] is True


def test_join_a_new_node(ansible, bao_unsealed, tmp_path):
    token = bao_unsealed.root_token
    leader = active_node(bao_unsealed)
    extra = BaoServer(str(tmp_path / 'extra'), 'node4').start()
    try:
        args = {'url': extra.url, 'state': 'joined', 'leader_api_addr': leader.url}

        check = ansible.module('vault_raft', args, check=True, diff=True)
        assert not check.get('failed'), check
        assert check['changed'] is True and check['join_status'] == 'not_joined'
        assert check['diff']['after']['join_status'] == 'pending_unseal'
        assert extra.seal_status()['initialized'] is False, 'check mode joined the node'

        joined = ansible.module('vault_raft', args, diff=True)
        assert not joined.get('failed'), joined
        assert joined['changed'] is True and joined['join_status'] == 'pending_unseal'
        assert joined['diff']['before']['join_status'] == 'not_joined'
        status = extra.seal_status()
        assert status['initialized'] is True and status['sealed'] is True

        pending = ansible.module('vault_raft', args)
        assert not pending.get('failed'), pending
        assert pending['changed'] is False and pending['join_status'] == 'pending_unseal'

        for key in bao_unsealed.keys[:bao_unsealed.threshold]:
            http('PUT', extra.url + '/v1/sys/unseal', {'key': key})
        wait_for(lambda: 'node4' in peer_ids(leader.url, token), timeout=60, what='node4 as a raft peer')
        wait_for(lambda: not extra.seal_status()['sealed'], timeout=60, what='node4 to unseal')

        member = ansible.module('vault_raft', args)
        assert not member.get('failed'), member
        assert member['changed'] is False and member['join_status'] == 'joined'

        info = ansible.module('vault_raft', {'url': leader.url, 'token': token})
        assert 'node4' in [p['node_id'] for p in info['peers']]
    finally:
        extra.stop()


def test_join_with_an_unreachable_leader_fails(ansible, bao_single):
    dead_leader = 'http://127.0.0.1:%d' % free_port()
    result = ansible.module('vault_raft', {'url': bao_single.url, 'state': 'joined',
                                           'leader_api_addr': dead_leader})
    assert result['failed'] is True
    assert 'leader_api_addr %s' % dead_leader in result['msg']
    assert bao_single.seal_status()['initialized'] is False


def test_bad_inputs_fail_before_any_call(ansible, bao_single):
    url = bao_single.url
    secret = '-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----'
    cases = [
        ({'state': 'removed'}, 'server_id is required with state=removed'),
        ({'state': 'joined', 'leader_api_addr': url, 'server_id': 'node1'},
         'server_id applies only to state=removed'),
        ({'state': 'show', 'force': True}, 'force applies only to state=removed'),
        ({'state': 'info'}, 'state'),
        ({'state': 'joined'}, 'leader_api_addr (or auto_join) is required'),
        ({'state': 'joined', 'leader_api_addr': '127.0.0.1:8200'}, 'leader_api_addr must start with http:// or https://'),
        ({'state': 'absent'}, 'state'),
        ({'state': 'joined', 'leader_api_addr': url, 'leader_client_key': secret},
         'leader_client_cert and leader_client_key must be given together'),
    ]
    results, stdout = run_tasks(ansible, 'vault_raft', [dict(case[0], url=url) for case in cases], verbosity=3)
    for (args, message), result in zip(cases, results):
        assert result['failed'] is True, args
        assert message in result['msg'], (args, result['msg'])
    assert 'c2VjcmV0LWtleS1ieXRlcw' not in stdout
    assert 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' in stdout  # the invocation was printed, masked
    assert bao_single.seal_status()['initialized'] is False

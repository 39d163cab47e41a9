"""vault_audit through main(), with the Vault HTTP API scripted at the transport."""
from ansible_collections.trustroot.ops.plugins.modules import vault_audit

from ._vault_fake import UNSEALED, URL

TOKEN = 's.audit-admin-token'
FILE_DEVICE = {'type': 'file', 'path': 'file/', 'description': '', 'local': False,
               'options': {'file_path': '/var/log/openbao/audit.log'}}
ARGS = {'url': URL, 'token': TOKEN, 'path': 'file', 'type': 'file',
        'options': {'file_path': '/var/log/openbao/audit.log'}}


def routes(devices, sanitized=None):
    return {('GET', 'sys/seal-status'): (200, UNSEALED),
            ('GET', 'sys/config/state/sanitized'): (200, {'data': sanitized or {}}),
            ('GET', 'sys/audit'): (200, {'data': devices}),
            ('PUT', 'sys/audit/file'): (204, None),
            ('DELETE', 'sys/audit/file'): (204, None)}


def test_a_missing_device_is_enabled_and_read_back(run_main, vault):
    vault.routes = routes({})
    vault.routes[('GET', 'sys/audit')] = [(200, {'data': {}}), (200, {'data': {'file/': FILE_DEVICE}})]
    ended = run_main(vault_audit.main, ARGS)
    assert not ended.failed, ended.result
    assert ended.result['changed'] and [a['action'] for a in ended.result['actions']] == ['enable']
    assert vault.writes() == [('PUT', 'sys/audit/file')]
    put = [c for c in vault.calls if c['method'] == 'PUT'][0]
    assert put['json'] == {'type': 'file', 'description': '', 'local': False,
                           'options': {'file_path': '/var/log/openbao/audit.log'}}
    assert ended.result['devices']['file']['options'] == {'file_path': '/var/log/openbao/audit.log'}
    assert TOKEN not in str(ended.result)


def test_a_matching_device_changes_nothing(run_main, vault):
    vault.routes = routes({'file/': FILE_DEVICE})
    ended = run_main(vault_audit.main, ARGS)
    assert not ended.failed and not ended.result['changed'] and ended.result['actions'] == []
    assert vault.writes() == []


def test_check_mode_plans_and_shows_the_diff_without_writing(run_main, vault):
    vault.routes = routes({})
    ended = run_main(vault_audit.main, ARGS, check_mode=True, diff=True)
    assert not ended.failed and ended.result['changed']
    assert ended.result['diff']['before'] == {} and list(ended.result['diff']['after']) == ['file']
    assert vault.writes() == []


def test_exclusive_without_devices_fails_naming_the_field_before_any_call(run_main, vault):
    ended = run_main(vault_audit.main, dict(ARGS, exclusive=True))
    assert ended.failed and ended.result['msg'] == 'exclusive needs devices (the full list of devices to keep)'
    assert vault.calls == []


def test_a_device_declared_in_the_configuration_is_not_changed_through_the_api(run_main, vault):
    declared = {'audits': [{'path': 'file', 'type': 'file'}]}
    vault.routes = routes({'file/': dict(FILE_DEVICE, options={'file_path': '/old.log'})}, sanitized=declared)
    ended = run_main(vault_audit.main, ARGS)
    assert ended.failed and 'declared in the server configuration' in ended.result['msg']
    assert ended.result['declared'] == ['file'] and not ended.result['changed']
    assert vault.writes() == []


def test_an_answer_of_the_wrong_shape_fails_naming_the_node_and_the_call(run_main, vault):
    vault.routes = routes({'file/': {'type': 7}})
    ended = run_main(vault_audit.main, ARGS)
    assert ended.failed and ended.result['msg'].startswith(URL) and 'GET sys/audit answered' in ended.result['msg']
    assert vault.writes() == []


def test_a_blocked_server_gets_the_full_disk_hint(run_main, vault):
    vault.routes = routes({})
    vault.routes[('GET', 'sys/audit')] = (500, {'errors': ['internal error']})
    ended = run_main(vault_audit.main, ARGS)
    assert ended.failed and 'a full disk' in ended.result['msg'] and 'HTTP 500' in ended.result['msg']

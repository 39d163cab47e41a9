import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._vault_audit import (
    AuditError, after, api_allowed, config_path_message, current_devices, declared_conflicts, declared_paths,
    normalize_desired, plan, stanzas)

# A sys/audit answer's data as OpenBao 2.7.2 gives it.
ANSWER = {
    'file/': {'description': 'main', 'local': False, 'path': 'file/', 'type': 'file',
              'options': {'file_path': '/var/log/openbao/audit.log', 'mode': '0600'}},
    'old/': {'description': '', 'local': False, 'path': 'old/', 'type': 'file', 'options': {'file_path': '/x'}},
}


def current():
    return current_devices(ANSWER)


def one(**fields):
    device = dict(path='file', type='file', description='main',
                  options={'file_path': '/var/log/openbao/audit.log', 'mode': '0600'})
    device.update(fields)
    return normalize_desired([device])


def test_current_devices_strip_slashes_and_stringify():
    devices = current_devices(dict(ANSWER, request_id='abc'))
    assert sorted(devices) == ['file', 'old']
    assert devices['file']['options'] == {'file_path': '/var/log/openbao/audit.log', 'mode': '0600'}


def test_matching_device_plans_nothing():
    assert plan(one(), current()) == []


def test_open_fields_keep_what_the_server_has():
    assert plan(one(description=None, local=None), current()) == []


def test_new_device_is_enabled_with_defaults():
    actions = plan(normalize_desired([{'path': 'second/', 'type': 'syslog'}]), current())
    assert [(a['action'], a['path']) for a in actions] == [('enable', 'second')]
    expected = {'path': 'second', 'type': 'syslog', 'options': {}, 'description': '', 'local': False}
    assert actions[0]['device'] == expected


@pytest.mark.parametrize('fields, reason', [
    ({'description': 'other'}, 'description differs'),
    ({'options': {'file_path': '/var/log/openbao/audit.log'}}, 'options differs'),
    ({'options': {'file_path': '/var/log/openbao/audit.log', 'mode': '0600', 'log_raw': False}}, 'options differs'),
    ({'local': True, 'description': 'x'}, 'description, local differ'),
])
def test_changed_device_is_replaced(fields, reason):
    actions = plan(one(**fields), current())
    assert [(a['action'], a['path'], a['reason']) for a in actions] == [('replace', 'file', reason)]


def test_option_values_compare_as_strings():
    assert normalize_desired([{'path': 'a', 'type': 'file', 'options': {'file_path': '/a', 'mode': 600}}])[0][
        'options']['mode'] == '600'
    assert normalize_desired([{'path': 'a', 'type': 'file', 'options': {'file_path': '/a', 'log_raw': True}}])[0][
        'options']['log_raw'] == 'true'


def test_absent_and_exclusive():
    assert [(a['action'], a['path']) for a in plan(normalize_desired([{'path': 'old', 'state': 'absent'}]),
                                                   current())] == [('disable', 'old')]
    assert plan(normalize_desired([{'path': 'gone', 'state': 'absent'}]), current()) == []
    assert [(a['action'], a['path']) for a in plan(one(), current(), exclusive=True)] == [('disable', 'old')]


def test_after_applies_actions():
    actions = plan(one(description='new') + normalize_desired([{'path': 'old', 'state': 'absent'}]), current())
    result = after(current(), actions)
    assert sorted(result) == ['file'] and result['file']['description'] == 'new'


@pytest.mark.parametrize('devices, field', [
    ([{'path': '', 'type': 'file'}], 'devices[0].path'),
    ([{'path': 'a b', 'type': 'file'}], 'devices[0].path'),
    ([{'path': 'a', 'type': 'kafka'}], 'devices[0].type'),
    ([{'path': 'a', 'type': 'file'}], 'devices[0].options.file_path'),
    ([{'path': 'a', 'type': 'socket', 'options': {}}], 'devices[0].options.address'),
    ([{'path': 'a', 'type': 'syslog', 'local': 'yes'}], 'devices[0].local'),
    ([{'path': 'a', 'type': 'syslog'}, {'path': 'a/', 'state': 'absent'}], 'devices[1].path a is given twice'),
    (['file'], 'devices[0] must be a dictionary'),
])
def test_bad_input_names_the_field(devices, field):
    with pytest.raises(AuditError) as caught:
        normalize_desired(devices)
    assert field in str(caught.value)


def test_api_allowed_by_flavour_and_flag():
    assert api_allowed('vault', {})
    assert not api_allowed('openbao', {'unsafe_allow_api_audit_creation': False})
    assert api_allowed('openbao', {'unsafe_allow_api_audit_creation': True})
    assert api_allowed('openbao', {})  # a server too old to know the setting


def test_declared_devices_cannot_be_changed_through_the_api():
    declared = declared_paths({'audits': [{'description': 'main', 'path': 'file/', 'type': 'file'}]})
    assert declared == {'file'}
    actions = plan(one(description='other') + normalize_desired([{'path': 'new', 'type': 'syslog'}]), current())
    assert [a['path'] for a in declared_conflicts(actions, declared)] == ['file']


def test_stanzas_and_refusal_message():
    text = stanzas(one())
    assert text == ('audit "file" "file" {\n  description = "main"\n  options {\n'
                    '    file_path = "/var/log/openbao/audit.log"\n    mode = "0600"\n  }\n}\n')
    message = config_path_message('https://bao:8200', '2.7.2', plan(one(description='x'), current()), {'file'})
    assert 'unsafe_allow_api_audit_creation is off' in message and 'replace file (description differs)' in message
    assert 'SIGHUP' in message and 'Declared now: file' in message

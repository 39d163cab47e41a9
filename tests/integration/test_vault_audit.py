"""vault_audit against real single-node OpenBao servers: the API path (unsafe_allow_api_audit_creation set), the
configuration path (not set: refusal, then the stanzas it gives, declared and applied by SIGHUP), what the audit
file holds after a KV write of a known value, and what a full disk does to requests with one device and with two."""

import errno
import json
import os
import signal

import pytest

from tests.lab.common import tmpfs, wait_for
from tests.lab.openbao import BaoServer, http, mount_kv

UNSAFE = 'unsafe_allow_api_audit_creation = true\n'
KNOWN = 'audit-known-value-4f1c9a7e'


@pytest.fixture
def bao(tmp_path):
    """Start single-node servers with extra configuration; each comes back initialized, unsealed and active."""
    servers = []

    def start(name, extra=''):
        server = BaoServer(str(tmp_path), name)
        server.seal_stanza = extra
        servers.append(server.start())
        status, init = http('PUT', server.url + '/v1/sys/init', {'secret_shares': 1, 'secret_threshold': 1})
        assert status == 200, init
        http('PUT', server.url + '/v1/sys/unseal', {'key': init['keys'][0]})
        wait_for(lambda: http('GET', server.url + '/v1/sys/health', timeout=2)[0] == 200, timeout=30,
                 what='%s to be active' % name)
        server.token = init['root_token']
        return server
    yield start
    for server in servers:
        server.stop()


def devices(server):
    status, body = http('GET', server.url + '/v1/sys/audit', token=server.token)
    assert status == 200, body
    return dict((path.rstrip('/'), entry) for path, entry in body['data'].items())


def kv_put(server, value):
    return http('POST', server.url + '/v1/secret/data/app', {'data': {'password': value}}, token=server.token)


def file_device(path, file_path, **fields):
    return dict(dict(path=path, type='file', options={'file_path': file_path, 'mode': '0600'}), **fields)


def test_api_path_enable_check_diff_idempotent_replace_absent_and_hmac(ansible, bao, tmp_path):
    server = bao('api', UNSAFE)
    conn = {'url': server.url, 'token': server.token}
    log = str(tmp_path / 'audit.log')
    device = dict(conn, **file_device('main', log, description='main'))
    changed_device = dict(device, description='main, second edition')

    results, output = ansible.modules([
        ('vault_audit', device, {'check_mode': True, 'diff': True}),
    ])
    checked = results[0]
    assert checked['changed'] is True and checked['api_allowed'] is True and checked['flavour'] == 'openbao'
    assert [(a['action'], a['path']) for a in checked['actions']] == [('enable', 'main')]
    assert checked['diff']['before'] == {} and checked['diff']['after']['main']['options']['file_path'] == log
    assert devices(server) == {}, 'check mode changed the server'

    results, output = ansible.modules([
        ('vault_audit', device),
        ('vault_audit', device),
        ('vault_audit', changed_device, {'diff': True}),
    ])
    enabled, again, replaced = results
    assert enabled['changed'] is True and 'main' in devices(server), enabled
    assert again['changed'] is False and again['actions'] == [], again
    assert replaced['changed'] is True and [(a['action'], a['reason']) for a in replaced['actions']] == [
        ('replace', 'description differs')], replaced
    assert replaced['diff']['before']['main']['description'] == 'main'
    assert devices(server)['main']['description'] == 'main, second edition'
    assert server.token not in output

    # A KV write of a known value: the audit file holds the request, its value HMAC'd, never in clear.
    mount_kv(server.url, server.token, 'secret')
    status, body = kv_put(server, KNOWN)
    assert status == 200, body
    with open(log) as handle:
        text = handle.read()
    entries = [json.loads(line) for line in text.splitlines()]
    writes = [e for e in entries if e.get('type') == 'request' and e['request'].get('path') == 'secret/data/app'
              and e['request'].get('operation') in ('create', 'update')]
    assert writes, 'no audit entry for the KV write'
    assert writes[0]['request']['data']['data']['password'].startswith('hmac-sha256:')
    assert KNOWN not in text and server.token not in text
    assert oct(os.stat(log).st_mode & 0o777) == '0o600'

    results, _output = ansible.modules([
        ('vault_audit', {'url': server.url, 'token': server.token, 'path': 'main', 'state': 'absent'}),
        ('vault_audit', {'url': server.url, 'token': server.token, 'path': 'main', 'state': 'absent'}),
    ])
    assert results[0]['changed'] is True and devices(server) == {}, results[0]
    assert results[1]['changed'] is False


def test_config_path_refuses_with_the_stanzas_then_they_apply_on_sighup(ansible, bao, tmp_path):
    declared_log = str(tmp_path / 'declared.log')
    stanza = ('audit "file" "declared" {\n  description = "from config"\n  options {\n    file_path = "%s"\n'
              '    mode = "0600"\n  }\n}\n' % declared_log)
    server = bao('config', stanza)
    conn = {'url': server.url, 'token': server.token}
    declared = dict(conn, **file_device('declared', declared_log, description='from config'))
    second_log = str(tmp_path / 'second.log')
    wanted = dict(conn, devices=[file_device('declared', declared_log, description='from config'),
                                 file_device('second', second_log, description='second')])

    results, _output = ansible.modules([
        ('vault_audit', declared),
        ('vault_audit', wanted, {'check_mode': True}),
        ('vault_audit', wanted),
        ('vault_audit', dict(declared, description='edited')),
    ])
    matching, refused_check, refused, edit = results
    assert matching['changed'] is False and matching['api_allowed'] is False and matching['declared'] == ['declared']
    for result in (refused_check, refused):
        assert result['failed'] is True, result
        assert 'unsafe_allow_api_audit_creation is off' in result['msg'] and 'enable second' in result['msg']
        assert 'audit "file" "second"' in result['config_stanzas']
    assert edit['failed'] is True and 'replace declared (description differs)' in edit['msg']
    assert sorted(devices(server)) == ['declared']

    # The stanzas the module gave, declared and applied by SIGHUP: the same task now changes nothing.
    server.seal_stanza = refused['config_stanzas']
    with open(server.config_path, 'w') as handle:
        handle.write(server.render_config())
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: 'second' in devices(server), timeout=15, what='SIGHUP to add the declared device')
    applied = ansible.module('vault_audit', wanted)
    assert applied['changed'] is False and applied['declared'] == ['declared', 'second'], applied


def test_full_disk_blocks_requests_with_one_device_and_not_with_two(ansible, bao, tmp_path):
    if os.geteuid() != 0:
        pytest.skip('mounting a small tmpfs (a disk that really fills) needs root')
    server = bao('disk', UNSAFE)
    mount_kv(server.url, server.token, 'secret')
    conn = {'url': server.url, 'token': server.token}
    good_log = str(tmp_path / 'good.log')
    with tmpfs(str(tmp_path / 'small'), '64k') as small:
        try:
            full_log = os.path.join(small, 'audit.log')
            pair = [file_device('small', full_log), file_device('good', good_log)]
            both = ansible.module('vault_audit', dict(conn, devices=pair))
            assert both['changed'] is True, both
            with open(os.path.join(small, 'filler'), 'wb', buffering=0) as handle:
                with pytest.raises(OSError) as caught:
                    while True:
                        handle.write(b'x' * 4096)
            assert caught.value.errno == errno.ENOSPC

            # Two devices, one full: the request is served and written to the other.
            status, body = kv_put(server, 'with-two-devices')
            assert status == 200, body
            with open(good_log) as handle:
                assert 'secret/data/app' in handle.read()

            removed = ansible.module('vault_audit', dict(conn, path='good', state='absent'))
            assert removed['changed'] is True, removed

            # The only device cannot write: OpenBao refuses the request rather than serve it unaudited.
            status, body = kv_put(server, 'with-one-full-device')
            assert status >= 500, (status, body)
            status, body = http('GET', server.url + '/v1/secret/data/app', token=server.token)
            assert status >= 500, (status, body)
            # Nor can a second device be added then: that request is audited too.
            blocked = ansible.module('vault_audit', dict(conn, **file_device('good', good_log)))
            assert blocked['failed'] is True and 'internal error' in blocked['msg'], blocked
            assert 'no audit device can write' in blocked['msg'], blocked['msg']
        finally:
            server.stop()  # it holds the audit file open: the tmpfs unmounts only after

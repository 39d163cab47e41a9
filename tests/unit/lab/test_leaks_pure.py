"""tests/lab/leaks.py: a planted secret is found in output and in files, in every spelling, and allowed files are
reported apart."""

import base64
import json
import os

import pytest

from tests.lab import leaks

KEY_B64 = base64.b64encode(bytes(range(1, 33))).decode()  # an unseal share: 32 bytes, with '/' and '+' maybe
KEY_HEX = bytes(range(1, 33)).hex()
TOKEN = 's.Abc/def+ghi1234567890xyz'
SECRETS = {'unseal_key_1_b64': KEY_B64, 'root_token': TOKEN, 'pg_password': 'Lab-pg-0123456789abcdef'}


def test_forms_cover_json_escapes_and_the_other_encoding():
    spellings = leaks.forms(KEY_B64)
    assert KEY_B64 in spellings and KEY_HEX in spellings
    assert 's.Abc\\/def+ghi1234567890xyz' in leaks.forms(TOKEN)
    assert KEY_B64 in leaks.forms(KEY_HEX)
    assert leaks.forms('line"with\\quote') == ['line"with\\quote', 'line\\"with\\\\quote']


@pytest.mark.parametrize('output', [
    'ok: [vault1] => {"key": "%s"}' % KEY_B64,                               # as is
    'the share in hex: %s' % KEY_HEX,                                         # the other encoding
    json.dumps({'msg': json.dumps({'token': TOKEN})}),                        # JSON in JSON: escaped quotes
    '{"token": "%s"}' % TOKEN.replace('/', '\\/'),                            # '/' escaped
    b'binary\x00Lab-pg-0123456789abcdef\x00',                                 # bytes
])
def test_a_planted_secret_in_output_is_found(output):
    assert leaks.text_leaks(output, SECRETS)


def test_clean_output_and_censored_values_are_not_leaks():
    text = 'ok: [vault1] => {"censored": "the output has been hidden", "otp": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}'
    assert leaks.text_leaks(text, SECRETS) == []
    assert leaks.named_value_leaks(text) == []
    assert leaks.named_value_leaks('{\\"otp\\": \\"Xy12\\", "encoded_token": ""}') == ['otp']


def test_an_encoded_root_token_is_recognized_without_its_otp():
    otp = 'q' * len(TOKEN)
    encoded = base64.b64encode(bytes(a ^ b for a, b in zip(TOKEN.encode(), otp.encode()))).decode().rstrip('=')
    assert leaks.encoded_token_leaks('"encoded": "%s"' % encoded, TOKEN) == [encoded]
    assert leaks.encoded_token_leaks('"other": "%s"' % base64.b64encode(os.urandom(40)).decode(), TOKEN) == []


def test_a_missing_or_short_secret_is_an_error_naming_it():
    with pytest.raises(leaks.LeakError, match='root_token'):
        leaks.text_leaks('x', {'root_token': ''})
    with pytest.raises(leaks.LeakError, match='no secret'):
        leaks.text_leaks('x', {})


def test_files_planted_secret_found_allowed_file_reported_apart(tmp_path):
    upper = tmp_path / 'hosts' / 'vault1' / 'upper'
    (upper / 'etc' / 'openbao').mkdir(parents=True)
    (upper / 'etc' / 'openbao' / 'leaked.json').write_text(json.dumps({'keys_hex': [KEY_HEX]}))
    (upper / 'etc' / 'spire.env').write_text('DSN=postgres://spire:Lab-pg-0123456789abcdef@127.0.0.1/spire\n')
    (upper / 'clean.txt').write_text('nothing here')
    merged = tmp_path / 'hosts' / 'vault1' / 'root'
    merged.mkdir()
    (merged / 'copy').write_text(TOKEN)  # the merged view is not scanned: its files are the upper's and the rootfs'
    allowed = [('*/upper/etc/spire.env', 'the server connects with it')]
    found, held, scanned = leaks.file_leaks([str(tmp_path)], SECRETS, allowed, skip=[str(merged)])
    assert found == [(str(upper / 'etc' / 'openbao' / 'leaked.json'), 'unseal_key_1_b64', KEY_HEX)]
    assert held == [(str(upper / 'etc' / 'spire.env'), 'pg_password', 'the server connects with it')]
    assert scanned == 3


def test_private_file_problem(tmp_path):
    path = tmp_path / 'secret.env'
    path.write_text('x')
    os.chmod(str(path), 0o600)
    assert leaks.private_file_problem(str(path), owners=(os.getuid(),)) is None
    os.chmod(str(path), 0o644)
    assert 'mode 644' in leaks.private_file_problem(str(path), owners=(os.getuid(),))
    os.chmod(str(path), 0o640)
    assert 'owned by uid' in leaks.private_file_problem(str(path), owners=(os.getuid() + 1,))


def test_controller_temp_roots_and_changed_since(tmp_path):
    (tmp_path / 'ansible.abc.root-token').mkdir()
    (tmp_path / 'other').mkdir()
    roots = leaks.controller_temp_roots(0, tmp=str(tmp_path), home=str(tmp_path))
    assert roots == [str(tmp_path / '.ansible' / 'tmp'), str(tmp_path / 'ansible.abc.root-token')]
    (tmp_path / '.git').mkdir()
    (tmp_path / '.git' / 'x').write_text('x')
    (tmp_path / 'run.retry').write_text('vault1')
    assert leaks.changed_since(str(tmp_path), 0) == [str(tmp_path / 'run.retry')]


def test_material_secrets_and_join_tokens():
    material = {'unseal_keys_b64': [KEY_B64], 'unseal_keys_hex': [KEY_HEX], 'root_token': TOKEN, 'unseal_threshold': 1}
    assert leaks.material_secrets(material, 'old ') == {'old unseal_keys_b64[0]': KEY_B64,
                                                        'old unseal_keys_hex[0]': KEY_HEX, 'old root_token': TOKEN}
    agents = {'agents': [{'id': {'path': '/spire/agent/join_token/0b9e3f0c-1111-2222-3333-444455556666'}},
                         {'id': {'path': '/spire/agent/x509pop/abc'}}]}
    assert leaks.join_tokens(agents) == {'join_token 0b9e3f0c': '0b9e3f0c-1111-2222-3333-444455556666'}


def test_a_used_join_token_inside_the_agent_id_is_not_a_leak():
    token = '0b9e3f0c-1111-2222-3333-444455556666'
    secrets = {'join token': token}
    agent_id = 'spiffe://demo.trustroot.test/spire/agent/join_token/' + token
    assert leaks.text_leaks('msg="Node attestation was successful" spiffe_id=' + agent_id, secrets) == []
    assert leaks.text_leaks('{"parent_id": "%s"}' % agent_id.replace('/', '\\/'), secrets) == []
    assert leaks.text_leaks(agent_id + ' then the token alone: ' + token, secrets) == [('join token', 'as is')]
    assert leaks.text_leaks('ExecStart=spire-agent run -joinToken ' + token, secrets) == [('join token', 'as is')]


def test_journal_leaks_name_who_logged_the_secret():
    journal = '\n'.join(json.dumps(entry) for entry in [
        {'SYSLOG_IDENTIFIER': 'sshd', 'MESSAGE': 'Accepted publickey'},
        {'SYSLOG_IDENTIFIER': 'postgres', 'MESSAGE': "STATEMENT: CREATE ROLE spire PASSWORD 'Lab-pg-0123456789abcdef'"},
        {'_COMM': 'python3', 'MESSAGE': 'Invoked with token=%s' % TOKEN}])
    assert leaks.journal_leaks(journal, SECRETS, 'spire-server1') == [
        ('journal:spire-server1:postgres', 'pg_password', 'as is'), ('journal:spire-server1:python3', 'root_token', 'as is')]

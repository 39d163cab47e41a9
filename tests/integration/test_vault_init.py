"""vault_init against real OpenBao: Shamir, auto-unseal, check mode, idempotency, bad input."""
import json
import os
import stat
import subprocess

from tests.integration.probes import answer_of, exists, http_probe, play, stat_of, stat_probe, task
from tests.lab.openbao import http


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def test_check_mode_then_init_then_idempotent(ansible, bao_single, tmp_path):
    out = str(tmp_path / 'init.json')
    args = {'url': bao_single.url, 'secret_shares': 3, 'secret_threshold': 2, 'output_path': out}
    seal_status = http_probe(bao_single.url + '/v1/sys/seal-status')

    # Check mode, the init and its re-run in one playbook run; the output file and the seal status read after each.
    (checked, out_after_check, status_after_check, done, out_after_done, status_after_done, again,
     out_after_again) = play(ansible, tmp_path, [
         task('vault_init', args, check_mode=True, diff=True), stat_probe(out), seal_status,
         task('vault_init', args), stat_probe(out), seal_status,
         task('vault_init', dict(args, overwrite_output=True)), stat_probe(out)])
    assert checked['changed'] is True and not checked.get('failed'), checked
    assert checked['diff']['after'] == {'initialized': True, 'shares': 3, 'threshold': 2}
    assert answer_of(status_after_check)[1]['initialized'] is False, 'check mode initialized the server'
    assert not exists(out_after_check), 'check mode wrote the output'

    assert done['changed'] is True and done['initialized'] is True, done
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    material = read_json(out)
    assert material['format'] == 'trustroot.ops/vault-init/v1' and material['kind'] == 'init'
    assert len(material['unseal_keys_b64']) == 3 and material['unseal_threshold'] == 2
    assert material['root_token']
    for secret in material['unseal_keys_b64'] + material['unseal_keys_hex'] + [material['root_token']]:
        assert secret not in done['_stdout']
        assert secret not in json.dumps({k: v for k, v in done.items() if k != '_stdout'})
    assert answer_of(status_after_done)[1]['initialized'] is True

    assert again['changed'] is False and again['initialized'] is True
    assert (again['shares'], again['threshold']) == (3, 2)
    written, kept = stat_of(out_after_done), stat_of(out_after_again)
    assert (kept['inode'], kept['mtime'], kept['checksum']) == (written['inode'], written['mtime'], written['checksum']), \
        'an initialized server must leave the material alone'


def test_age_encrypted_material(ansible, bao_single, tmp_path):
    identity = tmp_path / 'operator.agekey'
    subprocess.run(['age-keygen', '-o', str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(['age-keygen', '-y', str(identity)], check=True, capture_output=True,
                               text=True).stdout.strip()
    out = str(tmp_path / 'init.json.age')
    done = ansible.module('vault_init', {'url': bao_single.url, 'secret_shares': 1, 'secret_threshold': 1,
                                         'output_path': out, 'age_recipients': [recipient]})
    assert done['changed'] is True, done
    with open(out, 'rb') as handle:
        raw = handle.read()
    assert raw.startswith(b'-----BEGIN AGE ENCRYPTED FILE-----')
    plain = subprocess.run(['age', '-d', '-i', str(identity), out], check=True, capture_output=True).stdout
    material = json.loads(plain)
    assert len(material['unseal_keys_b64']) == 1
    assert material['root_token'].encode() not in raw


def test_bad_input_names_field_and_leaves_server_uninitialized(ansible, bao_single, tmp_path):
    existing = tmp_path / 'existing.json'
    existing.write_text('keys of another cluster')
    # (case, args, words the message must hold); each case writes to an output path of its own.
    cases = [
        ('threshold above shares', {'secret_shares': 3, 'secret_threshold': 4}, ['secret_threshold']),
        ('threshold 1 of 3', {'secret_shares': 3, 'secret_threshold': 1}, ['secret_threshold']),
        ('no shares', {'secret_shares': 0, 'secret_threshold': 0}, ['secret_shares']),
        ('pgp keys not one per share', {'pgp_keys': ['a', 'b']}, ['pgp_keys']),
        ('recovery shares on a Shamir seal', {'recovery_shares': 3}, ['recovery_shares']),
        ('bad age recipient', {'age_recipients': ['not-an-age-recipient']}, ['age_recipients']),
        ('unwritable output', {'output_path': str(tmp_path / 'no' / 'x.json')}, ['output_path']),
        ('existing output', {'output_path': str(existing)}, ['output_path', 'exists']),
    ]
    outputs = [args.get('output_path', str(tmp_path / ('init-%d.json' % i))) for i, (_case, args, _words) in enumerate(cases)]
    # Every case in one playbook run; none may initialize the server.
    results, _output = ansible.modules([('vault_init', dict({'url': bao_single.url}, **dict(args, output_path=out)))
                                        for (_case, args, _words), out in zip(cases, outputs)])
    assert len(results) == len(cases)
    for (case, _args, words), out, result in zip(cases, outputs, results):
        assert result['failed'] is True, (case, result)
        for word in words:
            assert word in result['msg'], (case, result['msg'])
        if out != str(existing):
            assert not os.path.exists(out), case
    assert existing.read_text() == 'keys of another cluster'
    assert bao_single.seal_status()['initialized'] is False


def test_full_disk_fails_before_init_naming_output_path(ansible, bao_single, full_tmpfs):
    """The server must not be initialized when its keys cannot be kept (they would be lost)."""
    out = os.path.join(full_tmpfs, 'init.json')
    args = {'url': bao_single.url, 'secret_shares': 3, 'secret_threshold': 2, 'output_path': out}
    # Check mode, then the real run, in one playbook run.
    results, _output = ansible.modules([('vault_init', args, {'check_mode': True}), ('vault_init', args)])
    assert len(results) == 2
    for check, result in zip((True, False), results):
        assert result['failed'] is True and not result.get('changed'), (check, result)
        assert result['msg'].startswith('output_path: no space left on device in %s (needed ~' % full_tmpfs), (
            check, result['msg'])
        assert 'nothing was sent to the server' in result['msg'], (check, result['msg'])
    assert bao_single.seal_status()['initialized'] is False
    assert os.listdir(full_tmpfs) == ['filler'], 'no placeholder left behind'


def test_stopped_server_is_a_clear_error(ansible, bao_single, tmp_path):
    bao_single.stop()
    result = ansible.module('vault_init', {'url': bao_single.url, 'output_path': str(tmp_path / 'i.json')})
    assert result['failed'] is True
    assert bao_single.url in result['msg'] and 'unreachable' in result['msg']


def test_auto_unseal_gets_recovery_keys(ansible, bao_autounseal_single, tmp_path):
    out = str(tmp_path / 'recovery.json')
    done = ansible.module('vault_init', {'url': bao_autounseal_single.url, 'recovery_shares': 3,
                                         'recovery_threshold': 2, 'output_path': out})
    assert done['changed'] is True and done['seal_type'] == 'transit', done
    material = read_json(out)
    assert len(material['recovery_keys_b64']) == 3 and 'unseal_keys_b64' not in material
    status = http('GET', bao_autounseal_single.url + '/v1/sys/seal-status')[1]
    assert status['initialized'] is True and status['sealed'] is False and status['recovery_seal'] is True

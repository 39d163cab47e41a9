import base64
import errno
import os
import shutil
import stat
import subprocess

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._files import (
    age_encrypt, atomic_write, atomic_writer, check_writable_target, reserve_space, sha256_file)
from ansible_collections.trustroot.ops.plugins.module_utils._material import (
    FORMAT, AnswerError, MaterialError, Reservation, SaveOutcome, age_armor_bound, init_call_failure_message,
    init_material_bound, keys_from_material, material_from_init, material_from_rekey, parse_material,
    private_temp_bases, rescue_plan, reservation_failure_message, reserve_material_output, save_failure_message,
    save_material, secrets_in, serialize, validate_key_shares)
from ansible_collections.trustroot.ops.plugins.module_utils._vault import VaultError
from ansible_collections.trustroot.ops.plugins.module_utils import _vault_init

INIT = {'keys': ['aa', 'bb', 'cc'], 'keys_base64': ['qg==', 'uw==', 'zA=='], 'root_token': 's.root'}


def test_material_from_init_and_back():
    material = material_from_init(INIT, {'secret_shares': 3, 'secret_threshold': 2}, 'http://a', 'openbao', '2.7.2')
    assert material['format'] == FORMAT and material['unseal_threshold'] == 2
    parsed = parse_material(serialize(material))
    assert keys_from_material(parsed) == ['qg==', 'uw==', 'zA==']
    assert sorted(secrets_in(parsed)) == sorted(INIT['keys'] + INIT['keys_base64'] + ['s.root'])


def test_pgp_keys_and_missing_keys_are_errors():
    material = material_from_init(INIT, {'secret_shares': 3, 'secret_threshold': 2, 'pgp_keys': ['p'] * 3},
                                  'http://a', 'openbao', '2.7.2')
    with pytest.raises(MaterialError, match='PGP-encrypted'):
        keys_from_material(material)
    with pytest.raises(MaterialError, match='no recovery keys'):
        keys_from_material(material, recovery=True)


@pytest.mark.parametrize('data', [b'not json', b'{"format": "other"}', b'[]'])
def test_parse_rejects_foreign_files(data):
    with pytest.raises(MaterialError, match='not a key material file'):
        parse_material(data)


def test_atomic_write_mode_and_no_leftovers_on_failure(tmp_path):
    target = tmp_path / 'secret.json'
    atomic_write(str(target), b'{}')
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600 and target.read_bytes() == b'{}'
    with pytest.raises(RuntimeError):
        with atomic_writer(str(target)) as handle:
            handle.write(b'half')
            raise RuntimeError('interrupted')
    assert target.read_bytes() == b'{}', 'an interrupted write must not replace the file'
    assert os.listdir(tmp_path) == ['secret.json'], 'no temp file may be left behind'
    assert sha256_file(str(target)) == '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'


@pytest.mark.parametrize('keys, problem', [
    ([], 'keys is empty'),
    (['   '], 'keys[0] is empty'),
    (['abc!'], 'keys[0] is neither hex nor base64'),
    (['a2V5MQ==', 'a2V5MQ=='], 'keys holds the same key more than once'),
])
def test_validate_key_shares(keys, problem):
    assert validate_key_shares(keys) == problem


def test_validate_key_shares_accepts_hex_and_base64():
    assert validate_key_shares(['deadbeef', 'a2V5MQ==']) is None


# --- answers that should carry key material ---------------------------------------------------------------

SHAMIR = {'secret_shares': 3, 'secret_threshold': 2}
AUTO = {'recovery_shares': 3, 'recovery_threshold': 2}
URL = 'https://v:8200'


def init_error(answer, request=None):
    with pytest.raises(AnswerError) as caught:
        material_from_init(answer, request or SHAMIR, URL, 'openbao', '2.7.2')
    assert str(caught.value).startswith(URL + ': PUT sys/init answer '), str(caught.value)
    return caught.value


@pytest.mark.parametrize('answer, problem', [
    (None, 'is empty'),
    ('', 'is empty'),
    ({}, 'is empty'),
    ('<html><body>Vault UI</body></html>', 'is text, not a JSON object'),
    ([INIT], 'is a list, not a JSON object'),
])
def test_init_answer_that_is_not_an_object(answer, problem):
    error = init_error(answer)
    assert str(error) == '%s: PUT sys/init answer %s' % (URL, problem)
    assert error.partial is None


@pytest.mark.parametrize('answer, problem', [
    ({'keys': INIT['keys'], 'root_token': 's.root'}, 'lacks keys_base64'),
    (dict(INIT, keys_base64=INIT['keys_base64'][:2]), 'has 2 key(s) in keys_base64, 3 were requested (secret_shares)'),
    (dict(INIT, keys_base64='qg==,uw==,zA=='), 'has keys_base64 as text, not a list'),
    (dict(INIT, keys_base64=['qg==', None, 'zA==']), 'has an empty or non-text keys_base64[1]'),
    (dict(INIT, keys_base64=['qg==', 'u w', 'zA==']), 'has keys_base64[1] that is not base64'),
    (dict(INIT, keys=['aa', 'zz', 'cc']), 'has keys[1] that is not hex'),
    ({'keys': INIT['keys'], 'keys_base64': INIT['keys_base64']}, 'lacks root_token'),
    (dict(INIT, root_token=''), 'has an empty or non-text root_token'),
    (dict(INIT, root_token=7), 'has an empty or non-text root_token'),
])
def test_init_answer_that_lacks_what_is_needed(answer, problem):
    error = init_error(answer)
    assert problem in str(error)
    # What passed the checks is kept (the server may be initialized), marked incomplete; never the bad part.
    partial = error.partial
    assert partial is not None and partial['incomplete'] == str(error)
    assert parse_material(serialize(partial))['format'] == FORMAT


def test_partial_init_material_keeps_the_usable_parts():
    error = init_error({'keys': INIT['keys'], 'root_token': 's.root'})
    assert error.partial['unseal_keys_hex'] == INIT['keys'] and error.partial['unseal_keys_b64'] == []
    assert error.partial['root_token'] == 's.root'
    assert keys_from_material(error.partial) == INIT['keys']
    error = init_error({'keys_base64': INIT['keys_base64'], 'keys': INIT['keys']})
    assert error.partial['root_token'] is None and error.partial['unseal_keys_b64'] == INIT['keys_base64']
    error = init_error({'keys': 'x', 'keys_base64': 'y', 'root_token': ''})
    assert error.partial is None, 'nothing usable: nothing to save'


def test_init_answers_of_auto_unseal_servers():
    good = {'keys': [], 'keys_base64': [], 'recovery_keys': INIT['keys'], 'recovery_keys_base64': INIT['keys_base64'],
            'root_token': 's.root'}
    material = material_from_init(good, AUTO, URL, 'openbao', '2.7.2')
    assert material['recovery_keys_b64'] == INIT['keys_base64'] and 'unseal_keys_b64' not in material
    error = init_error({'keys': INIT['keys'], 'keys_base64': INIT['keys_base64'], 'root_token': 's.root'}, AUTO)
    assert 'lacks recovery_keys_base64' in str(error)
    # recovery_shares=0 (OpenBao): no recovery keys is the right answer.
    none = material_from_init({'root_token': 's.root', 'recovery_keys_base64': None},
                              {'recovery_shares': 0, 'recovery_threshold': 0}, URL, 'openbao', '2.7.2')
    assert none['root_token'] == 's.root' and none['recovery_keys_b64'] == []


def test_pgp_encrypted_root_token_is_accepted():
    material = material_from_init(dict(INIT, root_token='wcBMA0pgpblob=='), dict(SHAMIR, root_token_pgp_key='k'),
                                  URL, 'openbao', '2.7.2')
    assert material['root_token_pgp_encrypted'] is True


REKEY = {'keys': INIT['keys'], 'keys_base64': INIT['keys_base64'], 'complete': True}


def rekey_material(answer, shares=3):
    return material_from_rekey(answer, 'unseal', shares, 2, False, URL, 'openbao', '2.7.2',
                               call='PUT sys/rotate/root/update')


def test_rekey_answer_checks():
    assert rekey_material(REKEY)['unseal_keys_b64'] == INIT['keys_base64']
    assert rekey_material({'keys': INIT['keys'], 'complete': True})['unseal_keys_hex'] == INIT['keys']
    for answer, problem in [
        ({'complete': True}, 'lacks keys_base64 and keys'),
        (dict(REKEY, keys_base64=INIT['keys_base64'][:1]), 'has 1 key(s) in keys_base64, 3 were requested'),
        (dict(REKEY, keys={'0': 'aa'}), 'has keys as dict, not a list'),
        ('<!doctype html>', 'is text, not a JSON object'),
        (None, 'is empty'),
    ]:
        with pytest.raises(AnswerError) as caught:
            rekey_material(answer)
        assert str(caught.value).startswith(URL + ': PUT sys/rotate/root/update answer ')
        assert problem in str(caught.value), (answer, str(caught.value))
    with pytest.raises(AnswerError) as caught:
        rekey_material(dict(REKEY, keys_base64=INIT['keys_base64'][:1]))
    assert caught.value.partial['unseal_keys_hex'] == INIT['keys'], 'the well-formed part is kept'


# --- size bounds ---------------------------------------------------------------------------------------------

class AgeModule(object):
    """What age_encrypt needs from an AnsibleModule, over the real age command."""

    def get_bin_path(self, name):
        return shutil.which(name)

    def run_command(self, argv, data=None, binary_data=False, encoding=None, environ_update=None):
        proc = subprocess.run(argv, input=data, capture_output=True, check=False, env=dict(os.environ, **(environ_update or {})))
        return proc.returncode, proc.stdout, proc.stderr


def age_recipients(tmp_path, count):
    recipients = []
    for index in range(count):
        identity = tmp_path / ('id%d' % index)
        subprocess.run(['age-keygen', '-o', str(identity)], check=True, capture_output=True)
        recipients.append(subprocess.run(['age-keygen', '-y', str(identity)], check=True, capture_output=True,
                                         text=True).stdout.strip())
    return recipients


def longest_answer(shares, key_bytes=33, token_chars=95):
    raw = [os.urandom(key_bytes) for _share in range(shares)]
    return {'keys': [r.hex() for r in raw], 'keys_base64': [base64.b64encode(r).decode() for r in raw],
            'root_token': 'hvs.' + 'x' * (token_chars - 4)}


@pytest.mark.parametrize('shares', [1, 5, 255])
def test_init_bound_covers_the_material(shares):
    request = {'secret_shares': shares, 'secret_threshold': min(shares, 2) if shares > 1 else 1}
    material = material_from_init(longest_answer(shares), request, URL, 'openbao', '2.7.2')
    bound = init_material_bound(request, URL, 'openbao', '2.7.2')
    assert len(serialize(material)) <= bound and bound % 4096 == 0


def test_init_bound_covers_pgp_encrypted_shares():
    # An RSA-4096 public key export is ~2.2 KB; a message to it ~600 bytes: the bound must hold it easily.
    pgp_key = base64.b64encode(os.urandom(2200)).decode()
    request = {'secret_shares': 5, 'secret_threshold': 3, 'pgp_keys': [pgp_key] * 5, 'root_token_pgp_key': pgp_key}
    answer = longest_answer(5, key_bytes=2200 + 200)
    answer['root_token'] = base64.b64encode(os.urandom(2200 + 200)).decode()
    material = material_from_init(answer, request, URL, 'openbao', '2.7.2')
    assert len(serialize(material)) <= init_material_bound(request, URL, 'openbao', '2.7.2')


@pytest.mark.skipif(not shutil.which('age'), reason='needs the age command')
@pytest.mark.parametrize('size, recipients', [(10, 1), (5000, 1), (5000, 3), (70000, 2), (200000, 1)])
def test_age_bound_covers_real_age_output(tmp_path, size, recipients):
    to = age_recipients(tmp_path, recipients)
    out = age_encrypt(AgeModule(), os.urandom(size), to)
    assert len(out) <= age_armor_bound(size, to), (len(out), age_armor_bound(size, to))
    assert age_armor_bound(size, to) < len(out) * 1.2 + 2048, 'a bound, not a waste of the disk'


# --- write-ahead on real filesystems -------------------------------------------------------------------------

@pytest.fixture
def tmpfs(tmp_path):
    """mount(name, size) -> a fresh tmpfs of that size under tmp_path (root only); unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip('mounting a small tmpfs (a disk that really fills) needs root')
    mounts = []

    def mount(name, size='64k'):
        path = tmp_path / name
        path.mkdir()
        proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%s,mode=0700' % size, 'tmpfs', str(path)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.skip('cannot mount a tmpfs here: %s' % proc.stderr.strip())
        mounts.append(path)
        return str(path)

    yield mount
    for path in reversed(mounts):
        subprocess.run(['umount', str(path)], check=False)


def fill_up(directory, name='filler'):
    """Write to ``directory`` until the filesystem is full (ENOSPC); return the filler's path."""
    path = os.path.join(directory, name)
    with open(path, 'wb', buffering=0) as handle:
        with pytest.raises(OSError) as caught:
            while True:
                handle.write(os.urandom(4096))
    assert caught.value.errno == errno.ENOSPC
    return path


def remount_read_only(directory):
    subprocess.run(['mount', '-o', 'remount,ro', directory], check=True)


MATERIAL = material_from_init(longest_answer(5), {'secret_shares': 5, 'secret_threshold': 3}, URL, 'openbao', '2.7.2')


class ParamsOnly(object):
    def __init__(self, **params):
        self.params = params


def test_reserved_space_survives_a_disk_filled_after_it(tmpfs):
    directory = tmpfs('out')
    output = os.path.join(directory, 'init.json')
    reservation = reserve_material_output(ParamsOnly(output_path=output), 8192)
    placeholder = reservation.placeholder
    assert os.path.dirname(placeholder) == directory and os.path.basename(placeholder).startswith('.init.json.')
    assert stat.S_IMODE(os.stat(placeholder).st_mode) == 0o600 and os.path.getsize(placeholder) == 8192
    fill_up(directory)
    # The old way (a new temp file, then rename) cannot write anything now ...
    with pytest.raises(OSError) as caught:
        atomic_write(output + '.old-way', serialize(MATERIAL))
    assert caught.value.errno == errno.ENOSPC
    # ... the material goes into the reserved blocks.
    outcome = save_material(None, reservation, MATERIAL, output, overwrite=False)
    assert outcome.at_target and outcome.path == output and not outcome.errors
    assert parse_material(open(output, 'rb').read()) == MATERIAL
    assert stat.S_IMODE(os.stat(output).st_mode) == 0o600
    reservation.release()
    assert sorted(os.listdir(directory)) == ['filler', 'init.json'], 'no placeholder or temp file left'


def test_full_disk_is_refused_before_anything_naming_output_path(tmpfs):
    directory = tmpfs('full')
    fill_up(directory)
    output = os.path.join(directory, 'init.json')
    with pytest.raises(MaterialError) as caught:
        reserve_material_output(ParamsOnly(output_path=output), 8192)
    assert str(caught.value).startswith('output_path: no space left on device in %s (needed ~8192 bytes' % directory)
    assert os.listdir(directory) == ['filler'], 'the placeholder is removed'
    assert check_writable_target(output) is None, 'what os.access says on a full disk: the reason for all this'


def test_rescue_chain_when_the_directory_turns_read_only(tmpfs, tmp_path):
    directory = tmpfs('out')
    output = os.path.join(directory, 'init.json')
    reservation = Reservation(output, reserve_space(output, 8192), 8192)
    remount_read_only(directory)
    safe = tmp_path / 'safe'
    safe.mkdir()
    outcome = save_material(None, reservation, MATERIAL, output, temp_bases=[str(safe)], stamp='20260101T000000Z')
    assert outcome.where == 'private' and outcome.path.startswith(str(safe) + '/trustroot-material-')
    assert [path for path, _error in outcome.errors] == [output, output + '.rescued-20260101T000000Z']
    assert all(error == 'read-only file system' for _path, error in outcome.errors)
    assert stat.S_IMODE(os.stat(outcome.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(outcome.path)).st_mode) == 0o700
    assert parse_material(open(outcome.path, 'rb').read()) == MATERIAL
    message = save_failure_message('the server was initialized', outcome, 'wipe and init again')
    assert 'saved to %s (mode 0600)' % outcome.path in message and 'read-only file system' in message
    assert 'lost' not in message
    for secret in secrets_in(MATERIAL):
        assert secret not in message


def test_every_rescue_fails_the_keys_are_lost(tmpfs):
    directory = tmpfs('out')
    elsewhere = tmpfs('elsewhere')
    output = os.path.join(directory, 'init.json')
    reservation = Reservation(output, reserve_space(output, 8192), 8192)
    remount_read_only(directory)
    remount_read_only(elsewhere)
    outcome = save_material(None, reservation, MATERIAL, output, temp_bases=[elsewhere])
    assert outcome.path is None and len(outcome.errors) == 3
    message = save_failure_message('the server was initialized', outcome, 'wipe and init again')
    assert 'could not be saved anywhere' in message and 'the keys are lost: wipe and init again' in message
    assert elsewhere in message


def test_placeholder_is_the_copy_when_only_the_rename_fails(tmp_path):
    output = str(tmp_path / 'init.json')
    reservation = Reservation(output, reserve_space(output, 8192), 8192)
    with open(output, 'w') as handle:
        handle.write('material of another cluster, written meanwhile')
    outcome = save_material(None, reservation, MATERIAL, output, overwrite=False)
    assert outcome.where == 'placeholder' and outcome.path == reservation.placeholder
    reservation.release()
    assert parse_material(open(outcome.path, 'rb').read()) == MATERIAL, 'kept: it is the only copy'
    assert open(output).read() == 'material of another cluster, written meanwhile'
    assert 'file exists' in save_failure_message('the server was initialized', outcome, 'x').lower()


def test_no_material_nothing_to_save():
    outcome = save_material(None, None, None, '/x')
    assert outcome.path is None
    assert 'nothing usable to save' in save_failure_message('done', outcome, 'advice')


# --- the pure decisions ---------------------------------------------------------------------------------------

def test_rescue_plan_order():
    plan = rescue_plan('/s/init.json', '20260101T000000Z', True, ['/dev/shm', '/tmp'])
    assert plan == [('placeholder', None), ('beside', '/s/init.json.rescued-20260101T000000Z'),
                    ('private', '/dev/shm'), ('private', '/tmp')]
    assert rescue_plan('/s/i', 'S', False, [])[0] == ('beside', '/s/i.rescued-S')


def test_private_temp_bases_prefer_another_filesystem():
    devices = {'/data': 1, '/dev/shm': 2, '/tmp': 1}

    def fake_stat(path):
        if path not in devices:
            raise OSError(errno.ENOENT, 'missing')
        return os.stat_result((0, 0, devices[path], 0, 0, 0, 0, 0, 0, 0))

    assert private_temp_bases('/data', ['/tmp', '/dev/shm', '/nope', '/tmp'], stat=fake_stat) == ['/dev/shm', '/tmp']


def test_save_failure_messages():
    shm = SaveOutcome('/dev/shm/trustroot-material-x/init.json', 'private', [('/s/init.json', 'no space left on device')],
                      encrypted=True)
    message = save_failure_message('the server was initialized', shm, 'advice')
    assert message.startswith('the server was initialized, but it could not be written where asked '
                              '(/s/init.json: no space left on device); its key material was saved to '
                              '/dev/shm/trustroot-material-x/init.json (mode 0600, age-encrypted to age_recipients)')
    assert 'gone at the next reboot' in message
    plain = SaveOutcome('/s/init.json', 'output', age_problem='age could not encrypt')
    assert 'NOT encrypted: age could not encrypt' in save_failure_message('e', plain, 'a')


def test_init_call_failure_messages():
    assert init_call_failure_message('boom', False) == 'init failed: boom (the server is not initialized)'
    assert 'reports initialized now' in init_call_failure_message('boom', True)
    assert 'could not be checked (refused)' in init_call_failure_message('boom', None, 'refused')


def test_reservation_failure_message_names_output_path_and_error():
    exc = OSError(errno.EROFS, os.strerror(errno.EROFS), '/ro/.x.reserved')
    assert reservation_failure_message('/ro/init.json', exc, 4096) == (
        'output_path: read-only file system in /ro (needed ~4096 bytes for the key material of /ro/init.json); '
        'nothing was sent to the server')


# --- vault_init's glue: what it does with each kind of sys/init answer (a scripted node) ------------------------

class ScriptedNode(object):
    url = URL

    def __init__(self, answer=None, error=None, initialized=True):
        self.answer, self.error, self.initialized = answer, error, initialized

    def call(self, method, path, auth=True, json=None):
        assert (method, path, auth) == ('PUT', 'sys/init', False)
        if self.error:
            raise self.error
        return self.answer

    def seal_status(self):
        return {'initialized': self.initialized}


class InitModule(object):
    def __init__(self, output_path):
        self.params = {'output_path': output_path, 'overwrite_output': False, 'age_recipients': None}
        self.no_log_values = set()


def run_init(tmp_path, node):
    output = str(tmp_path / 'init.json')
    module = InitModule(output)
    reservation = Reservation(output, reserve_space(output, 8192), 8192)
    try:
        try:
            _vault_init.send_init(module, node, SHAMIR, 'openbao', '2.7.2', reservation)
        except MaterialError as exc:
            return str(exc), module
        return None, module
    finally:
        reservation.release()


def test_init_glue_good_answer(tmp_path):
    message, module = run_init(tmp_path, ScriptedNode(INIT))
    assert message is None
    assert keys_from_material(parse_material((tmp_path / 'init.json').read_bytes())) == INIT['keys_base64']
    assert set(secrets_in(parse_material((tmp_path / 'init.json').read_bytes()))) <= module.no_log_values
    assert sorted(os.listdir(tmp_path)) == ['init.json']


def test_init_glue_answer_without_keys_base64_keeps_what_it_held(tmp_path):
    message, module = run_init(tmp_path, ScriptedNode({'keys': INIT['keys'], 'root_token': 's.root'}))
    assert message.startswith(URL + ': PUT sys/init answer lacks keys_base64; the server may be initialized now; '
                                    'what the answer held (incomplete) is in %s/init.json.partial-' % tmp_path), message
    saved = [name for name in os.listdir(tmp_path) if name.startswith('init.json.partial-')]
    assert len(saved) == 1 and not os.path.exists(tmp_path / 'init.json')
    partial = parse_material((tmp_path / saved[0]).read_bytes())
    assert partial['unseal_keys_hex'] == INIT['keys'] and partial['root_token'] == 's.root' and partial['incomplete']
    assert stat.S_IMODE(os.stat(tmp_path / saved[0]).st_mode) == 0o600
    assert {'s.root'} | set(INIT['keys']) <= module.no_log_values
    assert 's.root' not in message


def test_init_glue_web_page_answer(tmp_path):
    message, _module = run_init(tmp_path, ScriptedNode('<html>Vault UI</html>', initialized=True))
    assert message.startswith(URL + ': PUT sys/init answer is text, not a JSON object; the server may be initialized '
                                    'now; the answer held no usable key material: if the server is initialized (it '
                                    'reports so), its keys are lost'), message
    assert os.listdir(tmp_path) == [], 'nothing to keep, the placeholder is removed'
    message, _module = run_init(tmp_path, ScriptedNode(None, initialized=False))
    assert message == URL + ': PUT sys/init answer is empty; it reports not initialized: nothing was written'


def test_init_glue_failed_call(tmp_path):
    message, _module = run_init(tmp_path, ScriptedNode(error=VaultError(URL, 'PUT sys/init: connection cut off'),
                                                       initialized=False))
    assert message == 'init failed: %s: PUT sys/init: connection cut off (the server is not initialized)' % URL
    assert os.listdir(tmp_path) == []

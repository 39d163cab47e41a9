import base64
import json
import os
import stat

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils._material import FORMAT, serialize
from ansible_collections.trustroot.ops.plugins.module_utils._material_secret import (
    LABELS, SECRET_LIMIT, MaterialSecretError, SecretRef, content_state, decoded, free_key, output_problem,
    rescue_locally, reserved_body, secret_failure_message, size_problem, stored_body)

MATERIAL = {'format': FORMAT, 'kind': 'init', 'created': '2026-06-01T10:00:00Z', 'cluster_url': 'https://a:8200',
            'unseal_keys_b64': ['qg==', 'uw=='], 'unseal_keys_hex': ['aa', 'bb'], 'root_token': 's.root'}
ARMOR = b'-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n'


def ref(**kw):
    return SecretRef.from_param(dict({'namespace': 'vault', 'name': 'vault-init', 'key': 'material.json'}, **kw),
                                'output_secret')


def b64(value):
    return base64.b64encode(value).decode()


def body(data=None, annotations=None):
    return {'apiVersion': 'v1', 'kind': 'Secret', 'type': 'Opaque',
            'metadata': {'name': 'vault-init', 'namespace': 'vault', 'resourceVersion': '7',
                         'labels': {'team': 'platform'}, 'annotations': annotations or {}},
            'data': dict((k, b64(v)) for k, v in (data or {}).items())}


@pytest.mark.parametrize('field, value, words', [
    ('namespace', 'Vault', 'namespace'),
    ('namespace', 'a' * 64, 'namespace'),
    ('name', 'vault_init', 'name'),
    ('name', '', 'name'),
    ('key', 'material/json', 'key'),
    ('key', 'previous-1.json', 'previous-'),
    ('key', 'pending-x', 'pending-'),
])
def test_bad_reference_names_option_and_field(field, value, words):
    with pytest.raises(MaterialSecretError) as caught:
        ref(**{field: value})
    assert str(caught.value).startswith('output_secret: %s' % field) and words in str(caught.value)


def test_reference_defaults_and_label():
    secret = SecretRef.from_param({'namespace': 'vault', 'name': 'vault-init', 'key': None}, 'material_secret')
    assert secret.key == 'material.json'
    assert secret.label == 'Secret vault/vault-init key material.json'


def test_content_state():
    assert content_state({}, 'material.json') == ('absent', None)
    assert content_state({'material.json': b''}, 'material.json') == ('absent', None)
    assert content_state({'material.json': serialize(MATERIAL)}, 'material.json') == ('material', None)
    assert content_state({'material.json': ARMOR}, 'material.json') == ('age', None)
    state, reason = content_state({'material.json': b'db password'}, 'material.json')
    assert state == 'invalid' and reason == 'not key material (not JSON)'
    state, reason = content_state({'material.json': b'{"format": "other"}'}, 'material.json')
    assert state == 'invalid' and FORMAT in reason
    assert 'db password' not in reason


def test_output_problem_mirrors_overwrite_output():
    target = ref()
    assert output_problem(target, {}, overwrite=False) is None
    assert output_problem(target, {'other': b'x'}, overwrite=False) is None
    for value in (serialize(MATERIAL), ARMOR):
        problem = output_problem(target, {'material.json': value}, overwrite=False)
        assert problem.startswith('output_secret: Secret vault/vault-init key material.json already holds key material')
        assert 'overwrite_output=true' in problem and 'previous-' in problem
        assert output_problem(target, {'material.json': value}, overwrite=True) is None
    for overwrite in (False, True):
        problem = output_problem(target, {'material.json': b'db password'}, overwrite=overwrite)
        assert 'vault/vault-init key material.json holds something that is not key material' in problem
        assert 'db password' not in problem


def test_size_problem_counts_the_kept_previous_material():
    target = ref()
    assert size_problem(target, {}, 8192) is None
    near = {'previous-1.json': b'x' * (SECRET_LIMIT - 10000), 'material.json': b'y' * 4000}
    assert size_problem(target, near, 2000) is None
    problem = size_problem(target, near, 4096)
    assert problem and '1 MiB' in problem and 'vault/vault-init' in problem


def test_free_key():
    assert free_key({}, 'previous-20260601T100000Z') == 'previous-20260601T100000Z.json'
    data = {'previous-S.json': b'', 'previous-S-2.json': b''}
    assert free_key(data, 'previous-S') == 'previous-S-3.json'


def test_decoded_rejects_bad_base64():
    assert decoded(None) == {}
    assert decoded(body({'a': b'\x00\x01'})) == {'a': b'\x00\x01'}
    broken = body()
    broken['data'] = {'material.json': 'not base64!'}
    with pytest.raises(MaterialSecretError) as caught:
        decoded(broken)
    assert 'vault/vault-init' in str(caught.value) and 'material.json' in str(caught.value)


def test_reserved_body_holds_no_key_and_keeps_data():
    new = reserved_body(None, ref(), 'init', '20260601T100000Z')
    assert new['metadata']['name'] == 'vault-init' and new['metadata']['namespace'] == 'vault'
    assert new['data'] == {} and new['type'] == 'Opaque'
    assert new['metadata']['labels'] == LABELS
    annotations = new['metadata']['annotations']
    assert annotations['trustroot.ops/state'] == 'reserved' and annotations['trustroot.ops/reserved-for'] == 'init'
    existing = body({'material.json': serialize(MATERIAL)})
    updated = reserved_body(existing, ref(), 'rekey', 'S')
    assert updated['data'] == existing['data'] and updated['metadata']['resourceVersion'] == '7'
    assert updated['metadata']['labels']['team'] == 'platform'
    assert 'trustroot.ops/state' not in updated['metadata']['annotations'], 'material there is still the valid one'
    assert updated['metadata']['annotations']['trustroot.ops/reserved-for'] == 'rekey'
    assert existing['metadata']['annotations'] == {}, 'the body read is not changed in place'


def test_stored_body_keeps_previous_and_says_what_it_holds():
    old = serialize(dict(MATERIAL, root_token='s.old'))
    existing = body({'material.json': old, 'pending-S.json': b'staged'}, {'trustroot.ops/state': 'reserved',
                                                                          'trustroot.ops/reserved': 'S'})
    new, previous = stored_body(existing, ref(), b'new bytes', MATERIAL, True, 'T', pending_key='pending-S.json')
    assert previous == 'previous-T.json'
    data = decoded(new)
    assert data == {'material.json': b'new bytes', 'previous-T.json': old}
    annotations = new['metadata']['annotations']
    assert annotations['trustroot.ops/state'] == 'stored' and annotations['trustroot.ops/encrypted'] == 'age'
    assert annotations['trustroot.ops/previous'] == 'previous-T.json' and 'trustroot.ops/reserved' not in annotations
    assert annotations['trustroot.ops/format'] == FORMAT and annotations['trustroot.ops/kind'] == 'init'
    metadata = json.dumps(new['metadata'])
    for secret in ('qg==', 'uw==', 's.root', 's.old'):
        assert secret not in metadata

    first, previous = stored_body(reserved_body(None, ref(), 'init', 'S'), ref(), b'new', MATERIAL, False, 'T')
    assert previous is None and decoded(first) == {'material.json': b'new'}
    assert first['metadata']['annotations']['trustroot.ops/encrypted'] == 'none'
    assert 'trustroot.ops/previous' not in first['metadata']['annotations']


def test_stored_body_under_a_pending_key_leaves_the_material_alone():
    existing = body({'material.json': b'current'}, {'trustroot.ops/state': 'stored', 'trustroot.ops/kind': 'init'})
    new, previous = stored_body(existing, ref(), b'staged', MATERIAL, False, 'T', target_key='pending-T.json')
    assert previous is None
    assert decoded(new) == {'material.json': b'current', 'pending-T.json': b'staged'}
    assert new['metadata']['annotations']['trustroot.ops/state'] == 'pending-verification'
    assert new['metadata']['annotations']['trustroot.ops/kind'] == 'init'


def test_rescue_locally_writes_a_private_0600_file(tmp_path):
    path, errors = rescue_locally(b'material', ref(), bases=[str(tmp_path / 'missing'), str(tmp_path)])
    assert errors and str(tmp_path / 'missing') in errors[0]
    assert os.path.dirname(os.path.dirname(path)) == str(tmp_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    with open(path, 'rb') as handle:
        assert handle.read() == b'material'
    assert rescue_locally(b'x', ref(), bases=[str(tmp_path / 'missing')])[0] is None


def test_secret_failure_message():
    target = ref()
    lost = secret_failure_message('the server was initialized', target, ['HTTP 403'], None, lost_advice='wipe it')
    assert 'could not be stored in Secret vault/vault-init key material.json' in lost and 'keys are lost: wipe it' in lost
    saved = secret_failure_message('the server was initialized', target, ['HTTP 500'], '/dev/shm/x/m', encrypted=True)
    assert 'saved to /dev/shm/x/m (mode 0600, age-encrypted' in saved and 'gone at the next reboot' in saved
    plain = secret_failure_message('done', target, ['age failed'], '/tmp/x/m', age_problem='age failed')
    assert 'NOT encrypted' in plain

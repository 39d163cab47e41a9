"""Pure logic of vault_data_digest_info: canonical form, KV mounts, the walk, digests."""

import hashlib
import json

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils import _vault_digest as vd

MOUNTS = {
    'secret/': {'type': 'kv', 'options': {'version': '2'}, 'accessor': 'kv_1', 'uuid': 'u1'},
    'legacy/': {'type': 'kv', 'options': None, 'accessor': 'kv_2'},
    'pki/': {'type': 'pki', 'accessor': 'pki_1'},
    'sys/': {'type': 'system'},
    'request_id': 'not a mount',
}
AUTH = {'token/': {'type': 'token', 'accessor': 'auth_token_1'}, 'approle/': {'type': 'approle'}}


class FakeVault(object):
    """An in-memory cluster answering the two callables like the module's adapter does."""

    def __init__(self, kv2=None, kv1=None, policies=None, mounts=None, auth=None):
        self.kv2 = dict(kv2 or {})
        self.kv1 = dict(kv1 or {})
        self.policies = dict(policies if policies is not None else {'default': 'path "x" {}', 'root': ''})
        self.mounts = dict(mounts or MOUNTS)
        self.auth = dict(auth or AUTH)
        self.reads = []

    @staticmethod
    def _children(store, prefix):
        keys = set()
        for path in store:
            if path.startswith(prefix):
                rest = path[len(prefix):]
                keys.add(rest.split('/', 1)[0] + '/' if '/' in rest else rest)
        return sorted(keys)

    def list_keys(self, path):
        if path == 'sys/policies/acl':
            return sorted(self.policies)
        if path.startswith('secret/metadata/'):
            return self._children(self.kv2, path[len('secret/metadata/'):])
        if path.startswith('legacy/'):
            return self._children(self.kv1, path[len('legacy/'):])
        raise AssertionError('unexpected LIST %s' % path)

    def read(self, path):
        self.reads.append(path)
        if path == 'sys/mounts':
            return self.mounts
        if path == 'sys/auth':
            return self.auth
        if path.startswith('sys/policies/acl/'):
            name = path[len('sys/policies/acl/'):]
            return {'name': name, 'policy': self.policies[name]} if name in self.policies else None
        if path.startswith('secret/data/'):
            key = path[len('secret/data/'):]
            if key not in self.kv2:
                return None
            return {'data': self.kv2[key], 'metadata': {'version': 3, 'created_time': 'now'}}
        if path.startswith('legacy/'):
            return self.kv1.get(path[len('legacy/'):])
        raise AssertionError('unexpected read %s' % path)

    def digest(self, only=None):
        return vd.cluster_digest(self.list_keys, self.read, only)


def sample():
    return FakeVault(kv2={'app/db': {'password': 'hunter2', 'user': 'app'}, 'app/api/key': {'k': 'v'},
                          'top': {'a': 1}},
                     kv1={'one': {'x': 'y'}, 'dir/two': {'z': 'w'}})


def test_canonical_sorts_keys_and_drops_whitespace():
    assert vd.canonical({'b': 1, 'a': [1, {'d': 2, 'c': 'é'}]}) == '{"a":[1,{"c":"é","d":2}],"b":1}'.encode('utf-8')


def test_mount_name():
    assert vd.mount_name('secret/') == 'secret'
    assert vd.mount_name(' /kv/ ') == 'kv'


def test_kv_mounts_finds_versions_and_ignores_other_engines():
    assert vd.kv_mounts(MOUNTS) == {'secret': '2', 'legacy': '1'}


def test_kv_mounts_generic_is_kv_v1():
    assert vd.kv_mounts({'old/': {'type': 'generic'}}) == {'old': '1'}


def test_kv_mounts_restricted():
    assert vd.kv_mounts(MOUNTS, ['secret/']) == {'secret': '2'}


def test_kv_mounts_unknown_or_not_kv_names_the_field():
    with pytest.raises(vd.DigestError) as err:
        vd.kv_mounts(MOUNTS, ['pki', 'nope'])
    assert 'kv_mounts: pki is a pki mount, not a KV mount' in str(err.value)
    assert 'kv_mounts: no mount at nope' in str(err.value)


def test_engines_sorted_without_accessors():
    assert vd.engines(MOUNTS) == [
        {'path': 'legacy/', 'type': 'kv', 'version': '1'},
        {'path': 'pki/', 'type': 'pki'},
        {'path': 'secret/', 'type': 'kv', 'version': '2'},
        {'path': 'sys/', 'type': 'system'}]
    assert vd.engines(AUTH, with_kv_version=False) == [
        {'path': 'approle/', 'type': 'approle'}, {'path': 'token/', 'type': 'token'}]


def test_api_paths():
    assert vd.list_path('secret', '2', 'a/') == 'secret/metadata/a/'
    assert vd.list_path('kv', '1', '') == 'kv/'
    assert vd.read_path('secret', '2', 'a/b') == 'secret/data/a/b'
    assert vd.read_path('kv', '1', 'a/b') == 'kv/a/b'


def test_secret_data_v2_latest_and_deleted():
    assert vd.secret_data('2', {'data': {'a': 1}, 'metadata': {}}) == {'a': 1}
    assert vd.secret_data('2', {'data': None, 'metadata': {'deletion_time': 'x'}}) is None
    assert vd.secret_data('2', None) is None
    assert vd.secret_data('1', {'a': 1}) == {'a': 1}


def test_walk_recurses_sorted():
    fake = sample()
    entries = vd.walk_kv('secret', '2', fake.list_keys, fake.read)
    assert [entry[0] for entry in entries] == ['app/api/key', 'app/db', 'top']
    assert entries[1][1] == {'password': 'hunter2', 'user': 'app'}


def test_walk_key_that_is_both_secret_and_folder():
    fake = FakeVault(kv2={'a': {'x': 1}, 'a/b': {'y': 2}})
    assert [entry[0] for entry in vd.walk_kv('secret', '2', fake.list_keys, fake.read)] == ['a', 'a/b']


def test_walk_guards_depth():
    with pytest.raises(vd.DigestError):
        vd.walk_kv('secret', '2', lambda path: ['d/'], lambda path: None)


def test_kv_digest_matches_documented_form():
    entries = {'secret': [('b', {'v': 2}), ('a', {'v': 1})]}
    kv, total, overall = vd.kv_digest(entries)
    lines = [json.dumps(['secret', 'a', {'v': 1}], separators=(',', ':')) + '\n',
             json.dumps(['secret', 'b', {'v': 2}], separators=(',', ':')) + '\n']
    expected = hashlib.sha256(''.join(lines).encode()).hexdigest()
    assert kv == {'secret': {'secrets': 2, 'sha256': expected}}
    assert total == 2
    assert overall == expected


def test_empty_cluster_digest_is_stable():
    kv, total, overall = vd.kv_digest({})
    assert (kv, total, overall) == ({}, 0, hashlib.sha256(b'').hexdigest())


def test_cluster_digest_shape_and_no_secret_values():
    result = sample().digest()
    assert sorted(result) == ['auth_methods', 'auth_sha256', 'kv', 'kv_secrets', 'kv_sha256', 'mounts',
                              'mounts_sha256', 'policies', 'policies_sha256']
    assert result['kv_secrets'] == 5
    assert result['kv']['secret']['secrets'] == 3
    assert result['kv']['legacy']['secrets'] == 2
    assert result['policies'] == ['default', 'root']
    text = json.dumps(result)
    for value in ('hunter2', 'path "x"'):
        assert value not in text


def test_same_content_same_digest_even_with_other_metadata_and_accessors():
    one = sample()
    two = sample()
    two.mounts = dict((k, dict(v, accessor='other', uuid='other') if isinstance(v, dict) else v)
                      for k, v in MOUNTS.items())
    assert one.digest() == two.digest()


def test_changed_secret_changes_only_its_mount():
    before = sample().digest()
    changed = sample()
    changed.kv2['app/db'] = {'password': 'hunter3', 'user': 'app'}
    after = changed.digest()
    assert after['kv']['secret']['sha256'] != before['kv']['secret']['sha256']
    assert after['kv']['legacy'] == before['kv']['legacy']
    assert after['kv_sha256'] != before['kv_sha256']
    assert after['policies_sha256'] == before['policies_sha256']


def test_renamed_secret_changes_digest():
    before = sample().digest()
    changed = sample()
    changed.kv2['app/db2'] = changed.kv2.pop('app/db')
    assert changed.digest()['kv_sha256'] != before['kv_sha256']


def test_policy_text_change_changes_policies_digest():
    before = sample().digest()
    changed = sample()
    changed.policies['default'] = 'path "y" {}'
    after = changed.digest()
    assert after['policies'] == before['policies']
    assert after['policies_sha256'] != before['policies_sha256']


def test_root_policy_not_read():
    fake = sample()
    fake.digest()
    assert 'sys/policies/acl/root' not in fake.reads
    assert 'sys/policies/acl/default' in fake.reads


def test_policy_text_older_rules_field():
    assert vd.policy_text({'rules': 'r'}) == 'r'
    assert vd.policy_text({'policy': ''}) == ''
    assert vd.policy_text(None) == ''


def test_restricted_digest_reads_only_that_mount():
    fake = sample()
    result = fake.digest(['legacy'])
    assert list(result['kv']) == ['legacy']
    assert not any(p.startswith('secret/') for p in fake.reads)


def test_new_auth_method_changes_auth_digest():
    before = sample().digest()
    changed = sample()
    changed.auth = dict(AUTH, **{'userpass/': {'type': 'userpass'}})
    assert changed.digest()['auth_sha256'] != before['auth_sha256']


def test_compare_digests():
    expected = sample().digest()
    other = sample()
    other.kv1['one'] = {'x': 'changed'}
    rows = vd.compare_digests(expected, other.digest())
    failed = [row[0] for row in rows if not row[3]]
    assert failed == ['kv', 'kv_sha256']
    assert [row[0] for row in vd.compare_digests({'kv_sha256': 'x'}, {})] == ['kv_sha256']


class RawNode(object):
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def raw(self, method, path, ok_statuses=()):
        self.calls.append((method, path, ok_statuses))
        return self.answers.get((method, path), (404, None))


def test_node_callables_quote_paths_and_treat_404_as_nothing():
    node = RawNode({('LIST', 'secret/metadata/a%20b/'): (200, {'data': {'keys': ['c']}}),
                    ('GET', 'secret/data/a%20b/c'): (200, {'data': {'data': {'k': 'v'}}})})
    list_keys, read = vd.node_callables(node)
    assert list_keys('secret/metadata/a b/') == ['c']
    assert read('secret/data/a b/c') == {'data': {'k': 'v'}}
    assert list_keys('secret/metadata/none/') == []
    assert read('secret/data/none') is None
    assert all(call[2] == (404,) for call in node.calls)

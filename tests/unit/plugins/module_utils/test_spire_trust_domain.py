"""Unit tests for the entries of a SPIRE trust-domain migration (module_utils/_spire_trust_domain.py) and its
filter."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.trustroot.ops.plugins.filter.spire_trust_domain import (
    FilterModule, spire_trust_domain_entries)
from ansible_collections.trustroot.ops.plugins.module_utils._spiffe_id import SpiffeError
from ansible_collections.trustroot.ops.plugins.module_utils._spire_trust_domain import (
    migrate_entries, rewrite_trust_domain)

OLD, NEW = 'old.example', 'new.example'


def entry(spiffe_id, parent_id, entry_id='e1', federates_with=(), **extra):
    out = {'entry_id': entry_id, 'spiffe_id': spiffe_id, 'parent_id': parent_id, 'selectors': ['unix:user:demo'],
           'x509_svid_ttl': 0, 'jwt_svid_ttl': 0, 'federates_with': list(federates_with), 'dns_names': [],
           'admin': False, 'downstream': False, 'hint': '', 'store_svid': False, 'expires_at': 0,
           'revision_number': 3, 'created_at': 1700000000}
    out.update(extra)
    return out


WORKLOAD = entry('spiffe://old.example/workload/demo', 'spiffe://old.example/node/agent1', dns_names=['demo'])
ALIAS = entry('spiffe://old.example/node/agent1', 'spiffe://old.example/spire/agent/join_token/abc', 'e2',
              selectors=['spiffe_id:spiffe://old.example/spire/agent/join_token/abc'])
NODE = entry('spiffe://old.example/node/x509', 'spiffe://old.example/spire/server', 'e3',
             selectors=['x509pop:subject:cn:agent2'])


def test_rewrite_keeps_the_path():
    assert rewrite_trust_domain('spiffe://old.example/node/a/b', NEW) == 'spiffe://new.example/node/a/b'
    with pytest.raises(SpiffeError, match='parent_id'):
        rewrite_trust_domain('http://x/y', NEW, 'parent_id')


def test_mirror_rewrites_ids_federates_with_the_old_and_leaves_out_join_token_aliases():
    out = migrate_entries([WORKLOAD, ALIAS, NODE], 'mirror', OLD, NEW)
    assert out == [
        {'spiffe_id': 'spiffe://new.example/workload/demo', 'parent_id': 'spiffe://new.example/node/agent1',
         'selectors': ['unix:user:demo'], 'x509_svid_ttl': 0, 'jwt_svid_ttl': 0, 'federates_with': [OLD],
         'dns_names': ['demo'], 'admin': False, 'downstream': False, 'hint': '', 'store_svid': False,
         'expires_at': 0},
        dict((k, v) for k, v in NODE.items() if k not in ('entry_id', 'parent_id', 'revision_number', 'created_at'))
        | {'spiffe_id': 'spiffe://new.example/node/x509', 'node': True, 'federates_with': []},
    ]


def test_mirror_drops_the_new_trust_domain_and_keeps_other_federations():
    federated = entry('spiffe://old.example/w', 'spiffe://old.example/node/a',
                      federates_with=['spiffe://new.example', 'partner.example'])
    assert migrate_entries([federated], 'mirror', OLD, NEW)[0]['federates_with'] == [OLD, 'partner.example']


def test_mirror_skips_entries_of_another_trust_domain():
    assert migrate_entries([entry('spiffe://new.example/w', 'spiffe://new.example/node/a')], 'mirror', OLD, NEW) == []


def test_federate_old_adds_the_new_trust_domain_by_id_to_workload_entries_only():
    out = migrate_entries([WORKLOAD, ALIAS, NODE], 'federate_old', OLD, NEW)
    assert len(out) == 1
    assert out[0]['entry_id'] == 'e1' and out[0]['federates_with'] == [NEW]
    assert out[0]['parent_id'] == WORKLOAD['parent_id'] and 'revision_number' not in out[0]
    # Idempotent: a second pass gives the same federates_with.
    assert migrate_entries(out, 'federate_old', OLD, NEW)[0]['federates_with'] == [NEW]


def test_unfederate_removes_the_old_trust_domain_only():
    mirrored = entry('spiffe://new.example/w', 'spiffe://new.example/node/a', 'td-migrate.1',
                     federates_with=[OLD, 'partner.example'])
    node = entry('spiffe://new.example/n', 'spiffe://new.example/spire/server', 'td-migrate.2')
    out = migrate_entries([mirrored, node], 'unfederate', OLD, NEW)
    assert out[0]['federates_with'] == ['partner.example'] and out[0]['entry_id'] == 'td-migrate.1'
    assert out[1]['node'] is True and 'parent_id' not in out[1]


@pytest.mark.parametrize('args, field', [
    (([], 'move', OLD, NEW), 'step'),
    (([], 'mirror', 'Old', NEW), 'old_trust_domain'),
    (([], 'mirror', OLD, ''), 'new_trust_domain'),
    (([], 'mirror', OLD, OLD), 'new_trust_domain'),
    (('x', 'mirror', OLD, NEW), 'entries'),
])
def test_bad_input_names_the_argument(args, field):
    with pytest.raises(SpiffeError, match=field):
        migrate_entries(*args)


def test_filter():
    assert set(FilterModule().filters()) == {'spire_trust_domain_entries'}
    assert len(spire_trust_domain_entries([WORKLOAD], 'mirror', OLD, NEW)) == 1
    assert spire_trust_domain_entries(None, 'mirror', OLD, NEW) == []
    with pytest.raises(AnsibleFilterError, match='new_trust_domain'):
        spire_trust_domain_entries([], 'mirror', OLD, OLD)

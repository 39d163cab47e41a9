"""Disaster-recovery drill on lab hosts: populate (KV secrets, policies, 1,000 SPIRE entries, a federated
bundle), back up with backup.yml, destroy every host, run disaster_recovery.yml onto fresh hosts, then the
same KV digest, policies, entries and bundles are there, the cluster unsealed with the original keys, and a
workload on the re-attested agent gets its SVID. A second run of disaster_recovery.yml changes nothing."""

import json
import sys

import pytest

from tests.lab.common import COLLECTIONS_PATH
from tests.lab.dr import Drill, FOREIGN_TRUST_DOMAIN
from tests.lab.stack import TRUST_DOMAIN

sys.path.insert(0, COLLECTIONS_PATH)
from ansible_collections.trustroot.ops.plugins.module_utils._spire_backup import canonical_entries  # noqa: E402


@pytest.fixture(scope='module')
def drill(tmp_path_factory):
    drill = Drill('it-dr', str(tmp_path_factory.mktemp('dr')))
    try:
        yield drill
    finally:
        drill.destroy()


def test_recovery_onto_fresh_hosts_brings_everything_back(drill):
    drill.build()
    before = drill.observe()
    assert before['vault']['kv_secrets'] == 25
    assert {'team0', 'team4'} <= set(before['vault']['policies'])
    assert len(before['entries']['entries']) >= 1000
    foreign = [b['trust_domain'] for b in before['bundles'].get('bundles') or []]
    assert FOREIGN_TRUST_DOMAIN in foreign

    drill.backup()
    cluster_id = drill.seal_status('vault1')['cluster_id']
    drill.destroy_source()

    seconds, _proc = drill.recover()
    # Every node of the new cluster is unsealed, carries the old cluster's ID and the ORIGINAL key shares
    # (5, threshold 3), not the throw-away 1-of-1 it was initialized with.
    for host in ('vault1', 'vault2', 'vault3'):
        seal = drill.seal_status(host)
        assert (seal['sealed'], seal['cluster_id'], seal['n'], seal['t']) == (False, cluster_id, 5, 3), (host, seal)
    after = drill.observe()

    assert after['vault']['kv_sha256'] == before['vault']['kv_sha256']
    assert after['vault']['kv_secrets'] == before['vault']['kv_secrets']
    assert after['vault']['policies_sha256'] == before['vault']['policies_sha256']
    # Every entry of the backup is back. The only new ones are the aliases of the agents that attested
    # anew: spiffe://<td>/node/<host> parented to the new join-token agent.
    kept = [json.dumps(e, sort_keys=True) for e in canonical_entries(before['entries'])]
    now = [json.dumps(e, sort_keys=True) for e in canonical_entries(after['entries'])]
    assert not set(kept) - set(now)
    added = [json.loads(e) for e in now if e not in kept]
    assert [e['spiffe_id'] for e in added] == ['spiffe://%s/node/spire-agent1' % TRUST_DOMAIN], added
    assert added[0]['parent_id'].startswith('spiffe://%s/spire/agent/join_token/' % TRUST_DOMAIN)
    assert after['bundle']['x509_authorities'] == before['bundle']['x509_authorities']
    assert [b['trust_domain'] for b in after['bundles'].get('bundles') or []] == foreign

    ids = drill.workload_svid()
    assert ids and all('spiffe://%s/workload/demo' % TRUST_DOMAIN in line for line in ids), ids

    changed, _proc = drill.run_again('disaster_recovery', ['-e', 'dr_backup_dir=' + drill.backup_dir])
    assert changed == 0, _proc.stdout[-4000:]
    print('recovery took %.1f s' % seconds)

"""Disaster-recovery drill on lab hosts: populate (KV secrets, policies, 1,000 SPIRE entries, a federated
bundle), back up with backup.yml, destroy every host, run disaster_recovery.yml onto fresh hosts, then the
same KV digest, policies, entries and bundles are there, the cluster unsealed with the original keys, and a
workload on the re-attested agent gets its SVID. A second run of disaster_recovery.yml changes nothing.
The recovery runs at -vvvv: none of the secrets it handles reaches its output, a host journal or a file but the few
that must hold one (see ALLOWED)."""

import glob
import json
import os
import sys
import time

import pytest

from tests.lab import leaks
from tests.lab.common import COLLECTIONS_PATH
from tests.lab.dr import Drill, FOREIGN_TRUST_DOMAIN
from tests.lab.stack import SERVER_SOCKET, TRUST_DOMAIN

sys.path.insert(0, COLLECTIONS_PATH)
from ansible_collections.trustroot.ops.plugins.module_utils._spire_backup import canonical_entries  # noqa: E402


# Files that hold a secret by design, each with why (the material and archives are age-encrypted: their ciphertext
# never holds one). Each is checked private: 0600 or 0640, owned by root or by the service that reads it.
ALLOWED = [
    ('*/operator.agekey', "the operator's age identity: what decrypts the material (the drill keeps it off the hosts)"),
    ('*/files/drill-vars.json', "this test's 0600 vars file of the populate/observe playbooks (the root token)"),
    ('*/hosts/spire-server1/upper/var/lib/spire/server/datastore.sqlite3*',
     "the SPIRE server's own datastore: it keeps a join token until an agent attests with it"),
]


def secret_values(drill):
    """What the drill's playbooks handle: the original material (every share, base64 and hex, and the root token
    backup.yml and the recovery use), the throw-away material the new cluster is initialized with, the operator's
    age identity, and the join token the re-attested agent used (read back from the server's agent list)."""
    secrets = leaks.material_secrets(drill.stack.decrypt(os.path.join(drill.keep_dir, 'vault-init.json.age')), 'original ')
    bootstrap = glob.glob(os.path.join(drill.backup_dir, 'dr', 'bootstrap-material.json.age'))
    assert bootstrap, 'no throw-away material under %s/dr' % drill.backup_dir
    secrets.update(leaks.material_secrets(drill.stack.decrypt(bootstrap[0]), 'throw-away '))
    with open(os.path.join(drill.keep_dir, 'operator.agekey')) as handle:
        secrets.update({'age identity': line for line in handle.read().splitlines() if line.startswith('AGE-SECRET-KEY-')})
    agents = drill.stack.lab.exec('spire-server1', ['spire-server', 'agent', 'list', '-socketPath', SERVER_SOCKET,
                                                    '-output', 'json'], check=True).stdout
    tokens = leaks.join_tokens(json.loads(agents))  # the recovery's, and the restored ones of the source's agents
    assert tokens, agents
    secrets.update(tokens)
    return secrets


@pytest.fixture(scope='module')
def drill(tmp_path_factory):
    drill = Drill('it-dr', str(tmp_path_factory.mktemp('dr')))
    try:
        yield drill
    finally:
        drill.destroy()


def test_recovery_onto_fresh_hosts_brings_everything_back(drill):
    since = time.time()
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

    seconds, recovery = drill.recover(['-vvvv'])
    assert 'ESTABLISH SSH CONNECTION' in recovery.stdout, 'the recovery must run at -vvvv'
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

    secrets = secret_values(drill)
    assert len(secrets) >= 11 + 3 + 2, sorted(secrets)  # 5 shares b64 + hex, a root token; 1-of-1; identity; tokens
    output = recovery.stdout + recovery.stderr
    assert not leaks.text_leaks(output, secrets), leaks.text_leaks(output, secrets)
    found, held, scanned = leaks.scan_lab(drill.stack.lab, secrets, since, ALLOWED, extra=[drill.workdir])
    assert not found, 'secrets outside the material:\n' + leaks.report(found)
    assert scanned > 100, scanned
    print(leaks.summary(scanned, secrets, held))
    spire_uid = int(drill.stack.lab.exec('spire-server1', ['id', '-u', 'spire'], check=True).stdout)
    for path in sorted({path for path, _label, _reason in held}):
        owners = (0, spire_uid) if '/upper/var/lib/spire/' in path else (0,)
        assert leaks.private_file_problem(path, owners) is None, leaks.private_file_problem(path, owners)

"""Posture findings from facts (pure): each check's PASS, WARN and FAIL, thresholds, the summary."""

import pytest

from ansible_collections.trustroot.ops.plugins.module_utils import _posture as posture

NOW = 1_800_000_000
DAY = 86400
T = posture.thresholds_with_defaults({'audit_owner': 'openbao'})


def vault_facts(**changes):
    facts = {
        'root_tokens': [{'display_name': 'root', 'init': True}],
        'material': {'path': '/srv/init.json.age', 'exists': True, 'mode': '0600'},
        'audit_devices': [{'path': 'file', 'type': 'file', 'file_path': '/var/log/openbao/audit.log'}],
        'audit_files': {h: {'/var/log/openbao/audit.log': {'exists': True, 'owner': 'openbao', 'mode': '0600',
                                                           'avail_bytes': 10 << 30, 'size_bytes': 20 << 30}}
                        for h in ('vault1', 'vault2', 'vault3')},
        'tls': {'https://10.0.0.%d:8200' % i: {'accepted_versions': ['1.2', '1.3'], 'not_after_unix': NOW + 300 * DAY}
                for i in (1, 2, 3)},
        'seal': {'type': 'shamir', 't': 3, 'n': 5},
        'autopilot': {'healthy': True, 'failure_tolerance': 1, 'voters': ['vault1', 'vault2', 'vault3'],
                      'servers': {'vault1': True, 'vault2': True, 'vault3': True}},
        'raft_peers': ['vault1', 'vault2', 'vault3'],
        'inventory': ['vault1', 'vault2', 'vault3'],
        'metrics': {'https://10.0.0.1:8200': True},
    }
    facts.update(changes)
    return facts


def spire_facts(**changes):
    td = 'demo.test'
    facts = {
        'trust_domain': td,
        'config': {'ca_ttl': '24h', 'default_x509_svid_ttl': '1h', 'default_jwt_svid_ttl': '5m',
                   'audit_log_enabled': 'true'},
        'entries': [{'id': 'alias1', 'spiffe_id': 'spiffe://%s/node/a1' % td,
                     'parent_id': 'spiffe://%s/spire/agent/join_token/t1' % td},
                    {'id': 'w1', 'spiffe_id': 'spiffe://%s/workload/demo' % td, 'parent_id': 'spiffe://%s/node/a1' % td}],
        'agents': [{'spiffe_id': 'spiffe://%s/spire/agent/join_token/t1' % td, 'x509svid_expires_at': NOW + 1800}],
        'federations': [],
        'bundles': [],
        'local_authorities': {'x509': {'active': {'expires_at_unix': NOW + 20 * 3600}, 'prepared': None}},
        'join_tokens': {'listable': True, 'expiries': []},
    }
    facts.update(changes)
    return facts


def by_id(findings):
    return {f['id']: f for f in findings}


def test_a_healthy_cluster_is_all_pass():
    found = posture.vault_findings(vault_facts(), T, NOW) + posture.spire_findings(spire_facts(), {'a1': {}}, T, NOW)
    assert [f for f in found if f['status'] != 'PASS'] == []
    assert len(by_id(found)) == len(found) == 21


def test_a_root_token_besides_the_init_one_fails():
    found = by_id(posture.vault_findings(vault_facts(root_tokens=[{'display_name': 'root', 'init': True},
                                                                  {'display_name': 'root', 'init': False}]), T, NOW))
    assert found['vault.root_tokens']['status'] == 'FAIL'
    assert '1 root token(s) outstanding' in found['vault.root_tokens']['summary']
    assert found['vault.root_tokens']['remediation']


def test_the_init_root_token_is_judged_by_where_it_is_kept():
    missing = vault_facts(material={'path': '/x', 'exists': False})
    assert by_id(posture.vault_findings(missing, T, NOW))['vault.init_root_token']['status'] == 'FAIL'
    loose = vault_facts(material={'path': '/x', 'exists': True, 'mode': '0644'})
    assert by_id(posture.vault_findings(loose, T, NOW))['vault.init_root_token']['status'] == 'FAIL'
    strict = posture.thresholds_with_defaults({'init_root_token_ok': False})
    assert by_id(posture.vault_findings(vault_facts(), strict, NOW))['vault.init_root_token']['status'] == 'WARN'
    revoked = vault_facts(root_tokens=[])
    assert by_id(posture.vault_findings(revoked, T, NOW))['vault.init_root_token']['status'] == 'PASS'


def test_no_audit_device_fails_and_so_does_a_file_that_cannot_be_written():
    found = by_id(posture.vault_findings(vault_facts(audit_devices=[]), T, NOW))
    assert found['vault.audit_devices']['status'] == 'FAIL'
    assert found['vault.audit_writable']['status'] == 'FAIL'
    files = vault_facts()['audit_files']
    files['vault2']['/var/log/openbao/audit.log'].update(mode='0644')
    files['vault3']['/var/log/openbao/audit.log'].update(avail_bytes=1 << 20)
    found = by_id(posture.vault_findings(vault_facts(audit_files=files), T, NOW))
    summary = found['vault.audit_writable']['summary']
    assert found['vault.audit_writable']['status'] == 'FAIL' and 'vault2' in summary and 'vault3' in summary


def test_tls_versions_and_expiry():
    weak = vault_facts(tls={'https://a:8200': {'accepted_versions': ['1.1', '1.2'], 'not_after_unix': NOW + 10 * DAY}})
    found = by_id(posture.vault_findings(weak, T, NOW))
    assert found['vault.tls_min_version']['status'] == 'FAIL'
    assert found['vault.tls_expiry']['status'] == 'WARN'
    unknown = vault_facts(tls={'https://a:8200': {'accepted_versions': None, 'not_after_unix': NOW - 1}})
    found = by_id(posture.vault_findings(unknown, T, NOW))
    assert found['vault.tls_min_version']['status'] == 'WARN'
    assert found['vault.tls_expiry']['status'] == 'FAIL'


def test_unseal_layout_autopilot_raft_metrics():
    found = by_id(posture.vault_findings(vault_facts(seal={'type': 'shamir', 't': 1, 'n': 1}), T, NOW))
    assert found['vault.unseal_layout']['status'] == 'FAIL'
    found = by_id(posture.vault_findings(vault_facts(seal={'type': 'shamir', 't': 3, 'n': 3}), T, NOW))
    assert found['vault.unseal_layout']['status'] == 'WARN'
    sick = vault_facts(autopilot={'healthy': False, 'failure_tolerance': 0, 'voters': [], 'servers': {'vault2': False}})
    assert by_id(posture.vault_findings(sick, T, NOW))['vault.autopilot']['summary'] == 'unhealthy: vault2'
    found = by_id(posture.vault_findings(vault_facts(raft_peers=['vault1', 'old9']), T, NOW))
    assert found['vault.raft_peers']['status'] == 'FAIL' and 'old9' in found['vault.raft_peers']['summary']
    strict = posture.thresholds_with_defaults({'metrics_unauthenticated_ok': False})
    assert by_id(posture.vault_findings(vault_facts(), strict, NOW))['vault.metrics_access']['status'] == 'WARN'


def test_spire_problems_are_named():
    td = 'demo.test'
    entries = spire_facts()['entries'] + [
        {'id': 'orphan1', 'spiffe_id': 'spiffe://%s/x' % td, 'parent_id': 'spiffe://%s/spire/agent/join_token/gone' % td},
        {'id': 'adm', 'spiffe_id': 'spiffe://%s/admin' % td, 'parent_id': 'spiffe://%s/node/a1' % td, 'admin': True,
         'federates_with': ['peer.test']}]
    rels = [{'trust_domain': 'peer.test', 'bundle_endpoint_url': 'https://peer:8443', 'stored_keys': ['x509:A'],
             'served': None, 'served_error': 'connection refused'}]
    bundles = [{'trust_domain': 'peer.test', 'x509_authorities': [{'not_after_unix': NOW - 10}]}]
    agents = spire_facts()['agents'] + [{'spiffe_id': 'spiffe://%s/spire/agent/x509pop/old' % td,
                                         'x509svid_expires_at': NOW - 30 * DAY}]
    facts = spire_facts(entries=entries, federations=rels, bundles=bundles, agents=agents,
                        config={'ca_ttl': '24h', 'default_x509_svid_ttl': '12h', 'default_jwt_svid_ttl': '5m'},
                        join_tokens={'listable': True, 'expiries': [NOW + 500]})
    found = by_id(posture.spire_findings(facts, {'a1': {'insecure_bootstrap': True}}, T, NOW))
    statuses = {key: value['status'] for key, value in found.items()}
    assert statuses == {'spire.insecure_bootstrap': 'FAIL', 'spire.ttls': 'WARN', 'spire.ca_expiry': 'PASS',
                        'spire.federation_relationships': 'PASS', 'spire.federated_bundles': 'FAIL',
                        'spire.federated_bundle_match': 'FAIL', 'spire.agents_unseen': 'WARN',
                        'spire.orphaned_entries': 'WARN', 'spire.admin_downstream': 'WARN',
                        'spire.join_tokens': 'WARN', 'spire.audit_log': 'WARN'}
    assert 'orphan1' in found['spire.orphaned_entries']['summary']
    assert 'stale' in found['spire.federated_bundles']['summary']
    assert 'a1' in found['spire.insecure_bootstrap']['summary']
    missing = by_id(posture.spire_findings(spire_facts(entries=entries), {}, T, NOW))
    assert missing['spire.federation_relationships']['status'] == 'FAIL'


def test_join_tokens_that_cannot_be_listed_are_a_warn_never_a_pass():
    facts = spire_facts(join_tokens={'listable': False, 'reason': 'postgres datastore'})
    found = by_id(posture.spire_findings(facts, {}, T, NOW))['spire.join_tokens']
    assert found['status'] == 'WARN' and found['summary'].startswith('cannot be listed')


def test_backups_age():
    fresh = {'vault': {'name': 'vault-1', 'created_unix': NOW - 3600, 'verified_how': 'restored'},
             'spire-server': {'name': 'spire-server-1', 'created_unix': NOW - 3 * DAY, 'verified_how': 'restored'}}
    found = by_id(posture.backup_findings(fresh, T, NOW))
    assert found['backup.vault']['status'] == 'PASS' and found['backup.spire']['status'] == 'FAIL'
    assert by_id(posture.backup_findings({'vault': None, 'spire-server': None}, T, NOW))['backup.vault']['status'] == 'FAIL'
    assert by_id(posture.backup_findings(None, T, NOW))['backup.vault']['status'] == 'WARN'


def test_thresholds_are_checked_by_name():
    assert posture.thresholds_with_defaults({'backup_max_age': '3d'})['backup_max_age'] == 3 * DAY
    for bad in ({'nope': 1}, {'agent_unseen_days': -1}, {'tls_min_version': '1.5'}, {'init_root_token_ok': 'yes'}):
        with pytest.raises(posture.PostureError) as err:
            posture.thresholds_with_defaults(bad)
        assert 'thresholds.%s' % list(bad)[0] in str(err.value)


def test_durations():
    assert posture.parse_duration('1h30m') == 5400
    assert posture.parse_duration('90') == 90
    with pytest.raises(posture.PostureError):
        posture.parse_duration('1 hour')


def test_summary_groups_by_system_with_problems_first_and_fits_a_screen():
    found = posture.vault_findings(vault_facts(root_tokens=[{'init': False, 'display_name': 'root'}]), T, NOW)
    found += posture.spire_findings(spire_facts(), {}, T, NOW) + posture.backup_findings(None, T, NOW)
    lines = posture.render(found)
    assert lines[0].startswith('posture: FAIL (')
    assert lines[1] == 'Vault / OpenBao:' and 'FAIL vault.root_tokens' in lines[2] and '->' in lines[3]
    assert lines.index('SPIRE:') < lines.index('Backups:')
    assert len(lines) <= 40 and all(len(line) <= 118 for line in lines)
    doc = posture.report(found, T, '2027-01-15T08:00:00Z')
    assert doc['passed'] is False and doc['counts']['FAIL'] == 1

import pytest

from tests.lab import stack

ARTIFACTS = {'bao': 'a' * 64, 'spire-server': 'b' * 64, 'spire-agent': 'c' * 64}

RECAP = """
PLAY RECAP *********************************************************************
spire-agent1               : ok=29   changed=0    unreachable=0    failed=0    skipped=11   rescued=0    ignored=0
vault1                     : ok=36   changed=3    unreachable=0    failed=1    skipped=5    rescued=0    ignored=0
"""


def test_hosts_of_keeps_order_without_repeats():
    assert stack.hosts_of({'a': ['h1', 'h2'], 'b': ['h2', 'h3']}) == ['h1', 'h2', 'h3']


def test_recap_and_total():
    counts = stack.recap('TASK [x]\nok: [vault1]\n' + RECAP)
    assert counts['vault1'] == {'ok': 36, 'changed': 3, 'unreachable': 0, 'failed': 1, 'skipped': 5,
                                'rescued': 0, 'ignored': 0}
    assert stack.total(RECAP) == 3
    assert stack.total(RECAP, 'failed') == 1
    assert stack.total('no recap at all') == 0


def test_vault_only_stack_has_no_spire_variables():
    data = stack.stack_vars('/f', {'vault_servers': ['vault1']}, ARTIFACTS, 'age1xyz')
    assert data['vault_server_artifact_sha256'] == 'a' * 64
    assert data['vault_server_age_recipients'] == ['age1xyz']
    assert data['vault_server_material_path'] == '/f/vault-init.json.age'
    assert not [key for key in data if key.startswith('spire_')]


def test_demo_stack_registers_one_entry_per_agent_under_the_agents_ids():
    data = stack.stack_vars('/f', stack.DEMO_GROUPS, ARTIFACTS, 'age1xyz')
    assert data['spire_server_trust_domain'] == data['spire_agent_trust_domain'] == stack.TRUST_DOMAIN
    assert data['spire_agent_artifact_sha256'] == 'c' * 64
    entries = data['spire_registration_entries']
    assert [e['parent_id'] for e in entries] == [
        'spiffe://%s/node/spire-agent1' % stack.TRUST_DOMAIN, 'spiffe://%s/node/spire-agent2' % stack.TRUST_DOMAIN]
    assert data['spire_agent_join_token_alias'] == '{{ "spiffe://%s/node/" ~ inventory_hostname }}' % stack.TRUST_DOMAIN
    assert {e['spiffe_id'] for e in entries} == {'spiffe://%s/workload/demo' % stack.TRUST_DOMAIN}
    assert all(e['selectors'] == ['unix:user:demo'] for e in entries)


def test_missing_artifacts_file_names_the_bootstrap(tmp_path):
    with pytest.raises(stack.labhosts.LabError, match='bootstrap'):
        stack.read_artifacts(str(tmp_path / 'nope.json'))


PREVIOUS = dict(ARTIFACTS, **{'bao@2.6.2': 'd' * 64, 'spire-server@1.14.5': 'e' * 64, 'spire-agent@1.14.5': 'f' * 64})


def test_current_release_sets_no_versions():
    data = stack.stack_vars('/f', stack.DEMO_GROUPS, PREVIOUS, 'age1xyz')
    assert data['vault_server_artifact_path'].endswith('/.cache/bin/bao')
    assert not [key for key in data if key.endswith('_version')]


def test_previous_release_names_its_binaries_and_versions():
    data = stack.stack_vars('/f', stack.DEMO_GROUPS, PREVIOUS, 'age1xyz', release='previous')
    assert data['vault_server_artifact_path'].endswith('/.cache/bin/bao@2.6.2')
    assert (data['vault_server_artifact_sha256'], data['vault_server_version']) == ('d' * 64, '2.6.2')
    assert (data['spire_server_artifact_sha256'], data['spire_server_version']) == ('e' * 64, '1.14.5')
    assert (data['spire_agent_artifact_sha256'], data['spire_agent_version']) == ('f' * 64, '1.14.5')
    assert data['spire_agent_artifact_path'].endswith('/.cache/bin/spire-agent@1.14.5')


def test_previous_release_needs_exactly_one_older_binary_each():
    with pytest.raises(stack.labhosts.LabError, match='no previous bao'):
        stack.release_binaries(ARTIFACTS, 'previous')
    with pytest.raises(stack.labhosts.LabError, match='more than one previous bao'):
        stack.release_binaries(dict(PREVIOUS, **{'bao@2.5.0': 'x'}), 'previous')
    with pytest.raises(ValueError, match='release must be current or previous'):
        stack.release_binaries(PREVIOUS, 'next')

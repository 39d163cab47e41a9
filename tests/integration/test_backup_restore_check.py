"""backup_restore_check: real archives of a real 3-node OpenBao cluster (and of a real SPIRE server) restored
into real scratch servers."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.integration.conftest import AnsibleRunner, InitializedCluster
from tests.lab.common import COLLECTIONS_PATH
from tests.lab.openbao import BAO_BIN, api, mount_kv

sys.path.insert(0, COLLECTIONS_PATH)
from ansible_collections.trustroot.ops.plugins.module_utils._backup.archive import write_archive  # noqa: E402

SECRET_VALUES = ('restore-s3cr3t-db-1', 'restore-s3cr3t-api-2', 'restore-s3cr3t-legacy-3')


def leader_url(cluster):
    """URL of the active node (writes go there; a standby does not take them)."""
    return cluster.leader_and_followers()[0].url


def populate(url, token):
    mount_kv(url, token, 'apps', version='2')
    mount_kv(url, token, 'legacy', version='1')
    api(url, token, 'POST', 'apps/data/web/db', {'data': {'password': SECRET_VALUES[0]}})
    api(url, token, 'POST', 'apps/data/web/api/key', {'data': {'key': SECRET_VALUES[1]}})
    api(url, token, 'POST', 'legacy/team/one', {'value': SECRET_VALUES[2]})
    api(url, token, 'PUT', 'sys/policies/acl/web-read', {'policy': 'path "apps/data/web/*" { capabilities = ["read"] }'})
    api(url, token, 'POST', 'sys/auth/userpass', {'type': 'userpass'})


def processes_mentioning(text):
    """PIDs of running processes whose command line holds ``text``."""
    found = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                cmdline = handle.read().decode('utf-8', 'replace')
        except OSError:
            continue
        if text in cmdline:
            found.append(int(pid))
    return found


@pytest.fixture(scope='module')
def vault_backup_shared(tmp_path_factory, bao_cluster_template):
    """A real archive of the populated cluster as playbooks/backup.yml writes it (age-encrypted), its key
    material, and the age identity: made once for the module's tests, which only read it (the cluster is stopped
    once the archive is written)."""
    tmp_path = tmp_path_factory.mktemp('vault-backup')
    cluster = bao_cluster_template.start_copy(str(tmp_path / 'cluster'))
    try:
        unsealed = InitializedCluster(cluster, bao_cluster_template.init)
        unsealed.unseal_all()
        token = unsealed.root_token
        populate(leader_url(unsealed), token)
        work = tmp_path / 'work'
        work.mkdir()
        snap = str(work / 'raft.snap')
        runner_dir = tmp_path / 'ansible'
        runner_dir.mkdir()
        # The snapshot, then the digest of the same data, in one playbook run.
        (saved, digest), _output = AnsibleRunner(runner_dir).modules([
            ('vault_raft_snapshot', {'nodes': unsealed.urls, 'token': token, 'path': snap}),
            ('vault_data_digest_info', {'nodes': unsealed.urls, 'token': token})])
        assert not saved.get('failed'), saved.get('msg')
        assert not digest.get('failed'), digest.get('msg')
        keys = list(unsealed.keys)
        material = unsealed.write_init_file(tmp_path / 'vault-init.json')
    finally:
        cluster.stop()
    digest = dict((k, v) for k, v in digest.items() if k not in ('changed', 'failed', '_stdout', 'invocation'))
    meta = saved['metadata']
    info = {'cluster_id': meta['cluster_id'], 'cluster_name': meta['cluster_name'], 'flavour': meta['flavour'],
            'version': meta['version'], 'leader': saved['leader'], 'digest': digest}
    identity = str(tmp_path / 'age-identity.txt')
    subprocess.run(['age-keygen', '-o', identity], check=True, capture_output=True)
    recipient = subprocess.run(['age-keygen', '-y', identity], check=True, capture_output=True,
                               text=True).stdout.strip()
    backups = tmp_path / 'backups'
    backups.mkdir()
    sidecar = write_archive(str(backups), 'vault', [('raft.snap', snap)], info, recipients=[recipient])
    return {'archive': os.path.join(str(backups), sidecar['archive']),
            'dir': str(backups), 'identity': identity, 'material': material, 'info': info, 'snap': snap,
            'token': token, 'keys': keys}


@pytest.fixture
def vault_backup(vault_backup_shared, tmp_path):
    """The module's archive, with a scratch parent directory of the test's own."""
    return dict(vault_backup_shared, scratch_parent=str(tmp_path / 'scratch'))


def check_args(backup, **extra):
    os.makedirs(backup['scratch_parent'], exist_ok=True)
    args = {'vault_archive': backup['archive'], 'age_identity': backup['identity'],
            'key_material_path': backup['material'], 'bao_path': BAO_BIN, 'workdir': backup['scratch_parent'],
            'timeout': 90}
    args.update(extra)
    return args


def test_vault_backup_restores_and_matches(ansible, vault_backup):
    # The restore check (-vvvv), then the check-mode one that finds the newest archive in backup_dir, in one
    # playbook run.
    (result, checked), output = ansible.modules([
        ('backup_restore_check', check_args(vault_backup)),
        ('backup_restore_check', dict(check_args(vault_backup), vault_archive=None, backup_dir=vault_backup['dir']),
         {'check_mode': True})], verbosity=4)
    assert not result.get('failed'), result.get('msg')
    assert result['passed'] is True and result['changed'] is False
    checks = dict((c['check'], c) for c in result['checks'])
    for name in ('archive', 'unsealed_with_original_keys', 'cluster_id', 'kv_secrets', 'kv_sha256', 'kv[apps]',
                 'kv[legacy]', 'policies', 'policies_sha256', 'mounts_sha256', 'auth_sha256'):
        assert checks[name]['ok'], checks.get(name)
    assert checks['kv_secrets']['actual'] == 3
    assert checks['cluster_id']['actual'] == vault_backup['info']['cluster_id']
    assert result['archives']['vault']['path'] == vault_backup['archive']
    # Every scratch process stopped, the work directory removed, no secret in the -vvvv output.
    assert os.listdir(vault_backup['scratch_parent']) == []
    assert processes_mentioning(vault_backup['scratch_parent']) == []
    for value in SECRET_VALUES + (vault_backup['token'],) + tuple(vault_backup['keys']):
        assert value not in output

    # backup_dir finds the newest archive; check mode verifies it without starting anything.
    assert not checked.get('failed'), checked.get('msg')
    assert checked['passed'] is True
    assert [(c['system'], c['check']) for c in checked['checks']] == [('vault', 'archive')]


def test_content_that_differs_from_the_manifest_fails(ansible, vault_backup, tmp_path):
    info = json.loads(json.dumps(vault_backup['info']))
    info['digest']['kv']['apps']['sha256'] = '0' * 64
    info['digest']['kv_sha256'] = '0' * 64
    other = tmp_path / 'other-backups'
    other.mkdir()
    sidecar = write_archive(str(other), 'vault', [('raft.snap', vault_backup['snap'])], info)
    archive = os.path.join(str(other), sidecar['archive'])
    result = ansible.module('backup_restore_check', check_args(vault_backup, vault_archive=archive))
    assert result['failed'] is True and result['passed'] is False
    failed = sorted(c['check'] for c in result['checks'] if not c['ok'])
    assert failed == ['kv[apps]', 'kv_sha256'], result['checks']
    assert 'vault kv_sha256' in result['msg'] and 'vault kv[apps]' in result['msg']
    assert processes_mentioning(vault_backup['scratch_parent']) == []


def recording_bao(path, started):
    """A wrapper around bao that records every start in ``started``."""
    with open(path, 'w') as handle:
        handle.write('#!/bin/sh\necho "$@" >> %s\nexec %s "$@"\n' % (started, BAO_BIN))
    os.chmod(path, 0o700)
    return path


def test_tampered_archive_or_wrong_keys_fail_before_anything_starts(ansible, vault_backup, tmp_path):
    # Each case has a bao wrapper that records its starts, and a scratch parent of its own.
    cases = ('tampered', 'other-identity', 'wrong-keys')
    started = dict((case, str(tmp_path / ('bao-started-%s' % case))) for case in cases)
    wrappers = dict((case, recording_bao(str(tmp_path / ('bao-wrapper-%s' % case)), started[case])) for case in cases)
    scratch = dict((case, str(tmp_path / ('scratch-%s' % case))) for case in cases)
    tampered_dir = tmp_path / 'tampered'
    tampered_dir.mkdir()
    archive = os.path.join(str(tampered_dir), os.path.basename(vault_backup['archive']))
    shutil.copy(vault_backup['archive'], archive)
    shutil.copy(vault_backup['archive'] + '.json', archive + '.json')
    with open(archive, 'r+b') as handle:
        handle.seek(200)
        byte = handle.read(1)
        handle.seek(200)
        handle.write(bytes([byte[0] ^ 0xFF]))
    other_identity = str(tmp_path / 'other-identity.txt')
    subprocess.run(['age-keygen', '-o', other_identity], check=True, capture_output=True)
    with open(vault_backup['material']) as handle:
        material = json.load(handle)
    material['unseal_keys_b64'] = ['A' * 43 + '=', 'B' * 43 + '=', 'C' * 43 + '=']
    material['unseal_keys_hex'] = []
    wrong = str(tmp_path / 'wrong-init.json')
    with open(os.open(wrong, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as handle:
        json.dump(material, handle)

    # The three cases in one playbook run.
    (tampered, other, wrong_keys), output = ansible.modules([
        ('backup_restore_check', check_args(dict(vault_backup, scratch_parent=scratch['tampered']),
                                            vault_archive=archive, bao_path=wrappers['tampered'])),
        ('backup_restore_check', check_args(dict(vault_backup, scratch_parent=scratch['other-identity']),
                                            age_identity=other_identity, bao_path=wrappers['other-identity'])),
        ('backup_restore_check', check_args(dict(vault_backup, scratch_parent=scratch['wrong-keys']),
                                            key_material_path=wrong, bao_path=wrappers['wrong-keys']))])

    # A tampered archive: refused, nothing started.
    assert tampered['failed'] is True and tampered['passed'] is False
    assert 'checksum mismatch' in tampered['msg']
    assert not os.path.exists(started['tampered'])
    assert os.listdir(scratch['tampered']) == []

    # Another identity cannot decrypt it: fails the same way, nothing started.
    assert other['failed'] is True and 'no identity matched' in other['msg']
    assert not os.path.exists(started['other-identity'])

    # Key material of another cluster: the copy does not open, the check says so; everything stopped.
    assert wrong_keys['failed'] is True and wrong_keys['passed'] is False
    failed = [c for c in wrong_keys['checks'] if not c['ok']]
    assert failed and failed[0]['system'] == 'vault'
    assert os.path.exists(started['wrong-keys'])
    assert processes_mentioning(scratch['wrong-keys']) == []
    assert os.listdir(scratch['wrong-keys']) == []
    for key in material['unseal_keys_b64'] + [material['root_token']]:
        assert key not in output


def test_bad_options_name_the_field(ansible, vault_backup, tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    # Every refusal in one playbook run.
    (no_material, nothing, none_found, no_bao), _output = ansible.modules([
        ('backup_restore_check', check_args(vault_backup, key_material_path=None)),
        ('backup_restore_check', {}),
        ('backup_restore_check', {'backup_dir': str(empty)}),
        ('backup_restore_check', check_args(vault_backup, bao_path=str(tmp_path / 'nobao')))])
    assert no_material['failed'] and 'key_material_path is required' in no_material['msg']
    assert nothing['failed'] and 'one of vault_archive, spire_archive or backup_dir' in nothing['msg']
    assert none_found['failed'] and 'no vault or spire-server backup' in none_found['msg']
    assert no_bao['failed'] and 'bao_path' in no_bao['msg']


# --- SPIRE ---------------------------------------------------------------------------------------------

SPIRE_ENTRIES = 25


def spire_bin_ready():
    from tests.lab.spire import SPIRE_AGENT_BIN, SPIRE_SERVER_BIN
    for path in (SPIRE_SERVER_BIN, SPIRE_AGENT_BIN):
        if not os.path.exists(path):
            pytest.fail('%s missing: run scripts/bootstrap.sh (make test does)' % path)


def spire_backup_module_ready():
    from tests.lab.common import ROOT
    if not os.path.exists(os.path.join(ROOT, 'plugins', 'modules', 'spire_server_backup.py')):
        pytest.skip('the spire_server_backup module that writes SPIRE archives is not in this checkout yet')


@pytest.fixture
def spire_pair(tmp_path):
    """A healthy spire-server (example.org) and a second one (other.example) for federation."""
    spire_bin_ready()
    spire_backup_module_ready()
    from tests.lab.spire import OTHER_TRUST_DOMAIN, SpireServer
    servers = []
    try:
        for name, domain in (('server-a', 'example.org'), ('server-b', OTHER_TRUST_DOMAIN)):
            server = SpireServer(str(tmp_path), name=name, trust_domain=domain)
            servers.append(server)
            server.start()
        yield servers
    finally:
        for server in servers:
            server.cleanup()


def make_spire_entries(server, count, prefix='restore', federated=True):
    entries = [{'spiffe_id': server.spiffe_id('%s/w%d' % (prefix, i)), 'parent_id': server.spiffe_id('node/agent'),
                'selectors': [{'type': 'unix', 'value': 'uid:%d' % (4000 + i)}], 'x509_svid_ttl': 600 + i % 3,
                'federates_with': ['spiffe://other.example'] if federated and i % 5 == 0 else [],
                'dns_names': ['w%d.example.org' % i] if i % 10 == 0 else []}
               for i in range(count)]
    results = server.create_entries(entries)
    assert all(r['status']['code'] == 0 for r in results), results[:3]


def spire_archive_of(ansible, server, dest, **extra):
    from tests.lab.spire import spire_server_module_args
    dest.mkdir(exist_ok=True)
    args = dict(spire_server_module_args(server), sqlite_path=server.datastore_path, keys_path=server.keys_path,
                config_path=server.config_path, dest_dir=str(dest))
    args.update(extra)
    result = ansible.module('spire_server_backup', args)
    assert not result.get('failed'), result.get('msg')
    return result


def test_spire_backup_restores_and_matches(ansible, spire_pair, tmp_path):
    from tests.lab.spire import SPIRE_SERVER_BIN, SpireAgent
    server, other = spire_pair
    server.set_federated_bundle(other)
    make_spire_entries(server, SPIRE_ENTRIES)
    agent = SpireAgent(str(tmp_path), server, name='agent-a')
    try:
        agent.start()
    finally:
        agent.cleanup()
    saved = spire_archive_of(ansible, server, tmp_path / 'backups')
    info = saved['info']
    assert info['entry_count'] == SPIRE_ENTRIES and info['agent_count'] == 1
    assert info['federated_trust_domains'] == ['other.example']
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    args = {'backup_dir': str(tmp_path / 'backups'), 'spire_server_path': SPIRE_SERVER_BIN,
            'workdir': str(scratch), 'timeout': 90}

    # An archive whose manifest disagrees with its datastore (made now, checked below).
    from ansible_collections.trustroot.ops.plugins.module_utils._backup.verify import verify_archive
    parts_dir = tmp_path / 'parts'
    parts_dir.mkdir()
    manifest = verify_archive(saved['archive'], extract_to=str(parts_dir))
    wrong_info = dict(manifest['info'], entry_count=SPIRE_ENTRIES + 1, entries_sha256='0' * 64)
    wrong_dir = tmp_path / 'wrong'
    wrong_dir.mkdir()
    sidecar = write_archive(str(wrong_dir), 'spire-server',
                            [(name, str(parts_dir / name)) for name in sorted(manifest['parts'])], wrong_info)

    wrong_archive = os.path.join(str(wrong_dir), sidecar['archive'])

    # The restore check of the real archive (-vvv), then of the wrong one, in one playbook run.
    (result, wrong), _output = ansible.modules([
        ('backup_restore_check', args),
        ('backup_restore_check', dict(args, backup_dir=None, spire_archive=wrong_archive))], verbosity=3)
    assert not result.get('failed'), result.get('msg')
    assert result['passed'] is True and result['changed'] is False
    checks = dict((c['check'], c) for c in result['checks'])
    assert sorted(checks) == sorted(['archive', 'healthcheck', 'trust_domain', 'x509_authorities', 'jwt_key_ids',
                                     'entry_count', 'entries_sha256', 'agent_count', 'federated_trust_domains'])
    assert all(c['system'] == 'spire-server' for c in result['checks'])
    assert checks['entry_count']['actual'] == SPIRE_ENTRIES
    assert checks['entries_sha256']['actual'] == info['entries_sha256']
    assert checks['federated_trust_domains']['actual'] == ['other.example']
    assert result['archives']['spire-server']['path'] == saved['archive']
    assert os.listdir(str(scratch)) == []
    assert processes_mentioning(str(scratch)) == []
    # The original server was not touched.
    assert server.healthcheck() and len(server.entries()) == SPIRE_ENTRIES

    # The archive whose manifest disagrees with its datastore fails the entry checks.
    assert wrong['failed'] is True and wrong['passed'] is False
    assert sorted(c['check'] for c in wrong['checks'] if not c['ok']) == ['entries_sha256', 'entry_count']
    assert 'spire-server entry_count' in wrong['msg']
    assert processes_mentioning(str(scratch)) == []


def test_spire_postgres_backup_needs_a_scratch_database(ansible, tmp_path):
    spire_bin_ready()
    spire_backup_module_ready()
    from tests.lab.postgres import PostgresServer, spire_server_on_postgres
    from tests.lab.spire import SPIRE_SERVER_BIN, spire_server_module_args
    password = 'pg-Restore-%s' % os.getpid()
    scratch_password = 'pg-Scratch-%s' % os.getpid()
    pg = PostgresServer().start()
    server = None
    try:
        pg.create_database('spire', 'spire', password)
        connection_string = pg.connection_string('spire', 'spire', password)
        server = spire_server_on_postgres(str(tmp_path), connection_string)
        server.start()
        make_spire_entries(server, 10, prefix='pg', federated=False)
        dest = tmp_path / 'backups'
        dest.mkdir()
        saved = ansible.module('spire_server_backup', dict(
            spire_server_module_args(server), datastore='postgres', connection_string=connection_string,
            keys_path=server.keys_path, config_path=server.config_path, dest_dir=str(dest)))
        assert not saved.get('failed'), saved.get('msg')
        scratch = tmp_path / 'scratch'
        scratch.mkdir()
        refused_scratch = tmp_path / 'scratch-refused'
        refused_scratch.mkdir()
        args = {'spire_archive': saved['archive'], 'spire_server_path': SPIRE_SERVER_BIN, 'workdir': str(scratch),
                'timeout': 90}
        pg.create_database('scratch', 'scratch', scratch_password)
        scratch_connection = pg.connection_string('scratch', 'scratch', scratch_password)

        # Without a scratch database (refused), then with one (-vvv), in one playbook run.
        (refused, result), output = ansible.modules([
            ('backup_restore_check', dict(args, workdir=str(refused_scratch))),
            ('backup_restore_check', dict(args, scratch_postgres_connection_string=scratch_connection))],
            verbosity=3)
        assert refused['failed'] is True
        assert 'a postgres datastore backup needs scratch_postgres_connection_string' in refused['msg']
        assert os.listdir(str(refused_scratch)) == []

        assert not result.get('failed'), result.get('msg')
        assert result['passed'] is True
        checks = dict((c['check'], c) for c in result['checks'])
        assert checks['entry_count']['actual'] == 10 and checks['entries_sha256']['ok']
        for secret in (password, scratch_password):
            assert secret not in output
        assert processes_mentioning(str(scratch)) == []
        assert os.listdir(str(scratch)) == []
    finally:
        if server is not None:
            server.cleanup()
        pg.stop()

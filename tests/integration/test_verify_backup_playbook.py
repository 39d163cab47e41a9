"""playbooks/verify_backup.yml on the controller: the newest archive under backup_controller_dir restores
into a scratch OpenBao unsealed with the original keys and matches (PASS, the archive is then marked
restored); a tampered archive is rejected (FAIL) before any scratch server starts."""

import json
import os
import shutil

import pytest

from tests.integration.conftest import ROOT
from tests.integration import test_backup_restore_check as restore_check
from tests.lab.openbao import BAO_BIN

PLAYBOOK = os.path.join(ROOT, 'playbooks', 'verify_backup.yml')
# The populated cluster's archive, written as backup.yml writes it (the restore check's fixtures, used here too:
# the archive made once per module, and each test's own copy of it).
vault_backup_shared = restore_check.vault_backup_shared
vault_backup = restore_check.vault_backup


@pytest.fixture
def controller_dir(vault_backup, tmp_path):
    """The archive where backup.yml puts it: <backup_controller_dir>/vault/."""
    directory = tmp_path / 'controller'
    (directory / 'vault').mkdir(parents=True)
    for path in (vault_backup['archive'], vault_backup['archive'] + '.json'):
        shutil.copy2(path, str(directory / 'vault'))
    return str(directory)


def verify(ansible, vault_backup, directory):
    return ansible.playbook(PLAYBOOK, ['-e', json.dumps({
        'backup_controller_dir': directory, 'backup_age_identity': vault_backup['identity'],
        'vault_server_material_path': vault_backup['material'], 'verify_bao_path': BAO_BIN})])


def sidecar_of(directory, vault_backup):
    with open(os.path.join(directory, 'vault', os.path.basename(vault_backup['archive']) + '.json')) as handle:
        return json.load(handle)


def test_verify_backup_passes_then_rejects_a_tampered_archive(ansible, vault_backup, controller_dir):
    proc = verify(ansible, vault_backup, controller_dir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert 'backup verification: PASS' in proc.stdout
    assert 'unsealed_with_original_keys' in proc.stdout and 'MISMATCH' not in proc.stdout
    assert sidecar_of(controller_dir, vault_backup)['verified']['how'] == 'restored'
    for value in [vault_backup['token']] + vault_backup['keys']:
        assert value not in proc.stdout

    archive = os.path.join(controller_dir, 'vault', os.path.basename(vault_backup['archive']))
    with open(archive, 'r+b') as handle:
        handle.seek(os.path.getsize(archive) // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    before = sidecar_of(controller_dir, vault_backup)

    proc = verify(ansible, vault_backup, controller_dir)
    assert proc.returncode != 0
    assert 'backup verification: FAIL' in proc.stdout
    assert 'checksum mismatch' in proc.stdout
    assert sidecar_of(controller_dir, vault_backup) == before, 'a rejected archive is not marked verified'

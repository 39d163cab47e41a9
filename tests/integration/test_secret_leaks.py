"""No unseal key, recovery key or root token in any output at -vvvv, nor in any file but the material."""
import json
import os
import subprocess


def all_files(*roots):
    for root in roots:
        for directory, _dirs, files in os.walk(root):
            for name in files:
                yield os.path.join(directory, name)


def test_bootstrap_playbook_at_vvvv_leaks_nothing(ansible, bao_cluster_fresh, tmp_path):
    identity = tmp_path / 'operator.agekey'
    subprocess.run(['age-keygen', '-o', str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(['age-keygen', '-y', str(identity)], check=True, capture_output=True,
                               text=True).stdout.strip()
    material_path = tmp_path / 'init.json.age'
    extra = {
        'vault_nodes': bao_cluster_fresh.urls,
        'vault_material_path': str(material_path),
        'vault_age_recipients': [recipient],
        'vault_age_identity': str(identity),
        'vault_snapshot_path': str(tmp_path / 'raft.snap'),
        'vault_secret_shares': 5,
        'vault_secret_threshold': 3,
    }
    vars_path = tmp_path / 'vars.json'
    vars_path.write_text(json.dumps(extra))
    log_path = tmp_path / 'ansible.log'
    runs = []
    for attempt in ('first', 'second'):  # first run initializes and unseals; the second must change nothing
        runs.append(ansible.playbook('trustroot.ops.vault_bootstrap', args=['-e', '@%s' % vars_path],
                                     verbosity=4, env={'ANSIBLE_LOG_PATH': str(log_path), 'RUN': attempt,
                                                       'ANSIBLE_KEEP_REMOTE_FILES': '0'}))
    for proc in runs:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'changed=0' in runs[1].stdout.splitlines()[-2] or 'changed=0' in runs[1].stdout

    material = json.loads(subprocess.run(['age', '-d', '-i', str(identity), str(material_path)], check=True,
                                         capture_output=True).stdout)
    secrets = material['unseal_keys_b64'] + material['unseal_keys_hex'] + [material['root_token']]
    assert len(secrets) == 11

    outputs = ''.join(proc.stdout + proc.stderr for proc in runs)
    assert 'ESTABLISH LOCAL CONNECTION' in outputs and 'vault_unseal' in outputs, 'the run must be at -vvvv'
    for secret in secrets:
        assert secret not in outputs, 'a secret reached the playbook output'

    scanned = 0
    for path in all_files(str(tmp_path), os.path.expanduser('~/.ansible/tmp')):
        if os.path.abspath(path) == str(material_path):
            continue
        with open(path, 'rb') as handle:
            data = handle.read()
        scanned += 1
        for secret in secrets:
            assert secret.encode() not in data, 'secret found in %s' % path
    assert scanned >= 4 and os.path.exists(str(log_path))

"""A disaster-recovery drill on lab hosts, shared by the integration test and the benchmark.

    drill = Drill('dr', workdir)
    drill.build()          # lab 1: install.yml (OpenBao x3, SPIRE server, agent), then populate it
    before = drill.observe()
    drill.backup()         # playbooks/backup.yml into <workdir>/backups
    drill.destroy_source() # every host of lab 1 is gone; the backups, the init material and the age key stay
    seconds = drill.recover()   # lab 2 (fresh hosts): playbooks/disaster_recovery.yml, timed
    after = drill.observe()

What survives the loss of every host is what an operator keeps off the hosts: the controller's backups,
the init material (age-encrypted) and the operator's age key.
"""

import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.request

from tests.lab import hosts as labhosts
from tests.lab.common import ROOT
from tests.lab.stack import Stack, TRUST_DOMAIN, total

GROUPS = {
    'vault_servers': ['vault1', 'vault2', 'vault3'],
    'spire_servers': ['spire-server1'],
    'spire_agents': ['spire-agent1'],
}
PLAYBOOKS = os.path.join(ROOT, 'tests', 'lab', 'playbooks')
FOREIGN_TRUST_DOMAIN = 'partner.example'
KEPT = ('operator.agekey', 'vault-init.json.age')


def drill_entries(count, trust_domain=TRUST_DOMAIN):
    """``count`` workload entries under one parent, each with its own selector (pure)."""
    return [{'spiffe_id': 'spiffe://%s/drill/workload-%05d' % (trust_domain, index),
             'parent_id': 'spiffe://%s/drill/parent' % trust_domain,
             'selectors': ['unix:uid:%d' % (20000 + index)],
             'federates_with': [FOREIGN_TRUST_DOMAIN] if index % 100 == 0 else []}
            for index in range(count)]


def foreign_bundle(directory):
    """A CA certificate standing for another trust domain's bundle (PEM)."""
    key, cert = os.path.join(directory, 'partner.key'), os.path.join(directory, 'partner.crt')
    if not os.path.exists(cert):
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
                        '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', '/O=partner/CN=partner CA',
                        '-addext', 'basicConstraints=critical,CA:true',
                        '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
                       check=True, capture_output=True)
    with open(cert) as handle:
        return handle.read()


class DrillError(AssertionError):
    pass


class Drill(object):
    def __init__(self, name, workdir, entries=1000):
        self.name = name
        self.workdir = workdir
        self.entries = entries
        self.keep_dir = os.path.join(workdir, 'kept')
        self.backup_dir = os.path.join(workdir, 'backups')
        self.stack = None
        os.makedirs(self.keep_dir, mode=0o700, exist_ok=True)

    @property
    def source_name(self):
        return self.name + '-a'

    @property
    def target_name(self):
        return self.name + '-b'

    def _play(self, playbook, args=(), what=None):
        proc = self.stack.run(playbook, list(args))
        if proc.returncode != 0:
            raise DrillError('%s failed:\n%s\n%s' % (what or playbook, proc.stdout[-4000:], proc.stderr[-2000:]))
        return proc

    def _extra(self, values):
        path = os.path.join(self.stack.files_dir, 'drill-vars.json')
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as handle:
            json.dump(values, handle)
        return ['-e', '@' + path]

    def root_token(self):
        material = subprocess.run(['age', '-d', '-i', os.path.join(self.keep_dir, 'operator.agekey'),
                                   os.path.join(self.keep_dir, 'vault-init.json.age')],
                                  check=True, capture_output=True).stdout
        return json.loads(material)['root_token']

    def _vars_pointing_at_kept_material(self):
        return {'vault_server_material_path': os.path.join(self.keep_dir, 'vault-init.json.age'),
                'vault_server_age_identity': os.path.join(self.keep_dir, 'operator.agekey')}

    def build(self, from_layer=True):
        """Lab 1 with the whole stack installed and populated: booted from the stack layer (installed, see
        tests/lab/layers.py), or with ``from_layer=False`` installed now (the benchmark's reference)."""
        if from_layer:
            self.stack = Stack.from_layer(self.source_name, groups=GROUPS)
            shutil.copy2(os.path.join(self.stack.files_dir, 'vault-init.json.age'), self.keep_dir)
        else:
            self.stack = Stack.up(self.source_name, groups=GROUPS)
        # The operator's key and the init material live outside the lab from the start.
        shutil.copy2(os.path.join(self.stack.files_dir, 'operator.agekey'), self.keep_dir)
        self.stack.write_vars(self._vars_pointing_at_kept_material())
        if not from_layer:
            self._play('install')
        first = dict(self.stack.lab.addresses)['vault1']
        self._play(os.path.join(PLAYBOOKS, 'dr_populate.yml'), self._extra({
            'dr_root_token': self.root_token(), 'dr_vault_url': 'https://%s:8200' % first,
            'dr_ca_cert': os.path.join(self.stack.files_dir, 'vault-ca', 'ca.crt'),
            'dr_entries': drill_entries(self.entries), 'dr_foreign_trust_domain': FOREIGN_TRUST_DOMAIN,
            'dr_foreign_bundle_pem': foreign_bundle(self.keep_dir)}), what='populate')

    def observe(self):
        path = os.path.join(self.workdir, 'observed-%s.json' % self.stack.lab.name)
        self._play(os.path.join(PLAYBOOKS, 'dr_observe.yml'),
                   self._extra({'dr_root_token': self.root_token(), 'dr_observe_path': path}), what='observe')
        with open(path) as handle:
            return json.load(handle)

    def backup(self, extra=()):
        return self._play('backup', ['-e', 'backup_controller_dir=' + self.backup_dir, '-e', 'backup_fresh_for=0']
                          + list(extra))

    def destroy_source(self):
        labhosts.destroy(self.source_name)

    def recover(self, extra=()):
        """Fresh hosts, then disaster_recovery.yml; returns (seconds of the playbook, CompletedProcess)."""
        # Same variables as the source (a source booted from the layer has the layer's registration entries).
        self.stack = Stack.up(self.target_name, groups=GROUPS, vars_groups=self.stack.vars_groups)
        shutil.copy2(os.path.join(self.keep_dir, 'operator.agekey'), self.stack.files_dir)
        self.stack.write_vars(self._vars_pointing_at_kept_material())
        start = time.monotonic()
        proc = self._play('disaster_recovery', ['-e', 'dr_backup_dir=' + self.backup_dir] + list(extra))
        return time.monotonic() - start, proc

    def seal_status(self, host):
        """GET sys/seal-status of a Vault host, verified with the lab CA."""
        context = ssl.create_default_context(cafile=os.path.join(self.stack.files_dir, 'vault-ca', 'ca.crt'))
        url = 'https://%s:8200/v1/sys/seal-status' % dict(self.stack.lab.addresses)[host]
        with urllib.request.urlopen(url, context=context, timeout=10) as resp:
            return json.load(resp)

    def run_again(self, playbook, args=()):
        proc = self._play(playbook, list(args))
        return total(proc.stdout), proc

    def workload_svid(self):
        """The demo workload (unix user demo) on every agent host fetches its X.509 SVID; its SPIFFE IDs."""
        proc = self._play(os.path.join(ROOT, 'scripts', 'demo', 'workload.yml'), what='workload')
        return [line for line in proc.stdout.splitlines() if 'SPIFFE ID' in line]

    def destroy(self):
        for name in (self.source_name, self.target_name):
            labhosts.destroy(name)

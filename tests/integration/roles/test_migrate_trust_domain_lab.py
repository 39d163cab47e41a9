"""playbooks/migrate.yml --tags trust_domain on real systemd lab hosts: a SPIRE trust domain moved through
federation from spire-server1 (demo.trustroot.test) to spire-server2 (new.trustroot.test), with the agents
spire-agent1 (moved first) and spire-agent2 (moved in a second run), then finished. Both moves run at -vvvv: the
join tokens minted for the agents reach no output, host journal or file but the new server's datastore.

The tests run in file order on one lab (each part starts from what the previous one left)."""

import base64
import json
import os
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.lab import hosts as labhosts
from tests.lab import leaks
from tests.lab.common import wait_for
from tests.lab.stack import Stack, agent_alias, total

NAME = 'it-migrate-td'
OLD, NEW = 'demo.trustroot.test', 'new.trustroot.test'
GROUPS = {
    'spire_servers': ['spire-server1'],
    'spire_servers_new': ['spire-server2'],
    'spire_agents': ['spire-agent1', 'spire-agent2'],
}
OLD_SERVER, NEW_SERVER = 'spire-server1', 'spire-server2'
AGENT1, AGENT2 = GROUPS['spire_agents']
SERVER_SOCKET = '/run/spire/server/private/api.sock'
AGENT_SOCKET = '/run/spire/agent/public/api.sock'
AGENT_DATA = '/var/lib/spire/agent/agent-data.json'
WORKLOAD = '/workload/demo'
# Variables that differ between the trust domains live in the inventory (group_vars), as at a site: the stack's
# vars file is passed as extra vars, which no play could override.
INVENTORY_VARS = ('spire_server_trust_domain', 'spire_agent_trust_domain', 'spire_agent_join_token_alias')


@pytest.fixture(scope='module')
def stack():
    # The old trust domain's server and agents boot from the stack layer, installed; spire-server2 boots bare.
    since = time.time()
    stack = Stack.from_layer(NAME, groups=GROUPS)
    try:
        stack.since = since
        stack.outputs = {}
        with open(stack.vars_path) as handle:
            data = json.load(handle)
        group_vars = os.path.join(os.path.dirname(stack.lab.inventory_path), 'group_vars')
        os.makedirs(group_vars, exist_ok=True)
        with open(os.path.join(group_vars, 'all.json'), 'w') as handle:
            json.dump({key: data.pop(key) for key in INVENTORY_VARS}, handle)
        with open(os.path.join(group_vars, 'spire_servers_new.json'), 'w') as handle:
            json.dump({'spire_server_trust_domain': NEW}, handle)
        with open(stack.vars_path, 'w') as handle:
            json.dump(data, handle)
        stack.timings = {'boot_from_layer': stack.boot_seconds}
        for agent in GROUPS['spire_agents']:
            stack.lab.exec(agent, ['useradd', '--system', '--no-create-home', 'demo'])
        yield stack
    finally:
        print('\nmigrate trust_domain timings (s): %s' % json.dumps(getattr(stack, 'timings', {})))
        labhosts.destroy(NAME)


def migrate(stack, label, *args, ok=True):
    started = time.monotonic()
    proc = stack.run('migrate', ['--tags', 'trust_domain'] + list(args))
    stack.timings[label] = round(time.monotonic() - started, 1)
    if ok:
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    stack.outputs[label] = proc.stdout + proc.stderr
    return proc


def extra(**values):
    return ['-e', json.dumps(values)]


# --- helpers -------------------------------------------------------------------------------------------------

def server_json(stack, server, *argv):
    out = stack.lab.exec(server, ['spire-server'] + list(argv) + ['-socketPath', SERVER_SOCKET, '-output', 'json'],
                         check=True)
    return json.loads(out.stdout)


def server_bundle_ders(stack, server):
    """DER of the X.509 authorities of a server's own bundle."""
    return {base64.b64decode(a['asn1']) for a in server_json(stack, server, 'bundle', 'show')['x509_authorities']}


def pem_ders(text):
    return {cert.public_bytes(serialization.Encoding.DER) for cert in x509.load_pem_x509_certificates(text.encode())}


def spiffe_id(cert):
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier)[0]


def agent_trust_domain(stack, agent):
    data = json.loads(stack.lab.exec(agent, ['cat', AGENT_DATA], check=True).stdout)
    return spiffe_id(x509.load_pem_x509_certificate(base64.b64decode(data['svid'][0]))).split('/')[2]


def fetch(stack, agent, want_id, want_federated):
    """What a workload of user demo on the agent host receives: {'svid': cert, 'bundle': PEM text,
    'federated': [PEM text, ...]}, once its SVID is want_id and it holds want_federated federated bundles (the agent
    learns changed entries on its next sync)."""
    directory = '/tmp/svid-fetch'
    seen = {}

    def attempt():
        script = ('rm -rf %s && mkdir %s && spire-agent api fetch x509 -socketPath %s -timeout 10s -write %s'
                  % (directory, directory, AGENT_SOCKET, directory))
        proc = stack.lab.exec(agent, ['runuser', '-u', 'demo', '--', 'sh', '-c', script])
        seen['last'] = proc.stdout + proc.stderr
        if proc.returncode != 0:
            return None
        files = stack.lab.exec(agent, ['ls', directory], check=True).stdout.split()

        def read(name):
            return stack.lab.exec(agent, ['cat', os.path.join(directory, name)], check=True).stdout

        got = {'svid': x509.load_pem_x509_certificates(read('svid.0.pem').encode())[0],
               'bundle': read('bundle.0.pem'),
               'federated': [read(name) for name in sorted(files) if name.startswith('federated_bundle.')]}
        seen['got'] = got
        if spiffe_id(got['svid']) == want_id and len(got['federated']) == want_federated:
            return got
        return None

    try:
        return wait_for(attempt, timeout=120, interval=3, what='the workload SVID %s on %s' % (want_id, agent))
    except TimeoutError:
        got = seen.get('got')
        last = got and (spiffe_id(got['svid']), len(got['federated']))
        raise AssertionError('%s: last fetch: %s %s' % (agent, seen.get('last', '')[-1500:], last))


def chains_to(cert, bundle_ders):
    """The SVID was issued by one of the bundle's authorities (its AKI is one of theirs)."""
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    skis = {x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value.digest for der in bundle_ders}
    return aki in skis


# --- the parts, in order -------------------------------------------------------------------------------------

def test_without_a_trust_domain_nothing_happens(stack):
    proc = migrate(stack, 'nothing_to_do')
    assert 'trust_domain: nothing to do' in proc.stdout
    assert total(proc.stdout) == 0, proc.stdout[-3000:]


def test_bad_input_fails_before_any_change(stack):
    proc = migrate(stack, 'bad_input', *extra(migrate_trust_domain_to=OLD), ok=False)
    assert proc.returncode != 0
    assert 'migrate_trust_domain_to (%s) must be a trust domain name, other than' % OLD in proc.stdout
    assert stack.lab.exec(NEW_SERVER, ['test', '-e', '/usr/local/bin/spire-server']).returncode != 0


def test_check_mode_before_the_new_server_exists_changes_nothing(stack):
    proc = migrate(stack, 'check_fresh', '--check', '--diff',
                   *extra(migrate_trust_domain_to=NEW, migrate_trust_domain_agents=[AGENT1]))
    assert 'the servers of spire_servers_new are not running yet' in proc.stdout
    assert 'trust_domain: %s would move from %s to %s' % (AGENT1, OLD, NEW) in proc.stdout
    assert stack.lab.exec(NEW_SERVER, ['test', '-e', '/usr/local/bin/spire-server']).returncode != 0
    assert agent_trust_domain(stack, AGENT1) == OLD
    assert server_json(stack, OLD_SERVER, 'federation', 'list').get('federation_relationships', []) == []


def test_phase1_moves_the_first_agent_and_both_trust_domains_trust_each_other(stack):
    proc = migrate(stack, 'phase1_agent1', '-vvvv',
                   *extra(migrate_trust_domain_to=NEW, migrate_trust_domain_agents=[AGENT1]))
    assert 'ESTABLISH SSH CONNECTION' in proc.stdout, 'the move must run at -vvvv'
    assert agent_trust_domain(stack, AGENT1) == NEW
    assert agent_trust_domain(stack, AGENT2) == OLD
    old_ders, new_ders = server_bundle_ders(stack, OLD_SERVER), server_bundle_ders(stack, NEW_SERVER)
    # Each server federates with the other and holds its bundle.
    for server, other in ((OLD_SERVER, NEW), (NEW_SERVER, OLD)):
        relations = server_json(stack, server, 'federation', 'list').get('federation_relationships', [])
        assert [r['trust_domain'] for r in relations] == [other]
    # The moved agent's workload: a new-trust-domain SVID, and the old trust domain's bundle as federated bundle.
    moved = fetch(stack, AGENT1, 'spiffe://%s%s' % (NEW, WORKLOAD), 1)
    assert chains_to(moved['svid'], new_ders) and pem_ders(moved['bundle']) == new_ders
    assert pem_ders(moved['federated'][0]) == old_ders
    # The workload on the agent not moved yet: an old SVID, and the new trust domain's bundle as federated bundle.
    staying = fetch(stack, AGENT2, 'spiffe://%s%s' % (OLD, WORKLOAD), 1)
    assert chains_to(staying['svid'], old_ders) and pem_ders(staying['federated'][0]) == new_ders
    # The old server no longer lists the moved agent (evicted); the new one lists it, by its alias.
    assert len(server_json(stack, OLD_SERVER, 'agent', 'list').get('agents', [])) == 1
    assert len(server_json(stack, NEW_SERVER, 'agent', 'list').get('agents', [])) == 1
    assert server_json(stack, NEW_SERVER, 'entry', 'show', '-spiffeID', agent_alias(AGENT1, NEW))['entries']
    again = migrate(stack, 'phase1_agent1_again',
                    *extra(migrate_trust_domain_to=NEW, migrate_trust_domain_agents=[AGENT1]))
    assert total(again.stdout) == 0, again.stdout[-5000:]
    assert total(proc.stdout) > 0


def test_finish_refuses_while_an_agent_is_left(stack):
    proc = migrate(stack, 'finish_refused', *extra(migrate_trust_domain_to=NEW, migrate_trust_domain_finish=True),
                   ok=False)
    assert proc.returncode != 0
    assert 'still in the old trust domain (or not reached): %s' % AGENT2 in proc.stdout
    assert stack.lab.exec(OLD_SERVER, ['systemctl', 'is-active', 'spire-server']).stdout.strip() == 'active'


def test_phase1_moves_the_remaining_agent(stack):
    proc = migrate(stack, 'phase1_agent2', '-vvvv', *extra(migrate_trust_domain_to=NEW))
    assert 'ESTABLISH SSH CONNECTION' in proc.stdout, 'the move must run at -vvvv'
    assert agent_trust_domain(stack, AGENT2) == NEW
    fetch(stack, AGENT2, 'spiffe://%s%s' % (NEW, WORKLOAD), 1)
    assert server_json(stack, OLD_SERVER, 'agent', 'list').get('agents', []) == []


def test_finish_removes_the_old_trust_domain(stack):
    proc = migrate(stack, 'finish', *extra(migrate_trust_domain_to=NEW, migrate_trust_domain_finish=True))
    assert total(proc.stdout) > 0
    assert server_json(stack, NEW_SERVER, 'federation', 'list').get('federation_relationships', []) == []
    # No bundle of the old trust domain is left on the new server.
    assert OLD not in json.dumps(server_json(stack, NEW_SERVER, 'bundle', 'list'))
    entries = server_json(stack, NEW_SERVER, 'entry', 'show')['entries']
    assert entries and not any(OLD in json.dumps(e.get('federates_with', [])) for e in entries)
    assert stack.lab.exec(OLD_SERVER, ['systemctl', 'is-active', 'spire-server']).stdout.strip() != 'active'
    assert stack.lab.exec(OLD_SERVER, ['systemctl', 'is-enabled', 'spire-server']).stdout.strip() == 'disabled'
    new_ders = server_bundle_ders(stack, NEW_SERVER)
    for agent in GROUPS['spire_agents']:
        assert agent_trust_domain(stack, agent) == NEW
        got = fetch(stack, agent, 'spiffe://%s%s' % (NEW, WORKLOAD), 0)
        assert chains_to(got['svid'], new_ders) and pem_ders(got['bundle']) == new_ders
    again = migrate(stack, 'finish_again', *extra(migrate_trust_domain_to=NEW, migrate_trust_domain_finish=True))
    assert total(again.stdout) == 0, again.stdout[-5000:]


# Files that hold a secret by design, each with why; each is checked private (0600 or 0640, owned by root or spire).
ALLOWED = [
    ('*/hosts/spire-server2/upper/var/lib/spire/server/datastore.sqlite3*',
     "the new server's own datastore: it keeps a join token until an agent attests with it"),
]


def test_the_moves_leak_no_join_token(stack):
    """The join tokens minted for the moved agents (read back from the new server's agent IDs): in no output of the
    migration runs (the two moves at -vvvv), no host journal, no file but the new server's datastore (the token
    file handed to an agent is removed once it has attested)."""
    agents = json.loads(stack.lab.exec(NEW_SERVER, ['spire-server', 'agent', 'list', '-socketPath', SERVER_SOCKET,
                                                    '-output', 'json'], check=True).stdout)
    secrets = leaks.join_tokens(agents)
    assert len(secrets) == 2, agents
    output = ''.join(stack.outputs.values())
    assert not leaks.text_leaks(output, secrets), leaks.text_leaks(output, secrets)
    found, held, scanned = leaks.scan_lab(stack.lab, secrets, stack.since, ALLOWED)
    assert not found, 'join tokens outside the datastore:\n' + leaks.report(found)
    assert scanned > 100, scanned
    print(leaks.summary(scanned, secrets, held))
    spire_uid = int(stack.lab.exec(NEW_SERVER, ['id', '-u', 'spire'], check=True).stdout)
    for path in sorted({path for path, _label, _reason in held}):
        assert leaks.private_file_problem(path, (0, spire_uid)) is None, leaks.private_file_problem(path, (0, spire_uid))

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Security posture of both roots of trust: facts in, findings out (pure, no I/O).

A finding is {'id', 'system', 'status' (PASS | WARN | FAIL), 'summary', 'remediation'} (plus 'host' when the
check is about one host). The facts are what the posture modules and playbooks/posture.yml read from the servers,
the hosts and the controller; the thresholds are the playbook's variables (see DEFAULT_THRESHOLDS).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.trustroot.ops.plugins.module_utils._errors import TrustrootError

PASS, WARN, FAIL = 'PASS', 'WARN', 'FAIL'
ORDER = {FAIL: 0, WARN: 1, PASS: 2}
SYSTEMS = ('vault', 'spire', 'backup')
DAY = 86400

DEFAULT_THRESHOLDS = {
    'tls_min_version': '1.2',               # the oldest TLS version a Vault listener may accept
    'cert_expiry_days': 30,                 # a served certificate expiring sooner is a WARN (expired: FAIL)
    'ca_expiry_days': 0.25,                 # SPIRE's active X.509 CA closer to its end than this: WARN
    'ca_ttl_min': 3600, 'ca_ttl_max': 30 * DAY,
    'x509_svid_ttl_min': 300, 'x509_svid_ttl_max': DAY,
    'jwt_svid_ttl_min': 60, 'jwt_svid_ttl_max': 3600,
    'agent_unseen_days': 7,
    'backup_max_age': 2 * DAY,              # seconds: the newest verified backup may be this old
    'metrics_unauthenticated_ok': True,     # unauthenticated /v1/sys/metrics on a listener: PASS (else WARN)
    'init_root_token_ok': True,             # the init material's root token, kept age-encrypted, may stay valid
    'min_unseal_threshold': 2,
    'min_failure_tolerance': 1,             # for clusters of 3 voters or more
    'admin_ids_allowed': [],                # admin / downstream entries expected (SPIFFE IDs)
    'audit_min_free_bytes': 512 * 1024 * 1024,
    'audit_min_free_ratio': 0.05,
    'audit_owner': '',                      # the service user; '' = any owner but root-less checks skipped
}

TLS_ORDER = ['1.0', '1.1', '1.2', '1.3']

_DURATION = re.compile(r'(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d)')
_UNITS = {'ns': 1e-9, 'us': 1e-6, 'ms': 1e-3, 's': 1, 'm': 60, 'h': 3600, 'd': DAY}


class PostureError(TrustrootError):
    pass


def thresholds_with_defaults(given):
    """DEFAULT_THRESHOLDS updated with ``given``; raises PostureError naming an unknown or malformed one."""
    out = dict(DEFAULT_THRESHOLDS)
    for name, value in (given or {}).items():
        if name not in DEFAULT_THRESHOLDS:
            raise PostureError('thresholds.%s is not a known threshold (known: %s)' % (
                name, ', '.join(sorted(DEFAULT_THRESHOLDS))))
        default = DEFAULT_THRESHOLDS[name]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise PostureError('thresholds.%s must be true or false' % name)
        elif isinstance(default, (int, float)):
            if isinstance(value, str):
                value = parse_duration(value, 'thresholds.%s' % name) if name.endswith(('_max', '_min', '_age')) else value
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise PostureError('thresholds.%s must be a non-negative number, got %r' % (name, value))
        elif name == 'tls_min_version':
            if str(value) not in TLS_ORDER:
                raise PostureError('thresholds.tls_min_version must be one of %s' % ', '.join(TLS_ORDER))
            value = str(value)
        elif isinstance(default, list) and not isinstance(value, list):
            raise PostureError('thresholds.%s must be a list' % name)
        out[name] = value
    return out


def parse_duration(text, field='duration'):
    """Seconds of a SPIRE / Go duration ('24h', '1h30m', '90s', '7d') or a number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return text
    text = str(text or '').strip()
    if re.match(r'^\d+(\.\d+)?$', text):
        return float(text) if '.' in text else int(text)
    parts = _DURATION.findall(text)
    if not text or ''.join(n + u for n, u in parts) != text:
        raise PostureError('%s: %r is not a duration like 24h or 1h30m' % (field, text))
    total = sum(float(n) * _UNITS[u] for n, u in parts)
    return int(total) if total == int(total) else total


def human(seconds):
    seconds = int(seconds)
    sign = '-' if seconds < 0 else ''
    seconds = abs(seconds)
    for unit, size in (('d', DAY), ('h', 3600), ('m', 60)):
        if seconds >= size:
            return '%s%d%s' % (sign, seconds // size, unit)
    return '%s%ds' % (sign, seconds)


def finding(check_id, status, summary, remediation='', host=None):
    out = {'id': check_id, 'system': check_id.split('.', 1)[0], 'status': status, 'summary': summary,
           'remediation': remediation if status != PASS else ''}
    if host:
        out['host'] = host
    return out


# --- Vault / OpenBao ------------------------------------------------------------------------------------------

def vault_findings(facts, t, now):
    """Findings of the Vault / OpenBao cluster from ``facts`` (see vault_posture_info's RETURN and posture.yml)."""
    if not facts.get('reachable', True) or facts.get('error'):
        return [finding('vault.reachable', FAIL, 'cluster not read: %s' % facts.get('error', 'unreachable'),
                        'Check that a node answers and that the token from the init material is valid.')]
    out = []
    out.append(_root_tokens(facts, t))
    out.append(_init_root_token(facts, t))
    out.append(_audit_devices(facts))
    out.append(_audit_files(facts, t))
    out.append(_tls_min(facts, t))
    out.append(_tls_expiry(facts, t, now))
    out.append(_unseal_layout(facts, t))
    out.append(_autopilot(facts, t))
    out.append(_raft_peers(facts))
    out.append(_metrics(facts, t))
    return out


def _root_tokens(facts, t):
    tokens = facts.get('root_tokens')
    if tokens is None:
        return finding('vault.root_tokens', WARN, 'token accessors not listed: %s' % facts.get('tokens_error', '?'),
                       'Give the check a token that may list auth/token/accessors (the init root token).')
    others = [tok for tok in tokens if not tok.get('init')]
    if not others:
        return finding('vault.root_tokens', PASS, 'no root token outstanding besides the init material\'s')
    names = ', '.join(sorted(set(tok.get('display_name') or '?' for tok in others)))
    return finding('vault.root_tokens', FAIL, '%d root token(s) outstanding (%s)' % (len(others), names),
                   'Revoke them: bao token revoke -accessor <accessor> (bao list auth/token/accessors), '
                   'or playbooks/rotate.yml -t root_token for a generated-and-revoked break-glass token.')


def _init_root_token(facts, t):
    tokens = facts.get('root_tokens')
    if tokens is None:
        return finding('vault.init_root_token', WARN, 'not known (token accessors not listed)',
                       'See vault.root_tokens.')
    valid = any(tok.get('init') for tok in tokens)
    material = facts.get('material') or {}
    if not valid:
        return finding('vault.init_root_token', PASS, 'the init root token is revoked')
    where = 'kept age-encrypted in %s' % (material.get('path') or 'the init material')
    if not material.get('exists'):
        return finding('vault.init_root_token', FAIL, 'the init root token is valid and its material file is missing',
                       'Revoke it (bao token revoke -self with it) or restore the age-encrypted init material.')
    if material.get('mode') not in ('0600', '0400'):
        return finding('vault.init_root_token', FAIL, 'the init root token is valid and %s has mode %s' % (
            material.get('path'), material.get('mode')), 'chmod 0600 %s' % material.get('path'))
    if t['init_root_token_ok']:
        return finding('vault.init_root_token', PASS, 'init root token valid, %s' % where)
    return finding('vault.init_root_token', WARN, 'init root token valid, %s' % where,
                   'Revoke it once backups use their own token (backup_vault_admin_token), or accept it with '
                   'posture_thresholds.init_root_token_ok=true.')


def _audit_devices(facts):
    devices = facts.get('audit_devices')
    if devices is None:
        return finding('vault.audit_devices', FAIL, 'audit devices not read: %s' % facts.get('audit_error', '?'),
                       'Give the check a token that may read sys/audit.')
    if not devices:
        return finding('vault.audit_devices', FAIL, 'no audit device enabled: requests leave no record',
                       'Declare one: vault_server_audit_enabled=true (the default), then install.yml.')
    names = ', '.join('%s (%s)' % (d.get('path'), d.get('type')) for d in devices)
    return finding('vault.audit_devices', PASS, '%d enabled: %s' % (len(devices), names))


def _audit_files(facts, t):
    devices = [d for d in facts.get('audit_devices') or [] if d.get('type') == 'file']
    if not devices:
        status = PASS if facts.get('audit_devices') else FAIL
        return finding('vault.audit_writable', status, 'no file audit device to check on the hosts' if status == PASS
                       else 'no audit device can write', 'See vault.audit_devices.')
    problems = []
    hosts = facts.get('audit_files') or {}
    for host in sorted(hosts):
        for device in devices:
            path = device.get('file_path')
            if path in ('stdout', 'discard', None, ''):
                continue
            info = (hosts[host] or {}).get(path) or {}
            if not info.get('exists'):
                problems.append('%s: %s missing' % (host, path))
                continue
            if t['audit_owner'] and info.get('owner') != t['audit_owner']:
                problems.append('%s: %s owned by %s' % (host, path, info.get('owner')))
            if info.get('mode') != '0600':
                problems.append('%s: %s mode %s' % (host, path, info.get('mode')))
            avail, size = info.get('avail_bytes'), info.get('size_bytes')
            if isinstance(avail, int) and isinstance(size, int) and size > 0:
                if avail < t['audit_min_free_bytes'] or avail < size * t['audit_min_free_ratio']:
                    problems.append('%s: %s filesystem has %s MiB free' % (host, path, avail // (1024 * 1024)))
    if not hosts:
        return finding('vault.audit_writable', WARN, 'audit files not inspected on any host',
                       'Run posture.yml with the vault_servers group in the inventory.')
    if problems:
        return finding('vault.audit_writable', FAIL, '; '.join(problems[:4]) + (' ...' if len(problems) > 4 else ''),
                       'Fix owner/mode (service user, 0600) and free space: with no device able to write, '
                       'the server refuses every request.')
    return finding('vault.audit_writable', PASS, '%d file(s) on %d host(s): owner, 0600, space ok' % (
        len(devices), len(hosts)))


def _tls_min(facts, t):
    listeners = facts.get('tls') or {}
    if not listeners:
        return finding('vault.tls_min_version', WARN, 'no listener probed', 'Check the listeners\' TLS settings.')
    wanted = TLS_ORDER.index(t['tls_min_version'])
    weak, unknown = [], []
    for url in sorted(listeners):
        accepted = listeners[url].get('accepted_versions')
        if accepted is None:
            unknown.append(url)
            continue
        if any(TLS_ORDER.index(v) < wanted for v in accepted if v in TLS_ORDER):
            weak.append('%s accepts TLS %s' % (url, min(accepted)))
    if weak:
        return finding('vault.tls_min_version', FAIL, '; '.join(weak),
                       'Set tls_min_version = "tls%s" on every listener.' % t['tls_min_version'].replace('.', ''))
    if unknown:
        return finding('vault.tls_min_version', WARN, 'not determined on %s' % ', '.join(unknown),
                       'Probe the listener with openssl s_client -tls1_1.')
    return finding('vault.tls_min_version', PASS, '%d listener(s) refuse TLS below %s' % (
        len(listeners), t['tls_min_version']))


def _tls_expiry(facts, t, now):
    listeners = facts.get('tls') or {}
    ends = [(listeners[url].get('not_after_unix'), url) for url in listeners if listeners[url].get('not_after_unix')]
    if not ends:
        return finding('vault.tls_expiry', WARN, 'no served certificate read', 'Check that the nodes answer TLS.')
    soonest, url = min(ends)
    left = soonest - now
    if left <= 0:
        return finding('vault.tls_expiry', FAIL, '%s serves an expired certificate' % url,
                       'Renew it: playbooks/rotate.yml -t tls.')
    if left < t['cert_expiry_days'] * DAY:
        return finding('vault.tls_expiry', WARN, '%s certificate expires in %s' % (url, human(left)),
                       'Renew it: playbooks/rotate.yml -t tls.')
    return finding('vault.tls_expiry', PASS, 'soonest expiry in %s (%s)' % (human(left), url.split('//')[-1]))


def _unseal_layout(facts, t):
    seal = facts.get('seal') or {}
    threshold, shares = seal.get('t'), seal.get('n')
    if not isinstance(threshold, int) or not isinstance(shares, int):
        return finding('vault.unseal_layout', WARN, 'seal status not read', 'Check that a node answers.')
    kind = 'recovery' if seal.get('type') not in (None, 'shamir') else 'unseal'
    layout = '%s %s, %d of %d shares' % (seal.get('type') or 'shamir', kind, threshold, shares)
    if threshold < t['min_unseal_threshold']:
        return finding('vault.unseal_layout', FAIL, layout + ': one holder can unseal alone',
                       'Rekey to a threshold of at least %d: playbooks/rotate.yml -t rekey.' % t['min_unseal_threshold'])
    if threshold >= shares and shares > 1:
        return finding('vault.unseal_layout', WARN, layout + ': losing any share locks the cluster',
                       'Rekey with more shares than the threshold.')
    material = facts.get('material') or {}
    if material and not material.get('exists'):
        return finding('vault.unseal_layout', WARN, layout + '; the init material file is missing',
                       'Keep the age-encrypted init material (vault_server_material_path) safe and present.')
    return finding('vault.unseal_layout', PASS, layout)


def _autopilot(facts, t):
    auto = facts.get('autopilot')
    if not auto:
        return finding('vault.autopilot', WARN, 'autopilot state not read: %s' % facts.get('autopilot_error', '?'),
                       'Check raft storage and the token.')
    voters = auto.get('voters') or []
    tolerance = auto.get('failure_tolerance', 0)
    unhealthy = sorted(name for name, healthy in (auto.get('servers') or {}).items() if not healthy)
    if not auto.get('healthy') or unhealthy:
        return finding('vault.autopilot', FAIL, 'unhealthy%s' % (': ' + ', '.join(unhealthy) if unhealthy else ''),
                       'Look at bao operator raft autopilot state; bring the named nodes back or remove them.')
    needed = t['min_failure_tolerance'] if len(voters) >= 3 else 0
    if tolerance < needed:
        return finding('vault.autopilot', WARN, 'healthy, failure tolerance %d with %d voters' % (tolerance, len(voters)),
                       'Add voters: a cluster of 3 tolerates 1 failure.')
    return finding('vault.autopilot', PASS, 'healthy, %d voters, tolerates %d failure(s)' % (len(voters), tolerance))


def _raft_peers(facts):
    peers = facts.get('raft_peers')
    inventory = facts.get('inventory') or []
    if peers is None:
        return finding('vault.raft_peers', WARN, 'raft configuration not read: %s' % facts.get('raft_error', '?'),
                       'Check the token and raft storage.')
    extra = sorted(set(peers) - set(inventory))
    missing = sorted(set(inventory) - set(peers))
    if extra or missing:
        parts = (['not in inventory: ' + ', '.join(extra)] if extra else []) + (
            ['not in raft: ' + ', '.join(missing)] if missing else [])
        return finding('vault.raft_peers', FAIL, '; '.join(parts),
                       'Remove stale peers (bao operator raft remove-peer) or join the missing nodes (install.yml).')
    return finding('vault.raft_peers', PASS, '%d peers = inventory' % len(peers))


def _metrics(facts, t):
    metrics = facts.get('metrics') or {}
    open_urls = sorted(url for url, unauth in metrics.items() if unauth)
    if not metrics:
        return finding('vault.metrics_access', WARN, 'not probed', 'Check sys/metrics on each listener.')
    if not open_urls:
        return finding('vault.metrics_access', PASS, 'metrics need a token on every listener')
    text = 'unauthenticated metrics on %d listener(s)' % len(open_urls)
    if t['metrics_unauthenticated_ok']:
        return finding('vault.metrics_access', PASS, text + ' (accepted)')
    return finding('vault.metrics_access', WARN, text,
                   'Set vault_server_telemetry_unauthenticated_metrics=false or accept with '
                   'posture_thresholds.metrics_unauthenticated_ok=true.')


# --- SPIRE ------------------------------------------------------------------------------------------------------

def spire_findings(server, agents_config, t, now, host=None):
    """Findings of one SPIRE server (``server``: spire_posture_info's answer) and of the agents' configuration
    (``agents_config``: {agent host: {'insecure_bootstrap': bool}} read from their agent.conf)."""
    if server.get('error'):
        return [finding('spire.reachable', FAIL, 'server not read: %s' % server['error'],
                        'Check that spire-server runs and its socket path.', host)]
    out = [_insecure_bootstrap(agents_config, host),
           _ttls(server, t, host),
           _ca_expiry(server, t, now, host),
           _federation_relationships(server, host),
           _federated_bundles(server, t, now, host),
           _federated_match(server, host),
           _agents_unseen(server, t, now, host),
           _orphaned_entries(server, host),
           _admin_entries(server, t, host),
           _join_tokens(server, now, host),
           _spire_audit(server, host)]
    return out


def _insecure_bootstrap(agents_config, host):
    if not agents_config:
        return finding('spire.insecure_bootstrap', PASS, 'no agent host in the inventory', host=host)
    on = sorted(name for name, conf in agents_config.items() if (conf or {}).get('insecure_bootstrap'))
    if on:
        return finding('spire.insecure_bootstrap', FAIL, 'insecure_bootstrap on: %s' % ', '.join(on),
                       'Give agents a trust bundle (spire_agent_insecure_bootstrap=false) and reinstall them.', host)
    return finding('spire.insecure_bootstrap', PASS, 'off on %d agent(s)' % len(agents_config), host=host)


def _ttls(server, t, host):
    config = server.get('config') or {}
    problems = []
    values = {}
    for name, key in (('ca_ttl', 'ca_ttl'), ('x509_svid_ttl', 'default_x509_svid_ttl'),
                      ('jwt_svid_ttl', 'default_jwt_svid_ttl')):
        try:
            values[name] = parse_duration(config.get(key) or {'ca_ttl': '24h', 'default_x509_svid_ttl': '1h',
                                                              'default_jwt_svid_ttl': '5m'}[key], key)
        except PostureError as err:
            problems.append(str(err))
            continue
        low, high = t[name + '_min'], t[name + '_max']
        if not low <= values[name] <= high:
            problems.append('%s %s outside %s..%s' % (key, human(values[name]), human(low), human(high)))
    if 'ca_ttl' in values and 'x509_svid_ttl' in values and values['x509_svid_ttl'] * 6 > values['ca_ttl']:
        problems.append('default_x509_svid_ttl above ca_ttl/6')
    if problems:
        return finding('spire.ttls', WARN, '; '.join(problems),
                       'Set spire_server_ca_ttl / spire_server_default_*_svid_ttl within the bounds.', host)
    return finding('spire.ttls', PASS, 'ca %s, x509 %s, jwt %s' % (
        human(values['ca_ttl']), human(values['x509_svid_ttl']), human(values['jwt_svid_ttl'])), host=host)


def _ca_expiry(server, t, now, host):
    active = ((server.get('local_authorities') or {}).get('x509') or {}).get('active')
    if not active or not active.get('expires_at_unix'):
        return finding('spire.ca_expiry', FAIL, 'no active X.509 authority', 'Check the server log.', host)
    left = active['expires_at_unix'] - now
    prepared = ((server.get('local_authorities') or {}).get('x509') or {}).get('prepared')
    if left <= 0:
        return finding('spire.ca_expiry', FAIL, 'active X.509 CA expired', 'Rotate: playbooks/rotate.yml -t ca.', host)
    if left < t['ca_expiry_days'] * DAY and not prepared:
        return finding('spire.ca_expiry', WARN, 'active X.509 CA ends in %s, none prepared' % human(left),
                       'Check the server rotates its CA (log), or playbooks/rotate.yml -t ca.', host)
    return finding('spire.ca_expiry', PASS, 'active X.509 CA ends in %s%s' % (
        human(left), ', next prepared' if prepared else ''), host=host)


def _federation_relationships(server, host):
    wanted = set()
    for entry in server.get('entries') or []:
        wanted.update(entry.get('federates_with') or [])
    have = set(rel.get('trust_domain') for rel in server.get('federations') or [])
    missing = sorted(wanted - have)
    if missing:
        return finding('spire.federation_relationships', FAIL,
                       'federates_with without a relationship: %s' % ', '.join(missing),
                       'Create them (trustroot.ops.spire_federation) or drop federates_with from the entries.', host)
    return finding('spire.federation_relationships', PASS, '%d trust domain(s) federated, every federates_with '
                   'has a relationship' % len(have), host=host)


def _federated_bundles(server, t, now, host):
    rels = server.get('federations') or []
    if not rels:
        return finding('spire.federated_bundles', PASS, 'no federation relationship', host=host)
    bundles = dict((b.get('trust_domain'), b) for b in server.get('bundles') or [])
    problems = []
    for rel in rels:
        domain = rel.get('trust_domain')
        bundle = bundles.get(domain)
        if not bundle or not bundle.get('x509_authorities'):
            problems.append('%s: no bundle' % domain)
            continue
        ends = [a.get('not_after_unix') or 0 for a in bundle['x509_authorities']]
        if max(ends) <= now:
            problems.append('%s: every X.509 authority expired (stale)' % domain)
        elif min(ends) <= now:
            problems.append('%s: holds an expired authority' % domain)
    if problems:
        return finding('spire.federated_bundles', FAIL, '; '.join(problems),
                       'spire-server federation refresh -id <td>; check the peer\'s bundle endpoint.', host)
    return finding('spire.federated_bundles', PASS, '%d bundle(s) current' % len(rels), host=host)


def _federated_match(server, host):
    rels = server.get('federations') or []
    if not rels:
        return finding('spire.federated_bundle_match', PASS, 'no federation relationship', host=host)
    problems = []
    for rel in rels:
        domain = rel.get('trust_domain')
        served = rel.get('served')
        if served is None:
            # Unreachable, or answered with something that is not a valid SPIFFE bundle (served_error says which).
            problems.append('%s: endpoint not read or its bundle not valid (%s)' % (domain, rel.get('served_error') or '?'))
            continue
        stored = set(rel.get('stored_keys') or [])
        if set(served) != stored:
            problems.append('%s: stored bundle differs from what %s serves' % (domain, rel.get('bundle_endpoint_url')))
    if problems:
        return finding('spire.federated_bundle_match', FAIL, '; '.join(problems),
                       'spire-server federation refresh -id <td>; if the endpoint is gone, delete the relationship.',
                       host)
    return finding('spire.federated_bundle_match', PASS, '%d bundle(s) = peer endpoints' % len(rels), host=host)


def _agents_unseen(server, t, now, host):
    agents = server.get('agents') or []
    limit = t['agent_unseen_days'] * DAY
    unseen = []
    for agent in agents:
        # An agent renews its SVID at half life: an SVID expired for long means an agent not seen since.
        expires = agent.get('x509svid_expires_at') or 0
        if expires and now - expires > limit:
            unseen.append('%s (%s)' % (agent.get('spiffe_id'), human(now - expires)))
    if unseen:
        return finding('spire.agents_unseen', WARN, '%d agent(s) not seen for over %sd: %s' % (
            len(unseen), t['agent_unseen_days'], ', '.join(unseen[:3])),
            'Evict them: spire-server agent evict -spiffeID <id> (or agent purge -expiredFor).', host)
    return finding('spire.agents_unseen', PASS, '%d agent(s), all seen within %sd' % (
        len(agents), t['agent_unseen_days']), host=host)


def _orphaned_entries(server, host):
    domain = server.get('trust_domain') or ''
    server_id = 'spiffe://%s/spire/server' % domain
    agent_ids = set(a.get('spiffe_id') for a in server.get('agents') or [])
    entry_ids = set(e.get('spiffe_id') for e in server.get('entries') or [])
    orphans = []
    for entry in server.get('entries') or []:
        parent = entry.get('parent_id')
        if parent == server_id or parent in agent_ids or parent in entry_ids:
            continue
        if parent and parent.startswith('spiffe://%s/spire/agent/' % domain):
            orphans.append(entry)
        elif parent and not entry.get('node'):
            orphans.append(entry)
    if orphans:
        return finding('spire.orphaned_entries', WARN, '%d entr%s parented to an agent that does not exist: %s' % (
            len(orphans), 'y' if len(orphans) == 1 else 'ies', ', '.join(e.get('id') or '?' for e in orphans[:3])),
            'Delete them (spire-server entry delete -entryID <id>) or re-parent them.', host)
    return finding('spire.orphaned_entries', PASS, '%d entries, every parent exists' % len(server.get('entries') or []),
                   host=host)


def _admin_entries(server, t, host):
    special = [e for e in server.get('entries') or [] if e.get('admin') or e.get('downstream')]
    unexpected = [e for e in special if e.get('spiffe_id') not in t['admin_ids_allowed']]
    listed = ', '.join('%s%s' % (e.get('spiffe_id'), ' (admin)' if e.get('admin') else ' (downstream)')
                       for e in special[:3])
    if unexpected:
        return finding('spire.admin_downstream', WARN, '%d admin/downstream entr%s not expected: %s' % (
            len(unexpected), 'y' if len(unexpected) == 1 else 'ies', listed),
            'Review them; list the expected ones in posture_thresholds.admin_ids_allowed.', host)
    return finding('spire.admin_downstream', PASS, ('%d expected: %s' % (len(special), listed)) if special
                   else 'no admin or downstream entry', host=host)


def _join_tokens(server, now, host):
    tokens = server.get('join_tokens') or {}
    if not tokens.get('listable'):
        return finding('spire.join_tokens', WARN, 'cannot be listed: %s' % (tokens.get('reason') or '?'),
                       'spire-server has no command that lists join tokens: check who holds tokens you generated.', host)
    expiries = tokens.get('expiries') or []
    unused = [e for e in expiries if e > now]
    expired = [e for e in expiries if e <= now]
    if unused:
        return finding('spire.join_tokens', WARN, '%d unused join token(s), valid for up to %s' % (
            len(unused), human(max(unused) - now)),
            'Use them now or let them expire; mint tokens with short TTLs (spire_agent_join_token_ttl).', host)
    if expired:
        return finding('spire.join_tokens', PASS, 'no valid unused join token (%d expired, pruned by the server)' % len(
            expired), host=host)
    return finding('spire.join_tokens', PASS, 'no unused join token', host=host)


def _spire_audit(server, host):
    config = server.get('config') or {}
    if str(config.get('audit_log_enabled')).lower() == 'true':
        return finding('spire.audit_log', PASS, 'audit log on', host=host)
    return finding('spire.audit_log', WARN, 'audit log off', 'Set spire_server_audit_log_enabled=true.', host)


# --- Backups ----------------------------------------------------------------------------------------------------

def backup_findings(backups, t, now):
    """``backups``: None when no backup directory was given, else {system: newest verified sidecar summary or None}
    (summary: {'name', 'created_unix', 'verified_how'})."""
    out = []
    for system, label in (('vault', 'Vault / OpenBao'), ('spire-server', 'SPIRE server')):
        check_id = 'backup.%s' % ('vault' if system == 'vault' else 'spire')
        if backups is None:
            out.append(finding(check_id, WARN, 'not checked: no backup_controller_dir given',
                               'Run posture.yml with -e backup_controller_dir=<dir backup.yml writes to>.'))
            continue
        newest = backups.get(system)
        if not newest:
            out.append(finding(check_id, FAIL, 'no verified %s backup' % label,
                               'Run backup.yml then verify_backup.yml.'))
            continue
        age = now - newest['created_unix']
        if age > t['backup_max_age']:
            out.append(finding(check_id, FAIL, 'last verified %s backup is %s old (limit %s): %s' % (
                label, human(age), human(t['backup_max_age']), newest.get('name')),
                'Run backup.yml then verify_backup.yml; check the backup timer.'))
        else:
            out.append(finding(check_id, PASS, 'last verified backup %s old (%s)' % (human(age), newest.get('verified_how'))))
    return out


# --- Report -----------------------------------------------------------------------------------------------------

def sort_findings(findings):
    return sorted(findings, key=lambda f: (SYSTEMS.index(f['system']) if f['system'] in SYSTEMS else 9,
                                           ORDER[f['status']], f['id'], f.get('host') or ''))


def counts(findings):
    out = {PASS: 0, WARN: 0, FAIL: 0}
    for item in findings:
        out[item['status']] += 1
    return out


def render(findings, width=118):
    """Summary lines: a total, then per system one line per check (FAIL and WARN first, each followed by its
    remediation), lines cut to ``width``."""
    tally = counts(findings)
    lines = ['posture: %s (%d PASS, %d WARN, %d FAIL)' % (
        FAIL if tally[FAIL] else (WARN if tally[WARN] else PASS), tally[PASS], tally[WARN], tally[FAIL])]
    titles = {'vault': 'Vault / OpenBao', 'spire': 'SPIRE', 'backup': 'Backups'}
    current = None
    for item in sort_findings(findings):
        if item['system'] != current:
            current = item['system']
            lines.append('%s:' % titles.get(current, current))
        where = ('[%s] ' % item['host']) if item.get('host') else ''
        lines.append(_cut('  %-4s %-30s %s%s' % (item['status'], item['id'], where, item['summary']), width))
        if item['status'] != PASS and item.get('remediation'):
            lines.append(_cut('       -> %s' % item['remediation'], width))
    return lines


def _cut(line, width):
    return line if len(line) <= width else line[:width - 3] + '...'


def report(findings, thresholds, now_iso):
    ordered = sort_findings(findings)
    tally = counts(ordered)
    return {'format': 'trustroot.ops/posture/1', 'generated': now_iso, 'passed': tally[FAIL] == 0,
            'counts': tally, 'thresholds': thresholds, 'findings': ordered}

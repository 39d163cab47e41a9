"""spire_server_info against a real spire-server (and the lab's own listeners)."""

import base64
import time

from tests.lab.spire import http_get, spire_server_module_args


def test_reads_health_authorities_and_counts(ansible, spire_server, spire_agent):
    spire_server.create_entries([{'spiffe_id': spire_server.spiffe_id('info/w%d' % i), 'parent_id': spire_agent.spiffe_id,
                                  'selectors': [{'type': 'unix', 'value': 'uid:%d' % (2000 + i)}]} for i in range(3)])
    result = ansible.module('spire_server_info', spire_server_module_args(spire_server))
    assert not result.get('failed'), result
    assert result['changed'] is False
    assert result['reachable'] is True and result['healthy'] is True and result['error'] is None
    assert result['version'].startswith('1.15.3')
    assert result['trust_domain'] == 'example.org'
    assert result['entry_count'] == 3 and result['agent_count'] == 1

    raw = spire_server.bundle()
    x509 = result['bundle']['x509_authorities']
    assert len(x509) == len(raw['x509_authorities']) == 1
    assert x509[0]['tainted'] is False
    # The expiry read from the ASN.1 matches the local authority's expiry and the cryptography package.
    active = result['local_authorities']['x509']['active']
    assert x509[0]['subject_key_id'] == active['authority_id']
    assert abs(x509[0]['not_after_unix'] - active['expires_at_unix']) <= 1
    from cryptography import x509 as cx509
    cert = cx509.load_der_x509_certificate(base64.b64decode(raw['x509_authorities'][0]['asn1']))
    assert x509[0]['not_after_unix'] == int(cert.not_valid_after_utc.timestamp())
    assert x509[0]['not_after'] == cert.not_valid_after_utc.strftime('%Y-%m-%dT%H:%M:%SZ')
    # ca_ttl is 24h in the lab.
    assert 23 * 3600 < x509[0]['not_after_unix'] - time.time() <= 24 * 3600 + 60

    jwt = result['bundle']['jwt_authorities']
    assert [a['key_id'] for a in jwt] == [a['key_id'] for a in raw['jwt_authorities']]
    assert result['local_authorities']['jwt']['active']['authority_id'] == jwt[0]['key_id']
    assert result['local_authorities']['x509']['prepared'] is None
    assert result['local_authorities']['x509']['old'] is None


def test_prepared_and_tainted_authorities_show(ansible, spire_server):
    spire_server.cli(['localauthority', 'x509', 'prepare'])
    result = ansible.module('spire_server_info', spire_server_module_args(spire_server))
    assert result['local_authorities']['x509']['prepared'] is not None
    assert len(result['bundle']['x509_authorities']) == 2
    prepared_id = result['local_authorities']['x509']['prepared']['authority_id']
    old_id = result['local_authorities']['x509']['active']['authority_id']
    spire_server.cli(['localauthority', 'x509', 'activate', '-authorityID', prepared_id])
    spire_server.cli(['localauthority', 'x509', 'taint', '-authorityID', old_id])
    result = ansible.module('spire_server_info', spire_server_module_args(spire_server))
    tainted = dict((a['subject_key_id'], a['tainted']) for a in result['bundle']['x509_authorities'])
    assert tainted == {old_id: True, prepared_id: False}
    assert result['local_authorities']['x509']['old']['authority_id'] == old_id


def test_stopped_server_is_reported_then_fails_on_request(ansible, spire_server):
    spire_server.stop()
    result = ansible.module('spire_server_info', spire_server_module_args(spire_server))
    assert not result.get('failed'), result
    assert result['reachable'] is False and result['healthy'] is False
    assert spire_server.socket_path in result['error']
    assert 'trust_domain' not in result

    args = dict(spire_server_module_args(spire_server), fail_on_unhealthy=True)
    result = ansible.module('spire_server_info', args)
    assert result['failed'] is True
    assert spire_server.socket_path in result['msg']


def test_bad_inputs(ansible, spire_server, tmp_path):
    result = ansible.module('spire_server_info', dict(spire_server_module_args(spire_server),
                                                      spire_server_path=str(tmp_path / 'no-such-binary')))
    assert result['failed'] is True and 'spire_server_path' in result['msg']
    result = ansible.module('spire_server_info', dict(spire_server_module_args(spire_server), timeout='soon'))
    assert result['failed'] is True and 'timeout' in result['msg']


def test_check_mode_and_env_fallback(ansible, spire_server):
    result = ansible.module('spire_server_info', {'spire_server_path': spire_server.binary}, check=True,
                            env={'SPIRE_SERVER_SOCKET': spire_server.socket_path})
    assert not result.get('failed'), result
    assert result['healthy'] is True and result['changed'] is False


def test_lab_listeners(spire_server):
    """The lab's health and Prometheus listeners answer (other roles' tests rely on them)."""
    assert http_get(spire_server.health_url + '/live')[0] == 200
    assert http_get(spire_server.health_url + '/ready')[0] == 200
    status, body = http_get(spire_server.metrics_url)
    assert status == 200 and b'spire_server' in body

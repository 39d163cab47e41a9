"""spire_posture_info against real spire-servers: the bundle a peer's real SPIRE bundle endpoint serves
(Content-Type application/json) is read and equals the stored one; an endpoint that answers with a web page is
reported as an error naming the endpoint and the type it sent, and one whose bundle holds a malformed key as an
error naming the endpoint and the key, never as an endpoint serving fewer keys."""

import datetime
import http.server
import json
import ssl
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.lab.spire import spire_server_module_args


def posture(ansible, server):
    params = dict(spire_server_module_args(server), config_path=server.config_path, fetch_timeout=5)
    result = ansible.module('spire_posture_info', params)
    assert not result.get('failed'), result
    assert 'error' not in result['posture'], result['posture']
    return result['posture']


def stored_keys(bundle):
    return sorted(['x509:' + a['asn1'] for a in bundle['x509_authorities']] +
                  ['jwt:' + a['key_id'] for a in bundle.get('jwt_authorities') or []])


def web_page_endpoint(directory):
    """An HTTPS server authenticated by a CA of its own, (url, the CA as PEM, stop): / answers a web page,
    /broken a SPIFFE bundle whose x509-svid key has no certificate."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'page.test CA')])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier('spiffe://page.test')]), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca_name).public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier('spiffe://page.test/spire/server')]),
                           critical=True)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = directory / 'page.crt', directory / 'page.key'
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == '/broken':
                kind, body = 'application/json', json.dumps({'keys': [{'use': 'x509-svid', 'kty': 'EC', 'x5c': []}]}).encode()
            else:
                kind, body = 'text/html; charset=utf-8', b'<html><body>sign in</body></html>'
            self.send_response(200)
            self.send_header('Content-Type', kind)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(('127.0.0.1', 0), Page)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_path), str(key_path))
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def stop():
        httpd.shutdown()
        httpd.server_close()
    return 'https://127.0.0.1:%d/' % httpd.server_address[1], ca.public_bytes(serialization.Encoding.PEM).decode(), stop


def test_served_bundles_read_from_real_endpoints(ansible, spire_server, spire_server_b, tmp_path):
    spire_server.set_federated_bundle(spire_server_b)
    spire_server.cli(['federation', 'create', '-trustDomain', spire_server_b.trust_domain, '-bundleEndpointURL',
                      spire_server_b.bundle_endpoint_url, '-bundleEndpointProfile', 'https_spiffe',
                      '-endpointSpiffeID', spire_server_b.server_id])
    url, ca_pem, stop = web_page_endpoint(tmp_path)
    try:
        # Two trust domains served by that one server, both authenticated by its CA.
        for domain, endpoint in (('page.test', url), ('broken.test', url + 'broken')):
            proc = spire_server.cli_raw(['bundle', 'set', '-format', 'pem', '-id', 'spiffe://' + domain], data=ca_pem,
                                        output_json=False)
            assert proc.returncode == 0, proc.stderr
            spire_server.cli(['federation', 'create', '-trustDomain', domain, '-bundleEndpointURL', endpoint,
                              '-bundleEndpointProfile', 'https_spiffe', '-endpointSpiffeID', 'spiffe://page.test/spire/server'])
        facts = posture(ansible, spire_server)
    finally:
        stop()
    rels = dict((rel['trust_domain'], rel) for rel in facts['federations'])
    assert set(rels) == {spire_server_b.trust_domain, 'page.test', 'broken.test'}, rels

    # A real SPIRE bundle endpoint: read, and the keys it serves are the ones stored.
    peer = rels[spire_server_b.trust_domain]
    assert 'served_error' not in peer, peer
    assert peer['served'] == peer['stored_keys'] == stored_keys(spire_server_b.bundle()), peer
    assert any(key.startswith('jwt:') for key in peer['served']) and any(key.startswith('x509:') for key in peer['served'])

    # A web page where the bundle should be: an error naming the endpoint and what it sent.
    page = rels['page.test']
    assert page['served'] is None, page
    assert page['served_error'] == 'bundle endpoint %s served text/html instead of JSON' % url, page

    # A bundle whose x509-svid key holds no certificate: an error naming the endpoint and the key.
    broken = rels['broken.test']
    assert broken['served'] is None, broken
    assert broken['served_error'] == ('bundle endpoint %sbroken keys[0] (x509-svid) must have exactly one certificate '
                                      'in x5c' % url), broken

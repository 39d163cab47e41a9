"""spire_authority against a real spire-server: full X.509 and JWT rotations (prepare -> activate -> taint ->
revoke, with wait), check mode, idempotent re-runs, steps out of order, unknown IDs, a stopped server."""

import os

import pytest

from tests.lab.spire import spire_server_module_args


def run(ansible, server, check=False, diff=False, **args):
    params = dict(spire_server_module_args(server))
    params.update(args)
    return ansible.module('spire_authority', params, check=check, diff=diff)


def local_state(server, kind):
    return server.cli(['localauthority', kind, 'show'])


def bundle_ids(server, kind):
    """{authority id: tainted} from `bundle show` (X.509 IDs read with the module's own DER reader would be
    circular, so X.509 authorities are matched through `localauthority show` IDs in the tests below)."""
    bundle = server.bundle()
    if kind == 'jwt':
        return dict((a['key_id'], a['tainted']) for a in bundle['jwt_authorities'])
    return [a['tainted'] for a in bundle['x509_authorities']]


def x509_ski(asn1_b64):
    """Subject Key ID of a bundle certificate, read with the cryptography package (independent of the module)."""
    import base64
    from cryptography import x509
    cert = x509.load_der_x509_certificate(base64.b64decode(asn1_b64))
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()


def x509_bundle(server):
    return dict((x509_ski(a['asn1']), a['tainted']) for a in server.bundle()['x509_authorities'])


def authorities(server, kind):
    return x509_bundle(server) if kind == 'x509' else bundle_ids(server, 'jwt')


@pytest.mark.parametrize('kind', ['x509', 'jwt'])
def test_full_rotation(ansible, spire_server, kind):
    first = local_state(spire_server, kind)['active']['authority_id']

    shown = run(ansible, spire_server, authority_type=kind, state='show')
    assert not shown.get('failed'), shown
    assert shown['changed'] is False and shown['authority_id'] == first
    assert shown['active']['authority_id'] == first and shown['active']['in_bundle'] is True
    assert shown['prepared'] is None and shown['old'] is None
    assert [a['authority_id'] for a in shown['bundle_authorities']] == [first]

    # prepare: check mode reports the step and prepares nothing
    check = run(ansible, spire_server, check=True, diff=True, authority_type=kind, state='prepared')
    assert check['changed'] is True and check['action'] == 'prepare', check
    assert check['diff']['after']['prepared'] == '(new authority)'
    assert 'prepared' not in local_state(spire_server, kind)
    assert list(authorities(spire_server, kind)) == [first]

    prepared = run(ansible, spire_server, diff=True, authority_type=kind, state='prepared', wait=True)
    assert prepared['changed'] is True and prepared['action'] == 'prepare', prepared
    new = prepared['authority_id']
    assert new and new != first
    assert local_state(spire_server, kind)['prepared']['authority_id'] == new
    assert set(authorities(spire_server, kind)) == {first, new}
    assert prepared['diff']['before']['prepared'] is None and prepared['diff']['after']['prepared'] == new
    assert prepared['prepared']['in_bundle'] is True

    again = run(ansible, spire_server, authority_type=kind, state='prepared', wait=True)
    assert again['changed'] is False and again['authority_id'] == new, again
    assert local_state(spire_server, kind)['prepared']['authority_id'] == new

    # taint before activation: refused, nothing changed
    early = run(ansible, spire_server, authority_type=kind, state='tainted', authority_id=new)
    assert early['failed'] is True and 'is the prepared %s authority' % kind in early['msg'], early
    assert not any(authorities(spire_server, kind).values())

    # activate
    check = run(ansible, spire_server, check=True, authority_type=kind, state='activated', authority_id=new)
    assert check['changed'] is True and check['action'] == 'activate'
    assert local_state(spire_server, kind)['active']['authority_id'] == first

    activated = run(ansible, spire_server, diff=True, authority_type=kind, state='activated', authority_id=new)
    assert activated['changed'] is True, activated
    state = local_state(spire_server, kind)
    assert state['active']['authority_id'] == new and state['old']['authority_id'] == first
    assert activated['diff']['before']['active'] == first and activated['diff']['after']['active'] == new
    assert activated['old']['authority_id'] == first

    for args in ({}, {'authority_id': new}):
        again = run(ansible, spire_server, authority_type=kind, state='activated', **args)
        assert again['changed'] is False and again['action'] is None, again
    assert local_state(spire_server, kind)['active']['authority_id'] == new

    # revoke before taint: refused
    early = run(ansible, spire_server, authority_type=kind, state='revoked')
    assert early['failed'] is True and 'is not tainted: taint it first' in early['msg'], early
    assert first in authorities(spire_server, kind)

    # taint the old one; the active one cannot be tainted
    wrong = run(ansible, spire_server, authority_type=kind, state='tainted', authority_id=new)
    assert wrong['failed'] is True and 'is the active %s authority' % kind in wrong['msg'], wrong

    check = run(ansible, spire_server, check=True, diff=True, authority_type=kind, state='tainted')
    assert check['changed'] is True and check['authority_id'] == first
    assert authorities(spire_server, kind)[first] is False
    assert '%s (tainted)' % first in check['diff']['after']['bundle']

    tainted = run(ansible, spire_server, authority_type=kind, state='tainted', wait=True)
    assert tainted['changed'] is True and tainted['authority_id'] == first, tainted
    assert authorities(spire_server, kind) == {first: True, new: False}
    assert tainted['old']['tainted'] is True

    again = run(ansible, spire_server, authority_type=kind, state='tainted', authority_id=first)
    assert again['changed'] is False and 'already tainted' in again['note'], again

    # revoke with wait: the old authority is gone from `bundle show`
    check = run(ansible, spire_server, check=True, authority_type=kind, state='revoked')
    assert check['changed'] is True and first in authorities(spire_server, kind)

    revoked = run(ansible, spire_server, diff=True, authority_type=kind, state='revoked', authority_id=first, wait=True)
    assert revoked['changed'] is True, revoked
    assert authorities(spire_server, kind) == {new: False}
    assert revoked['old']['in_bundle'] is False
    assert [a['authority_id'] for a in revoked['bundle_authorities']] == [new]
    assert first not in revoked['diff']['after']['bundle']

    again = run(ansible, spire_server, authority_type=kind, state='revoked', wait=True)
    assert again['changed'] is False and 'already revoked' in again['note'], again
    again = run(ansible, spire_server, authority_type=kind, state='tainted')
    assert again['changed'] is False


def test_bad_inputs_change_nothing(ansible, spire_server):
    before = local_state(spire_server, 'x509')
    cases = [
        ({'state': 'activated'}, 'no prepared x509 authority to activate'),
        ({'state': 'tainted'}, 'there is no old x509 authority to taint'),
        ({'state': 'activated', 'authority_id': '0123456789abcdef'}, 'authority_id 0123456789abcdef is neither the prepared'),
        ({'state': 'tainted', 'upstream_subject_key_id': 'abcdef'}, 'has no UpstreamAuthority'),
        ({'state': 'prepared', 'upstream_subject_key_id': 'abcdef'}, 'upstream_subject_key_id is used with'),
        ({'state': 'prepared', 'authority_id': 'abc'}, 'authority_id is not used with state=prepared'),
        ({'state': 'show', 'wait_timeout': 0}, 'wait_timeout'),
        ({'authority_type': 'rsa'}, 'authority_type'),
    ]
    # Each case fails without a change: all of them in one playbook run, each result asserted on its own.
    results, _output = ansible.modules([('spire_authority', dict(spire_server_module_args(spire_server), **args))
                                        for args, _needle in cases])
    assert len(results) == len(cases)
    for (args, needle), result in zip(cases, results):
        assert result['failed'] is True and needle in result['msg'], (args, result)

    assert local_state(spire_server, 'x509') == before
    assert len(spire_server.bundle()['x509_authorities']) == 1


def test_unreachable_socket(ansible, spire_server, tmp_path):
    spire_server.stop()
    missing = os.path.join(str(tmp_path), 'nope', 'api.sock')
    (result, absent), _output = ansible.modules([
        ('spire_authority', dict(spire_server_module_args(spire_server), state='prepared')),
        ('spire_authority', {'socket_path': missing, 'spire_server_path': spire_server.binary})])
    assert result['failed'] is True
    assert 'socket_path' in result['msg'] and spire_server.socket_path in result['msg'], result
    assert absent['failed'] is True and missing in absent['msg']

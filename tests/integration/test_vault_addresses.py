"""A server address that is not the API's, and answers that are not the API's, against a real OpenBao with its UI on.

The UI answers every path under /ui/ with its web page (HTTP 200); /v1/ makes every call land on a wrong path whose
error reads like the node's state. Modules refuse such an address before any call, naming the option; the
connection layer refuses such an answer, naming the node and the call; transport errors say what is wrong."""

import os
import sys

import pytest

from tests.lab.common import COLLECTIONS_PATH
from tests.lab.openbao import BaoServer

sys.path.insert(0, COLLECTIONS_PATH)

from ansible_collections.trustroot.ops.plugins.module_utils._vault import VaultError, VaultNode  # noqa: E402

NO_PATH = 'must be the server address without a path'


@pytest.fixture
def bao_ui(tmp_path):
    """An uninitialized single-node OpenBao serving its UI."""
    server = BaoServer(str(tmp_path), 'ui', ui=True).start()
    yield server
    server.stop()


def test_a_ui_or_v1_address_is_refused_before_any_call(ansible, bao_ui, tmp_path):
    material = str(tmp_path / 'material.json')
    ui, v1 = bao_ui.url + '/ui/', bao_ui.url + '/v1/'
    results, _output = ansible.modules([
        ('vault_init', {'url': ui, 'output_path': material, 'secret_shares': 1, 'secret_threshold': 1}),
        ('vault_unseal', {'url': ui, 'keys': ['a2V5']}),
        ('vault_status_info', {'url': ui}),
        ('vault_raft', {'url': ui, 'token': 'x', 'state': 'removed', 'server_id': 'node2'}),
        ('vault_keyring_rotate', {'url': ui, 'token': 'x'}),
        ('vault_status_info', {'url': v1}),
        ('vault_status_info', {'nodes': [bao_ui.url, v1]}),
        ('vault_status_info', {'url': '127.0.0.1:%d' % bao_ui.api_port}),
        ('vault_rekey', {'url': ui, 'keys': ['a2V5'], 'output_path': str(tmp_path / 'rekey.json')}),
        ('vault_root_token', {'url': ui, 'keys': ['a2V5'], 'output_path': str(tmp_path / 'root.json')}),
    ])
    for result in results[:6] + results[8:]:
        assert result.get('failed') and result['changed'] is False, result
        assert result['msg'].startswith('url %s' % NO_PATH), result['msg']
    assert "(got path '/ui/'" in results[0]['msg'] and "(got path '/v1/'" in results[5]['msg']
    assert results[6]['failed'] and results[6]['msg'].startswith('nodes[1] %s' % NO_PATH)
    assert results[7]['failed'] and results[7]['msg'].startswith('url must start with http:// or https://')
    # Nothing was sent: the node is still uninitialized and no material file exists.
    status = VaultNode(bao_ui.url).seal_status()
    assert status['initialized'] is False and not os.path.exists(material)


def test_the_ui_page_is_not_read_as_an_answer(bao_ui):
    # The connection layer on its own, given the UI's address: the page (HTTP 200) is refused, naming the call.
    node = VaultNode(bao_ui.url + '/ui')
    with pytest.raises(VaultError) as err:
        node.seal_status()
    assert str(err.value).startswith('%s/ui: GET sys/seal-status answered text/html instead of JSON: is url the API '
                                     'address (scheme://host:port), not a page of the UI?' % bao_ui.url)
    with pytest.raises(VaultError) as err:
        node.health()
    assert 'GET sys/health answered' in str(err.value)


def test_transport_errors_say_what_is_wrong(ansible, bao_ui, tmp_path):
    https = bao_ui.url.replace('http://', 'https://')
    results, _output = ansible.modules([
        ('vault_status_info', {'url': https}),
        ('vault_status_info', {'url': 'http://127.0.0.1:1'}),
    ])
    tls, refused = results[0]['nodes'][0], results[1]['nodes'][0]
    assert tls['reachable'] is False and 'https:// against a listener that speaks plain HTTP' in tls['error'], tls
    assert refused['reachable'] is False and 'connection refused' in refused['error'], refused

"""Role install_artifact on a real lab host: an archive downloaded from an internal URL (served by this
machine on the lab bridge) and a bare binary copied from the controller, both checked against their
sha256; a wrong checksum fails naming the field and installs nothing."""

import functools
import hashlib
import http.server
import io
import json
import tarfile
import threading

import pytest

from tests.lab import hosts as labhosts
from tests.lab.stack import Stack, total

GROUPS = {'artifact_hosts': ['node1']}


def make_tarball(path, version):
    script = ('#!/bin/sh\necho hello %s\n' % version).encode()
    with tarfile.open(path, 'w:gz') as tar:
        info = tarfile.TarInfo('hello-%s/bin/hello' % version)
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, io.BytesIO(script))


def sha256(path):
    with open(path, 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture(scope='module')
def lab_with_server(tmp_path_factory):
    served = tmp_path_factory.mktemp('served')
    make_tarball(str(served / 'hello-1.0.tar.gz'), '1.0')
    stack = Stack.up('it-artifact', groups=GROUPS)
    gateway = stack.lab.state['bridge']['address']
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer((gateway, 0), handler)  # the lab bridge only
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stack, 'http://%s:%d' % (gateway, server.server_address[1]), served
    finally:
        server.shutdown()
        server.server_close()
        labhosts.destroy('it-artifact')


def run_role(stack, tmp_path, role_vars, check=False):
    play = [{'name': 'install', 'hosts': 'artifact_hosts', 'gather_facts': False, 'tasks': [
        {'name': 'install', 'ansible.builtin.include_role': {'name': 'trustroot.ops.install_artifact'},
         'vars': role_vars}]}]
    path = tmp_path / 'play.yml'
    path.write_text(json.dumps(play))
    return stack.run(str(path), ['--check'] if check else [])


def test_archive_from_a_url(lab_with_server, tmp_path):
    stack, url, served = lab_with_server
    role_vars = {'install_artifact_name': 'hello', 'install_artifact_version': '1.0',
                 'install_artifact_url': url + '/hello-1.0.tar.gz',
                 'install_artifact_sha256': sha256(str(served / 'hello-1.0.tar.gz')),
                 'install_artifact_binaries': {'hello': 'hello-1.0/bin/hello'}}
    check = run_role(stack, tmp_path, role_vars, check=True)
    assert check.returncode == 0, check.stdout[-3000:]
    assert total(check.stdout) > 0
    assert stack.lab.exec('node1', ['test', '-e', '/usr/local/bin/hello']).returncode != 0
    first = run_role(stack, tmp_path, role_vars)
    assert first.returncode == 0, first.stdout[-3000:]
    assert stack.lab.exec('node1', ['hello'], check=True).stdout.strip() == 'hello 1.0'
    assert stack.lab.exec('node1', ['readlink', '/usr/local/bin/hello'], check=True).stdout.strip() == \
        '/opt/trustroot/hello/1.0/hello-1.0/bin/hello'
    again = run_role(stack, tmp_path, role_vars)
    assert again.returncode == 0 and total(again.stdout) == 0, again.stdout[-3000:]


def test_wrong_checksum_of_a_controller_file_installs_nothing(lab_with_server, tmp_path):
    stack, _url, _served = lab_with_server
    binary = tmp_path / 'tool'
    binary.write_text('#!/bin/sh\necho tool\n')
    role_vars = {'install_artifact_name': 'tool', 'install_artifact_version': '2.0',
                 'install_artifact_path': str(binary), 'install_artifact_sha256': '0' * 64,
                 'install_artifact_binaries': {'tool': 'tool'}}
    proc = run_role(stack, tmp_path, role_vars)
    assert proc.returncode != 0
    assert 'install_artifact_path: %s has sha256 %s, not install_artifact_sha256' % (binary, sha256(str(binary))) \
        in proc.stdout
    assert stack.lab.exec('node1', ['test', '-e', '/opt/trustroot/tool']).returncode != 0
    role_vars['install_artifact_sha256'] = sha256(str(binary))
    proc = run_role(stack, tmp_path, role_vars)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert stack.lab.exec('node1', ['tool'], check=True).stdout.strip() == 'tool'


def test_url_and_path_together_are_refused(lab_with_server, tmp_path):
    stack, url, _served = lab_with_server
    proc = run_role(stack, tmp_path, {'install_artifact_name': 'x', 'install_artifact_version': '1',
                                      'install_artifact_path': '/etc/hostname', 'install_artifact_url': url + '/x',
                                      'install_artifact_sha256': 'a' * 64, 'install_artifact_binaries': {'x': 'x'}})
    assert proc.returncode != 0
    assert 'exactly one of install_artifact_path and install_artifact_url' in proc.stdout

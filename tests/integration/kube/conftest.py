"""The Kubernetes API server the tests in this directory share: one per xdist worker (each worker has a network
namespace of its own), started once (~5 s) and stopped by PID at the end. Tests keep apart by namespace."""

import os

import pytest

from tests.lab.common import ROOT
from tests.lab.kube import KubeCluster


@pytest.fixture(scope='session')
def kube_cluster(tmp_path_factory):
    for name in ('kube-apiserver', 'etcd'):
        if not os.path.exists(os.path.join(ROOT, '.cache', 'bin', name)):
            pytest.fail('%s missing in .cache/bin: run scripts/bootstrap.sh (make test does)' % name)
    cluster = KubeCluster(str(tmp_path_factory.mktemp('kube'))).start()
    yield cluster
    cluster.stop()

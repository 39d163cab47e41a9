# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Where the Kubernetes API server is (see module_utils/_kubernetes.py); kubernetes.core's option names.
    DOCUMENTATION = r'''
options:
  kubeconfig:
    description:
      - Path of the kubeconfig file on the host that runs the module. Without it, C(~/.kube/config), or the pod's
        service account when the module runs inside a cluster.
      - Falls back to the E(K8S_AUTH_KUBECONFIG) environment variable.
    type: path
  context:
    description:
      - Context of the kubeconfig to use; its current context when not given.
      - Falls back to the E(K8S_AUTH_CONTEXT) environment variable.
    type: str
requirements:
  - kubernetes (Python client library) on the host that runs the module
'''

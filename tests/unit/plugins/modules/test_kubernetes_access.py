"""kubernetes_access through main(): input errors name the field before any connection; API failures end the
module with the server's message and whether something was already changed."""
from ansible_collections.trustroot.ops.plugins.module_utils._kubernetes import KubernetesError
from ansible_collections.trustroot.ops.plugins.modules import kubernetes_access

BASE = {'namespace': 'spire', 'service_account': 'spire-server', 'kubeconfig': '/nonexistent/kubeconfig'}


def test_a_bad_rule_fails_naming_it_before_any_connection(run_main):
    # The kubeconfig does not exist: reading it first would fail with a file error instead.
    ended = run_main(kubernetes_access.main, dict(BASE, cluster_rules=[{'resources': ['pods']}]))
    assert ended.failed
    assert 'cluster_rules[0]' in ended.result['msg']
    assert ended.result['changed'] is False


def test_an_api_failure_keeps_the_changed_flag(run_main, monkeypatch):
    def ensure_access(params, check_mode):
        error = KubernetesError('https://10.0.0.1:6443: create ClusterRole spire-server: HTTP 403 Forbidden')
        error.changed = True
        raise error
    monkeypatch.setattr(kubernetes_access, 'ensure_access', ensure_access)
    ended = run_main(kubernetes_access.main, BASE)
    assert ended.failed and ended.result['changed'] is True
    assert ended.result['msg'].endswith('HTTP 403 Forbidden')


def test_a_file_error_names_the_file(run_main, monkeypatch):
    def ensure_access(params, check_mode):
        open('/nonexistent/dir/token')
    monkeypatch.setattr(kubernetes_access, 'ensure_access', ensure_access)
    ended = run_main(kubernetes_access.main, BASE)
    assert ended.failed and ended.result['msg'] == '/nonexistent/dir/token: No such file or directory'


def test_the_result_is_what_the_plan_returns(run_main, monkeypatch):
    seen = {}

    def ensure_access(params, check_mode):
        seen['check_mode'] = check_mode
        return {'changed': False, 'token_renewed': False}
    monkeypatch.setattr(kubernetes_access, 'ensure_access', ensure_access)
    ended = run_main(kubernetes_access.main, BASE, check_mode=True)
    assert not ended.failed and ended.result == {'changed': False, 'token_renewed': False}
    assert seen == {'check_mode': True}


def test_without_the_kubernetes_library_it_fails_saying_so_with_the_import_error(run_main, monkeypatch):
    from ansible_collections.trustroot.ops.plugins.module_utils import _kubernetes
    monkeypatch.setattr(_kubernetes, 'HAS_KUBERNETES', False)
    monkeypatch.setattr(_kubernetes, 'KUBERNETES_IMPORT_ERROR', 'ModuleNotFoundError: kubernetes')
    ended = run_main(kubernetes_access.main, BASE)
    assert ended.failed and 'kubernetes' in ended.result['msg']
    assert ended.result['exception'] == 'ModuleNotFoundError: kubernetes'

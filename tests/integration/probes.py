"""Module tasks and the probes that read state between them, run as the tasks of ONE ansible-playbook run: a
probe records what a test would otherwise read between two runs (a file, a server's answer) at that point of the
playbook, so that several dependent steps cost one playbook start."""

import json
import os


def play(ansible, tmp_path, tasks, verbosity=0, env=None):
    """``tasks`` ((module FQCN, args, task options) each) as the tasks of ONE ansible-playbook run, each registered
    and ignore_errors: their results in order, each with '_stdout' (the whole run's output)."""
    index = len(ansible.runs)
    results_path = str(tmp_path / ('results-%d.json' % index))
    body = [dict(options, name='task %d' % i, register='r%d' % i, ignore_errors=True, **{module: args})
            for i, (module, args, options) in enumerate(tasks)]
    body.append({'name': 'save results', 'check_mode': False, 'diff': False, 'ansible.builtin.copy': {
        'content': '{{ [%s] | to_json }}' % ', '.join('r%d' % i for i in range(len(tasks))),
        'dest': results_path, 'mode': '0600'}})
    play_path = str(tmp_path / ('play-%d.yml' % index))
    with open(play_path, 'w') as handle:
        json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': body}], handle)
    proc = ansible.playbook(play_path, verbosity=verbosity, env=env)
    assert os.path.exists(results_path), proc.stdout + proc.stderr
    with open(results_path) as handle:
        results = json.load(handle)
    os.remove(results_path)
    assert len(results) == len(tasks)
    for result in results:
        result['_stdout'] = proc.stdout
    return results


def task(module, args, **options):
    """A trustroot.ops module task (options: check_mode, diff)."""
    return ('trustroot.ops.%s' % module, args, options)


def stat_probe(path):
    """Reads ``path`` at that point of the run (exists, inode, mtime, sha256 checksum): see stat_of()."""
    return ('ansible.builtin.stat', {'path': path, 'checksum_algorithm': 'sha256'}, {})


def stat_of(probe):
    assert 'stat' in probe, probe.get('msg')
    return probe['stat']


def exists(probe):
    return stat_of(probe)['exists']


def http_probe(url, token=None, method='GET', body=None, status_code=(200,)):
    """A request at that point of the run (no_log: the token stays out of the output): see answer_of()."""
    args = {'url': url, 'method': method, 'status_code': list(status_code), 'return_content': True}
    if token:
        args['headers'] = {'X-Vault-Token': token}
    if body is not None:
        args.update(body_format='json', body=body)
    return ('ansible.builtin.uri', args, {'no_log': True})


def answer_of(probe):
    """(HTTP status, parsed JSON body) of an http_probe."""
    assert probe.get('status'), probe.get('msg')
    return probe['status'], probe.get('json')


def command_probe(argv):
    """Runs ``argv`` at that point of the run (nothing changed, no shell): see json_of()."""
    return ('ansible.builtin.command', {'argv': list(argv)}, {'changed_when': False})


def json_of(probe):
    """The parsed standard output of a command_probe that exited 0."""
    assert probe.get('rc') == 0, (probe.get('rc'), probe.get('stderr'), probe.get('msg'))
    return json.loads(probe['stdout'])

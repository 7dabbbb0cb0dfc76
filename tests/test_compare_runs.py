"""train/compare_runs.py: two runs' summaries side by side."""
import json
import os
import subprocess
import sys

from support import REPO

SCRIPT = os.path.join(REPO, 'train', 'compare_runs.py')


def _run_folder(path, summary, args):
    os.makedirs(path)
    with open(os.path.join(path, 'summary.json'), 'w') as f:
        json.dump(summary, f)
    with open(os.path.join(path, 'args.json'), 'w') as f:
        json.dump({'args': args}, f)
    return path


def test_side_by_side_and_a_warning_for_other_data(tmp_path):
    common = {'arch': 'resnet20-paper', 'evaluated_on': 'test',
              'iterations': 60, 'epochs': 6.0, 'status': 'finished'}
    bp = _run_folder(str(tmp_path / 'sample-bp'), dict(
        common, method='bp', test_error=0.84, tta_error=None,
        data_sha256='be9bc96c72afd66b'), {'seed': 0})
    vfbn = _run_folder(str(tmp_path / 'sample-vfbn'), dict(
        common, method='vfbn', alpha_gs=1e-3, test_error=0.7733,
        tta_error=0.76, synth_relerr=1.0412, data_sha256='be9bc96c72afd66b'),
        {'seed': 1})
    r = subprocess.run([sys.executable, SCRIPT, bp, vfbn],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = {line[:24].strip(): line[24:].split()
            for line in r.stdout.splitlines()}
    assert rows['run'] == ['sample-bp', 'sample-vfbn']
    assert rows['method'] == ['bp', 'vfbn']
    assert rows['alpha_gs'] == ['-', '0.001']
    assert rows['seed'] == ['0', '1']
    assert rows['error (%), centre view'] == ['84.00', '77.33']
    assert rows['error (%), 36-view TTA'] == ['-', '76.00']
    assert rows['synth relerr'] == ['-', '1.041']
    assert 'warning' not in r.stdout
    other = _run_folder(str(tmp_path / 'mini-bp'), dict(
        common, method='bp', test_error=0.4, data_sha256='5e2e1156f7be'),
        {'seed': 0})
    r = subprocess.run([sys.executable, SCRIPT, bp, other],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert r.stdout.splitlines()[-1] == (
        'warning: the runs have different data sets (data_sha256): their '
        'errors do not compare')
    r = subprocess.run([sys.executable, SCRIPT, bp, str(tmp_path / 'none')],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.startswith('compare_runs.py: error: ')
    assert len(r.stderr.splitlines()) == 1


def test_the_last_rows_say_what_made_each_run(tmp_path):
    machine = {'cpu': 'AMD EPYC', 'blas': [
        {'internal_api': 'openblas', 'architecture': 'Haswell'}]}
    sessions = [{'code_version': 'git abc1234 (chainer_vfbn 0.1.0)'},
                {'code_version': 'git def5678-dirty (chainer_vfbn 0.1.0)',
                 'diff_sha256': '0123456789abcdef' * 4}]
    a = _run_folder(str(tmp_path / 'a'), {'method': 'bp'}, {'seed': 0})
    with open(os.path.join(a, 'args.json'), 'w') as f:
        json.dump({'args': {'seed': 0}, 'code_version': 'git abc1234 '
                   '(chainer_vfbn 0.1.0)', 'code_versions': sessions,
                   'environment': {'machine': machine}}, f)
    b = _run_folder(str(tmp_path / 'b'), {
        'method': 'bp', 'code_version': 'git abc1234 (chainer_vfbn 0.1.0)'},
        {'seed': 0})
    r = subprocess.run([sys.executable, SCRIPT, a, b],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = {line[:24].strip(): line[24:] for line in r.stdout.splitlines()}
    assert lines['code'].split() == [
        'git', 'abc1234', '(chainer_vfbn', '0.1.0)', '+', 'git',
        'def5678-dirty', '(chainer_vfbn', '0.1.0)', 'diff', '0123456789ab',
        'git', 'abc1234', '(chainer_vfbn', '0.1.0)']
    assert lines['CPU'].split() == ['AMD', 'EPYC', '-']
    assert lines['BLAS kernel'].split() == ['openblas', 'Haswell', '-']

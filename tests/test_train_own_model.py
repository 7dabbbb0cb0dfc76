"""train/train_own_model.py: a user's own model through the public API."""
import ast
import json
import os
import subprocess
import sys

from support import REPO

SCRIPT = os.path.join(REPO, 'train', 'train_own_model.py')


def test_uses_only_the_public_api():
    with open(SCRIPT) as f:
        source = f.read()
    tree = ast.parse(source)
    imported = [n.module for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
                 for a in n.names]
    assert not [m for m in imported if m.startswith('chainer_vfbn.models')]
    assert len(source.splitlines()) <= 105


def test_trains_and_records_like_train_cifar(tmp_path):
    out = str(tmp_path / 'run')
    r = subprocess.run(
        [sys.executable, SCRIPT, '--method', 'vfbn-linear', '--iterations',
         '2', '--batchsize', '10', '--out', out, '--no-progress'],
        capture_output=True, text=True, env=dict(os.environ,
                                                 OMP_NUM_THREADS='1'))
    assert r.returncode == 0, r.stderr
    with open(os.path.join(out, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['method'] == 'vfbn-linear' and summary['iterations'] == 2
    assert summary['split_at'] == [1] and summary['alpha_gs'] == 1e-3
    assert -1 <= summary['synth_cos'] <= 1
    for name in ('args.json', 'log', 'loss.png', 'snapshot_iter_2'):
        assert os.path.isfile(os.path.join(out, name)), name


def test_a_bad_split_is_one_line(tmp_path):
    r = subprocess.run(
        [sys.executable, SCRIPT, '--split-at', '4', '--out',
         str(tmp_path / 'x')], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr == ('train_own_model.py: error: cannot split Sequential '
                        'after 4, its last layer: nothing would be above the '
                        'cut\n')

"""A user's own model through the one run command: train_cifar.py --model
(train/train_own_model.py is such a model file), synchronous and decoupled,
with the ResNet's folder, records and resume."""
import ast
import json
import os
import subprocess
import sys

import _mpi
from support import REPO
from support import run_cli
from support import SCRIPT as TRAIN_CIFAR

SCRIPT = os.path.join(REPO, 'train', 'train_own_model.py')
MODEL = SCRIPT + ':vgg'


def own(args, **kwargs):
    """Run train_own_model.py with ``args`` (one BLAS thread)."""
    return subprocess.run([sys.executable, SCRIPT] + list(args),
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS='1'), **kwargs)


def read(out, name):
    with open(os.path.join(out, name)) as f:
        return json.load(f)


def test_uses_only_the_public_api():
    with open(SCRIPT) as f:
        source = f.read()
    tree = ast.parse(source)
    imported = [n.module for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
                 for a in n.names]
    assert not [m for m in imported if m.startswith('chainer_vfbn.')]
    assert len(source.splitlines()) <= 90


def test_help_says_where_the_network_is_and_each_default():
    r = own(['--help'])
    assert r.returncode == 0, r.stderr
    text = ' '.join(r.stdout.split())
    assert 'Train vgg() in %s' % SCRIPT in text
    # The model file's own defaults, not the ResNet recipe's.
    for default in ('(default: sample)', '(default: 64)', '(default: 5)',
                    '(default: 0.05)', '(default: result/own-model)',
                    '(default: 1)', 'pad-crop-flip (default: standard)'):
        assert default in text, default
    assert 'downloaded (about 170 MB) if not found' in text
    assert 'bundled with the package (offline)' in text


def test_trains_records_and_resumes_like_train_cifar(tmp_path):
    out = str(tmp_path / 'run')
    r = own(['--method', 'vfbn-linear', '--iterations', '2', '--batchsize',
             '10', '--out', out, '--no-progress'])
    assert r.returncode == 0, r.stderr
    summary = read(out, 'summary.json')
    assert summary['method'] == 'vfbn-linear' and summary['iterations'] == 2
    assert summary['arch'] == 'vgg-own' and summary['split_at'] == [1]
    assert summary['alpha_gs'] == 1e-3
    assert read(out, 'args.json')['args']['alpha_gs'] == 1e-3
    assert -1 <= summary['synth_cos'] <= 1
    for name in ('args.json', 'log', 'loss.png', 'snapshot_iter_2'):
        assert os.path.isfile(os.path.join(out, name)), name
    # The same command, longer, resumes; another option is refused.
    r = own(['--method', 'vfbn-linear', '--iterations', '3', '--batchsize',
             '10', '--out', out, '--no-progress'])
    assert r.returncode == 0, r.stderr
    assert 'resumed from %s at iteration 2' % os.path.join(
        out, 'snapshot_iter_2') in r.stdout
    assert read(out, 'summary.json')['iterations'] == 3
    r = own(['--method', 'vfbn-linear', '--iterations', '4', '--batchsize',
             '10', '--out', out, '--learnrate', '0.1'])
    assert r.returncode == 2
    assert '--learnrate 0.1 (was 0.05)' in r.stderr


def test_a_bad_split_and_a_bad_model_are_one_line(tmp_path):
    r = own(['--split-at', '4', '--out', str(tmp_path / 'x')])
    assert r.returncode == 2
    assert r.stderr == ('train_cifar.py: error: cannot split Sequential '
                        'after 4, its last layer: nothing would be above the '
                        'cut\n')
    r = run_cli(['--model', SCRIPT + ':nope'], timeout=60)
    assert r.returncode == 2
    assert r.stderr == ('train_cifar.py: error: --model %s:nope: %s has no '
                        "callable 'nope'\n" % (SCRIPT, SCRIPT))
    r = run_cli(['--model', 'no_such_module_here:f'], timeout=60)
    assert r.returncode == 2 and r.stderr.count('\n') == 1
    assert r.stderr.startswith('train_cifar.py: error: --model: cannot '
                               'import no_such_module_here')


def test_a_module_of_the_path_with_its_own_kind(tmp_path):
    """An importable module (on PYTHONPATH) that also registers a
    synthesizer kind: the kind is a --method of the run."""
    (tmp_path / 'mymodels.py').write_text(
        'import chainer, chainer.functions as F, chainer.links as L\n'
        'import chainer_vfbn\n'
        'from chainer_vfbn.synthesizers import registry\n'
        "chainer_vfbn.register_synthesizer('zero', chainer_vfbn.Kind(\n"
        '    lambda h_shape, n_class, n_hidden, loss_func:\n'
        "        registry.build_synthesizer('dni-linear', h_shape, n_class),\n"
        "    alpha_gs=1e-6, description='a DNI, under another name'))\n"
        'def small():\n'
        '    return chainer.Sequential(\n'
        '        L.Convolution2D(None, 8, 3, stride=2), F.relu,\n'
        '        lambda h: F.average(h, axis=(2, 3)), L.Linear(None, 10))\n')
    out = str(tmp_path / 'run')
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=str(tmp_path) + os.pathsep + REPO)
    r = subprocess.run(
        [sys.executable, TRAIN_CIFAR, '--model', 'mymodels:small',
         '--method', 'zero', '--split-at', '1', '--dataset', 'sample',
         '--iterations', '2', '--batchsize', '10', '--no-progress',
         '--tta-interval', '0', '--out', out],
        capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    summary = read(out, 'summary.json')
    assert summary['method'] == 'zero' and summary['alpha_gs'] == 1e-6
    assert summary['arch'] == 'small' and summary['split_at'] == [1]


def test_decoupled_over_two_ranks_like_the_resnet(tmp_path):
    """The model file's network, one MPI rank per module, on the sample:
    the decoupled runner's folder, records and resume."""
    _mpi.require_mpi()
    out = str(tmp_path / 'decoupled')

    def launch(iterations):
        return subprocess.run(
            _mpi.MPIEXEC + ['-n', '2', sys.executable, TRAIN_CIFAR,
                            '--model', MODEL, '--decoupled', '--method',
                            'vfbn-linear', '--iterations', str(iterations),
                            '--batchsize', '10', '--no-progress',
                            '--test-batchsize', '150', '--max-staleness',
                            '1', '--out', out],
            capture_output=True, text=True, env=_mpi.env(), timeout=300)
    r = launch(2)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = read(out, 'summary.json')
    assert summary['decoupled'] is True and summary['ranks'] == 2
    assert summary['arch'] == 'vgg-own' and summary['split_at'] == [1]
    assert summary['alpha_gs'] == 1e-3 and summary['iterations'] == 2
    assert read(out, 'args.json')['args']['model'] == MODEL
    assert os.path.isfile(os.path.join(out, 'snapshot_iter_2.json'))
    r = launch(3)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'resumed from' in r.stdout and 'at iteration 2' in r.stdout
    assert read(out, 'summary.json')['iterations'] == 3

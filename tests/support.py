"""Paths, data and helpers that the tests share (not a test module, not a
fixture): no test module imports another.

Imported as ``import support`` (``pytest.ini`` puts ``tests/`` on the path,
and a test run as ``__main__``, an MPI worker, finds its own folder first).
Importing it loads no NumPy: ``conftest.py`` sets the BLAS thread count
before NumPy loads.
"""
import importlib.util
import os
import shutil
import subprocess
import sys

import chainer_vfbn  # NOQA  (its _compat runs before Chainer is imported)
import chainer
import numpy

# The checkout the tests belong to.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The bundled CIFAR-10 sample, package data of chainer_vfbn.datasets.
SAMPLE = os.path.join(REPO, 'chainer_vfbn', 'datasets', 'sample',
                      'cifar-10-python.tar.gz')

# The real CIFAR-10 subset: $CHAINER_VFBN_MINI (the archive's path) where set,
# e.g. on a lent GPU machine, else ../shared/data/cifar-10-mini.
MINI_ARCHIVE = os.environ.get('CHAINER_VFBN_MINI') or os.path.join(
    os.path.dirname(REPO), 'shared', 'data', 'cifar-10-mini',
    'cifar-10-python.tar.gz')

# The toy run that the decoupled tests share, so that the MPI ranks
# (test_decoupled.py) and the threads over the loopback transport
# (test_decoupled_loopback.py) train the same thing: 20 random images in
# batches of 8 (2.5 batches per epoch: the runs cross epoch boundaries).
ARCH = 'resnet8-paper'
N_DATA, BATCH = 20, 8
LR, ALPHA_GS = 0.05, 1e-3

SCRIPT = os.path.join(REPO, 'train', 'train_cifar.py')
# A tiny, fast configuration: 500 sample images, batch 50 = 10 iterations
# per epoch; no 36-view TTA except where a test asks for it.
TINY = ['--dataset', 'sample', '--arch', 'resnet8-paper', '--batchsize', '50',
        '--learnrate', '0.05', '--lr-step', '100', '--device', '@numpy',
        '--no-progress', '--tta-interval', '0', '--test-batchsize', '150']


def run_cli(args, timeout=300, **kwargs):
    """Run train_cifar.py with ``args`` (one BLAS thread); its result."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, SCRIPT] + list(args), env=env,
                          capture_output=True, text=True, timeout=timeout,
                          **kwargs)


def load_script(path=SCRIPT, name='train_cifar_cli'):
    """A script of ``train/`` loaded by its path, as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _FakeOptimizer(object):
    lr = 0.1


class FakeWorker(object):
    """What a decoupled rank's snapshot (``RankState``) saves of a worker:
    its ``serialize`` and its optimizer's ``lr``."""
    optimizer = _FakeOptimizer()

    def serialize(self, serializer):
        pass


class FakeIterator(object):
    """An iterator with nothing to save."""

    def serialize(self, serializer):
        pass


def git_checkout(path, dirty=False):
    """A one-commit git checkout at ``path`` (a stand-in for the package's
    own, so that a test does not depend on the state of this one); with
    ``dirty``, a tracked file changed since. Returns its path."""
    path = str(path)
    os.makedirs(path)
    env = dict(os.environ, GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@t',
               GIT_COMMITTER_NAME='t', GIT_COMMITTER_EMAIL='t@t')

    def git(*args):
        subprocess.run(['git'] + list(args), cwd=path, env=env, check=True,
                       capture_output=True)
    git('init', '-q')
    with open(os.path.join(path, 'code.py'), 'w') as f:
        f.write('x = 1\n')
    git('add', 'code.py')
    git('commit', '-q', '-m', 'first')
    if dirty:
        with open(os.path.join(path, 'code.py'), 'w') as f:
            f.write('x = 2\n')
    return path


def archive_with_label_changed(path, index=0):
    """Write the bundled sample to ``path`` with the label of the training
    image ``index`` changed: another data set to its content hash."""
    # Imported here: importing support loads no NumPy (see above).
    from chainer_vfbn.datasets import cifar10
    from chainer_vfbn.datasets import subset
    raw = cifar10.read_raw(SAMPLE, with_meta=True)
    members = []
    for name, batch in raw.items():
        batch = {k.decode() if isinstance(k, bytes) else k: v
                 for k, v in batch.items()}
        if name == 'data_batch_1':
            labels = list(batch['labels'])
            labels[index] = (labels[index] + 1) % 10
            batch['labels'] = labels
        members.append((name, subset.py2_pickle(batch)))
    subset.write_archive(members, path)
    return path


def use_as_mini(monkeypatch, tmp_path):
    """A ``--data-dir`` that passes reproduce.py's checks of the mini
    schedule, for tests whose fake runs read no data: the bundled sample,
    taken here for the mini set (its content hash), and a clean stand-in
    checkout (:func:`git_checkout`) as the package's. Returns the folder."""
    from chainer_vfbn.datasets import cifar10
    from chainer_vfbn.datasets import subset
    from chainer_vfbn.runs import provenance
    folder = os.path.join(str(tmp_path), 'mini-data')
    os.makedirs(folder)
    shutil.copy(SAMPLE, os.path.join(folder, 'cifar-10-python.tar.gz'))
    monkeypatch.setattr(subset, 'MINI_SHA256', subset.content_hash(
        *cifar10.read_cifar10(SAMPLE)))
    monkeypatch.setattr(provenance, 'REPO', git_checkout(
        os.path.join(str(tmp_path), 'checkout')))
    return folder


class OneBatch(chainer.dataset.Iterator):
    """Yields the same batch forever (a unit test's iterator)."""

    def __init__(self, x, t):
        self.examples = list(zip(x, t))
        self.epoch, self.is_new_epoch, self.epoch_detail = 0, False, 0.

    def __next__(self):
        return self.examples


def update(updater):
    """One update; returns the reported observation as floats."""
    observation = {}
    with chainer.Reporter().scope(observation):
        updater.update()
    return {k: float(chainer.as_array(v)) for k, v in observation.items()}


def optimizer_states(updater):
    """Every optimizer's step count and per-parameter state, by name."""
    out = {}
    for name, opt in updater.get_all_optimizers().items():
        out[name + '/t'] = numpy.array(opt.t)
        for pname, p in opt.target.namedparams():
            for key, value in p.update_rule.state.items():
                out['%s%s/%s' % (name, pname, key)] = value.copy()
    return out

"""The mini set's data command and content hash (chainer_vfbn.datasets.subset,
data/make_mini.py)."""
import hashlib
import os
import pickle
import subprocess
import sys
import tarfile

import numpy
import pytest

from chainer_vfbn.datasets import cifar10
from chainer_vfbn.datasets import read_cifar10
from chainer_vfbn.datasets import subset

from support import REPO
from support import SAMPLE

MAKE_MINI = os.path.join(REPO, 'data', 'make_mini.py')


def _first(x, t, per_batch, n_batches=5):
    """The first ``per_batch`` images of each of ``n_batches`` equal
    batches of ``(x, t)``, in order."""
    size = len(x) // n_batches
    index = numpy.concatenate([numpy.arange(b * size, b * size + per_batch)
                               for b in range(n_batches)])
    return x[index], t[index]


def test_content_hash_sees_every_pixel_label_and_split():
    (x, t), (xt, tt) = read_cifar10(SAMPLE)
    base = subset.content_hash((x, t), (xt, tt))
    assert base == subset.content_hash((x.copy(), t.astype(numpy.int64)),
                                       (xt, tt))   # label dtype: no matter
    x2 = x.copy()
    x2[123, 1, 4, 5] ^= 1
    t2 = t.copy()
    t2[7] = (t2[7] + 1) % 10
    others = {subset.content_hash((x2, t), (xt, tt)),
              subset.content_hash((x, t2), (xt, tt)),
              # one image moved from the training set to the test set
              subset.content_hash((x[:-1], t[:-1]),
                                  (numpy.concatenate([x[-1:], xt]),
                                   numpy.concatenate([t[-1:], tt])))}
    assert base not in others and len(others) == 3
    with pytest.raises(ValueError, match='uint8'):
        subset.content_hash((x.astype(numpy.float32), t), (xt, tt))


def test_cut_a_smaller_subset_of_the_sample(tmp_path):
    """The command on the bundled sample (100 images per training batch):
    the first 20 of each and the first 30 test images, in the official
    format, with the hash of exactly those arrays."""
    (x, t), (xt, tt) = read_cifar10(SAMPLE)
    want = subset.content_hash(_first(x, t, 20), (xt[:30], tt[:30]))
    out = tmp_path / 'cut'
    r = subprocess.run([sys.executable, MAKE_MINI, '--source', SAMPLE,
                        '--out', str(out), '--train-per-batch', '20',
                        '--test', '30'], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert 'content sha256 %s' % want in r.stdout
    archive = str(out / 'cifar-10-python.tar.gz')
    assert subset.content_hash(*read_cifar10(archive)) == want
    # The official format: bytes keys with encoding='bytes', a uint8
    # (N, 3072) array, batches.meta kept.
    with tarfile.open(archive) as tar:
        names = sorted(m.name for m in tar if m.isfile())
        batch = pickle.load(tar.extractfile(
            'cifar-10-batches-py/data_batch_2'), encoding='bytes')
    assert names == sorted('cifar-10-batches-py/' + n for n in
                           cifar10.TRAIN_BATCHES + ('test_batch',
                                                    'batches.meta'))
    assert set(batch) == {b'batch_label', b'labels', b'data'}
    assert batch[b'data'].shape == (20, 3072)
    assert batch[b'data'].dtype == numpy.uint8
    assert batch[b'labels'] == [int(v) for v in t[100:120]]
    # The package function gives the same, and the same bytes again.
    again = str(tmp_path / 'again.tar.gz')
    assert subset.cut_subset(SAMPLE, again, 20, 30) == want
    with open(archive, 'rb') as a, open(again, 'rb') as b:
        assert a.read() == b.read()


def test_the_default_cut_checks_the_mini_hash(tmp_path):
    """A source that cannot give the mini set (the sample is too small)
    is one line and status 1."""
    r = subprocess.run([sys.executable, MAKE_MINI, '--source', SAMPLE,
                        '--out', str(tmp_path)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.startswith('make_mini.py: error: ')
    assert 'fewer than the 932' in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_missing_mini_set_names_the_command(tmp_path):
    """--data-dir at a mini path: build it with make_mini.py (the official
    md5 can never match a subset), and never download into it."""
    where = str(tmp_path / 'shared' / 'cifar-10-mini')
    for download in (False, True):
        with pytest.raises(cifar10.DatasetError) as e:
            cifar10.load_cifar10(where, download=download)
        message = str(e.value)
        assert 'data/make_mini.py' in message
        assert '--out %s' % where in message
        assert cifar10.MD5 not in message
        assert '\n' not in message
    assert not os.path.exists(where)


def test_the_shared_mini_set_has_the_recorded_hash(tmp_path, mini_archive):
    assert subset.content_hash(*read_cifar10(mini_archive)) == \
        subset.MINI_SHA256
    # Cutting the mini set's sizes from it changes nothing.
    assert subset.cut_subset(mini_archive, str(tmp_path / 'm.tar.gz')) == \
        subset.MINI_SHA256


def test_make_sample_rebuilds_the_bundled_sample_byte_for_byte(
        tmp_path, mini_archive):
    """data/make_sample.py writes through the package's writer, under
    NumPy 1 or 2: the committed sample's sha256 (data/README.md)."""
    out = str(tmp_path / 'sample.tar.gz')
    r = subprocess.run([sys.executable, os.path.join(REPO, 'data',
                                                     'make_sample.py'),
                        '--source', mini_archive, '--out', out],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with open(out, 'rb') as a, open(SAMPLE, 'rb') as b:
        assert hashlib.sha256(a.read()).hexdigest() == \
            hashlib.sha256(b.read()).hexdigest()

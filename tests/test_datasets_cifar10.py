"""The CIFAR-10 loader: real data, the sample, the folder form, every error."""
import ast
import glob
import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import urllib.error

import numpy
import pytest

from chainer_vfbn.datasets import cifar10
from chainer_vfbn.datasets import DatasetError
from chainer_vfbn.datasets import get_cifar10
from chainer_vfbn.datasets import load_cifar10

from support import REPO
from support import SAMPLE

SAMPLE_SHA256 = \
    '77d8c7a29eb9b2e2497a0fd9f745101e499903293623f554447a874a6cf6bbf3'


def _raw_batch(path, name, encoding):
    with tarfile.open(path) as tar:
        f = tar.extractfile('cifar-10-batches-py/' + name)
        return pickle.load(f, encoding=encoding)


def _tiny_batch(n, seed, key=str):
    rng = numpy.random.RandomState(seed)
    return {key('batch_label'): key('batch'),
            key('labels'): [int(t) for t in rng.randint(0, 10, n)],
            key('data'): rng.randint(0, 256, (n, 3072)).astype(numpy.uint8)}


def _write_archive(path, batches):
    """A tar.gz in the official layout holding ``batches`` (name -> obj)."""
    with tarfile.open(path, 'w:gz') as tar:
        for name, obj in batches.items():
            data = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo('cifar-10-batches-py/' + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def _tiny_set(key=str):
    names = cifar10.TRAIN_BATCHES + (cifar10.TEST_BATCH,)
    return {name: _tiny_batch(4, i, key) for i, name in enumerate(names)}


def _assert_one_line(excinfo, *parts):
    message = str(excinfo.value)
    assert '\n' not in message
    for part in parts:
        assert part in message, (part, message)


# -- real data -------------------------------------------------------------

def test_mini_archive(mini_archive):
    (train_x, train_t), (test_x, test_t) = load_cifar10(mini_archive,
                                                        download=False)
    assert train_x.shape == (4660, 3, 32, 32) and train_x.dtype == numpy.uint8
    assert test_x.shape == (846, 3, 32, 32) and test_x.dtype == numpy.uint8
    assert train_t.shape == (4660,) and train_t.dtype == numpy.int32
    assert test_t.shape == (846,) and test_t.dtype == numpy.int32
    for t in (train_t, test_t):
        assert t.min() == 0 and t.max() == 9
    # The training set is the five batches in order: batch 3 (bytes keys).
    raw = _raw_batch(mini_archive, 'data_batch_3', 'bytes')
    numpy.testing.assert_array_equal(
        train_x[2 * 932:3 * 932], raw[b'data'].reshape(-1, 3, 32, 32))
    numpy.testing.assert_array_equal(train_t[2 * 932:3 * 932],
                                     raw[b'labels'])
    raw = _raw_batch(mini_archive, 'test_batch', 'latin1')
    numpy.testing.assert_array_equal(test_x,
                                     raw['data'].reshape(-1, 3, 32, 32))
    numpy.testing.assert_array_equal(test_t, raw['labels'])
    # Channels: the first 1024 values of a row are red, row-major 32x32.
    numpy.testing.assert_array_equal(test_x[5, 0, 1], raw['data'][5, 32:64])
    numpy.testing.assert_array_equal(test_x[5, 2, 31],
                                     raw['data'][5, 3072 - 32:])
    # A directory holding the archive reads the same file.
    (x2, _), _ = load_cifar10(os.path.dirname(mini_archive), download=False)
    numpy.testing.assert_array_equal(x2, train_x)


def test_sample_archive(mini_archive):
    with open(SAMPLE, 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest() == SAMPLE_SHA256
    ((train_x, train_t), (test_x, test_t)), text = get_cifar10('sample')
    assert text == ('sample: 500 train / 150 test images from '
                    'chainer_vfbn/datasets/sample')
    assert train_x.shape == (500, 3, 32, 32) and test_x.shape == (150, 3,
                                                                  32, 32)
    assert train_x.dtype == numpy.uint8 and train_t.dtype == numpy.int32
    # Class-balanced: 10 of each class in each of the 5 batches, 15 in test.
    for batch in train_t.reshape(5, 100):
        numpy.testing.assert_array_equal(numpy.bincount(batch), [10] * 10)
    numpy.testing.assert_array_equal(numpy.bincount(test_t), [15] * 10)
    # As data/README.md says: the first images of each class of each batch
    # of cifar-10-mini, in order.
    (mini_x, mini_t), (mini_tx, mini_tt) = load_cifar10(mini_archive)
    for b in range(5):
        x, t = mini_x[b * 932:(b + 1) * 932], mini_t[b * 932:(b + 1) * 932]
        keep = numpy.sort(numpy.concatenate(
            [numpy.flatnonzero(t == c)[:10] for c in range(10)]))
        numpy.testing.assert_array_equal(train_x[b * 100:(b + 1) * 100],
                                         x[keep])
        numpy.testing.assert_array_equal(train_t[b * 100:(b + 1) * 100],
                                         t[keep])
    keep = numpy.sort(numpy.concatenate(
        [numpy.flatnonzero(mini_tt == c)[:15] for c in range(10)]))
    numpy.testing.assert_array_equal(test_x, mini_tx[keep])
    # Python-2 strings, as the official file: bytes keys with 'bytes'.
    assert sorted(_raw_batch(SAMPLE, 'data_batch_1', 'bytes')) == [
        b'batch_label', b'data', b'labels']


def test_extracted_folder_forms(tmp_path):
    # The 'data' extraction filter exists from Python 3.11.4 / 3.12.
    safe = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}
    with tarfile.open(SAMPLE) as tar:
        tar.extractall(str(tmp_path), **safe)
    (ref_train, ref_test) = load_cifar10(SAMPLE, download=False)
    folder = str(tmp_path / 'cifar-10-batches-py')
    for data_dir in (str(tmp_path), folder):  # parent, or the folder itself
        (train, test) = load_cifar10(data_dir, download=False)
        for a, b in zip(train + test, ref_train + ref_test):
            numpy.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype
    # With both present, the archive wins over the folder.
    os.symlink(SAMPLE, str(tmp_path / 'cifar-10-python.tar.gz'))
    assert cifar10.locate_cifar10(str(tmp_path))[0] == str(
        tmp_path / 'cifar-10-python.tar.gz')


@pytest.mark.parametrize('key', [str, lambda s: s.encode('latin1')])
def test_str_and_bytes_keys(tmp_path, key):
    batches = _tiny_set(key)
    path = _write_archive(tmp_path / 'c.tar.gz', batches)
    (train_x, train_t), (test_x, test_t) = load_cifar10(path)
    assert train_x.shape == (20, 3, 32, 32) and test_x.shape == (4, 3, 32, 32)
    raw = batches['data_batch_2']
    numpy.testing.assert_array_equal(
        train_x[4:8], raw[key('data')].reshape(-1, 3, 32, 32))
    numpy.testing.assert_array_equal(train_t[4:8], raw[key('labels')])


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv(cifar10.ENV_VAR, raising=False)
    assert cifar10.default_data_dir() == os.path.expanduser(
        os.path.join('~', '.chainer-vfbn', 'cifar10'))
    monkeypatch.setenv(cifar10.ENV_VAR, os.path.dirname(SAMPLE))
    (train_x, _), (test_x, _) = load_cifar10(download=False)
    assert (len(train_x), len(test_x)) == (500, 150)


# -- download --------------------------------------------------------------

def test_missing_without_download(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_cifar10(str(tmp_path / 'nowhere'), download=False)
    _assert_one_line(e, 'not found', cifar10.MD5,
                     str(tmp_path / 'nowhere' / 'cifar-10-python.tar.gz'))


def test_failed_download(tmp_path, monkeypatch):
    def fail(url, timeout=None):
        raise urllib.error.URLError('no network')
    monkeypatch.setattr(cifar10, 'urlopen', fail)
    target = tmp_path / 'c10.tar.gz'
    with pytest.raises(DatasetError) as e:
        load_cifar10(str(target))
    _assert_one_line(e, 'cannot download', cifar10.URL, 'no network',
                     str(target), cifar10.MD5)
    assert os.listdir(str(tmp_path)) == []  # no partial file left


def test_download_checks_md5(tmp_path, monkeypatch):
    with open(SAMPLE, 'rb') as f:
        payload = f.read()
    calls = []

    def serve(url, timeout=None):
        calls.append(url)
        return io.BytesIO(payload)
    monkeypatch.setattr(cifar10, 'urlopen', serve)
    with pytest.raises(DatasetError) as e:  # not the official md5
        load_cifar10(str(tmp_path))
    _assert_one_line(e, 'md5 %s' % hashlib.md5(payload).hexdigest(),
                     cifar10.MD5)
    assert os.listdir(str(tmp_path)) == []
    # With a matching md5 the file is kept and read.
    monkeypatch.setattr(cifar10, 'MD5', hashlib.md5(payload).hexdigest())
    (train_x, _), _ = load_cifar10(str(tmp_path))
    assert len(train_x) == 500 and calls == [cifar10.URL, cifar10.URL]
    assert os.listdir(str(tmp_path)) == ['cifar-10-python.tar.gz']
    # A local copy is used as is: no download, no md5 check.
    monkeypatch.setattr(cifar10, 'MD5', '0' * 32)
    (train_x, _), _ = load_cifar10(str(tmp_path))
    assert len(train_x) == 500 and len(calls) == 2


# -- corrupt and malformed data ----------------------------------------------

@pytest.mark.parametrize('fraction', [0.02, 0.5, 0.99])
def test_truncated_archive(tmp_path, fraction):
    with open(SAMPLE, 'rb') as f:
        data = f.read()
    path = tmp_path / 'cifar-10-python.tar.gz'
    path.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(DatasetError) as e:
        load_cifar10(str(tmp_path), download=False)
    _assert_one_line(e, 'corrupt or truncated', str(path))


def test_not_an_archive(tmp_path):
    path = tmp_path / 'cifar-10-python.tar.gz'
    path.write_bytes(b'<html>404 Not Found</html>' * 10)
    with pytest.raises(DatasetError) as e:
        load_cifar10(str(path))
    _assert_one_line(e, 'corrupt or truncated', str(path))


def test_damaged_pickle(tmp_path):
    path = tmp_path / 'c.tar.gz'
    good = pickle.dumps(_tiny_batch(4, 0), protocol=2)
    with tarfile.open(str(path), 'w:gz') as tar:
        for name in cifar10.TRAIN_BATCHES + (cifar10.TEST_BATCH,):
            data = good if name != 'data_batch_4' else good[:len(good) // 2]
            info = tarfile.TarInfo('cifar-10-batches-py/' + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(DatasetError) as e:
        load_cifar10(str(path))
    _assert_one_line(e, 'corrupt or truncated')


def test_pickle_cannot_run_code(tmp_path):
    class Evil(object):
        def __reduce__(self):
            return (os.remove, (str(tmp_path / 'canary'),))
    (tmp_path / 'canary').write_text('alive')
    batches = _tiny_set()
    batches['test_batch'] = {'data': Evil(), 'labels': [0]}
    path = _write_archive(tmp_path / 'c.tar.gz', batches)
    with pytest.raises(DatasetError) as e:
        load_cifar10(path)
    _assert_one_line(e, 'unexpected object')
    assert (tmp_path / 'canary').read_text() == 'alive'


def test_missing_batch(tmp_path):
    batches = _tiny_set()
    del batches['data_batch_5'], batches['test_batch']
    path = _write_archive(tmp_path / 'c.tar.gz', batches)
    with pytest.raises(DatasetError) as e:
        load_cifar10(path)
    _assert_one_line(e, 'wrong contents', 'missing data_batch_5, test_batch')


@pytest.mark.parametrize('change, why', [
    (dict(data=numpy.zeros((4, 3000), numpy.uint8)), 'shape (N, 3072)'),
    (dict(data=numpy.zeros((4, 3072), numpy.float32)), 'uint8'),
    (dict(labels=[0, 1, 10, 2]), 'labels outside 0..9'),
    (dict(labels=[0, -1, 3, 2]), 'labels outside 0..9'),
    (dict(labels=[0, 1, 2]), "'labels' has shape (3,)"),
])
def test_wrong_contents(tmp_path, change, why):
    batches = _tiny_set()
    batches['data_batch_2'].update(change)
    path = _write_archive(tmp_path / 'c.tar.gz', batches)
    with pytest.raises(DatasetError) as e:
        load_cifar10(path)
    _assert_one_line(e, 'wrong contents', 'data_batch_2', why)
    batches = _tiny_set()
    del batches['test_batch']['labels']
    path = _write_archive(tmp_path / 'd.tar.gz', batches)
    with pytest.raises(DatasetError) as e:
        load_cifar10(path)
    _assert_one_line(e, "test_batch has no 'labels' entry")


def _package_data():
    """setup.py's ``package_data``: ``{package: [glob, ...]}``."""
    with open(os.path.join(REPO, 'setup.py')) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == 'package_data':
            return ast.literal_eval(node.value)
    return {}


def _install_like_a_wheel(site):
    """Copy chainer_vfbn into ``site`` as a wheel lays it out: the modules
    of every package and the files setup.py's ``package_data`` names."""
    source = os.path.join(REPO, 'chainer_vfbn')
    for folder, _, files in os.walk(source):
        if '__init__.py' not in files:
            continue
        target = os.path.join(site, os.path.relpath(folder, REPO))
        os.makedirs(target, exist_ok=True)
        for name in files:
            if name.endswith('.py'):
                shutil.copy(os.path.join(folder, name), target)
    for package, patterns in _package_data().items():
        folder = os.path.join(REPO, *package.split('.'))
        for pattern in patterns:
            for path in glob.glob(os.path.join(folder, pattern)):
                target = os.path.join(site, os.path.relpath(path, REPO))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy(path, target)


def test_sample_ships_as_package_data(tmp_path):
    """The sample lies inside the package, and a copy of the package alone
    (as a non-editable install has it: no data/, no checkout) loads it."""
    package = os.path.dirname(os.path.abspath(cifar10.__file__))
    assert os.path.commonpath([package, cifar10.SAMPLE_DIR]) == package
    assert os.path.samefile(
        os.path.join(cifar10.SAMPLE_DIR, cifar10.ARCHIVE_NAME), SAMPLE)
    site = str(tmp_path / 'site')
    _install_like_a_wheel(site)
    code = ('import chainer_vfbn, chainer_vfbn.datasets as d; '
            'print(chainer_vfbn.__file__); print(d.get_cifar10("sample")[1])')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, cwd=str(tmp_path), timeout=120,
                          env=dict(os.environ, PYTHONPATH=site))
    assert proc.returncode == 0, proc.stderr[-2000:]
    where, text = proc.stdout.splitlines()
    assert where.startswith(site)
    assert text == ('sample: 500 train / 150 test images from '
                    'chainer_vfbn/datasets/sample')


def test_get_cifar10_errors(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match='unknown dataset'):
        get_cifar10('cifar100')
    monkeypatch.setattr(cifar10, 'SAMPLE_DIR', str(tmp_path))
    with pytest.raises(DatasetError) as e:
        get_cifar10('sample')
    _assert_one_line(e, 'bundled CIFAR-10 sample', 'absent')


def test_get_cifar10_official(tmp_path):
    ((train_x, _), (test_x, _)), text = get_cifar10(
        'cifar10', os.path.dirname(SAMPLE))
    assert (len(train_x), len(test_x)) == (500, 150)
    assert text == 'cifar10: 500 train / 150 test images from %s' % SAMPLE
    with pytest.raises(DatasetError) as e:
        get_cifar10('cifar10', str(tmp_path), download=False)
    _assert_one_line(e, 'downloads disabled', str(tmp_path))


# -- damage anywhere in the stream is "corrupt" (issue #12) -----------------

def _damaged(tmp_path, offset, n_bytes):
    """The sample archive with ``n_bytes`` inverted from ``offset`` on."""
    with open(SAMPLE, 'rb') as f:
        data = bytearray(f.read())
    for i in range(offset, min(offset + n_bytes, len(data))):
        data[i] ^= 0xFF
    path = tmp_path / 'cifar-10-python.tar.gz'
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize('n_bytes', [1, 64])
@pytest.mark.parametrize('where', [0.1, 0.3, 0.5, 0.7, 0.9, 0.999, -1])
def test_flipped_bytes_are_corrupt(tmp_path, where, n_bytes):
    # Past the 10-byte gzip header (whose mtime field is not checked);
    # -1: the trailer's CRC itself.
    size = os.path.getsize(SAMPLE)
    offset = size - 8 if where == -1 else int(size * where)
    path = _damaged(tmp_path, offset, n_bytes)
    with pytest.raises(DatasetError) as e:
        load_cifar10(str(tmp_path), download=False)
    _assert_one_line(e, 'corrupt', str(path))


def test_official_size_is_checked_against_md5(tmp_path, monkeypatch):
    path = tmp_path / 'cifar-10-python.tar.gz'
    with open(SAMPLE, 'rb') as f:
        path.write_bytes(f.read())
    monkeypatch.setattr(cifar10, 'SIZE', os.path.getsize(SAMPLE))
    monkeypatch.setattr(cifar10, 'MD5', '0' * 32)
    with pytest.raises(DatasetError) as e:
        load_cifar10(str(tmp_path), download=False)
    _assert_one_line(e, 'corrupt', 'md5', '0' * 32)
    # The same file with its own md5 as the official one loads.
    monkeypatch.setattr(cifar10, 'MD5', cifar10.md5sum(str(path)))
    (train_x, _), _ = load_cifar10(str(tmp_path), download=False)
    assert len(train_x) == 500

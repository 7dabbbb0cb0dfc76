"""Subsets of CIFAR-10 in the official format, and their content hash.

The project's ``mini`` set (``cifar-10-mini``) is the first 932 images of
each official training batch and the first 846 of the official test batch
(4,660 + 846 images), written as an archive in the official layout. Anyone
with the official ``cifar-10-python.tar.gz`` can rebuild it with
:func:`cut_subset` (``python data/make_mini.py``).

An archive's bytes depend on the gzip and pickle writers (time stamps, the
NumPy version named in the pickles), so a subset is verified by its
*content*: :func:`content_hash` of its arrays and labels, which every run
records in ``args.json`` and ``summary.json``.
"""
import gzip
import hashlib
import io
import pickle
import struct
import tarfile

import numpy

from chainer_vfbn.datasets import cifar10
from chainer_vfbn.datasets.cifar10_format import as_str
from chainer_vfbn.datasets.cifar10_format import DatasetError
from chainer_vfbn.datasets.cifar10_format import FOLDER_NAME
from chainer_vfbn.datasets.cifar10_format import META
from chainer_vfbn.datasets.cifar10_format import parse_batch
from chainer_vfbn.datasets.cifar10_format import TEST_BATCH
from chainer_vfbn.datasets.cifar10_format import TRAIN_BATCHES

#: The mini set: images kept from the start of each training batch, and
#: from the start of the test batch.
MINI_TRAIN_PER_BATCH = 932
MINI_TEST = 846
#: :func:`content_hash` of the mini set (of the project's copy,
#: ``../shared/data/cifar-10-mini/cifar-10-python.tar.gz``, file sha256
#: 7069397d...; checked by tests/test_datasets_subset.py).
MINI_SHA256 = '5e2e1156f7be74e0bb8712869566c3fe71aa7cb28cc292e2ecdbc02c334f6c13'
_MTIME = 1230768000  # 2009-01-01: a fixed time, so the output is repeatable


def content_hash(train, test):
    """SHA-256 of a data set's images and labels, independent of its file.

    Hashes, for ``train`` then ``test``, a header line with the split's
    name and shapes, then the images as C-ordered ``uint8`` bytes, then the
    labels as little-endian int64.

    Args:
        train (tuple): ``(x, t)``, ``x`` ``uint8`` ``(N, 3, 32, 32)``, ``t``
            integer ``(N,)`` (as :func:`~chainer_vfbn.datasets.read_cifar10`
            returns them).
        test (tuple): The same for the test set.

    Returns:
        str: 64 hex digits.

    Example::

        >>> x = numpy.zeros((2, 3, 32, 32), numpy.uint8)
        >>> t = numpy.array([0, 1])
        >>> len(content_hash((x, t), (x[:1], t[:1])))
        64
    """
    digest = hashlib.sha256()
    for name, (x, t) in (('train', train), ('test', test)):
        x, t = numpy.asarray(x), numpy.asarray(t)
        if x.dtype != numpy.uint8:
            raise ValueError('%s images must be uint8, got %s'
                             % (name, x.dtype))
        if t.shape != (len(x),):
            raise ValueError('%s: %d images but labels of shape %s'
                             % (name, len(x), t.shape))
        digest.update(('%s %s\n' % (name, 'x'.join(map(str, x.shape))))
                      .encode('ascii'))
        digest.update(numpy.ascontiguousarray(x).tobytes())
        digest.update(numpy.ascontiguousarray(t, dtype='<i8').tobytes())
    return digest.hexdigest()


def check_content(path, expected, name):
    """Refuse data whose :func:`content_hash` is not ``expected``.

    Args:
        path (str): An archive or folder in the official format.
        expected (str): The content hash it must have (e.g.
            :data:`MINI_SHA256`).
        name (str): What it must be, for the message (e.g. ``'the
            cifar-10-mini set'``).

    Raises:
        ~chainer_vfbn.datasets.DatasetError: One line: unreadable, or
            another content hash.

    Example (the project's mini set, where there is a copy)::

        >>> mini = '../shared/data/cifar-10-mini/cifar-10-python.tar.gz'
        >>> check_content(mini, MINI_SHA256,
        ...               'the cifar-10-mini set')  # doctest: +SKIP

    and on the bundled sample, which is not the mini set::

        >>> import os
        >>> from chainer_vfbn.datasets.cifar10 import SAMPLE_DIR
        >>> sample = os.path.join(SAMPLE_DIR, 'cifar-10-python.tar.gz')
        >>> check_content(sample, MINI_SHA256, 'the cifar-10-mini set')
        ... # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        chainer_vfbn.datasets.cifar10_format.DatasetError:
        .../sample/cifar-10-python.tar.gz is not the cifar-10-mini set:
        its content sha256 is be9bc96c..., not 5e2e1156...
    """
    digest = content_hash(*cifar10.read_cifar10(path))
    if digest != expected:
        raise DatasetError('%s is not %s: its content sha256 is %s, not %s'
                           % (path, name, digest, expected))


class _Py2StrPickler(pickle._Pickler):
    """Protocol-2 pickler that writes like the official file's Python 2.

    ``str`` and ``bytes`` become Python 2 ``str`` (``SHORT_BINSTRING`` /
    ``BINSTRING``), so ``encoding='bytes'`` gives ``bytes`` keys and
    ``encoding='latin1'`` ``str`` keys; NumPy 2's ``numpy._core`` globals
    are written as ``numpy.core`` (NumPy 1's name, the official file's),
    which NumPy 1 and 2 both read, so the output does not depend on the
    NumPy that wrote it.
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        data = obj.encode('latin1') if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + struct.pack('<B', len(data)))
        else:
            self.write(pickle.BINSTRING + struct.pack('<i', len(data)))
        self.write(data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None):
        module = getattr(obj, '__module__', '') or ''
        if module == 'numpy._core' or module.startswith('numpy._core.'):
            module = 'numpy.core' + module[len('numpy._core'):]
            self.write(pickle.GLOBAL + module.encode('ascii') + b'\n'
                       + (name or obj.__name__).encode('ascii') + b'\n')
            self.memoize(obj)
            return
        super(_Py2StrPickler, self).save_global(obj, name)


def py2_pickle(obj):
    """``obj`` pickled as the official archive's members are (protocol 2,
    Python 2 strings, NumPy 1 global names)."""
    f = io.BytesIO()
    _Py2StrPickler(f, protocol=2).dump(obj)
    return f.getvalue()


def write_archive(members, path):
    """Write ``[(name, bytes)]`` under ``cifar-10-batches-py/`` as a
    repeatable ``.tar.gz`` (fixed time stamps, modes and gzip header)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(FOLDER_NAME)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _MTIME
        tar.addfile(info)
        for name, data in members:
            info = tarfile.TarInfo('%s/%s' % (FOLDER_NAME, name))
            info.size, info.mode, info.mtime = len(data), 0o644, _MTIME
            tar.addfile(info, io.BytesIO(data))
    with open(path, 'wb') as f:
        with gzip.GzipFile(filename='', mode='wb', fileobj=f, mtime=0,
                           compresslevel=9) as gz:
            gz.write(buf.getvalue())


def cut_subset(source, out, train_per_batch=MINI_TRAIN_PER_BATCH,
               n_test=MINI_TEST):
    """Write the first images of each batch of ``source`` to ``out``.

    Keeps, in order, the first ``train_per_batch`` images (and labels) of
    each of ``data_batch_1`` ... ``_5`` and the first ``n_test`` of
    ``test_batch``, each batch's ``batch_label``, and ``batches.meta``
    unchanged (``filenames`` is dropped, as in ``cifar-10-mini``). The
    defaults cut the mini set from the official archive.

    Args:
        source (str): An archive (or extracted folder) in the official
            format: the official ``cifar-10-python.tar.gz``, or a subset.
        out (str): Path of the ``.tar.gz`` to write.
        train_per_batch (int): Images kept per training batch.
        n_test (int): Test images kept.

    Returns:
        str: :func:`content_hash` of what was written (read back from
        ``out``).

    Raises:
        ~chainer_vfbn.datasets.DatasetError: ``source`` is unreadable or has
            fewer images than asked for.

    Example (the mini set, from the official archive)::

        >>> cut_subset('cifar-10-python.tar.gz',
        ...            'mini/cifar-10-python.tar.gz') == MINI_SHA256
        ... # doctest: +SKIP
        True

    and a smaller subset of the bundled sample, checked after::

        >>> import os
        >>> import tempfile
        >>> from chainer_vfbn.datasets.cifar10 import SAMPLE_DIR
        >>> sample = os.path.join(SAMPLE_DIR, 'cifar-10-python.tar.gz')
        >>> folder = tempfile.TemporaryDirectory()
        >>> out = os.path.join(folder.name, 'cifar-10-python.tar.gz')
        >>> digest = cut_subset(sample, out, train_per_batch=10, n_test=5)
        >>> train, test = cifar10.read_cifar10(out)
        >>> len(train[0]), len(test[0]), digest == content_hash(train, test)
        (50, 5, True)
        >>> check_content(out, digest, 'the small subset')
        >>> folder.cleanup()
    """
    if train_per_batch < 1 or n_test < 1:
        raise ValueError('train_per_batch and n_test must be >= 1')
    raw = cifar10.read_raw(source, with_meta=True)
    members = []
    for name in TRAIN_BATCHES + (TEST_BATCH,):
        keep = n_test if name == TEST_BATCH else train_per_batch
        x, t = parse_batch(raw[name], name, source)
        if len(x) < keep:
            raise DatasetError(
                '%s: %s has %d images, fewer than the %d to keep'
                % (source, name, len(x), keep))
        batch = {as_str(k): v for k, v in raw[name].items()}
        members.append((name, py2_pickle({
            'batch_label': batch.get('batch_label', name),
            'labels': [int(v) for v in t[:keep]],
            'data': numpy.ascontiguousarray(
                batch['data'][:keep], dtype=numpy.uint8),
        })))
    meta = raw.get(META)
    if meta is not None:
        members.append((META, py2_pickle(meta)))
    write_archive(members, out)
    return content_hash(*cifar10.read_cifar10(out))

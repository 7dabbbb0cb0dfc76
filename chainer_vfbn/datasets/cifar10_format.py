"""The official CIFAR-10 python format: its batches, read safely and checked.

The official archive (Krizhevsky, 2009) holds a folder
``cifar-10-batches-py/`` with five training batches ``data_batch_1`` ...
``data_batch_5``, one ``test_batch`` and ``batches.meta``. Each batch is a
protocol-2 pickle written by Python 2: a dict with keys ``'data'`` (a
``uint8`` array of shape ``(N, 3072)``: 1024 red, then 1024 green, then 1024
blue values of a row-major 32x32 image) and ``'labels'`` (``N`` ints in
``0..9``). :func:`read_batches` reads the tar members with :mod:`tarfile`
and unpickles them in memory (nothing is extracted to disk), or reads the
files of an extracted folder; :func:`parse_batch` checks one batch.

The pickles are loaded by an unpickler that only accepts the few globals a
NumPy array needs (an archive found on disk cannot run code), and keys are
accepted both as ``str`` and as ``bytes`` (the two ways ``pickle.load`` can
decode Python 2 strings).

:mod:`chainer_vfbn.datasets.cifar10` finds, downloads and verifies the
archive and loads the data set through this module.
"""
import io
import os
import pickle
import tarfile

import numpy

FOLDER_NAME = 'cifar-10-batches-py'
TRAIN_BATCHES = tuple('data_batch_%d' % i for i in range(1, 6))
TEST_BATCH = 'test_batch'
META = 'batches.meta'
CLASS_NAMES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
               'horse', 'ship', 'truck')
N_CLASS = 10
IMAGE_SHAPE = (3, 32, 32)


# Globals a pickled NumPy array may name (NumPy 1 and 2 spellings).
_SAFE_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'),
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
    ('_codecs', 'encode'),
}


class DatasetError(Exception):
    """A data set is missing, unreadable or not what it claims to be."""


class _ArrayUnpickler(pickle.Unpickler):

    def find_class(self, module, name):
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(
                'unexpected object %s.%s in the pickle' % (module, name))
        return super(_ArrayUnpickler, self).find_class(module, name)


def as_str(value):
    """A pickle's key as ``str``: Python 2 strings may load as ``bytes``.

    Example:
        >>> as_str(b'data'), as_str('data')
        ('data', 'data')
    """
    return value.decode('latin1') if isinstance(value, bytes) else value


def parse_batch(raw, name, source):
    """Check one unpickled batch and return its images and labels.

    Args:
        raw: The unpickled batch (a dict, keys ``str`` or ``bytes``).
        name (str): The batch's name, for messages (``'data_batch_1'``).
        source (str): Where it was read from, for messages.

    Returns:
        tuple: ``(x, t)``, ``x`` ``uint8`` ``(N, 3, 32, 32)``, ``t``
        ``int32`` ``(N,)`` in ``0..9``.

    Raises:
        DatasetError: The batch is not a dict with ``'data'`` of shape
            ``(N, 3072)`` and ``N`` labels in ``0..9``.

    Example:
        >>> x, t = parse_batch({b'data': numpy.zeros((2, 3072), numpy.uint8),
        ...                     b'labels': [3, 9]}, 'test_batch', 'here')
        >>> x.shape, t.tolist()
        ((2, 3, 32, 32), [3, 9])
    """
    def bad(why):
        return DatasetError('wrong contents in %s: %s %s'
                            % (source, name, why))

    if not isinstance(raw, dict):
        raise bad('is a %s, not a dict' % type(raw).__name__)
    batch = {as_str(k): v for k, v in raw.items()}
    for key in ('data', 'labels'):
        if key not in batch:
            raise bad('has no %r entry' % key)
    x = batch['data']
    if not isinstance(x, numpy.ndarray) or x.dtype != numpy.uint8 \
            or x.ndim != 2 or x.shape[1] != 3072:
        raise bad("'data' should be a uint8 array of shape (N, 3072), got %s"
                  % (('%s %s' % (x.dtype, x.shape))
                     if isinstance(x, numpy.ndarray) else type(x).__name__))
    try:
        t = numpy.asarray(batch['labels'], dtype=numpy.int64)
    except (TypeError, ValueError):
        raise bad("'labels' is not a list of integers")
    if t.shape != (len(x),):
        raise bad("has %d images but 'labels' has shape %s"
                  % (len(x), t.shape))
    if len(t) and (t.min() < 0 or t.max() >= N_CLASS):
        raise bad('has labels outside 0..%d (min %d, max %d)'
                  % (N_CLASS - 1, t.min(), t.max()))
    return x.reshape((-1,) + IMAGE_SHAPE), t.astype(numpy.int32)


def _unpickle(f):
    return _ArrayUnpickler(f, encoding='latin1').load()


def read_batches(source, needed=TRAIN_BATCHES + (TEST_BATCH,)):
    """Unpickle the members ``needed`` of an archive or extracted folder.

    Args:
        source (str): A ``.tar.gz`` in the official layout, or a folder
            holding the batch files.
        needed (tuple of str): The batches to read; those absent are left
            out of the result (the caller says what is missing).

    Returns:
        dict: ``name -> unpickled batch``.

    Raises:
        Whatever a broken archive or pickle raises (:mod:`tarfile`,
        :mod:`gzip`, :mod:`pickle` errors): the caller turns it into a
        :class:`DatasetError` naming the file.
    """
    raw = {}
    if os.path.isdir(source):
        for name in needed:
            path = os.path.join(source, name)
            if os.path.isfile(path):
                with open(path, 'rb') as f:
                    raw[name] = _unpickle(f)
        return raw
    # One pass over the (gzip) stream: members are visited in file order.
    with tarfile.open(source, 'r:*') as tar:
        for member in tar:
            parts = os.path.normpath(member.name).split(os.sep)
            if (member.isfile() and len(parts) == 2
                    and parts[0] == FOLDER_NAME and parts[1] in needed):
                raw[parts[1]] = _unpickle(
                    io.BytesIO(tar.extractfile(member).read()))
        # tarfile stops at the end-of-archive blocks (or at a header it
        # cannot parse) without reaching the end of the compressed stream,
        # where gzip checks its CRC: read the rest, so damage anywhere is
        # an error instead of silently different pixels.
        while tar.fileobj.read(1 << 20):
            pass
    return raw

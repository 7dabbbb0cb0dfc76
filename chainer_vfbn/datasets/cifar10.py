"""CIFAR-10 from the official ``cifar-10-python.tar.gz``, read directly.

The official archive (Krizhevsky, 2009) holds a folder
``cifar-10-batches-py/`` with five training batches ``data_batch_1`` ...
``data_batch_5``, one ``test_batch`` and ``batches.meta``. Each batch is a
protocol-2 pickle written by Python 2: a dict with keys ``'data'`` (a
``uint8`` array of shape ``(N, 3072)``: 1024 red, then 1024 green, then 1024
blue values of a row-major 32x32 image) and ``'labels'`` (``N`` ints in
``0..9``). The tar members are read with :mod:`tarfile` and unpickled in
memory; nothing is extracted to disk. The same code path reads the official
170 MB file, the project's real subset ``cifar-10-mini`` and the bundled
sample ``chainer_vfbn/datasets/sample`` (both in the official format).

The pickles are loaded by an unpickler that only accepts the few globals a
NumPy array needs (an archive found on disk cannot run code), and keys are
accepted both as ``str`` and as ``bytes`` (the two ways ``pickle.load`` can
decode Python 2 strings).
"""
import hashlib
import io
import os
import pickle
import tarfile
import zlib
from urllib.request import urlopen

import numpy

URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'
MD5 = 'c58f30108f718f92721af3b95e74349a'  # of the official archive at URL
SIZE = 170498071  # bytes of the official archive: a file this size must match
ARCHIVE_NAME = 'cifar-10-python.tar.gz'
FOLDER_NAME = 'cifar-10-batches-py'
TRAIN_BATCHES = tuple('data_batch_%d' % i for i in range(1, 6))
TEST_BATCH = 'test_batch'
META = 'batches.meta'
CLASS_NAMES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
               'horse', 'ship', 'truck')
N_CLASS = 10
IMAGE_SHAPE = (3, 32, 32)

ENV_VAR = 'CHAINER_VFBN_DATA'
DEFAULT_DIR = os.path.join('~', '.chainer-vfbn', 'cifar10')

# The bundled sample ships as package data (setup.py's package_data), beside
# this module, so every install has it, editable or not.
SAMPLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          'sample')
# What a run's description names: the sample's path inside the package.
SAMPLE_NAME = 'chainer_vfbn/datasets/sample'

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


def default_data_dir():
    """The directory used when ``data_dir`` is ``None``.

    Returns:
        str: ``$CHAINER_VFBN_DATA`` if set and non-empty, else
        ``~/.chainer-vfbn/cifar10`` (user-expanded).
    """
    path = os.environ.get(ENV_VAR) or DEFAULT_DIR
    return os.path.abspath(os.path.expanduser(path))


def md5sum(path, chunk=1 << 20):
    """Hex MD5 digest of a file."""
    digest = hashlib.md5()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def _is_batch_folder(path):
    return all(os.path.isfile(os.path.join(path, name))
               for name in TRAIN_BATCHES[:1] + (TEST_BATCH,))


def locate_cifar10(data_dir=None):
    """Find a local copy of CIFAR-10.

    ``data_dir`` may be the path of the archive, a directory holding
    ``cifar-10-python.tar.gz`` or the extracted ``cifar-10-batches-py/``, or
    the extracted folder itself. The archive is preferred over the folder.

    Args:
        data_dir (str or None): Where to look; ``None`` means
            :func:`default_data_dir`.

    Returns:
        tuple: ``(found, target)``. ``found`` is the path of the archive
        or of the extracted folder, or ``None`` if there is no local copy;
        ``target`` is where a download would be written.
    """
    path = default_data_dir() if data_dir is None else os.path.abspath(
        os.path.expanduser(str(data_dir)))
    if os.path.isfile(path):
        return path, path
    if os.path.isdir(path):
        archive = os.path.join(path, ARCHIVE_NAME)
        folder = os.path.join(path, FOLDER_NAME)
        if os.path.isfile(archive):
            return archive, archive
        if os.path.isdir(folder):
            return folder, archive
        if _is_batch_folder(path):
            return path, archive
        return None, archive
    # Absent: a name that looks like an archive is the file to write,
    # anything else a directory to create.
    if path.endswith(('.tar.gz', '.tgz')):
        return None, path
    return None, os.path.join(path, ARCHIVE_NAME)


def _where_to_put(target):
    return _mini_hint(target) or (
        'put the official %s (md5 %s, from %s) at %s, or pass its '
        'location as data_dir / set %s'
        % (ARCHIVE_NAME, MD5, URL, target, ENV_VAR))


# The project's mini subset (chainer_vfbn.datasets.subset) is kept in a
# folder of this name; the official md5 can never match it.
MINI_NAME = 'cifar-10-mini'
MINI_COMMAND = ('python data/make_mini.py --source cifar-10-python.tar.gz '
                '--out DIR')


def _mini_hint(path):
    """For a path inside a ``cifar-10-mini`` folder: how to (re)build the
    mini set (a subset has no published md5 to download against); else
    ``''``."""
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    if MINI_NAME not in parts:
        return ''
    folder = os.sep.join(parts[:parts.index(MINI_NAME) + 1])
    return ('build the mini subset there from the official %s (%s) with '
            '%s' % (ARCHIVE_NAME, URL, MINI_COMMAND.replace('DIR', folder)))


def download_cifar10(target, url=None, md5=None, timeout=60):
    """Download the official archive to ``target`` and check its MD5.

    The file is written to ``target + '.part'`` and renamed only once its
    MD5 matches, so an interrupted download never leaves a corrupt archive
    behind.

    Args:
        target (str): Path of the archive to write.
        url (str): Source; default :data:`URL`.
        md5 (str): Expected hex digest; default :data:`MD5`.
        timeout (float): Socket timeout in seconds.

    Returns:
        str: ``target``.

    Raises:
        DatasetError: The download failed or the MD5 differs.
    """
    if _mini_hint(target):
        # Never download the full set into the mini set's place.
        raise DatasetError('CIFAR-10 not found at %s; %s'
                           % (target, _mini_hint(target)))
    url = URL if url is None else url
    md5 = MD5 if md5 is None else md5
    part = target + '.part'
    try:
        os.makedirs(os.path.dirname(target) or '.', exist_ok=True)
        digest = hashlib.md5()
        with urlopen(url, timeout=timeout) as response, \
                open(part, 'wb') as f:
            for block in iter(lambda: response.read(1 << 20), b''):
                digest.update(block)
                f.write(block)
    except Exception as e:  # network, HTTP and file-system errors alike
        if os.path.exists(part):
            os.remove(part)
        raise DatasetError('cannot download CIFAR-10 from %s (%s: %s); %s'
                           % (url, type(e).__name__, _one_line(e),
                              _where_to_put(target)))
    if digest.hexdigest() != md5:
        os.remove(part)
        raise DatasetError(
            'the file downloaded from %s has md5 %s, expected %s; %s'
            % (url, digest.hexdigest(), md5, _where_to_put(target)))
    os.replace(part, target)
    return target


def _one_line(error):
    return ' '.join(str(error).split())


def _str(value):
    return value.decode('latin1') if isinstance(value, bytes) else value


def _parse_batch(raw, name, source):
    """Check one unpickled batch and return ``(x, t)``."""
    def bad(why):
        return DatasetError('wrong contents in %s: %s %s'
                            % (source, name, why))

    if not isinstance(raw, dict):
        raise bad('is a %s, not a dict' % type(raw).__name__)
    batch = {_str(k): v for k, v in raw.items()}
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


def _read_raw_batches(source, needed=TRAIN_BATCHES + (TEST_BATCH,)):
    """Unpickle the members ``needed`` of an archive or extracted folder."""
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


def read_cifar10(source):
    """Read CIFAR-10 from an archive or an extracted folder.

    Args:
        source (str): Path of a ``cifar-10-python.tar.gz`` in the official
            layout, or of the extracted ``cifar-10-batches-py/`` folder.

    Returns:
        tuple: ``((train_x, train_t), (test_x, test_t))``; ``x`` is
        ``uint8`` of shape ``(N, 3, 32, 32)``, ``t`` is ``int32`` of shape
        ``(N,)``. The training set is ``data_batch_1`` ... ``_5`` in order.

    Raises:
        DatasetError: The archive is corrupt or truncated, or a batch is
            missing or malformed.
    """
    raw = read_raw(source)
    train = [_parse_batch(raw[n], n, source) for n in TRAIN_BATCHES]
    test = _parse_batch(raw[TEST_BATCH], TEST_BATCH, source)
    train_x = numpy.concatenate([x for x, _ in train])
    train_t = numpy.concatenate([t for _, t in train])
    return (train_x, train_t), test


def read_raw(source, with_meta=False):
    """The unpickled batches of an archive or extracted folder, by name.

    Checks what :func:`read_cifar10` checks about the file (the official
    archive's md5, the gzip CRC, that every batch is there) but not the
    batches' contents.

    Args:
        source (str): As in :func:`read_cifar10`.
        with_meta (bool): Also return ``batches.meta`` (if present).

    Returns:
        dict: ``name -> unpickled dict`` (keys as stored: ``str``).
    """
    if not os.path.exists(source):
        hint = _mini_hint(source)
        raise DatasetError('CIFAR-10 data not found at %s%s'
                           % (source, '; ' + hint if hint else ''))
    if os.path.isfile(source) and os.path.getsize(source) == SIZE:
        # The official archive's size: it must be the official archive.
        # (Subsets in the same format, e.g. cifar-10-mini, have other sizes
        # and rely on the gzip CRC alone.)
        digest = md5sum(source)
        if digest != MD5:
            raise DatasetError(
                'corrupt CIFAR-10 archive %s: md5 %s, expected %s for the '
                'official archive; delete it and download %s again'
                % (source, digest, MD5, URL))
    try:
        raw = _read_raw_batches(
            source, TRAIN_BATCHES + (TEST_BATCH,) + ((META,) if with_meta
                                                     else ()))
    except (tarfile.TarError, EOFError, zlib.error, OSError,
            pickle.UnpicklingError, ValueError, TypeError, KeyError,
            AttributeError, IndexError) as e:
        # gzip raises OSError/EOFError/zlib.error, tarfile ReadError, a
        # damaged pickle almost anything: all mean "this file is broken".
        raise DatasetError(
            'corrupt or truncated CIFAR-10 data %s (%s: %s); %s'
            % (source, type(e).__name__, _one_line(e), _mini_hint(source)
               or 'delete it and download %s again' % URL))
    missing = [n for n in TRAIN_BATCHES + (TEST_BATCH,) if n not in raw]
    if missing:
        raise DatasetError(
            'wrong contents in %s: missing %s (expected %s/data_batch_1..5 '
            'and %s/test_batch)' % (source, ', '.join(missing), FOLDER_NAME,
                                    FOLDER_NAME))
    return raw


def load_cifar10(data_dir=None, download=True):
    """Load CIFAR-10, downloading the official archive if there is no copy.

    Args:
        data_dir (str or None): The archive, a directory holding it or its
            extracted folder, or the extracted folder itself. ``None``:
            ``$CHAINER_VFBN_DATA``, else ``~/.chainer-vfbn/cifar10``.
        download (bool): If there is no local copy, download it from
            :data:`URL` (checking :data:`MD5`). A local copy is checked
            against the MD5 when it has the official archive's size
            (:data:`SIZE`), so subsets in the official format load too;
            every archive's gzip CRC is checked.

    Returns:
        tuple: ``((train_x, train_t), (test_x, test_t))``, ``x`` ``uint8``
        ``(N, 3, 32, 32)``, ``t`` ``int32`` ``(N,)`` in ``0..9``.

    Raises:
        DatasetError: No copy and no download (disabled or failed), or the
            data are corrupt or malformed. The message is one line that says
            where to put the file.
    """
    found, target = locate_cifar10(data_dir)
    if found is None:
        if not download:
            raise DatasetError('CIFAR-10 not found (downloads disabled); '
                               + _where_to_put(target))
        found = download_cifar10(target)
    return read_cifar10(found)


def get_cifar10(name, data_dir=None, download=True):
    """The official data set or the bundled sample, with a description.

    Args:
        name (str): ``'cifar10'`` (:func:`load_cifar10` on ``data_dir``) or
            ``'sample'`` (the sample shipped in the package,
            ``chainer_vfbn/datasets/sample``; it compares methods only, never
            quote CIFAR-10 error on it).
        data_dir (str or None): For ``'cifar10'``; ignored for ``'sample'``.
        download (bool): For ``'cifar10'``: as in :func:`load_cifar10`.

    Returns:
        tuple: ``(((train_x, train_t), (test_x, test_t)), description)``,
        the description a short string for logs.

    Raises:
        DatasetError: As :func:`load_cifar10`, or the sample is absent.
        ValueError: Unknown ``name``.
    """
    if name == 'cifar10':
        found, target = locate_cifar10(data_dir)
        (train, test) = load_cifar10(data_dir, download=download)
        where = found or target
    elif name == 'sample':
        where = os.path.join(SAMPLE_DIR, ARCHIVE_NAME)
        if not os.path.isfile(where):
            raise DatasetError(
                'the bundled CIFAR-10 sample %s is absent: the package is '
                "installed without its data; reinstall it, or use dataset "
                "'cifar10'" % where)
        train, test = read_cifar10(where)
        where = SAMPLE_NAME
    else:
        raise ValueError("unknown dataset %r (expected 'cifar10' or 'sample')"
                         % (name,))
    description = '%s: %d train / %d test images from %s' % (
        name, len(train[0]), len(test[0]), where)
    return (train, test), description

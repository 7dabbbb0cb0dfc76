"""CIFAR-10 from the official ``cifar-10-python.tar.gz``, read directly.

This module finds a local copy (:func:`locate_cifar10`), downloads the
official archive and checks its MD5 (:func:`download_cifar10`), and loads
the data set (:func:`load_cifar10`, :func:`get_cifar10`). The batches
inside, in the official python format, are read in memory and checked by
:mod:`chainer_vfbn.datasets.cifar10_format`; nothing is extracted to disk.
The same code path reads the official 170 MB file, the project's real subset
``cifar-10-mini`` and the bundled sample ``chainer_vfbn/datasets/sample``
(both in the official format).
"""
import hashlib
import os
import pickle
import tarfile
import zlib
from urllib.request import urlopen

import numpy

# The format's names, re-exported: callers know them as cifar10.<NAME>.
from chainer_vfbn.datasets.cifar10_format import CLASS_NAMES  # NOQA
from chainer_vfbn.datasets.cifar10_format import DatasetError
from chainer_vfbn.datasets.cifar10_format import FOLDER_NAME
from chainer_vfbn.datasets.cifar10_format import IMAGE_SHAPE  # NOQA
from chainer_vfbn.datasets.cifar10_format import META
from chainer_vfbn.datasets.cifar10_format import N_CLASS  # NOQA
from chainer_vfbn.datasets.cifar10_format import parse_batch
from chainer_vfbn.datasets.cifar10_format import read_batches
from chainer_vfbn.datasets.cifar10_format import TEST_BATCH
from chainer_vfbn.datasets.cifar10_format import TRAIN_BATCHES

URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'
MD5 = 'c58f30108f718f92721af3b95e74349a'  # of the official archive at URL
SIZE = 170498071  # bytes of the official archive: a file this size must match
ARCHIVE_NAME = 'cifar-10-python.tar.gz'

ENV_VAR = 'CHAINER_VFBN_DATA'
DEFAULT_DIR = os.path.join('~', '.chainer-vfbn', 'cifar10')

# The bundled sample ships as package data (setup.py's package_data), beside
# this module, so every install has it, editable or not.
SAMPLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          'sample')
# What a run's description names: the sample's path inside the package.
SAMPLE_NAME = 'chainer_vfbn/datasets/sample'

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
    train = [parse_batch(raw[n], n, source) for n in TRAIN_BATCHES]
    test = parse_batch(raw[TEST_BATCH], TEST_BATCH, source)
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
        raw = read_batches(
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

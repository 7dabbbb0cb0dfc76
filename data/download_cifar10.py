#!/usr/bin/env python
"""Fetch (if absent) or verify CIFAR-10 and print what it holds.

Examples::

    python data/download_cifar10.py              # ~/.chainer-vfbn/cifar10
    python data/download_cifar10.py --data-dir /data/cifar10
    python data/download_cifar10.py --data-dir chainer_vfbn/datasets/sample
    python data/download_cifar10.py --data-dir ../shared/data/cifar-10-mini

``--data-dir`` is the archive, a directory holding ``cifar-10-python.tar.gz``
or the extracted ``cifar-10-batches-py/``, or that folder itself; without it,
``$CHAINER_VFBN_DATA`` or ``~/.chainer-vfbn/cifar10``. If there is no copy
the official archive is downloaded (and its md5 checked). A local archive's
md5 is reported as OK (the official file) or unknown (a subset such as the
bundled sample). Exits with status 1 and one line on stderr on any error.
"""
import argparse
import os
import sys

import numpy

from chainer_vfbn.datasets import cifar10
from chainer_vfbn.datasets import subset


def describe(found):
    """Lines describing the data at ``found`` (archive or folder)."""
    lines = []
    if os.path.isdir(found):
        lines.append('source: %s (extracted folder)' % found)
        lines.append('md5: n/a (extracted folder, not the archive)')
        official = None
    else:
        lines.append('source: %s (archive, %d bytes)'
                     % (found, os.path.getsize(found)))
        md5 = cifar10.md5sum(found)
        official = md5 == cifar10.MD5
        lines.append('md5: %s %s' % (md5, 'OK (the official archive)'
                                     if official else
                                     'unknown (not the official archive, '
                                     'md5 %s)' % cifar10.MD5))
    (train, test) = cifar10.read_cifar10(found)
    digest = subset.content_hash(train, test)
    lines.append('content sha256: %s%s' % (
        digest, ' (the mini set, cifar-10-mini)'
        if digest == subset.MINI_SHA256 else ''))
    for split, (x, t) in (('train', train), ('test', test)):
        counts = numpy.bincount(t, minlength=cifar10.N_CLASS)
        lines.append('%s: %d images, %s %s, labels %d..%d'
                     % (split, len(x), x.dtype, x.shape, t.min(), t.max()))
        lines.append('  per class: ' + ', '.join(
            '%s %d' % (name, c)
            for name, c in zip(cifar10.CLASS_NAMES, counts)))
    return lines, official


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Fetch (if absent) or verify CIFAR-10 and print what it '
                    'holds.')
    parser.add_argument('--data-dir', default=None,
                        help='archive, its directory or extracted folder '
                             '(default: $%s or %s)'
                             % (cifar10.ENV_VAR, cifar10.DEFAULT_DIR))
    parser.add_argument('--no-download', action='store_true',
                        help='fail instead of downloading a missing archive')
    parser.add_argument('--require-official', action='store_true',
                        help='fail unless the archive is the official file '
                             '(md5 %s)' % cifar10.MD5)
    args = parser.parse_args(argv)
    prog = (os.path.basename(sys.argv[0]) if argv is None
            else 'download_cifar10.py')
    try:
        found, target = cifar10.locate_cifar10(args.data_dir)
        if found is None:
            if args.no_download:
                raise cifar10.DatasetError(
                    'CIFAR-10 not found (--no-download); '
                    + cifar10._where_to_put(target))
            print('downloading %s to %s' % (cifar10.URL, target))
            found = cifar10.download_cifar10(target)
        lines, official = describe(found)
        print('\n'.join(lines))
        if args.require_official and not official:
            raise cifar10.DatasetError(
                '%s is not the official archive (md5 %s)'
                % (found, cifar10.MD5))
    except cifar10.DatasetError as e:
        print('%s: error: %s' % (prog, e), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

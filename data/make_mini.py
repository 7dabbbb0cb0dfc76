#!/usr/bin/env python
"""Cut the mini set (cifar-10-mini) from the official CIFAR-10 archive.

The mini set is the first 932 images of each of the five official training
batches (4,660 images) and the first 846 of the official test batch, with
their labels, written in the official format (``cifar-10-batches-py/`` with
``data_batch_1`` ... ``_5``, ``test_batch`` and ``batches.meta``). It is
checked by its content (:func:`chainer_vfbn.datasets.subset.content_hash`
of the images and labels, not the archive's bytes), which must be the
project's (``MINI_SHA256``)::

    python data/make_mini.py --source cifar-10-python.tar.gz \\
        --out ../shared/data/cifar-10-mini

``--train-per-batch`` and ``--test`` cut other sizes (no hash to check
then). Exits with status 1 and one line on any error.
"""
import argparse
import os
import sys

from chainer_vfbn.datasets import cifar10
from chainer_vfbn.datasets import subset


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='make_mini.py', description=__doc__.splitlines()[1],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--source', required=True,
                        help='the official cifar-10-python.tar.gz (md5 %s), '
                             'or its extracted folder' % cifar10.MD5)
    parser.add_argument('--out', required=True,
                        help='folder to write cifar-10-python.tar.gz into '
                             '(or the path of the .tar.gz itself)')
    parser.add_argument('--train-per-batch', type=int,
                        default=subset.MINI_TRAIN_PER_BATCH,
                        help='images kept from the start of each training '
                             'batch')
    parser.add_argument('--test', type=int, default=subset.MINI_TEST,
                        help='images kept from the start of the test batch')
    args = parser.parse_args(argv)
    out = args.out
    if not out.endswith(('.tar.gz', '.tgz')):
        out = os.path.join(out, cifar10.ARCHIVE_NAME)
    mini = (args.train_per_batch, args.test) == (subset.MINI_TRAIN_PER_BATCH,
                                                 subset.MINI_TEST)
    try:
        if os.path.abspath(out) == os.path.abspath(args.source):
            raise cifar10.DatasetError('--out would overwrite --source')
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        digest = subset.cut_subset(args.source, out, args.train_per_batch,
                                   args.test)
        print('%s: %d train / %d test images, content sha256 %s'
              % (out, 5 * args.train_per_batch, args.test, digest))
        if mini and digest != subset.MINI_SHA256:
            raise cifar10.DatasetError(
                'this is not the mini set: content sha256 %s, expected %s '
                '(is --source the official archive, md5 %s?)'
                % (digest, subset.MINI_SHA256, cifar10.MD5))
        if mini:
            print('OK: the mini set (content sha256 matches)')
    except (cifar10.DatasetError, ValueError, OSError) as e:
        print('make_mini.py: error: %s' % e, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

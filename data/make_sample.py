#!/usr/bin/env python
"""Cut chainer_vfbn/datasets/sample/cifar-10-python.tar.gz from cifar-10-mini.

The sample is a small, class-balanced subset of real CIFAR-10 images in the
official format: the same tar layout (``cifar-10-batches-py/data_batch_1``
... ``_5``, ``test_batch``, ``batches.meta``) and protocol-2 pickles whose
strings are Python 2 ``str`` (``SHORT_BINSTRING``/``BINSTRING`` opcodes, as
the official file), so ``pickle.load(f, encoding='bytes')`` gives ``bytes``
keys and ``encoding='latin1'`` gives ``str`` keys, exactly as there.

Selection (deterministic, no randomness): from each training batch of the
source, the first ``--per-class-train`` images of each class (default 10, so
100 per batch, 500 in all); from its test batch, the first
``--per-class-test`` images of each class (default 15, so 150); the images
keep their order within the batch. The output is byte-reproducible (fixed tar
and gzip timestamps), so its sha256 in data/README.md can be checked by
running this script again.

The pickles name ``numpy.core.multiarray._reconstruct`` like the official
file under NumPy 1 and 2 alike (:func:`chainer_vfbn.datasets.subset.py2_pickle`).
The source defaults to ``../shared/data/cifar-10-mini/cifar-10-python.tar.gz``
beside the checkout::

    python data/make_sample.py [--source PATH] [--out PATH]
"""
import argparse
import hashlib
import os
import pickle
import sys
import tarfile

import numpy

from chainer_vfbn.datasets import subset

TRAIN = ['data_batch_%d' % i for i in range(1, 6)]
TEST = 'test_batch'
HERE = os.path.dirname(os.path.abspath(__file__))


def read_source(path):
    """Unpickled members of the source archive, by name."""
    out = {}
    with tarfile.open(path, 'r:gz') as tar:
        for member in tar:
            name = os.path.basename(member.name)
            if member.isfile() and name in TRAIN + [TEST, 'batches.meta']:
                out[name] = pickle.load(tar.extractfile(member),
                                        encoding='latin1')
    return out


def first_per_class(labels, per_class, n_class=10):
    """Indices (in order) of the first ``per_class`` images of each class."""
    labels = numpy.asarray(labels)
    keep = numpy.zeros(len(labels), dtype=bool)
    for c in range(n_class):
        where = numpy.flatnonzero(labels == c)
        if len(where) < per_class:
            raise ValueError('only %d images of class %d' % (len(where), c))
        keep[where[:per_class]] = True
    return numpy.flatnonzero(keep)


def cut(batch, per_class, label):
    index = first_per_class(batch['labels'], per_class)
    return {
        'batch_label': label,
        'labels': [int(t) for t in numpy.asarray(batch['labels'])[index]],
        'data': numpy.ascontiguousarray(batch['data'][index]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--source', default=os.path.join(
        HERE, '..', '..', 'shared', 'data', 'cifar-10-mini',
        'cifar-10-python.tar.gz'))
    parser.add_argument('--out', default=os.path.join(
        HERE, '..', 'chainer_vfbn', 'datasets', 'sample',
        'cifar-10-python.tar.gz'))
    parser.add_argument('--per-class-train', type=int, default=10,
                        help='images per class per training batch')
    parser.add_argument('--per-class-test', type=int, default=15,
                        help='images per class in the test batch')
    args = parser.parse_args(argv)

    src = read_source(args.source)
    members = []
    for i, name in enumerate(TRAIN):
        batch = cut(src[name], args.per_class_train,
                    'training batch %d of 5' % (i + 1))
        members.append((name, subset.py2_pickle(batch)))
    members.append((TEST, subset.py2_pickle(cut(src[TEST], args.per_class_test,
                                    'testing batch 1 of 1'))))
    meta = {'num_cases_per_batch': 10 * args.per_class_train,
            'label_names': list(src['batches.meta']['label_names']),
            'num_vis': 3072}
    members.append(('batches.meta', subset.py2_pickle(meta)))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    subset.write_archive(members, args.out)
    with open(args.out, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    print('%s: %d bytes, sha256 %s' % (args.out, os.path.getsize(args.out),
                                       sha))
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python
"""Train a model of your own with back-propagation, DNI or VFBN.

The model is a VGG-style CNN defined here as a plain ``chainer.Sequential``;
chainer_vfbn's public API cuts it after a step (``--split-at``, a step
index) and builds any method of the paper's Table 1 for it. The options,
log, plots, snapshots and ``summary.json`` are train_cifar.py's (the run
itself is :func:`chainer_vfbn.runs.trainer.run`); only the network differs.

Example::

    python train/train_own_model.py --method vfbn --dataset sample --epoch 2
"""
import argparse
import functools
import sys

import chainer_vfbn  # NOQA  (before chainer: compatibility shims)
import chainer  # NOQA
import chainer.functions as F  # NOQA
import chainer.links as L  # NOQA

from chainer_vfbn import methods, split_step  # NOQA
from chainer_vfbn.runs import RunConfig, trainer, UserError  # NOQA

IN_SHAPE = (3, 32, 32)   # pad-crop-flip views of the CIFAR images


def block(channels):
    """Two 3x3 convolutions with BN and ReLU, then 2x2 max pooling."""
    layers = []
    for _ in range(2):
        layers += [L.Convolution2D(None, channels, 3, pad=1, nobias=True),
                   L.BatchNormalization(channels), F.relu]
    return chainer.Sequential(*layers, functools.partial(F.max_pooling_2d,
                                                         ksize=2))


def global_average(x):
    return F.average(x, axis=(2, 3))


def vgg(n_class=10):
    """Three blocks (32x32 -> 4x4), global average pooling, a linear map."""
    return chainer.Sequential(block(16), block(32), block(64),
                              global_average, L.Linear(None, n_class))


def build_parser():
    p = argparse.ArgumentParser(
        prog='train_own_model.py', description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--method', default='vfbn', choices=methods.METHODS)
    p.add_argument('--alpha-gs', type=float, default=None)  # None: registry's
    p.add_argument('--synth-target-scale', choices=split_step.TARGET_SCALES,
                   default='batch-mean')
    p.add_argument('--n-hidden', type=int, default=256)
    p.add_argument('--split-at', default='1')  # cut after step 1: block(32)
    p.add_argument('--device', '-d', default=None)
    p.add_argument('--batchsize', '-b', type=int, default=64)
    p.add_argument('--epoch', '-e', type=int, default=5)
    p.add_argument('--iterations', type=int, default=None)
    p.add_argument('--learnrate', '-l', type=float, default=0.05)
    p.add_argument('--momentum', type=float, default=0.9)
    p.add_argument('--weight-decay', type=float, default=5e-4)
    p.add_argument('--lr-step', type=float, default=1000)  # epochs per decay
    p.add_argument('--lr-decay', type=float, default=0.1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', '-o', default='result/own-model')
    p.add_argument('--resume', '-r', default=None)
    p.add_argument('--no-autoload', dest='autoload', action='store_false')
    p.add_argument('--force-new', action='store_true')
    p.add_argument('--frequency', '-f', type=int, default=1)
    p.add_argument('--dataset', default='sample', choices=('cifar10',
                                                           'sample'))
    p.add_argument('--data-dir', default=None)
    p.add_argument('--no-download', dest='download', action='store_false')
    p.add_argument('--validation-split', type=float, default=0.)
    p.add_argument('--eval-interval', type=int, default=1)
    p.add_argument('--tta-interval', type=int, default=0)
    p.add_argument('--test-batchsize', type=int, default=128)
    p.add_argument('--no-progress', dest='progress', action='store_false')
    # What train_cifar.py also records, fixed for this network.
    p.set_defaults(arch='vgg-own', augment='standard')
    return p


def main(argv=None):
    parser = build_parser()
    options = vars(parser.parse_args(argv))
    defaults = {a.dest: a.default for a in parser._actions}
    try:
        config = RunConfig.from_options(options, defaults)
        return trainer.run(config, vgg, parser.prog, IN_SHAPE)
    except UserError as e:
        sys.stderr.write('%s: error: %s\n' % (parser.prog, e))
        return 2


if __name__ == '__main__':
    sys.exit(main())

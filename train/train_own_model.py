#!/usr/bin/env python
"""Train a model of your own with back-propagation, DNI or VFBN.

The network is :func:`vgg` below, a VGG-style CNN written as a plain
``chainer.Sequential``: replace it with yours. Running this file runs
``train/train_cifar.py --model train/train_own_model.py:vgg``, the one run
command for any network, so the options, checks, log, plots, snapshots,
records, resume and ``--decoupled`` are train_cifar.py's; ``RUN_DEFAULTS``
below are this network's defaults (``--help`` lists every option with its
default). It trains on the sample bundled with the package by default
(offline); ``--dataset cifar10`` downloads CIFAR-10 (about 170 MB) if it is
not found.

Example::

    python train/train_own_model.py --method vfbn --epoch 2
"""
import functools
import os
import sys

import chainer_vfbn  # NOQA  (before chainer: compatibility shims)
import chainer  # NOQA
import chainer.functions as F  # NOQA
import chainer.links as L  # NOQA

# This network's defaults for train_cifar.py's options.
RUN_DEFAULTS = dict(
    arch='vgg-own',          # its name in the records
    split_at='1',            # cut after step 1, block(32): h is 32x8x8
    dataset='sample',        # the bundled sample: offline, 500 images
    augment='standard',      # pad-crop-flip 32x32 views
    batchsize=64,            # images per iteration
    epoch=5,                 # passes over the training images
    learnrate=0.05,          # MomentumSGD
    weight_decay=5e-4,
    lr_step=1000,            # epochs between decays: none in a short run
    tta_interval=0,          # no 36-view test
    out='result/own-model',
)


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


def main(argv=None):
    """Run train_cifar.py on :func:`vgg` (it replaces this process)."""
    here = os.path.abspath(__file__)
    script = os.path.join(os.path.dirname(here), 'train_cifar.py')
    argv = sys.argv[1:] if argv is None else list(argv)
    os.execv(sys.executable, [sys.executable, script, '--model',
                              here + ':vgg'] + argv)


if __name__ == '__main__':
    main()

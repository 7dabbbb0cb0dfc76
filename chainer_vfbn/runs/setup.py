"""A run's set-up: its device, its seeds and its data.

Both runners (:mod:`chainer_vfbn.runs.trainer`,
:mod:`chainer_vfbn.runs.decoupled`) resolve the device, seed the
generators and load the data through these functions, from the run's
:class:`~chainer_vfbn.runs.config.RunConfig`.
"""
import random

import chainer
import numpy

from chainer_vfbn import datasets
from chainer_vfbn.datasets import subset
from chainer_vfbn.runs.config import device_spec
from chainer_vfbn.runs.config import UserError


def get_device(spec, offset=0):
    """Resolve a device spec, with one clear line when CUDA is unavailable.

    Args:
        spec: ``@numpy``, ``@cupy:N``, or an integer (-1: the CPU).
        offset (int): Added to a GPU id, modulo the number of GPUs (rank
            ``k`` of a decoupled run uses GPU ``(N + k) % n_gpus``).
    """
    text = device_spec(spec)
    wants_cuda = text.startswith('@cupy')
    if wants_cuda and not chainer.backends.cuda.available:
        raise UserError('device %s asks for CUDA, but CuPy/CUDA is not '
                        'available on this machine (use --device @numpy, or '
                        "install the 'cuda12'/'cuda13' extra)" % text)
    if wants_cuda and offset:
        first = int(text.split(':')[1]) if ':' in text else 0
        n_gpus = chainer.backends.cuda.cupy.cuda.runtime.getDeviceCount()
        text = '@cupy:%d' % ((first + offset) % n_gpus)
    try:
        device = chainer.get_device(text)
    except Exception as e:  # chainer raises several types here
        raise UserError('bad device %r: %s' % (spec, e))
    if wants_cuda:
        try:
            device.use()
        except Exception as e:
            raise UserError('cannot use CUDA device %s: %s' % (text, e))
    return device


def set_seed(seed, device):
    """Seed ``random``, NumPy and, on a GPU, CuPy (STYLE rule 10)."""
    random.seed(seed)
    numpy.random.seed(seed)
    if device.xp is not numpy:
        device.xp.random.seed(seed)


def image_shape(augment):
    """One training image's shape under an augmentation: ``(3, 24, 24)``
    for the paper's views, ``(3, 32, 32)`` otherwise (standard, the
    default for a model without ``in_shape``)."""
    return (3, 24, 24) if augment == 'paper' else (3, 32, 32)


def build(config, make_net, in_shape, build):
    """The run's network and method, built the same way by both runners.

    Args:
        config (~chainer_vfbn.runs.config.RunConfig): The run's options.
        make_net: ``make_net() -> net`` (called after the seeding).
        in_shape (tuple): One input's shape; ``None`` for ``net.in_shape``,
            or else :func:`image_shape` of ``config.augment``.
        build: :func:`chainer_vfbn.methods.build_method`, or
            :func:`~chainer_vfbn.methods.build_pipeline` for a decoupled
            run.

    Returns:
        tuple: ``(net, method, in_shape)``.

    Raises:
        UserError: One line: the network or the method cannot be built.
    """
    try:
        net = make_net()
        in_shape = in_shape or getattr(net, 'in_shape', None) or \
            image_shape(config.augment)
        method = build(
            config.method, net, split_at=config.split_at,
            lr=config.learnrate, momentum=config.momentum,
            weight_decay=config.weight_decay, alpha_gs=config.alpha_gs,
            n_hidden=config.n_hidden, target_scale=config.synth_target_scale,
            in_shape=in_shape, local_weight=config.local_weight)
    except ValueError as e:
        raise UserError(str(e))
    return net, method, tuple(in_shape)


def setup_data(config, insize):
    """Load the data set and build the training iterator.

    Args:
        config (~chainer_vfbn.runs.config.RunConfig): The run's (its data,
            batch size, augmentation and seed).
        insize (int): The network's input size (24 or 32).

    Returns:
        tuple: ``(train_iter, test, description, augment, n_train)``;
        ``test`` is a dict of the evaluation images, labels and
        normalization, and ``data_sha256``, the whole data set's
        :func:`chainer_vfbn.datasets.subset.content_hash` (before any
        validation split).
    """
    try:
        ((train_x, train_t), (test_x, test_t)), description = \
            datasets.get_cifar10(config.dataset, config.data_dir,
                                 download=config.download)
    except datasets.DatasetError as e:
        raise UserError(str(e))
    data_sha256 = subset.content_hash((train_x, train_t), (test_x, test_t))
    if config.validation_split:
        train_idx, val_idx = datasets.validation_split(
            train_t, config.validation_split)
        (train_x, train_t), (test_x, test_t) = \
            (train_x[train_idx], train_t[train_idx]), \
            (train_x[val_idx], train_t[val_idx])
        description += ('; validation split %g: training on %d, evaluating '
                        'on %d held-out training images, not the test set'
                        % (config.validation_split, len(train_idx),
                           len(val_idx)))
    if config.batchsize > len(train_x):
        raise UserError('--batchsize %d is larger than the training set (%d '
                        'images): each batch would repeat images'
                        % (config.batchsize, len(train_x)))
    augment = config.augment or ('paper' if insize == 24 else 'standard')
    expected = 24 if augment == 'paper' else 32
    if expected != insize:
        raise UserError('--augment %s makes %dx%d images but --arch %s takes '
                        '%dx%d' % (augment, expected, expected, config.arch,
                                   insize, insize))
    mean, std = datasets.normalization(train_x, augment)
    train_iter = datasets.AugmentedIterator(
        train_x, train_t, config.batchsize, augment=augment, seed=config.seed,
        mean=mean, std=std)
    test = dict(images=test_x, labels=test_t, augment=augment, mean=mean,
                std=std, data_sha256=data_sha256)
    return train_iter, test, description, augment, len(train_x)

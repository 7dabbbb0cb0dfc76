"""A Chainer iterator that augments CIFAR batches on the fly, resumably.

The paper trains on a pre-augmented set of 36 x 50,000 images (Sec. 4,
footnote 2: "our 1 epoch corresponds to 36 epochs ... in the standard
study"). Drawing one random view per image per iteration samples the same
distribution without storing 1.8M images: 36 standard epochs here visit as
many images as one paper epoch.

The iterator owns a :class:`numpy.random.RandomState` for both the shuffle
order and the augmentation, and saves its state in snapshots, so a run that
is killed and resumed draws exactly the batches of an uninterrupted run.
"""
import numpy

import chainer
from chainer.iterators.order_samplers import ShuffleOrderSampler

from chainer_vfbn.datasets import augment as A


class AugmentedIterator(chainer.iterators.SerialIterator):
    """Shuffled, augmented batches of ``(x, t)`` examples.

    Epoch bookkeeping (``epoch``, ``epoch_detail``, ``is_new_epoch``,
    ``reset``, ``repeat``) is :class:`chainer.iterators.SerialIterator`'s:
    the dataset it walks is the index range ``0..N-1``, and each batch of
    indices is turned into augmented images in one vectorised call.

    Args:
        images (numpy.ndarray): ``uint8`` of shape ``(N, 3, 32, 32)``.
        labels (numpy.ndarray): Integer labels of shape ``(N,)``.
        batch_size (int): Examples per batch.
        augment (str or None): ``'paper'``: one of the 36 views drawn at
            random per image and iteration, ``float32`` ``(3, 24, 24)``;
            ``'standard'``: He et al.'s padded random crop and flip,
            ``(3, 32, 32)``; ``None``: the normalised image, no
            augmentation.
        repeat (bool): Loop forever (training) or stop after one epoch.
        shuffle (bool): Shuffle the order every epoch.
        seed (int): Seed of the iterator's own random state.
        mean, std (numpy.ndarray): Per-channel statistics for
            ``'standard'``/``None``; computed from ``images`` when omitted
            (pass the training set's for a test iterator).
        train (bool): ``False`` yields the test view instead of random ones:
            :data:`~chainer_vfbn.datasets.augment.CENTER_VIEW` (paper), the
            normalised image (standard).

    Each batch is a list of ``(x, t)`` tuples, ``x`` ``float32``, ``t``
    ``numpy.int32``, ready for :func:`chainer.dataset.concat_examples`.
    """

    def __init__(self, images, labels, batch_size, augment='paper',
                 repeat=True, shuffle=True, seed=0, mean=None, std=None,
                 train=True):
        if augment not in ('paper', 'standard', None):
            raise ValueError("augment must be 'paper', 'standard' or None, "
                             'got %r' % (augment,))
        images = numpy.asarray(images)
        if images.dtype != numpy.uint8 or images.shape[1:] != (3, 32, 32):
            raise ValueError('expected uint8 images of shape (N, 3, 32, 32), '
                             'got %s %s' % (images.dtype, images.shape))
        labels = numpy.asarray(labels, dtype=numpy.int32)
        if labels.shape != (len(images),):
            raise ValueError('expected %d labels, got shape %s'
                             % (len(images), labels.shape))
        self.images = images
        self.labels = labels
        self.augment = augment
        self.train = train
        self.seed = seed
        if augment != 'paper' and (mean is None or std is None):
            mean, std = A.channel_mean_std(images)
        self.mean = None if mean is None else numpy.asarray(
            mean, dtype=numpy.float32)
        self.std = None if std is None else numpy.asarray(
            std, dtype=numpy.float32)
        self._rng = numpy.random.RandomState(seed)
        # The "dataset" is the index range: SerialIterator yields indices.
        super(AugmentedIterator, self).__init__(
            numpy.arange(len(images)), batch_size, repeat=repeat,
            shuffle=None if shuffle else False,
            order_sampler=ShuffleOrderSampler(self._rng) if shuffle else None)

    @property
    def insize(self):
        """Side of the images this iterator yields (24 or 32)."""
        return A.CROP if self.augment == 'paper' else A.SIDE

    def augment_batch(self, indices):
        """Input arrays for the images at ``indices``.

        Args:
            indices (numpy.ndarray): ``(B,)`` indices into ``images``.

        Returns:
            numpy.ndarray: ``float32`` ``(B, 3, insize, insize)``; draws
            from the iterator's random state when training.
        """
        images = self.images[indices]
        if self.augment == 'paper':
            if self.train:
                return A.random_paper_views(images, self._rng)[0]
            return A.paper_views(images, A.CENTER_VIEW)
        if self.augment == 'standard' and self.train:
            return A.random_standard(images, self.mean, self.std,
                                     self._rng)[0]
        return A.normalize(images, self.mean, self.std)

    def __next__(self):
        indices = numpy.asarray(
            super(AugmentedIterator, self).__next__(), dtype=numpy.intp)
        x = self.augment_batch(indices)
        t = self.labels[indices]
        return [(x[i], t[i]) for i in range(len(indices))]

    next = __next__

    def serialize(self, serializer):
        """Save/restore the position, order and the random state.

        The MT19937 state is stored as arrays (``rng_key`` of 624 ``uint32``,
        ``rng_pos``, ``rng_has_gauss``, ``rng_cached_gaussian``) so NPZ
        snapshots hold it.
        """
        super(AugmentedIterator, self).serialize(serializer)
        name, key, pos, has_gauss, cached = self._rng.get_state()
        key = serializer('rng_key', numpy.array(key, dtype=numpy.uint32))
        pos = serializer('rng_pos', numpy.array(pos, dtype=numpy.int64))
        has_gauss = serializer('rng_has_gauss',
                               numpy.array(has_gauss, dtype=numpy.int64))
        cached = serializer('rng_cached_gaussian',
                            numpy.array(cached, dtype=numpy.float64))
        self._rng.set_state((name, numpy.asarray(key, dtype=numpy.uint32),
                             int(pos), int(has_gauss), float(cached)))

"""AugmentedIterator: batches, SerialIterator epochs, determinism, resume."""
import io

import numpy
import pytest

import chainer
from chainer import serializers

from chainer_vfbn.datasets import augment as A
from chainer_vfbn.datasets import AugmentedIterator
from chainer_vfbn.datasets import get_cifar10


@pytest.fixture(scope='module')
def data():
    (train, _), _ = get_cifar10('sample')
    images = train[0][:100]
    ids = numpy.arange(100, dtype=numpy.int32)  # labels = image ids
    return images, ids


def _take(it, n):
    return [chainer.dataset.concat_examples(next(it)) for _ in range(n)]


def _assert_same(batches_a, batches_b):
    assert len(batches_a) == len(batches_b)
    for (xa, ta), (xb, tb) in zip(batches_a, batches_b):
        numpy.testing.assert_array_equal(xa, xb)
        numpy.testing.assert_array_equal(ta, tb)


def test_paper_batches_are_random_views(data):
    images, ids = data
    it = AugmentedIterator(images, ids, 32, 'paper', seed=1)
    batch = next(it)
    assert len(batch) == 32
    assert batch[0][0].shape == (3, 24, 24) and batch[0][0].dtype == \
        numpy.float32
    assert isinstance(batch[0][1], numpy.int32)
    x, t = chainer.dataset.concat_examples(batch)
    assert x.shape == (32, 3, 24, 24) and t.dtype == numpy.int32
    # Each example is one of the 36 views of its image; views vary.
    all_views = A.paper_all_views(images[t])
    used = []
    for i in range(32):
        match = [v for v in range(36)
                 if numpy.array_equal(x[i], all_views[i, v])]
        assert len(match) == 1
        used.append(match[0])
    assert len(set(used)) > 10
    assert it.insize == 24


def test_standard_batches(data):
    images, ids = data
    it = AugmentedIterator(images, ids, 10, 'standard', seed=2)
    mean, std = A.channel_mean_std(images)
    numpy.testing.assert_array_equal(it.mean, mean)
    numpy.testing.assert_array_equal(it.std, std)
    x, t = chainer.dataset.concat_examples(next(it))
    assert x.shape == (10, 3, 32, 32) and it.insize == 32
    # Replay the iterator's draws: shuffle order, then offsets and flips.
    rng = numpy.random.RandomState(2)
    order = rng.permutation(100)
    numpy.testing.assert_array_equal(t, order[:10])
    offsets = rng.randint(0, 9, size=(10, 2))
    flips = rng.randint(0, 2, size=10).astype(bool)
    numpy.testing.assert_array_equal(
        x, A.standard_crops(images[order[:10]], offsets, flips, mean, std))


def test_test_mode_and_no_augmentation(data):
    images, ids = data
    it = AugmentedIterator(images, ids, 25, 'paper', repeat=False,
                           shuffle=False, train=False)
    x, t = chainer.dataset.concat_examples(next(it))
    numpy.testing.assert_array_equal(t, numpy.arange(25))
    numpy.testing.assert_array_equal(x, A.paper_views(images[:25],
                                                      A.CENTER_VIEW))
    mean, std = numpy.array([1., 2., 3.]), numpy.array([4., 5., 6.])
    for augment, train in (('standard', False), (None, True)):
        it = AugmentedIterator(images, ids, 25, augment, shuffle=False,
                               mean=mean, std=std, train=train)
        x, _ = chainer.dataset.concat_examples(next(it))
        numpy.testing.assert_array_equal(
            x, A.normalize(images[:25], mean, std))


def test_epochs_follow_serial_iterator(data):
    images, ids = data
    for repeat in (True, False):
        ours = AugmentedIterator(images, ids, 32, 'paper', repeat=repeat)
        ref = chainer.iterators.SerialIterator(list(range(100)), 32,
                                               repeat=repeat)
        seen = []
        for _ in range(10):
            try:
                batch = next(ours)
            except StopIteration:
                with pytest.raises(StopIteration):
                    next(ref)
                break
            next(ref)
            seen.append([int(t) for _, t in batch])
            for name in ('epoch', 'epoch_detail', 'is_new_epoch',
                         'previous_epoch_detail', 'current_position'):
                assert getattr(ours, name) == getattr(ref, name), name
        # The first epoch visits every image exactly once.
        first = sum(seen, [])[:100]
        assert sorted(first) == list(range(100))
        assert len(seen) == (10 if repeat else 4)
    ours.reset()
    assert (ours.epoch, ours.current_position, ours.is_new_epoch) == \
        (0, 0, False)
    it = AugmentedIterator(images, ids, 40, 'paper', shuffle=False)
    _, t = chainer.dataset.concat_examples(next(it))
    numpy.testing.assert_array_equal(t, numpy.arange(40))


@pytest.mark.parametrize('augment', ['paper', 'standard'])
def test_determinism(data, augment):
    images, ids = data
    a = _take(AugmentedIterator(images, ids, 16, augment, seed=5), 8)
    b = _take(AugmentedIterator(images, ids, 16, augment, seed=5), 8)
    c = _take(AugmentedIterator(images, ids, 16, augment, seed=6), 8)
    _assert_same(a, b)
    assert not all(numpy.array_equal(x, y) for (x, _), (y, _) in zip(a, c))
    # The iterator never touches numpy's global random state.
    numpy.random.seed(0)
    expected = numpy.random.rand()
    numpy.random.seed(0)
    _take(AugmentedIterator(images, ids, 16, augment, seed=5), 3)
    assert numpy.random.rand() == expected


@pytest.mark.parametrize('augment', ['paper', 'standard'])
@pytest.mark.parametrize('stop', [2, 7])  # mid-epoch, and after a wrap
def test_resume_from_snapshot(data, augment, stop):
    images, ids = data
    it = AugmentedIterator(images, ids, 30, augment, seed=11)
    _take(it, stop)
    # Snapshot as a trainer does: DictionarySerializer -> npz -> load.
    saver = serializers.DictionarySerializer()
    saver.save(it)
    buf = io.BytesIO()
    numpy.savez(buf, **saver.target)
    buf.seek(0)
    assert 'rng_key' in saver.target and saver.target['rng_key'].shape == \
        (624,)
    uninterrupted = _take(it, 6)

    resumed = AugmentedIterator(images, ids, 30, augment, seed=999)
    with numpy.load(buf) as npz:
        serializers.NpzDeserializer(npz).load(resumed)
    assert resumed.epoch == (0 if stop == 2 else 2)
    assert resumed.current_position == (60 if stop == 2 else 10)
    _assert_same(_take(resumed, 6), uninterrupted)
    assert resumed.epoch_detail == it.epoch_detail


def test_bad_arguments(data):
    images, ids = data
    with pytest.raises(ValueError, match='augment'):
        AugmentedIterator(images, ids, 4, 'crop')
    with pytest.raises(ValueError, match='uint8'):
        AugmentedIterator(images.astype(numpy.float32), ids, 4)
    with pytest.raises(ValueError, match='labels'):
        AugmentedIterator(images, ids[:5], 4)

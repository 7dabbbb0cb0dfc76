"""The fixed, stratified validation split (chainer_vfbn.datasets) and
train_cifar.py's --validation-split, which the mini schedule tunes on."""
import numpy
import pytest

import train_cifar
from chainer_vfbn import datasets
from chainer_vfbn.runs import setup as run_setup
from chainer_vfbn.datasets import validation_split


def test_validation_split_is_fixed_stratified_and_disjoint():
    rng = numpy.random.RandomState(3)
    labels = rng.randint(0, 10, size=4660)
    train, val = validation_split(labels, 0.1)
    again_train, again_val = validation_split(labels.copy(), 0.1)
    numpy.testing.assert_array_equal(val, again_val)
    numpy.testing.assert_array_equal(train, again_train)
    assert not set(train) & set(val)
    assert sorted(set(train) | set(val)) == list(range(len(labels)))
    for c in range(10):
        n_c = (labels == c).sum()
        assert (labels[val] == c).sum() == round(0.1 * n_c)
    # Another seed holds out other images (the split is not the identity).
    _, other = validation_split(labels, 0.1, seed=1)
    assert set(other) != set(val)


def test_validation_split_rejects_bad_fractions():
    for bad in (0, 1, -0.1, float('nan')):
        with pytest.raises(ValueError, match='validation fraction'):
            validation_split([0, 1, 1, 0], bad)


def test_cli_trains_on_the_rest_and_evaluates_on_the_held_out(monkeypatch):
    """--validation-split: the iterator holds exactly the kept images and
    the evaluation exactly the held-out ones, never the test set."""
    rng = numpy.random.RandomState(0)
    x = rng.randint(0, 256, size=(200, 3, 32, 32)).astype(numpy.uint8)
    t = numpy.repeat(numpy.arange(10, dtype=numpy.int32), 20)
    test = (x[:10] // 2, t[:10])
    monkeypatch.setattr(datasets, 'get_cifar10',
                        lambda *a, **k: (((x, t), test), 'fake'))
    args = train_cifar.parse_args(['--validation-split', '0.1',
                                   '--batchsize', '10'])
    train_iter, ev, description, _, n_train = run_setup.setup_data(args, 24)
    kept, held = validation_split(t, 0.1)
    assert n_train == len(kept) == 180
    numpy.testing.assert_array_equal(ev['images'], x[held])
    numpy.testing.assert_array_equal(ev['labels'], t[held])
    assert 'validation split' in description
    seen = {img.tobytes() for img in train_iter.images}
    assert seen == {img.tobytes() for img in x[kept]}
    assert not seen & {img.tobytes() for img in x[held]}

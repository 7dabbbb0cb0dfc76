"""Augmentation: the paper's 36 views (checked by hand and against Pillow)
and He et al.'s padded crop and flip."""
import numpy
import pytest
from PIL import Image

from chainer_vfbn.datasets import augment as A


@pytest.fixture
def images():
    return numpy.random.RandomState(0).randint(
        0, 256, (5, 3, 32, 32)).astype(numpy.uint8)


def _by_hand(image, v):
    """View ``v`` of one (3, 32, 32) image, by slicing and Pillow."""
    k = (v % 18) // 2  # crop position, row-major over the 3x3 offsets
    size, step = (24, 4) if v < 18 else (28, 2)
    r, c = step * (k // 3), step * (k % 3)
    flip = v % 2 == 1
    crop = image[:, r:r + size, c:c + size]
    if size == 28:
        pil = Image.fromarray(numpy.ascontiguousarray(crop.transpose(1, 2, 0)))
        crop = numpy.asarray(pil.resize((24, 24), Image.NEAREST)).transpose(
            2, 0, 1)
    if flip:
        crop = crop[:, :, ::-1]
    return crop.astype(numpy.float32)


def test_view_numbering():
    views = [A.describe_paper_view(v) for v in range(36)]
    keys = {(d['size'], d['offset'], d['flip']) for d in views}
    assert len(keys) == 36
    assert views[A.CENTER_VIEW] == dict(size=24, offset=(4, 4), flip=False)
    assert A.CENTER_VIEW == 8
    assert views[0] == dict(size=24, offset=(0, 0), flip=False)
    assert views[5] == dict(size=24, offset=(0, 8), flip=True)
    assert views[17] == dict(size=24, offset=(8, 8), flip=True)
    assert views[18] == dict(size=28, offset=(0, 0), flip=False)
    assert views[26] == dict(size=28, offset=(2, 2), flip=False)
    assert views[35] == dict(size=28, offset=(4, 4), flip=True)
    assert {d['offset'] for d in views[:18]} == {
        (r, c) for r in (0, 4, 8) for c in (0, 4, 8)}
    assert {d['offset'] for d in views[18:]} == {
        (r, c) for r in (0, 2, 4) for c in (0, 2, 4)}
    with pytest.raises(ValueError):
        A.describe_paper_view(36)


def test_views_equal_slicing_and_pillow(images):
    for v in range(36):
        got = A.paper_views(images, v, standardize=False)
        assert got.shape == (5, 3, 24, 24) and got.dtype == numpy.float32
        for i in range(len(images)):
            numpy.testing.assert_array_equal(got[i], _by_hand(images[i], v))
    # Two spot checks written out in full.
    numpy.testing.assert_array_equal(
        A.paper_views(images, A.CENTER_VIEW, standardize=False),
        images[:, :, 4:28, 4:28])
    numpy.testing.assert_array_equal(
        A.paper_views(images, 13, standardize=False),  # (8, 0), flipped
        images[:, :, 8:32, 0:24][..., ::-1])


def test_nearest_resize_map():
    rows, cols = A.paper_view_table()
    # Pillow's NEAREST from 28 to 24 drops every 7th-ish pixel: the map is
    # increasing, starts at 0, ends at 27 and skips 4 of the 28 indices.
    col_map = cols[18, 0]
    assert col_map[0] == 0 and col_map[-1] == 27
    assert numpy.all(numpy.diff(col_map) >= 1)
    assert len(set(col_map)) == 24
    numpy.testing.assert_array_equal(rows[18][:, 0], col_map)
    # Flipped views mirror the resized crop, not the crop.
    numpy.testing.assert_array_equal(cols[19], cols[18][:, ::-1])


def test_views_distinct_and_mixed(images):
    all_views = A.paper_all_views(images)
    assert all_views.shape == (5, 36, 3, 24, 24)
    assert all_views.dtype == numpy.float32
    flat = all_views[0].reshape(36, -1)
    distinct = {flat[v].tobytes() for v in range(36)}
    assert len(distinct) == 36
    for v in range(36):
        numpy.testing.assert_array_equal(all_views[:, v],
                                         A.paper_views(images, v))
    views = numpy.array([0, 35, 8, 19, 8])
    mixed = A.paper_views(images, views)
    for i, v in enumerate(views):
        numpy.testing.assert_array_equal(mixed[i], all_views[i, v])
    with pytest.raises(ValueError):
        A.paper_views(images, numpy.array([0, 1, 2, 3, 36]))


def test_per_crop_standardization(images):
    images = images.copy()
    images[1, 2] = 7  # a constant channel: std 0, standardises to 0
    raw = A.paper_views(images, numpy.array([3, 8, 20, 30, 8]),
                        standardize=False).astype(numpy.float64)
    x = A.paper_views(images, numpy.array([3, 8, 20, 30, 8]))
    mean = raw.mean(axis=(2, 3), keepdims=True)
    std = raw.std(axis=(2, 3), keepdims=True)
    numpy.testing.assert_allclose(x, (raw - mean) / (std + 1e-5),
                                  rtol=1e-6, atol=1e-6)
    per = x.reshape(5, 3, -1).astype(numpy.float64)
    numpy.testing.assert_allclose(per.mean(axis=2), 0, atol=1e-6)
    s = per.std(axis=2)
    numpy.testing.assert_allclose(numpy.delete(s.ravel(), 5), 1, atol=1e-5)
    assert s[1, 2] == 0 and numpy.all(x[1, 2] == 0)
    # Standardisation uses each crop's own statistics: a brighter copy of
    # an image gives the same views.
    brighter = (images // 2 + 100).astype(numpy.uint8)
    numpy.testing.assert_allclose(
        A.paper_all_views(brighter),
        A.paper_all_views((images // 2).astype(numpy.uint8)),
        atol=1e-5)


def test_random_paper_views(images):
    rng = numpy.random.RandomState(3)
    x, views = A.random_paper_views(images, rng)
    numpy.testing.assert_array_equal(
        views, numpy.random.RandomState(3).randint(0, 36, 5))
    numpy.testing.assert_array_equal(x, A.paper_views(images, views))


def test_channel_mean_std(images):
    mean, std = A.channel_mean_std(images)
    assert mean.dtype == std.dtype == numpy.float32 and mean.shape == (3,)
    ref = images.astype(numpy.float64)
    numpy.testing.assert_allclose(mean, ref.mean(axis=(0, 2, 3)), rtol=1e-6)
    numpy.testing.assert_allclose(std, ref.std(axis=(0, 2, 3)), rtol=1e-6)


def test_standard_crops(images):
    mean = numpy.array([120., 110., 100.], numpy.float32)
    std = numpy.array([60., 50., 40.], numpy.float32)
    norm = (images.astype(numpy.float32) - mean[:, None, None]) / \
        std[:, None, None]
    numpy.testing.assert_allclose(A.normalize(images, mean, std), norm,
                                  rtol=1e-6)
    # Offset (4, 4) is the image itself; flipping mirrors it.
    centre = A.standard_crops(images, [[4, 4]] * 5, [False] * 5, mean, std)
    numpy.testing.assert_array_equal(centre, A.normalize(images, mean, std))
    flipped = A.standard_crops(images, [[4, 4]] * 5, [True] * 5, mean, std)
    numpy.testing.assert_array_equal(flipped, centre[..., ::-1])
    numpy.testing.assert_array_equal(
        A.standard_view(images, 1, mean, std), centre[..., ::-1])
    # Offset (0, 0): 4 rows and columns of zero padding, then the image.
    corner = A.standard_crops(images, [[0, 0]] * 5, [False] * 5, mean, std)
    assert numpy.all(corner[:, :, :4] == 0) and numpy.all(
        corner[:, :, :, :4] == 0)
    numpy.testing.assert_array_equal(corner[:, :, 4:, 4:],
                                     centre[:, :, :28, :28])
    # Any offsets and flips, against slicing a padded copy by hand.
    offsets = numpy.array([[0, 8], [8, 0], [3, 5], [8, 8], [1, 7]])
    flips = numpy.array([True, False, True, False, True])
    got = A.standard_crops(images, offsets, flips, mean, std)
    padded = numpy.pad(centre, ((0, 0), (0, 0), (4, 4), (4, 4)))
    for i, ((r, c), f) in enumerate(zip(offsets, flips)):
        want = padded[i, :, r:r + 32, c:c + 32]
        numpy.testing.assert_array_equal(got[i], want[..., ::-1] if f
                                         else want)
    with pytest.raises(ValueError):
        A.standard_crops(images, [[9, 0]] * 5, [False] * 5, mean, std)


def test_random_standard(images):
    mean, std = A.channel_mean_std(images)
    many = numpy.repeat(images, 40, axis=0)
    x, offsets, flips = A.random_standard(many, mean, std,
                                          numpy.random.RandomState(1))
    assert x.shape == (200, 3, 32, 32) and x.dtype == numpy.float32
    assert offsets.min() == 0 and offsets.max() == 8
    assert set(numpy.unique(offsets)) == set(range(9))
    assert 60 < flips.sum() < 140
    numpy.testing.assert_array_equal(
        x, A.standard_crops(many, offsets, flips, mean, std))
    x2, _, _ = A.random_standard(many, mean, std, numpy.random.RandomState(1))
    numpy.testing.assert_array_equal(x, x2)


def test_eval_view(images):
    mean, std = A.channel_mean_std(images)
    assert A.n_views('paper') == 36 and A.n_views('standard') == 2
    assert A.center_view_index('paper') == 8
    assert A.center_view_index('standard') == 0
    numpy.testing.assert_array_equal(A.eval_view(images, 'paper', 8),
                                     A.paper_views(images, 8))
    numpy.testing.assert_array_equal(
        A.eval_view(images, 'standard', 0, mean, std),
        A.normalize(images, mean, std))
    with pytest.raises(ValueError, match='mean and std'):
        A.eval_view(images, 'standard', 0)
    assert A.normalization(images, 'paper') == (None, None)
    for got, want in zip(A.normalization(images, 'standard'), (mean, std)):
        numpy.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError):
        A.n_views('bogus')

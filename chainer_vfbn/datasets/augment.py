"""Data augmentation: the paper's 36 views and He et al.'s crop and flip.

Both pipelines are vectorised over a batch with NumPy fancy indexing: every
view is a fixed map from output pixels to input pixels, so a batch of views
is one gather, whatever view each image gets.

The paper's views (``'paper'`` preset, 24x24 inputs)
----------------------------------------------------
Appendix B.1 of the paper and the code it points to (mitmul/chainer-cifar10,
``transform.py`` of June 2016) expand each 32x32 image into 36 views::

    {9 crops of 24x24 at (row, col) offsets (0, 4, 8) x (0, 4, 8),
     9 crops of 28x28 at offsets (0, 2, 4) x (0, 2, 4) resized to 24x24}
    x {as is, left-right flip}

View numbering (the 2016 code's order)::

    v = 18 * s + 2 * k + f,  v in 0..35
    s = 0: 24x24 crop at (4 * (k // 3), 4 * (k % 3))
    s = 1: 28x28 crop at (2 * (k // 3), 2 * (k % 3)), resized to 24x24
    f = 1: flipped left-right (after the resize, as in the 2016 code)

so :data:`CENTER_VIEW` ``= 8`` is the 24x24 crop at offset (4, 4), not
flipped. Two details follow the 2016 code and are easy to miss:

* Resizing is nearest-neighbour: the 2016 code called
  ``scipy.misc.imresize(im, (24, 24), 'nearest')``, which is Pillow's
  ``NEAREST`` resize of the uint8 image. We take the pixel map of Pillow's
  ``Image.NEAREST`` resize from 28 to 24 once (resizing images of row and
  column indices) and gather with it, which equals resizing every crop with
  Pillow. (``chainer.functions.resize_images`` is bilinear and broken on
  NumPy >= 1.24, so it is not used.)
* Each crop is standardised on its own, per channel, by its own mean and
  standard deviation: ``(x - mean_c) / (std_c + 1e-5)`` (the 2016 code
  computes these per crop; its line ``im -= std + 1e-5`` is a typo for a
  division, which is what the code's comment, "global contrast
  normalization", and the paper's setup mean). No data-set statistics are
  used.

He et al.'s pipeline (``'standard'`` preset, 32x32 inputs)
----------------------------------------------------------
He et al. (2016), Sec. 4.2: each image is normalised by the training set's
per-channel mean and standard deviation, padded by 4 zeros on each side (so
the padding is the data-set mean colour, as in fb.resnet.torch), and a random
32x32 crop, randomly flipped left-right, is taken. The test view is the
normalised image itself; its test-time augmentation is {as is, flipped}
(views 0 and 1).
"""
import numpy
from PIL import Image

SIDE = 32  # CIFAR images are 32x32
CROP = 24  # input side of the paper's network
SCALE_CROP = 28  # crops resized down to CROP
N_PAPER_VIEWS = 36
# A "paper epoch" is one pass over the 36-view augmented set (1.8M images
# of CIFAR-10's 50k): 36 standard epochs, one random view of each image.
PAPER_EPOCH = N_PAPER_VIEWS
CENTER_VIEW = 8  # 24x24 crop at offset (4, 4), not flipped
EPS = 1e-5  # added to each crop's std, as in the 2016 code

PAD = 4  # He et al.: 4 pixels of padding, then a random 32x32 crop
N_STANDARD_VIEWS = 2  # as is, flipped


def describe_paper_view(v):
    """The crop that paper view ``v`` takes.

    Args:
        v (int): View index in ``0..35``.

    Returns:
        dict: ``size`` (24 or 28: the side of the crop before resizing),
        ``offset`` ((row, col) of its top-left pixel) and ``flip`` (bool).
    """
    v = int(v)
    if not 0 <= v < N_PAPER_VIEWS:
        raise ValueError('paper views are numbered 0..35, got %d' % v)
    s, r = divmod(v, 18)
    k, f = divmod(r, 2)
    step = 4 if s == 0 else 2
    return dict(size=CROP if s == 0 else SCALE_CROP,
                offset=(step * (k // 3), step * (k % 3)), flip=bool(f))


def _nearest_map(src, dst):
    """Pillow's NEAREST resize from ``src`` to ``dst`` pixels, as index maps.

    Returns:
        tuple: ``(rows, cols)``, int arrays of shape ``(dst, dst)``: output
        pixel ``(i, j)`` is input pixel ``(rows[i, j], cols[i, j])``.
    """
    index = numpy.arange(src, dtype=numpy.uint8)
    resample = getattr(Image, 'Resampling', Image).NEAREST
    maps = []
    for grid in numpy.meshgrid(index, index, indexing='ij'):
        image = Image.fromarray(numpy.ascontiguousarray(grid))
        maps.append(numpy.asarray(image.resize((dst, dst), resample),
                                  dtype=numpy.intp))
    return tuple(maps)


_PAPER_TABLE = None


def paper_view_table():
    """Pixel maps of the 36 views into the 32x32 image.

    Returns:
        tuple: ``(rows, cols)``, int arrays of shape ``(36, 24, 24)``: view
        ``v`` of image ``x`` is ``x[:, rows[v], cols[v]]``.
    """
    global _PAPER_TABLE
    if _PAPER_TABLE is None:
        base = numpy.arange(CROP)
        plain = numpy.meshgrid(base, base, indexing='ij')
        scaled = _nearest_map(SCALE_CROP, CROP)
        rows = numpy.empty((N_PAPER_VIEWS, CROP, CROP), dtype=numpy.intp)
        cols = numpy.empty_like(rows)
        for v in range(N_PAPER_VIEWS):
            view = describe_paper_view(v)
            r, c = plain if view['size'] == CROP else scaled
            if view['flip']:
                r, c = r[:, ::-1], c[:, ::-1]
            rows[v] = r + view['offset'][0]
            cols[v] = c + view['offset'][1]
        rows.flags.writeable = cols.flags.writeable = False
        _PAPER_TABLE = rows, cols
    return _PAPER_TABLE


def _check_images(images):
    if not isinstance(images, numpy.ndarray) or images.ndim != 4 \
            or images.shape[1:] != (3, SIDE, SIDE):
        raise ValueError('expected images of shape (B, 3, 32, 32), got %s'
                         % (getattr(images, 'shape', type(images)),))


def standardize_per_crop(x):
    """Standardise each image and channel by its own mean and std.

    Args:
        x (numpy.ndarray): Crops, shape ``(..., C, H, W)``.

    Returns:
        numpy.ndarray: ``float32`` ``(x - mean) / (std + 1e-5)``, the mean
        and (population) std taken over ``H, W`` of each crop and channel.
    """
    x = x.astype(numpy.float64)
    mean = x.mean(axis=(-2, -1), keepdims=True)
    std = x.std(axis=(-2, -1), keepdims=True)
    return ((x - mean) / (std + EPS)).astype(numpy.float32)


def paper_views(images, views, standardize=True):
    """One paper view per image.

    Args:
        images (numpy.ndarray): ``uint8`` of shape ``(B, 3, 32, 32)``.
        views (numpy.ndarray or int): View indices in ``0..35``, shape
            ``(B,)``, or one index for the whole batch.
        standardize (bool): Standardise each crop (the network's input);
            ``False`` returns the raw pixel values, for tests.

    Returns:
        numpy.ndarray: ``float32`` of shape ``(B, 3, 24, 24)``.
    """
    _check_images(images)
    views = numpy.broadcast_to(numpy.asarray(views, dtype=numpy.intp),
                               (len(images),))
    if len(views) and (views.min() < 0 or views.max() >= N_PAPER_VIEWS):
        raise ValueError('paper views are numbered 0..35')
    rows, cols = paper_view_table()
    b = numpy.arange(len(images))[:, None, None]
    # (B, 24, 24, 3): the advanced indices come first, the channel last.
    x = images[b, :, rows[views], cols[views]].transpose(0, 3, 1, 2)
    if standardize:
        return standardize_per_crop(x)
    return x.astype(numpy.float32)


def paper_all_views(images, standardize=True):
    """All 36 paper views of each image.

    Args:
        images (numpy.ndarray): ``uint8`` of shape ``(B, 3, 32, 32)``.
        standardize (bool): As in :func:`paper_views`.

    Returns:
        numpy.ndarray: ``float32`` of shape ``(B, 36, 3, 24, 24)``.
    """
    _check_images(images)
    rows, cols = paper_view_table()
    # (B, 3, 36, 24, 24) -> (B, 36, 3, 24, 24)
    x = images[:, :, rows, cols].transpose(0, 2, 1, 3, 4)
    if standardize:
        return standardize_per_crop(x)
    return x.astype(numpy.float32)


def random_paper_views(images, rng):
    """A random paper view of each image (training).

    Args:
        images (numpy.ndarray): ``uint8`` of shape ``(B, 3, 32, 32)``.
        rng (numpy.random.RandomState): Source of the view indices.

    Returns:
        tuple: ``(x, views)``: ``float32`` ``(B, 3, 24, 24)`` and the drawn
        indices ``(B,)``.
    """
    views = rng.randint(0, N_PAPER_VIEWS, size=len(images))
    return paper_views(images, views), views


def channel_mean_std(images):
    """Per-channel mean and std of a uint8 image set (exact, in float64).

    Computed from per-channel histograms, so 50,000 images need no float
    copy.

    Args:
        images (numpy.ndarray): ``uint8`` of shape ``(N, 3, H, W)``.

    Returns:
        tuple: ``(mean, std)``, ``float32`` arrays of shape ``(3,)`` in pixel
        units (0..255).
    """
    if images.dtype != numpy.uint8:
        raise ValueError('expected uint8 images, got %s' % images.dtype)
    values = numpy.arange(256, dtype=numpy.float64)
    mean = numpy.empty(images.shape[1])
    std = numpy.empty(images.shape[1])
    for c in range(images.shape[1]):
        hist = numpy.bincount(images[:, c].ravel(), minlength=256)
        p = hist / hist.sum()
        mean[c] = (p * values).sum()
        std[c] = numpy.sqrt((p * (values - mean[c]) ** 2).sum())
    return mean.astype(numpy.float32), std.astype(numpy.float32)


def normalization(train_images, augment):
    """The data-set statistics a preset needs, from the training images.

    Args:
        train_images (numpy.ndarray): ``uint8`` ``(N, 3, 32, 32)``.
        augment (str): ``'paper'`` (standardises each crop by itself, so
            needs none: ``(None, None)``) or ``'standard'``
            (:func:`channel_mean_std`).

    Returns:
        tuple: ``(mean, std)``.
    """
    n_views(augment)  # validates augment
    if augment == 'paper':
        return None, None
    return channel_mean_std(train_images)


def normalize(images, mean, std):
    """``(x - mean_c) / std_c`` with the data set's per-channel statistics.

    Args:
        images (numpy.ndarray): ``uint8`` ``(B, 3, H, W)``.
        mean, std (numpy.ndarray): Shape ``(3,)``, pixel units.

    Returns:
        numpy.ndarray: ``float32`` ``(B, 3, H, W)``.
    """
    mean = numpy.asarray(mean, dtype=numpy.float32).reshape(1, -1, 1, 1)
    std = numpy.asarray(std, dtype=numpy.float32).reshape(1, -1, 1, 1)
    return (images.astype(numpy.float32) - mean) / std


def standard_crops(images, offsets, flips, mean, std):
    """He et al.'s crops at given offsets.

    Args:
        images (numpy.ndarray): ``uint8`` ``(B, 3, 32, 32)``.
        offsets (numpy.ndarray): ``(B, 2)`` (row, col) of each crop in the
            zero-padded 40x40 image, each in ``0..8``; ``(4, 4)`` is the
            image itself.
        flips (numpy.ndarray): ``(B,)`` bools, flip left-right.
        mean, std (numpy.ndarray): Training-set statistics, shape ``(3,)``.

    Returns:
        numpy.ndarray: ``float32`` ``(B, 3, 32, 32)``.
    """
    _check_images(images)
    offsets = numpy.asarray(offsets, dtype=numpy.intp).reshape(-1, 2)
    flips = numpy.asarray(flips, dtype=bool).reshape(-1)
    if len(offsets) and (offsets.min() < 0 or offsets.max() > 2 * PAD):
        raise ValueError('crop offsets must be in 0..%d' % (2 * PAD))
    padded = numpy.pad(normalize(images, mean, std),
                       ((0, 0), (0, 0), (PAD, PAD), (PAD, PAD)))
    index = numpy.arange(SIDE)
    rows = offsets[:, :1] + index  # (B, 32)
    cols = offsets[:, 1:] + numpy.where(flips[:, None], index[::-1], index)
    b = numpy.arange(len(images))[:, None, None]
    return padded[b, :, rows[:, :, None], cols[:, None, :]].transpose(
        0, 3, 1, 2)


def random_standard(images, mean, std, rng):
    """A random padded crop and flip of each image (training).

    Args:
        images (numpy.ndarray): ``uint8`` ``(B, 3, 32, 32)``.
        mean, std (numpy.ndarray): Training-set statistics, shape ``(3,)``.
        rng (numpy.random.RandomState): Source of offsets and flips.

    Returns:
        tuple: ``(x, offsets, flips)``.
    """
    offsets = rng.randint(0, 2 * PAD + 1, size=(len(images), 2))
    flips = rng.randint(0, 2, size=len(images)).astype(bool)
    return standard_crops(images, offsets, flips, mean, std), offsets, flips


def standard_view(images, v, mean, std):
    """Test view ``v`` of the standard preset: 0 as is, 1 flipped."""
    if v not in (0, 1):
        raise ValueError('standard views are numbered 0..1, got %r' % (v,))
    _check_images(images)
    x = normalize(images, mean, std)
    return numpy.ascontiguousarray(x[..., ::-1]) if v else x


def n_views(augment):
    """Number of test-time views of a preset (36 paper, 2 standard)."""
    if augment == 'paper':
        return N_PAPER_VIEWS
    if augment == 'standard':
        return N_STANDARD_VIEWS
    raise ValueError("augment must be 'paper' or 'standard', got %r"
                     % (augment,))


def center_view_index(augment):
    """The single test view of a preset: :data:`CENTER_VIEW` or 0."""
    n_views(augment)
    return CENTER_VIEW if augment == 'paper' else 0


def eval_view(images, augment, v, mean=None, std=None):
    """View ``v`` of every image, as the network's input.

    Args:
        images (numpy.ndarray): ``uint8`` ``(B, 3, 32, 32)``.
        augment (str): ``'paper'`` or ``'standard'``.
        v (int): View index, ``0..n_views(augment) - 1``.
        mean, std (numpy.ndarray): Training-set statistics (``'standard'``
            only).

    Returns:
        numpy.ndarray: ``float32`` ``(B, 3, 24, 24)`` or ``(B, 3, 32, 32)``.
    """
    if augment == 'paper':
        return paper_views(images, v)
    if augment == 'standard':
        if mean is None or std is None:
            raise ValueError("the 'standard' preset needs the training set's "
                             'mean and std (see channel_mean_std)')
        return standard_view(images, v, mean, std)
    n_views(augment)  # raises

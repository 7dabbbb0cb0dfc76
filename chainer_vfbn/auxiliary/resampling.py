"""Resampling a map onto another grid by two fixed linear maps.

Both auxiliary networks resample ``h`` spatially: DGL's averages it onto a
grid that depends on its size, then onto 2x2, whatever the size (adaptive
average pooling); InfoPro's decoder enlarges it bilinearly to the input's
size. Each is separable: output ``y[b, c] = R · x[b, c] · Cᵀ`` with ``R``
an ``(h_out, H)`` and ``C`` a ``(w_out, W)`` matrix, applied here with
``F.linear`` and transposes, so it is differentiable to any order and runs
on any device. (Chainer has no adaptive pooling, and its
``F.resize_images`` fails on NumPy >= 1.24, see :mod:`chainer_vfbn._compat`.)
"""
import chainer
import chainer.functions as F
import numpy


def bins(size, n_out):
    """The input indices each of ``n_out`` adaptive-pooling cells averages:
    cell ``i`` takes ``floor(i·size/n_out) .. ceil((i+1)·size/n_out) - 1``
    (the bins of PyTorch's ``adaptive_avg_pool2d``: neighbours may share an
    index when ``size`` is not a multiple of ``n_out``, and indices repeat
    when ``n_out > size``).

    Example:
        >>> bins(5, 2)
        [range(0, 3), range(2, 5)]
    """
    return [range(i * size // n_out, -(-(i + 1) * size // n_out))
            for i in range(n_out)]


def averaging_matrix(size, n_out):
    """``(n_out, size)`` float64 matrix whose row ``i`` averages
    ``bins(size, n_out)[i]``."""
    m = numpy.zeros((n_out, size))
    for i, cells in enumerate(bins(size, n_out)):
        m[i, cells.start:cells.stop] = 1. / len(cells)
    return m


def bilinear_matrix(size, n_out):
    """``(n_out, size)`` float64 matrix of linear interpolation with the
    corners aligned: output ``i`` samples the input at ``i·(size-1)/(n_out-1)``
    (at 0 if ``n_out == 1``), between its two neighbours.

    Example:
        >>> bilinear_matrix(2, 3)
        array([[1. , 0. ],
               [0.5, 0.5],
               [0. , 1. ]])
    """
    m = numpy.zeros((n_out, size))
    scale = (size - 1) / (n_out - 1) if n_out > 1 else 0.
    for i in range(n_out):
        src = i * scale
        low = min(int(numpy.floor(src)), size - 1)
        high = min(low + 1, size - 1)
        frac = src - low
        m[i, low] += 1. - frac
        m[i, high] += frac
    return m


def separable(x, rows, cols):
    """``y[b, c] = rows · x[b, c] · colsᵀ`` for ``x`` ``(B, C, H, W)``.

    Args:
        x (~chainer.Variable or array): ``(B, C, H, W)``.
        rows (numpy.ndarray): ``(h_out, H)``.
        cols (numpy.ndarray): ``(w_out, W)``.

    Returns:
        ~chainer.Variable: ``(B, C, h_out, w_out)``, of ``x``'s dtype.
    """
    b, c, height, width = x.shape
    h_out, w_out = rows.shape[0], cols.shape[0]
    xp = chainer.backend.get_array_module(x)
    rows = xp.asarray(rows, dtype=x.dtype)
    cols = xp.asarray(cols, dtype=x.dtype)
    # Columns first: (B·C·H, W) times colsᵀ; then the rows, the same way on
    # the transposed map.
    y = F.linear(F.reshape(x, (b * c * height, width)), cols)
    y = F.transpose(F.reshape(y, (b, c, height, w_out)), (0, 1, 3, 2))
    y = F.linear(F.reshape(y, (b * c * w_out, height)), rows)
    return F.transpose(F.reshape(y, (b, c, w_out, h_out)), (0, 1, 3, 2))


def adaptive_average_pooling_2d(x, out_size):
    """Average ``x`` ``(B, C, H, W)`` onto an ``out_size`` grid: cell
    ``(i, j)`` is the mean over the rows ``bins(H, h_out)[i]`` and the
    columns ``bins(W, w_out)[j]``.

    Example:
        >>> adaptive_average_pooling_2d(numpy.ones((2, 3, 11, 11), 'f'),
        ...                             (2, 2)).shape
        (2, 3, 2, 2)
    """
    height, width = x.shape[2:]
    return separable(x, averaging_matrix(height, out_size[0]),
                     averaging_matrix(width, out_size[1]))


def resize_bilinear(x, out_size):
    """``x`` ``(B, C, H, W)`` resized bilinearly to ``out_size``, corners
    aligned (PyTorch's ``interpolate(mode='bilinear', align_corners=True)``).

    Example:
        >>> resize_bilinear(numpy.ones((2, 3, 11, 11), 'f'), (24, 24)).shape
        (2, 3, 24, 24)
    """
    height, width = x.shape[2:]
    return separable(x, bilinear_matrix(height, out_size[0]),
                     bilinear_matrix(width, out_size[1]))

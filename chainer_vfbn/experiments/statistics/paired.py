"""Paired statistics for two methods scored on the same test images.

Every row of a results table is scored on the same images, and a seed gives
every row the same batches and augmentation, so two rows are compared image
by image and seed by seed, not as independent samples:

- :func:`mcnemar_exact`: one pair of runs (one seed), the exact McNemar test
  on the images that exactly one of the two runs gets right.
- :func:`sign_flip_test`: all the seed pairs of two rows at once, an exact
  permutation test that flips, image by image, which row is which (in every
  seed at once, so that an image that is hard in every seed counts once).
  With one seed it is :func:`mcnemar_exact`.
- :func:`paired_bootstrap`: a 95% interval for the difference of the
  seed-averaged error rates (or any statistic of several rows' errors, such
  as the fraction of a gap recovered), resampling images and seeds together.
- :func:`seed_t_test`: the seeds as the unit instead of the images: a paired
  t-test of the per-seed differences of the error rates.
- :func:`holm`: Holm's step-down adjustment of a family of p-values.

What each test can say: McNemar and the sign-flip test take the trained
networks as given and ask whether they differ on these images. Training
noise is not in them: two runs of one configuration and seed on two kinds of
machine differ at McNemar p = 0.017 (BP at seed 0, docs/RESULTS.md). The
bootstrap, which also draws the seeds, and the seed-level t-test include
the training noise, the first crudely with few seeds, the second with few
degrees of freedom.

Errors are given as 0/1 arrays ``(seeds, images)``: 1 where the run's
predicted class is wrong.

The binomial and Student t tails come from ``scipy.stats`` (the ``report``
extra), the mean and deviation from :mod:`statistics`; the sign-flip test
and the bootstrap, which pair images and seeds as no library does, are
written here.
"""
import functools
import math
import statistics

import numpy

from chainer_vfbn.experiments import ExperimentError


def mcnemar_exact(wrong_a, wrong_b):
    """The exact (binomial) McNemar test of two runs on the same images.

    Args:
        wrong_a, wrong_b: 0/1 per image, ``(N,)``: 1 where that run errs.

    Returns:
        dict: ``only_a`` (images only run a gets wrong), ``only_b`` and the
        two-sided ``p``: twice the binomial(only_a + only_b, 1/2) tail of
        the smaller count, at most 1.

    Example:
        >>> mcnemar_exact([1, 1, 1, 0], [0, 0, 0, 0])['p']
        0.25
    """
    a, b = _as_wrong(wrong_a), _as_wrong(wrong_b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError('mcnemar_exact needs two (N,) arrays, got %s and %s'
                         % (a.shape, b.shape))
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    tail = _scipy_stats().binom.cdf(min(only_a, only_b), only_a + only_b, 0.5)
    return dict(only_a=only_a, only_b=only_b, p=min(1., 2. * float(tail)))


def sign_flip_test(wrong_a, wrong_b):
    """Exact two-sided test that two rows err equally often, paired by
    image and seed.

    The statistic is the total of ``wrong_a - wrong_b`` over seeds and
    images. Under the null hypothesis that the two rows are exchangeable on
    each image, the sign of each image's total over the seeds is a fair
    coin; the p-value is the exact probability, over those ``2**N`` sign
    patterns, of a total at least as far from 0 as the one observed. With
    one seed this is :func:`mcnemar_exact`.

    Args:
        wrong_a, wrong_b: 0/1 arrays ``(S, N)`` (or ``(N,)``), seed ``s`` of
            one row paired with seed ``s`` of the other.

    Returns:
        dict: ``total`` (errors of a minus errors of b, summed over seeds
        and images), ``images_differing`` and the two-sided ``p``.
    """
    a, b = _paired(wrong_a, wrong_b)
    per_image = (a.astype(numpy.int64) - b).sum(axis=0)
    sizes = numpy.abs(per_image[per_image != 0])
    total = int(per_image.sum())
    # The distribution of sum(±size), a polynomial in x built one image at
    # a time: index j stands for the value j - offset.
    offset = int(sizes.sum())
    dist = numpy.zeros(2 * offset + 1)
    dist[offset] = 1.
    for size in sizes:
        dist = 0.5 * (numpy.roll(dist, size) + numpy.roll(dist, -size))
    values = numpy.arange(-offset, offset + 1)
    # A small slack: the distribution's values are integers.
    p = float(dist[numpy.abs(values) >= abs(total) - 1e-9].sum())
    return dict(total=total, images_differing=len(sizes), p=min(1., p))


def paired_bootstrap(statistic, wrongs, n_boot=10000, seed=0, level=0.95):
    """Percentile bootstrap interval of a statistic of paired rows.

    Each replicate draws the images (``N`` of them, with replacement) and
    the seeds (``S``, with replacement) once, and applies them to every
    row, so the rows stay paired.

    Args:
        statistic (callable): ``statistic(*error_rates)``: from each row's
            error rate (%) averaged over the drawn seeds and images, a float
            (e.g. ``lambda a, b: a - b``). It gets NumPy arrays of all the
            replicates at once.
        wrongs (list): One 0/1 array ``(S, N)`` per row, all of one shape.
        n_boot (int): Replicates.
        seed (int): Of the resampling.
        level (float): Coverage of the interval.

    Returns:
        dict: ``estimate`` (the statistic of the observed rates), ``low``
        and ``high``, the interval's ends (``nan`` replicates, e.g. a ratio
        over zero, are dropped and counted in ``undefined``).

    Example:
        >>> a = numpy.array([[1, 1, 0, 0]]); b = numpy.array([[0, 0, 0, 0]])
        >>> paired_bootstrap(lambda x, y: x - y, [a, b])['estimate']
        50.0
    """
    rows = [_as_wrong(w).reshape(-1, _as_wrong(w).shape[-1]) for w in wrongs]
    if len({r.shape for r in rows}) != 1:
        raise ValueError('paired_bootstrap needs rows of one (seeds, images) '
                         'shape, got %s' % sorted({r.shape for r in rows}))
    n_seeds, n_images = rows[0].shape
    image_counts, seed_counts = _draws(n_seeds, n_images, n_boot, seed)
    scale = 100. / (n_seeds * n_images)
    rates = [((seed_counts * (r.astype(numpy.float64) @ image_counts).T)
              .sum(axis=1)) * scale for r in rows]
    with numpy.errstate(divide='ignore', invalid='ignore'):
        observed = statistic(*[numpy.float64(100. * r.mean()) for r in rows])
        replicates = numpy.asarray(statistic(*rates), dtype=numpy.float64)
    finite = replicates[numpy.isfinite(replicates)]
    tail = 100. * (1 - level) / 2
    low, high = (numpy.percentile(finite, [tail, 100 - tail]) if len(finite)
                 else (float('nan'), float('nan')))
    return dict(estimate=float(observed), low=float(low), high=float(high),
                undefined=int(n_boot - len(finite)), n_boot=n_boot)


@functools.lru_cache(maxsize=8)
def _draws(n_seeds, n_images, n_boot, seed):
    """How often each image ``(N, B)`` and each seed ``(B, S)`` is drawn in
    each replicate: the same draws for every comparison of a report."""
    rng = numpy.random.RandomState(seed)

    def counts(n, size):
        idx = rng.randint(n, size=(size, n)) + n * numpy.arange(size)[:, None]
        return numpy.bincount(idx.ravel(), minlength=n * size).reshape(size, n)
    image_counts = counts(n_images, n_boot).T.astype(numpy.float64)
    return image_counts, counts(n_seeds, n_boot)


def seed_t_test(wrong_a, wrong_b):
    """Paired t-test over the seeds: does row a err more than row b from
    one training run to the next?

    Each seed gives one difference of error rates (points), on the same
    images; the test is Student's t on those differences with ``S - 1``
    degrees of freedom. Unlike :func:`sign_flip_test` it counts the
    training noise, and unlike the bootstrap it does not draw the images.

    Args:
        wrong_a, wrong_b: 0/1 arrays ``(S, N)``, seed ``s`` paired with
            seed ``s``.

    Returns:
        dict: ``diffs`` (per seed), ``mean``, ``t``, ``df``, the two-sided
        ``p`` and ``no_spread``. ``t`` and ``p`` are None with fewer than
        two seeds. The same nonzero difference in every seed gives
        ``t = ±inf``, ``p`` None and ``no_spread`` True: with nothing to
        measure the training noise against, the test says nothing (its
        textbook p of 0 had read as decisive). Differences all 0 give
        ``t = 0`` and ``p = 1``.

    Example:
        >>> seed_t_test([[1, 1, 0, 0], [1, 0, 0, 0]],
        ...             [[0, 0, 0, 0], [0, 0, 0, 0]])['diffs']
        [50.0, 25.0]
    """
    a, b = _paired(wrong_a, wrong_b)
    # from the counts of wrong images: two seeds that differ by as many
    # images give one difference, not two a rounding apart (whose tiny
    # spread made t huge and p about 1e-15 instead of no test at all)
    counts = (a.sum(axis=1, dtype=numpy.int64)
              - b.sum(axis=1, dtype=numpy.int64))
    diffs = [100. * int(k) / a.shape[1] for k in counts]
    n = len(diffs)
    mean = statistics.fmean(diffs)
    out = dict(diffs=diffs, mean=mean, df=n - 1, t=None, p=None,
               no_spread=False)
    if n < 2:
        return out
    sd = statistics.stdev(diffs)
    if sd == 0 and mean == 0:
        out.update(t=0., p=1.)
    elif sd == 0:
        out.update(t=math.copysign(math.inf, mean), no_spread=True)
    else:
        out['t'] = mean / (sd / math.sqrt(n))
        out['p'] = 2. * float(_scipy_stats().t.sf(abs(out['t']), n - 1))
    return out


def holm(pvalues):
    """Holm's step-down adjusted p-values, in the order given.

    Example:
        >>> holm([0.01, 0.04, 0.03])
        [0.03, 0.06, 0.06]
    """
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    m, running, adjusted = len(pvalues), 0., [None] * len(pvalues)
    for rank, i in enumerate(order):
        running = max(running, min(1., (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def _scipy_stats():
    """``scipy.stats``, or a one-line error naming the extra that brings it."""
    try:
        # Imported here: scipy is a heavy optional dependency (the `report`
        # extra) that only the p-values need; planning and running the
        # schedules, the Table 1 report and --help work without it.
        from scipy import stats
    except ImportError:
        raise ExperimentError(
            "the p-values need scipy: pip install -e '.[report]'") from None
    return stats


def _as_wrong(w):
    w = numpy.asarray(w)
    if w.dtype != numpy.bool_:
        if w.size and not numpy.isin(w, (0, 1)).all():
            raise ValueError('errors must be 0/1 per image')
        w = w.astype(numpy.bool_)
    return w


def _paired(wrong_a, wrong_b):
    a, b = _as_wrong(wrong_a), _as_wrong(wrong_b)
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    if a.shape != b.shape:
        raise ValueError('paired rows need one (seeds, images) shape, got '
                         '%s and %s' % (a.shape, b.shape))
    return a, b

"""Tests of the paired statistics
(chainer_vfbn/experiments/statistics/paired.py)."""
import math
import sys

import numpy
import pytest

from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments.statistics import paired
from chainer_vfbn.experiments.statistics import summary


def test_mcnemar_exact_by_hand():
    # 5 images only a gets wrong, 1 only b: n = 6 discordant, the smaller
    # count 1; P(X <= 1) = (C(6,0) + C(6,1)) / 2**6 = 7/64; two-sided 14/64.
    a = [1, 1, 1, 1, 1, 0, 1, 0]
    b = [0, 0, 0, 0, 0, 1, 1, 0]
    res = paired.mcnemar_exact(a, b)
    assert (res['only_a'], res['only_b']) == (5, 1)
    assert res['p'] == pytest.approx(14. / 64)
    # concordant images change nothing; no discordant image: p = 1
    assert paired.mcnemar_exact([1, 0], [1, 0])['p'] == 1.
    assert paired.mcnemar_exact([1, 1, 1], [0, 0, 0])['p'] == \
        pytest.approx(2. / 8)


def test_sign_flip_with_one_seed_is_mcnemar():
    rng = numpy.random.RandomState(0)
    for _ in range(5):
        a = rng.rand(300) < 0.4
        b = rng.rand(300) < 0.45
        assert paired.sign_flip_test(a, b)['p'] == pytest.approx(
            paired.mcnemar_exact(a, b)['p'], rel=1e-9)


def test_sign_flip_by_hand_over_two_seeds():
    # per-image totals over the seeds: +2, +1, -1, 0 -> sizes 2, 1, 1 and
    # the observed total 2; of the 8 sign patterns of ±2±1±1 (4, 2, 2, 0,
    # 0, -2, -2, -4) six are at least 2 away from 0: p = 6/8.
    a = numpy.array([[1, 1, 0, 1], [1, 0, 0, 0]])
    b = numpy.array([[0, 0, 1, 1], [0, 0, 0, 0]])
    res = paired.sign_flip_test(a, b)
    assert res['total'] == 2 and res['images_differing'] == 3
    assert res['p'] == pytest.approx(0.75)


def test_sign_flip_counts_an_image_once_across_seeds():
    # One image that a gets wrong in both seeds is one coin (±2), not two
    # independent ones: p = 1, where pooling the seeds' discordant pairs as
    # if independent would say 0.5.
    a = numpy.array([[1, 0], [1, 0]])
    b = numpy.zeros((2, 2), dtype=int)
    assert paired.sign_flip_test(a, b)['p'] == pytest.approx(1.)
    assert paired.mcnemar_exact(a.ravel(), b.ravel())['p'] == \
        pytest.approx(0.5)


def test_paired_bootstrap_keeps_the_rows_paired():
    rng = numpy.random.RandomState(1)
    a = rng.rand(3, 400) < 0.4
    # The same runs: every replicate draws the same images and seeds for
    # both, so the difference is exactly 0 (resampled apart, it would not
    # be).
    same = paired.paired_bootstrap(lambda x, y: x - y, [a, a.copy()],
                                   n_boot=500)
    assert same['estimate'] == same['low'] == same['high'] == 0.
    # b errs on 20 more images than a in every seed: the estimate is
    # exact, and the interval lies around it, within what 400 images allow.
    b = a.copy()
    extra = numpy.flatnonzero(~a.any(axis=0))[:20]
    b[:, extra] = True
    res = paired.paired_bootstrap(lambda x, y: y - x, [a, b], n_boot=2000)
    assert res['estimate'] == pytest.approx(5.)
    assert 2.5 < res['low'] < 5. < res['high'] < 7.5
    with pytest.raises(ValueError, match='one .seeds, images. shape'):
        paired.paired_bootstrap(lambda x, y: x - y, [a, a[:2]])


def test_recovered_fraction_statistic():
    # bottom 50%, BP 40%, the row 45%: half the gap.
    n = 100
    bp = numpy.zeros((1, n), bool)
    bp[0, :40] = True
    bottom = bp.copy()
    bottom[0, 40:50] = True
    row = bp.copy()
    row[0, 40:45] = True
    res = paired.paired_bootstrap(lambda r, b, p: (b - r) / (b - p),
                                  [row, bottom, bp], n_boot=300)
    assert res['estimate'] == pytest.approx(0.5)
    assert res['low'] <= 0.5 <= res['high']


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01, max(0.03, 2 x 0.03), max(0.06,
    # 1 x 0.04)
    assert paired.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06,
                                                             0.06])
    assert paired.holm([0.5, 0.9]) == [1., 1.]
    assert paired.holm([]) == []


def test_errors_must_be_zero_or_one():
    with pytest.raises(ValueError, match='0/1'):
        paired.mcnemar_exact([2, 0], [0, 0])


def test_seed_t_test_by_hand():
    # row a errs on 4, 2 and 3 more of 100 images than row b in seeds 0-2:
    # mean 3, sd 1, t = 3 / (1 / sqrt 3) = 5.196 with df 2, and for df 2
    # p = 1 - t / sqrt(t^2 + 2) = 0.0351
    b = numpy.zeros((3, 100), dtype=int)
    a = b.copy()
    for seed, extra in enumerate((4, 2, 3)):
        a[seed, :extra] = 1
    res = paired.seed_t_test(a, b)
    assert res['diffs'] == pytest.approx([4., 2., 3.])
    assert res['t'] == pytest.approx(3 * 3 ** 0.5) and res['df'] == 2
    assert res['p'] == pytest.approx(1 - 27 ** 0.5 / 29 ** 0.5)
    assert res['p'] == pytest.approx(0.0351, abs=1e-4)
    assert res['no_spread'] is False
    # the same difference in every seed: no spread, t infinite, no p
    same = paired.seed_t_test(numpy.ones((2, 4)), numpy.zeros((2, 4)))
    assert same['t'] == float('inf') and same['p'] is None
    assert same['no_spread'] is True
    # no difference in any seed: nothing to find, p 1
    none = paired.seed_t_test(numpy.ones((2, 4)), numpy.ones((2, 4)))
    assert none['t'] == 0. and none['p'] == 1. and not none['no_spread']
    # one seed: no test
    assert paired.seed_t_test(a[:1], b[:1])['p'] is None


def test_seed_t_test_sees_equal_differences_where_rounding_would_not():
    # infopro's last rung: 206 and 208 of 466 wrong against 213 and 215, 7
    # images fewer in both seeds; the error rates' difference parts by a
    # rounding, and t had been -5.4e14 with p = 1.2e-15 instead of -inf
    n = 466
    a, b = numpy.zeros((2, n), dtype=int), numpy.zeros((2, n), dtype=int)
    a[0, :206], a[1, :208], b[0, :213], b[1, :215] = 1, 1, 1, 1
    res = paired.seed_t_test(a, b)
    assert res['diffs'][0] == res['diffs'][1] == pytest.approx(-700. / n)
    assert res['t'] == -float('inf') and res['p'] is None
    assert res['no_spread'] is True


def test_seed_t_test_with_one_degree_of_freedom_by_hand():
    # df 1 is Cauchy's: p = 1 - 2 atan(t) / pi. Differences 1 and 3 points:
    # mean 2, sd sqrt 2, t = 2 / (sqrt 2 / sqrt 2) = 2.
    b = numpy.zeros((2, 100), dtype=int)
    a = b.copy()
    a[0, :1], a[1, :3] = 1, 1
    res = paired.seed_t_test(a, b)
    assert res['t'] == pytest.approx(2.) and res['df'] == 1
    assert res['p'] == pytest.approx(1 - 2 * math.atan(2.) / math.pi)


def test_the_p_values_without_scipy_are_one_line(monkeypatch):
    # sys.modules[name] = None makes `import name` raise ImportError.
    monkeypatch.setitem(sys.modules, 'scipy', None)
    monkeypatch.setitem(sys.modules, 'scipy.stats', None)
    for test in (lambda: paired.mcnemar_exact([1, 0], [0, 0]),
                 lambda: paired.seed_t_test([[1, 0], [1, 1]],
                                            [[0, 0], [0, 0]])):
        with pytest.raises(ExperimentError) as e:
            test()
        assert str(e.value) == ("the p-values need scipy: "
                                "pip install -e '.[report]'")
    # what needs no p-value runs without it
    assert paired.sign_flip_test([1, 0], [0, 0])['p'] == pytest.approx(1.)
    assert paired.seed_t_test([[1, 0]], [[0, 0]])['p'] is None


def test_summary_stats_by_hand():
    # 1, 2, 6: mean 3, squared deviations 4 + 1 + 9 = 14, sample sd
    # sqrt(14 / 2) = sqrt 7
    res = summary.stats([1., None, 2., 6.])
    assert res['mean'] == pytest.approx(3.) and res['n'] == 3
    assert res['std'] == pytest.approx(7 ** 0.5)
    assert isinstance(summary.stats([10, 10])['mean'], float)
    assert summary.stats([4.])['std'] is None
    assert summary.stats([None]) is None

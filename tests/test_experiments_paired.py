"""Tests of the paired statistics (chainer_vfbn/experiments/paired.py)."""
import numpy
import pytest

from chainer_vfbn.experiments import paired


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


@pytest.mark.parametrize('t,df', [(12.7062, 1), (4.302653, 2), (3.182446, 3),
                                  (2.776445, 4), (2.228139, 10)])
def test_student_t_at_the_tables_5_percent_points(t, df):
    # the two-sided 5% points of Student's t from any printed table
    assert paired.student_t_two_sided(t, df) == pytest.approx(0.05, abs=1e-6)
    assert paired.student_t_two_sided(-t, df) == pytest.approx(0.05,
                                                                abs=1e-6)
    assert paired.student_t_two_sided(0., df) == 1.


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
    # the same difference in every seed: no spread, t infinite, p 0
    same = paired.seed_t_test(numpy.ones((2, 4)), numpy.zeros((2, 4)))
    assert same['t'] == float('inf') and same['p'] == 0.
    # one seed: no test
    assert paired.seed_t_test(a[:1], b[:1])['p'] is None

"""Tests of the paired comparisons of a table
(chainer_vfbn/experiments/statistics/comparisons.py and their tables,
reporting/comparison_tables.py)."""
import numpy
import pytest

from chainer_vfbn.runs.evaluation import predictions_record
from chainer_vfbn.experiments.statistics import comparisons
from chainer_vfbn.experiments.statistics import paired
from chainer_vfbn.experiments.reporting.comparison_tables import \
    md_comparisons
from chainer_vfbn.experiments.reporting.comparison_tables import NO_SPREAD
from chainer_vfbn.experiments.reporting.comparison_tables import md_machines
from chainer_vfbn.experiments.reporting.comparison_tables import md_recovered

LABELS = numpy.arange(200) % 10


def _row(name, wrong_by_seed, tta_shift=0):
    """A table row whose seed ``s`` errs exactly on the images listed."""
    preds = {}
    for seed, wrong in wrong_by_seed.items():
        centre = LABELS.copy()
        centre[list(wrong)] = (LABELS[list(wrong)] + 1) % 10
        tta = centre.copy()
        tta[list(range(tta_shift))] = LABELS[:tta_shift]   # TTA fixes some
        preds[seed] = predictions_record(
            dict(predictions=centre, tta_predictions=tta), LABELS)
    errs = [100. * len(w) / len(LABELS) for w in wrong_by_seed.values()]
    mean = {'mean': sum(errs) / len(errs)}
    return dict(row=name, predictions=preds, centre=mean, tta=mean)


def test_recovered_fraction_is_the_share_of_the_gap():
    # bottom errs on 40 images, BP on 20 of them, the row on 30 of them:
    # half the gap, in every seed.
    bottom = _row('bottom-bp', {s: range(40) for s in (0, 1)})
    bp = _row('bp', {s: range(20) for s in (0, 1)})
    row = _row('vfbn', {s: range(30) for s in (0, 1)})
    res = comparisons.recovered_fraction(row, bottom, bp, 'centre',
                                         n_boot=400)
    assert res['fraction'] == pytest.approx(0.5) and res['seeds'] == [0, 1]
    assert res['low'] <= 0.5 <= res['high']
    # a row as bad as the bottom recovers nothing
    same = comparisons.recovered_fraction(bottom, bottom, bp, 'centre',
                                          n_boot=100)
    assert same['fraction'] == pytest.approx(0.)


def test_rows_pair_on_the_seeds_both_have():
    a = _row('a', {0: range(30), 1: range(30), 2: range(30)})
    b = _row('b', {0: range(20), 2: range(20)})
    res = comparisons.compare_rows(a, b, 'centre', n_boot=200)
    assert res['seeds'] == [0, 2]
    assert res['diff'] == pytest.approx(5.)
    # seed by seed: 10 images only a gets wrong: McNemar p = 2 / 2**10
    assert [s for s, _ in res['per_seed']] == [0, 2]
    assert res['per_seed'][0][1] == pytest.approx(2. / 2 ** 10)
    # over the seeds: +5 points in both, no spread, so no t-test
    assert res['seed_test']['diffs'] == pytest.approx([5., 5.])
    assert res['seed_test']['p'] is None and res['seed_test']['no_spread']
    # no shared seed, or no predictions: no paired result
    c = _row('c', {5: range(3)})
    assert comparisons.compare_rows(a, c, 'centre') is None
    assert comparisons.compare_rows(a, dict(row='d', predictions={}),
                                    'centre') is None


def test_compare_all_adjusts_every_test_together():
    rows = [_row('bp', {0: range(20)}), _row('vfbn', {0: range(30)}),
            _row('dni-linear', {0: range(21)})]
    comps = (('q1', 'vfbn', 'bp'), ('q2', 'dni-linear', 'bp'),
             ('absent', 'vfbn', 'nosuchrow'))
    out = comparisons.compare_all(rows, comps, n_boot=100)
    assert [q for q, *_ in out] == ['q1', 'q2']      # absent rows skipped
    tests = [res for *_, by_view in out for res in by_view.values()]
    assert len(tests) == 4
    raw = [t['p'] for t in tests]
    assert [t['p_holm'] for t in tests] == pytest.approx(paired.holm(raw))
    md = '\n'.join(md_comparisons(rows, comps, '##', n_boot=100))
    assert 'adjusted for the 4 tests of this table' in md


HASWELL = {'cpu': 'AMD EPYC', 'cpu_count': 2, 'blas': [
    {'internal_api': 'openblas', 'architecture': 'Haswell'}]}
SKYLAKEX = dict(HASWELL, blas=[{'internal_api': 'openblas',
                                'architecture': 'SkylakeX'}])


def test_seeds_run_on_two_machine_kinds_are_named():
    # seed 0: both rows on Haswell; seed 1: b on SkylakeX; seed 2: a names
    # no machine (an old record): seeds 1 and 2 pair batches, not arithmetic
    a = dict(_row('a', {s: range(30) for s in (0, 1, 2)}),
             machines={0: HASWELL, 1: HASWELL, 2: None})
    b = dict(_row('b', {s: range(20) for s in (0, 1, 2)}),
             machines={0: HASWELL, 1: SKYLAKEX, 2: HASWELL})
    res = comparisons.compare_rows(a, b, 'centre', n_boot=100)
    assert res['mixed_machines'] == [1, 2]
    same = comparisons.compare_rows(a, dict(a, row='a2'), 'centre',
                                    n_boot=100)
    assert same['mixed_machines'] == [2]
    frac = comparisons.recovered_fraction(
        dict(a, machines={s: HASWELL for s in (0, 1, 2)}), b,
        dict(b, row='bp', machines={s: HASWELL for s in (0, 1, 2)}),
        'centre', n_boot=100)
    assert frac['mixed_machines'] == [1]
    md = '\n'.join(md_comparisons(
        [a, b], (('q', 'a', 'b'),), '##', n_boot=100))
    # +5 points in each of the three seeds: t infinite, no p over seeds
    assert '| none (%s) | 1, 2 |' % NO_SPREAD in md


def test_the_machines_table_gives_each_kind_a_letter():
    # the same kind in two rows is one letter; a newer record that also
    # names the CPU's family and model is still the same kind
    newer = dict(HASWELL, cpu_id='family 25 model 1')
    rows = [dict(row='bp', seeds=[0, 1], machines={0: HASWELL, 1: newer}),
            dict(row='vfbn', seeds=[0, 1, 2],
                 machines={0: SKYLAKEX, 1: HASWELL, 2: None})]
    md = md_machines(rows, '##')
    assert '| `bp` | 0: A, 1: A |' in md
    assert '| `vfbn` | 0: B, 1: A, 2: — |' in md
    assert 'A: AMD EPYC, openblas Haswell.' in md
    assert 'B: AMD EPYC, openblas SkylakeX.' in md
    assert any(line.startswith('—: not recorded') for line in md)
    # no record names a machine: no table
    assert md_machines(
        [dict(row='bp', seeds=[0], machines={0: None})], '##') == []


def test_under_the_kernel_pin_the_kernel_decides_and_the_cpu_is_shown():
    # two CPUs with one kernel pair fully once both runs were pinned (the
    # evidence: one kernel repeats a run bit for bit on another CPU); the
    # machines table still tells the CPUs apart
    epyc = dict(HASWELL, pinned_kernel='Haswell')
    xeon = dict(epyc, cpu='Intel Xeon')
    a = dict(_row('a', {s: range(30) for s in (0, 1)}),
             machines={0: epyc, 1: epyc}, seeds=[0, 1])
    b = dict(_row('b', {s: range(20) for s in (0, 1)}),
             machines={0: xeon, 1: dict(SKYLAKEX, pinned_kernel='Haswell')},
             seeds=[0, 1])
    assert comparisons.compare_rows(a, b, 'centre', n_boot=100)[
        'mixed_machines'] == [1]
    # without the pin (the records before it), the CPU still counts
    legacy = dict(b, machines={0: dict(HASWELL, cpu='Intel Xeon'),
                               1: SKYLAKEX})
    assert comparisons.compare_rows(
        dict(a, machines={0: HASWELL, 1: HASWELL}), legacy, 'centre',
        n_boot=100)['mixed_machines'] == [0, 1]
    md = md_machines([a, b], '##')
    assert '| `b` | 0: B, 1: C |' in md
    assert 'B: Intel Xeon, openblas Haswell.' in md


def test_the_tests_over_seeds_are_holm_adjusted_as_a_family():
    # per seed, vfbn errs on 10, 14, 12 images more than bp (of 200) and
    # dni-linear on 2, 9, 1 more: two seed-level t-tests, adjusted together
    bp = _row('bp', {s: range(20) for s in (0, 1, 2)})
    vfbn = _row('vfbn', {0: range(30), 1: range(34), 2: range(32)})
    dni = _row('dni-linear', {0: range(22), 1: range(29), 2: range(21)})
    out = comparisons.compare_all(
        [bp, vfbn, dni], (('q1', 'vfbn', 'bp'), ('q2', 'dni-linear', 'bp')),
        n_boot=100)
    seed_tests = [by_view['centre']['seed_test'] for *_, by_view in out]
    assert seed_tests[0]['diffs'] == pytest.approx([5., 7., 6.])
    raw = [t['p'] for t in seed_tests]
    assert [t['p_holm'] for t in seed_tests] == pytest.approx(
        paired.holm(raw + raw)[:2])     # the TTA tests are the same here
    assert seed_tests[0]['p'] < seed_tests[1]['p']


def test_the_fraction_table_shows_the_gap_it_divides_by():
    # the bottom errs on 40 images, BP on 20 of them, in both seeds: the
    # gap is +10 points of 200 images, in both views
    bottom = _row('bottom-bp', {s: range(40) for s in (0, 1)})
    bp = _row('bp', {s: range(20) for s in (0, 1)})
    row = _row('vfbn', {s: range(30) for s in (0, 1)})
    md = md_recovered([bp, bottom, row], ['vfbn'], '##', n_boot=200)
    gap = [line for line in md if line.startswith('| the gap itself')]
    assert len(gap) == 1
    cells = [c.strip() for c in gap[0].split('|')[2:4]]
    assert all(c.startswith('+10.00 [') for c in cells)
    assert '| 0, 1 |' in gap[0]
    assert any('| `vfbn` | +0.50 [' in line for line in md)
    # without predictions for BP there is no gap line and no fraction
    no_pred = dict(bp, predictions={})
    md = md_recovered([no_pred, bottom, row], ['vfbn'], '##', n_boot=100)
    assert not any(line.startswith('| the gap itself') for line in md)


def test_seeds_that_differ_alike_give_no_t_test_anywhere():
    """vfbn errs on 10 images more than bp in both seeds: t is infinite and
    its textbook p of 0 is no evidence. Before, the table printed it as
    p 0 (+∞), Holm counted it, and the verdict called the gap resolved."""
    from chainer_vfbn.experiments.reporting.results_doc import verdict_clause
    bp = _row('bp', {s: range(20) for s in (0, 1)})
    vfbn = _row('vfbn', {s: range(30) for s in (0, 1)})
    dni = _row('dni-linear', {0: range(22), 1: range(29)})
    pairs = (('q1', 'vfbn', 'bp'), ('q2', 'dni-linear', 'bp'))
    out = comparisons.compare_all([bp, vfbn, dni], pairs, n_boot=100)
    alike, other = (by_view['centre']['seed_test'] for *_, by_view in out)
    assert alike['p'] is None and 'p_holm' not in alike
    # the family is dni-linear's two views alone
    assert other['p_holm'] == pytest.approx(paired.holm([other['p']] * 2)[0])
    md = '\n'.join(md_comparisons([bp, vfbn, dni], pairs, '##', n_boot=100))
    assert '∞' not in md and md.count('none (%s)' % NO_SPREAD) == 2
    assert 'it gives no p and stays out of the family' in md
    clause = verdict_clause(out[0][3], 'BP')
    assert clause.startswith('errs more than BP on these test images, not '
                             'resolved over the seeds')
    assert 'no t-test: ' + NO_SPREAD in clause

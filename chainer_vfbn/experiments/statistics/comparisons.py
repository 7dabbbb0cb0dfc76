"""The comparisons of a results table, paired by image and seed.

A table row (see
:func:`chainer_vfbn.experiments.statistics.summary.summarize`) carries, per
seed, the per-image predictions of its final evaluation
(:func:`chainer_vfbn.runs.evaluation.predictions_record`). Two rows are compared
on the seeds that both have, image by image
(:mod:`chainer_vfbn.experiments.statistics.paired`): the difference of their
seed-averaged error rates with a paired-bootstrap 95% interval, an exact
sign-flip p-value (the exact McNemar test with one seed) and the per-seed
McNemar p-values; the p-values of one report are Holm-adjusted together.
Each result also names the paired seeds whose runs ran on different kinds
of machine (:func:`.machines.same_machine`): a seed pairs two runs fully
only where they do the same arithmetic. With one BLAS kernel a run has
repeated bit for bit, even on another make of CPU; across kernels the same
run drifted by up to about as much as one seed differs from the next
(docs/RESULTS.md, "Machines").
"""
import numpy

from chainer_vfbn.experiments.protocol.rows import MINI_ROWS
from chainer_vfbn.experiments.records.machines import same_machine
from chainer_vfbn.experiments.statistics import paired
from chainer_vfbn.runs.evaluation import decode_classes

#: The views a row is scored in: the centre crop and the 36-view average.
VIEWS = ('centre', 'tta')
#: The test errors (%) of InfoPro's paper (Wang et al., ICLR 2021, its
#: CIFAR-10 table; ResNet-110, K = 2, full CIFAR-10) as issue 31 quotes
#: them: theirs, not measured here. Their "greedy" trains each module on
#: its own loss, the counterpart of our bottom half alone.
PUBLISHED_LOCAL = (('greedy', 8.21), ('bp', 6.50), ('dgl', 7.70),
                   ('infopro', 6.42))


def published_recovered(method):
    """The fraction of the greedy-to-BP gap that ``method`` recovers in
    :data:`PUBLISHED_LOCAL`.

    Example:
        >>> round(published_recovered('dgl'), 2)
        0.3
    """
    err = dict(PUBLISHED_LOCAL)
    return (err['greedy'] - err[method]) / (err['greedy'] - err['bp'])


def paper_recovered(row):
    """The fraction of the gap between the bottom half alone and BP that
    ``row`` recovers in the paper's Table 1 (from its test errors, the
    ``paper`` of :data:`.rows.MINI_ROWS`); None where the paper has no
    figure for it.

    Example:
        >>> round(paper_recovered('vfbn'), 2), paper_recovered('dgl')
        (0.41, None)
    """
    paper = {name: r.paper for name, r in MINI_ROWS.items()}
    if paper.get(row) is None:
        return None
    return ((paper['bottom-bp'] - paper[row])
            / (paper['bottom-bp'] - paper['bp']))


#: The paper's own fraction for VFBN at its alpha_gs = 1e-3:
#: (5.76 - 5.51) / (5.76 - 5.15).
PAPER_RECOVERED = paper_recovered('vfbn')


def published_fraction(row):
    """A row's published fraction of the gap between training each part
    alone and BP, and whose it is: ``(fraction, 'paper')`` from the
    paper's Table 1 (:func:`paper_recovered`), ``(fraction, 'InfoPro')``
    for a local-learning peer from InfoPro's table
    (:func:`published_recovered`), None for a row with neither.

    Example:
        >>> [(round(f, 2), who) for f, who in map(published_fraction,
        ...                                        ('vfbn', 'infopro'))]
        [(0.41, 'paper'), (1.05, 'InfoPro')]
        >>> published_fraction('vfbn-linear') is None
        True
    """
    paper = paper_recovered(row)
    if paper is not None:
        return paper, 'paper'
    if row in dict(PUBLISHED_LOCAL) and row not in ('greedy', 'bp'):
        return published_recovered(row), 'InfoPro'
    return None


def wrong_by_seed(row, view):
    """``{seed: 0/1 per image}`` of a row's runs that kept predictions."""
    out = {}
    for seed, pred in (row.get('predictions') or {}).items():
        if pred and pred.get(view):
            out[seed] = (decode_classes(pred[view])
                         != decode_classes(pred['labels']))
    return out


def _stacked(rows, view):
    """The seeds every row has predictions for, and each row's errors as
    an array ``(seeds, images)``; ``(seeds, None)`` if they share none or
    were scored on different images."""
    per_row = [wrong_by_seed(r, view) for r in rows]
    seeds = sorted(set.intersection(*[set(w) for w in per_row]))
    labels = {r['predictions'][s]['labels'] for r in rows for s in seeds}
    if not seeds or len(labels) != 1:
        return seeds, None
    return seeds, [numpy.stack([w[s] for s in seeds]) for w in per_row]


def mixed_machine_seeds(rows, seeds):
    """The seeds whose runs of ``rows`` did not all run on one kind of
    machine (or name none)."""
    def machine(row, seed):
        return (row.get('machines') or {}).get(seed)
    return [s for s in seeds
            if not all(same_machine(machine(rows[0], s), machine(r, s))
                       for r in rows)]


def compare_rows(row_a, row_b, view, n_boot=10000):
    """Row a against row b in one view, paired; None without predictions.

    Returns:
        dict: ``seeds`` (paired), ``diff`` (a's seed-averaged error minus
        b's, points, with ``low``/``high`` of its 95% paired-bootstrap
        interval), ``p`` (:func:`paired.sign_flip_test`), ``per_seed``
        (``[(seed, McNemar p)]``), ``seed_test``
        (:func:`paired.seed_t_test`) and ``mixed_machines`` (the paired
        seeds whose two runs ran on different kinds of machine).
    """
    seeds, wrongs = _stacked([row_a, row_b], view)
    if wrongs is None:
        return None
    boot = paired.paired_bootstrap(lambda a, b: a - b, wrongs, n_boot=n_boot)
    return dict(seeds=seeds, diff=boot['estimate'], low=boot['low'],
                high=boot['high'],
                mixed_machines=mixed_machine_seeds([row_a, row_b], seeds),
                p=paired.sign_flip_test(*wrongs)['p'],
                per_seed=[(s, paired.mcnemar_exact(wrongs[0][i],
                                                   wrongs[1][i])['p'])
                          for i, s in enumerate(seeds)],
                seed_test=paired.seed_t_test(*wrongs))


def recovered_fraction(row, bottom, bp, view, n_boot=10000):
    """``(bottom - row) / (bottom - bp)``: the fraction of the gap between
    the bottom half alone and BP that ``row`` recovers (1: all of it, 0:
    none, below 0: worse than the bottom alone), on the seeds all three
    share, with its paired-bootstrap 95% interval; None without
    predictions."""
    seeds, wrongs = _stacked([row, bottom, bp], view)
    if wrongs is None:
        return None
    boot = paired.paired_bootstrap(
        lambda r, b, p: (b - r) / (b - p), wrongs, n_boot=n_boot)
    return dict(seeds=seeds, fraction=boot['estimate'], low=boot['low'],
                high=boot['high'], undefined=boot['undefined'],
                mixed_machines=mixed_machine_seeds([row, bottom, bp], seeds))


def compare_all(table, comparisons, n_boot=10000):
    """Every comparison in both views, with Holm-adjusted p-values.

    Args:
        table (list): Table rows (dicts with ``row`` and ``predictions``).
        comparisons: ``(question, row a, row b)`` triples; those naming a
            row absent from the table are left out.

    Returns:
        list: ``(question, a, b, {view: result or None})``, each result with
        ``p_holm`` added, and its ``seed_test`` too; the family is every
        test of that kind that has a p-value.
    """
    by_row = {r['row']: r for r in table}
    out = []
    for question, a, b in comparisons:
        if a in by_row and b in by_row:
            out.append((question, a, b, {
                view: compare_rows(by_row[a], by_row[b], view, n_boot)
                for view in VIEWS}))
    tests = [res for _, _, _, by_view in out for res in by_view.values()
             if res is not None]
    for res, adjusted in zip(tests, paired.holm([t['p'] for t in tests])):
        res['p_holm'] = adjusted
    seed_tests = [t['seed_test'] for t in tests if t['seed_test']['p']
                  is not None]
    for test, adjusted in zip(seed_tests, paired.holm(
            [t['p'] for t in seed_tests])):
        test['p_holm'] = adjusted
    return out

"""The comparisons of a results table, paired by image and seed.

A table row (see :func:`chainer_vfbn.experiments.summary.summarize`) carries, per
seed, the per-image predictions of its final evaluation
(:func:`chainer_vfbn.runs.evaluation.predictions_record`). Two rows are compared
on the seeds that both have, image by image
(:mod:`chainer_vfbn.experiments.paired`): the difference of their
seed-averaged error rates with a paired-bootstrap 95% interval, an exact
sign-flip p-value (the exact McNemar test with one seed) and the per-seed
McNemar p-values; the p-values of one report are Holm-adjusted together.
Each result also names the paired seeds whose runs ran on different kinds
of machine (:func:`.records.same_machine`): a seed pairs two runs fully
only where they do the same arithmetic. With one BLAS kernel a run has
repeated bit for bit, even on another make of CPU; across kernels the same
run drifted by up to about as much as one seed differs from the next
(docs/RESULTS.md, "Machines").
"""
import numpy

from chainer_vfbn.runs.evaluation import decode_classes
from chainer_vfbn.experiments import paired
from chainer_vfbn.experiments.records import machine_label
from chainer_vfbn.experiments.records import same_kind
from chainer_vfbn.experiments.records import same_machine

#: The views a row is scored in: the centre crop and the 36-view average.
VIEWS = ('centre', 'tta')
#: The paper's own fraction of the BP-vs-bottom gap that VFBN (1e-3)
#: recovers: (5.76 - 5.51) / (5.76 - 5.15).
PAPER_RECOVERED = (5.76 - 5.51) / (5.76 - 5.15)
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


def _ci(res, key, digits=2):
    return '%+.*f [%+.*f, %+.*f]' % (digits, res[key], digits, res['low'],
                                     digits, res['high'])


def _p(p):
    return '%.2g' % p if p >= 1e-4 else '<1e-4'


def md_comparisons(table, comparisons, level, n_boot=10000):
    """Markdown lines: the paired comparisons of the table's rows."""
    results = compare_all(table, comparisons, n_boot)
    n_tests = sum(res is not None for *_, by_view in results
                  for res in by_view.values())
    lines = ['', level + ' Comparisons, paired by image and seed (test '
             'error, percentage points)', '',
             '| question | rows | view | difference [95% CI] | p | p, Holm '
             '| McNemar p per seed | p over seeds (t, df) | seeds on two '
             'machine kinds |', '|---|---|---|---:|---:|---:|---|---:|---|']
    by_row = {r['row']: r for r in table}
    for question, a, b, by_view in results:
        for view in VIEWS:
            res = by_view[view]
            cells = ([_unpaired(by_row[a], by_row[b], view), '—', '—', '—',
                      '—', '—'] if res is None else [
                         _ci(res, 'diff'), _p(res['p']), _p(res['p_holm']),
                         ', '.join('%d: %s' % (s, _p(p))
                                   for s, p in res['per_seed']),
                         _seed_p(res['seed_test']),
                         _seeds(res['mixed_machines'])])
            lines.append('| %s | `%s` − `%s` | %s | %s |' % (
                question, a, b, view, ' | '.join(cells)))
    return lines + [
        '', 'Negative: the first row errs less. Difference: of the two rows\' '
        'error rates averaged over the seeds both have, with a 95%% '
        'percentile interval from %d paired-bootstrap replicates that '
        'resample the test images and the seeds together. p: exact '
        'two-sided sign-flip test, image by image over the paired seeds (the '
        'exact McNemar test when there is one seed). p, Holm: adjusted for '
        'the %d tests of this table. McNemar p per seed: the exact test of '
        'each pair of runs with the same seed. McNemar and the sign-flip '
        'test take the trained networks as given: they ask whether these '
        'runs differ on these images, and training noise is not in them. '
        'The bootstrap, which also draws the seeds, and the p over seeds '
        '(a paired t-test of the per-seed differences, df = seeds - 1, '
        'Holm-adjusted over the same tests) count it. Seeds on two machine '
        'kinds: '
        'the paired seeds whose two runs ran on different kinds of machine '
        '(see the machines table), so that the seed pairs their batches but '
        'not their arithmetic. Where a record holds no '
        'per-image predictions (the runs made before 2026-12-03), only the '
        'difference of the rows\' mean errors is shown, with no test.'
        % (n_boot, n_tests)]


def _seed_p(test):
    if test['p'] is None:
        return '—'
    t = test['t']
    return '%s (%s, %d), Holm %s' % (
        _p(test['p']), '%+.1f' % t if abs(t) < 1e6 else '+∞' if t > 0
        else '−∞', test['df'], _p(test['p_holm']))


def _seeds(seeds):
    return ', '.join(map(str, seeds)) or 'none'


def _unpaired(row_a, row_b, view):
    """The difference of two rows' mean errors, where no paired test can
    be made."""
    if row_a.get(view) is None or row_b.get(view) is None:
        return '—'
    return '%+.2f (means; no per-image predictions)' % (
        row_a[view]['mean'] - row_b[view]['mean'])


def md_recovered(table, rows, level, n_boot=10000):
    """Markdown lines: the fraction of the bottom-vs-BP gap each
    synthetic row recovers, beside the paper's."""
    by_row = {r['row']: r for r in table}
    if 'bp' not in by_row or 'bottom-bp' not in by_row:
        return []
    lines = ['', level + ' Fraction of the gap between the bottom half '
             'alone and BP that each row recovers', '',
             '| row | centre view [95% CI] | 36-view TTA [95% CI] | seeds '
             '| seeds on two machine kinds |', '|---|---:|---:|---|---|']
    gap = {view: compare_rows(by_row['bottom-bp'], by_row['bp'], view,
                              n_boot) for view in VIEWS}
    if all(gap.values()):
        lines.append('| the gap itself: `bottom-bp` − `bp`, points | %s | %s '
                     '| %s | %s |' % (
                         _ci(gap['centre'], 'diff'), _ci(gap['tta'], 'diff'),
                         _seeds(gap['centre']['seeds']),
                         _seeds(gap['centre']['mixed_machines'])))
    for row in (r for r in rows if r in by_row):
        cells, seeds, mixed = [], set(), set()
        for view in VIEWS:
            res = recovered_fraction(by_row[row], by_row['bottom-bp'],
                                     by_row['bp'], view, n_boot)
            if res is None:
                cells.append('—')
                continue
            seeds.update(res['seeds'])
            mixed.update(res['mixed_machines'])
            cells.append('%s%s' % (_ci(res, 'fraction'), '' if not
                                   res['undefined'] else ' (%d undefined)'
                                   % res['undefined']))
        lines.append('| `%s` | %s | %s | %s | %s |' % (
            row, cells[0], cells[1], ', '.join(map(str, sorted(seeds)))
            or '—', _seeds(sorted(mixed)) if seeds else '—'))
    return lines + [
        '', '(bottom − row) / (bottom − BP), from the error rates averaged '
        'over the seeds all three rows share: 1 recovers the whole gap, 0 '
        'none of it, below 0 is worse than the bottom half alone. The '
        'interval is the paired bootstrap\'s (replicates where bottom = BP '
        'are undefined and dropped). Where the gap\'s own interval '
        'includes 0, the denominator may be 0, and no fraction in that '
        'view is resolved, whatever its interval. The paper\'s figure for '
        'VFBN at '
        'α_gs = 1e-3: (5.76 − 5.51) / (5.76 − 5.15) = %.2f.'
        % PAPER_RECOVERED] + _published_lines(by_row)


def _published_lines(by_row):
    """Where the table has the local-learning peers: their published
    fractions, labelled as theirs."""
    peers = [m for m in ('dgl', 'infopro') if m in by_row]
    if not peers:
        return []
    err = dict(PUBLISHED_LOCAL)
    return ['', 'Published, not measured here (InfoPro\'s paper, ResNet-110 '
            'cut into K = 2 modules, full CIFAR-10, test error %%): greedy '
            '%.2f, BP %.2f; %s.' % (err['greedy'], err['bp'], '; '.join(
                '%s %.2f, fraction of the greedy-to-BP gap %.2f' % (
                    m, err[m], published_recovered(m)) for m in peers))]


def md_machines(table, level):
    """Markdown lines: the kind of machine each row's run of each seed ran
    on (:func:`.records.machine_label`), one letter per kind."""
    kinds, cells, unknown = [], [], False
    for r in table:
        letters = []
        for seed in r['seeds']:
            m = (r.get('machines') or {}).get(seed)
            match = next((i for i, k in enumerate(kinds)
                          if m and same_kind(k, m)), None)
            if m and match is None:
                kinds.append(m)
                match = len(kinds) - 1
            unknown = unknown or match is None
            letters.append('%d: %s' % (seed, '—' if match is None
                                       else chr(ord('A') + match)))
        cells.append('| `%s` | %s |' % (r['row'], ', '.join(letters) or '—'))
    if not kinds:
        return []
    return (['', level + ' Machines', '', '| row | machine kind per seed |',
             '|---|---|'] + cells + [''] +
            ['%s: %s.' % (chr(ord('A') + i), machine_label(k))
             for i, k in enumerate(kinds)] +
            ['—: not recorded (a record made before 2026-12-03).'] * unknown +
            ['Kinds are told apart by CPU and BLAS kernel. Runs with one '
             'BLAS kernel have repeated bit for bit, even on another make of '
             'CPU; across kernels a run drifted by up to about as much as one '
             'seed differs from the next.'])

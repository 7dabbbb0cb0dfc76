"""The Markdown of the paired comparisons: the comparisons of a results
table, the fraction of the gap each row recovers, the machines each run
ran on, and the replays of a run on another machine; the numbers are
:mod:`chainer_vfbn.experiments.statistics`'s."""
from chainer_vfbn.experiments.records.machines import machine_label
from chainer_vfbn.experiments.records.machines import same_kind
from chainer_vfbn.experiments.statistics.comparisons import PAPER_RECOVERED
from chainer_vfbn.experiments.statistics.comparisons import PUBLISHED_LOCAL
from chainer_vfbn.experiments.statistics.comparisons import VIEWS
from chainer_vfbn.experiments.statistics.comparisons import compare_all
from chainer_vfbn.experiments.statistics.comparisons import compare_rows
from chainer_vfbn.experiments.statistics.comparisons import \
    published_recovered
from chainer_vfbn.experiments.statistics.comparisons import \
    recovered_fraction


def ci_text(res, key, digits=2):
    """An estimate and its interval as the reports write them.

    Example:
        >>> ci_text(dict(diff=1.5, low=-0.25, high=3.0), 'diff')
        '+1.50 [-0.25, +3.00]'
    """
    return '%+.*f [%+.*f, %+.*f]' % (digits, res[key], digits, res['low'],
                                     digits, res['high'])


def p_text(p):
    """A p-value as the reports write it: two significant digits, or
    "<1e-4".

    Example:
        >>> p_text(0.03141), p_text(2e-6)
        ('0.031', '<1e-4')
    """
    return '%.2g' % p if p >= 1e-4 else '<1e-4'


#: Why a t-test over the seeds gives no p where every seed differs alike
#: (``seed_t_test``'s ``no_spread``): its textbook p of 0 is no evidence.
NO_SPREAD = 'the same difference in every seed, so no spread to test against'


def md_comparisons(table, comparisons, level, n_boot=10000, results=None):
    """Markdown lines: the paired comparisons of the table's rows
    (``results``: those of :func:`.comparisons.compare_all`, if made
    already)."""
    if results is None:
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
                         ci_text(res, 'diff'), p_text(res['p']),
                         p_text(res['p_holm']),
                         ', '.join('%d: %s' % (s, p_text(p))
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
        'Holm-adjusted over the same tests) count it; where every seed '
        'differs by the same number of images, the t-test has no spread to '
        'test against: it gives no p and stays out of the family. Seeds on '
        'two machine kinds: the paired seeds whose two runs ran on different kinds of machine '
        '(see the machines table), so that the seed pairs their batches but '
        'not their arithmetic. Where a record holds no '
        'per-image predictions (the runs made before 2026-12-03), only the '
        'difference of the rows\' mean errors is shown, with no test.'
        % (n_boot, n_tests)]


def _seed_p(test):
    if test['no_spread']:
        return 'none (%s)' % NO_SPREAD
    if test['p'] is None:
        return '—'
    return '%s (%+.1f, %d), Holm %s' % (
        p_text(test['p']), test['t'], test['df'], p_text(test['p_holm']))


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
                         ci_text(gap['centre'], 'diff'),
                         ci_text(gap['tta'], 'diff'),
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
            cells.append('%s%s' % (ci_text(res, 'fraction'), '' if not
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
    on (:func:`.machines.machine_label`), one letter per kind."""
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


def md_replays(pairs):
    """Markdown table of :func:`.statistics.replay.compare_records` results.

    Args:
        pairs: ``(name a, name b, result)`` triples.
    """
    lines = ['| a | b | configuration differs in | machines | same curve '
             '| view | a (%) | b (%) | a − b | same class | McNemar p |',
             '|---|---|---|---|---|---|---:|---:|---:|---:|---:|']
    for name_a, name_b, res in pairs:
        machines = ('same kind: %s' % res['machines'][0]
                    if res['same_machine'] else '%s; %s' % res['machines'])
        for view in VIEWS:
            v = res[view]
            if v is None:
                continue
            lines.append('| %s | %s | %s | %s | %s | %s | %.2f | %.2f | %+.2f '
                         '| %s | %s |' % (
                             name_a, name_b,
                             ', '.join(res['differences']) or 'nothing',
                             machines, 'yes' if res['same_curve'] else 'no',
                             view, v['error_a'], v['error_b'], v['diff'],
                             '—' if v['agreement'] is None
                             else '%.1f%%' % (100. * v['agreement']),
                             '—' if v['p'] is None else '%.2g' % v['p']))
    return lines

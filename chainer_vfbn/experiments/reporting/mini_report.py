"""The mini schedule's report: ``table.md`` (settings, the table, the
paired comparisons, the tuning, the length check, the pilot) and its
figures, from the records only."""
import os

from chainer_vfbn.experiments.protocol.choices import PILOT_GAP
from chainer_vfbn.experiments.protocol.choices import PILOT_P
from chainer_vfbn.experiments.protocol.choices import halving_results
from chainer_vfbn.experiments.protocol.choices import length_check
from chainer_vfbn.experiments.protocol.choices import pilot
from chainer_vfbn.experiments.protocol.choices import tuning_choice
from chainer_vfbn.experiments.protocol.plan import run_error
from chainer_vfbn.experiments.protocol.plan import rung_candidates
from chainer_vfbn.experiments.protocol.plan import rung_run
from chainer_vfbn.experiments.protocol.schedules import alpha_name
from chainer_vfbn.experiments.protocol.schedules import choice_text
from chainer_vfbn.experiments.protocol.schedules import grid_edge
from chainer_vfbn.experiments.protocol.schedules import halving
from chainer_vfbn.experiments.protocol.schedules import tuned_rows
from chainer_vfbn.experiments.records.machines import check_one_kernel
from chainer_vfbn.experiments.records.machines import machine_of
from chainer_vfbn.experiments.records.store import read_record
from chainer_vfbn.experiments.records.store import record_path
from chainer_vfbn.experiments.records.store import status
from chainer_vfbn.experiments.reporting.comparison_tables import NO_SPREAD
from chainer_vfbn.experiments.reporting.comparison_tables import md_comparisons
from chainer_vfbn.experiments.reporting.comparison_tables import md_machines
from chainer_vfbn.experiments.reporting.comparison_tables import md_recovered
from chainer_vfbn.experiments.reporting.figures import plot
from chainer_vfbn.experiments.reporting.results_doc import SEED_P
from chainer_vfbn.experiments.reporting.results_doc import update_results_doc
from chainer_vfbn.experiments.reporting.results_doc import verdict_clause
from chainer_vfbn.experiments.statistics import comparisons
from chainer_vfbn.experiments.statistics.summary import summarize
from chainer_vfbn.runs import record

#: The report's comparisons: (question, row, the row it is compared with).
COMPARISONS = (
    ('(a) VFBN against BP', 'vfbn', 'bp'),
    ('(a) bottom half alone against BP', 'bottom-bp', 'bp'),
    ('(a) VFBN against the bottom half alone', 'vfbn', 'bottom-bp'),
    ('(a) VFBN against the layer-wise loss', 'vfbn', 'layerwise'),
    ('(b) DNI small-ResNet against BP', 'dni-resnet', 'bp'),
    ('(b) DNI linear against BP', 'dni-linear', 'bp'),
    ('(b) DNI small-ResNet against VFBN', 'dni-resnet', 'vfbn'),
    ('(b) DNI linear against VFBN', 'dni-linear', 'vfbn'),
    ('(c) VFBN tuned α_gs against α_gs = 0', 'vfbn', 'vfbn-alpha0'),
    ("(c) VFBN α_gs = 1e-3 (the paper's) against α_gs = 0",
     'vfbn-paper-alpha', 'vfbn-alpha0'),
    ('(d) VFBN linear v_f against VFBN', 'vfbn-linear', 'vfbn'),
    ('(d) VFBN MLP v_f against VFBN', 'vfbn-mlp', 'vfbn'),
    ('(d) VFBN linear v_f against BP', 'vfbn-linear', 'bp'),
    # Evidence III: VFBN among today's local learning (rows absent from a
    # table, as from Evidence II's, are left out).
    ('(e) DGL against VFBN', 'dgl', 'vfbn'),
    ('(e) InfoPro against VFBN', 'infopro', 'vfbn'),
    ('(e) DGL against BP', 'dgl', 'bp'),
    ('(e) InfoPro against BP', 'infopro', 'bp'),
)

#: The rows whose recovered fraction of the bottom-vs-BP gap is reported.
RECOVERING_ROWS = ('layerwise', 'vfbn-alpha0', 'vfbn', 'vfbn-paper-alpha',
                   'dni-linear', 'dni-resnet', 'vfbn-linear', 'vfbn-mlp',
                   'dgl', 'infopro')


def _fmt(st, digits=2, per_seed=True):
    if st is None:
        return '—'
    text = '%.*f' % (digits, st['mean'])
    if st['n'] > 1:
        text += ' ± %.*f' % (digits, st['std'])
        if per_seed:
            text += ' (%s)' % ', '.join('%.*f' % (digits, v)
                                        for v in st['values'])
    return text


def _fmt1(x):
    return '—' if x is None else '%.2f' % x


def _fmt_gap(res):
    if res is None:
        return '—'
    return '%+.2f [%+.2f, %+.2f], p = %.2g' % (res['diff'], res['low'],
                                               res['high'], res['p'])


def _md_settings(s, records):
    lines = ['# Table 1 on cifar-10-mini (protocol `mini`%s)' % (
        ', `%s`' % s['protocol'] if s.get('protocol') else ''), '',
             'Written by `python train/reproduce.py --schedule mini --phase '
             'report` from the run records in `%s`; every number below comes '
             'from those files.' % records, '', '| setting | value |',
             '|---|---|']
    for k, v in s.items():
        lines.append('| %s | %s |' % (k, '—' if v is None else
                                      ', '.join(str(x) for x in v)
                                      if isinstance(v, (list, tuple)) else v))
    return lines


def _md_alpha(r, s):
    if r['row'] == 'vfbn-alpha0':
        return '0 (untrained)'
    return choice_text(r['choice']) if r['row'] in tuned_rows(s) else 'n/a'


def _md_table(s, table, level):
    lines = ['', level + ' Test error', '',
             '| row | paper (%) | mini, 36-view TTA (%) | mini, centre view '
             '(%) | α_gs chosen | final cos | final ‖δ̂‖/‖δ‖ | train acc. '
             '(%) | epochs | images/s | seeds |',
             '|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|']
    for r in table:
        lines.append('| %s (`%s`) | %s | %s | %s | %s | %s | %s | %s | %s | '
                     '%s | %d of %d |' % (
                         r['label'], r['row'],
                         '—' if r['paper'] is None else '%.2f' % r['paper'],
                         _fmt(r['tta']), _fmt(r['centre']), _md_alpha(r, s),
                         _fmt(r['cos'], 3, False),
                         _fmt(r['norm_ratio'], 3, False),
                         _fmt(r['train_accuracy'], 1, False),
                         _fmt(r['epochs'], 0, False),
                         _fmt(r['images_per_sec'], 1, False),
                         len(r['seeds']), len(r['planned_seeds']) or
                         len(s['seeds'])))
    return lines + [
        '', 'Mean ± sample standard deviation over seeds, per-seed values in '
        'brackets. "B·δ": the per-example target scale. images/s: training '
        'images per second of wall time, one BLAS thread, with other runs on '
        'the same machine.']


def _md_tuning_row(r, scale, grid):
    cells = {t['alpha']: t for t in r['tuning']
             if t['scale'] == scale and t['rung'] == 0}
    if not cells and scale != 'batch-mean':
        return []
    row_cells = []
    for a in grid:
        t = cells.get(a)
        txt = ('—' if t is None else 'diverged' if t['diverged']
               else '%.1f' % (100 * t['val_error']))
        if r['choice'] == (a, scale):
            txt = '**%s**' % txt
        row_cells.append(txt)
    return ['| %s | %s | %s |' % (r['row'], scale, ' | '.join(row_cells))]


def _md_tuning(s, table):
    lines = ['', '## Tuning (validation error %, final, short runs; '
             '"diverged": stopped on a non-finite value, ranked last; '
             '"—": not run yet)', '']
    grid = list(s['alpha_grid'])
    lines += ['| row | scale | ' + ' | '.join(alpha_name(a) for a in grid)
              + ' |', '|---|---|' + '---:|' * len(grid)]
    for r in table:
        for scale in (s['dni_target_scales'] if r['row'] in tuned_rows(s)
                      else ()):
            lines += _md_tuning_row(r, scale, grid)
    return lines


def _err_cell(err, bold=False):
    txt = ('—' if err is None else 'diverged' if err == float('inf')
           else '%.1f' % (100 * err))
    return '**%s**' % txt if bold and err is not None else txt


def _last_rung_row(s, row, choice, records):
    """A last-rung candidate as a table row of the paired comparisons:
    its validation predictions per seed (None while a run is missing)."""
    rung = len(s['rungs']) - 1
    preds, machines = {}, {}
    for seed in s['last_rung_seeds']:
        run = rung_run(s, row, choice, seed, rung)
        if status(run, records) != 'done':
            return None
        rec = read_record(record_path(records, run))
        preds[seed], machines[seed] = rec.get('predictions'), machine_of(rec)
    return dict(row=row, predictions=preds, machines=machines)


def _seed_text(test):
    """The t-test over the last rung's seeds, in words where the seeds
    differ by the same count (``no_spread``: there is no p to give)."""
    if test['no_spread']:
        return '; t over seeds: none (%s)' % NO_SPREAD
    if test['p'] is None:
        return ''
    return '; t over seeds p = %.2g' % test['p']


def _md_runner_up(s, row, records):
    """The chosen candidate against the runner-up of the last rung, paired
    over the validation images and both seeds."""
    results = halving_results(row, s, records)
    chosen = tuning_choice(row, s, records)
    if chosen is None or len(results) < 2:
        return None
    other = [r['choice'] for r in results if r['choice'] != chosen][0]
    res = comparisons.compare_rows(_last_rung_row(s, row, chosen, records),
                                   _last_rung_row(s, row, other, records),
                                   'centre')
    edge = grid_edge(row, s, chosen)
    return '%s: %s against the runner-up %s: %s%s%s' % (
        row, choice_text(chosen), choice_text(other), '—' if res is None
        else _fmt_gap(res), '' if res is None or not res.get('seed_test')
        else _seed_text(res['seed_test']),
        '' if edge is None else '. The choice is the %s value of the grid: '
        'a better one may lie beyond it, which the protocol did not try'
        % edge)


def _md_halving(s, records):
    """Evidence III's tuning: each rung's validation errors, the choice,
    and the choice against the runner-up."""
    rungs = s['rungs']
    head = ['rung %d, %d ep.' % (k + 1, ep) for k, (ep, _) in
            enumerate(rungs[:-1])] + [
        'rung %d, %d ep., seed %d' % (len(rungs), rungs[-1][0], seed)
        for seed in s['last_rung_seeds']] + ['mean']
    lines = ['', '## Tuning: successive halving (validation error %, '
             'centre view)', '',
             'Each tuned row had the same budget: its %d candidates ran '
             '%s epochs (the first epochs of the finals\' own schedule); '
             'the best %s continued from their snapshots, rung by rung, '
             'to the finals\' %d epochs, where the last %d also ran with '
             'seed %s. The choice (bold) has the lowest mean over those '
             'seeds. "diverged": stopped on a non-finite value, ranked '
             'last; "—": not run yet.' % (
                 rungs[0][1], rungs[0][0],
                 ', then '.join(str(n) for _, n in rungs[1:]),
                 rungs[-1][0], rungs[-1][1],
                 ', '.join(str(x) for x in s['last_rung_seeds'][1:])),
             '', '| row | candidate | ' + ' | '.join(head) + ' |',
             '|---|---|' + '---:|' * len(head)]
    verdicts = []
    for row in tuned_rows(s):
        chosen = tuning_choice(row, s, records)
        last = {r['choice']: r for r in halving_results(row, s, records)}
        # each rung's candidates once (each is found from the records of
        # every rung before it)
        entered = [rung_candidates(row, s, records, k) or ()
                   for k in range(len(rungs) - 1)]
        for choice in entered[0]:
            cells = [_err_cell(run_error(rung_run(
                s, row, choice, s['tune_seed'], k), records))
                if choice in entered[k] else ''
                for k in range(len(rungs) - 1)]
            r = last.get(choice)
            cells += ([_err_cell(r['errors'][seed])
                       for seed in s['last_rung_seeds']]
                      + [_err_cell(r['mean'], choice == chosen)]
                      if r else [''] * (len(s['last_rung_seeds']) + 1))
            lines.append('| %s | %s | %s |' % (row, choice_text(choice),
                                               ' | '.join(cells)))
        verdict = _md_runner_up(s, row, records)
        if verdict:
            verdicts.append('- ' + verdict)
    if verdicts:
        lines += ['', 'The choice against the runner-up of the last rung, '
                  'paired over the validation images and both seeds '
                  '(difference in points [95% paired-bootstrap interval '
                  'over images and seeds], exact sign-flip p over images; '
                  'the t-test over two seeds has one degree of freedom):',
                  ''] + verdicts
    return lines


def _md_length(length):
    if length is None:
        return []
    return ['', '## Length check (BP on the validation split)', '',
            'Validation error (%%) by epoch: %s.' % ', '.join(
                '%g: %.1f' % (ep, 100 * e) for ep, e in length['curve']),
            'Gain over the last fifth of the epochs: %s points '
            '(the protocol asks for < 1); final training accuracy '
            '%s.' % ('—' if length['gain_last_fifth_points'] is None
                     else '%.2f' % length['gain_last_fifth_points'],
                     record.pct(length['train_accuracy']))]


def _md_pilot(result):
    if result is None:
        return []
    lines = ['', '## Pilot: where do the layers above the cut matter? '
             '(validation split, one seed)', '',
             '| run | centre view (%) | TTA (%) | gap to BP, centre '
             '[95% CI], McNemar p | gap to BP, TTA [95% CI], McNemar p |',
             '|---|---:|---:|---:|---:|',
             '| `bp` | %s | %s | | |' % tuple(
                 _fmt1(result['bp'][v]) for v in comparisons.VIEWS)]
    for c in result['cuts']:
        err, gap = c['error'] or {}, c['gap'] or {}
        lines.append('| `bottom-bp` cut after `%s` | %s | %s | %s | %s |' % (
            c['cut'], _fmt1(err.get('centre')), _fmt1(err.get('tta')),
            *[_fmt_gap(gap.get(v)) for v in comparisons.VIEWS]))
    rule = ('The rule, fixed before the pilot ran: the deepest candidate cut '
            'where the bottom half alone errs at least %g points more than '
            'BP in the centre view, with an exact McNemar p below %g.'
            % (PILOT_GAP, PILOT_P))
    verdict = ('Chosen: `%s`.' % result['chosen'] if result['chosen'] else
               'Not every candidate has run yet.' if not result['complete']
               else 'No candidate meets the rule.')
    return lines + ['', rule + ' ' + verdict]


def _md_answers(results, level):
    """Markdown lines: each comparison that has paired runs as one
    sentence, worded by its statistics as the glance's verdict is
    (:func:`.results_doc.verdict_clause`), its t-test over the seeds
    Holm-adjusted over the report's comparisons."""
    said = []
    for question, a, b, by_view in results:
        if None in by_view.values():
            continue
        mixed = sorted({s for res in by_view.values()
                        for s in res['mixed_machines']})
        said.append('- %s: `%s` %s%s.' % (
            question, a, verdict_clause(by_view, '`%s`' % b),
            '' if not mixed else '; seed%s %s paired runs of two machine '
            'kinds' % ('s' if len(mixed) > 1 else '',
                       ', '.join(map(str, mixed)))))
    if not said:
        return []
    return ['', level + ' The answers, worded by the statistics', '',
            'Each comparison below that has paired runs, in one sentence: '
            'the difference in points of test error with its 95%% bootstrap '
            'interval and the p of the t-test over the seeds, Holm-adjusted '
            'over the comparisons of the next table; in the centre view, '
            'then with the 36-view average. A row errs more or less than '
            'another only where the interval excludes 0 and p < %g; "on '
            'these test images" where only the interval does, which the '
            'seeds (or one seed) leave open.' % SEED_P, ''] + said


def results_lines(s, table, level):
    """The table, the answers, the paired comparisons and the recovered
    fractions, under headings of ``level``."""
    results = comparisons.compare_all(table, COMPARISONS)
    return (_md_table(s, table, level) + _md_answers(results, level)
            + md_comparisons(table, COMPARISONS, level, results=results)
            + md_recovered(table, RECOVERING_ROWS, level)
            + md_machines(table, level))


def markdown(s, records, table, length):
    """The report's text: settings, the table, the comparisons, the
    tuning, the length and the pilot."""
    lines = (_md_settings(s, records) + results_lines(s, table, '##')
             + (_md_halving(s, records) if halving(s)
                else _md_tuning(s, table)) + _md_length(length)
             + _md_pilot(pilot(s, records)))
    return '\n'.join(lines) + '\n'


def write_report(s, records, log=print, results_doc=None):
    """Write ``table.md`` and its figures in ``records`` from the records;
    with ``results_doc``, also the table and comparisons block of that
    page, two heading levels down, and its glance block if it has one
    (:func:`.results_doc.update_results_doc`).

    Returns:
        list: The table, :func:`.summary.summarize`.
    """
    table = summarize(s, records)
    check_one_kernel(table)
    length = length_check(s, records)
    paths = plot(table, length, os.path.join(records, 'figures'))
    md = markdown(s, records, table, length)
    if paths:
        md += '\n' + '\n'.join('![%s](figures/%s)' % (
            os.path.basename(p)[:-4], os.path.basename(p)) for p in paths) \
            + '\n'
    with open(os.path.join(records, 'table.md'), 'w') as f:
        f.write(md)
    if results_doc:
        update_results_doc(results_doc, results_lines(s, table, '####'),
                           s, table=table, records=records)
        paths.append(results_doc)
    log('mini: wrote %s%s' % (os.path.join(records, 'table.md'),
                              ''.join(', ' + p for p in paths)))
    return table

"""A results page's report blocks: the lines between two markers, which
the mini report rewrites (``reproduce.py --results-doc``).

Each mini schedule has its own block, so that one page can hold the
reports of several cuts: the default schedule (:data:`.schedules.MINI`)
writes between :data:`DOC_BEGIN` and :data:`DOC_END`; one with another
network or cut names them in its markers (:func:`markers`).

A page may instead (or also) hold a schedule's *glance* block
(:func:`glance_markers`), as the README does: a small table of the paper's
rows, the paper's test error beside this schedule's, a caption that names
both data sets and networks, and a one-line verdict whose wording follows
the paired statistics (:func:`glance_lines`).
"""
import re

from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments.protocol import schedules
from chainer_vfbn.experiments.protocol.rows import TUNED_ROWS
from chainer_vfbn.experiments.reporting.comparison_tables import NO_SPREAD
from chainer_vfbn.experiments.reporting.comparison_tables import ci_text
from chainer_vfbn.experiments.reporting.comparison_tables import p_text
from chainer_vfbn.experiments.statistics import comparisons

#: The lines of a results page between which the default mini schedule's
#: report writes its table and comparisons (``--results-doc``).
DOC_BEGIN = '<!-- mini report: begin (written by reproduce.py) -->'
DOC_END = '<!-- mini report: end -->'


def markers(s=None):
    """The begin and end markers of the block of the schedule ``s``
    (None: the default).

    Example:
        >>> markers(schedules.settings(split_at='stage1_unit1',
        ...                            protocol='evidence2'))[1]
        '<!-- mini report, split at stage1_unit1: end -->'
        >>> markers(schedules.settings(split_at='stage1_unit1'))[1]
        '<!-- mini report, evidence3, split at stage1_unit1: end -->'
    """
    if s is None:
        return DOC_BEGIN, DOC_END
    differs = ([s['protocol']] if s.get('protocol') else []) + [
        '%s %s' % (label, s[key]) for key, label in
        (('arch', 'arch'), ('split_at', 'split at'))
        if s[key] != schedules.MINI[key]]
    if not differs:
        return DOC_BEGIN, DOC_END
    tag = 'mini report, ' + ', '.join(differs)
    return ('<!-- %s: begin (written by reproduce.py) -->' % tag,
            '<!-- %s: end -->' % tag)


def glance_markers(s=None):
    """The begin and end markers of the glance block of the schedule ``s``
    (None: the default), named like :func:`markers` but for the network and
    the cut alone: a later protocol's report rewrites the same block.

    Example:
        >>> glance_markers(schedules.settings(split_at='stage1_unit1'))[1]
        '<!-- results at a glance, mini report, split at stage1_unit1: end -->'
    """
    if s is not None:
        s = dict(s)
        s.pop('protocol', None)
    return tuple(m.replace('<!-- ', '<!-- results at a glance, ', 1)
                 for m in markers(s))


def _find_block(text, begin_marker, end_marker):
    """Where the content between the markers starts and ends, or None."""
    begin, end = text.find(begin_marker), text.find(end_marker)
    if begin < 0 or end < begin:
        return None
    return begin + len(begin_marker), end


def results_doc_block(path, s=None):
    """The page at ``path`` and where the content of the block of schedule
    ``s`` starts and ends; :class:`ExperimentError` if it has no such
    block."""
    begin_marker, end_marker = markers(s)
    with open(path) as f:
        text = f.read()
    where = _find_block(text, begin_marker, end_marker)
    if where is None:
        raise ExperimentError('%s has no %r ... %r block to write the table '
                              'into' % (path, begin_marker, end_marker))
    return (text,) + where


def check_page(path, s=None):
    """Refuse (:class:`ExperimentError`, one line) a page that holds neither
    the report block nor the glance block of schedule ``s``, before any
    run starts; an unreadable page raises ``OSError``."""
    with open(path) as f:
        text = f.read()
    if _find_block(text, *markers(s)) is None and \
            _find_block(text, *glance_markers(s)) is None:
        raise ExperimentError(
            '%s has no %r ... %r block to write the table into, nor a %r '
            'block' % ((path,) + markers(s) + glance_markers(s)[:1]))


def update_results_doc(path, lines, s=None, table=None, records=None):
    """Replace the block of schedule ``s`` (:func:`markers`) in the page at
    ``path`` with ``lines``, and its glance block (:func:`glance_markers`),
    if it has one, with :func:`glance_lines` of ``table`` (whose records
    are in the folder ``records``); the rest of the page is kept as it is.
    A page with neither block is refused."""
    with open(path) as f:
        text = f.read()
    blocks = [(markers(s), lambda: lines)]
    if table is not None:
        blocks.append((glance_markers(s),
                       lambda: glance_lines(s, table, records=records)))
    found = False
    for (begin_marker, end_marker), content in blocks:
        where = _find_block(text, begin_marker, end_marker)
        if where is None:
            continue
        found = True
        text = (text[:where[0]] + '\n'.join(content()) + '\n\n'
                + text[where[1]:])
    if not found:
        results_doc_block(path, s)      # raises, naming the markers
    with open(path, 'w') as f:
        f.write(text)


#: The setting of the paper's Table 1, which the glance names beside ours.
PAPER_SETTING = ('ResNet-110 on the full CIFAR-10 (50,000 training and '
                 '10,000 test images)')
#: The same, in a table's header.
PAPER_SHORT = 'ResNet-110, full CIFAR-10'
#: The glance's verdict: the rows VFBN is compared with, each with what it
#: is called, in this order (those absent from the table are left out).
VERDICT = (('bp', 'BP'), ('bottom-bp', 'the bottom half trained alone'),
           ('layerwise', 'the layer-wise loss'),
           ('vfbn-alpha0', 'its `v_f` left untrained (α_gs = 0)'),
           ('vfbn-paper-alpha', "the paper's α_gs = 1e-3"),
           ('dni-linear', 'the linear DNI'),
           ('dni-resnet', "DNI's small ResNet"),
           ('dgl', 'DGL'), ('infopro', 'InfoPro'))
#: The row the verdict is about.
VERDICT_ROW = 'vfbn'
#: The p-value below which the t-test over the seeds resolves a difference.
SEED_P = 0.05
_VIEW_NAMES = {'centre': 'in the centre view',
               'tta': 'with the 36-view average'}


def _mean_sd(st):
    if st is None:
        return 'not run yet'
    return '%.2f' % st['mean'] + (' ± %.2f' % st['std'] if st['n'] > 1
                                  else '')


def _ci(res, key='diff'):
    return ci_text(res, key).replace('-', '−')


def _finding(res):
    """What one view's comparison resolves: ``(direction, over_seeds)``,
    the direction 'more', 'less' or None as the 95% interval excludes 0
    above or below or not at all, and whether the t-test over the seeds
    also gives p < :data:`SEED_P`, Holm-adjusted (``p_holm``, as
    :func:`.comparisons.compare_all` adds it to the tests that have a p)."""
    direction = ('more' if res['low'] > 0 else 'less' if res['high'] < 0
                 else None)
    return direction, (direction is not None and len(res['seeds']) > 1
                       and res['seed_test']['p'] is not None
                       and res['seed_test']['p_holm'] < SEED_P)


def _say(finding, other, n_seeds, where=''):
    """The words of one finding against ``other``, ``where`` (a view's
    name, with its leading space, or '') after the row's name."""
    direction, over_seeds = finding
    if direction is None:
        return 'cannot be told from %s%s' % (other, where)
    said = 'errs %s than %s%s' % (direction, other, where)
    if over_seeds:
        return said
    return said + (' on these test images, in one seed' if n_seeds == 1
                   else ' on these test images, not resolved over the '
                   'seeds')


def _numbers(res):
    if len(res['seeds']) == 1:
        return _ci(res) + ', one seed'
    if res['seed_test']['no_spread']:
        return '%s, no t-test: %s' % (_ci(res), NO_SPREAD)
    p = p_text(res['seed_test']['p_holm'])
    return '%s, p %s over %d seeds' % (
        _ci(res), '< ' + p[1:] if p.startswith('<') else '= ' + p,
        len(res['seeds']))


def verdict_clause(res, other):
    """One clause of the verdict, worded by the paired statistics: "errs
    more (less) than" where the 95% interval of the difference excludes 0
    and the t-test over the seeds gives p < :data:`SEED_P` once adjusted
    (its ``p_holm``); "... on these
    test images" with what the seeds leave open where only the interval
    does; "cannot be told from" where the interval holds 0; per view where
    the views differ.

    Args:
        res (dict): ``{view: compare_rows result}`` (both views).
        other (str): What the compared row is called.

    Example:
        >>> def res(diff, low, high, p):
        ...     return dict(diff=diff, low=low, high=high, seeds=[0, 1, 2],
        ...                 seed_test=dict(p=p, p_holm=p, no_spread=False))
        >>> r = {'centre': res(6.5, 4.2, 8.9, 0.004),
        ...      'tta': res(-1.0, -2.5, 0.5, 0.3)}
        >>> for part in verdict_clause(r, 'BP').split(' and '):
        ...     print(part)
        errs more than BP in the centre view (+6.50 [+4.20, +8.90], p = 0.004 over 3 seeds)
        cannot be told from it with the 36-view average (−1.00 [−2.50, +0.50], p = 0.3 over 3 seeds)
        >>> r['tta'] = res(3.0, 1.0, 5.0, 0.09)
        >>> print(verdict_clause(r, 'BP').split(' and ')[1])
        errs more than it with the 36-view average on these test images, not resolved over the seeds (+3.00 [+1.00, +5.00], p = 0.09 over 3 seeds)
    """
    n_seeds = len(res[comparisons.VIEWS[0]]['seeds'])
    found = [_finding(res[v]) for v in comparisons.VIEWS]
    if found[0] == found[1]:
        return '%s (%s)' % (_say(found[0], other, n_seeds), '; '.join(
            _numbers(res[v]) for v in comparisons.VIEWS))
    return ' and '.join('%s (%s)' % (
        _say(f, other if i == 0 else 'it', n_seeds, ' ' + _VIEW_NAMES[v]),
        _numbers(res[v])) for i, (f, v) in enumerate(zip(
            found, comparisons.VIEWS)))


def _verdict(table, n_boot):
    """The verdict's lines: a heading that says how to read it, and a
    bullet per row VFBN is compared with."""
    names = dict(VERDICT)
    compared = comparisons.compare_all(
        table, [(None, VERDICT_ROW, other) for other, _ in VERDICT], n_boot)
    clauses = ['- ' + verdict_clause(res, names[other]) + ';'
               for _, _, other, res in compared if None not in res.values()]
    if not clauses:
        return ['No verdict yet: the rows have no paired runs.']
    clauses[-1] = clauses[-1][:-1] + '.'
    # the family the t-tests' p were adjusted over (compare_all's)
    n_tests = sum(res['seed_test']['p'] is not None
                  for _, _, _, by_view in compared
                  for res in by_view.values() if res is not None)
    return ['**Verdict**, paired by image and seed (the difference in '
            'points of test error, its 95%% bootstrap interval, and the p '
            'of a paired t-test over the seeds, Holm-adjusted over the '
            "verdict's %d t-tests; in the centre view, then with the "
            '36-view average). A row errs more or less than another only '
            'where the interval excludes 0 and p < %g. The answers in '
            'docs/RESULTS.md adjust each p over all of their tests, so '
            'theirs can be larger. VFBN (`%s`):'
            % (n_tests, SEED_P, VERDICT_ROW), ''] + clauses


def _label(r):
    if r['row'] in TUNED_ROWS and r.get('choice'):
        return '%s, %s chosen: %s' % (
            r['label'], schedules.choice_option(r['choice']),
            schedules.choice_text(r['choice']))
    return r['label']


def _share(table, r, n_boot):
    """A row's cell of the share of the bottom-to-BP gap it recovers, in
    the 36-view average, with its interval."""
    if r['row'] in ('bp', 'bottom-bp'):
        return '%d (by definition)' % (r['row'] == 'bp')
    by_row = {t['row']: t for t in table}
    if 'bp' not in by_row or 'bottom-bp' not in by_row:
        return '—'
    res = comparisons.recovered_fraction(r, by_row['bottom-bp'],
                                         by_row['bp'], 'tta', n_boot)
    return '—' if res is None else _ci(res, 'fraction')


def _published_share(row):
    found = comparisons.published_fraction(row)
    if found is None:
        return '—'
    return ('%.2f' % found[0] + (" (InfoPro's table)" if found[1] ==
                                 'InfoPro' else '')).replace('-', '−')


def glance_lines(s, table, n_boot=10000, records=None):
    """The glance block: the rows with a published figure (the paper's
    rows, and the local-learning peers of InfoPro's table), the paper's
    test error beside the schedule's in both views, the share of the
    bottom-to-BP gap each recovers beside the published one, a caption that
    names the data and the network of each, and the verdict.

    Args:
        s (dict): The schedule (:func:`.schedules.settings`).
        table (list): Its rows (:func:`.summary.summarize`).
        n_boot (int): Bootstrap replicates of the intervals.
        records (str): The folder of the records, which the caption links
            (relative to the page's folder, e.g.
            ``docs/results/mini-stage1_unit1`` from the README).

    Returns:
        list of str: Markdown lines.
    """
    cut = s['split_at']
    data = s['data'].split(' (')[0]
    depth = re.match(r'resnet(\d+)', s['arch'])
    short = 'ResNet-%s' % depth.group(1) if depth else s['arch']
    net = '%s (`%s`)' % (short, s['arch']) if depth else '`%s`' % s['arch']
    lines = ['', '| method (`--method`) | paper (%%): %s | ours (%%): %s on '
             '%s, 36-view average | ours (%%): centre view | share of the '
             'gap recovered, ours: 36-view [95%% CI] | share of the gap '
             'recovered, published | seeds |' % (
                 PAPER_SHORT, short, data.split(':')[0]),
             '|---|---:|---:|---:|---:|---:|---:|']
    shown = [r for r in table
             if comparisons.published_fraction(r['row']) is not None]
    for r in shown:
        lines.append('| %s (`%s`) | %s | %s | %s | %s | %s | %d |' % (
            _label(r), r['row'], '—' if r['paper'] is None
            else '%.2f' % r['paper'], _mean_sd(r['tta']),
            _mean_sd(r['centre']), _share(table, r, n_boot),
            _published_share(r['row']), len(r['seeds'])))
    source = ('' if records is None else
              ' (the records: [`%s`](%s))' % (records, records))
    scaled = ('' if not any(r.get('choice') and r['choice'][1] ==
                            'per-example' for r in shown if r['row'] in
                            TUNED_ROWS) else
              ' "B·δ" after a chosen α_gs: the synthesizer predicts B·δ, the '
              'per-example target scale (`--synth-target-scale '
              'per-example`).')
    peers = [r['row'] for r in shown if r['paper'] is None]
    theirs = ('' if not peers else
              " The peers' published shares are of InfoPro's table "
              '(ResNet-110 cut into two modules, full CIFAR-10; theirs, not '
              'measured here), from its greedy, each part trained alone, to '
              'its BP%s.' % (
                  "; its InfoPro figure is of the contrastive variant, ours "
                  "the softmax one" if 'infopro' in peers else ''))
    lines += [
        '', 'Test error in %%. **The two sides are different experiments**: '
        "the paper's column is its Table 1, %s. Ours is %s on %s, cut after "
        '`%s`, %d epochs, mean ± standard deviation over the seeds%s. The '
        '36-view average is how the paper tests (the softmax averaged over 36 '
        'crops and flips of each test image), the centre view its central '
        'crop alone. Compare rows within a column, never a row across '
        'columns. The share of the gap recovered is (bottom − row) / '
        '(bottom − BP), with "bottom" the bottom half trained alone: 1 '
        'recovers all of the gap between them, 0 none, below 0 errs more '
        "than the bottom alone; ours with its paired-bootstrap interval over "
        "the seeds all three rows share, the paper's from its Table 1.%s%s "
        'The methods: [Methods](#methods).'
        % (PAPER_SETTING, net, data, cut, s['epochs'], source, theirs,
           scaled), '']
    return lines + _verdict(table, n_boot) + [
        '', 'Every comparison, with its tests: '
        '[docs/RESULTS.md](docs/RESULTS.md).']

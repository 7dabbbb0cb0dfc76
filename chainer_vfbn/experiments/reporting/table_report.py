"""A Table 1 schedule's report: ``table.md``, ``table.json`` and Figure 3,
from the runs' records only (:func:`.summary.collect`)."""
import json
import os

from chainer_vfbn.experiments.protocol.schedules import SCHEDULES
from chainer_vfbn.experiments.reporting.figures import plot_figure3
from chainer_vfbn.experiments.statistics.summary import collect


def _fmt(stat, digits):
    if stat is None:
        return '—'
    text = '%.*f' % (digits, stat['mean'])
    if stat['n'] > 1:
        text += ' ± %.*f (n=%d)' % (digits, stat['std'], stat['n'])
    return text


def markdown(table, header):
    """``table.md``'s text: ``header`` (lines), then one line per row."""
    lines = header + [
        '',
        '| row | method | paper: test error (%) | test error, 1 view (%) | '
        '36-view TTA error (%) | wall time (s) | images/s | final synth/cos '
        '| epochs | runs |',
        '|---|---|---:|---:|---:|---:|---:|---:|---:|---|']
    for r in table:
        paper = '—' if r['paper_error_pct'] is None else \
            '%.2f' % r['paper_error_pct']
        runs = ', '.join('seed %d %s' % (x['seed'], x['status'])
                         for x in r['runs'])
        lines.append('| %s | %s (`%s`) | %s | %s | %s | %s | %s | %s | %s | %s |'
                     % (r['row'], r['label'], r['flags'], paper,
                        _fmt(r['test_error_pct'], 2),
                        _fmt(r['tta_error_pct'], 2),
                        _fmt(r['wall_time_s'], 0),
                        _fmt(r['images_per_sec'], 1),
                        _fmt(r['synth_cos'], 3), _fmt(r['epochs'], 1), runs))
    lines += ['', 'Errors are means over seeds (± sample standard deviation '
              'where n > 1), from each run\'s record; "paper" is '
              'Table 1 of Miyato et al. (12 paper epochs of ResNet-110 on '
              'CIFAR-10, 36-view evaluation). "—": no figure.']
    return '\n'.join(lines) + '\n'


def _header(schedule, seeds, out):
    title = 'Table 1 reproduction, schedule %s' % schedule
    return title, ['# ' + title, '',
                   'Schedule `%s`: %s.' % (schedule,
                                           SCHEDULES[schedule]['about']),
                   'Seeds: %s. Rows from `%s`.' % (
                       ', '.join(str(s) for s in seeds),
                       os.path.abspath(out))]


def write_table_report(runs, records, out, log=print):
    """Write ``table.md``, ``table.json`` and Figure 3 into ``out``.

    Nothing is trained: every number comes from the runs' records in
    ``records`` (a run's training folder without one is ``incomplete``).

    Args:
        runs (list): :func:`.plan.table_runs` of one schedule.
        records (str): Their records' folder.
        out (str): The reproduction's output folder.

    Returns:
        dict: What ``table.json`` holds.
    """
    schedule = runs[0].schedule
    seeds = sorted({run.seed for run in runs}, key=[r.seed for r in
                                                    runs].index)
    table = collect(runs, records, out)
    title, header = _header(schedule, seeds, out)
    figures = plot_figure3(table, out, title)
    drawn = isinstance(figures, list)
    report = dict(
        schedule=schedule, seeds=seeds,
        rows=[{k: v for k, v in r.items() if k != 'runs'} for r in table],
        runs={r['row']: [{k: x[k] for k in ('seed', 'status', 'summary')}
                         for x in r['runs']] for r in table},
        figures=[os.path.basename(p) for p in figures] if drawn else [],
        figures_skipped=None if drawn else figures)
    with open(os.path.join(out, 'table.md'), 'w') as f:
        f.write(markdown(table, header))
    with open(os.path.join(out, 'table.json'), 'w') as f:
        json.dump(report, f, indent=2, sort_keys=True)
    if not drawn:
        log(figures)
    log('reproduce: wrote %s, %s%s' % (
        os.path.join(out, 'table.md'), os.path.join(out, 'table.json'),
        ''.join(', ' + p for p in figures) if drawn else ''))
    return report

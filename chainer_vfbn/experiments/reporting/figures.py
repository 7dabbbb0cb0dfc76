"""The plots of a report: Figure 3 (error curves and synthetic-gradient
quality), the tuning curves and the length check. Each is skipped, with
the reason, where matplotlib is not installed."""
import collections
import os
import statistics

import numpy

from chainer_vfbn.datasets import augment
from chainer_vfbn.experiments.protocol.rows import TUNED_OPTIONS
from chainer_vfbn.experiments.protocol.schedules import alpha_name

#: Why the plots were skipped, where matplotlib is not installed.
NO_MATPLOTLIB = ("plots skipped: matplotlib is not installed "
                 "(pip install -e '.[plot]')")


def _pyplot():
    """matplotlib's pyplot on the Agg backend, or None."""
    try:
        # Imported here: matplotlib is a heavy optional dependency (the
        # `plot` extra); without it the plots are skipped.
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _save(plt, fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches='tight')
    plt.close(fig)
    return path


# ------------------------------------------------ the mini schedule's plots


def _seed_band(r):
    """Epochs and the per-seed centre-view errors (%) of a row's runs."""
    series = [[(e['epoch'], e['validation/main/error']) for e in curve
               if e.get('validation/main/error') is not None]
              for curve in r['curves']]
    if not series:
        return None, None
    n = min(len(p) for p in series)
    x = numpy.array([p[0] for p in series[0][:n]])
    return x, 100 * numpy.array([[p[1] for p in pts[:n]] for pts in series])


def _figure3(ax, table):
    for i, r in enumerate(table):
        x, y = _seed_band(r)
        if x is None:
            continue
        m = y.mean(axis=0)
        ax.plot(x, m, color='C%d' % (i % 10),
                label='%s (n=%d)' % (r['row'], len(y)))
        if len(y) > 1:
            sd = y.std(axis=0, ddof=1)
            ax.fill_between(x, m - sd, m + sd, color='C%d' % (i % 10),
                            alpha=0.2)
    ax.set_xlabel('epoch')
    ax.set_ylabel('test error, centre view (%)')
    ax.set_title('Figure 3 on cifar-10-mini: mean ± std over seeds')


def _synth_quality(axes, table):
    for i, r in enumerate(table):
        for ax, value in zip(axes, ('cos', 'relerr', 'norm_ratio')):
            key = 'synth/' + value
            pts = [(e['iteration'], e[key]) for e in
                   (r['curves'][0] if r['curves'] else []) if key in e]
            if pts:
                ax.plot(*zip(*pts), color='C%d' % (i % 10), label=r['row'])
    for ax, value in zip(axes, ('cos(δ̂, δ)', '‖δ − δ̂‖/‖δ‖', '‖δ̂‖/‖δ‖')):
        ax.set_xlabel('iteration')
        ax.set_title(value + ' (first seed)')
    axes[2].set_yscale('log')


#: The tuning figure's name of each tuned option (a dest of train_cifar.py).
_OPTION_NAMES = {'alpha_gs': 'alpha_gs',
                 'local_weight': "InfoPro's lambda2 (--local-weight)"}


def _option_of(row):
    """The option a row tunes (alpha_gs for a row that tunes none)."""
    return TUNED_OPTIONS.get(row, 'alpha_gs')


def _tuning_options(table):
    """The options the rows of ``table`` tuned, in the order of
    :data:`.rows.TUNED_OPTIONS` (alpha_gs where none did): one panel of the
    tuning figure each, so that alpha_gs and InfoPro's lambda2 never share
    an axis."""
    tuned = {_option_of(r['row']) for r in table if r['tuning']}
    return [o for o in collections.OrderedDict.fromkeys(
        TUNED_OPTIONS.values()) if o in tuned] or ['alpha_gs']


def _tuning(ax, table, option='alpha_gs'):
    """Validation error against each candidate of ``option``, one line per
    row, target scale and rung (the last rung's seeds averaged). The
    candidates sit at even steps in grid order, so that alpha_gs = 0 has
    its place. A run that diverged is an x at the top edge, never a point
    of a line: its record may keep an error evaluated before it
    diverged."""
    tried = [(i, r['row'], t) for i, r in enumerate(table)
             if _option_of(r['row']) == option
             for t in r['tuning']]
    entries = [(i, row, t) for i, row, t in tried
               if t['val_error'] is not None and not t['diverged']]
    grid = sorted({t['alpha'] for _, _, t in tried})
    lines = collections.OrderedDict()
    for i, row, t in entries:
        lines.setdefault((i, row, t['scale'], t['rung'], t['epochs']),
                         collections.defaultdict(list))[t['alpha']].append(
                             100 * t['val_error'])
    rungs = {t['rung'] for _, _, t in tried}
    for (i, row, scale, rung, epochs), errors in lines.items():
        pts = sorted((grid.index(a), statistics.fmean(e))
                     for a, e in errors.items())
        seeds = max(len(e) for e in errors.values())
        label = row + ('' if scale is None else ', ' + scale) + (
            '' if rungs == {0} else ', epoch %s%s' % (
                epochs, ', mean of %d seeds' % seeds if seeds > 1 else ''))
        ax.plot(*zip(*pts), ('--' if scale == 'per-example' else '-')
                + 'os^vD'[rung % 5], color='C%d' % (i % 10), label=label)
    gone = [(i, t) for i, _, t in tried if t['diverged']]
    for k, (i, t) in enumerate(gone):
        ax.plot(grid.index(t['alpha']), 1, 'x', color='C%d' % (i % 10),
                transform=ax.get_xaxis_transform(), clip_on=False,
                label='diverged' if k == 0 else '_nolegend_')
    ax.set_xticks(range(len(grid)))
    ax.set_xticklabels([alpha_name(a) if option == 'alpha_gs' else '%g' % a
                        for a in grid], rotation=45, ha='right')
    ax.set_xlabel(_OPTION_NAMES[option])
    ax.set_ylabel('validation error (%)')
    ax.set_title('Tuning on the validation split' + (
        ' (short runs)' if rungs == {0} else ', rung by rung'))


def _length(ax, length):
    ax.plot([p[0] for p in length['curve']],
            [100 * p[1] for p in length['curve']], '-o')
    ax.set_xlabel('epoch')
    ax.set_ylabel('validation error (%)')
    ax.set_title('Length check: BP on the validation split')


def plot(table, length, folder):
    """Figure 3 with seed bands, δ̂ quality curves, the tuning curves and
    the length check of a mini table (:func:`.summary.summarize`); returns
    the paths written (none without matplotlib)."""
    plt = _pyplot()
    if plt is None:
        return []
    os.makedirs(folder, exist_ok=True)
    # (file, (rows, columns) of panels, size, legend); the tuning figure
    # stacks a panel per tuned option, each legend beside its axes: one
    # entry per row, scale and rung is too many to sit on the lines
    options = _tuning_options(table)
    figures = [('figure3_test_error.png', (1, 1), (8, 5), _LEGEND_INSIDE,
                lambda axes: _figure3(axes[0], table)),
               ('synth_quality.png', (1, 3), (14, 4.2), _LEGEND_INSIDE,
                lambda axes: _synth_quality(axes, table)),
               ('tuning.png', (len(options), 1), (10, 4.5 * len(options)),
                _LEGEND_BESIDE, lambda axes: [
                    _tuning(ax, table, o) for ax, o in zip(axes, options)])]
    if length is not None:
        figures.append(('length_check.png', (1, 1), (6, 4), _LEGEND_INSIDE,
                        lambda axes: _length(axes[0], length)))
    paths = []
    for name, panels, size, legend, draw in figures:
        fig, axes = plt.subplots(*panels, figsize=size, squeeze=False)
        draw(list(axes.ravel()))
        for ax in fig.axes:
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(**legend)
        paths.append(_save(plt, fig, os.path.join(folder, name)))
    return paths


_LEGEND_INSIDE = dict(fontsize=7)
_LEGEND_BESIDE = dict(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1),
                      borderaxespad=0)


# ------------------------------------------- the Table 1 schedules' plots


def curves(log, key, x_key):
    """``(xs, ys)`` of the entries of ``log`` that have both keys.

    Example:
        >>> curves([{'epoch': 1, 'e': .5}, {'epoch': 2}], 'e', 'epoch')
        ([1], [0.5])
    """
    points = [(e[x_key], e[key]) for e in (log or [])
              if e.get(key) is not None and e.get(x_key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def synth_key(log):
    """The key of the synthetic gradient's cosine in ``log``, or None."""
    for key in ('synth/cos', 'synth0/cos'):
        if any(key in e for e in (log or [])):
            return key
    return None


def _table_errors(ax, table, title):
    drawn = 0
    for i, r in enumerate(table):
        color = 'C%d' % (i % 10)
        for k, run in enumerate(r['runs']):
            x, y = curves(run['log'], 'validation/main/error', 'epoch')
            if x:
                ax.plot(x, [100 * v for v in y], color=color, alpha=0.9,
                        label=r['row'] if k == 0 else None)
                drawn += 1
            x, y = curves(run['log'], 'validation/main/tta_error', 'epoch')
            if x:
                ax.plot(x, [100 * v for v in y], 'x', color=color)
    ax.set_xlabel('epoch (standard; %d = one paper epoch)'
                  % augment.PAPER_EPOCH)
    ax.set_ylabel('test error (%): lines centre view, x 36-view TTA')
    ax.set_title(title)
    return drawn


def _table_synth_cos(ax, table, title):
    drawn = 0
    for i, r in enumerate(table):
        for k, run in enumerate(r['runs']):
            key = synth_key(run['log'])
            if key is None:
                continue
            x, y = curves(run['log'], key, 'iteration')
            ax.plot(x, y, color='C%d' % (i % 10),
                    label=r['row'] if k == 0 else None)
            drawn += 1
    ax.set_xlabel('iteration')
    ax.set_ylabel('cos(grad_synth, grad_true)')
    ax.set_title(title + ': synthetic gradient quality')
    return drawn


def plot_figure3(table, out, title):
    """Write Figure 3's two PNGs of a Table 1 schedule
    (:func:`.summary.collect`); returns their paths, or
    :data:`NO_MATPLOTLIB`."""
    plt = _pyplot()
    if plt is None:
        return NO_MATPLOTLIB
    paths = []
    for name, draw in (('figure3_test_error.png', _table_errors),
                       ('figure3_synth_cos.png', _table_synth_cos)):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        drawn = draw(ax, table, title)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        paths.append(_save(plt, fig, os.path.join(out, name)))
    return paths

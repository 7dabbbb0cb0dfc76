"""A run's log, printout and plots: Chainer's own LogReport, PrintReport
and PlotReport, wired once for the synchronous ``Trainer`` of
``train_cifar.py`` and for rank 0 of a decoupled run
(:class:`chainer_vfbn.runs.relay.RelayTrainer`).

The files in ``--out``: ``log`` (JSON), ``loss.png``, ``error.png`` and,
with synthesizers, ``synth_cos.png``, ``synth_relerr.png`` and
``synth_norm_ratio.png``. The evaluation figures are named for the set they
are measured on: ``test/main/...``, or ``val/main/...`` for a held-out
validation split. The progress display is :class:`Progress`.
"""
import sys
import time

from chainer.training import extension
from chainer.training import extensions

from chainer_vfbn.divergence import GrowthWatch
from chainer_vfbn.runs.evaluation import RECORD_PREFIX
from chainer_vfbn.runs.evaluation import TEST_PREFIX

#: Per-synthesizer figures plotted against the iteration.
SYNTH_PLOTS = ('cos', 'relerr', 'norm_ratio')
#: What each synthesizer figure is, for the plots' axes.
SYNTH_LABELS = {'cos': 'cos(grad_synth, grad_true)',
                'relerr': '||grad_synth - grad_true|| / ||grad_true||',
                'norm_ratio': '||grad_synth|| / ||grad_true||'}
#: The name of each evaluation set in the plots.
SET_NAMES = {'test': 'test set', 'val': 'held-out validation split'}
#: Reference lines of the synthesizer plots: ``value -> [(y, legend)]``.
#: relerr = 1 is where δ̂ is as far from δ as zero is (‖0 − δ‖/‖δ‖ = 1):
#: above it, δ̂ = 0 would be the closer estimate.
SYNTH_REFERENCES = {'relerr': [(1., '1: grad_synth as far from grad_true '
                                    'as zero is')]}


class NoEscapes(object):
    """A stream that drops PrintReport's erase-line escape (for log files
    and pipes; a terminal with a progress bar keeps it)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        self.stream.write(text.replace('\033[J', ''))

    def flush(self):
        self.stream.flush()


def columns(synth_keys, per_synth=('cos', 'norm_ratio'),
            eval_prefix=TEST_PREFIX):
    """The printout's columns for the synthesizers ``synth_keys``; the
    evaluation figures are ``<eval_prefix>/main/...``
    (:func:`chainer_vfbn.runs.evaluation.eval_prefix`)."""
    cols = ['epoch', 'iteration', 'main/loss', 'main/accuracy']
    cols += ['%s/main/%s' % (eval_prefix, k)
             for k in ('loss', 'error', 'tta_error')]
    cols += ['%s/%s' % (k, v) for k in synth_keys for v in per_synth]
    return cols + ['lr', 'elapsed_time']


class PlotStyle(object):
    """A ``PlotReport`` postprocess: title, axis labels, line names, error
    in percent and sparse series (the 36-view TTA) as markers only.

    Args:
        title (str): The figure's title.
        ylabel (str): The y axis's label.
        xlabel (str): The x axis's label.
        series (dict): ``key -> (label, scale, sparse)`` for the plotted
            keys: the legend's name, a factor applied to the values (100
            for an error in percent) and whether to draw markers only.
        references (list): ``(y, label)`` of horizontal lines to draw, each
            named in the legend (e.g. :data:`SYNTH_REFERENCES`).
    """

    def __init__(self, title, ylabel, xlabel, series, references=()):
        self.title, self.ylabel, self.xlabel = title, ylabel, xlabel
        self.series = series
        self.references = list(references)

    def __call__(self, figure, axes, summary):
        axes.set_title(self.title, fontsize=10)
        axes.set_ylabel(self.ylabel)
        axes.set_xlabel(self.xlabel)
        for line in axes.lines:
            key = line.get_label()
            if key not in self.series:
                continue
            label, scale, sparse = self.series[key]
            line.set_ydata([scale * y for y in line.get_ydata()])
            line.set_label(label)
            if sparse:
                line.set_linestyle('none')
                line.set_marker('o')
        for y, label in self.references:
            axes.axhline(y, color='0.4', linestyle='--', linewidth=1,
                         label=label)
        axes.relim()
        axes.autoscale_view()


def split_label(split_at):
    """What a plot's legend calls the synthesizer at a split point: a
    layer name, or a step index of a ``chainer.Sequential``.

    Example:
        >>> split_label('stage2_unit9'), split_label(1)
        ('split after stage2_unit9', 'split after step 1')
    """
    return 'split after %s' % (split_at if isinstance(split_at, str)
                               else 'step %d' % split_at)


def plot_specs(synth_keys, eval_prefix=TEST_PREFIX, run='', split_at=()):
    """``[(keys, x_key, file_name, PlotStyle)]`` of a run's plots.

    Args:
        synth_keys (list of str): As in :func:`extend_reports`.
        eval_prefix (str): ``'test'`` or ``'val'``.
        run (str): What the titles name, e.g. ``'vfbn on resnet20-paper
            (result/sample-vfbn)'``.
        split_at (list): The split point of each of ``synth_keys``
            (``Method.split_at``), which the synthesizer plots' legends
            name (:func:`split_label`); empty: the legends name the keys.
    """
    names = ([split_label(at) for at in split_at]
             if len(split_at) == len(synth_keys) else list(synth_keys))
    where = SET_NAMES.get(eval_prefix, eval_prefix)
    ev = '%s/main/' % eval_prefix
    specs = [
        (['main/loss', ev + 'loss'], 'epoch', 'loss.png', PlotStyle(
            '%s: loss' % run, 'softmax cross-entropy loss', 'epoch',
            {'main/loss': ('training (mean over the epoch)', 1, False),
             ev + 'loss': ('%s, centre view' % where, 1, False)})),
        ([ev + 'error', ev + 'tta_error'], 'epoch', 'error.png', PlotStyle(
            '%s: error on the %s' % (run, where), 'error (%)', 'epoch',
            {ev + 'error': ('%s, centre view' % where, 100, False),
             ev + 'tta_error': ('%s, multi-view TTA' % where, 100, True)})),
    ]
    for value in SYNTH_PLOTS if synth_keys else ():
        specs.append((
            ['%s/%s' % (k, value) for k in synth_keys], 'iteration',
            'synth_%s.png' % value, PlotStyle(
                '%s: synthetic gradient, %s' % (run, value),
                SYNTH_LABELS[value], 'iteration',
                {'%s/%s' % (k, value): (name, 1, False)
                 for k, name in zip(synth_keys, names)},
                SYNTH_REFERENCES.get(value, ()))))
    return specs


def extend_reports(trainer, synth_keys, trigger, per_synth=('cos',
                                                             'norm_ratio'),
                   erase_line=False, eval_prefix=TEST_PREFIX, run='',
                   split_at=()):
    """Register LogReport, GrowthWatch, PrintReport and the PlotReports.

    Args:
        trainer (~chainer.training.Trainer): Gets the extensions.
        synth_keys (list of str): Report prefixes of the synthesizers
            (:func:`chainer_vfbn.split_step.synth_names`); empty for BP.
        trigger: When a log entry is made (every report fires with it).
        per_synth (tuple): Per-synthesizer values in the printout.
        erase_line (bool): Keep PrintReport's erase-line escape (a progress
            bar on a terminal); otherwise the printout is plain text.
        eval_prefix (str): The evaluation figures' prefix, ``'test'`` or
            ``'val'`` (:func:`chainer_vfbn.runs.evaluation.eval_prefix`).
        run (str): The run's name in the plots' titles (method, arch, out).
        split_at (list): The synthesizers' split points, for the legends
            (:func:`plot_specs`).
    """
    trainer.extend(extensions.LogReport(trigger=trigger))
    if synth_keys:
        trainer.extend(GrowthWatch(['%s/loss' % k for k in synth_keys],
                                   say=lambda line: print(line, flush=True)),
                       trigger=trigger)
    trainer.extend(extensions.PrintReport(
        columns(synth_keys, per_synth, eval_prefix),
        out=sys.stdout if erase_line else NoEscapes(sys.stdout)))
    if not extensions.PlotReport.available():
        print('plots skipped: matplotlib is not installed '
              "(pip install -e '.[plot]')")
        return
    for keys, x_key, file_name, style in plot_specs(synth_keys, eval_prefix,
                                                    run, split_at):
        trainer.extend(_PlotReport(
            keys, x_key, trigger=trigger, file_name=file_name,
            postprocess=style))


class _PlotReport(extensions.PlotReport):
    """Chainer's PlotReport, resuming a snapshot from before the evaluation
    figures were named ``test/`` or ``val/`` (``validation/``): its points
    carry over to the new names instead of a KeyError."""

    def serialize(self, serializer):
        super(_PlotReport, self).serialize(serializer)
        for key in self._y_keys:
            if key not in self._data:
                self._data[key] = self._data.pop(
                    '%s/%s' % (RECORD_PREFIX, key.partition('/')[2]), [])


def _clock_text(seconds):
    seconds = int(round(seconds))
    return '%d:%02d:%02d' % (seconds // 3600, seconds // 60 % 60,
                             seconds % 60)


class Progress(extension.Extension):
    """How far the run is, within the epoch and overall.

    Chainer's ``ProgressBar`` is not reused: it redraws only every
    ``update_interval`` iterations (on the sample, at epoch ends only, so
    "this epoch" stayed at 0%), reports ``inf`` iterations/s at first, and
    moves the cursor with escape codes even into a file. This one, on a
    terminal, rewrites one line (``\r``, no escape code) at most every
    ``tty_every`` seconds; elsewhere (a log file, a pipe) it prints a plain
    line at most every ``plain_every`` seconds.

    Args:
        stop_iteration (int): The run's last iteration.
        iters_per_epoch (float): Iterations in one epoch.
        out: The stream (``sys.stdout`` by default).
        clock (callable): Seconds; ``time.time`` by default.
    """

    trigger = 1, 'iteration'
    priority = extension.PRIORITY_READER

    def __init__(self, stop_iteration, iters_per_epoch, out=None,
                 clock=time.time, tty_every=0.5, plain_every=60.):
        self.stop_iteration = stop_iteration
        self.iters_per_epoch = iters_per_epoch
        self.out = sys.stdout if out is None else out
        self.clock = clock
        isatty = getattr(self.out, 'isatty', None)
        self.tty = bool(isatty and isatty())
        self.every = tty_every if self.tty else plain_every
        self._start = None     # (time, iteration) of this session's first call
        self._last = None      # time of the last line

    def line(self, iteration, now):
        """The progress text at ``iteration``."""
        epoch_float = iteration / float(self.iters_per_epoch)
        epoch = int(epoch_float)       # epochs done
        in_epoch = epoch_float - epoch
        if iteration and not in_epoch:  # the last iteration of an epoch
            epoch, in_epoch = epoch - 1, 1.
        total = min(1., iteration / float(self.stop_iteration))
        n_epochs = self.stop_iteration / float(self.iters_per_epoch)
        width = 20
        bar = '#' * int(in_epoch * width)
        text = ('epoch %d of %g [%s%s] %3.0f%% of it; iteration %d of %d '
                '(%.1f%% of the run)' % (
                    epoch + 1, n_epochs, bar, '.' * (width - len(bar)), 100 * in_epoch,
                    iteration, self.stop_iteration, 100 * total))
        t0, i0 = self._start
        if now > t0 and iteration > i0:
            rate = (iteration - i0) / (now - t0)
            text += ', %.2f iters/s, %s left' % (
                rate, _clock_text((self.stop_iteration - iteration) / rate))
        return text

    def __call__(self, trainer):
        iteration = trainer.updater.iteration
        now = self.clock()
        if self._start is None:
            # The rate counts from the first iteration of this session.
            self._start = (now, iteration)
        end = iteration >= self.stop_iteration
        if not end and self._last is not None and \
                now - self._last < self.every:
            return
        self._last = now
        text = self.line(iteration, now)
        if self.tty:
            # Back to the line's start afterwards, so that PrintReport's
            # next line overwrites it.
            self.out.write('\r%s\r' % text.ljust(79))
        else:
            self.out.write('progress: %s\n' % text)
        self.out.flush()

    def finalize(self):
        if self.tty:
            self.out.write('\r%s\r' % (' ' * 79))
            self.out.flush()

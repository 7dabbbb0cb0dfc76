"""A run's log, printout and plots: Chainer's own LogReport, PrintReport
and PlotReport, wired once for the synchronous ``Trainer`` of
``train_cifar.py`` and for rank 0 of a decoupled run
(:class:`chainer_vfbn.decoupled.relay.RelayTrainer`).

The files in ``--out``: ``log`` (JSON), ``loss.png``, ``error.png`` and,
with synthesizers, ``synth_cos.png``, ``synth_relerr.png`` and
``synth_norm_ratio.png``.
"""
import sys

from chainer.training import extensions

from chainer_vfbn.divergence import GrowthWatch

#: What each line of the printout shows, when the log has it.
COLUMNS = ('epoch', 'iteration', 'main/loss', 'main/accuracy',
           'validation/main/loss', 'validation/main/error',
           'validation/main/tta_error')
#: Per-synthesizer figures plotted against the iteration.
SYNTH_PLOTS = ('cos', 'relerr', 'norm_ratio')


class NoEscapes(object):
    """A stream that drops PrintReport's erase-line escape (for log files
    and pipes; a terminal with a progress bar keeps it)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        self.stream.write(text.replace('\033[J', ''))

    def flush(self):
        self.stream.flush()


def columns(synth_keys, per_synth=('cos', 'norm_ratio')):
    """The printout's columns for the synthesizers ``synth_keys``."""
    cols = list(COLUMNS)
    cols += ['%s/%s' % (k, v) for k in synth_keys for v in per_synth]
    return cols + ['lr', 'elapsed_time']


def extend_reports(trainer, synth_keys, trigger, per_synth=('cos',
                                                             'norm_ratio'),
                   erase_line=False):
    """Register LogReport, GrowthWatch, PrintReport and the PlotReports.

    Args:
        trainer (~chainer.training.Trainer): Gets the extensions.
        synth_keys (list of str): Report prefixes of the synthesizers
            (:func:`chainer_vfbn.split_step.synth_names`); empty for BP.
        trigger: When a log entry is made (every report fires with it).
        per_synth (tuple): Per-synthesizer values in the printout.
        erase_line (bool): Keep PrintReport's erase-line escape (a progress
            bar on a terminal); otherwise the printout is plain text.
    """
    trainer.extend(extensions.LogReport(trigger=trigger))
    if synth_keys:
        trainer.extend(GrowthWatch(['%s/loss' % k for k in synth_keys],
                                   say=lambda line: print(line, flush=True)),
                       trigger=trigger)
    trainer.extend(extensions.PrintReport(
        columns(synth_keys, per_synth),
        out=sys.stdout if erase_line else NoEscapes(sys.stdout)))
    if not extensions.PlotReport.available():
        print('plots skipped: matplotlib is not installed '
              "(pip install -e '.[plot]')")
        return
    plots = [(['main/loss', 'validation/main/loss'], 'epoch', 'loss.png'),
             (['validation/main/error', 'validation/main/tta_error'], 'epoch',
              'error.png')]
    if synth_keys:
        plots += [(['%s/%s' % (k, value) for k in synth_keys], 'iteration',
                   'synth_%s.png' % value) for value in SYNTH_PLOTS]
    for keys, x_key, file_name in plots:
        trainer.extend(extensions.PlotReport(keys, x_key, trigger=trigger,
                                             file_name=file_name))

"""Divergence: a run stops at the first non-finite figure instead of training
on NaN, and its records stay valid JSON.

Both trainers (the synchronous updaters and an MPI rank of
:mod:`chainer_vfbn.decoupled`) check the same three figures through
:func:`check_finite`: the task loss, δ̂ (:func:`chainer_vfbn.split_step.
synthesize`) and the synthesizer's regression loss
(:func:`chainer_vfbn.split_step.regress`). A figure that stays finite but
grows by orders of magnitude is only warned about (:class:`GrowthWatch`):
a DNI synthesizer's loss often rises early on and recovers.
"""
import math

import chainer
from chainer.training import extension


class Diverged(ArithmeticError):
    """A training figure is NaN or infinite.

    Attributes:
        what (str): The figure, e.g. ``'main/loss'`` or ``'synth: δ̂'``.
        iteration (int or None): The iteration that produced it (set by
            the trainer that knows it).
    """

    def __init__(self, what, iteration=None):
        super(Diverged, self).__init__(what)
        self.what = what
        self.iteration = iteration

    def __str__(self):
        where = '' if self.iteration is None else \
            ' at iteration %d' % self.iteration
        return '%s is not finite (NaN or inf)%s' % (self.what, where)


def check_finite(what, value):
    """Raise :class:`Diverged` unless every entry of ``value`` is finite.

    Args:
        what (str): Name of the figure, for the message.
        value: A ``Variable``, an array (NumPy or CuPy) or a number.
    """
    if isinstance(value, chainer.Variable):
        value = value.array
    xp = chainer.backend.get_array_module(value)
    if not bool(xp.isfinite(value).all()):
        raise Diverged(what)


class FiniteCheck(extension.Extension):
    """Trainer extension: stop at the first iteration with a non-finite loss.

    Runs after every update, before the writers, on the figures the
    updater reported (any updater: the plain back-prop ones report
    ``main/loss`` too). Raises :class:`Diverged` with the iteration.

    Args:
        keys (tuple of str): Reported figures to check.
    """

    trigger = 1, 'iteration'
    priority = extension.PRIORITY_WRITER + 1

    def __init__(self, keys=('main/loss', 'local/loss')):
        self.keys = keys

    def __call__(self, trainer):
        for key in self.keys:
            if key in trainer.observation:
                try:
                    check_finite(key, trainer.observation[key])
                except Diverged as e:
                    e.iteration = trainer.updater.iteration
                    raise


class GrowthWatch(extension.Extension):
    """Warns once per key when a logged loss grows by orders of magnitude.

    Usable on its own (:meth:`check`, the decoupled runner's rank 0) or as
    a trainer extension on the newest ``LogReport`` entry.

    Args:
        keys (list of str): The logged keys to watch, e.g. ``synth/loss``.
        factor (float): Warn when a value exceeds the smallest one logged
            before it by this factor (default 1000: three orders of
            magnitude).
        say (callable): Gets each warning line.
    """

    priority = extension.PRIORITY_READER

    def __init__(self, keys, factor=1e3, say=print):
        self.keys = list(keys)
        self.factor = factor
        self.say = say
        self.lowest = {}
        self.warned = set()
        self._seen = 0

    def check(self, entry):
        """Warning lines for the watched keys of one log entry.

        Args:
            entry (dict): A log entry (``key -> value``).

        Returns:
            list of str: One line per key that crossed the factor for the
            first time.
        """
        lines = []
        for key in self.keys:
            value = entry.get(key)
            if value is None or not math.isfinite(value):
                continue
            low = self.lowest.get(key)
            if low is not None and low > 0 and key not in self.warned and \
                    value > self.factor * low:
                self.warned.add(key)
                lines.append(
                    'warning: %s grew from %.3g to %.3g (x%.0f) by iteration '
                    '%s: the synthesizer may be diverging (a smaller '
                    '--alpha-gs?)' % (key, low, value, value / low,
                                      entry.get('iteration', '?')))
            if low is None or value < low:
                self.lowest[key] = value
        return lines

    def __call__(self, trainer):
        log = trainer.get_extension('LogReport').log
        for entry in log[self._seen:]:
            for line in self.check(entry):
                self.say(line)
        self._seen = len(log)

"""SIGINT/SIGTERM as a request to stop at a clean point.

A run that is interrupted should stop between two iterations, save a
snapshot there and exit with the shell's code for the signal (130 for
SIGINT, 143 for SIGTERM), not print a traceback from inside an update. The
handler only records the request; the loop that can stop cleanly asks
:attr:`Interrupt.signum`. A second signal stops at once
(``KeyboardInterrupt``), for a loop that does not come back.

A decoupled run's ranks run under ``mpiexec``, and Open MPI's ``mpiexec``
does not pass SIGINT or SIGTERM on: it sends every rank SIGCONT, SIGTERM one
second later (``odls_base_sigkill_timeout``) and SIGKILL one second after
that, then exits 1, too soon for any snapshot. It does forward SIGUSR1 and
SIGUSR2, so a launcher (:func:`chainer_vfbn.runs.decoupled.launch`) turns
its own SIGINT and SIGTERM into those (:data:`FORWARD_AS`), and the ranks
take them as the signal they stand for (:data:`FORWARDED`).
"""
import signal
import sys

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How a launcher passes a signal through mpiexec, and back.
FORWARD_AS = {signal.SIGINT: signal.SIGUSR1, signal.SIGTERM: signal.SIGUSR2}
FORWARDED = {v: k for k, v in FORWARD_AS.items()}


class Interrupt(object):
    """Context manager recording SIGINT and SIGTERM.

    Args:
        on_signal (callable): Called with the signal number when the first
            signal arrives (e.g. to forward it to child processes).
        signals (tuple): The signals to record; one of :data:`FORWARDED`
            counts as the signal it stands for.

    Attributes:
        signum (int or None): The first signal received.
        raw_signum (int or None): That signal as it arrived (a forwarded
            one is SIGUSR1 or SIGUSR2, :data:`FORWARD_AS`).
    """

    def __init__(self, on_signal=None, signals=SIGNALS):
        self.on_signal = on_signal
        self.signals = tuple(signals)
        self.signum = None
        self.raw_signum = None
        self._previous = {}

    @property
    def exit_code(self):
        """The shell's exit status for the signal: ``128 + signum``."""
        return 128 + self.signum

    @property
    def name(self):
        return signal.Signals(self.signum).name

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.raw_signum = signum
        signum = FORWARDED.get(signum, signum)
        self.signum = signum
        if self.on_signal is not None:
            self.on_signal(signum)

    def __enter__(self):
        for s in self.signals:
            self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        return False


def acknowledge(prog):
    """An ``on_signal`` for :class:`Interrupt` that says at once, on
    stderr, that the signal arrived and what the run does now.

    The run may take a while to reach its clean point (the last
    iteration's 36-view test, for one), so the line comes from the handler
    itself.

    Example:
        >>> with Interrupt(acknowledge('train_cifar.py')) as interrupt:
        ...     pass  # the training loop, asking interrupt.signum
    """
    def on_signal(signum):
        try:
            sys.stderr.write(
                '%s: %s received: stopping after this iteration (its '
                'evaluation included) with a snapshot; a second signal '
                'stops at once, without one\n'
                % (prog, signal.Signals(signum).name))
            sys.stderr.flush()
        except (OSError, RuntimeError, ValueError):  # a closed or busy stream
            pass
    return on_signal


def stopped_line(prog, interrupt, iteration, snapshot):
    """The line a run stopped by ``interrupt`` ends with.

    Args:
        prog (str): The script's name.
        interrupt (Interrupt): The context that recorded the signal.
        iteration (int): The iteration the run stopped after.
        snapshot (str): The snapshot (or snapshot set) taken there; None
            where none was taken (no iteration done).

    Example:
        >>> import signal
        >>> with Interrupt() as interrupt:
        ...     signal.raise_signal(signal.SIGINT)
        >>> stopped_line('train_cifar.py', interrupt, 7, 'out/snapshot_iter_7')
        ... # doctest: +ELLIPSIS
        'train_cifar.py: interrupted by SIGINT at iteration 7; snapshot ...'
    """
    return ('%s: interrupted by %s at iteration %d; %s; the same command '
            'resumes it' % (prog, interrupt.name, iteration,
                            'snapshot %s' % snapshot if snapshot else
                            'no snapshot (no iteration done)'))


class Interrupted(Exception):
    """Raised by a loop that stopped cleanly on a signal.

    Args:
        interrupt (Interrupt): The context that recorded the signal.
    """

    def __init__(self, interrupt):
        super(Interrupted, self).__init__('interrupted by %s' % interrupt.name)
        self.name = interrupt.name
        self.exit_code = interrupt.exit_code


class StopOnInterrupt(object):
    """A trainer's stop trigger that also fires once an interrupt arrived.

    Wraps the run's own stop trigger, which it delegates everything else to
    (its length for the progress bar, its serialization).

    Attributes:
        finished (bool): Whether the run's own trigger fired: the run is
            complete even if an interrupt arrived during its last
            iteration.
    """

    def __init__(self, trigger, interrupt):
        self.trigger = trigger
        self.interrupt = interrupt
        self.finished = False

    def __call__(self, trainer):
        # The run's own trigger is asked every time, so that a run whose
        # last iteration was interrupted still counts as finished.
        self.finished = bool(self.trigger(trainer))
        return self.finished or self.interrupt.signum is not None

    def __getattr__(self, name):
        return getattr(self.trigger, name)

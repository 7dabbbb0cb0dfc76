"""SIGINT/SIGTERM as a request to stop at a clean point.

A run that is interrupted should stop between two iterations, save a
snapshot there and exit with the shell's code for the signal (130 for
SIGINT, 143 for SIGTERM), not print a traceback from inside an update. The
handler only records the request; the loop that can stop cleanly asks
:attr:`Interrupt.signum`. A second signal stops at once
(``KeyboardInterrupt``), for a loop that does not come back.
"""
import signal

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupt(object):
    """Context manager recording SIGINT and SIGTERM.

    Args:
        on_signal (callable): Called with the signal number when the first
            signal arrives (e.g. to forward it to child processes).

    Attributes:
        signum (int or None): The first signal received.
    """

    def __init__(self, on_signal=None):
        self.on_signal = on_signal
        self.signum = None
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
        self.signum = signum
        if self.on_signal is not None:
            self.on_signal(signum)

    def __enter__(self):
        for s in SIGNALS:
            self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        return False


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
    """

    def __init__(self, trigger, interrupt):
        self.trigger = trigger
        self.interrupt = interrupt

    def __call__(self, trainer):
        return self.interrupt.signum is not None or self.trigger(trainer)

    def __getattr__(self, name):
        return getattr(self.trigger, name)

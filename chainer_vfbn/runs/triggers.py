"""When the trainers evaluate, run the test-time augmentation and snapshot.

One schedule for both runners: the synchronous :class:`~chainer.training.
Trainer` (through the :class:`EpochsOrEnd` trigger) and the decoupled runner
(which calls :func:`epochs_or_end` and :func:`tta_due` itself).

Chainer's ``(k, 'epoch')`` interval trigger is not reused: this schedule
also fires at the last iteration whatever ``k`` (``k <= 0``: only there), so
that a run always ends with its figures, and the decoupled runner, which has
no Trainer, must ask the very same function.
"""


def epochs_or_end(iteration, last_iteration, is_new_epoch, epoch, k):
    """The evaluation (and snapshot) schedule of both trainers.

    True at the end of every ``k``-th epoch and at the last iteration, so
    that a run always ends with its figures; ``k <= 0`` (Chainer examples'
    ``--frequency -1``): at the last iteration only.

    Example::

        >>> epochs_or_end(20, 30, True, 2, 2)   # the end of epoch 2, k = 2
        True
        >>> epochs_or_end(10, 30, True, 1, 2)   # epoch 1: not due
        False
    """
    return iteration == last_iteration or (
        k > 0 and is_new_epoch and epoch % k == 0)


def tta_due(n_evals, tta_interval, at_end):
    """Whether the ``n_evals``-th evaluation also runs the views' TTA.

    Every ``tta_interval``-th evaluation (``0``: never), and always the one
    at the last iteration (``at_end``), so that a run ends with its
    36-view figure and its summary never quotes a stale one.

    Example::

        >>> [tta_due(n, 2, at_end=False) for n in (1, 2, 3)]
        [False, True, False]
    """
    return tta_interval > 0 and (n_evals % tta_interval == 0 or at_end)


class EpochsOrEnd(object):
    """Trigger of :func:`epochs_or_end` for a :class:`~chainer.training.
    Trainer`.

    Stateless (read off the updater), so it needs no serialization to
    behave the same after a resume.

    Example::

        trainer.extend(extensions.snapshot(),
                       trigger=EpochsOrEnd(k, last_iteration))
    """

    def __init__(self, k, last_iteration):
        self.k = k
        self.last_iteration = last_iteration

    def __call__(self, trainer):
        updater = trainer.updater
        return epochs_or_end(updater.iteration, self.last_iteration,
                             updater.is_new_epoch, updater.epoch, self.k)

"""What a Table 1 schedule costs in GPU-hours, from the one measured step.

The only GPU timing of the ResNet-110 training step is one session's
(``benchmarks/bench_vs_pytorch.py``, median of 3 blocks, NVIDIA H200, CuPy
14 without cuDNN, 2026-11-30,
``docs/benchmarks/gpu_h200_2026-11-30/vs_pytorch.json``): :data:`STEP_S`.
Everything else is arithmetic on a schedule's own options, here and only
here, so that ``reproduce.py --help`` (the ``paper`` schedule's text), the
README and ``docs/cluster.md`` quote one estimate (:func:`sentence`).

What it does not know, and says: the rows other than BP and VFBN were not
timed (each is taken to cost between BP's step and VFBN's), and the
evaluations were not timed (a forward pass of an image costs less than its
share of a training step, so they add at most their share of the images).
"""
from chainer_vfbn.experiments.protocol.rows import ROWS
from chainer_vfbn.runs.triggers import tta_due

#: Seconds per training step of ResNet-110 (``paper`` preset), batch 128,
#: on the measured GPU (vs_pytorch.json's ``median_s``).
STEP_S = {'bp': 0.22675398359999974, 'vfbn': 0.3104908693999988}
#: Where :data:`STEP_S` was measured.
MEASURED_ON = ('ResNet-110, NVIDIA H200, CuPy 14 without cuDNN, 2026-11-30, '
               'docs/benchmarks/gpu_h200_2026-11-30/vs_pytorch.json')
N_TRAIN = 50000    # CIFAR-10's training images
N_TEST = 10000     # its test images
N_VIEWS = 36       # the test-time augmentation's views of an image
SEEDS = 3          # Table 1 with mean and spread over seeds


def run_cost(options):
    """GPU-hours of one run of ``train_cifar.py`` with ``options``.

    Args:
        options (dict): The run's ``epoch``, ``batchsize``,
            ``eval_interval`` and ``tta_interval`` (``{dest: value}``,
            e.g. a schedule's ``options``), each given.

    Returns:
        dict: ``iterations``; ``train_h``: hours of training steps per
        measured method (``{'bp': h, 'vfbn': h}``); ``eval_share``: the
        evaluations' test images over the training images, the bound on
        what they add (a fraction of ``train_h``).

    Example:
        >>> run_cost(dict(epoch=432, batchsize=128, eval_interval=6,
        ...               tta_interval=6))['iterations']
        168750
    """
    missing = [k for k in ('epoch', 'batchsize', 'eval_interval',
                           'tta_interval') if k not in options]
    if missing:
        raise ValueError('run_cost needs %s in the run\'s options'
                         % ', '.join(missing))
    epochs, batch, eval_k, tta_k = (options[k] for k in (
        'epoch', 'batchsize', 'eval_interval', 'tta_interval'))
    iterations = -(-epochs * N_TRAIN // batch)
    # The trainers' schedule (runs/triggers.py): every eval_k-th epoch and
    # the last; the views' TTA every tta_k-th evaluation and the last.
    n_evals = sum(1 for e in range(1, epochs + 1)
                  if e % eval_k == 0 or e == epochs)
    n_tta = sum(1 for n in range(1, n_evals + 1)
                if tta_due(n, tta_k, n == n_evals))
    images = N_TEST * (n_evals + N_VIEWS * n_tta)
    return dict(iterations=iterations,
                train_h={m: iterations * s / 3600. for m, s in STEP_S.items()},
                eval_share=images / float(epochs * N_TRAIN))


def table_cost(options, rows=len(ROWS), seeds=SEEDS):
    """GPU-hours of a Table 1 schedule: ``rows`` x ``seeds`` runs.

    Returns:
        dict: :func:`run_cost`'s, and ``runs``, ``low_h`` (every run at
        BP's step, no evaluation) and ``high_h`` (every run at VFBN's step
        plus the evaluations' bound).

    Example:
        >>> from chainer_vfbn.experiments.protocol.schedules import SCHEDULES
        >>> table_cost(SCHEDULES['paper']['options'])['runs']
        27
    """
    cost = run_cost(options)
    runs = rows * seeds
    cost.update(runs=runs, low_h=runs * cost['train_h']['bp'],
                high_h=runs * cost['train_h']['vfbn']
                * (1 + cost['eval_share']))
    return cost


def sentence(options):
    """The estimate in words, as ``--help``, the README and
    docs/cluster.md show it.

    Example:
        >>> from chainer_vfbn.experiments.protocol.schedules import SCHEDULES
        >>> sentence(SCHEDULES['paper']['options'])[:62]
        'GPU-hours from the one measured step (BP 0.227 s, VFBN 0.310 s'
    """
    c = table_cost(options)
    return ('GPU-hours from the one measured step (BP %.3f s, VFBN %.3f s; '
            '%s): %s steps a run, %.1f (BP) to %.1f (VFBN), plus at most '
            '%d%% for the evaluations (not timed); %d rows x %d seeds = %d '
            'runs, the other rows taken to cost between BP and VFBN (not '
            'timed): about %d to %d GPU-hours'
            % (STEP_S['bp'], STEP_S['vfbn'], MEASURED_ON,
               '{:,}'.format(c['iterations']), c['train_h']['bp'],
               c['train_h']['vfbn'], round(100 * c['eval_share']), len(ROWS),
               SEEDS, c['runs'], _round(c['low_h']), _round(c['high_h'])))


def _round(hours):
    """To the nearest 10 GPU-hours: the estimate is no finer."""
    return int(round(hours / 10.)) * 10

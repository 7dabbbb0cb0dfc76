"""Each rank's work in a K = 2 split step, and the most a pipeline gains.

A decoupled run with two modules is a two-stage pipeline: rank 0 runs the
bottom module, rank 1 the top, and the synthesizer's work goes to one of
them (``--synth-placement``). :func:`rank_steps` builds each piece of one
step from :mod:`chainer_vfbn.split_step`, the functions both trainers call,
so a benchmark times (``bench_decoupled.py``) or counts (``count_macs.py``)
the very step that training runs; :func:`pipeline_bounds` turns the pieces'
costs into the best any such pipeline can do, :func:`rank_costs` times the
pieces and :func:`print_costs` prints both.

Example::

    >>> import chainer_vfbn
    >>> from chainer_vfbn.experiments.bench import pipeline
    >>> from chainer_vfbn.models import resnet_cifar
    >>> net = resnet_cifar('resnet8-paper')
    >>> h_shape, steps = pipeline.rank_steps(net, 'stage2_unit1', 'vfbn', 2)
    >>> sorted(steps)
    ['bottom', 'dhat', 'dhat_train', 'top']
    >>> pipeline.pipeline_bounds({'bottom': 1, 'top': 1, 'dhat': 0,
    ...                           'dhat_train': 0})['free']
    2.0
"""
import time

import chainer
import chainer.functions as F
import numpy

from chainer_vfbn import methods
from chainer_vfbn import split_step
from chainer_vfbn.sequential import split
from chainer_vfbn.synthesizers import build_synthesizer

# The network's optimizer as training builds it (methods.build_method's
# defaults); the synthesizer's is Adam at the method's default alpha_gs.
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 1e-4


def rank_steps(net, split_at, method, batchsize, seed=0):
    """The per-rank pieces of one K = 2 step cut after ``split_at``.

    On a fixed random batch; each piece is what one rank runs per step,
    through :mod:`chainer_vfbn.split_step`, optimizer update included:

    * ``bottom``: the bottom module's forward, the back-propagation of a
      gradient at ``h`` (:func:`~chainer_vfbn.split_step.backward_from`)
      and its update (rank 0);
    * ``top``: the top module's forward, loss and backward
      (:func:`~chainer_vfbn.split_step.top_backward`) and its update
      (rank 1);
    * ``dhat``: the ``method`` synthesizer's δ̂
      (:func:`~chainer_vfbn.split_step.synthesize`), paid by rank 0;
    * ``dhat_train``: δ̂ and its training step on the true δ, Eq. 3
      (:func:`~chainer_vfbn.split_step.regress`: loss, double backward,
      Adam's update), paid by the rank ``--synth-placement`` names.

    Args:
        net: A network with ``insize`` and ``n_class`` (e.g.
            :func:`~chainer_vfbn.models.resnet_cifar`), on the CPU.
        split_at (str): The layer after which the network is cut.
        method (str): A synthesizer kind of the registry, e.g. ``'vfbn'``.
        batchsize (int): Images in the batch.
        seed (int): Seed of the batch.

    Returns:
        tuple: ``(h_shape, steps)``, the activation's shape at the split and
        ``{name: function of no argument}`` for the four pieces above.
    """
    x, t = _random_batch(net, batchsize, seed)
    bottom, top = split(net, split_at)
    h = bottom(x).array
    synth = build_synthesizer(method, h.shape[1:], net.n_class)
    loss_func = F.softmax_cross_entropy
    split_step.check_loss(synth, loss_func)
    opts = _optimizers(bottom, top, synth, method)
    # The true gradient δ at h, the target of Eq. 3 and what rank 1 sends.
    inp = chainer.Variable(h.copy())
    split_step.top_backward(top, inp, t, loss_func)
    grad_true = inp.grad

    def bottom_step():
        split_step.backward_from(bottom, bottom(x), grad_true)
        opts['bottom'].update()

    def top_step():
        split_step.top_backward(top, chainer.Variable(h), t, loss_func)
        opts['top'].update()

    def dhat():
        split_step.synthesize(synth, h, t)

    def dhat_train():
        prediction, _ = split_step.synthesize(synth, h, t)
        split_step.regress(synth, opts['synth'], prediction, grad_true)

    return h.shape, {'bottom': bottom_step, 'top': top_step, 'dhat': dhat,
                     'dhat_train': dhat_train}


def _random_batch(net, batchsize, seed):
    """Standard normal images and uniform labels for ``net``: ``(x, t)``."""
    rng = numpy.random.RandomState(seed)
    x = rng.standard_normal((batchsize, 3, net.insize, net.insize))
    t = rng.randint(0, net.n_class, batchsize).astype(numpy.int32)
    return x.astype(numpy.float32), t


def _optimizers(bottom, top, synth, method):
    """The optimizers training builds: ``{'bottom', 'top', 'synth'}``."""
    return {'bottom': methods.momentum_sgd(bottom, LR, MOMENTUM,
                                           WEIGHT_DECAY),
            'top': methods.momentum_sgd(top, LR, MOMENTUM, WEIGHT_DECAY),
            'synth': methods.adam(synth,
                                  methods.resolve_alpha_gs(method, None))}


def pipeline_bounds(c):
    """The most a 2-rank pipeline gains on model-parallel BP, from costs.

    ``c`` has the cost (seconds, MACs, ...) of each of :func:`rank_steps`'
    pieces. Model-parallel BP takes ``bottom + top`` per step, a pipeline
    its slowest rank: ``free`` for a synthesizer costing nothing, ``above``
    and ``below`` for ``--synth-placement`` (``below``: the bottom also
    recomputes δ̂ and trains, s >= 1).
    """
    b, t, d, dt = c['bottom'], c['top'], c['dhat'], c['dhat_train']
    return {'free': (b + t) / max(b, t),
            'above': (b + t) / max(b + d, t + dt),
            'below': (b + t) / max(b + d + dt, t)}


def _best_time(f, n=3):
    """Seconds of ``f()``, best of ``n`` after one warm-up call."""
    f()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def rank_costs(net, splits, method, batchsize):
    """Seconds per step of each of :func:`rank_steps`' pieces, per split.

    Each piece is timed best of 3 after one warm-up, updates included, in
    this process (run it at one thread to get one rank's cost).

    Args:
        net: As in :func:`rank_steps`.
        splits (list of str): Layers after which to cut ``net``.
        method (str): A synthesizer kind of the registry.
        batchsize (int): Images in the batch.

    Returns:
        dict: ``{split: {'bottom', 'top', 'dhat', 'dhat_train': seconds,
        'h': the activation's shape as a list}}``.
    """
    out = {}
    for split in splits:
        h_shape, steps = rank_steps(net, split, method, batchsize)
        out[split] = {name: _best_time(f) for name, f in steps.items()}
        out[split]['h'] = list(h_shape)
    return out


def print_costs(cost, method):
    """Print :func:`rank_costs`' table and each split's pipeline bounds."""
    print('%-14s %-16s %7s %7s %7s %9s %11s %11s'
          % ('split after', 'h', 'bottom', 'top', 'δ̂', 'δ̂+train',
             'bound above', 'bound below'))
    for split, c in cost.items():
        bound = pipeline_bounds(c)
        print('%-14s %-16s %7.3f %7.3f %7.3f %9.3f %10.2fx %10.2fx'
              % (split, 'x'.join(str(n) for n in c['h'][1:]), c['bottom'],
                 c['top'], c['dhat'], c['dhat_train'], bound['above'],
                 bound['below']))
    print('(seconds per step at 1 thread, best of 3, updates included; %s'
          ' synthesizer; bound ='
          ' (bottom + top) / slowest rank, i.e. the most a decoupled run can'
          ' gain on model-parallel BP with these costs, before messages)'
          % method)

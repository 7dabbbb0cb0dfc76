"""Steady-state speed of a decoupled run and of one process, for a K = 2 split.

What ``benchmarks/bench_decoupled.py`` times: :func:`time_ranks` runs one
MPI rank of a decoupled run (VFBN, or model-parallel back-prop with
``method='bp'``) through :func:`chainer_vfbn.decoupled.ranks.make_worker`,
:func:`time_one_process` plain back-prop or synchronous VFBN (the
:class:`~chainer_vfbn.updaters.SyntheticGradientUpdater`) in this process.
Both train on a few fixed random batches, cycled: the speed does not depend
on the pixels.

Example::

    >>> import chainer_vfbn
    >>> from chainer_vfbn.experiments.bench import decoupled_speed
    >>> r = decoupled_speed.time_one_process('bp', 'resnet8-paper', None,
    ...                                      batchsize=2, warmup=0,
    ...                                      iterations=1)
    >>> sorted(r)
    ['images_per_sec', 'step_s']
"""
import time

import chainer
import chainer.links as L
import numpy

from chainer_vfbn import decoupled
from chainer_vfbn import methods
from chainer_vfbn.decoupled import ranks
from chainer_vfbn.models import resnet_cifar
from chainer_vfbn.updaters import SyntheticGradientUpdater


def _method(arch, method, split, seed=0):
    """The network and every rank's parts, as the CLI builds them."""
    numpy.random.seed(seed)
    net = resnet_cifar(arch)
    return net, methods.build_pipeline(method, net, split_at=split)


def _batches(net, batchsize, n=4):
    """``n`` fixed random batches, cycled (speed does not depend on pixels)."""
    rng = numpy.random.RandomState(0)
    x = rng.standard_normal((n * batchsize, 3, net.insize, net.insize))
    t = rng.randint(0, net.n_class, n * batchsize).astype(numpy.int32)
    return chainer.iterators.SerialIterator(
        chainer.datasets.TupleDataset(x.astype(numpy.float32), t), batchsize,
        shuffle=False)


def time_ranks(comm, arch, method, split, batchsize, warmup, iterations,
               max_staleness=0, placement='above'):
    """This rank's part of a decoupled run, ``iterations`` timed on the top.

    Args:
        comm: A ChainerMN communicator of 2 ranks.
        arch (str): The network, e.g. ``'resnet20-paper'``.
        method (str): A synthesizer kind, or ``'bp'`` (model-parallel BP:
            the bottom waits for the true δ).
        split (str or None): The layer after which the network is cut;
            ``None``: the network's default (the paper's) split.
        batchsize (int): Images per step.
        warmup (int): Steps before the timed ones.
        iterations (int): Timed steps.
        max_staleness (int): As ``--max-staleness``.
        placement (str): As ``--synth-placement``.

    Returns:
        dict or None: On rank 0, ``{'images_per_sec', 'step_s', 'wait_s':
        {rank: seconds waited}}``; ``None`` on the other ranks.
    """
    net, parts = _method(arch, method, split)
    k = comm.rank
    w = ranks.make_worker(parts, comm, max_staleness=max_staleness,
                          placement=placement)
    stamps = {}

    def on_events(w, bits):
        stamps[w.iteration] = time.perf_counter()
    total = warmup + iterations
    w.run(total, iterator=_batches(net, batchsize) if k == 0 else None,
          events=lambda i, it: decoupled.LOG if i in (warmup, total)
          else 0, on_events=on_events)
    obs = w.pop_observation()
    reports = w.gather({'rank': k, 'stamps': stamps, 'obs': obs})
    if k != 0:
        return None
    last = reports[-1]['stamps']
    dt = last[total] - last[warmup]
    return {'images_per_sec': iterations * batchsize / dt,
            'step_s': dt / iterations,
            'wait_s': {r['rank']: r['obs'].get('rank%d/wait_time' % r['rank'])
                       for r in reports}}


def time_one_process(mode, arch, split, batchsize, warmup, iterations):
    """Plain BP (``mode='bp'``) or synchronous VFBN (``'vfbn'``) here.

    Args:
        mode (str): ``'bp'`` or ``'vfbn'``.
        arch, split, batchsize, warmup, iterations: As in
            :func:`time_ranks` (``split`` is ignored for ``'bp'``).

    Returns:
        dict: ``{'images_per_sec', 'step_s'}`` of the timed steps.
    """
    if mode == 'bp':
        numpy.random.seed(0)
        net = resnet_cifar(arch)
        clf = L.Classifier(net)
        updater = chainer.training.updaters.StandardUpdater(
            _batches(net, batchsize),
            methods.momentum_sgd(clf, 0.1, 0.9, 1e-4))
    else:
        net, m = _method(arch, 'vfbn', split)
        updater = SyntheticGradientUpdater(_batches(net, batchsize),
                                           m.modules, m.synthesizers,
                                           m.optimizers)
    for _ in range(warmup):
        updater.update()
    start = time.perf_counter()
    for _ in range(iterations):
        updater.update()
    dt = time.perf_counter() - start
    return {'images_per_sec': iterations * batchsize / dt,
            'step_s': dt / iterations}

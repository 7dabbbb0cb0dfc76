"""One training step on a fixed batch, built as training builds it, and its
timing.

A step is a callable with a ``synchronize()`` method: :class:`ChainerStep`
(a method of :func:`chainer_vfbn.methods.build_method`, its updater and
reporter as in a :class:`~chainer.training.Trainer`) or :class:`TorchStep`
(the PyTorch eager twin, :mod:`chainer_vfbn.experiments.bench.torch_resnet`). The batch
stays on the device: no data loading or host-to-device copy is timed.

Example::

    >>> import chainer
    >>> from chainer_vfbn.experiments.bench import steps
    >>> device = chainer.get_device('@numpy')
    >>> x, t = steps.random_batch('resnet8-paper', 2, seed=0)
    >>> step = steps.ChainerStep('bp', 'resnet8-paper', (x, t), device,
    ...                          lr=0.1, alpha_gs=None, seed=0)
    >>> sorted(steps.plain_step_times(step, iters=1, warmup=0))
    ['median_s', 'times_s']
"""
import statistics
import time

import chainer
import numpy

from chainer_vfbn.experiments.bench.machine import synchronize
from chainer_vfbn.methods import build_method
from chainer_vfbn.models import resnet_cifar


class FixedBatchIterator(chainer.dataset.Iterator):
    """Yields the same device-resident batch forever (no loading is timed)."""

    def __init__(self, batch):
        self.batch = batch
        self.epoch = 0
        self.is_new_epoch = False
        self.epoch_detail = 0.
        self.previous_epoch_detail = 0.

    def __next__(self):
        return self.batch

    next = __next__

    def serialize(self, serializer):
        pass


def random_batch(arch, batchsize, seed):
    """A fixed batch of random images and labels for ``arch`` (NumPy
    arrays): what the step benchmarks time, without data loading."""
    net = resnet_cifar(arch)
    rng = numpy.random.RandomState(seed)
    x = rng.randn(batchsize, 3, net.insize, net.insize).astype(numpy.float32)
    t = rng.randint(0, net.n_class, batchsize).astype(numpy.int32)
    return x, t


def as_is(batch, device=None):
    """Converter: the batch is already an ``(x, t)`` pair on the device."""
    return batch


class ChainerStep(object):
    """One training step of a method built by ``methods.build_method``."""

    def __init__(self, method, arch, batch, device, lr, alpha_gs, seed):
        numpy.random.seed(seed)
        net = resnet_cifar(arch)
        built = build_method(method, net, lr=lr, momentum=0.9,
                             weight_decay=1e-4, alpha_gs=alpha_gs)
        built.to_device(device)
        self.updater = built.make_updater(FixedBatchIterator(batch), as_is,
                                          None)
        # A Trainer's reporter, so each chainer.report costs what it does
        # in training.
        self.reporter = chainer.Reporter()
        for name, opt in self.updater.get_all_optimizers().items():
            self.reporter.add_observer(name, opt.target)
            self.reporter.add_observers(
                name, opt.target.namedlinks(skipself=True))
        self.device = device

    def __call__(self):
        with self.reporter.scope({}):
            self.updater.update()

    def synchronize(self):
        synchronize(self.device)


class TorchStep(object):
    """One training step of the PyTorch eager twin (``torch_resnet``)."""

    def __init__(self, arch, x, t, device_spec, lr, seed):
        # Imported here: PyTorch (which torch_resnet imports) is a heavy
        # optional dependency, for the benchmarks' PyTorch twin only.
        import torch
        from chainer_vfbn.experiments.bench import torch_resnet
        self.torch = torch
        torch.manual_seed(seed)
        self.device = torch.device(device_spec)
        self.model = torch_resnet.torch_resnet_cifar(arch).to(self.device)
        self.model.train()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr,
                                   momentum=0.9, weight_decay=1e-4)
        self.x = torch.from_numpy(x).to(self.device)
        self.t = torch.from_numpy(t.astype(numpy.int64)).to(self.device)

    def __call__(self):
        self.opt.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(self.model(self.x),
                                                      self.t)
        loss.backward()
        self.opt.step()

    def synchronize(self):
        if self.device.type == 'cuda':
            self.torch.cuda.synchronize(self.device)


def torch_device_spec(chainer_device):
    """The torch device on the same hardware as a chainer device."""
    if chainer_device.xp is numpy:
        return 'cpu'
    return 'cuda:%d' % chainer_device.device.id


def timed_step(step):
    """Seconds of one step, between two device synchronisations."""
    step.synchronize()
    start = time.perf_counter()
    step()
    step.synchronize()
    return time.perf_counter() - start


def chainer_step_times(step, iters, warmup):
    """Step times with Chainer's type checks on and off, alternating.

    Returns:
        dict: ``'type_check_on'`` and ``'type_check_off'``, each
        ``{'median_s', 'times_s'}``.
    """
    for _ in range(warmup):
        step()
    times = {True: [], False: []}
    for _ in range(iters):
        for check in (True, False):
            with chainer.using_config('type_check', check):
                times[check].append(timed_step(step))
    return {'type_check_%s' % ('on' if check else 'off'):
            {'median_s': statistics.median(t), 'times_s': t}
            for check, t in times.items()}


def plain_step_times(step, iters, warmup):
    """``{'median_s', 'times_s'}`` of ``iters`` steps after ``warmup``."""
    for _ in range(warmup):
        step()
    times = [timed_step(step) for _ in range(iters)]
    return {'median_s': statistics.median(times), 'times_s': times}

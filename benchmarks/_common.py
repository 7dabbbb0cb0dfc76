"""Helpers shared by the benchmark scripts (not part of the package).

The scripts run as ``python benchmarks/<name>.py``, so this folder is
``sys.path[0]`` and they ``import _common``.
"""
import os
import platform
import subprocess

import chainer_vfbn  # NOQA  (its compat shims must precede chainer)

import chainer  # NOQA
import numpy  # NOQA


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
    from chainer_vfbn.models import resnet_cifar
    net = resnet_cifar(arch)
    rng = numpy.random.RandomState(seed)
    x = rng.randn(batchsize, 3, net.insize, net.insize).astype(numpy.float32)
    t = rng.randint(0, net.n_class, batchsize).astype(numpy.int32)
    return x, t


def as_is(batch, device=None):
    """Converter: the batch is already an ``(x, t)`` pair on the device."""
    return batch


def synchronize(device):
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.xp is not numpy and hasattr(device, 'device'):
        device.device.synchronize()   # cupy.cuda.Device


def device_name(device):
    """A human-readable name of a chainer device."""
    if device.xp is numpy:
        return 'CPU %s (%s, %d cores)' % (
            platform.processor() or platform.machine(), platform.platform(),
            os.cpu_count())
    from chainer.backends import cuda
    props = cuda.cupy.cuda.runtime.getDeviceProperties(device.device.id)
    name = props['name']
    return name.decode() if isinstance(name, bytes) else name


def versions(with_torch=False):
    """Library versions and the checkout's ``git describe``.

    ``with_torch``: also PyTorch's version, its CUDA and its cuDNN, where
    PyTorch imports.
    """
    out = {'python': platform.python_version(), 'numpy': numpy.__version__,
           'chainer': chainer.__version__,
           'chainer_vfbn': chainer_vfbn.__version__}
    from chainer.backends import cuda
    if cuda.available:
        out['cupy'] = cuda.cupy.__version__
        out['cudnn'] = (str(cuda.cudnn.getVersion()) if cuda.cudnn_enabled
                        else 'off')
    if with_torch:
        try:
            import torch
            out['torch'] = torch.__version__
            if torch.cuda.is_available():
                out['torch cuda'] = torch.version.cuda
                out['cudnn (torch)'] = str(torch.backends.cudnn.version())
        except ImportError:
            pass
    try:
        out['git'] = subprocess.run(
            ['git', 'describe', '--always', '--dirty'], capture_output=True,
            text=True, cwd=os.path.dirname(os.path.abspath(__file__)),
            check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out['git'] = 'unknown'
    return out


def print_header(info, device):
    """Print the date, device, versions and CPU threads of a benchmark run."""
    print('date:     %s' % info['date'])
    print('device:   %s (%s)' % (info['device'], info['device_spec']))
    print('versions: %s' % ', '.join('%s %s' % kv
                                     for kv in info['versions'].items()))
    if device.xp is numpy:
        print('threads:  OMP_NUM_THREADS=%s'
              % os.environ.get('OMP_NUM_THREADS', 'unset'))


def split_steps(net, split, method, batchsize, seed=0):
    """The per-rank pieces of one K = 2 step cut after ``split``.

    Returns ``(h_shape, steps)``: ``steps`` maps ``bottom`` (the bottom
    module's forward and backward, given ``∂ℓ/∂h``), ``top`` (the top's
    forward, loss and backward), ``dhat`` (the ``method`` synthesizer's
    ``δ̂``) and ``dhat_train`` (``δ̂`` and the backward of Eq. 3's loss) to
    functions of no argument, on fixed random inputs. Timed by
    ``bench_decoupled.py``, counted by ``count_macs.py``.
    """
    import chainer.functions as F
    from chainer_vfbn import split as split_model
    from chainer_vfbn.synthesizers import build_synthesizer
    rng = numpy.random.RandomState(seed)
    x = rng.standard_normal((batchsize, 3, net.insize, net.insize))
    x = x.astype(numpy.float32)
    t = rng.randint(0, net.n_class, batchsize).astype(numpy.int32)
    bottom, top = split_model(net, split)
    h = bottom(x).array
    synth = build_synthesizer(method, h.shape[1:], net.n_class)
    target = numpy.zeros_like(h)

    def bottom_step():
        y = bottom(x)
        bottom.cleargrads()
        y.grad = numpy.ones_like(y.array)
        y.backward()

    def top_step():
        loss = F.softmax_cross_entropy(top(chainer.Variable(h)), t)
        top.cleargrads()
        loss.backward()

    def dhat():
        synth(chainer.Variable(h), t)

    def dhat_train():
        loss = F.sum(F.squared_difference(
            synth(chainer.Variable(h), t), target))
        synth.cleargrads()
        loss.backward()

    return h.shape, {'bottom': bottom_step, 'top': top_step, 'dhat': dhat,
                     'dhat_train': dhat_train}


def pipeline_bounds(c):
    """The most a 2-rank pipeline gains on model-parallel BP, from costs.

    ``c`` has the cost (seconds, MACs, ...) of each of :func:`split_steps`'
    pieces. Model-parallel BP takes ``bottom + top`` per step, a pipeline
    its slowest rank: ``free`` for a synthesizer costing nothing, ``above``
    and ``below`` for ``--synth-placement`` (``below``: the bottom also
    recomputes δ̂ and trains, s >= 1).
    """
    b, t, d, dt = c['bottom'], c['top'], c['dhat'], c['dhat_train']
    return {'free': (b + t) / max(b, t),
            'above': (b + t) / max(b + d, t + dt),
            'below': (b + t) / max(b + d + dt, t)}


class ChainerStep(object):
    """One training step of a method built by ``methods.build_method``.

    Raises ImportError (with the missing module) when the method's parts are
    not available in this checkout.
    """

    def __init__(self, method, arch, batch, device, lr, alpha_gs, seed):
        from chainer_vfbn.methods import build_method  # lazy: may be absent
        from chainer_vfbn.models import resnet_cifar
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
    """One training step of the PyTorch eager twin (``torch_resnet.py``)."""

    def __init__(self, arch, x, t, device_spec, lr, seed):
        import torch
        import torch_resnet
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

"""Where a benchmark's figures were measured: device, versions, code version
(the code and the CPU as :mod:`chainer_vfbn.runs.provenance` names them).

Example::

    >>> import chainer
    >>> from chainer_vfbn.experiments.bench import machine
    >>> device = chainer.get_device('@numpy')
    >>> machine.device_name(device).startswith('CPU')
    True
    >>> 'chainer' in machine.versions()
    True
"""
import os
import platform

import chainer
from chainer.backends import cuda
import numpy

import chainer_vfbn
from chainer_vfbn.runs import provenance


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
    props = cuda.cupy.cuda.runtime.getDeviceProperties(device.device.id)
    name = props['name']
    return name.decode() if isinstance(name, bytes) else name


def cpu_name(cpuinfo='/proc/cpuinfo'):
    """The CPU's model name (:func:`chainer_vfbn.runs.provenance.machine`'s)
    and its number of cores, e.g. ``'AMD EPYC 7B13, 2 cores'``."""
    return '%s, %d cores' % (provenance.machine(cpuinfo)['cpu'],
                             os.cpu_count())


def versions(with_torch=False):
    """Library versions and the checkout's ``git describe``.

    ``with_torch``: also PyTorch's version, its CUDA and its cuDNN, where
    PyTorch imports. ``git`` is the commit's ``git describe``, with
    ``-dirty`` for a modified checkout
    (:func:`chainer_vfbn.runs.provenance.code_state`), and ``'unknown'``
    outside a git checkout (an installed package).
    """
    out = {'python': platform.python_version(), 'numpy': numpy.__version__,
           'chainer': chainer.__version__,
           'chainer_vfbn': chainer_vfbn.__version__}
    if cuda.available:
        out['cupy'] = cuda.cupy.__version__
        out['cudnn'] = (str(cuda.cudnn.getVersion()) if cuda.cudnn_enabled
                        else 'off')
    if with_torch:
        try:
            # Imported here: PyTorch is a heavy optional dependency (the
            # benchmarks' twin).
            import torch
            out['torch'] = torch.__version__
            if torch.cuda.is_available():
                out['torch cuda'] = torch.version.cuda
                out['cudnn (torch)'] = str(torch.backends.cudnn.version())
        except ImportError:
            pass
    state = provenance.code_state()
    # 'git 9813494-dirty (chainer_vfbn 0.1.0)' -> '9813494-dirty'
    out['git'] = (state['code_version'].split()[1] if state['commit']
                  else 'unknown')
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

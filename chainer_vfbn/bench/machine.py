"""Where a benchmark's figures were measured: device, versions, code version.

Example::

    >>> import chainer
    >>> from chainer_vfbn.bench import machine
    >>> device = chainer.get_device('@numpy')
    >>> machine.device_name(device).startswith('CPU')
    True
    >>> 'chainer' in machine.versions()
    True
"""
import os
import platform
import subprocess

import chainer
import numpy

import chainer_vfbn


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


def cpu_name():
    """The CPU's model name (from ``/proc/cpuinfo`` where there is one)
    and its number of cores, e.g. ``'AMD EPYC 7B13, 2 cores'``."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return '%s, %d cores' % (line.split(':', 1)[1].strip(),
                                             os.cpu_count())
    except OSError:
        pass
    return '%s, %d cores' % (platform.processor(), os.cpu_count())


def versions(with_torch=False):
    """Library versions and the checkout's ``git describe``.

    ``with_torch``: also PyTorch's version, its CUDA and its cuDNN, where
    PyTorch imports. ``git`` is ``'unknown'`` outside a git checkout (an
    installed package).
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

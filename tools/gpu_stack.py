#!/usr/bin/env python
"""Print the GPU stack this Python sees, and where cuBLAS is loaded from.

Prints Python, NumPy, Chainer, CuPy, PyTorch, the CUDA driver and runtime,
the device, cuDNN and NCCL, and the file of every CUDA library this process
has loaded (``libcublas``, ``libnvrtc``, ... from ``/proc/self/maps``): a path
under ``site-packages/nvidia/`` is a pip wheel (PyTorch's), one under
``/usr/local/cuda`` the system's. ``--json PATH`` also writes the same.

Exit status 0 where CuPy can run a kernel on GPU 0, 1 where it cannot (the
reason is printed): ``tools/gpu_check.sh`` records it.

    python tools/gpu_stack.py --json stack.json
"""
import argparse
import importlib.metadata
import json
import os
import platform
import re
import sys

import chainer_vfbn  # NOQA  (its compat shims must precede chainer)

import chainer
from chainer.backends import cuda
import numpy

from chainer_vfbn.runs.cuda_status import unavailable_reason

CUDA_LIBRARY = re.compile(
    r'\s(/\S*lib(cublas|cublasLt|cudart|nvrtc|cudnn|nccl|curand|cusolver|'
    r'cusparse|cufft|nvJitLink)[^/\s]*\.so[^/\s]*)$')


def loaded_cuda_libraries():
    """``{name: path}`` of the CUDA libraries mapped into this process."""
    found = {}
    try:
        with open('/proc/self/maps') as f:
            for line in f:
                m = CUDA_LIBRARY.search(line.rstrip('\n'))
                if m:
                    found.setdefault(m.group(2), os.path.realpath(m.group(1)))
    except OSError:
        pass
    return found


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def stack():
    """What this process sees; loads cuBLAS where CuPy works."""
    info = {'python': '%s (%s)' % (platform.python_version(), sys.executable),
            'numpy': numpy.__version__, 'chainer': chainer.__version__,
            'chainer_vfbn': chainer_vfbn.__version__,
            'torch': _version('torch'), 'mpi4py': _version('mpi4py'),
            'LD_LIBRARY_PATH': os.environ.get('LD_LIBRARY_PATH', '')}
    info['nvidia_wheels'] = sorted(
        '%s %s' % (d.metadata['Name'], d.version)
        for d in importlib.metadata.distributions()
        if (d.metadata['Name'] or '').lower().startswith(('nvidia-', 'cupy',
                                                          'cuda-')))
    reason = unavailable_reason()
    info['gpu_usable'] = reason is None
    info['gpu_unusable_reason'] = reason
    if cuda.available:
        cupy = cuda.cupy
        info['cupy'] = cupy.__version__
        info['cudnn'] = (str(cuda.cudnn.getVersion())
                         if cuda.cudnn_enabled else 'off')
        try:
            # Imported here: NCCL is optional in CuPy, and may not load.
            from cupy.cuda import nccl
            info['nccl'] = (str(nccl.get_version()) if nccl.available
                            else 'not available')
        except Exception as e:
            info['nccl'] = 'not available (%s)' % e
        info['cuda_runtime'] = cupy.cuda.runtime.runtimeGetVersion()
        if reason is None:
            info['cuda_driver'] = cupy.cuda.runtime.driverGetVersion()
            props = cupy.cuda.runtime.getDeviceProperties(0)
            name = props['name']
            info['device'] = '%s (sm_%d%d, %.1f GiB)' % (
                name.decode() if isinstance(name, bytes) else name,
                props['major'], props['minor'],
                props['totalGlobalMem'] / 2 ** 30)
            # A cuBLAS call, so that libcublas is surely mapped.
            a = cupy.ones((4, 4), dtype=cupy.float32)
            info['cublas_check'] = float(a.dot(a).sum())   # 64.0
    info['cuda_libraries'] = loaded_cuda_libraries()
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--json', default=None, metavar='PATH')
    args = p.parse_args(argv)
    info = stack()
    for key, value in info.items():
        if isinstance(value, dict):
            print('%s:' % key)
            for k, v in value.items():
                print('  %-10s %s' % (k, v))
        elif isinstance(value, list):
            print('%s: %s' % (key, ', '.join(value) or '-'))
        else:
            print('%s: %s' % (key, value))
    if 'cublas' not in info['cuda_libraries'] and info['gpu_usable']:
        print('cuBLAS: not mapped into this process')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(info, f, indent=2)
    return 0 if info['gpu_usable'] else 1


if __name__ == '__main__':
    sys.exit(main())

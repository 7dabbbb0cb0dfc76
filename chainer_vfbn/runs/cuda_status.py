"""Whether CuPy/CUDA can run here, and if not, why (one line).

The GPU tests skip, or with ``CHAINER_VFBN_REQUIRE_GPU=1`` fail, with this
reason, and ``tools/gpu_stack.py`` prints it. Nothing here needs a GPU to
import.
"""
from chainer.backends import cuda


def unavailable_reason(device_id=0):
    """``None`` where CuPy can run a kernel on GPU ``device_id``, else why not.

    Checks, in order: that Chainer could import CuPy (cuBLAS included:
    Chainer imports ``cupy.cuda.cublas`` at start-up, and CuPy 14 wheels
    carry no cuBLAS), that the CUDA runtime sees the device, and that a small
    elementwise kernel compiles (NVRTC) and runs.

    Returns:
        str or None: One line, e.g. ``'CuPy does not import: ImportError:
        libcublas.so.13: cannot open shared object file'``.
    """
    if not cuda.available:
        error = getattr(cuda, '_resolution_error', None)
        if error is None:
            return 'CuPy is not installed'
        return 'CuPy does not import: %s' % _describe(error)
    cupy = cuda.cupy
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return 'the CUDA runtime sees no device: %s' % _describe(e)
    if count <= device_id:
        return 'no CUDA device %d (%d visible)' % (device_id, count)
    try:
        with cupy.cuda.Device(device_id):
            total = float((cupy.arange(4, dtype=cupy.float32) * 2).sum())
    except Exception as e:
        return 'a CuPy kernel does not compile or run on device %d: %s' % (
            device_id, _describe(e))
    if total != 12.0:
        return ('a CuPy kernel on device %d computed %r where 12.0 was '
                'expected' % (device_id, total))
    return None


def _describe(error):
    """``'Type: message'`` on one line."""
    text = ' '.join(str(error).split())
    return '%s: %s' % (type(error).__name__, text) if text else \
        type(error).__name__

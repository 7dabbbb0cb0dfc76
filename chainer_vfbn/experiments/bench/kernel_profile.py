"""Where a step's GPU time goes: kernels, copies and busy time, from a
``torch.profiler`` (CUPTI) trace of ``n`` steps.

PyTorch is imported only by :func:`gpu_profiler` and
:func:`profile_kernels`; :func:`kernel_stats` reads a trace already
exported, so it needs neither PyTorch nor a GPU.

Example::

    >>> from chainer_vfbn.experiments.bench.kernel_profile import busy_time
    >>> busy_time([(0, 10), (5, 12), (20, 21)])
    13.0
"""
import collections
import json
import os
import tempfile
import time

import numpy

# Chrome-trace categories of the GPU activities torch.profiler records.
GPU_CATEGORIES = {'kernel': 'kernel', 'gpu_memcpy': 'memcpy',
                  'gpu_memset': 'memset'}
TOP_KERNELS = 15


def busy_time(intervals):
    """Length of the union of ``(start, end)`` intervals."""
    total, end = 0., None
    for s, e in sorted(intervals):
        if end is None or s > end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total


def kernel_stats(trace, n_steps, top=TOP_KERNELS):
    """Per-step GPU figures from a Chrome trace of ``n_steps`` steps.

    Args:
        trace (dict or list): ``torch.profiler``'s exported trace (its
            ``traceEvents``, or the list itself). GPU activities are complete
            events (``"ph": "X"``) of the categories in ``GPU_CATEGORIES``,
            with ``ts`` and ``dur`` in microseconds; launch calls are
            ``cuda_runtime``/``cuda_driver`` events named ``*LaunchKernel*``.
        n_steps (int): Steps the trace covers.
        top (int): How many kernel names to list.

    Returns:
        dict: ``kernels_per_step``, ``kernel_s_per_step`` (summed durations),
        ``gpu_busy_s_per_step`` (union of kernels, copies and sets),
        ``memcpy_per_step``, ``memset_per_step``, ``launch_calls_per_step``
        and ``top_kernels`` (``name``, ``calls_per_step``, ``s_per_step``).

    >>> t = [{'ph': 'X', 'cat': 'kernel', 'name': 'k', 'ts': 0, 'dur': 2}]
    >>> kernel_stats(t, 1)['kernel_s_per_step']
    2e-06
    """
    events = trace['traceEvents'] if isinstance(trace, dict) else trace
    count = collections.Counter()
    seconds = collections.Counter()
    by_name = collections.defaultdict(lambda: [0, 0.])
    intervals = []
    launches = 0
    for e in events:
        if e.get('ph') != 'X':
            continue
        cat = str(e.get('cat', '')).lower()
        if cat in ('cuda_runtime', 'cuda_driver') and \
                'launchkernel' in str(e.get('name', '')).lower():
            launches += 1
        kind = GPU_CATEGORIES.get(cat)
        if kind is None:
            continue
        start, dur = float(e['ts']), float(e.get('dur', 0.))
        count[kind] += 1
        seconds[kind] += dur * 1e-6
        intervals.append((start, start + dur))
        if kind == 'kernel':
            entry = by_name[e.get('name', '?')]
            entry[0] += 1
            entry[1] += dur * 1e-6
    ranked = sorted(by_name.items(), key=lambda kv: -kv[1][1])[:top]
    return {
        'kernels_per_step': count['kernel'] / n_steps,
        'kernel_s_per_step': seconds['kernel'] / n_steps,
        'gpu_busy_s_per_step': busy_time(intervals) * 1e-6 / n_steps,
        'memcpy_per_step': count['memcpy'] / n_steps,
        'memset_per_step': count['memset'] / n_steps,
        'launch_calls_per_step': launches / n_steps,
        'top_kernels': [{'name': name[:160], 'calls_per_step': c / n_steps,
                         's_per_step': s / n_steps}
                        for name, (c, s) in ranked],
    }


def gpu_profiler(device):
    """``(torch, None)`` where a GPU profiler works here, else
    ``(None, why)``."""
    if device.xp is numpy:
        return None, 'no GPU profiler: the device is the CPU (%s)' % device
    try:
        # Imported here: PyTorch is a heavy optional dependency (its
        # profiler, where a GPU has one).
        import torch
        import torch.profiler
    except ImportError as e:
        return None, 'no GPU profiler: PyTorch does not import (%s)' % e
    if not torch.cuda.is_available():
        return None, 'no GPU profiler: PyTorch sees no CUDA device'
    if torch.profiler.ProfilerActivity.CUDA not in \
            torch.profiler.supported_activities():
        return None, ('no GPU profiler: this PyTorch has no CUDA activity '
                      '(CUPTI) in its profiler')
    # PyTorch's CUDA state on the device CuPy uses (the same primary
    # context), before the profiler starts.
    torch.cuda.init()
    torch.cuda.set_device(device.device.id)
    return torch, None


def profile_kernels(step, n_steps, torch):
    """:func:`kernel_stats` of ``n_steps`` steps, plus their wall time
    (``torch``: :func:`gpu_profiler`'s)."""
    activity = torch.profiler.ProfilerActivity
    step.synchronize()
    with torch.profiler.profile(
            activities=[activity.CPU, activity.CUDA]) as prof:
        start = time.perf_counter()
        for _ in range(n_steps):
            step()
        step.synchronize()
        wall = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'trace.json')
        prof.export_chrome_trace(path)
        with open(path) as f:
            trace = json.load(f)
    stats = kernel_stats(trace, n_steps)
    stats['wall_profiled_s_per_step'] = wall / n_steps
    stats['gpu_busy_fraction_of_profiled_wall'] = (
        stats['gpu_busy_s_per_step'] / stats['wall_profiled_s_per_step'])
    if not stats['kernels_per_step']:
        stats['note'] = ('the profiler recorded no kernel: its CUPTI '
                         'tracing did not see this participant')
    return stats

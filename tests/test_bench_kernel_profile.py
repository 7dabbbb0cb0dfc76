"""chainer_vfbn.experiments.bench.kernel_profile: the figures of a kernel trace."""
import pytest

from chainer_vfbn.experiments.bench import kernel_profile


def test_busy_time_is_the_union():
    # nested, touching, overlapping and disjoint intervals
    assert kernel_profile.busy_time([(0, 10), (2, 3), (10, 12), (11, 14),
                                   (20, 21)]) == 15
    assert kernel_profile.busy_time([]) == 0


def test_kernel_stats_on_a_known_trace():
    trace = {'traceEvents': [
        # two kernels overlapping on two streams, 10 us each
        {'ph': 'X', 'cat': 'kernel', 'name': 'gemm', 'ts': 0, 'dur': 10},
        {'ph': 'X', 'cat': 'kernel', 'name': 'relu', 'ts': 5, 'dur': 10},
        {'ph': 'X', 'cat': 'Kernel', 'name': 'gemm', 'ts': 40, 'dur': 6},
        {'ph': 'X', 'cat': 'gpu_memcpy', 'name': 'Memcpy HtoD', 'ts': 20,
         'dur': 2},
        {'ph': 'X', 'cat': 'gpu_memset', 'name': 'Memset', 'ts': 30, 'dur': 1},
        # host side: launches counted, never timed as GPU work
        {'ph': 'X', 'cat': 'cuda_runtime', 'name': 'cudaLaunchKernel',
         'ts': 0, 'dur': 50},
        {'ph': 'X', 'cat': 'cuda_driver', 'name': 'cuLaunchKernel', 'ts': 1,
         'dur': 50},
        {'ph': 'X', 'cat': 'cuda_runtime', 'name': 'cudaMemcpyAsync',
         'ts': 2, 'dur': 50},
        {'ph': 'X', 'cat': 'cpu_op', 'name': 'aten::mm', 'ts': 0, 'dur': 99},
        # not complete events
        {'ph': 'i', 'cat': 'kernel', 'name': 'marker', 'ts': 3},
        {'ph': 'f', 'cat': 'ac2g', 'name': 'flow', 'ts': 3},
    ]}
    s = kernel_profile.kernel_stats(trace, n_steps=2)
    assert s['kernels_per_step'] == 1.5
    assert s['kernel_s_per_step'] == pytest.approx(26e-6 / 2)
    # union: [0, 15] + [20, 22] + [30, 31] + [40, 46] = 15 + 2 + 1 + 6
    assert s['gpu_busy_s_per_step'] == pytest.approx(24e-6 / 2)
    assert s['memcpy_per_step'] == 0.5 and s['memset_per_step'] == 0.5
    assert s['launch_calls_per_step'] == 1.0
    assert [k['name'] for k in s['top_kernels']] == ['gemm', 'relu']
    assert s['top_kernels'][0]['calls_per_step'] == 1.0
    assert s['top_kernels'][0]['s_per_step'] == pytest.approx(16e-6 / 2)
    # a bare list of events reads the same
    assert kernel_profile.kernel_stats(trace['traceEvents'], 2) == s

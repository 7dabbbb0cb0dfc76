"""benchmarks/profile_step.py: the figures of a kernel trace, the type-check
switch, the CPU path end to end, and its place first in tools/gpu_check.sh."""
import json
import os
import re
import subprocess
import sys

import chainer
import pytest

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, 'benchmarks'))

import profile_step  # NOQA

SCRIPT = os.path.join(REPO, 'benchmarks', 'profile_step.py')
GPU_CHECK = os.path.join(REPO, 'tools', 'gpu_check.sh')


def test_busy_time_is_the_union():
    # nested, touching, overlapping and disjoint intervals
    assert profile_step.busy_time([(0, 10), (2, 3), (10, 12), (11, 14),
                                   (20, 21)]) == 15
    assert profile_step.busy_time([]) == 0


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
    s = profile_step.kernel_stats(trace, n_steps=2)
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
    assert profile_step.kernel_stats(trace['traceEvents'], 2) == s


def test_type_checks_alternate_on_and_off():
    seen = []

    class FakeStep(object):
        def __call__(self):
            seen.append(chainer.config.type_check)

        def synchronize(self):
            pass

    res = profile_step.chainer_step_times(FakeStep(), iters=2, warmup=1)
    default = chainer.config.type_check
    assert seen == [default, True, False, True, False]
    assert set(res) == {'type_check_on', 'type_check_off'}
    assert all(len(r['times_s']) == 2 and r['median_s'] >= 0
               for r in res.values())


def test_cpu_path_end_to_end(tmp_path):
    out = tmp_path / 'profile.json'
    proc = subprocess.run(
        [sys.executable, SCRIPT, '--arch', 'resnet8-paper', '-b', '4',
         '--iters', '2', '--warmup', '0', '--profile-steps', '1',
         '--json', str(out)],
        capture_output=True, text=True, cwd=REPO,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'no GPU profiler: the device is the CPU' in proc.stdout
    info = json.loads(out.read_text())
    assert info['stack']['device_spec'] == '@numpy'
    assert info['versions']['chainer'] == chainer.__version__
    for name in ('chainer-bp', 'chainer-vfbn'):
        res = info['step_time'][name]
        for key in ('type_check_on', 'type_check_off'):
            assert len(res[key]['times_s']) == 2
            assert res[key]['median_s'] > 0
    try:
        import torch  # NOQA
        assert info['step_time']['torch']['median_s'] > 0
    except ImportError:
        assert 'torch' in info['skipped']
        assert 'torch' not in info['step_time']
    on = {n: info['step_time'][n]['type_check_on']['median_s']
          for n in ('chainer-bp', 'chainer-vfbn')}
    assert info['ratios']['vfbn_step_vs_bp_step'] == pytest.approx(
        on['chainer-vfbn'] / on['chainer-bp'])
    prof = info['kernel_profile']
    assert prof['available'] is False and prof['participants'] == {}
    assert prof['reason'].startswith('no GPU profiler')


def test_bad_participant_is_a_one_line_error():
    proc = subprocess.run([sys.executable, SCRIPT, '--participants',
                           'chainer-bp,tensorflow'],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert 'unknown participant(s) tensorflow' in proc.stderr


def test_gpu_check_profiles_first():
    """The profile is the first GPU step of tools/gpu_check.sh, at batch 128
    on ResNet-110 ``paper``, and writes profile.json into $OUT."""
    with open(GPU_CHECK) as f:
        text = f.read()
    steps = re.findall(r'^gpu_step (\S+) (\d+) -- ((?:.*\\\n)*.*)$', text, re.M)
    assert steps, 'no gpu_step in tools/gpu_check.sh'
    name, cap, command = steps[0]
    assert name == 'profile'
    assert int(cap) <= 150
    command = command.replace('\\\n', ' ')
    assert 'benchmarks/profile_step.py' in command
    assert '--arch resnet110-paper' in command
    assert '--batchsize 128' in command
    assert '--json "$OUT/profile.json"' in command
    assert '--device @cupy:0' in command

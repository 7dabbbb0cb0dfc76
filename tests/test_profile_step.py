"""benchmarks/profile_step.py: the CPU path end to end, its one-line error,
and its place first in tools/gpu_check.sh."""
import json
import os
import re
import subprocess
import sys

import chainer
import pytest

from support import REPO

SCRIPT = os.path.join(REPO, 'benchmarks', 'profile_step.py')
GPU_CHECK = os.path.join(REPO, 'tools', 'gpu_check.sh')


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

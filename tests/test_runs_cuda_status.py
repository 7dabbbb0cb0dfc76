"""chainer_vfbn.runs.cuda_status and CHAINER_VFBN_REQUIRE_GPU in tests/conftest.py."""
import os
import subprocess
import sys

from chainer.backends import cuda

from chainer_vfbn.runs.cuda_status import unavailable_reason

from support import REPO

GPU_TEST = 'tests/test_runs_evaluation.py::test_gpu_matches_cpu'


def test_reason_names_the_import_failure(monkeypatch):
    monkeypatch.setattr(cuda, 'available', False)
    monkeypatch.setattr(cuda, '_resolution_error', ImportError(
        'libcublas.so.13: cannot open shared object file'), raising=False)
    assert unavailable_reason() == ('CuPy does not import: ImportError: '
                                    'libcublas.so.13: cannot open shared '
                                    'object file')


def test_reason_without_cupy(monkeypatch):
    monkeypatch.setattr(cuda, 'available', False)
    monkeypatch.delattr(cuda, '_resolution_error', raising=False)
    assert unavailable_reason() == 'CuPy is not installed'


def _pytest_gpu_test(require):
    # No device visible, on any machine: CUDA_VISIBLE_DEVICES is empty.
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='')
    env.pop('CHAINER_VFBN_REQUIRE_GPU', None)
    if require:
        env['CHAINER_VFBN_REQUIRE_GPU'] = '1'
    return subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
         GPU_TEST], capture_output=True, text=True, cwd=REPO, env=env,
        timeout=300)


def test_gpu_tests_skip_without_a_gpu():
    proc = _pytest_gpu_test(require=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '1 skipped' in proc.stdout
    assert 'no usable CUDA GPU/CuPy: ' in proc.stdout


def test_require_gpu_turns_the_skip_into_a_failure_with_the_reason():
    proc = _pytest_gpu_test(require=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert '1 failed' in proc.stdout
    line = [ln for ln in proc.stdout.splitlines()
            if 'CHAINER_VFBN_REQUIRE_GPU=1, but CuPy/CUDA cannot be used: '
            in ln]
    assert line, proc.stdout
    # The reason follows, the same one unavailable_reason() gives there.
    assert line[0].split('cannot be used: ', 1)[1].strip()

"""tools/compile_kernels.py: every CuPy kernel compiles with NVRTC, no GPU.

The compiling tests need the pinned CuPy and NVRTC wheels
(``python tools/compile_kernels.py --requirements 14``); they skip where
those are absent, unless ``CHAINER_VFBN_REQUIRE_NVRTC=1`` (set by .ci/run,
which installs them), which makes them fail instead. They run the tool in a
subprocess: CuPy 13 must be pointed at the wheels' NVRTC before it is
imported, and this process imported it already (through Chainer).
"""
import importlib.util
import os
import subprocess
import sys

import pytest

from chainer_vfbn.functions import vfbn_kernels

from support import REPO

TOOL = os.path.join(REPO, 'tools', 'compile_kernels.py')
_spec = importlib.util.spec_from_file_location('compile_kernels', TOOL)
compile_kernels = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compile_kernels)


def _run(*args, pythonpath=REPO):
    env = dict(os.environ, PYTHONPATH=pythonpath)
    return subprocess.run([sys.executable, TOOL] + list(args),
                          capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.fixture(scope='module')
def nvrtc():
    proc = _run('--kernel', 'vfbn_relu_grad_product', '--arch', 'sm_80')
    if proc.returncode == 2:
        reason = proc.stderr.strip()
        if os.environ.get('CHAINER_VFBN_REQUIRE_NVRTC') == '1':
            pytest.fail('CHAINER_VFBN_REQUIRE_NVRTC=1, but ' + reason,
                        pytrace=False)
        pytest.skip(reason)


def test_finds_every_kernel_table():
    tables = compile_kernels.kernel_tables()
    assert tables == {'chainer_vfbn.functions.vfbn_kernels':
                      vfbn_kernels.ELEMENTWISE_KERNELS}
    assert sorted(tables['chainer_vfbn.functions.vfbn_kernels']) == [
        'vfbn_bias_relu', 'vfbn_relu_grad_product',
        'vfbn_softmax_minus_onehot', 'vfbn_softmax_vjp']


def _package(root, name, module_text):
    package = root / name
    package.mkdir()
    (package / '__init__.py').write_text('')
    (package / 'ops.py').write_text(module_text)
    return str(root)


def test_a_module_needing_an_absent_optional_import_is_passed_over(
        tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(_package(
        tmp_path, 'optional_pkg', 'import absent_optional_dependency\n'))
    with pytest.raises(ImportError, match='absent_optional_dependency'):
        compile_kernels.kernel_tables('optional_pkg')
    monkeypatch.setattr(compile_kernels, 'OPTIONAL_IMPORTS',
                        ('absent_optional_dependency',))
    assert compile_kernels.kernel_tables('optional_pkg') == {}


def test_a_kernel_outside_a_table_is_an_error(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(_package(
        tmp_path, 'stray_pkg',
        'def double(x):\n'
        '    from chainer.backends import cuda\n'
        "    return cuda.elementwise('T x', 'T y', 'y = 2 * x', 'dbl')(x)\n"))
    with pytest.raises(RuntimeError, match=r'outside an ELEMENTWISE_KERNELS '
                       r'table .*stray_pkg\.ops \(1 kernel constructor'):
        compile_kernels.kernel_tables('stray_pkg')


def test_every_kernel_compiles_for_every_arch_and_dtype(nvrtc):
    proc = _run()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    # 2 archs x (2 float x 4 label dtypes for the two label kernels
    # + 2 float dtypes for the two ReLU kernels).
    assert proc.stdout.splitlines()[-1] == '40 compiled, 0 failed'


def test_a_broken_kernel_fails_the_check(nvrtc, tmp_path):
    # A package with two kernels, one missing a semicolon.
    path = _package(tmp_path, 'broken_pkg', (
        'from chainer_vfbn.functions.vfbn_kernels import '
        'ElementwiseKernelSpec\n'
        'ELEMENTWISE_KERNELS = {\n'
        "    'good': ElementwiseKernelSpec('T x', 'T y', 'y = 2 * x', ()),\n"
        "    'broken': ElementwiseKernelSpec(\n"
        "        'T x, raw S t', 'T y', 'y = 2 * x + t[0]\\n int k = 0',\n"
        '        ()),\n'
        '}\n'))
    proc = _run('--package', 'broken_pkg', '--arch', 'sm_80',
                pythonpath=path + os.pathsep + REPO)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == '2 compiled, 8 failed'   # good: 2 floats; broken: 8
    assert all(line.startswith('FAILED broken_pkg.ops.broken sm_80 ')
               for line in lines if line.startswith('FAILED'))
    assert 'error: expected a' in proc.stdout

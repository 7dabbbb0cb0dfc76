"""chainer_vfbn.experiments.bench: importing its modules (all but the PyTorch twin)
does not import PyTorch, which is no dependency of the package."""
import os
import subprocess
import sys


def test_importing_the_benchmark_helpers_does_not_import_torch(tmp_path):
    # A stand-in torch, importable here whether or not PyTorch is installed:
    # a module that imported it would show it in sys.modules.
    (tmp_path / 'torch').mkdir()
    (tmp_path / 'torch' / '__init__.py').write_text('')
    code = ('import sys\n'
            'import chainer_vfbn.experiments.bench.decoupled_speed, '
            'chainer_vfbn.experiments.bench.kernel_profile, '
            'chainer_vfbn.experiments.bench.machine, chainer_vfbn.experiments.bench.macs, '
            'chainer_vfbn.experiments.bench.pipeline, chainer_vfbn.experiments.bench.steps\n'
            'print("torch" in sys.modules)')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == 'False'

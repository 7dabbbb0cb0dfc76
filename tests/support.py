"""What several test modules share, kept out of the test modules themselves
(no test module imports another): train/train_cifar.py's path, its tiny
configuration, and a way to run it or load it as a module."""
import importlib.util
import os
import subprocess
import sys

# The checkout the tests belong to.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = os.path.join(REPO, 'train', 'train_cifar.py')
# A tiny, fast configuration: 500 sample images, batch 50 = 10 iterations
# per epoch; no 36-view TTA except where a test asks for it.
TINY = ['--dataset', 'sample', '--arch', 'resnet8-paper', '--batchsize', '50',
        '--learnrate', '0.05', '--lr-step', '100', '--device', '@numpy',
        '--no-progress', '--tta-interval', '0', '--test-batchsize', '150']


def run_cli(args, timeout=300, **kwargs):
    """Run train_cifar.py with ``args`` (one BLAS thread); its result."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, SCRIPT] + list(args), env=env,
                          capture_output=True, text=True, timeout=timeout,
                          **kwargs)


def load_script(path=SCRIPT, name='train_cifar_cli'):
    """A script of ``train/`` loaded by its path, as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

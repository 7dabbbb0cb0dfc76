"""What a run records: ``args.json``, ``summary.json`` and its one-line
figures.

Both runners write the same records through these functions, so that the
two runs of one configuration record the same things.
"""
import os
import platform
import subprocess
import sys

import chainer
import numpy

import chainer_vfbn
from chainer_vfbn.runs import evaluation
from chainer_vfbn import split_step
# The runners' JSON writer (args.json, summary.json, predictions).
from chainer_vfbn.runs.strict_json import write_json  # NOQA

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def code_version():
    """``git describe`` of the checkout, or the package version."""
    try:
        out = subprocess.run(
            ['git', 'describe', '--always', '--dirty', '--tags'], cwd=REPO,
            capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return 'git %s (chainer_vfbn %s)' % (out.stdout.strip(),
                                                  chainer_vfbn.__version__)
    except (OSError, subprocess.SubprocessError):
        pass
    return 'chainer_vfbn %s' % chainer_vfbn.__version__


def machine(cpuinfo='/proc/cpuinfo'):
    """The CPU model (and family and model numbers) and the BLAS library and
    kernel NumPy runs on (from threadpoolctl): a run is bit-identical on one
    machine, and equal only within seed noise across machines, so its
    record names the machine."""
    info = {}
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(':')
                if not key.strip():
                    break           # the first processor is enough
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = info.get('model name')
    try:
        import threadpoolctl
        blas = [{k: lib.get(k) for k in ('internal_api', 'version',
                                         'architecture', 'threading_layer')}
                for lib in threadpoolctl.threadpool_info()
                if lib.get('user_api') == 'blas']
    except ImportError:
        blas = 'unknown (threadpoolctl is not installed)'
    out = {'cpu': cpu or platform.processor() or platform.machine(),
           'cpu_count': os.cpu_count(), 'blas': blas}
    if 'cpu family' in info and 'model' in info:
        # One model name can cover several generations ("AMD EPYC"), whose
        # BLAS kernels differ.
        out['cpu_id'] = 'family %s model %s' % (info['cpu family'],
                                                info['model'])
    return out


def environment():
    """Python, NumPy, Chainer (and CuPy) versions, platform and machine."""
    env = {'python': platform.python_version(), 'numpy': numpy.__version__,
           'chainer': chainer.__version__, 'platform': platform.platform(),
           'machine': machine()}
    if chainer.backends.cuda.available:
        env['cupy'] = chainer.backends.cuda.cupy.__version__
        env['cudnn'] = bool(chainer.backends.cuda.cudnn_enabled)
    return env


def summary_dict(config, log, split_at, description, device, epochs,
                 iterations, wall, images, diverged=None, data_sha256=None):
    """The run's summary.json contents, from its log (newest value per key).

    ``config`` is the run's :class:`~chainer_vfbn.runs.config.RunConfig`,
    ``split_at`` where the network was cut (``Method.split_at``);
    ``images`` is how many training images ``wall`` seconds covered;
    ``diverged`` is :func:`diverged_record`'s, for a run stopped by it;
    ``data_sha256`` the data set's content hash (``setup_data``'s).
    ``test_error`` and ``tta_error`` are those of the evaluation set
    (``evaluated_on``: the test set, or a validation split).
    """
    last = {}
    for entry in log:
        last.update(entry)
    # The figures of the first split's synthesizer.
    first = split_step.synth_name(0, len(split_at)) + '/'
    synth = {value: last.get(first + value)
             for value in ('cos', 'relerr', 'norm_ratio')}
    summary = {
        'method': config.method, 'arch': config.arch, 'dataset': description,
        'data_sha256': data_sha256,
        'alpha_gs': config.alpha_gs, 'split_at': split_at,
        'epochs': epochs, 'iterations': iterations,
        'test_error': evaluation.eval_value(last, 'error'),
        'tta_error': evaluation.eval_value(last, 'tta_error'),
        'train_loss': last.get('main/loss'),
        'wall_time_s': wall,
        'images_per_sec': (images / wall) if wall else None,
        'synth_cos': synth['cos'], 'synth_relerr': synth['relerr'],
        'synth_norm_ratio': synth['norm_ratio'],
        'train_accuracy': last.get('main/accuracy'),
        'evaluated_on': 'validation' if config.validation_split else 'test',
        'device': str(device),
        'status': 'diverged' if diverged else 'finished',
        'diverged': diverged,
    }
    if not config.synthetic:
        del summary['alpha_gs']
    return summary


def diverged_record(error, last_snapshot):
    """What summary.json says of a run that diverged, and its one line."""
    record = {'what': error.what, 'iteration': error.iteration,
              'last_snapshot': last_snapshot}
    line = ('diverged: %s; last good snapshot: %s' %
            (error, last_snapshot or 'none (no snapshot was taken before)'))
    return record, line


def run_record(config, device, description, augment, split_at, **extra):
    """``args.json``: the options (``config.options``), code version,
    environment and device; ``split_at`` where the network was cut."""
    record = {
        'args': dict(config.options), 'augment': augment,
        'dataset': description,
        'split_at': list(split_at), 'code_version': code_version(),
        'environment': environment(), 'device': str(device),
        'command': ' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
    }
    record.update(extra)
    return record


def pct(x):
    """A fraction as a percentage for a one-line report; ``'n/a'``: None."""
    return 'n/a' if x is None else '%.2f%%' % (100 * x)

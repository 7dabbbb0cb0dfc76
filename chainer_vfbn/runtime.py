"""What both command-line runners share: device, seed, data, run record.

``train/train_cifar.py`` (one process, a Chainer ``Trainer``) and its
``--decoupled`` runner (:mod:`chainer_vfbn.decoupled.runner`, one MPI rank
per module) resolve the device, seed the generators, load the data, check
and claim ``--out``, and write ``args.json`` and ``summary.json`` through
these functions, so that the two runs of one configuration record the same
things. They take the parsed options (an ``argparse.Namespace``) because
they are the runners' own plumbing, not the science.
"""
import json
import os
import platform
import random
import subprocess
import sys

import chainer
import numpy

import chainer_vfbn
from chainer_vfbn import evaluation
from chainer_vfbn import methods
from chainer_vfbn import run_dir
from chainer_vfbn import split_step
# The runners' JSON writer (args.json, summary.json, predictions).
from chainer_vfbn.strict_json import write_json  # NOQA

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Options a resumed run may change: its length, where its data and device
# are, and how it logs. Any other difference means another run.
RESUMABLE = ('epoch', 'iterations', 'frequency', 'eval_interval',
             'tta_interval', 'progress', 'test_batchsize', 'data_dir',
             'download', 'device', 'gpu', 'resume', 'autoload', 'out',
             'force_new', 'mpi_timeout')
# Exit status of a run stopped by a non-finite loss or gradient.
EXIT_DIVERGED = 3


class UserError(Exception):
    """Bad input: reported as one line, exit status 2."""


def device_spec(spec):
    """A device spec as Chainer's: an integer is a GPU id, and -1 the CPU.

    ``None`` is the CPU (``'@numpy'``).
    """
    text = '@numpy' if spec is None else str(spec)
    if text.lstrip('-').isdigit():
        text = '@numpy' if int(text) < 0 else '@cupy:%s' % text
    return text


def get_device(spec, offset=0):
    """Resolve a device spec, with one clear line when CUDA is unavailable.

    Args:
        spec: ``@numpy``, ``@cupy:N``, or an integer (-1: the CPU).
        offset (int): Added to a GPU id, modulo the number of GPUs (rank
            ``k`` of a decoupled run uses GPU ``(N + k) % n_gpus``).
    """
    text = device_spec(spec)
    wants_cuda = text.startswith('@cupy')
    if wants_cuda and not chainer.backends.cuda.available:
        raise UserError('device %s asks for CUDA, but CuPy/CUDA is not '
                        'available on this machine (use --device @numpy, or '
                        "install the 'cuda12'/'cuda13' extra)" % text)
    if wants_cuda and offset:
        first = int(text.split(':')[1]) if ':' in text else 0
        n_gpus = chainer.backends.cuda.cupy.cuda.runtime.getDeviceCount()
        text = '@cupy:%d' % ((first + offset) % n_gpus)
    try:
        device = chainer.get_device(text)
    except Exception as e:  # chainer raises several types here
        raise UserError('bad device %r: %s' % (spec, e))
    if wants_cuda:
        try:
            device.use()
        except Exception as e:
            raise UserError('cannot use CUDA device %s: %s' % (text, e))
    return device


def check_identity(args, defaults=None):
    """Refuse to resume a run in ``--out`` that other options made.

    Reads ``--out``'s ``args.json`` (writes nothing); with ``--force-new``
    any difference is allowed (:func:`claim_out` moves the old run aside).
    ``defaults``: the options' defaults, for options the run did not
    record (see :func:`chainer_vfbn.run_dir.differences`).
    """
    path = os.path.join(args.out, 'args.json')
    if args.force_new or not os.path.isfile(path):
        return
    try:
        with open(path) as f:
            recorded = json.load(f)['args']
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError('--out %s holds an unreadable args.json (%s); '
                        'choose another --out or pass --force-new'
                        % (args.out, e))
    current = recorded_args(args)
    if recorded.get('method') not in methods.SYNTHETIC_METHODS:
        recorded = {k: v for k, v in recorded.items() if k != 'alpha_gs'}
    changed = run_dir.differences(recorded, current, RESUMABLE, defaults)
    if 'method' in changed and 'alpha_gs' in changed:
        # Another method's default alpha_gs, not an option the user gave:
        # the method is the difference to name.
        changed.remove('alpha_gs')
    if changed:
        raise UserError(
            '--out %s holds another run: %s; resume it with its own options '
            '(only the length and the logging may change), choose another '
            '--out, or pass --force-new to move it aside'
            % (args.out, ', '.join(
                '--%s %s (was %s)' % (k.replace('_', '-'), current.get(k),
                                      recorded.get(k)) for k in changed)))


def recorded_args(args):
    """The options as a run records them: ``alpha_gs`` only for a method
    with a gradient synthesizer (it means nothing for the others)."""
    record = dict(vars(args))
    if record.get('method') not in methods.SYNTHETIC_METHODS:
        record.pop('alpha_gs', None)
    return record


def release_out(held, out):
    """Remove ``--out``'s lock file and release the lock (the run's end).

    The file is removed while still held, so that no other process can
    take the lock on it in between.
    """
    if held is None or held.closed:
        return
    try:
        os.remove(os.path.join(out, run_dir.LOCK_NAME))
    except OSError:
        pass
    held.close()


def claim_out(args):
    """Create ``--out`` and lock it for this process; after validation.

    With ``--force-new`` an old run there is moved aside first; what killed
    snapshot writes left behind is removed.

    Returns:
        file: The lock; keep it open for the whole run.
    """
    existed = os.path.isdir(args.out)
    try:
        os.makedirs(args.out, exist_ok=True)
        held = run_dir.lock(args.out)
        if args.force_new and existed and \
                set(os.listdir(args.out)) - {run_dir.LOCK_NAME}:
            moved = run_dir.move_aside(args.out)
            print('--force-new: moved the old contents of %s to %s'
                  % (args.out, moved))
            os.makedirs(args.out)
            held.close()
            held = run_dir.lock(args.out)
    except run_dir.Busy as e:
        raise UserError(str(e))
    except OSError as e:
        raise UserError('cannot write to --out %s: %s'
                        % (args.out, e.strerror or e))
    removed = run_dir.clean_temporary(args.out)
    if removed:
        print('removed what an interrupted snapshot write left in %s: %s'
              % (args.out, ', '.join(removed)))
    return held


def set_seed(seed, device):
    random.seed(seed)
    numpy.random.seed(seed)
    if device.xp is not numpy:
        device.xp.random.seed(seed)


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


def machine():
    """The CPU model and the BLAS library and kernel NumPy runs on (from
    threadpoolctl): a run is bit-identical on one machine, and equal only
    within seed noise across machines, so its record names the machine."""
    cpu = None
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next((line.split(':', 1)[1].strip() for line in f
                        if line.startswith('model name')), None)
    except OSError:
        pass
    try:
        import threadpoolctl
        blas = [{k: lib.get(k) for k in ('internal_api', 'version',
                                         'architecture', 'threading_layer')}
                for lib in threadpoolctl.threadpool_info()
                if lib.get('user_api') == 'blas']
    except ImportError:
        blas = 'unknown (threadpoolctl is not installed)'
    return {'cpu': cpu or platform.processor() or platform.machine(),
            'cpu_count': os.cpu_count(), 'blas': blas}


def environment():
    env = {'python': platform.python_version(), 'numpy': numpy.__version__,
           'chainer': chainer.__version__, 'platform': platform.platform(),
           'machine': machine()}
    if chainer.backends.cuda.available:
        env['cupy'] = chainer.backends.cuda.cupy.__version__
        env['cudnn'] = bool(chainer.backends.cuda.cudnn_enabled)
    return env


def setup_data(args, insize):
    """Load the data set and build the training iterator.

    Returns:
        tuple: ``(train_iter, test, description, augment, n_train)``;
        ``test`` is a dict of the evaluation images, labels and
        normalization, and ``data_sha256``, the whole data set's
        :func:`chainer_vfbn.datasets.subset.content_hash` (before any
        validation split).
    """
    from chainer_vfbn import datasets
    from chainer_vfbn.datasets import subset
    try:
        ((train_x, train_t), (test_x, test_t)), description = \
            datasets.get_cifar10(args.dataset, args.data_dir,
                                 download=args.download)
    except datasets.DatasetError as e:
        raise UserError(str(e))
    data_sha256 = subset.content_hash((train_x, train_t), (test_x, test_t))
    if args.validation_split:
        train_idx, val_idx = datasets.validation_split(
            train_t, args.validation_split)
        (train_x, train_t), (test_x, test_t) = \
            (train_x[train_idx], train_t[train_idx]), \
            (train_x[val_idx], train_t[val_idx])
        description += ('; validation split %g: training on %d, evaluating '
                        'on %d held-out training images, not the test set'
                        % (args.validation_split, len(train_idx),
                           len(val_idx)))
    if args.batchsize > len(train_x):
        raise UserError('--batchsize %d is larger than the training set (%d '
                        'images): each batch would repeat images'
                        % (args.batchsize, len(train_x)))
    augment = args.augment or ('paper' if insize == 24 else 'standard')
    expected = 24 if augment == 'paper' else 32
    if expected != insize:
        raise UserError('--augment %s makes %dx%d images but --arch %s takes '
                        '%dx%d' % (augment, expected, expected, args.arch,
                                   insize, insize))
    mean, std = datasets.normalization(train_x, augment)
    train_iter = datasets.AugmentedIterator(
        train_x, train_t, args.batchsize, augment=augment, seed=args.seed,
        mean=mean, std=std)
    test = dict(images=test_x, labels=test_t, augment=augment, mean=mean,
                std=std, data_sha256=data_sha256)
    return train_iter, test, description, augment, len(train_x)


def summary_dict(args, log, split_names, description, device, epochs,
                 iterations, wall, images, diverged=None, data_sha256=None):
    """The run's summary.json contents, from its log (newest value per key).

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
    first = split_step.synth_name(0, len(split_names)) + '/'
    synth = {value: last.get(first + value)
             for value in ('cos', 'relerr', 'norm_ratio')}
    summary = {
        'method': args.method, 'arch': args.arch, 'dataset': description,
        'data_sha256': data_sha256,
        'alpha_gs': args.alpha_gs, 'split_at': split_names,
        'epochs': epochs, 'iterations': iterations,
        'test_error': evaluation.eval_value(last, 'error'),
        'tta_error': evaluation.eval_value(last, 'tta_error'),
        'train_loss': last.get('main/loss'),
        'wall_time_s': wall,
        'images_per_sec': (images / wall) if wall else None,
        'synth_cos': synth['cos'], 'synth_relerr': synth['relerr'],
        'synth_norm_ratio': synth['norm_ratio'],
        'train_accuracy': last.get('main/accuracy'),
        'evaluated_on': 'validation' if args.validation_split else 'test',
        'device': str(device),
        'status': 'diverged' if diverged else 'finished',
        'diverged': diverged,
    }
    if args.method not in methods.SYNTHETIC_METHODS:
        del summary['alpha_gs']
    return summary


def diverged_record(error, last_snapshot):
    """What summary.json says of a run that diverged, and its one line."""
    record = {'what': error.what, 'iteration': error.iteration,
              'last_snapshot': last_snapshot}
    line = ('diverged: %s; last good snapshot: %s' %
            (error, last_snapshot or 'none (no snapshot was taken before)'))
    return record, line


def run_record(args, device, description, augment, split_names, **extra):
    """``args.json``: the options, code version, environment and device."""
    record = {
        'args': recorded_args(args), 'augment': augment,
        'dataset': description,
        'split_at': list(split_names), 'code_version': code_version(),
        'environment': environment(), 'device': str(device),
        'command': ' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
    }
    record.update(extra)
    return record


def pct(x):
    """A fraction as a percentage for a one-line report; ``'n/a'``: None."""
    return 'n/a' if x is None else '%.2f%%' % (100 * x)

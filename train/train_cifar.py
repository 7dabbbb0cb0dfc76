#!/usr/bin/env python
"""Train the CIFAR-10 ResNet with back-propagation or synthetic gradients.

Examples::

    # the paper's VFBN row on the full CIFAR-10, on GPU 0
    python train/train_cifar.py --method vfbn --gpu 0
    # a few minutes on the CPU, on the real sample bundled in data/
    python train/train_cifar.py --method vfbn --dataset sample \\
        --arch resnet20-paper --epoch 3 --batchsize 50 --lr-step 2

The defaults are the paper's recipe, i.e. the 2016 mitmul/chainer-cifar10
code it was built on (``--recipe mitmul2016``, docs/mitmul2016.md):
ResNet-110 ``paper`` preset, the 36-view augmentation, MomentumSGD(0.9),
lr 0.1, weight decay 1e-4, batch 128, lr x0.1 every 5 paper epochs
(= 180 standard epochs), 12 paper epochs (= 432 standard epochs).
``--epoch`` counts standard epochs (passes over the 50k images, one random
view of each).
"""
import argparse
import math
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, REPO)

import chainer_vfbn  # NOQA  (before chainer: compatibility shims)

import chainer  # NOQA
from chainer import training  # NOQA
from chainer.training import extensions  # NOQA

from chainer_vfbn import methods  # NOQA
from chainer_vfbn import reports  # NOQA
from chainer_vfbn import run_dir  # NOQA
from chainer_vfbn import runtime  # NOQA
from chainer_vfbn import split_step  # NOQA
from chainer_vfbn.divergence import Diverged  # NOQA
from chainer_vfbn.runtime import UserError  # NOQA
from chainer_vfbn.interrupt import acknowledge  # NOQA
from chainer_vfbn.interrupt import Interrupt  # NOQA
from chainer_vfbn.interrupt import StopOnInterrupt  # NOQA
from chainer_vfbn.models import resnet_cifar  # NOQA

# The 2016 recipe (mitmul/chainer-cifar10 at ce27972), in the units of this
# script. A "paper epoch" is one pass over the 1.8M-image augmented set,
# i.e. 36 standard epochs.
from chainer_vfbn.datasets.augment import PAPER_EPOCH  # NOQA
_LOCKS = []  # the lock on --out, held until the process exits
RECIPES = {
    'mitmul2016': dict(
        arch='resnet110-paper',
        batchsize=128,                # images per iteration
        learnrate=0.1,                # MomentumSGD initial lr
        momentum=0.9,
        weight_decay=1e-4,            # L2 on every parameter
        lr_step=5 * PAPER_EPOCH,      # standard epochs between decays
        lr_decay=0.1,                 # lr multiplier at each step
        epoch=12 * PAPER_EPOCH,       # standard epochs (12 paper epochs)
    ),
}



class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One clear line instead of argparse's usage block.
        self.exit(2, '%s: error: %s (see --help)\n' % (self.prog, message))


def option_defaults():
    """``{dest: default}`` of every option."""
    return {a.dest: a.default for a in build_parser()._actions
            if a.dest != 'help'}


def build_parser():
    rec = RECIPES['mitmul2016']
    p = _Parser(prog='train_cifar.py', description=__doc__.split('\n')[0],
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--method', default='vfbn', choices=methods.METHODS,
                   help='training method (a row of the paper\'s Table 1)')
    p.add_argument('--alpha-gs', type=float, default=None,
                   help='Adam step size of the gradient synthesizer (0: '
                        'untrained; default: 1e-3 for vfbn*, the paper\'s '
                        'alpha_gs, and 1e-7 for dni-*, see '
                        'chainer_vfbn.methods.DEFAULT_ALPHA_GS)')
    p.add_argument('--synth-target-scale', choices=split_step.TARGET_SCALES,
                   default='batch-mean',
                   help='what a DNI synthesizer predicts: delta of the '
                        'batch-mean loss (batch-mean), or B*delta, applied '
                        'as its prediction / B (per-example: alpha_gs then '
                        'does not depend on the batch size); VFBN has the '
                        'batch-mean scale by construction')
    p.add_argument('--n-hidden', type=int, default=256,
                   help='hidden units of the vfbn-mlp virtual network')
    p.add_argument('--recipe', default='mitmul2016', choices=sorted(RECIPES),
                   help='the set of defaults below')
    p.add_argument('--arch', default=rec['arch'],
                   help='resnet<6n+2>-{paper,he}, e.g. resnet110-paper, '
                        'resnet20-paper, resnet110-he')
    p.add_argument('--split-at', default=None,
                   help='comma-separated layer names after which the network '
                        'is cut (default: the paper\'s point, the middle of '
                        'stage 2)')
    p.add_argument('--device', '-d', default=None,
                   help='device: @numpy, @cupy:0, or an integer (-1 = CPU)')
    p.add_argument('--gpu', '-g', type=int, default=None,
                   help='deprecated alias of --device N (-1 = CPU)')
    p.add_argument('--batchsize', '-b', type=int, default=rec['batchsize'])
    p.add_argument('--epoch', '-e', type=int, default=rec['epoch'],
                   help='standard epochs (one view of each training image)')
    p.add_argument('--iterations', type=int, default=None,
                   help='stop after this many iterations instead')
    p.add_argument('--learnrate', '-l', type=float, default=rec['learnrate'])
    p.add_argument('--momentum', type=float, default=rec['momentum'])
    p.add_argument('--weight-decay', type=float, default=rec['weight_decay'])
    p.add_argument('--lr-step', type=float, default=rec['lr_step'],
                   help='standard epochs between learning-rate decays')
    p.add_argument('--lr-decay', type=float, default=rec['lr_decay'])
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', '-o', default='result')
    p.add_argument('--resume', '-r', default=None,
                   help='snapshot to resume from (default: the newest one in '
                        '--out, unless --no-autoload)')
    p.add_argument('--autoload', dest='autoload', action='store_true',
                   default=True,
                   help='resume from the newest snapshot in --out (the '
                        'default)')
    p.add_argument('--no-autoload', dest='autoload', action='store_false',
                   help='start afresh even if --out holds a snapshot')
    p.add_argument('--force-new', action='store_true',
                   help='if --out holds another run, move it aside to '
                        '<out>.replaced-<time> and start afresh (without '
                        'it, resuming with other options than the length '
                        'or the logging ones is refused)')
    p.add_argument('--frequency', '-f', type=int, default=1,
                   help='snapshot every N epochs and at the end (-1: at the '
                        'end only)')
    p.add_argument('--dataset', default='cifar10', choices=('cifar10', 'sample'),
                   help='cifar10: the official archive; sample: the small '
                        'real sample bundled in data/')
    p.add_argument('--data-dir', default=None,
                   help='where cifar-10-python.tar.gz (or its extracted '
                        'folder) is; default $CHAINER_VFBN_DATA, then '
                        '~/.chainer-vfbn/cifar10')
    p.add_argument('--no-download', dest='download', action='store_false',
                   help='never download the official archive; stop if it is '
                        'not found')
    p.add_argument('--validation-split', type=float, default=0.,
                   metavar='FRACTION',
                   help='hold out this share of the training images (a '
                        'fixed, stratified split, the same for every seed '
                        'and method) and evaluate on it instead of the test '
                        'set; 0: train on all, evaluate on the test set')
    p.add_argument('--augment', default=None, choices=('paper', 'standard'),
                   help='paper: 36 views of 24x24; standard: pad-crop-flip '
                        '(default: paper for *-paper archs, standard for *-he)')
    p.add_argument('--eval-interval', type=int, default=1,
                   help='evaluate on the test set every N epochs')
    p.add_argument('--tta-interval', type=int, default=PAPER_EPOCH,
                   help='36-view test-time augmentation every N evaluations '
                        'and at the end (0: never; each costs 36 test-set '
                        'passes)')
    p.add_argument('--test-batchsize', type=int, default=128)
    p.add_argument('--decoupled', action='store_true',
                   help='one MPI rank per module (run under mpiexec; see '
                        'docs/decoupled.md)')
    p.add_argument('--max-staleness', type=int, default=1,
                   help='decoupled: iterations a rank may run ahead of the '
                        'true gradients that train its synthesizer')
    p.add_argument('--synth-placement', choices=('above', 'below'),
                   default='above',
                   help='decoupled: train synthesizer k on rank k + 1, which '
                        'holds h and the true gradient, and send its weights '
                        'down (above), or send the true gradient down and '
                        'train it on rank k (below); the same numbers, '
                        'different load per rank (docs/decoupled.md)')
    p.add_argument('--mpi-timeout', type=float, default=300.,
                   help='decoupled: seconds a rank waits for a message '
                        'before it stops the run')
    p.add_argument('--no-progress', dest='progress', action='store_false',
                   help='no progress bar (e.g. in logs)')
    return p


def parse_args(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    if args.gpu is not None:
        if args.device is not None:
            p.error('give --device or --gpu, not both')
        args.device = args.gpu
    args.device = runtime.device_spec(args.device)
    bad = option_errors(args)
    if bad:
        # One line per bad value.
        p.exit(2, ''.join('%s: error: %s\n' % (p.prog, line)
                          for line in bad))
    return args


def option_errors(args):
    """What is wrong with the numeric options, one line per bad value.

    Resolves ``args.alpha_gs``'s default first. Bounds are those where the
    value means something: a momentum of 1 or more never forgets, a decay
    above 1 grows the learning rate (``alpha_gs``:
    :func:`chainer_vfbn.methods.alpha_gs_ok`).
    """
    args.alpha_gs = methods.resolve_alpha_gs(args.method, args.alpha_gs)
    checks = [  # (option, value, allowed, what it must be)
        ('learnrate', lambda v: v > 0, '> 0'),
        ('momentum', lambda v: 0 <= v < 1, 'in [0, 1)'),
        ('weight_decay', lambda v: v >= 0, '>= 0'),
        ('lr_step', lambda v: v > 0, '> 0'),
        ('lr_decay', lambda v: 0 < v <= 1, 'in (0, 1]'),
        ('alpha_gs', methods.alpha_gs_ok, 'in [0, 1]'),
        ('validation_split', lambda v: 0 <= v < 1, 'in [0, 1)'),
        ('mpi_timeout', lambda v: v > 0, '> 0'),
        ('seed', lambda v: 0 <= v < 2 ** 32, 'in [0, 2**32)'),
        ('batchsize', lambda v: v >= 1, '>= 1'),
        ('epoch', lambda v: v >= 1, '>= 1'),
        ('frequency', lambda v: v >= 1 or v == -1, '>= 1 or -1'),
        ('eval_interval', lambda v: v >= 1, '>= 1'),
        ('test_batchsize', lambda v: v >= 1, '>= 1'),
        ('n_hidden', lambda v: v >= 1, '>= 1'),
        ('iterations', lambda v: v is None or v >= 1, '>= 1'),
        ('tta_interval', lambda v: v >= 0, '>= 0'),
        ('max_staleness', lambda v: v >= 0, '>= 0'),
    ]
    lines = []
    for name, ok, allowed in checks:
        value = getattr(args, name)
        finite = not isinstance(value, float) or math.isfinite(value)
        if not (finite and ok(value)):
            lines.append('--%s must be %s%s, got %r'
                         % (name.replace('_', '-'), 'finite and ' if
                            isinstance(value, float) else '', allowed, value))
    return lines


def build_trainer(args, method, train_iter, test, device, n_train):
    from chainer_vfbn.divergence import FiniteCheck
    from chainer_vfbn.evaluation import EpochsOrEnd
    from chainer_vfbn.evaluation import PREDICTIONS_FILE
    from chainer_vfbn.evaluation import ViewEvaluator
    from chainer_vfbn.evaluation import predictions_record

    updater = method.make_updater(train_iter, chainer.dataset.concat_examples,
                                  device)
    if args.iterations is not None:
        stop = (args.iterations, 'iteration')
    else:
        stop = (args.epoch, 'epoch')
    trainer = training.Trainer(updater, stop, out=args.out)

    # Step schedule of the 2016 recipe on the network's optimizers only (the
    # synthesizers' Adam keeps its alpha_gs).
    for name in method.decayed:
        trainer.extend(
            extensions.ExponentialShift(
                'lr', args.lr_decay, optimizer=updater.get_optimizer(name)),
            trigger=(args.lr_step, 'epoch'), name='lr_decay_' + name)

    stop_iteration = (args.iterations if args.iterations is not None else
                      -(-args.epoch * n_train // args.batchsize))
    eval_trigger = EpochsOrEnd(args.eval_interval, stop_iteration)
    trainer.extend(
        ViewEvaluator(method.predictor, test['images'], test['labels'],
                      augment=test['augment'], batch_size=args.test_batchsize,
                      device=device, tta_interval=args.tta_interval,
                      mean=test['mean'], std=test['std'],
                      final_iteration=stop_iteration,
                      # per-image predictions, for paired comparisons
                      on_final=lambda result: runtime.write_json(
                          os.path.join(args.out, PREDICTIONS_FILE),
                          predictions_record(result, test['labels']))),
        trigger=eval_trigger, name='validation')

    log_trigger = eval_trigger
    first = method.decayed[0]
    trainer.extend(extensions.observe_lr(optimizer_name=first),
                   trigger=log_trigger)
    # Autoload is resume_trainer's (it falls back past a corrupt snapshot);
    # an interrupt is snapshotted between two iterations by run(), and an
    # error (divergence included) leaves the last good snapshot newest.
    trainer.extend(extensions.snapshot(
        filename='snapshot_iter_{.updater.iteration}', n_retains=2),
        trigger=EpochsOrEnd(args.frequency, stop_iteration), name='snapshot')
    trainer.extend(FiniteCheck())

    # PrintReport erases the progress bar with an escape code: not in logs.
    reports.extend_reports(
        trainer, split_step.synth_names(len(method.synthesizers))
        if method.synthesizers else [], log_trigger,
        erase_line=args.progress and sys.stdout.isatty())
    if args.progress:
        trainer.extend(extensions.ProgressBar(update_interval=10))
    return trainer


def summarize(args, trainer, method, description, device, diverged=None):
    iters = trainer.updater.iteration
    # The trainer's clock survives snapshots: the whole run, resumes included.
    wall = trainer.elapsed_time
    summary = runtime.summary_dict(
        args, trainer.get_extension('LogReport').log, method.split_names,
        description, device, trainer.updater.epoch_detail, iters, wall,
        iters * args.batchsize, diverged)
    runtime.write_json(os.path.join(args.out, 'summary.json'), summary)
    return summary


def read_resume(path):
    """``--resume``'s arrays, read whole; one line if it is not a snapshot."""
    if not os.path.isfile(path):
        raise UserError('--resume %s: no such snapshot file' % path)
    try:
        return run_dir.read_npz(path)
    except run_dir.CorruptSnapshot as e:
        raise UserError('--resume: %s' % e)


def resume_trainer(trainer, path, data):
    """Load a snapshot read by :func:`chainer_vfbn.run_dir.read_npz`."""
    try:
        chainer.serializers.NpzDeserializer(data).load(trainer)
    except (KeyError, ValueError, TypeError) as e:
        raise UserError('snapshot %s does not fit this run (%s: %s)'
                        % (path, type(e).__name__, e))
    print('resumed from %s at iteration %d'
          % (path, trainer.updater.iteration), flush=True)


def prepare(args):
    """Build the method and the trainer; everything that can reject the
    command comes before ``--out`` is touched.

    Returns:
        tuple: ``(trainer, method, device, description)``.
    """
    device = runtime.get_device(args.device)
    runtime.set_seed(args.seed, device)
    try:
        net = resnet_cifar(args.arch)
        method = methods.build_method(
            args.method, net, split_at=split_at(args), lr=args.learnrate,
            momentum=args.momentum, weight_decay=args.weight_decay,
            alpha_gs=args.alpha_gs, n_hidden=args.n_hidden,
            target_scale=args.synth_target_scale)
    except ValueError as e:
        raise UserError(str(e))
    resume = None
    if args.resume is not None:
        resume = (args.resume, read_resume(args.resume))
    train_iter, test, description, augment, n_train = runtime.setup_data(
        args, net.insize)
    runtime.check_identity(args, option_defaults())
    _LOCKS.append(runtime.claim_out(args))
    if resume is None and args.autoload:
        resume = run_dir.newest_readable(
            run_dir.snapshots(args.out),
            say=lambda line: print(line, flush=True))
    method.to_device(device)
    trainer = build_trainer(args, method, train_iter, test, device, n_train)
    if resume is not None and resume[0] is not None:
        resume_trainer(trainer, *resume)
    print('chainer_vfbn: %s on %s, %s, device %s, %s augmentation'
          % (args.method, args.arch, description, device, augment))
    runtime.write_json(os.path.join(args.out, 'args.json'), runtime.run_record(
        args, device, description, augment, method.split_names))
    return trainer, method, device, description


def split_at(args):
    """``--split-at`` as a list of layer names, or ``None``."""
    return args.split_at.split(',') if args.split_at else None


def run(args):
    trainer, method, device, description = prepare(args)
    with Interrupt(acknowledge('train_cifar.py')) as interrupt:
        trainer.stop_trigger = StopOnInterrupt(trainer.stop_trigger,
                                               interrupt)
        try:
            trainer.run(show_loop_exception_msg=False)
        except Diverged as e:
            if e.iteration is None:  # raised inside the update
                e.iteration = trainer.updater.iteration + 1
            snaps = run_dir.snapshots(args.out)
            record, line = runtime.diverged_record(
                e, snaps[0] if snaps else None)
            summarize(args, trainer, method, description, device, record)
            sys.stderr.write('train_cifar.py: %s\n' % line)
            return runtime.EXIT_DIVERGED
    if interrupt.signum is not None and not trainer.stop_trigger.finished:
        return stop_interrupted(trainer, args.out, interrupt)
    summary = summarize(args, trainer, method, description, device)
    print('done: %d iterations in %.1f s; test error %s, 36-view TTA error %s'
          % (summary['iterations'], summary['wall_time_s'],
             runtime.pct(summary['test_error']),
             runtime.pct(summary['tta_error'])))
    return 0


def stop_interrupted(trainer, out, interrupt):
    """Snapshot the iteration the interrupt stopped at; its exit status."""
    iteration = trainer.updater.iteration
    path = os.path.join(out, 'snapshot_iter_%d' % iteration)
    if iteration and not os.path.isfile(path):
        trainer.get_extension('snapshot')(trainer)
    sys.stderr.write(
        'train_cifar.py: interrupted by %s at iteration %d; %s; the same '
        'command resumes it\n' % (interrupt.name, iteration,
                                   'snapshot %s' % path if iteration else
                                   'no snapshot (no iteration done)'))
    return interrupt.exit_code


def main(argv=None):
    args = parse_args(argv)
    if args.decoupled:
        from chainer_vfbn.decoupled import runner
        return runner.main(args)
    try:
        return run(args)
    except UserError as e:
        sys.stderr.write('train_cifar.py: error: %s\n' % e)
        return 2
    except KeyboardInterrupt:  # before the training loop, or a second ^C
        sys.stderr.write('train_cifar.py: interrupted\n')
        return 130
    except Exception as e:  # a full disk is one line, not a traceback
        line = run_dir.disk_full_line(e, run_dir.newest_intact(args.out))
        if line is None:
            raise
        sys.stderr.write('train_cifar.py: error: %s\n' % line)
        return 1


if __name__ == '__main__':
    sys.exit(main())

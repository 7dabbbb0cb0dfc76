"""One command-line training run: its Trainer, resume, loop and summary.

``train/train_cifar.py`` (the ResNet) and ``train/train_own_model.py`` (a
user's own sequential model) run the same way through :func:`run`: the
method from :func:`chainer_vfbn.methods.build_method`, the data, ``--out``
and the run record from :mod:`chainer_vfbn.runtime`, a Chainer ``Trainer``
with the log, plots and snapshots of :mod:`chainer_vfbn.reports`, and
``summary.json``. Like :mod:`chainer_vfbn.runtime` these take the parsed
options (an ``argparse.Namespace``): they are the runners' plumbing, not the
science; the scripts own the parsers.
"""
import os
import sys

import chainer
from chainer import training
from chainer.training import extensions

from chainer_vfbn import methods
from chainer_vfbn import reports
from chainer_vfbn import run_dir
from chainer_vfbn import runtime
from chainer_vfbn import split_step
from chainer_vfbn.divergence import Diverged
from chainer_vfbn.interrupt import acknowledge
from chainer_vfbn.interrupt import Interrupt
from chainer_vfbn.interrupt import StopOnInterrupt
from chainer_vfbn.runtime import UserError

_LOCKS = []  # the lock on --out, held until the process exits


def stop_iteration(args, n_train):
    """The run's last iteration."""
    if args.iterations is not None:
        return args.iterations
    return -(-args.epoch * n_train // args.batchsize)


def build_trainer(args, method, train_iter, test, device, n_train):
    from chainer_vfbn.divergence import FiniteCheck
    from chainer_vfbn.evaluation import PREDICTIONS_FILE
    from chainer_vfbn.evaluation import ViewEvaluator
    from chainer_vfbn.evaluation import eval_prefix
    from chainer_vfbn.evaluation import predictions_record
    from chainer_vfbn.triggers import EpochsOrEnd

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

    last = stop_iteration(args, n_train)
    eval_trigger = EpochsOrEnd(args.eval_interval, last)
    prefix = eval_prefix(args.validation_split)
    trainer.extend(
        ViewEvaluator(method.predictor, test['images'], test['labels'],
                      augment=test['augment'], batch_size=args.test_batchsize,
                      device=device, tta_interval=args.tta_interval,
                      mean=test['mean'], std=test['std'],
                      final_iteration=last, prefix=prefix,
                      # per-image predictions, for paired comparisons
                      on_final=lambda result: runtime.write_json(
                          os.path.join(args.out, PREDICTIONS_FILE),
                          predictions_record(result, test['labels']))),
        # The extension keeps its old name, the key of its state in the
        # snapshots, so that runs from before resume; its figures are
        # named for the set: test/main/... or val/main/...
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
        trigger=EpochsOrEnd(args.frequency, last), name='snapshot')
    trainer.extend(FiniteCheck())

    # PrintReport erases the progress line with an escape code: not in logs.
    reports.extend_reports(
        trainer, split_step.synth_names(len(method.synthesizers))
        if method.synthesizers else [], log_trigger,
        erase_line=args.progress and sys.stdout.isatty(),
        eval_prefix=prefix, run=run_name(args))
    if args.progress:
        trainer.extend(reports.Progress(
            last, n_train / float(args.batchsize)))
    return trainer


def run_name(args):
    """What the plots' titles call the run: method, arch and folder."""
    return '%s on %s (%s)' % (args.method, args.arch,
                              os.path.basename(os.path.normpath(args.out)))


def summarize(args, trainer, method, description, device, data_sha256,
              diverged=None):
    iters = trainer.updater.iteration
    # The trainer's clock survives snapshots: the whole run, resumes included.
    wall = trainer.elapsed_time
    summary = runtime.summary_dict(
        args, trainer.get_extension('LogReport').log, method.split_names,
        description, device, trainer.updater.epoch_detail, iters, wall,
        iters * args.batchsize, diverged, data_sha256=data_sha256)
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


def prepare(args, make_net, defaults=None, in_shape=None):
    """Build the method and the trainer; everything that can reject the
    command comes before ``--out`` is touched.

    Args:
        args (argparse.Namespace): The parsed options.
        make_net: ``make_net() -> net``, a sequential chain (called after
            the generators are seeded).
        defaults (dict): The options' defaults, for
            :func:`chainer_vfbn.runtime.check_identity`.
        in_shape (tuple): One input image's shape, ``(3, S, S)``; ``None``
            for ``net.in_shape``.

    Returns:
        tuple: ``(trainer, method, device, description, data_sha256)``;
        ``trainer`` is ``None`` when ``--out`` holds this run, finished
        (there is nothing to do, and nothing is rewritten).
    """
    device = runtime.get_device(args.device)
    runtime.set_seed(args.seed, device)
    try:
        net = make_net()
        in_shape = in_shape or net.in_shape
        method = methods.build_method(
            args.method, net, split_at=split_at(args), lr=args.learnrate,
            momentum=args.momentum, weight_decay=args.weight_decay,
            alpha_gs=args.alpha_gs, n_hidden=args.n_hidden,
            target_scale=args.synth_target_scale, in_shape=in_shape)
    except ValueError as e:
        raise UserError(str(e))
    resume = None
    if args.resume is not None:
        resume = (args.resume, read_resume(args.resume))
    train_iter, test, description, augment, n_train = runtime.setup_data(
        args, in_shape[-1])
    runtime.check_identity(args, defaults)
    _LOCKS.append(runtime.claim_out(args))
    if resume is None and args.autoload:
        resume = run_dir.newest_readable(
            run_dir.snapshots(args.out),
            say=lambda line: print(line, flush=True))
    method.to_device(device)
    trainer = build_trainer(args, method, train_iter, test, device, n_train)
    if resume is not None and resume[0] is not None:
        resume_trainer(trainer, *resume)
    summary = os.path.join(args.out, 'summary.json')
    if trainer.updater.iteration >= stop_iteration(args, n_train) and \
            os.path.isfile(summary):
        print('%s holds this run, finished at iteration %d: nothing to do '
              '(a longer --epoch or --iterations continues it)'
              % (args.out, trainer.updater.iteration))
        return None, method, device, description, test['data_sha256']
    print('chainer_vfbn: %s on %s, %s, device %s, %s augmentation'
          % (args.method, args.arch, description, device, augment))
    runtime.write_json(os.path.join(args.out, 'args.json'), runtime.run_record(
        args, device, description, augment, method.split_names,
        data_sha256=test['data_sha256']))
    return trainer, method, device, description, test['data_sha256']


def split_at(args):
    """``--split-at`` as a list of layer names, or ``None``."""
    return args.split_at.split(',') if args.split_at else None


def run(args, make_net, defaults=None, prog='train_cifar.py',
        in_shape=None):
    """Train as the options say; the exit status (0, or
    :data:`~chainer_vfbn.runtime.EXIT_DIVERGED`, or an interrupt's).

    Arguments as :func:`prepare`; ``prog`` names the script in messages.
    Raises :class:`~chainer_vfbn.runtime.UserError` on bad input. The lock
    on ``--out`` is released when it returns, however it ends.
    """
    try:
        return _run(args, make_net, defaults, prog, in_shape)
    finally:
        while _LOCKS:  # the run is over: no 0-byte .lock left behind
            runtime.release_out(_LOCKS.pop(), args.out)


def _run(args, make_net, defaults, prog, in_shape):
    trainer, method, device, description, data_sha256 = prepare(
        args, make_net, defaults, in_shape)
    if trainer is None:
        return 0
    with Interrupt(acknowledge(prog)) as interrupt:
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
            summarize(args, trainer, method, description, device,
                      data_sha256, record)
            sys.stderr.write('%s: %s\n' % (prog, line))
            return runtime.EXIT_DIVERGED
    # A signal in the last iteration (its final test included) lets the
    # run finish: its summary is written.
    if interrupt.signum is not None and not trainer.stop_trigger.finished:
        return stop_interrupted(trainer, args.out, interrupt, prog)
    summary = summarize(args, trainer, method, description, device,
                        data_sha256)
    print('done: %d iterations in %.1f s; %s error %s, 36-view TTA error %s'
          % (summary['iterations'], summary['wall_time_s'],
             summary['evaluated_on'], runtime.pct(summary['test_error']),
             runtime.pct(summary['tta_error'])))
    return 0


def stop_interrupted(trainer, out, interrupt, prog='train_cifar.py'):
    """Snapshot the iteration the interrupt stopped at; its exit status."""
    iteration = trainer.updater.iteration
    path = os.path.join(out, 'snapshot_iter_%d' % iteration)
    if iteration and not os.path.isfile(path):
        trainer.get_extension('snapshot')(trainer)
    sys.stderr.write(
        '%s: interrupted by %s at iteration %d; %s; the same '
        'command resumes it\n' % (prog, interrupt.name, iteration,
                                   'snapshot %s' % path if iteration else
                                   'no snapshot (no iteration done)'))
    return interrupt.exit_code



"""One synchronous training run: its Trainer, resume, loop and summary.

``train/train_cifar.py`` runs the ResNet and a user's own sequential model
(``--model``) the same way through :func:`run`: the method from
:func:`chainer_vfbn.methods.build_method`, the device, seed and
data of :mod:`chainer_vfbn.runs.setup`, ``--out`` of
:mod:`chainer_vfbn.runs.folder`, a Chainer ``Trainer`` with the log, plots
and snapshots of :mod:`chainer_vfbn.runs.run_log`, and the records of
:mod:`chainer_vfbn.runs.record`. Everything reads the run's
:class:`~chainer_vfbn.runs.config.RunConfig`; the scripts own the parsers.
"""
import os
import sys

import chainer
from chainer import training
from chainer.training import extensions

from chainer_vfbn import methods
from chainer_vfbn.runs import run_log
from chainer_vfbn import split_step
from chainer_vfbn.divergence import Diverged
from chainer_vfbn.divergence import FiniteCheck
from chainer_vfbn.runs.evaluation import eval_prefix
from chainer_vfbn.runs.evaluation import PREDICTIONS_FILE
from chainer_vfbn.runs.evaluation import predictions_record
from chainer_vfbn.runs.evaluation import ViewEvaluator
from chainer_vfbn.runs.interrupt import acknowledge
from chainer_vfbn.runs.interrupt import Interrupt
from chainer_vfbn.runs.interrupt import StopOnInterrupt
from chainer_vfbn.runs.interrupt import stopped_line
from chainer_vfbn.runs import folder
from chainer_vfbn.runs import record
from chainer_vfbn.runs import setup
from chainer_vfbn.runs.config import EXIT_DIVERGED
from chainer_vfbn.runs.config import UserError
from chainer_vfbn.runs.triggers import EpochsOrEnd

_LOCKS = []  # the lock on --out, held until the process exits


def build_trainer(config, method, train_iter, test, device, n_train):
    """The run's ``Trainer``: updater, schedule, evaluation, snapshots and
    reports; ``test`` is :func:`~chainer_vfbn.runs.setup.setup_data`'s."""
    updater = method.make_updater(train_iter, chainer.dataset.concat_examples,
                                  device)
    if config.iterations is not None:
        stop = (config.iterations, 'iteration')
    else:
        stop = (config.epoch, 'epoch')
    trainer = training.Trainer(updater, stop, out=config.out)

    # Step schedule of the 2016 recipe on the network's optimizers only (the
    # synthesizers' Adam keeps its alpha_gs).
    for name in method.decayed:
        trainer.extend(
            extensions.ExponentialShift(
                'lr', config.lr_decay, optimizer=updater.get_optimizer(name)),
            trigger=(config.lr_step, 'epoch'), name='lr_decay_' + name)

    last = config.stop_iteration(n_train)
    eval_trigger = EpochsOrEnd(config.eval_interval, last)
    _extend_evaluator(trainer, config, method, test, device, last,
                      eval_trigger)

    log_trigger = eval_trigger
    first = method.decayed[0]
    trainer.extend(extensions.observe_lr(optimizer_name=first),
                   trigger=log_trigger)
    # Autoload is resume_trainer's (it falls back past a corrupt snapshot);
    # an interrupt is snapshotted between two iterations by run(), and an
    # error (divergence included) leaves the last good snapshot newest.
    trainer.extend(extensions.snapshot(
        filename='snapshot_iter_{.updater.iteration}', n_retains=2),
        trigger=EpochsOrEnd(config.frequency, last), name='snapshot')
    trainer.extend(FiniteCheck())

    # PrintReport erases the progress line with an escape code: not in logs.
    run_log.extend_reports(
        trainer, split_step.synth_names(len(method.synthesizers))
        if method.synthesizers else [], log_trigger,
        erase_line=config.progress and sys.stdout.isatty(),
        eval_prefix=eval_prefix(config.validation_split),
        run=run_name(config), split_at=method.split_at)
    if config.progress:
        trainer.extend(run_log.Progress(
            last, n_train / float(config.batchsize)))
    return trainer


def _extend_evaluator(trainer, config, method, test, device, last,
                      trigger):
    """The evaluation (test set or validation split) of the run."""
    trainer.extend(
        ViewEvaluator(method.predictor, test['images'], test['labels'],
                      augment=test['augment'],
                      batch_size=config.test_batchsize, device=device,
                      tta_interval=config.tta_interval, mean=test['mean'],
                      std=test['std'], final_iteration=last,
                      prefix=eval_prefix(config.validation_split),
                      # per-image predictions, for paired comparisons
                      on_final=lambda result: record.write_json(
                          os.path.join(config.out, PREDICTIONS_FILE),
                          predictions_record(result, test['labels']))),
        # The extension keeps its old name, the key of its state in the
        # snapshots, so that runs from before resume; its figures are
        # named for the set: test/main/... or val/main/...
        trigger=trigger, name='validation')


def run_name(config):
    """What the plots' titles call the run: method, arch and folder."""
    return '%s on %s (%s)' % (config.method, config.arch,
                              os.path.basename(os.path.normpath(config.out)))


def summarize(config, trainer, method, description, device, data_sha256,
              diverged=None):
    """Write and return ``summary.json`` (``diverged``: the record of a run
    a divergence stopped)."""
    iters = trainer.updater.iteration
    # The trainer's clock survives snapshots: the whole run, resumes included.
    wall = trainer.elapsed_time
    summary = record.summary_dict(
        config, trainer.get_extension('LogReport').log, method.split_at,
        description, device, trainer.updater.epoch_detail, iters, wall,
        iters * config.batchsize, diverged, data_sha256=data_sha256)
    record.write_json(os.path.join(config.out, 'summary.json'), summary)
    return summary


def read_resume(path):
    """``--resume``'s arrays, read whole; one line if it is not a snapshot."""
    if not os.path.isfile(path):
        raise UserError('--resume %s: no such snapshot file' % path)
    try:
        return folder.read_npz(path)
    except folder.CorruptSnapshot as e:
        raise UserError('--resume: %s' % e)


def resume_trainer(trainer, path, data):
    """Load a snapshot read by :func:`chainer_vfbn.folder.read_npz`."""
    try:
        chainer.serializers.NpzDeserializer(data).load(trainer)
    except (KeyError, ValueError, TypeError) as e:
        raise UserError('snapshot %s does not fit this run (%s: %s)'
                        % (path, type(e).__name__, e))
    print('resumed from %s at iteration %d'
          % (path, trainer.updater.iteration), flush=True)


def prepare(config, make_net, in_shape=None):
    """Build the method and the trainer; everything that can reject the
    command comes before ``--out`` is touched.

    Args:
        config (~chainer_vfbn.runs.config.RunConfig): The run's options.
        make_net: ``make_net() -> net``, a sequential chain (called after
            the generators are seeded).
        in_shape (tuple): One input image's shape, ``(3, S, S)``; ``None``
            for ``net.in_shape``, or else the augmentation's
            (:func:`~chainer_vfbn.runs.setup.image_shape`).

    Returns:
        tuple: ``(config, trainer, method, device, description,
        data_sha256)``: ``config`` resolved by the built method
        (:meth:`~chainer_vfbn.runs.config.RunConfig.resolved`); ``trainer``
        is ``None`` when ``--out`` holds this run, finished (there is
        nothing to do, and nothing is rewritten).
    """
    device = setup.get_device(config.device)
    setup.set_seed(config.seed, device)
    net, method, in_shape = setup.build(config, make_net, in_shape,
                                        methods.build_method)
    config = config.resolved(method)
    resume = None
    if config.resume is not None:
        resume = (config.resume, read_resume(config.resume))
    train_iter, test, description, augment, n_train = setup.setup_data(
        config, in_shape[-1])
    folder.check_identity(config)
    _LOCKS.append(folder.claim_out(config.out, config.force_new))
    if resume is None and config.autoload:
        resume = folder.newest_readable(
            folder.snapshots(config.out),
            say=lambda line: print(line, flush=True))
    method.to_device(device)
    trainer = build_trainer(config, method, train_iter, test, device, n_train)
    if resume is not None and resume[0] is not None:
        resume_trainer(trainer, *resume)
    summary = os.path.join(config.out, 'summary.json')
    if trainer.updater.iteration >= config.stop_iteration(n_train) and \
            os.path.isfile(summary):
        print('%s holds this run, finished at iteration %d: nothing to do '
              '(a longer --epoch or --iterations continues it)'
              % (config.out, trainer.updater.iteration))
        return config, None, method, device, description, \
            test['data_sha256']
    print('chainer_vfbn: %s on %s, %s, device %s, %s augmentation'
          % (config.method, config.arch, description, device, augment))
    record.write_json(
        os.path.join(config.out, 'args.json'), record.run_record(
            config, device, description, augment, method.split_at,
            resumed=resume is not None and resume[0] is not None,
            data_sha256=test['data_sha256']))
    return config, trainer, method, device, description, test['data_sha256']


def run(config, make_net, prog='train_cifar.py', in_shape=None):
    """Train as the options say; the exit status (0, or
    :data:`~chainer_vfbn.runs.config.EXIT_DIVERGED`, or an interrupt's).

    Arguments as :func:`prepare`; ``prog`` names the script in messages.
    Raises :class:`~chainer_vfbn.runs.config.UserError` on bad input. The lock
    on ``--out`` is released when it returns, however it ends.
    """
    try:
        return _run(config, make_net, prog, in_shape)
    finally:
        while _LOCKS:  # the run is over: no 0-byte .lock left behind
            folder.release_out(_LOCKS.pop(), config.out)


def _run(config, make_net, prog, in_shape):
    config, trainer, method, device, description, data_sha256 = prepare(
        config, make_net, in_shape)
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
            snaps = folder.snapshots(config.out)
            diverged, line = record.diverged_record(
                e, snaps[0] if snaps else None)
            summarize(config, trainer, method, description, device,
                      data_sha256, diverged)
            sys.stderr.write('%s: %s\n' % (prog, line))
            return EXIT_DIVERGED
    # A signal in the last iteration (its final test included) lets the
    # run finish: its summary is written.
    if interrupt.signum is not None and not trainer.stop_trigger.finished:
        return stop_interrupted(trainer, config.out, interrupt, prog)
    summary = summarize(config, trainer, method, description, device,
                        data_sha256)
    print('done: %d iterations in %.1f s; %s error %s, 36-view TTA error %s'
          % (summary['iterations'], summary['wall_time_s'],
             summary['evaluated_on'], record.pct(summary['test_error']),
             record.pct(summary['tta_error'])))
    return 0


def stop_interrupted(trainer, out, interrupt, prog='train_cifar.py'):
    """Snapshot the iteration the interrupt stopped at; its exit status."""
    iteration = trainer.updater.iteration
    path = os.path.join(out, 'snapshot_iter_%d' % iteration)
    if iteration and not os.path.isfile(path):
        trainer.get_extension('snapshot')(trainer)
    sys.stderr.write(stopped_line(prog, interrupt, iteration,
                                  path if iteration else None) + '\n')
    return interrupt.exit_code

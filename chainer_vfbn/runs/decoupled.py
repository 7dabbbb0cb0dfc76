"""``train_cifar.py --decoupled``: this MPI rank's part of a decoupled run.

Run it under ``mpiexec`` with one rank per module (K = number of split
points + 1; K = 2 at the paper's single split)::

    OMP_NUM_THREADS=1 mpiexec --allow-run-as-root --oversubscribe -n 2 \\
        python train/train_cifar.py --decoupled --method vfbn \\
        --arch resnet20-paper --max-staleness 1 --out result/decoupled

On GPUs (``--device @cupy:0``) rank ``k`` uses GPU ``(0 + k) % n_gpus`` and
the communicator is ChainerMN's ``pure_nccl``. The same command with the
same ``--out`` resumes a killed run from its newest complete snapshot set
(:mod:`chainer_vfbn.runs.snapshot_sets`). ``--method bp`` runs
model-parallel back-propagation over the same ranks.

Stopping: a rank told SIGINT or SIGTERM (or SIGUSR1/SIGUSR2, the same two
passed on by a launcher, :mod:`chainer_vfbn.runs.interrupt`) goes on to
the end of its iteration; rank 0 decides, so every rank stops after the
same iteration, with a snapshot set there, and exits 130 or 143. MPICH's
``mpiexec`` passes its Ctrl-C on to the ranks; Open MPI's kills them two
seconds after it, so there run the ranks through :func:`launch`
(``train_cifar.py --mpiexec 'mpiexec -n 2'``).

Rank 0 writes into ``--out``: ``args.json``, ``log`` (every rank's figures
merged), ``loss.png``, ``error.png``, ``synth_cos.png`` and
``summary.json``.

Rank 0's log, printout and plots are Chainer's LogReport, PrintReport and
PlotReport, as in the synchronous run, on a
:class:`~chainer_vfbn.runs.relay.RelayTrainer` fed with every rank's
figures. The loop itself is not a Trainer's: every rank must act on the
same iterations (settle the outstanding δ's, relay an evaluation, gather
its figures, save its snapshot file), so rank 0 decides them *before* an
iteration and sends them up with its batch (the event bits), by the
schedule rule the Trainer's triggers use
(:func:`chainer_vfbn.runs.triggers.epochs_or_end`).
"""
import os
import signal
import subprocess
import sys
import time

import chainer

from chainer_vfbn import methods
from chainer_vfbn import split_step
from chainer_vfbn.runs import run_log
from chainer_vfbn.decoupled import ranks
from chainer_vfbn.decoupled import worker as wk
from chainer_vfbn.decoupled.transport import abort
from chainer_vfbn.divergence import Diverged
from chainer_vfbn.runs.evaluation import eval_prefix
from chainer_vfbn.runs.evaluation import evaluate_views
from chainer_vfbn.runs import folder
from chainer_vfbn.runs import interrupt as interrupts
from chainer_vfbn.runs import record
from chainer_vfbn.runs import relay
from chainer_vfbn.runs import setup as run_setup
from chainer_vfbn.runs import snapshot_sets as snapshots
from chainer_vfbn.runs.config import device_spec
from chainer_vfbn.runs.config import EXIT_DIVERGED
from chainer_vfbn.runs.config import UserError
from chainer_vfbn.runs.triggers import epochs_or_end
from chainer_vfbn.runs.triggers import tta_due

_LOCKS = []            # rank 0's lock on --out, held until the process ends


def create_communicator(device):
    """ChainerMN's ``'pure_nccl'`` on GPUs (if NCCL works), else ``'naive'``.

    Only the MPI communicator under it carries the point-to-point messages.

    Returns:
        tuple: ``(communicator, its name)``.

    Raises:
        ImportError: No mpi4py (or no MPI library).
    """
    # Imported here: ChainerMN needs mpi4py and an MPI library, an optional
    # dependency (the 'mpi' extra) that only a decoupled run needs.
    import mpi4py  # NOQA
    import chainermn
    if device_spec(device).startswith('@cupy'):
        try:
            return chainermn.create_communicator('pure_nccl'), 'pure_nccl'
        except Exception as e:  # no NCCL in this CuPy: MPI alone suffices
            sys.stderr.write('decoupled: pure_nccl unavailable (%s); using '
                             'the naive communicator\n' % e)
    return chainermn.create_communicator('naive'), 'naive'


def _setup(config, comm, make_net, in_shape):
    """Everything before the loop; raises UserError on bad input.

    Returns:
        tuple: ``(config resolved by the built method, (device, method,
        worker, data, manifest))``.
    """
    device = run_setup.get_device(config.device, offset=comm.intra_rank)
    run_setup.set_seed(config.seed, device)  # the same init on every rank
    net, method, in_shape = run_setup.build(config, make_net, in_shape,
                                            methods.build_pipeline)
    config = config.resolved(method)
    if len(method.modules) != comm.size:
        raise UserError(
            'the split at %s makes %d modules: launch with mpiexec -n %d '
            '(this run has %d ranks)' % (','.join(map(str, method.split_at)),
                                          len(method.modules),
                                          len(method.modules), comm.size))
    data = manifest = None
    if comm.rank == 0:
        # As train_cifar.py: validate everything before --out is touched.
        data = run_setup.setup_data(config, in_shape[-1])
        if config.resume is not None:
            manifest = snapshots.find(config.out, config.resume, comm.size,
                                      config.placement)
        folder.check_identity(config)
        _LOCKS.append(folder.claim_out(config.out, config.force_new))
        if config.resume is None and config.autoload:
            manifest = snapshots.find(config.out, None, comm.size,
                                      config.placement)
    worker = ranks.make_worker(
        method, comm, max_staleness=config.max_staleness,
        placement=config.placement, device=device,
        target_scale=config.synth_target_scale, timeout=config.mpi_timeout)
    return config, (device, method, worker, data, manifest)


def main(config, make_net, prog='train_cifar.py', in_shape=None):
    """Run ``train_cifar.py --decoupled`` on this MPI rank.

    Args:
        config (~chainer_vfbn.runs.config.RunConfig): The run's options.
        make_net: ``make_net() -> net``, as the synchronous runner's
            (:func:`chainer_vfbn.runs.trainer.run`): every rank builds the
            whole network after seeding alike, and keeps its module.
        prog (str): The script's name, for the messages.
        in_shape (tuple): One input's shape; ``None`` for ``net.in_shape``
            or the augmentation's.

    Returns:
        int: 0 on success, 2 on bad input (one line on stderr from rank 0),
        130 or 143 when a signal stopped the run (with a snapshot set).
    """
    try:
        comm, comm_name = create_communicator(config.device)
    except ImportError as e:
        sys.stderr.write('%s: error: --decoupled needs mpi4py and an MPI '
                         "(pip install -e '.[mpi]'; apt-get install "
                         'openmpi-bin libopenmpi-dev): %s\n' % (prog, e))
        return 2
    mpi = comm.mpi_comm
    # A signal from here on stops the run after an iteration; rank 0 says
    # so at once and decides (the others' copies of it are the same).
    interrupt = interrupts.Interrupt(
        None, interrupts.SIGNALS + tuple(interrupts.FORWARDED))
    if comm.rank == 0:
        acknowledge = interrupts.acknowledge(prog)

        def on_signal(signum):
            # A raw SIGTERM is what Open MPI's mpiexec sends every rank when
            # another rank aborts (a divergence, a failure), whose own line
            # says why; a user's signal reaches a rank as SIGINT, or
            # forwarded as SIGUSR1/SIGUSR2 (interrupts.FORWARD_AS).
            if interrupt.raw_signum != signal.SIGTERM:
                acknowledge(signum)
        interrupt.on_signal = on_signal
    with interrupt:
        return _main(config, make_net, prog, in_shape, comm, comm_name,
                     interrupt)


def _main(config, make_net, prog, in_shape, comm, comm_name, interrupt):
    mpi = comm.mpi_comm
    # Setup on every rank, then agree (a collective, before any training):
    # a bad option makes every rank return 2 cleanly.
    error, setup = None, None
    try:
        config, setup = _setup(config, comm, make_net, in_shape)
    except UserError as e:
        error = str(e)
    except Exception as e:  # a bug or an unreadable file on one rank
        abort(mpi, comm.rank, e)
    errors = [e for e in mpi.allgather(error) if e]
    if errors:
        if comm.rank == 0:
            sys.stderr.write('%s: error: %s\n' % (prog, errors[0]))
        return 2
    try:
        status = _Run(config, comm, comm_name, *setup,
                      interrupt=interrupt, prog=prog).train()
        while _LOCKS:  # the run is over: no 0-byte .lock left behind
            folder.release_out(_LOCKS.pop(), config.out)
        if status:
            # mpiexec kills the other ranks once one exits non-zero: none
            # does before rank 0 has released the lock.
            mpi.Barrier()
        return status
    except Diverged as e:
        _stop_diverged(config, comm.rank, e, mpi, prog)
    except BaseException as e:
        _stop_failed(config, comm.rank, e, mpi, prog)


def _stop_failed(config, rank, error, mpi, prog):
    """Any rank: end the job on an error; a full disk is one line that
    names the newest complete snapshot set (its manifest is written last,
    so a set cut short by the disk has none)."""
    line = folder.disk_full_line(error, snapshots.newest(config.out))
    if line is None:
        abort(mpi, rank, error)
        return
    sys.stderr.write('%s: rank %d: error: %s\n' % (prog, rank, line))
    sys.stderr.flush()
    mpi.Abort(1)


def _stop_diverged(config, rank, error, mpi, prog):
    """Any rank: record the divergence, say it in one line, end the job.

    The rank that saw it writes summary.json (only rank 0 has the log, and
    it may be the one waiting), then ``MPI_Abort`` stops every rank with
    :data:`chainer_vfbn.runs.config.EXIT_DIVERGED`.
    """
    diverged, line = record.diverged_record(error,
                                            snapshots.newest(config.out))
    diverged['rank'] = rank
    record.write_json(os.path.join(config.out, 'summary.json'), {
        'method': config.method, 'arch': config.arch, 'decoupled': True,
        'status': 'diverged', 'diverged': diverged,
        'iterations': error.iteration})
    sys.stderr.write('%s: rank %d: %s\n' % (prog, rank, line))
    sys.stderr.flush()
    mpi.Abort(EXIT_DIVERGED)


def events_fn(config, stop_iteration, interrupt=None):
    """Rank 0's ``events(iteration, iterator) -> bits`` for this run; once
    ``interrupt`` (an :class:`~chainer_vfbn.runs.interrupt.Interrupt`) has
    a signal, the next iteration is the last, with a snapshot set."""
    eval_k, snap_k = config.eval_interval, config.frequency
    lr_step = config.lr_step

    def events(iteration, iterator):
        bits = 0
        if interrupt is not None and interrupt.signum is not None:
            bits |= wk.STOP | wk.SNAPSHOT
        when = (iteration, stop_iteration, iterator.is_new_epoch,
                iterator.epoch)
        if epochs_or_end(*when, eval_k):
            bits |= wk.LOG | wk.EVALUATE
        if epochs_or_end(*when, snap_k):
            bits |= wk.SNAPSHOT
        # As chainer's IntervalTrigger(lr_step, 'epoch').
        prev = iterator.previous_epoch_detail
        if prev is not None and prev // lr_step != \
                iterator.epoch_detail // lr_step:
            bits |= wk.LR_DECAY
        return bits
    return events


class _Run(object):
    """One rank's training loop and what it does on the event bits."""

    def __init__(self, config, comm, comm_name, device, method, worker, data,
                 manifest, interrupt=None, prog='train_cifar.py'):
        self.config, self.comm, self.comm_name = config, comm, comm_name
        self.interrupt, self.prog = interrupt, prog
        self.k, self.K = comm.rank, comm.size
        self.device, self.method, self.worker = device, method, worker
        self.iterator = self.test = self.stop = None
        if self.k == 0:
            (self.iterator, self.test, self.description, self.augment,
             n_train) = data
            self.stop = config.stop_iteration(n_train)
        self.state = snapshots.RankState(worker, self.iterator)
        self.trainer = None
        if self.k == 0:
            self.trainer = self.state.reports = relay.RelayTrainer(
                worker, config.out, self.state.elapsed_time)
            run_log.extend_reports(
                self.trainer, split_step.synth_names(len(method.synthesizers))
                if method.synthesizers else [], (1, 'iteration'),
                per_synth=('cos', 'norm_ratio', 'staleness_max'),
                eval_prefix=eval_prefix(config.validation_split),
                run='%s on %s, decoupled (%s)' % (
                    config.method, config.arch,
                    os.path.basename(os.path.normpath(config.out))),
                split_at=method.split_at)
        self.manifest = manifest

    def _resume(self):
        """Rank 0 picked the snapshot set; every rank loads its file."""
        mpi = self.comm.mpi_comm
        manifest = mpi.bcast(self.manifest, root=0)
        if manifest is not None:
            chainer.serializers.load_npz(manifest['files'][self.k],
                                         self.state)
            if self.k == 0:
                print('resumed from %s at iteration %d'
                      % (manifest['path'], manifest['iteration']), flush=True)
        self.stop = mpi.bcast(self.stop, root=0)

    def _announce(self):
        config, K = self.config, self.K
        print('chainer_vfbn: %s on %s, decoupled over %d ranks (split at %s, '
              'max staleness %d, synthesizers trained %s, %s communicator), '
              '%s, device %s'
              % (config.method, config.arch, K,
                 ','.join(map(str, self.method.split_at)),
                 config.max_staleness, config.placement or '-',
                 self.comm_name, self.description, self.device), flush=True)
        written = record.run_record(
            config, self.device, self.description, self.augment,
            self.method.split_at, resumed=self.manifest is not None,
            data_sha256=self.test['data_sha256'],
            decoupled={'ranks': K, 'communicator': self.comm_name,
                       'max_staleness': config.max_staleness,
                       'synth_placement': config.placement})
        written['command'] = 'mpiexec -n %d %s' % (K, written['command'])
        record.write_json(os.path.join(config.out, 'args.json'), written)

    def train(self):
        self._resume()
        if self.k == 0:
            self._announce()
        worker = self.worker
        start_iteration = worker.iteration
        self.state.session_start = time.time()
        if worker.iteration < self.stop:
            # A divergence is this runner's to report (summary.json, one
            # line); anything else aborts the job in worker.run's way.
            device = self.device
            worker.run(
                self.stop, iterator=self.iterator,
                converter=lambda batch, _: chainer.dataset.concat_examples(
                    batch, device),
                events=events_fn(self.config, self.stop, self.interrupt)
                if self.k == 0 else None, on_events=self.on_events,
                abort_on_error=False)
        mpi = self.comm.mpi_comm
        mpi.Barrier()  # every rank is done, messages flushed
        if worker.iteration < self.stop:  # a signal stopped every rank
            return mpi.bcast(self._stopped() if self.k == 0 else None,
                             root=0)
        if self.k == 0:
            self._summarize(worker.iteration - start_iteration)
        return 0

    def _stopped(self):
        """Rank 0, after a signal: say where the run stopped; its status."""
        iteration = self.worker.iteration
        newest = snapshots.newest(self.config.out)
        sys.stderr.write(interrupts.stopped_line(
            self.prog, self.interrupt, iteration,
            newest if iteration else None) + '\n')
        sys.stderr.flush()
        return self.interrupt.exit_code

    def on_events(self, w, bits):
        """Every rank, after an iteration whose event bits are not 0."""
        if bits & wk.LR_DECAY:
            w.optimizer.lr *= self.config.lr_decay
        if bits & (wk.LOG | wk.SNAPSHOT):
            w.settle()
        results = None
        if bits & wk.EVALUATE:
            if self.k == 0:
                results = self._evaluate(w)
                w.end_eval()
            else:
                w.serve_eval()
        if bits & wk.LOG:
            self._log(w, results)
        if bits & wk.SNAPSHOT:
            self._snapshot(w)

    def _evaluate(self, w):
        """Rank 0: test-set figures through the chain of ranks."""
        self.state.n_evals += 1
        test, config = self.test, self.config
        tta = tta_due(self.state.n_evals, config.tta_interval,
                      w.iteration >= self.stop)
        result = evaluate_views(
            w.predict, test['images'], test['labels'],
            augment=test['augment'], batch_size=config.test_batchsize,
            device=self.device, mean=test['mean'], std=test['std'], tta=tta)
        keys = ('loss', 'accuracy', 'error')
        if tta:
            keys += ('tta_accuracy', 'tta_error')
        prefix = eval_prefix(config.validation_split)
        return {'%s/main/%s' % (prefix, key): result[key] for key in keys}

    def _log(self, w, results):
        """Every rank's figures (and rank 0's test figures) in one entry."""
        gathered = w.gather(w.pop_observation())
        if self.k != 0:
            return
        observation = {'lr': w.optimizer.lr}
        for figures in gathered:
            observation.update(figures)
        observation.update(results or {})
        self.trainer.report(observation)

    def _snapshot(self, w):
        out = self.config.out
        names = w.gather(snapshots.save(out, self.state, w.iteration, self.k))
        if self.k == 0:
            snapshots.write_manifest(out, w.iteration, names, {
                'method': self.config.method, 'arch': self.config.arch,
                'split_at': self.method.split_at,
                'synth_placement': self.config.placement})

    def _summarize(self, done):
        """Rank 0: summary.json; ``done``: this session's iterations."""
        config, worker = self.config, self.worker
        # As the synchronous run's trainer clock: every session, resumes
        # included, and the images of every session.
        wall = self.state.elapsed_time()
        summary = record.summary_dict(
            config, self.trainer.get_extension('LogReport').log,
            self.method.split_at, self.description,
            self.device, worker.epoch_info.epoch_detail, worker.iteration,
            wall, worker.iteration * config.batchsize,
            data_sha256=self.test['data_sha256'])
        summary.update(decoupled=True, ranks=self.K,
                       max_staleness=config.max_staleness,
                       synth_placement=config.placement)
        record.write_json(os.path.join(config.out, 'summary.json'), summary)
        print('done: %d iterations in %.1f s over %d ranks (%d iterations '
              'in this session); %s error %s'
              % (worker.iteration, wall, self.K, done,
                 summary['evaluated_on'],
                 record.pct(summary['test_error'])), flush=True)


def launch(command):
    """Run ``command`` (``mpiexec ... train_cifar.py --decoupled ...``) so
    that this process's Ctrl-C or SIGTERM stops it with a snapshot set.

    ``mpiexec`` runs in a session of its own, out of the terminal's reach,
    and this process passes SIGINT and SIGTERM on as SIGUSR1 and SIGUSR2,
    which ``mpiexec`` forwards to every rank
    (:data:`~chainer_vfbn.runs.interrupt.FORWARD_AS`); a second signal is
    passed on too, and stops the ranks at once.

    Args:
        command (list of str): The launcher and the ranks' command.

    Returns:
        int: ``mpiexec``'s exit status (``128 + signal`` where it was
        killed by one); 2 with one line where it cannot be started.

    Example (a decoupled training run, which needs MPI and the data)::

        >>> launch(['mpiexec', '-n', '2', sys.executable,  # doctest: +SKIP
        ...         'train/train_cifar.py', '--decoupled', '--out', 'r'])
        0

    and a command that exits at once, with its status::

        >>> import sys
        >>> launch([sys.executable, '-c', 'raise SystemExit(3)'])
        3
    """
    try:
        proc = subprocess.Popen(command, start_new_session=True)
    except OSError as e:
        sys.stderr.write('train_cifar.py: error: cannot start %s: %s\n'
                         % (command[0], e.strerror or e))
        return 2

    def forward(signum, frame):
        proc.send_signal(interrupts.FORWARD_AS[signum])

    previous = {s: signal.signal(s, forward) for s in interrupts.FORWARD_AS}
    try:
        status = proc.wait()   # retried after each signal (PEP 475)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 128 - status if status < 0 else status

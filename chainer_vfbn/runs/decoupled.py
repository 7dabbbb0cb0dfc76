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
        int: 0 on success, 2 on bad input (one line on stderr from rank 0).
    """
    try:
        comm, comm_name = create_communicator(config.device)
    except ImportError as e:
        sys.stderr.write('%s: error: --decoupled needs mpi4py and an MPI '
                         "(pip install -e '.[mpi]'; apt-get install "
                         'openmpi-bin libopenmpi-dev): %s\n' % (prog, e))
        return 2
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
        status = _Run(config, comm, comm_name, *setup).train()
        while _LOCKS:  # the run is over: no 0-byte .lock left behind
            folder.release_out(_LOCKS.pop(), config.out)
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


def events_fn(config, stop_iteration):
    """Rank 0's ``events(iteration, iterator) -> bits`` for this run."""
    eval_k, snap_k = config.eval_interval, config.frequency
    lr_step = config.lr_step

    def events(iteration, iterator):
        bits = 0
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
                 manifest):
        self.config, self.comm, self.comm_name = config, comm, comm_name
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
                events=events_fn(self.config, self.stop) if self.k == 0
                else None, on_events=self.on_events, abort_on_error=False)
        self.comm.mpi_comm.Barrier()  # every rank is done, messages flushed
        if self.k == 0:
            self._summarize(worker.iteration - start_iteration)
        return 0

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

"""``train_cifar.py --decoupled``: one MPI rank per module (ChainerMN).

Run it under ``mpiexec`` with one rank per module (K = number of split
points + 1; K = 2 at the paper's single split)::

    OMP_NUM_THREADS=1 mpiexec --allow-run-as-root --oversubscribe -n 2 \\
        python train/train_cifar.py --decoupled --method vfbn \\
        --arch resnet20-paper --max-staleness 1 --out result/decoupled

``--allow-run-as-root`` is only needed as root (e.g. in a container) and
``--oversubscribe`` only when there are fewer cores than ranks. On GPUs add
``--device @cupy:0``: rank ``k`` uses GPU ``(0 + k) % n_gpus`` (two ranks
may share one GPU) and the communicator is ChainerMN's ``pure_nccl``.

The same command with the same ``--out`` resumes a killed run from its
newest complete snapshot set (``--no-autoload`` starts afresh; ``--resume
OUT/snapshot_iter_N.json`` picks a set). Any training method with
synthetic gradients works (``vfbn``, ``vfbn-linear``, ``vfbn-mlp``,
``dni-linear``, ``dni-resnet``); ``--method bp`` runs model-parallel
back-propagation over the same ranks (the top sends δ down, the bottom
waits), the baseline of ``benchmarks/bench_decoupled.py``.

What rank 0 writes into ``--out`` (one set for the whole run): ``args.json``,
``log`` (LogReport-style JSON, with every rank's figures merged: the last
rank's ``main/loss``, each synthesizer's ``synth*/{loss,cos,relerr,
staleness}``, ``rank{k}/wait_time``), ``loss.png``, ``error.png``,
``synth_cos.png`` and ``summary.json``. Every rank writes its
``snapshot_iter_N.rank{k}.npz``; rank 0 writes ``snapshot_iter_N.json``
once all of them are on disk (a complete set).

The science (the protocol, the staleness bound) is in
:mod:`chainer_vfbn.decoupled`; design notes and measurements in
``docs/decoupled.md``.
"""
import glob
import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
for path in (REPO, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import chainer_vfbn  # NOQA  (before chainer: compatibility shims)

import chainer  # NOQA
import numpy  # NOQA

from chainer_vfbn import decoupled  # NOQA
from chainer_vfbn.evaluation import epochs_or_end  # NOQA
from chainer_vfbn import split_step  # NOQA
from chainer_vfbn import methods  # NOQA
from chainer_vfbn import run_dir  # NOQA
from chainer_vfbn.divergence import Diverged  # NOQA
from chainer_vfbn.divergence import GrowthWatch  # NOQA
from chainer_vfbn.models import resnet_cifar  # NOQA

import train_cifar  # NOQA  (the shared CLI helpers)

UserError = train_cifar.UserError
DECOUPLED_METHODS = ('bp',) + methods.SYNTHETIC_METHODS
SNAPSHOT_RE = re.compile(r'^snapshot_iter_(\d+)\.json$')
N_RETAINS = 2          # complete snapshot sets kept in --out
DEFAULT_TIMEOUT = 300  # seconds any rank waits for a peer before giving up
_LOCKS = []            # rank 0's lock on --out, held until the process ends


def _rank_device(spec, comm):
    """This rank's device: CPU, or GPU ``(id + intra_rank) % n_gpus``."""
    text = str(spec)
    if text.lstrip('-').isdigit():
        text = '@numpy' if int(text) < 0 else '@cupy:%s' % text
    if not text.startswith('@cupy'):
        return train_cifar.get_device(text)
    if not chainer.backends.cuda.available:
        raise UserError('device %s asks for CUDA, but CuPy/CUDA is not '
                        'available on this machine' % text)
    first = int(text.split(':')[1]) if ':' in text else 0
    n_gpus = chainer.backends.cuda.cupy.cuda.runtime.getDeviceCount()
    return train_cifar.get_device('@cupy:%d'
                                  % ((first + comm.intra_rank) % n_gpus))


def create_communicator(device_spec):
    """ChainerMN's ``'pure_nccl'`` on GPUs (if NCCL works), else ``'naive'``.

    Only the MPI communicator under it carries the point-to-point messages.
    """
    import chainermn
    if str(device_spec).startswith('@cupy') or (
            str(device_spec).isdigit()):
        try:
            return chainermn.create_communicator('pure_nccl'), 'pure_nccl'
        except Exception as e:  # no NCCL in this CuPy: MPI alone suffices
            sys.stderr.write('decoupled: pure_nccl unavailable (%s); using '
                             'the naive communicator\n' % e)
    return chainermn.create_communicator('naive'), 'naive'


class _Parts(object):
    """The modules, synthesizers and optimizers of a decoupled method."""

    def __init__(self, args, net):
        split_at = args.split_at.split(',') if args.split_at else None
        if args.method not in DECOUPLED_METHODS:
            raise UserError('--decoupled supports --method %s, not %s'
                            % (', '.join(DECOUPLED_METHODS), args.method))
        sgd = dict(lr=args.learnrate, momentum=args.momentum,
                   weight_decay=args.weight_decay)
        try:
            if args.method == 'bp':
                names = split_at or [net.default_split]
                self.modules = net.split(names)
                self.synthesizers = []
                self.optimizers = {
                    'module%d' % k: methods.momentum_sgd(m, **sgd)
                    for k, m in enumerate(self.modules)}
                self.split_names = list(names)
            else:
                method = methods.build_method(
                    args.method, net, split_at=split_at,
                    alpha_gs=args.alpha_gs, n_hidden=args.n_hidden,
                    target_scale=args.synth_target_scale, **sgd)
                self.modules = method.modules
                self.synthesizers = method.synthesizers
                self.optimizers = method.optimizers
                self.split_names = method.split_names
        except ValueError as e:
            raise UserError(str(e))

    def synth_name(self, k):
        return split_step.synth_name(k, len(self.modules) - 1)


class _RankState(object):
    """What one rank saves in its snapshot file."""

    def __init__(self, worker, iterator=None):
        self.worker = worker
        self.iterator = iterator
        self.log = []
        self.elapsed = 0.0    # seconds of training before this session
        self.session_start = time.time()
        self.n_evals = 0

    def elapsed_time(self):
        """Seconds of training over every session so far."""
        return self.elapsed + time.time() - self.session_start

    def serialize(self, serializer):
        saving = isinstance(serializer, chainer.serializer.Serializer)
        self.worker.serialize(serializer['worker'])
        opt = self.worker.optimizer
        opt.lr = float(serializer('lr', opt.lr))  # the step schedule's value
        if self.iterator is not None:
            self.iterator.serialize(serializer['iterator'])
            self.elapsed = float(serializer(
                'elapsed', self.elapsed_time() if saving else self.elapsed))
            self.n_evals = int(serializer('n_evals', self.n_evals))
            if saving:
                serializer('log', numpy.frombuffer(
                    json.dumps(self.log).encode('utf-8'), numpy.uint8))
            else:
                text = serializer('log', None)
                self.log = json.loads(bytes(numpy.asarray(text)).decode())


def _find_snapshot(out, resume, n_ranks, placement=None):
    """Rank 0: ``(iteration, manifest)`` of the set to resume, or ``None``."""
    if resume is not None:
        path = resume if resume.endswith('.json') else resume + '.json'
        if not os.path.isfile(path):
            raise UserError('--resume %s: no such snapshot set (give '
                            'OUT/snapshot_iter_N.json)' % resume)
        candidates = [path]
    else:
        candidates = sorted(
            glob.glob(os.path.join(out, 'snapshot_iter_*.json')),
            key=lambda p: int(SNAPSHOT_RE.match(os.path.basename(p))
                              .group(1)) if SNAPSHOT_RE.match(
                os.path.basename(p)) else -1, reverse=True)
    for i, path in enumerate(candidates):
        try:
            with open(path) as f:
                manifest = json.load(f)
            folder = os.path.dirname(path)
            files = [os.path.join(folder, name) for name in manifest['files']]
            if all(os.path.isfile(p) for p in files):
                for p in files:  # every rank's file reads back whole
                    run_dir.read_npz(p)
        except (ValueError, KeyError, TypeError, OSError,
                run_dir.CorruptSnapshot) as e:
            if resume is not None:
                raise UserError('--resume: snapshot set %s is corrupt (%s)'
                                % (path, e))
            later = candidates[i + 1] if i + 1 < len(candidates) else None
            print('snapshot set %s is corrupt (%s); %s' % (
                path, e, 'falling back to %s' % later if later else
                'no older snapshot: starting afresh'), flush=True)
            continue
        if all(os.path.isfile(p) for p in files):
            if manifest['ranks'] != n_ranks:
                raise UserError(
                    'snapshot set %s has %d ranks but this run has %d: '
                    'launch with mpiexec -n %d (or --no-autoload)'
                    % (path, manifest['ranks'], n_ranks, manifest['ranks']))
            saved = manifest.get('synth_placement', 'below')
            if placement is not None and saved not in (None, placement):
                raise UserError(
                    'snapshot set %s was trained with --synth-placement %s '
                    '(each rank saved the synthesizers it held): resume with '
                    'the same option (or --no-autoload)' % (path, saved))
            manifest['files'] = files
            manifest['path'] = path
            return manifest
        if resume is not None:
            raise UserError('snapshot set %s is incomplete' % path)
    return None


def _stop_diverged(args, rank, error, mpi):
    """Any rank: record the divergence, say it in one line, end the job.

    The rank that saw it writes summary.json (only rank 0 has the log, and
    it may be the one waiting), then ``MPI_Abort`` stops every rank with
    :data:`train_cifar.EXIT_DIVERGED`.
    """
    sets = sorted(
        (int(m.group(1)), p) for p in
        glob.glob(os.path.join(args.out, 'snapshot_iter_*.json'))
        for m in [SNAPSHOT_RE.match(os.path.basename(p))] if m)
    record, line = train_cifar.diverged_record(
        error, sets[-1][1] if sets else None)
    record['rank'] = rank
    train_cifar.write_json(os.path.join(args.out, 'summary.json'), {
        'method': args.method, 'arch': args.arch, 'decoupled': True,
        'status': 'diverged', 'diverged': record,
        'iterations': error.iteration})
    sys.stderr.write('train_cifar.py: rank %d: %s\n' % (rank, line))
    sys.stderr.flush()
    mpi.Abort(train_cifar.EXIT_DIVERGED)


def _save_snapshot(out, state, iteration, rank):
    name = 'snapshot_iter_%d.rank%d.npz' % (iteration, rank)
    tmp = os.path.join(out, name + '.tmp.npz')
    chainer.serializers.save_npz(tmp, state)
    os.replace(tmp, os.path.join(out, name))
    return name


def _write_manifest(out, iteration, files, info):
    manifest = dict(info, iteration=iteration, ranks=len(files), files=files)
    train_cifar.write_json(
        os.path.join(out, 'snapshot_iter_%d.json' % iteration), manifest)
    # Keep the newest N_RETAINS complete sets.
    sets = []
    for path in glob.glob(os.path.join(out, 'snapshot_iter_*.json')):
        match = SNAPSHOT_RE.match(os.path.basename(path))
        if match:
            sets.append((int(match.group(1)), path))
    for n, path in sorted(sets)[:-N_RETAINS]:
        with open(path) as f:
            old = json.load(f)
        os.remove(path)  # the marker first: a half-deleted set is incomplete
        for name in old['files']:
            p = os.path.join(out, os.path.basename(name))
            if os.path.exists(p):
                os.remove(p)


def _evaluate(worker, test, args, n_evals, device, at_end):
    """Rank 0: test-set figures through the chain of ranks."""
    from chainer_vfbn.evaluation import evaluate_views
    from chainer_vfbn.evaluation import tta_due
    tta = tta_due(n_evals, args.tta_interval, at_end)
    result = evaluate_views(
        worker.predict, test['images'], test['labels'],
        augment=test['augment'], batch_size=args.test_batchsize,
        device=device, mean=test['mean'], std=test['std'], tta=tta)
    keys = ('loss', 'accuracy', 'error')
    if tta:
        keys += ('tta_accuracy', 'tta_error')
    return {'validation/main/' + key: result[key] for key in keys}


def _plot(out, log, synth_keys):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return
    figures = [('loss.png', ['main/loss', 'validation/main/loss'], 'epoch'),
               ('error.png', ['validation/main/error',
                              'validation/main/tta_error'], 'epoch'),
               ('synth_cos.png', ['%s/cos' % k for k in synth_keys],
                'iteration')]
    for name, keys, x_key in figures:
        if not keys:
            continue
        fig, ax = plt.subplots()
        drawn = False
        for key in keys:
            xs = [e[x_key] for e in log if key in e]
            ys = [e[key] for e in log if key in e]
            if xs:
                ax.plot(xs, ys, marker='x', label=key)
                drawn = True
        if drawn:
            ax.set_xlabel(x_key)
            ax.legend()
            ax.grid(True)
            fig.savefig(os.path.join(out, name), bbox_inches='tight')
        plt.close(fig)


def _print_entry(entry, synth_keys):
    cols = [('epoch', '%d'), ('iteration', '%d'), ('main/loss', '%.4f'),
            ('main/accuracy', '%.4f'), ('validation/main/loss', '%.4f'),
            ('validation/main/error', '%.4f'),
            ('validation/main/tta_error', '%.4f')]
    cols += [('%s/cos' % k, '%.3f') for k in synth_keys]
    cols += [('%s/staleness_max' % k, '%d') for k in synth_keys]
    cols += [('lr', '%g'), ('elapsed_time', '%.1f')]
    print('  '.join('%s=%s' % (key, fmt % entry[key]) for key, fmt in cols
                    if entry.get(key) is not None), flush=True)


def _events_fn(args, stop_iteration):
    eval_k, snap_k, lr_step = args.eval_interval, args.frequency, args.lr_step

    def events(iteration, iterator):
        bits = 0
        when = (iteration, stop_iteration, iterator.is_new_epoch,
                iterator.epoch)
        if epochs_or_end(*when, eval_k):
            bits |= decoupled.LOG | decoupled.EVALUATE
        if epochs_or_end(*when, snap_k):
            bits |= decoupled.SNAPSHOT
        # As chainer's IntervalTrigger(lr_step, 'epoch').
        prev = iterator.previous_epoch_detail
        if prev is not None and prev // lr_step != \
                iterator.epoch_detail // lr_step:
            bits |= decoupled.LR_DECAY
        return bits
    return events


def _placement(args):
    """``'above'``/``'below'``, or ``None`` for model-parallel BP."""
    if args.method == 'bp':
        return None
    return getattr(args, 'synth_placement', 'above')


def _setup(args, comm):
    """Everything before the loop; raises UserError on bad input."""
    k = comm.rank
    device = _rank_device(args.device, comm)
    train_cifar.set_seed(args.seed, device)  # the same init on every rank
    try:
        net = resnet_cifar(args.arch)
    except ValueError as e:
        raise UserError(str(e))
    parts = _Parts(args, net)
    if len(parts.modules) != comm.size:
        raise UserError(
            'the split at %s makes %d modules: launch with mpiexec -n %d '
            '(this run has %d ranks)' % (','.join(parts.split_names),
                                          len(parts.modules),
                                          len(parts.modules), comm.size))
    data = manifest = None
    if k == 0:
        # As train_cifar.run: validate everything before --out is touched.
        data = train_cifar.setup_data(args, net.insize)
        if args.resume is not None:
            manifest = _find_snapshot(args.out, args.resume, comm.size,
                                      _placement(args))
        train_cifar.check_identity(args)
        _LOCKS.append(train_cifar.claim_out(args))
        if args.resume is None and args.autoload:
            manifest = _find_snapshot(args.out, None, comm.size,
                                      _placement(args))
    has_synth = args.method != 'bp' and k < comm.size - 1
    # 'above': rank k also holds the master copy of synth_{k-1}.
    has_lower = _placement(args) == 'above' and k > 0
    links = [parts.modules[k]]
    links += [parts.synthesizers[k]] if has_synth else []
    links += [parts.synthesizers[k - 1]] if has_lower else []
    for link in links:
        link.to_device(device)
    worker = decoupled.DecoupledWorker(
        comm, parts.modules[k], parts.optimizers['module%d' % k],
        synthesizer=parts.synthesizers[k] if has_synth else None,
        synth_optimizer=(parts.optimizers[parts.synth_name(k)] if has_synth
                         else None),
        mode='bp' if args.method == 'bp' else 'synthetic',
        max_staleness=args.max_staleness, device=device,
        timeout=getattr(args, 'mpi_timeout', DEFAULT_TIMEOUT),
        synth_name=parts.synth_name(k) if has_synth else None,
        synth_placement=_placement(args) or 'below',
        lower_synthesizer=parts.synthesizers[k - 1] if has_lower else None,
        lower_synth_optimizer=(parts.optimizers[parts.synth_name(k - 1)]
                               if has_lower else None),
        lower_synth_name=parts.synth_name(k - 1) if has_lower else None,
        target_scale=args.synth_target_scale)
    return device, net, parts, worker, data, manifest


def main_decoupled(args):
    """Run ``train_cifar.py --decoupled`` on this MPI rank.

    Args:
        args (argparse.Namespace): The options of ``train/train_cifar.py``
            (``--max-staleness`` bounds the outstanding true gradients).

    Returns:
        int: 0 on success, 2 on bad input (one line on stderr from rank 0).
    """
    try:
        import mpi4py  # NOQA
        comm, comm_name = create_communicator(args.device)
    except ImportError as e:
        sys.stderr.write('train_cifar.py: error: --decoupled needs mpi4py '
                         "and an MPI (pip install -e '.[mpi]'; apt-get "
                         'install openmpi-bin libopenmpi-dev): %s\n' % e)
        return 2
    mpi = comm.mpi_comm

    # Setup on every rank, then agree (a collective, before any training):
    # a bad option makes every rank return 2 cleanly.
    error, setup = None, None
    try:
        setup = _setup(args, comm)
    except UserError as e:
        error = str(e)
    except Exception as e:  # a bug or an unreadable file on one rank
        decoupled.abort(mpi, comm.rank, e)
    errors = [e for e in mpi.allgather(error) if e]
    if errors:
        if comm.rank == 0 or error:
            if comm.rank == 0:
                sys.stderr.write('train_cifar.py: error: %s\n' % errors[0])
        return 2
    try:
        return _train(args, comm, comm_name, *setup)
    except Diverged as e:
        _stop_diverged(args, comm.rank, e, mpi)
    except UserError as e:
        decoupled.abort(mpi, comm.rank, e)
    except BaseException as e:
        decoupled.abort(mpi, comm.rank, e)


def _train(args, comm, comm_name, device, net, parts, worker, data,
           manifest):
    k, K = comm.rank, comm.size
    mpi = comm.mpi_comm
    iterator = test = None
    if k == 0:
        iterator, test, description, augment, n_train = data
        stop = (args.iterations if args.iterations is not None else
                -(-args.epoch * n_train // args.batchsize))
    state = _RankState(worker, iterator)
    synth_keys = [parts.synth_name(j) for j in range(K - 1)
                  if args.method != 'bp']

    # Resume: rank 0 picks the snapshot set, every rank loads its file.
    manifest = mpi.bcast(manifest, root=0)
    if manifest is not None:
        chainer.serializers.load_npz(manifest['files'][k], state)
        if k == 0:
            print('resumed from %s at iteration %d'
                  % (manifest['path'], manifest['iteration']), flush=True)
    stop = mpi.bcast(stop if k == 0 else None, root=0)

    if k == 0:
        print('chainer_vfbn: %s on %s, decoupled over %d ranks (split at %s, '
              'max staleness %d, synthesizers trained %s, %s communicator), '
              '%s, device %s'
              % (args.method, args.arch, K, ','.join(parts.split_names),
                 args.max_staleness, _placement(args) or '-', comm_name,
                 description, device), flush=True)
        train_cifar.write_json(os.path.join(args.out, 'args.json'), {
            'args': vars(args), 'augment': augment, 'dataset': description,
            'split_at': parts.split_names,
            'code_version': train_cifar.code_version(),
            'environment': train_cifar.environment(), 'device': str(device),
            'decoupled': {'ranks': K, 'communicator': comm_name,
                          'max_staleness': args.max_staleness,
                          'synth_placement': _placement(args)},
            'command': 'mpiexec -n %d %s' % (K, ' '.join(
                [os.path.basename(sys.argv[0])] + sys.argv[1:])),
        })

    watch = GrowthWatch(['%s/loss' % name for name in synth_keys])
    start_iteration = worker.iteration
    start = state.session_start = time.time()

    def on_events(w, bits):
        if bits & decoupled.LR_DECAY:
            w.optimizer.lr *= args.lr_decay
        if bits & (decoupled.LOG | decoupled.SNAPSHOT):
            w.settle()
        results = None
        if bits & decoupled.EVALUATE:
            if k == 0:
                results = _evaluate(w, test, args, state.n_evals + 1, device,
                                    w.iteration >= stop)
                state.n_evals += 1
                w.end_eval()
            else:
                w.serve_eval()
        if bits & decoupled.LOG:
            reports = w.gather(w.pop_observation())
            if k == 0:
                entry = {'epoch': w.epoch_info.epoch,
                         'iteration': w.iteration,
                         'elapsed_time': state.elapsed_time(),
                         'lr': w.optimizer.lr}
                for report in reports:
                    entry.update(report)
                entry.update(results or {})
                state.log.append(entry)
                train_cifar.write_json(os.path.join(args.out, 'log'),
                                       state.log)
                _plot(args.out, state.log, synth_keys)
                _print_entry(entry, synth_keys)
                for line in watch.check(entry):
                    print(line, flush=True)
        if bits & decoupled.SNAPSHOT:
            name = _save_snapshot(args.out, state, w.iteration, k)
            names = w.gather(name)
            if k == 0:
                _write_manifest(args.out, w.iteration, names, {
                    'method': args.method, 'arch': args.arch,
                    'split_at': parts.split_names,
                    'synth_placement': _placement(args)})

    if worker.iteration < stop:
        # A divergence is this runner's to report (summary.json, one line);
        # anything else aborts the job in worker.run's way.
        worker.run(stop, iterator=iterator, converter=_converter(device),
                   events=_events_fn(args, stop) if k == 0 else None,
                   on_events=on_events, abort_on_error=False)
    wall = time.time() - start
    mpi.Barrier()  # every rank is done and has flushed its messages
    if k == 0:
        _summarize(args, state, worker, parts, description, device, wall,
                   worker.iteration - start_iteration, K)
    return 0


def _converter(device):
    def convert(batch, dev):
        return chainer.dataset.concat_examples(batch, device)
    return convert


def _summarize(args, state, worker, parts, description, device, wall, done,
               K):
    summary = train_cifar.summary_dict(
        args, state.log, parts.split_names, description, device,
        worker.epoch_info.epoch_detail, worker.iteration, wall,
        done * args.batchsize)
    summary.update(decoupled=True, ranks=K, max_staleness=args.max_staleness,
                   synth_placement=_placement(args))
    train_cifar.write_json(os.path.join(args.out, 'summary.json'), summary)
    print('done: %d iterations in %.1f s over %d ranks; test error %s'
          % (done, wall, K, train_cifar._pct(summary['test_error'])),
          flush=True)

"""Running runs as subprocesses of ``train_cifar.py``, ``jobs`` at a time.

A single runner is ``jobs=1``. Each run trains in its folder under the
output folder (resuming from its newest snapshot there); when it exits 0,
or diverges, its record is written (:mod:`.records`).
"""
import collections
import json
import os
import subprocess
import sys
import time

from chainer_vfbn.runs import record
from chainer_vfbn.experiments.plan import command
from chainer_vfbn.experiments.records import KERNEL_SETTING
from chainer_vfbn.experiments.records import record_run
from chainer_vfbn.experiments.records import status
from chainer_vfbn.runs.interrupt import Interrupt
from chainer_vfbn.runs.interrupt import Interrupted
from chainer_vfbn.runs.config import EXIT_DIVERGED

# The exit statuses of a run that snapshotted at SIGINT or SIGTERM.
EXIT_INTERRUPTED = (130, 143)


def thread_env(threads=1, blas_kernel=None):
    """The environment of a run: ``threads`` BLAS threads, Chainer's
    type checks off, and OpenBLAS's kernel pinned to ``blas_kernel``
    (``OPENBLAS_CORETYPE``; None: OpenBLAS picks the CPU's). Type checks
    only validate shapes and dtypes: off, a short run's every logged number
    was bit-identical, and a VFBN run took about 7% less CPU time, a BP run
    the same (docs/benchmarks/type_check_cpu_2026-12-03.json). One kernel
    repeats a run bit for bit on any CPU that has it; two kernels drift
    apart (docs/RESULTS.md, "Machines"): OpenBLAS's Haswell kernel runs on
    every AVX2 CPU.

    Example:
        >>> thread_env(2)['OMP_NUM_THREADS']
        '2'
        >>> thread_env(1, 'Haswell')['OPENBLAS_CORETYPE']
        'Haswell'
    """
    env = dict(os.environ, CHAINER_TYPE_CHECK='0')
    for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        env[var] = str(threads)
    if blas_kernel:
        env['OPENBLAS_CORETYPE'] = blas_kernel
    return env


def _diverged(run_dir):
    """Whether the run's summary.json says it diverged."""
    try:
        with open(os.path.join(run_dir, 'summary.json')) as f:
            return json.load(f).get('status') == 'diverged'
    except (OSError, ValueError):
        return False


class _Pool(object):
    """The runs in flight of :func:`run_pool`, and what became of them."""

    def __init__(self, s, records, out, launch, log):
        self.s, self.records, self.out = s, records, out
        self.launch, self.log = launch, log
        self.active = {}      # proc -> (run, run_dir, log file, start time)
        self.signalled = set()   # the runs the signal was passed on to
        self.result = collections.OrderedDict()
        self.finished = 0
        self.total = 0

    def start(self, run):
        """Start ``run``'s train_cifar.py in its own session (so that a
        Ctrl-C reaches it once, through :meth:`pass_on`)."""
        launch = self.launch
        run_dir = os.path.join(self.out, run.folder)
        os.makedirs(run_dir, exist_ok=True)
        argv = [sys.executable, launch['train_script']] + command(
            run, self.out, launch['device'], launch['data_dir'])
        logf = None
        if launch['capture']:
            logf = open(os.path.join(run_dir, 'train.log'), 'ab')
            self.log('%s: started %s' % (run.schedule, run.key))
        else:   # its output follows ours
            self.log('%s: started %s: %s' % (run.schedule, run.key,
                                             ' '.join(argv[1:])))
            sys.stdout.flush()
        env = None if launch['threads'] is None else thread_env(
            launch['threads'], self.s.get(KERNEL_SETTING))
        proc = launch['popen'](argv, stdout=logf, stderr=logf and
                               subprocess.STDOUT, env=env,
                               start_new_session=True)
        self.active[proc] = (run, run_dir, logf, time.time())

    def pass_on(self, signum):
        """Pass a signal once to each running run; the handler itself
        touches nothing."""
        for proc in list(self.active):
            if proc not in self.signalled and proc.poll() is None:
                proc.send_signal(signum)
                self.signalled.add(proc)

    def reap(self):
        for proc in [p for p in self.active if p.poll() is not None]:
            run, run_dir, logf, started = self.active.pop(proc)
            if logf is not None:
                logf.close()
            self.finished += 1
            self._finished(run, run_dir, proc.returncode, proc in
                           self.signalled, time.time() - started)

    def _finished(self, run, run_dir, rc, signalled, seconds):
        count = '[%d/%d]' % (self.finished, self.total)
        if signalled or rc in EXIT_INTERRUPTED:
            self.result[run.key] = 'interrupted (exit %d)' % rc
            self.log('%s: %s interrupted (exit %d); the same command '
                     'resumes it' % (run.schedule, run.key, rc))
        elif rc == 0 or (rc == EXIT_DIVERGED and _diverged(run_dir)):
            # A diverged run is a result too (of its alpha_gs, say): its
            # record says so, and the tuning ranks it last.
            rec = record_run(self.records, run, self.s, run_dir)
            summ = rec['summary']
            self.result[run.key] = 'done' if rc == 0 else 'diverged'
            self.log('%s: %s %s %s in %.0f s: %s error %s, train '
                     'accuracy %s' % (run.schedule, count, run.key,
                                      self.result[run.key], seconds,
                                      summ.get('evaluated_on', 'test'),
                                      record.pct(summ.get('test_error')),
                                      record.pct(
                                          summ.get('train_accuracy'))))
        else:
            self.result[run.key] = 'failed (exit %d)' % rc
            self.log('%s: %s %s FAILED with exit status %d; see %s' % (
                run.schedule, count, run.key, rc,
                os.path.join(run_dir, 'train.log') if self.launch['capture']
                else 'its output above'))

    def close(self):
        for proc, (run, _, logf, _) in self.active.items():
            if proc.poll() is None:
                proc.terminate()
            if logf is not None:
                logf.close()

    def drop(self, todo, why):
        """Mark the runs not started yet, and start none of them."""
        for run in todo:
            self.result[run.key] = 'not started (%s)' % why
        del todo[:]

    def loop(self, todo, jobs, deadline, interrupt):
        """Start runs while fewer than ``jobs`` run, until all have ended."""
        fake = self.launch['popen'] is not subprocess.Popen
        while todo or self.active:
            if interrupt.signum is not None:
                self.drop(todo, 'interrupted')
                self.pass_on(interrupt.signum)
            while todo and len(self.active) < jobs:
                if deadline is not None and time.time() > deadline:
                    self.drop(todo, 'deadline')
                    break
                self.start(todo.pop(0))
            time.sleep(0.2 if fake else 2)
            self.reap()


def run_pool(runs, s, records, out, train_script, jobs=1, device=None,
             data_dir=None, deadline=None, log=print, popen=subprocess.Popen,
             need_predictions=False, threads=1, capture=True):
    """Run every run without a matching record, ``jobs`` at a time
    (``need_predictions``: as :func:`.records.status`).

    Each run trains in ``<out>/<run.folder>`` (resuming from its newest
    snapshot there) with ``threads`` BLAS threads (None: the environment
    as it is), its output in ``train.log`` there (``capture=False``: in
    ours); when it exits 0 its record, with the settings ``s``, is written
    to ``records``. No run starts after ``deadline`` (Unix time).

    On SIGINT or SIGTERM no run starts any more, the signal is passed on
    to the running ones, which snapshot and exit; once they have,
    :class:`~chainer_vfbn.runs.interrupt.Interrupted` is raised.

    Returns:
        dict: ``run.key -> 'done' | 'diverged' | 'skipped' |
        'failed (exit N)' | 'not started (deadline)'``.

    Raises:
        Interrupted: After a signal, once every started run has exited.
        ExperimentError: A record is of another run.
    """
    launch = dict(train_script=train_script, device=device,
                  data_dir=data_dir, popen=popen, threads=threads,
                  capture=capture)
    pool = _Pool(s, records, out, launch, log)
    todo = []
    for run in runs:
        if status(run, records, need_predictions) == 'done':
            pool.result[run.key] = 'skipped'
        else:
            todo.append(run)
    if pool.result:
        log('%s: %d run(s) already recorded, skipped'
            % (runs[0].schedule, len(pool.result)))
    pool.total = len(todo)
    with Interrupt() as interrupt:
        try:
            pool.loop(todo, jobs, deadline, interrupt)
        finally:
            pool.close()
    if interrupt.signum is not None:
        raise Interrupted(interrupt)
    return pool.result

"""Running runs as subprocesses of ``train_cifar.py``, ``jobs`` at a time.

A single runner is ``jobs=1``. Each run trains in its folder under the
output folder (resuming from its newest snapshot there); when it exits 0,
or diverges, its record is written (:mod:`.store`).

Many pools (processes, job-array tasks) may share one records folder:
each run is trained under its record's lock, and its record is looked at
again just before it starts, so that a run is trained once; a run another
process holds is left to it ("taken"). A finished run folder whose record
is missing is adopted as its record instead of being trained again. Each
``train_cifar.py`` runs in its own session (its own process group) and,
on Linux, gets SIGTERM when its parent dies (it snapshots and exits), so
that a killed pool leaves no run behind.
"""
import collections
import json
import os
import subprocess
import sys
import time

from chainer_vfbn.experiments.protocol.run import command
from chainer_vfbn.experiments.records.adoption import adopt
from chainer_vfbn.experiments.records.adoption import finished_folder
from chainer_vfbn.experiments.records.locks import lock_record
from chainer_vfbn.experiments.records.locks import locked_by
from chainer_vfbn.experiments.records.machines import KERNEL_SETTING
from chainer_vfbn.experiments.records.store import record_path
from chainer_vfbn.experiments.records.store import record_run
from chainer_vfbn.experiments.records.store import status
from chainer_vfbn.experiments.running.process import die_with_parent
from chainer_vfbn.experiments.running.process import thread_env
from chainer_vfbn.experiments.running.progress import Tracker
from chainer_vfbn.experiments.running.progress import left_to_train
from chainer_vfbn.experiments.running.progress import progress_text
from chainer_vfbn.runs import folder
from chainer_vfbn.runs import record
from chainer_vfbn.runs.config import EXIT_DIVERGED
from chainer_vfbn.runs.interrupt import Interrupt
from chainer_vfbn.runs.interrupt import Interrupted

# The exit statuses of a run that snapshotted at SIGINT or SIGTERM.
EXIT_INTERRUPTED = (130, 143)


#: How long a run waits for a training folder still locked by the
#: ``train_cifar.py`` of a killed pool (it snapshots on SIGTERM, then exits).
ORPHAN_WAIT_S = 120


def _diverged(run_dir):
    """Whether the run's summary.json says it diverged."""
    try:
        with open(os.path.join(run_dir, 'summary.json')) as f:
            return record.is_diverged(json.load(f))
    except (OSError, ValueError):
        return False


class _Active(object):
    """A running run: its process, folder, log file, lock and progress."""

    def __init__(self, run, run_dir, logf, lock, tracker):
        self.run, self.run_dir, self.logf = run, run_dir, logf
        self.lock, self.tracker = lock, tracker
        self.started = time.time()
        self.shown = None       # the progress last reported


class _Pool(object):
    """The runs in flight of :func:`run_pool`, and what became of them."""

    def __init__(self, s, records, out, launch, log, need_predictions,
                 progress_every):
        self.s, self.records, self.out = s, records, out
        self.launch, self.log = launch, log
        self.need_predictions = need_predictions
        self.progress_every = progress_every
        self.shown_at = 0.
        self.active = {}      # proc -> _Active
        self.signalled = set()   # the runs the signal was passed on to
        self.result = collections.OrderedDict()
        self.finished = 0
        self.total = 0

    def start(self, run):
        """Start ``run`` under its record's lock, unless another process
        holds it, its record was written meanwhile, or its folder holds it
        finished (adopted); in its own session (so that a Ctrl-C reaches it
        once, through :meth:`pass_on`), dying with us."""
        lock = lock_record(self.records, run, say=self.log)
        if lock is None:
            self.result[run.key] = 'taken'
            self.log('%s: %s is being trained by %s; moving on' % (
                run.schedule, run.key, locked_by(self.records, run)
                or 'another process'))
            return
        try:
            if self._settled(run):
                lock.release()
                return
            self._launch(run, lock)
        except BaseException:
            lock.release()
            raise

    def _settled(self, run):
        """Whether ``run`` needs no training after all: recorded meanwhile,
        adopted from its finished folder, or its folder held."""
        if status(run, self.records, self.need_predictions) == 'done':
            self.result[run.key] = 'skipped'
            self.log('%s: %s was recorded meanwhile by another process; '
                     'moving on' % (run.schedule, run.key))
            return True
        run_dir = os.path.join(self.out, run.folder)
        try:
            adopted = None if self.need_predictions else adopt(
                self.records, run, self.s, self.out)
        except OSError as e:
            if folder.disk_full(e) is None:
                raise
            self._record_not_written(run, run_dir, e)
            return True
        if adopted:
            self.result[run.key] = 'adopted'
            self.log('%s: %s: adopted the finished run in %s as its record'
                     % (run.schedule, run.key, adopted))
            return True
        if not self._folder_free(run, run_dir):
            self.result[run.key] = 'taken'
            return True
        return False

    def _folder_free(self, run, run_dir):
        """Wait (up to :data:`ORPHAN_WAIT_S`) while another process
        (the train_cifar.py of a killed pool, snapshotting) holds the
        training folder; whether it came free."""
        if not os.path.exists(os.path.join(run_dir, folder.LOCK_NAME)):
            return True
        fake = self.launch['popen'] is not subprocess.Popen
        waited = 0.
        while True:
            try:
                folder.lock(run_dir).close()
                return True
            except folder.Busy:
                pass
            if waited == 0.:
                self.log('%s: %s: waiting for the process that still holds '
                         '%s to exit' % (run.schedule, run.key, run_dir))
            if waited >= ORPHAN_WAIT_S:
                self.log('%s: %s: %s is still held by another process after '
                         '%d s; moving on' % (run.schedule, run.key, run_dir,
                                              ORPHAN_WAIT_S))
                return False
            time.sleep(0.1 if fake else 1)
            waited += 0.1 if fake else 1

    def _launch(self, run, lock):
        launch = self.launch
        run_dir = os.path.join(self.out, run.folder)
        os.makedirs(run_dir, exist_ok=True)
        argv = [sys.executable, launch['train_script']] + command(
            run, self.out, launch['device'], launch['data_dir'])
        snaps = folder.snapshots(run_dir)
        how = 'resumed (from %s)' % os.path.basename(snaps[0]) if snaps \
            else 'started'
        logf = None
        if launch['capture']:
            logf = open(os.path.join(run_dir, 'train.log'), 'ab')
            self.log('%s: %s %s; its log: %s' % (
                run.schedule, how, run.key,
                os.path.join(run_dir, 'train.log')))
        else:   # its output follows ours
            self.log('%s: %s %s: %s' % (run.schedule, how, run.key,
                                        ' '.join(argv[1:])))
            sys.stdout.flush()
        env = None if launch['threads'] is None else thread_env(
            launch['threads'], self.s.get(KERNEL_SETTING))
        tracker = Tracker(run_dir, run.args)
        proc = launch['popen'](argv, stdout=logf, stderr=logf and
                               subprocess.STDOUT, env=env,
                               start_new_session=True,
                               preexec_fn=die_with_parent())
        self.active[proc] = _Active(run, run_dir, logf, lock, tracker)

    def pass_on(self, signum):
        """Pass a signal once to each running run; the handler itself
        touches nothing."""
        for proc in list(self.active):
            if proc not in self.signalled and proc.poll() is None:
                proc.send_signal(signum)
                self.signalled.add(proc)

    def reap(self):
        for proc in [p for p in self.active if p.poll() is not None]:
            act = self.active.pop(proc)
            if act.logf is not None:
                act.logf.close()
            self.finished += 1
            try:
                self._finished(act.run, act.run_dir, proc.returncode,
                               proc in self.signalled,
                               time.time() - act.started)
            finally:
                act.lock.release()
        for act in self.active.values():
            act.lock.refresh()

    def show_progress(self):
        """One line: each running run's epoch of its total, the time left
        and its log; when one has moved, at most every
        ``progress_every`` seconds."""
        if not self.active or \
                time.time() - self.shown_at < self.progress_every:
            return
        parts, moved = [], False
        for act in self.active.values():
            state = act.tracker.state()
            moved = moved or (state is not None and state[0] != (
                act.shown or (None,))[0])
            act.shown = state
            parts.append('%s %s%s' % (
                act.run.key, progress_text(state),
                ' (%s)' % os.path.join(act.run_dir, 'train.log')
                if act.logf is not None else ''))
        if moved:
            self.shown_at = time.time()
            self.log('%s: running %s' % (
                next(iter(self.active.values())).run.schedule,
                '; '.join(parts)))

    def _record_not_written(self, run, run_dir, error):
        self.result[run.key] = 'failed (record not written: disk full)'
        self.log('%s: %s finished, but its record %s was not written: the '
                 'disk is full (%s); free some space and run the same '
                 'command: it adopts the finished run in %s' % (
                     run.schedule, run.key, record_path(self.records, run),
                     folder.disk_full(error), run_dir))

    def _finished(self, run, run_dir, rc, signalled, seconds):
        count = '[%d/%d]' % (self.finished, self.total)
        if signalled or rc in EXIT_INTERRUPTED:
            self.result[run.key] = 'interrupted (exit %d)' % rc
            self.log('%s: %s interrupted (exit %d); the same command '
                     'resumes it' % (run.schedule, run.key, rc))
        elif rc == 0 or (rc == EXIT_DIVERGED and _diverged(run_dir)):
            # A diverged run is a result too (of its alpha_gs, say): its
            # record says so, and the tuning ranks it last.
            if (finished_folder(run, self.out) or (None, None))[1] != 'ours':
                # e.g. a rung's folder that a later rung already continued
                self.result[run.key] = 'failed (its folder holds another run)'
                self.log('%s: %s %s exited %d, but %s does not hold it '
                         'finished (its summary.json or args.json is of '
                         'another run); no record written' % (
                             run.schedule, count, run.key, rc, run_dir))
                return
            try:
                rec = record_run(self.records, run, self.s, run_dir)
            except OSError as e:
                if folder.disk_full(e) is None:
                    raise
                self._record_not_written(run, run_dir, e)
                return
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
        for proc, act in self.active.items():
            if proc.poll() is None:
                proc.terminate()
            if act.logf is not None:
                act.logf.close()
            act.lock.release()

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
            self.show_progress()


def run_pool(runs, s, records, out, train_script, jobs=1, device=None,
             data_dir=None, deadline=None, log=print, popen=subprocess.Popen,
             need_predictions=False, threads=1, capture=True,
             progress_every=30., longest_first=False):
    """Run every run without a matching record, ``jobs`` at a time
    (``need_predictions``: as :func:`.store.status`).

    Each run trains in ``<out>/<run.folder>`` (resuming from its newest
    snapshot there: "resumed", not "started") with ``threads`` BLAS
    threads (None: the environment as it is), its output in ``train.log``
    there (``capture=False``: in ours); when it exits 0 its record, with
    the settings ``s``, is written to ``records``. No run starts after
    ``deadline`` (Unix time). While runs train, a line says each one's
    epoch, total and time left, at most every ``progress_every`` seconds.
    ``longest_first``: the runs with the most left to train start first
    (:func:`.progress.left_to_train`; ties keep their order), so that
    ``jobs`` slots, or processes that share ``records``, end together: a
    halving rung's continued runs have half as far to go as its new seeds.

    A run is trained under its record's lock, after a last look at its
    record; a run that another process holds is ``'taken'``, one recorded
    meanwhile ``'skipped'``, one whose folder holds it finished
    ``'adopted'`` (:func:`.adoption.adopt`). A record that a full disk
    stopped is one line, and the same command adopts the run later.

    On SIGINT or SIGTERM no run starts any more, the signal is passed on
    to the running ones, which snapshot and exit; once they have,
    :class:`~chainer_vfbn.runs.interrupt.Interrupted` is raised.

    Returns:
        dict: ``run.key -> 'done' | 'diverged' | 'skipped' | 'adopted' |
        'taken' | 'failed (exit N)' | 'failed (record not written: disk
        full)' | 'not started (deadline)'``.

    Raises:
        Interrupted: After a signal, once every started run has exited.
        ExperimentError: A record is of another run.
    """
    launch = dict(train_script=train_script, device=device,
                  data_dir=data_dir, popen=popen, threads=threads,
                  capture=capture)
    pool = _Pool(s, records, out, launch, log, need_predictions,
                 progress_every)
    todo = []
    for run in runs:
        if status(run, records, need_predictions) == 'done':
            pool.result[run.key] = 'skipped'
        else:
            todo.append(run)
    if pool.result:
        log('%s: %d run(s) already recorded, skipped'
            % (runs[0].schedule, len(pool.result)))
    if longest_first:
        todo.sort(key=lambda run: -(left_to_train(
            os.path.join(out, run.folder), run.args) or 0))
    pool.total = len(todo)
    with Interrupt() as interrupt:
        try:
            pool.loop(todo, jobs, deadline, interrupt)
        finally:
            pool.close()
    if interrupt.signum is not None:
        raise Interrupted(interrupt)
    return pool.result

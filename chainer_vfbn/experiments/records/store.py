"""A run's record: its identity (``config``) and what it produced.

Each finished run leaves a small JSON record (its configuration, the code
version, its summary, its curve and its per-image predictions) at
``<records>/<run folder>.json``. A run whose record exists with the same
configuration is done; a record with another configuration is refused,
never mixed in. The committed records of ``docs/results/`` are in this
format.

Many processes (the tasks of a job array) may share one records folder:
a run is trained under its record's lock (:func:`lock_record`), and a
finished run folder whose record was lost (deleted, damaged, or never
written: a full disk, a killed parent) is adopted as its record
(:func:`finished_folder`) instead of being trained again.
"""
import collections
import datetime
import json
import os

from chainer_vfbn.runs import folder as run_folder
from chainer_vfbn.runs import provenance
from chainer_vfbn.runs import strict_json
from chainer_vfbn.runs.provenance import differences
from chainer_vfbn.runs.evaluation import PREDICTIONS_FILE
from chainer_vfbn.runs.evaluation import record_keys
from chainer_vfbn.experiments import ExperimentError


def record_path(records, run):
    """Where ``run``'s record is: its ``record`` path (by default its
    folder's) under ``records``.

    Example:
        >>> from chainer_vfbn.experiments.plan import Run
        >>> record_path('rec', Run('tune', 'x', 'bp', 0, []))
        'rec/tune/x.json'
    """
    return os.path.join(records, run.record + '.json')


def read_record(path):
    """The record at ``path``, or None if there is none."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ExperimentError(
            'the record %s is damaged (%s): delete it (or restore it from '
            'git) and run the same command again; a finished run folder of '
            'its run is then adopted as its record, or else the run trains '
            'again' % (path, ' '.join(str(e).split())))


def _jsonable(obj):
    return json.loads(json.dumps(obj))


def mismatch(run, record):
    """Why ``record`` is of another run than ``run``, or None."""
    recorded = record.get('config') or {}
    diff = differences(recorded, _jsonable(run.config()))
    if not diff:
        return None
    if 'protocol' in diff:
        return 'it was made by --schedule %s' % recorded.get('protocol')
    return 'it was made with another configuration (differs in %s)' % (
        ', '.join(diff[:6]))


def status(run, records, need_predictions=False):
    """``'done'`` (a matching record) or ``'todo'``; refuses a mismatch.

    With ``need_predictions``, a matching record without per-image
    predictions (made before 2026-12-03) is ``'todo'`` too: the new run's
    record replaces it (the old one stays in the repository's history).

    Raises:
        ExperimentError: The record is of another run (one line).
    """
    path = record_path(records, run)
    rec = read_record(path)
    if rec is None:
        return 'todo'
    why = mismatch(run, rec)
    if why:
        raise ExperimentError(
            '%s: the record %s is of another run: %s; move it away or use '
            'another --out (mini: --records)' % (run.key, path, why))
    if need_predictions and not rec.get('predictions'):
        return 'todo'
    return 'done'


def records_of(runs, records):
    """``[(run, record)]`` of the runs that are done."""
    return [(run, read_record(record_path(records, run))) for run in runs
            if status(run, records) == 'done']


# A record's curve keeps its key names: a run's log now names its
# evaluation figures test/main/... or val/main/..., which the record stores
# under the names it always had, validation/main/... (the record format is
# stable; evaluation.record_keys).
CURVE_KEYS = ('epoch', 'iteration', 'main/loss', 'main/accuracy',
              'validation/main/error', 'validation/main/tta_error',
              'elapsed_time')


def _curve(log):
    keep = []
    for entry in log or []:
        entry = record_keys(entry)
        keep.append({k: v for k, v in entry.items()
                     if k in CURVE_KEYS or k.endswith(('/cos', '/relerr',
                                                       '/norm_ratio'))})
    return keep


_REQUIRED = object()


def make_record(run, s, run_dir):
    """The small JSON record of a finished run, from its folder.

    Args:
        run (Run): The run.
        s (dict): The schedule's settings, kept in the record.
        run_dir (str): Its training folder (``summary.json``,
            ``args.json``, ``log`` and the predictions).

    Raises:
        ExperimentError: Its ``args.json`` or ``summary.json`` is missing
            or damaged (one line).
    """
    def load(name, missing=_REQUIRED):
        path = os.path.join(run_dir, name)
        if missing is not _REQUIRED and not os.path.exists(path):
            return missing      # e.g. a run that diverged before its log
        with open(path) as f:
            return json.load(f)
    try:
        args, summary = (provenance.read_args(run_dir),
                         provenance.read_summary(run_dir))
    except provenance.Unreadable as e:
        raise ExperimentError('%s: %s' % (run.key, e))
    if args is None or summary is None:
        raise ExperimentError('%s: %s has no %s' % (
            run.key, run_dir, provenance.ARGS_FILE if args is None
            else provenance.SUMMARY_FILE))
    return collections.OrderedDict([
        ('config', run.config()),
        ('settings', _jsonable(s)),
        ('choice', list(run.choice) if run.choice else None),
        ('summary', summary),
        ('curve', _curve(load('log', missing=[]))),
        # Per-image predictions of the last evaluation, for paired tests
        # (None: a run that diverged before it, or a record made before
        # 2026-12-03).
        ('predictions', load(PREDICTIONS_FILE, missing=None)),
        # The first session's code (the run's own, as it always was), and
        # since 2026-12-06 every session's, with a modified checkout's
        # diff hash (the diff is in <records>/diffs/).
        ('code_version', args.get('code_version')),
        ('code_versions', args.get('code_versions')),
        ('environment', args.get('environment')),
        ('command', args.get('command')),
        ('finished', datetime.datetime.now().astimezone().isoformat(
            timespec='seconds')),
    ])


def write_record(records, run, record):
    """Write ``record`` where :func:`record_path` says, in the committed
    records' layout (:data:`strict_json.RECORD`)."""
    strict_json.write_json(record_path(records, run), record,
                           **strict_json.RECORD)


def record_run(records, run, s, run_dir):
    """Record the finished ``run`` of ``run_dir`` in ``records``
    (:func:`make_record`, :func:`write_record`), with the diffs of the
    modified checkouts it ran from in ``<records>/diffs/``.

    Returns:
        dict: The record.
    """
    record = make_record(run, s, run_dir)
    for session in record['code_versions'] or []:
        sha = session.get('diff_sha256')
        kept = sha and os.path.join(run_dir, provenance.DIFFS, sha + '.diff')
        if kept and os.path.isfile(kept):
            with open(kept, 'rb') as f:
                provenance.save_diff(records, f.read())
    write_record(records, run, record)
    return record


def lock_path(records, run):
    """The lock file of ``run``'s record, beside it.

    Example:
        >>> from chainer_vfbn.experiments.plan import Run
        >>> lock_path('rec', Run('tune', 'x', 'bp', 0, []))
        'rec/tune/x.json.lock'
    """
    return record_path(records, run) + '.lock'


def lock_record(records, run, say=print):
    """Lock ``run``'s record while it trains
    (:func:`~chainer_vfbn.runs.folder.claim_file`: a stale lock of a dead
    process is taken over, with a line to ``say``).

    Returns:
        ~chainer_vfbn.runs.folder.LockFile or None: None while another
        live process holds it (:func:`locked_by` says who).
    """
    return run_folder.claim_file(lock_path(records, run), say=say)


def locked_by(records, run):
    """Who holds ``run``'s record lock, or None."""
    return run_folder.read_lock(lock_path(records, run))


def planned_length(args):
    """``(unit, total)`` of a run's arguments: ``('iteration', N)`` for
    ``--iterations N``, ``('epoch', E)`` for ``--epoch E``, else None.

    Example:
        >>> planned_length(['--epoch', '24', '--seed', '0'])
        ('epoch', 24)
    """
    for unit, flag in (('iteration', '--iterations'), ('epoch', '--epoch')):
        if flag in args:
            return unit, int(args[args.index(flag) + 1])
    return None


def _readable(read, folder):
    """``read(folder)`` (a :mod:`~chainer_vfbn.runs.provenance` reader),
    or None where the file is missing or damaged."""
    try:
        return read(folder)
    except provenance.Unreadable:
        return None


def _legacy_row(folder):
    try:
        with open(os.path.join(folder, LEGACY_ROW_RECORD)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _same_arguments(run, args_json, legacy):
    """Whether a run folder's ``args.json`` (its ``command``: the run's
    arguments come first, then ``--out``, the place options after) or an
    older reproduce.py's row file names ``run``'s arguments."""
    if legacy is not None and legacy == {'schedule': run.schedule,
                                         'args': run.args}:
        return True
    command = (args_json or {}).get('command')
    if not isinstance(command, str) or ' ' not in command:
        return False
    return (command.split(' ', 1)[1] + ' ').startswith(
        ' '.join(run.args + ['--out']) + ' ')


def _whole_length(run, summary):
    """Whether ``summary`` is of a run that went the whole planned length
    (or diverged: a result too)."""
    state = summary.get('status', 'finished')
    if state == 'diverged':
        return True
    if state != 'finished':
        return False
    length = planned_length(run.args)
    if length is None:
        return True
    unit, total = length
    try:
        if unit == 'iteration':
            return summary.get('iterations') == total
        # an epoch's last batch may end past the epoch's boundary
        return 0 <= float(summary.get('epochs')) - total < 1
    except (TypeError, ValueError):
        return False


#: What an older reproduce.py wrote into a Table 1 row's folder before the
#: rows had records (until 2026-12-04): ``{'schedule', 'args'}``, the same
#: identity as a record's ``protocol`` and ``train_args``.
LEGACY_ROW_RECORD = 'reproduce-row.json'


def finished_folder(run, out):
    """The training folder of ``run`` under ``out`` if it holds this run,
    finished, whatever became of its record: its ``summary.json`` is of a
    run that went the planned length (or diverged), and its ``args.json``
    (or :data:`LEGACY_ROW_RECORD`) names ``run``'s arguments.

    Returns:
        tuple or None: ``(folder, 'ours' | 'another run')`` where a
        ``summary.json`` is found (``'another run'``: other arguments, or
        none readable, made it), else None.
    """
    path = os.path.join(out, run.folder)
    summary = _readable(provenance.read_summary, path)
    if summary is None:
        return None
    ours = _same_arguments(run, _readable(provenance.read_args, path),
                           _legacy_row(path))
    if not ours:
        return path, 'another run'
    return (path, 'ours') if _whole_length(run, summary) else None


def adopt(records, run, s, out):
    """Record ``run`` from its finished training folder
    (:func:`finished_folder`, :func:`record_run`), if there is one; the
    folder, or None."""
    found = finished_folder(run, out)
    if found is None or found[1] != 'ours':
        return None
    record_run(records, run, s, found[0])
    return found[0]


#: The schedule setting that pins OpenBLAS's kernel for every run
#: (``OPENBLAS_CORETYPE``; the mini schedule's, since 2026-12-06). A record
#: whose settings carry it ran under the pin; the records made before it
#: (Evidence II, which mixed two kernels) carry none.
KERNEL_SETTING = 'blas_kernel'


def machine_of(record):
    """The machine a record's run ran on (its ``environment.machine``:
    CPU, BLAS library and kernel, and, since 2026-12-04, the CPU's family
    and model), or None where the record names none (before 2026-12-03).
    Where the record's settings pin the BLAS kernel
    (:data:`KERNEL_SETTING`), the pin is added as ``pinned_kernel``."""
    record = record or {}
    machine = (record.get('environment') or {}).get('machine') or None
    pin = (record.get('settings') or {}).get(KERNEL_SETTING)
    if machine and pin:
        machine = dict(machine, pinned_kernel=pin)
    return machine


def machine_label(machine):
    """A short name of a machine kind, for reports.

    Example:
        >>> machine_label({'cpu': 'AMD EPYC', 'blas': [
        ...     {'internal_api': 'openblas', 'architecture': 'Haswell'}]})
        'AMD EPYC, openblas Haswell'
    """
    if not machine:
        return 'not recorded'
    return ', '.join([str(machine.get('cpu'))]
                     + ([machine['cpu_id']] if machine.get('cpu_id') else [])
                     + [provenance.kernel_label(machine)])


def same_kind(a, b):
    """Whether two machines are one kind, as the reports' machines table
    tells them apart: the same CPU model and BLAS library and kernel, and
    the same CPU family and model where both name them. False where either
    is None.

    Example:
        >>> m = {'cpu': 'AMD EPYC', 'blas': [{'architecture': 'Haswell'}]}
        >>> same_kind(m, dict(m, cpu='Intel Xeon'))
        False
    """
    if not a or not b:
        return False
    if a.get('cpu_id') and b.get('cpu_id') and a['cpu_id'] != b['cpu_id']:
        return False
    return a.get('cpu') == b.get('cpu') and a.get('blas') == b.get('blas')


def same_machine(a, b):
    """Whether two runs do the same arithmetic, so that a seed pairs them
    fully: for two runs under the BLAS kernel pin (``pinned_kernel``,
    :func:`machine_of`), the same BLAS library, version and kernel,
    whatever the CPU; otherwise the cautious :func:`same_kind`. False where
    either names no machine.

    The BLAS kernel decides: runs on an AMD EPYC and an Intel Xeon, both
    with OpenBLAS's SkylakeX kernel, repeated each other bit for bit, while
    one CPU model with the Haswell and the SkylakeX kernels did not
    (docs/RESULTS.md, "Machines"). The records made before the pin keep
    the cautious test, under which their reports were written.

    Example:
        >>> m = {'cpu': 'AMD EPYC', 'blas': [{'architecture': 'Haswell'}],
        ...      'pinned_kernel': 'Haswell'}
        >>> same_machine(m, dict(m, cpu='Intel Xeon'))
        True
        >>> same_machine(m, dict(m, blas=[{'architecture': 'SkylakeX'}]))
        False
    """
    if not a or not b:
        return False
    if a.get('pinned_kernel') and b.get('pinned_kernel'):
        return a.get('blas') == b.get('blas')
    return same_kind(a, b)


def _kernel(machine):
    """A machine's BLAS libraries, versions and kernels, as one label."""
    blas = (machine or {}).get('blas')
    if not machine:
        return 'not recorded'
    if not isinstance(blas, list):
        return str(blas)
    return ', '.join('%s %s %s' % (b.get('internal_api'),
                                   b.get('architecture'), b.get('version'))
                     for b in blas)


def check_one_kernel(table):
    """Refuse a table that would pair records of two BLAS kernels, once
    any of its records ran under the kernel pin (:func:`machine_of`).
    Tables of records made before the pin are left as they were written.

    Args:
        table (list): Rows with ``row`` and ``machines`` (``{seed:
            machine_of(record)}``), as :func:`.summary.summarize` gives.

    Raises:
        ExperimentError: One line: the kernels, with the runs of all but
        the most common one.
    """
    runs = [(r['row'], seed, m) for r in table
            for seed, m in sorted((r.get('machines') or {}).items())]
    if not any(m and m.get('pinned_kernel') for _, _, m in runs):
        return
    by_kernel = collections.OrderedDict()
    for row, seed, m in runs:
        by_kernel.setdefault(_kernel(m), []).append('%s seed %s' % (row,
                                                                     seed))
    if len(by_kernel) < 2:
        return
    kernels = sorted(by_kernel.items(), key=lambda kv: -len(kv[1]))
    raise ExperimentError(
        'the table would pair records of %d BLAS kernels: %s; a table '
        'compares the runs of one kernel: run those again under the '
        "schedule's %s, or move their records away" % (
            len(kernels), '; '.join(
                '%d on %s%s' % (len(names), kernel, '' if i == 0 else ' (%s)'
                                % ', '.join(names[:6] + ['...'] * (
                                    len(names) > 6)))
                for i, (kernel, names) in enumerate(kernels)),
            KERNEL_SETTING))

"""A run's record: its identity (``config``) and what it produced.

Each finished run leaves a small JSON record (its configuration, the code
version, its summary, its curve and its per-image predictions) at
``<records>/<run folder>.json``. A run whose record exists with the same
configuration is done; a record with another configuration is refused,
never mixed in. The committed records of ``docs/results/`` are in this
format.
"""
import collections
import datetime
import json
import os

from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.runs import provenance
from chainer_vfbn.runs import strict_json
from chainer_vfbn.runs.evaluation import PREDICTIONS_FILE
from chainer_vfbn.runs.evaluation import record_keys
from chainer_vfbn.runs.provenance import differences


def record_path(records, run):
    """Where ``run``'s record is: its ``record`` path (by default its
    folder's) under ``records``.

    Example:
        >>> from chainer_vfbn.experiments.protocol.run import Run
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

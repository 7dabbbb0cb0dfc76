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

from chainer_vfbn.runs import strict_json
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
        raise ExperimentError('unreadable record %s: %s' % (path, e))


def config_differences(a, b, prefix=''):
    """Names of the entries that differ between two configurations.

    Example:
        >>> config_differences({'a': 1, 'b': {'c': 2}}, {'a': 1, 'b': {}})
        ['b.c']
    """
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += config_differences(a.get(k), b.get(k),
                                      prefix + str(k) + '.')
        return out
    return [] if a == b else [prefix.rstrip('.')]


def _jsonable(obj):
    return json.loads(json.dumps(obj))


def mismatch(run, record):
    """Why ``record`` is of another run than ``run``, or None."""
    recorded = record.get('config') or {}
    diff = config_differences(recorded, _jsonable(run.config()))
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
    """
    def load(name, missing=_REQUIRED):
        path = os.path.join(run_dir, name)
        if missing is not _REQUIRED and not os.path.exists(path):
            return missing      # e.g. a run that diverged before its log
        with open(path) as f:
            return json.load(f)
    args = load('args.json')
    return collections.OrderedDict([
        ('config', run.config()),
        ('settings', _jsonable(s)),
        ('choice', list(run.choice) if run.choice else None),
        ('summary', load('summary.json')),
        ('curve', _curve(load('log', missing=[]))),
        # Per-image predictions of the last evaluation, for paired tests
        # (None: a run that diverged before it, or a record made before
        # 2026-12-03).
        ('predictions', load(PREDICTIONS_FILE, missing=None)),
        ('code_version', args.get('code_version')),
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


def machine_of(record):
    """The machine a record's run ran on (its ``environment.machine``:
    CPU, BLAS library and kernel, and, since 2026-12-04, the CPU's family
    and model), or None where the record names none (before 2026-12-03)."""
    return ((record or {}).get('environment') or {}).get('machine') or None


def machine_label(machine):
    """A short name of a machine kind, for reports.

    Example:
        >>> machine_label({'cpu': 'AMD EPYC', 'blas': [
        ...     {'internal_api': 'openblas', 'architecture': 'Haswell'}]})
        'AMD EPYC, openblas Haswell'
    """
    if not machine:
        return 'not recorded'
    blas = machine.get('blas')
    kernels = (['%s %s' % (b.get('internal_api'), b.get('architecture'))
                for b in blas] if isinstance(blas, list) else [str(blas)])
    return ', '.join([str(machine.get('cpu'))]
                     + ([machine['cpu_id']] if machine.get('cpu_id') else [])
                     + kernels)


def same_machine(a, b):
    """Whether two runs ran on the same kind of machine, and so would
    repeat each other bit for bit: the same CPU model and BLAS kernels,
    and the same CPU family and model where both records name them. False
    where either names no machine.

    This is the cautious test. What has been seen to change the numbers is
    the BLAS kernel: runs on an AMD EPYC and an Intel Xeon, both with
    OpenBLAS's SkylakeX kernel, repeated each other bit for bit, while one
    CPU model with the Haswell and the SkylakeX kernels did not
    (docs/RESULTS.md, "Machines"). The CPU is kept in the test because
    NumPy's own SIMD code also depends on it.

    Example:
        >>> m = {'cpu': 'AMD EPYC', 'blas': [{'architecture': 'Haswell'}]}
        >>> same_machine(m, dict(m, blas=[{'architecture': 'SkylakeX'}]))
        False
    """
    if not a or not b:
        return False
    if a.get('cpu_id') and b.get('cpu_id') and a['cpu_id'] != b['cpu_id']:
        return False
    return a.get('cpu') == b.get('cpu') and a.get('blas') == b.get('blas')

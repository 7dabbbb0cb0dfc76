"""A record's lock: many processes (the tasks of a job array) may share one
records folder, and a run is trained under its record's lock, so that it
is trained once."""
from chainer_vfbn.experiments.records.store import record_path
from chainer_vfbn.runs import folder as run_folder


def lock_path(records, run):
    """The lock file of ``run``'s record, beside it.

    Example:
        >>> from chainer_vfbn.experiments.protocol.run import Run
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

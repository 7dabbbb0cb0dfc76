"""Adopting a finished run folder as its record.

A finished run folder whose record was lost (deleted, damaged, or never
written: a full disk, a killed parent) is adopted as its record
(:func:`adopt`) instead of being trained again, once its ``args.json``
names the run's arguments and its ``summary.json`` the planned length
(:func:`finished_folder`).
"""
import json
import os

from chainer_vfbn.experiments.records.store import record_run
from chainer_vfbn.runs import provenance
from chainer_vfbn.runs.command_line import flag
from chainer_vfbn.runs.record import is_diverged


def planned_length(args):
    """``(unit, total)`` of a run's arguments: ``('iteration', N)`` for
    ``--iterations N``, ``('epoch', E)`` for ``--epoch E``, else None (the
    flags are the parser's, :func:`~chainer_vfbn.runs.command_line.flag`).

    As the parser reads them: a flag given twice counts its last value,
    ``--flag=value`` counts, and ``--iterations`` wins over ``--epoch``.

    Example:
        >>> planned_length(['--epoch', '24', '--seed', '0'])
        ('epoch', 24)
        >>> planned_length(['--epoch', '24', '--epoch=6'])
        ('epoch', 6)
    """
    for unit, dest in (('iteration', 'iterations'), ('epoch', 'epoch')):
        name, value = flag(dest), None
        for i, arg in enumerate(args):
            if arg == name and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(name + '='):
                value = arg[len(name) + 1:]
        if value is not None:
            return unit, int(value)
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
    if is_diverged(summary):
        return True
    if summary.get('status', 'finished') != 'finished':
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

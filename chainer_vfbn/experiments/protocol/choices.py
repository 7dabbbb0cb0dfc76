"""What the mini schedule's records choose: each tuned row's ``alpha_gs``,
the pilot's cut; the protocol a records folder holds; and the length check
of its epochs."""
import glob
import json
import os

from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.experiments.protocol.plan import plan
from chainer_vfbn.experiments.protocol.plan import run_error
from chainer_vfbn.experiments.protocol.plan import rung_candidates
from chainer_vfbn.experiments.protocol.plan import rung_run
from chainer_vfbn.experiments.protocol.schedules import PROTOCOLS
from chainer_vfbn.experiments.protocol.schedules import halving
from chainer_vfbn.experiments.protocol.schedules import tuned_rows
from chainer_vfbn.experiments.protocol.schedules import tuning_grid
from chainer_vfbn.experiments.records.store import records_of
from chainer_vfbn.experiments.statistics import comparisons


def protocol_of(records):
    """The protocol of the mini records in a folder: the ``protocol`` of
    their settings (Evidence II's records name none: ``evidence2``), or
    None for a folder without records. A folder whose records name two
    protocols is refused in one line.

    Example:
        >>> protocol_of('/nonexistent') is None
        True
    """
    found = set()
    for path in glob.glob(os.path.join(records, '*', '*.json')):
        try:
            with open(path) as f:
                rec = json.load(f)
        except (OSError, ValueError):
            continue            # reported where the record is read
        if isinstance(rec, dict) and isinstance(rec.get('settings'), dict):
            found.add(rec['settings'].get('protocol', 'evidence2'))
    if len(found) > 1:
        raise ExperimentError('%s holds the records of several protocols '
                              '(%s); keep one per folder'
                              % (records, ', '.join(sorted(found))))
    protocol = found.pop() if found else None
    if protocol is not None and protocol not in PROTOCOLS:
        raise ExperimentError('%s holds records of an unknown protocol %r'
                              % (records, protocol))
    return protocol


def halving_results(row, s, records):
    """The last rung of a row's successive halving: per candidate (best
    of the rung before first), its ``choice``, its validation ``errors``
    per seed (None: no record yet) and their ``mean``."""
    rung = len(s['rungs']) - 1
    out = []
    for choice in rung_candidates(row, s, records, rung) or ():
        errors = {seed: run_error(rung_run(s, row, choice, seed, rung),
                                  records) for seed in s['last_rung_seeds']}
        mean = (None if None in errors.values()
                else sum(errors.values()) / len(errors))
        out.append(dict(choice=choice, errors=errors, mean=mean))
    return out


def _halving_choice(row, s, records):
    """The last rung's candidate with the lowest mean validation error
    over ``last_rung_seeds`` (ties: the better of the rung before), or
    None while a run of the last rung has no record."""
    results = halving_results(row, s, records)
    if not results or any(r['mean'] is None for r in results):
        return None
    return min(enumerate(results),
               key=lambda ir: (ir[1]['mean'], ir[0]))[1]['choice']


def tuning_choice(row, s, records):
    """``(alpha_gs, target_scale)`` that the row's tuning chose, or None
    while it is not complete. Evidence II: the grid point with the lowest
    validation error. Evidence III: :func:`_halving_choice`."""
    if halving(s):
        return _halving_choice(row, s, records)
    best = None
    for alpha, scale in tuning_grid(row, s):
        run = [r for r in plan('tune', s, rows=[row])
               if r.choice == (alpha, scale)][0]
        err = run_error(run, records)
        if err is None:
            return None
        if best is None or err < best[0]:
            best = (err, alpha, scale)
    return None if best is None else (best[1], best[2])


def chosen_settings(s, records):
    """``row -> (alpha_gs, target_scale)`` of every tuned row whose grid
    is complete."""
    out = {}
    for row in tuned_rows(s):
        c = tuning_choice(row, s, records)
        if c is not None:
            out[row] = c
    return out


#: The pilot's rule for the cut: the deepest candidate where the bottom half
#: alone errs at least PILOT_GAP points more than BP on the validation split
#: (centre view), with an exact McNemar p below PILOT_P (Evidence II).
PILOT_GAP = 5.
PILOT_P = 0.01


def pct_of(x):
    """A fraction in percent; None stays None."""
    return None if x is None else 100. * x


def pilot(s, records):
    """The pilot's runs and the cut its rule chooses.

    Returns:
        dict or None: ``bp`` (BP's validation error, %, centre and TTA),
        ``cuts`` (per candidate, deepest first: its ``error`` and its
        paired ``gap`` to BP, :func:`comparisons.compare_rows`, per view;
        None while it has no record) and ``chosen`` (the cut, or None while
        a candidate has no record or if none meets the rule). None at a cut
        other than the default, or before BP's pilot run has a record.
    """
    done = {run.name: rec for run, rec in
            records_of(plan('pilot', s), records)}
    if 'bp' not in done:
        return None

    def as_row(name):
        rec = done[name]
        return dict(row=name, predictions={0: rec.get('predictions')},
                    error={'centre': pct_of(rec['summary']['test_error']),
                           'tta': pct_of(rec['summary']['tta_error'])})
    bp = as_row('bp')
    cuts, chosen, complete = [], None, True
    for cut in s['pilot_cuts']:
        if 'bottom-bp_' + cut not in done:
            cuts.append(dict(cut=cut, error=None, gap=None))
            complete = False
            continue
        bottom = as_row('bottom-bp_' + cut)
        gap = {view: comparisons.compare_rows(bottom, bp, view)
               for view in comparisons.VIEWS}
        cuts.append(dict(cut=cut, error=bottom['error'], gap=gap))
        centre = gap['centre']
        if chosen is None and centre is not None and \
                centre['diff'] >= PILOT_GAP and centre['p'] < PILOT_P:
            chosen = cut
    return dict(bp=bp['error'], cuts=cuts, chosen=chosen if complete
                else None, complete=complete)


def length_check(s, records):
    """The BP validation curve and the gain over its last fifth (points)."""
    done = records_of(plan('length', s), records)
    if not done:
        return None
    curve = done[0][1]['curve']
    pts = [(e['epoch'], e['validation/main/error']) for e in curve
           if e.get('validation/main/error') is not None]
    epochs = s['epochs']
    cut = epochs - epochs / 5.
    before = [err for ep, err in pts if ep <= cut]
    gain = None
    if before:
        gain = 100. * (before[-1] - pts[-1][1])
    return dict(curve=pts, gain_last_fifth_points=gain,
                train_accuracy=done[0][1]['summary'].get('train_accuracy'))

"""What a run records: ``args.json``, ``summary.json`` and its one-line
figures.

Both runners write the same records through these functions, so that the
two runs of one configuration record the same things; what identifies the
code and the machine is :mod:`chainer_vfbn.runs.provenance`'s.
"""
import os
import sys

from chainer_vfbn.runs import evaluation
from chainer_vfbn.runs import provenance
from chainer_vfbn import split_step
# The runners' JSON writer (args.json, summary.json, predictions).
from chainer_vfbn.runs.strict_json import write_json  # NOQA


def summary_dict(config, log, split_at, description, device, epochs,
                 iterations, wall, images, diverged=None, data_sha256=None):
    """The run's summary.json contents, from its log (newest value per key).

    ``config`` is the run's :class:`~chainer_vfbn.runs.config.RunConfig`,
    ``split_at`` where the network was cut (``Method.split_at``);
    ``images`` is how many training images ``wall`` seconds covered;
    ``diverged`` is :func:`diverged_record`'s, for a run stopped by it;
    ``data_sha256`` the data set's content hash (``setup_data``'s).
    ``test_error`` and ``tta_error`` are those of the evaluation set
    (``evaluated_on``: the test set, or a validation split).
    """
    last = {}
    for entry in log:
        last.update(entry)
    # The figures of the first split's synthesizer.
    first = split_step.synth_name(0, len(split_at)) + '/'
    synth = {value: last.get(first + value)
             for value in ('cos', 'relerr', 'norm_ratio')}
    summary = {
        'method': config.method, 'arch': config.arch, 'dataset': description,
        'data_sha256': data_sha256,
        'alpha_gs': config.alpha_gs, 'split_at': split_at,
        'epochs': epochs, 'iterations': iterations,
        'test_error': evaluation.eval_value(last, 'error'),
        'tta_error': evaluation.eval_value(last, 'tta_error'),
        'train_loss': last.get('main/loss'),
        'wall_time_s': wall,
        'images_per_sec': (images / wall) if wall else None,
        'synth_cos': synth['cos'], 'synth_relerr': synth['relerr'],
        'synth_norm_ratio': synth['norm_ratio'],
        'train_accuracy': last.get('main/accuracy'),
        'evaluated_on': 'validation' if config.validation_split else 'test',
        'device': str(device),
        'status': 'diverged' if diverged else 'finished',
        'diverged': diverged,
    }
    # The code that made it, as args.json names it (this run's sessions).
    try:
        written = provenance.read_args(config.out) or {}
    except provenance.Unreadable:
        written = {}
    summary['code_version'] = written.get('code_version')
    summary['code_versions'] = written.get('code_versions')
    if not config.synthetic:
        del summary['alpha_gs']
    return summary


def is_diverged(summary):
    """Whether a run's summary (its summary.json, or a record's
    ``summary``) says that the run diverged.

    Example:
        >>> is_diverged({'status': 'diverged', 'test_error': 0.897})
        True
        >>> is_diverged({'status': 'finished'}), is_diverged({})
        (False, False)
    """
    return summary.get('status') == 'diverged'


def diverged_record(error, last_snapshot):
    """What summary.json says of a run that diverged, and its one line."""
    record = {'what': error.what, 'iteration': error.iteration,
              'last_snapshot': last_snapshot}
    line = ('diverged: %s; last good snapshot: %s' %
            (error, last_snapshot or 'none (no snapshot was taken before)'))
    return record, line


def run_record(config, device, description, augment, split_at,
               resumed=False, **extra):
    """``args.json``: the options (``config.options``), code, environment
    and device; ``split_at`` where the network was cut.

    The code is every session's (``code_versions``,
    :func:`~chainer_vfbn.runs.provenance.code_history`), with the run's
    ``code_version`` the first session's, as it always was; a session
    ``resumed`` on other code than the last says so in one line. A
    modified checkout's diff is kept in ``<out>/diffs/``.
    """
    state = provenance.code_state(keep_diff_in=config.out)
    try:
        previous = provenance.read_args(config.out)
    except provenance.Unreadable:
        previous = None     # only --force-new resumes past one, afresh
    first, every, line = provenance.code_history(previous, state, resumed)
    if line:
        print(line, flush=True)
    record = {
        'args': dict(config.options), 'augment': augment,
        'dataset': description,
        'split_at': list(split_at), 'code_version': first,
        'code_versions': every,
        'environment': provenance.environment(), 'device': str(device),
        'command': ' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
    }
    record.update(extra)
    return record


def pct(x):
    """A fraction as a percentage for a one-line report; ``'n/a'``: None."""
    return 'n/a' if x is None else '%.2f%%' % (100 * x)

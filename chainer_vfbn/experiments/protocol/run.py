"""A planned run: its ``train_cifar.py`` options, its argument list and its
identity.

A run's options are ``{dest: value}``, keyed by the names of
``train_cifar.py``'s parser (``{'epoch': 24, 'alpha_gs': 1e-3}``); its
argument list, which its record keeps as its identity, is written from
them in one place (:func:`chainer_vfbn.runs.command_line.command_line`),
which takes every flag from the parser itself: an option renamed or
removed there fails the plan, at once.
"""
import collections
import os

from chainer_vfbn.experiments.protocol.schedules import CONFIG_VERSION
from chainer_vfbn.runs.command_line import command_line
from chainer_vfbn.runs.command_line import flag

# Options that do not change a run's numbers: where it runs and reads, and
# the evaluation batch (the test-mode forward is per image).
PLACE_OPTIONS = ('out', 'device', 'data_dir', 'test_batchsize')


class Run(object):
    """One run: its schedule, phase, name and train_cifar.py options.

    Args:
        phase (str): A mini phase, or the Table 1 schedule's name.
        name (str): Unique within the phase.
        row (str): A key of :data:`.rows.MINI_ROWS`.
        seed (int): ``--seed``.
        options (dict): ``{dest: value}`` of its ``train_cifar.py``
            options, in the order its arguments are written; those of
            :data:`PLACE_OPTIONS` are written after the others.
        choice (tuple): What a tuning or pilot run tries.
        schedule (str): The schedule that planned it.
        folder (str): Its training folder, relative to the output folder
            (default ``<phase>/<name>``).
        record (str): Its record's path under the records folder, without
            ``.json`` (default: ``folder``; the rungs of successive halving
            share a folder and each has a record).
        extra (list of str): More arguments as a user wrote them
            (``reproduce.py`` after ``--``), after the options (they win).

    Attributes:
        args (list of str): The arguments its numbers depend on, its
            identity (:meth:`config`).
        place (list of str): The others (:data:`PLACE_OPTIONS`), passed
            after ``--out``.
    """

    def __init__(self, phase, name, row, seed, options, choice=None,
                 schedule='mini', folder=None, record=None, extra=()):
        self.phase = phase
        self.name = name
        self.row = row
        self.seed = seed
        self.options = dict(options)
        self.choice = choice
        self.schedule = schedule
        self.folder = folder or os.path.join(phase, name)
        self.record = record or self.folder
        extra_args, extra_place = split_place(extra)
        self.args = command_line({k: v for k, v in self.options.items()
                                  if k not in PLACE_OPTIONS}) + extra_args
        self.place = command_line({k: v for k, v in self.options.items()
                                   if k in PLACE_OPTIONS}) + extra_place

    @property
    def key(self):
        return '%s/%s' % (self.phase, self.name)

    def config(self):
        """What must match for a record to count for this run: the run's
        own arguments (every setting that shapes it is among them)."""
        return collections.OrderedDict([
            ('protocol', self.schedule), ('protocol_version', CONFIG_VERSION),
            ('phase', self.phase), ('row', self.row), ('seed', self.seed),
            ('train_args', self.args)])


def command(run, out, device=None, data_dir=None):
    """The ``train_cifar.py`` argument list of a run (no interpreter).

    Example:
        >>> command(Run('tune', 'x', 'bp', 0, {'seed': 0}), 'o', '@numpy')
        ['--seed', '0', '--out', 'o/tune/x', '--device', '@numpy']
    """
    where = {'out': os.path.join(out, run.folder)}
    if device is not None:
        where['device'] = str(device)
    if data_dir is not None:
        where['data_dir'] = data_dir
    return run.args + command_line(where) + run.place


def split_place(argv):
    """``(the arguments a run's numbers depend on, the others)`` of an
    argument list as a user wrote it (the others: the long flags of
    :data:`PLACE_OPTIONS`, each with its value).

    Example:
        >>> split_place(['--seed', '1', '--device', '0'])
        (['--seed', '1'], ['--device', '0'])
    """
    flags = {flag(dest) for dest in PLACE_OPTIONS}
    args, place, i = [], [], 0
    while i < len(argv):
        if argv[i] in flags:
            place += argv[i:i + 2]
            i += 2
            continue
        args.append(argv[i])
        i += 1
    return args, place


def joined(*parts):
    """One run's options from ``parts`` (dicts), in their order. An option
    in two parts is refused: where it is written, and so the run's
    identity, would depend on which part won.

    Example:
        >>> joined({'method': 'bp'}, {'seed': 0})
        {'method': 'bp', 'seed': 0}
    """
    options = {}
    for part in parts:
        for dest, value in part.items():
            if dest in options:
                raise ValueError('the option %s is planned twice (%r, %r)'
                                 % (dest, options[dest], value))
            options[dest] = value
    return options

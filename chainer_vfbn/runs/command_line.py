"""``train_cifar.py``'s command line: its parser, and the one way back from
option values to an argument list.

The script parses with :func:`build_parser` and owns what comes after
(the checks, the exit statuses,
:meth:`~chainer_vfbn.runs.config.RunConfig.from_options`).
The parser lives here, in the run layer, so that the experiment harness
plans a run as typed values keyed by the parser's own option names
(``dest``: ``{'epoch': 24, 'alpha_gs': 1e-3}``) and writes its argument
list with :func:`command_line`, which takes every flag from the parser's
option table (:func:`option_table`): an option renamed or removed here
fails where the plans are written out, in the tests, not in a schedule's
run.
"""
import argparse
import functools
import re
import types

from chainer_vfbn import methods
from chainer_vfbn import split_step
from chainer_vfbn.auxiliary import registry as auxiliary
from chainer_vfbn.datasets.augment import PAPER_EPOCH
from chainer_vfbn.synthesizers import registry

# The 2016 recipe (mitmul/chainer-cifar10 at ce27972), in the units of the
# command line. A "paper epoch" is one pass over the 1.8M-image augmented set,
# i.e. 36 standard epochs.
RECIPES = {
    'mitmul2016': dict(
        arch='resnet110-paper',
        batchsize=128,                # images per iteration
        learnrate=0.1,                # MomentumSGD initial lr
        momentum=0.9,
        weight_decay=1e-4,            # L2 on every parameter
        lr_step=5 * PAPER_EPOCH,      # standard epochs between decays
        lr_decay=0.1,                 # lr multiplier at each step
        epoch=12 * PAPER_EPOCH,       # standard epochs (12 paper epochs)
    ),
}


#: ``--help``'s first line (the script's docstring's).
DESCRIPTION = ('Train the CIFAR-10 ResNet or your own model by BP or '
               'synthetic gradients.')


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One clear line instead of argparse's usage block.
        self.exit(2, '%s: error: %s (see --help)\n' % (self.prog, message))


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default once: not for flags (a --no-X flag's default
    is that X happens, which its help says), nor where the help already
    names it, nor for options without one."""

    def _get_help_string(self, action):
        text = action.help or ''
        if action.nargs == 0 or action.default is None or \
                'default' in text or action.default is argparse.SUPPRESS:
            return text
        return text + ' (default: %(default)s)'


def option_defaults(user=None):
    """``{dest: default}`` of every option (``user``: a
    :class:`~chainer_vfbn.runs.user_model.UserModel` whose defaults
    apply)."""
    return {a.dest: a.default for a in build_parser(user)._actions
            if a.dest != 'help'}


def build_parser(user=None):
    """The command line; ``user`` (``--model``'s
    :class:`~chainer_vfbn.runs.user_model.UserModel`) sets its defaults."""
    rec = RECIPES['mitmul2016']
    description = DESCRIPTION
    if user is not None:
        description = 'Train %s with back-propagation or synthetic ' \
                      'gradients (the defaults below are its RUN_DEFAULTS ' \
                      'where it sets them).' % user.where
    p = _Parser(prog='train_cifar.py', description=description,
                formatter_class=_Formatter)

    g = p.add_argument_group('data')
    g.add_argument('--dataset', default='cifar10',
                   choices=('cifar10', 'sample'),
                   help='cifar10: the official archive (or a subset in its '
                        'format, e.g. cifar-10-mini, see --data-dir), '
                        'downloaded (about 170 MB) if not found; sample: the '
                        '500 real training and 150 test images bundled with '
                        'the package (offline)')
    g.add_argument('--data-dir', default=None,
                   help='where cifar-10-python.tar.gz (or its extracted '
                        'folder) is (default: $CHAINER_VFBN_DATA, then '
                        '~/.chainer-vfbn/cifar10)')
    g.add_argument('--no-download', dest='download', action='store_false',
                   help='never download the official archive; stop if it is '
                        'not found (by default a missing archive is '
                        'downloaded)')
    g.add_argument('--validation-split', type=float, default=0.,
                   metavar='FRACTION',
                   help='hold out this share of the training images (a '
                        'fixed, stratified split, the same for every seed '
                        'and method) and evaluate on it, logged as val/..., '
                        'instead of the test set, logged as test/...; 0: '
                        'train on all, evaluate on the test set')
    g.add_argument('--augment', default=None, choices=('paper', 'standard'),
                   help='paper: 36 views of 24x24; standard: pad-crop-flip '
                        '(default: paper for *-paper archs, standard for '
                        '*-he)')

    g = p.add_argument_group('model')
    g.add_argument('--model', default=None, metavar='MODULE:FACTORY',
                   help='your own network: FACTORY() of MODULE (importable, '
                        'or a path to a .py file), a sequential chain giving '
                        'class scores; the module\'s RUN_DEFAULTS dict, if '
                        'any, sets this script\'s defaults (default: the '
                        'project\'s ResNet, --arch)')
    g.add_argument('--arch', default=rec['arch'] if user is None else
                   user.where.split('()')[0],
                   help='resnet<6n+2>-{paper,he}, e.g. resnet110-paper, '
                        'resnet20-paper, resnet110-he; with --model, the '
                        'network\'s name in the records')
    g.add_argument('--split-at', default=None,
                   help='comma-separated split points after which the '
                        'network is cut: layer names, dotted paths into '
                        'nested chains (features.stage2.unit2) or a '
                        'chainer.Sequential\'s step indices (default: the '
                        'network\'s default_split; the ResNet\'s is the '
                        'paper\'s point, the middle of stage 2)')

    g = p.add_argument_group('method')
    g.add_argument('--method', default='vfbn', choices=methods.names(),
                   help='training method (a row of the paper\'s Table 1)')
    g.add_argument('--alpha-gs', type=float, default=None,
                   help='Adam step size of the gradient synthesizer, for '
                        'the synthetic methods only (0: untrained; default: '
                        'the kind\'s own, from '
                        'chainer_vfbn.synthesizers.registry; checked by '
                        'build_method). Kinds: %s'
                        % registry.help_line().replace('%', '%%'))
    g.add_argument('--synth-target-scale', choices=split_step.TARGET_SCALES,
                   default='batch-mean',
                   help='what a DNI synthesizer predicts: delta of the '
                        'batch-mean loss (batch-mean), or B*delta, applied '
                        'as its prediction / B (per-example: alpha_gs then '
                        'does not depend on the batch size); VFBN has the '
                        'batch-mean scale by construction')
    g.add_argument('--n-hidden', type=int, default=256,
                   help='hidden units of the vfbn-mlp virtual network')
    g.add_argument('--local-weight', type=float, default=None,
                   help='the tunable weight of a local-learning method, '
                        'for %s only (default: the method\'s own, from '
                        'chainer_vfbn.auxiliary.registry): %s'
                        % (', '.join(auxiliary.weighted()),
                           auxiliary.help_line().replace('%', '%%')))

    g = p.add_argument_group(
        'optimization', 'defaults: the recipe (--recipe), the paper\'s')
    g.add_argument('--recipe', default='mitmul2016', choices=sorted(RECIPES),
                   help='the recipe that sets the defaults of --arch and of '
                        'this group (default: %(default)s)')
    g.add_argument('--batchsize', '-b', type=int, default=rec['batchsize'],
                   help='training images per iteration')
    g.add_argument('--epoch', '-e', type=int, default=rec['epoch'],
                   help='standard epochs (one view of each training image); '
                        '%d = one paper epoch' % PAPER_EPOCH)
    g.add_argument('--iterations', type=int, default=None,
                   help='stop after this many iterations instead of '
                        '--epoch')
    g.add_argument('--learnrate', '-l', type=float, default=rec['learnrate'],
                   help='initial learning rate of MomentumSGD')
    g.add_argument('--momentum', type=float, default=rec['momentum'],
                   help='MomentumSGD momentum')
    g.add_argument('--weight-decay', type=float,
                   default=rec['weight_decay'],
                   help='L2 weight decay on every network parameter')
    g.add_argument('--lr-step', type=float, default=rec['lr_step'],
                   help='standard epochs between learning-rate decays')
    g.add_argument('--lr-decay', type=float, default=rec['lr_decay'],
                   help='learning-rate factor at each decay')
    g.add_argument('--seed', type=int, default=0,
                   help='seed of the initialization, the data order and the '
                        'augmentation')

    g = p.add_argument_group('device')
    g.add_argument('--device', '-d', default=None,
                   help='device: @numpy, @cupy:0, or an integer (-1 = CPU) '
                        '(default: @numpy, the CPU)')
    g.add_argument('--gpu', '-g', type=int, default=None,
                   help='deprecated alias of --device N (-1 = CPU)')

    g = p.add_argument_group('output')
    g.add_argument('--out', '-o', default='result',
                   help='folder of the run: args.json, log, plots, '
                        'snapshots, summary.json')
    g.add_argument('--resume', '-r', default=None,
                   help='snapshot to resume from (default: the newest one in '
                        '--out, unless --no-autoload)')
    g.add_argument('--autoload', dest='autoload', action='store_true',
                   default=True,
                   help='resume from the newest snapshot in --out (the '
                        'default)')
    g.add_argument('--no-autoload', dest='autoload', action='store_false',
                   help='start afresh even if --out holds a snapshot')
    g.add_argument('--force-new', action='store_true',
                   help='if --out holds another run, move it aside to '
                        '<out>.replaced-<time> and start afresh (without '
                        'it, resuming with other options than the length '
                        'or the logging ones is refused)')
    g.add_argument('--frequency', '-f', type=int, default=1,
                   help='snapshot every N epochs and at the end (-1: at the '
                        'end only)')
    g.add_argument('--eval-interval', type=int, default=1,
                   help='evaluate (test set, or validation split) every N '
                        'epochs')
    g.add_argument('--tta-interval', type=int, default=PAPER_EPOCH,
                   help='36-view test-time augmentation every N evaluations '
                        'and at the end (0: never; each costs 36 passes '
                        'over the evaluation set)')
    g.add_argument('--test-batchsize', type=int, default=128,
                   help='images per forward pass when evaluating')
    g.add_argument('--no-progress', dest='progress', action='store_false',
                   help='no progress display (by default one line that '
                        'moves on a terminal, a plain line a minute '
                        'elsewhere)')

    g = p.add_argument_group(
        'decoupled', 'one MPI rank per module; run under mpiexec, see '
                     'docs/decoupled.md')
    g.add_argument('--decoupled', action='store_true',
                   help='run decoupled (one MPI rank per module)')
    g.add_argument('--max-staleness', type=int, default=1,
                   help='iterations a rank may run ahead of the true '
                        'gradients that train its synthesizer')
    g.add_argument('--synth-placement', choices=('above', 'below'),
                   default='above',
                   help='train synthesizer k on rank k + 1, which holds h '
                        'and the true gradient, and send its weights down '
                        '(above), or send the true gradient down and train '
                        'it on rank k (below); the same numbers, different '
                        'load per rank (docs/decoupled.md)')
    g.add_argument('--mpi-timeout', type=float, default=300.,
                   help='seconds a rank waits for a message before it stops '
                        'the run')
    g.add_argument('--mpiexec', metavar='COMMAND',
                   help="start the ranks yourself with COMMAND (e.g. "
                        "'mpiexec -n 2'), so that Ctrl-C or SIGTERM stops "
                        'them with a snapshot set and exit 130/143 (Open '
                        "MPI's mpiexec kills its ranks within 2 s of its own "
                        "Ctrl-C; MPICH's passes it on, so there plain "
                        'mpiexec does the same)')
    if user is not None:
        unknown = sorted(set(user.defaults) - {a.dest for a in p._actions})
        if unknown:
            p.error('--model: RUN_DEFAULTS has %s, not options of this '
                    'script' % ', '.join(unknown))
        p.set_defaults(**user.defaults)
        for action in p._actions:   # the model's default, not the ResNet's
            if action.dest in user.defaults and action.help:
                action.help = re.sub(r' \(default: .*\)$', '', action.help,
                                     flags=re.S)
    return p


@functools.lru_cache(maxsize=1)
def option_table():
    """``{dest: (action, ...)}`` of every option of :func:`build_parser`
    (a flag and its ``--no-`` twin share a ``dest``): the flags that
    :func:`command_line` writes. Computed once: the flags do not depend
    on the registries, only the help and the choices do.

    Example:
        >>> [a.option_strings for a in option_table()['autoload']]
        [['--autoload'], ['--no-autoload']]
    """
    table = {}
    for action in build_parser()._actions:
        if action.dest != 'help':
            table.setdefault(action.dest, []).append(action)
    return types.MappingProxyType({k: tuple(v) for k, v in table.items()})


class Written(float):
    """A number that keeps the spelling it was written with: its command
    line text (:func:`command_line`) is that spelling, not ``repr``'s.

    Runs planned with the text ``1e-3`` name it so in their records, whose
    arguments are their identity; a plain float would be written
    ``0.001``.

    Example:
        >>> command_line({'alpha_gs': Written('1e-3')})
        ['--alpha-gs', '1e-3']
        >>> Written('1e-3') == 1e-3
        True
    """

    __slots__ = ('text',)

    def __new__(cls, text):
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __repr__(self):
        return self.text


def flag(dest):
    """The long flag of the option ``dest`` that takes a value.

    Raises:
        ValueError: ``train_cifar.py`` has no such option (one line).

    Example:
        >>> flag('alpha_gs')
        '--alpha-gs'
    """
    return _long(_action(dest, lambda a: a.nargs != 0, 'a value'))


def command_line(options):
    """The argument list of ``options``, ``{dest: value}``, in their order.

    Each flag is the parser's own (:func:`option_table`); a value is
    written as typed: a string as it is, a number by ``repr`` (or its
    :class:`Written` spelling), and a boolean as the flag that stores it
    (``{'download': False}``: ``--no-download``).

    Raises:
        ValueError: An option ``train_cifar.py`` does not have (renamed or
            removed), or a boolean that no flag stores.
        TypeError: A value of another type than the option parses.

    Example:
        >>> command_line({'epoch': 24, 'lr_step': 10.0, 'progress': False})
        ['--epoch', '24', '--lr-step', '10.0', '--no-progress']
    """
    argv = []
    for dest, value in options.items():
        if isinstance(value, bool):
            argv.append(_long(_action(
                dest, lambda a, v=value: a.nargs == 0 and a.const is v,
                'a flag that stores %s' % value)))
            continue
        action = _action(dest, lambda a: a.nargs != 0, 'a value')
        kinds = {int: int, float: (int, float), None: str}[action.type]
        if not isinstance(value, kinds):
            raise TypeError('%s takes %s, got %r' % (
                _long(action), getattr(action.type, '__name__', 'text'),
                value))
        argv += [_long(action), value if isinstance(value, str)
                 else repr(value)]
    return argv


def _action(dest, wanted, what):
    """The action of ``dest`` that ``wanted`` picks (``what``: in words)."""
    found = [a for a in option_table().get(dest, ()) if wanted(a)]
    if not found:
        raise ValueError('train_cifar.py has no option %s that takes %s '
                         '(was it renamed or removed?)' % (dest, what))
    return found[0]


def _long(action):
    """An action's long flag (``--batchsize``, not ``-b``)."""
    return next(s for s in action.option_strings if s.startswith('--'))

#!/usr/bin/env python
"""Train the CIFAR-10 ResNet or your own model by BP or synthetic gradients.

Examples::

    # the paper's VFBN row on the full CIFAR-10, on GPU 0 (432 epochs of
    # ResNet-110: see the README for what that costs)
    python train/train_cifar.py --method vfbn --device 0
    # on the CPU, on the real sample bundled with the package
    python train/train_cifar.py --method vfbn --dataset sample \\
        --arch resnet20-paper --epoch 3 --batchsize 50 --lr-step 2
    # your own network: small_cnn() of mymodels.py (or a module's path)
    python train/train_cifar.py --model mymodels:small_cnn --split-at 2

The defaults are the paper's recipe, i.e. the 2016 mitmul/chainer-cifar10
code it was built on (``--recipe mitmul2016``, docs/mitmul2016.md):
ResNet-110 ``paper`` preset, the 36-view augmentation, MomentumSGD(0.9),
lr 0.1, weight decay 1e-4, batch 128, lr x0.1 every 5 paper epochs
(= 180 standard epochs), 12 paper epochs (= 432 standard epochs).
``--epoch`` counts standard epochs (passes over the 50k images, one random
view of each).
"""
import argparse
import math
import os
import re
import shlex
import sys

import chainer_vfbn  # NOQA  (before chainer: compatibility shims)

from chainer_vfbn import methods  # NOQA
from chainer_vfbn import split_step  # NOQA
from chainer_vfbn.auxiliary import registry as auxiliary  # NOQA
from chainer_vfbn.models import resnet_cifar  # NOQA
from chainer_vfbn.runs import decoupled  # NOQA
from chainer_vfbn.runs import folder  # NOQA
from chainer_vfbn.runs import trainer  # NOQA
from chainer_vfbn.runs import user_model  # NOQA
from chainer_vfbn.runs.config import RunConfig  # NOQA
from chainer_vfbn.runs.config import UserError  # NOQA
from chainer_vfbn.synthesizers import registry  # NOQA

# The 2016 recipe (mitmul/chainer-cifar10 at ce27972), in the units of this
# script. A "paper epoch" is one pass over the 1.8M-image augmented set,
# i.e. 36 standard epochs.
from chainer_vfbn.datasets.augment import PAPER_EPOCH  # NOQA
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
    description = __doc__.split('\n')[0]
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


def load_model(argv=None):
    """``--model``'s network, read before the command line is parsed (its
    module may set defaults and register synthesizer kinds); ``None``
    without ``--model``. Exits 2 with one line if it cannot be loaded."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument('--model')
    spec = pre.parse_known_args(argv)[0].model
    if spec is None:
        return None
    try:
        return user_model.load(spec)
    except UserError as e:
        sys.stderr.write('train_cifar.py: error: %s\n' % e)
        sys.exit(2)


def parse_args(argv=None, user=None):
    """The command line's options, checked (exits 2, one line per bad
    value); as given: :func:`parse_config` resolves them."""
    p = build_parser(user)
    args = p.parse_args(argv)
    if args.gpu is not None and args.device is not None:
        p.error('give --device or --gpu, not both')
    bad = option_errors(args)
    if bad:
        # One line per bad value.
        p.exit(2, ''.join('%s: error: %s\n' % (p.prog, line)
                          for line in bad))
    return args


def parse_config(argv=None, user=None):
    """The run's :class:`~chainer_vfbn.runs.config.RunConfig`: the options
    turned into values once (device, ``split_at``), with their defaults
    for the run's identity."""
    return RunConfig.from_options(vars(parse_args(argv, user)),
                                  option_defaults(user))


def option_errors(args):
    """What is wrong with the numeric options, one line per bad value.

    Bounds are those where the value means something: a momentum of 1 or
    more never forgets, a decay above 1 grows the learning rate
    (``alpha_gs`` is checked where it is defaulted,
    :func:`chainer_vfbn.methods.resolve_alpha_gs`; given for a method
    without a synthesizer, it is an error of its own).
    """
    lines = []
    values = dict(vars(args))
    if not methods.synthetic(args.method) and args.alpha_gs is not None:
        lines.append('--alpha-gs is the step size of a gradient '
                     'synthesizer: it applies to %s only, not to --method %s'
                     % (', '.join(registry.names()), args.method))
    if args.method not in auxiliary.weighted() and \
            args.local_weight is not None:
        lines.append('--local-weight applies to %s only, not to --method %s'
                     % (', '.join(auxiliary.weighted()), args.method))
    checks = [  # (option, value, allowed, what it must be)
        ('learnrate', lambda v: v > 0, '> 0'),
        ('momentum', lambda v: 0 <= v < 1, 'in [0, 1)'),
        ('weight_decay', lambda v: v >= 0, '>= 0'),
        ('lr_step', lambda v: v > 0, '> 0'),
        ('lr_decay', lambda v: 0 < v <= 1, 'in (0, 1]'),
        ('validation_split', lambda v: 0 <= v < 1, 'in [0, 1)'),
        ('mpi_timeout', lambda v: v > 0, '> 0'),
        ('seed', lambda v: 0 <= v < 2 ** 32, 'in [0, 2**32)'),
        ('batchsize', lambda v: v >= 1, '>= 1'),
        ('epoch', lambda v: v >= 1, '>= 1'),
        ('frequency', lambda v: v >= 1 or v == -1, '>= 1 or -1'),
        ('eval_interval', lambda v: v >= 1, '>= 1'),
        ('test_batchsize', lambda v: v >= 1, '>= 1'),
        ('n_hidden', lambda v: v >= 1, '>= 1'),
        ('iterations', lambda v: v is None or v >= 1, '>= 1'),
        ('tta_interval', lambda v: v >= 0, '>= 0'),
        ('max_staleness', lambda v: v >= 0, '>= 0'),
    ]
    for name, ok, allowed in checks:
        value = values[name]
        finite = not isinstance(value, float) or math.isfinite(value)
        if not (finite and ok(value)):
            lines.append('--%s must be %s%s, got %r'
                         % (name.replace('_', '-'), 'finite and ' if
                            isinstance(value, float) else '', allowed, value))
    return lines


def _launch(argv, command):
    """``--mpiexec COMMAND``: this command line, less that option, as the
    ranks' command under COMMAND."""
    ranks = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == '--mpiexec':
            skip = True
        elif not arg.startswith('--mpiexec='):
            ranks.append(arg)
    return decoupled.launch(shlex.split(command) + [
        sys.executable, os.path.abspath(__file__)] + ranks)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    user = load_model(argv)
    args = parse_args(argv, user)
    if args.mpiexec is not None:
        if not args.decoupled:
            sys.stderr.write('train_cifar.py: error: --mpiexec starts a '
                             '--decoupled run (see --help)\n')
            return 2
        return _launch(argv, args.mpiexec)
    config = parse_config(argv, user)
    if user is not None:
        make_net = user.factory
    else:
        def make_net():
            return resnet_cifar(config.arch)
    if config.decoupled:
        return decoupled.main(config, make_net)
    try:
        return trainer.run(config, make_net)
    except UserError as e:
        sys.stderr.write('train_cifar.py: error: %s\n' % e)
        return 2
    except KeyboardInterrupt:  # before the training loop, or a second ^C
        sys.stderr.write('train_cifar.py: interrupted\n')
        return 130
    except Exception as e:  # a full disk is one line, not a traceback
        line = folder.disk_full_line(e, folder.newest_intact(config.out))
        if line is None:
            raise
        sys.stderr.write('train_cifar.py: error: %s\n' % line)
        return 1


if __name__ == '__main__':
    sys.exit(main())

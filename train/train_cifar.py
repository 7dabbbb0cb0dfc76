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
import shlex
import sys

import chainer_vfbn  # NOQA  (before chainer: compatibility shims)

from chainer_vfbn import methods  # NOQA
from chainer_vfbn.auxiliary import registry as auxiliary  # NOQA
from chainer_vfbn.models import resnet_cifar  # NOQA
from chainer_vfbn.runs import decoupled  # NOQA
from chainer_vfbn.runs import folder  # NOQA
from chainer_vfbn.runs import trainer  # NOQA
from chainer_vfbn.runs import user_model  # NOQA
from chainer_vfbn.runs.command_line import build_parser  # NOQA
from chainer_vfbn.runs.command_line import option_defaults  # NOQA
from chainer_vfbn.runs.config import RunConfig  # NOQA
from chainer_vfbn.runs.config import UserError  # NOQA
from chainer_vfbn.synthesizers import registry  # NOQA


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

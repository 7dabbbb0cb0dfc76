"""The one registry of local-learning methods with an auxiliary network.

Each such method trains the layers below a split on a local loss of ``h``
alone (and of the input, for InfoPro) through an auxiliary network built from
``h``'s shape, and the layers above by back-prop on the detached ``h``: the
structure of the paper's "layer-wise supervised loss" baseline
(:class:`~chainer_vfbn.updaters.LayerwiseUpdater`), with another auxiliary
network and objective. Every auxiliary network is a Link called as
``aux(h) -> class scores`` with a method ``local_loss(h, x, t) -> (loss, y,
values)``.

:data:`KINDS` names them, with their builder, the default of their tunable
weight (``None`` for a method without one) and its meaning; the methods'
list (:func:`chainer_vfbn.methods.names`), the command line's choices and
help, and the checks of ``local_weight`` derive from it.
"""
import collections
import math

import chainer.functions as F

from chainer_vfbn.auxiliary import infopro
from chainer_vfbn.auxiliary.dgl import DGLAuxiliary
from chainer_vfbn.auxiliary.infopro import InfoProAuxiliary

Kind = collections.namedtuple('Kind', [
    'build',        # build(h_shape, in_shape, n_class, loss_func, weight)
    'weight',       # default of the tunable local weight; None: it has none
    'weight_help',  # what the weight is, one line
    'description',  # one line, for the help and the docs
])

KINDS = collections.OrderedDict([
    ('dgl', Kind(
        lambda h_shape, in_shape, n_class, loss_func, weight:
            DGLAuxiliary(h_shape, n_class, loss_func),
        None, None,
        "DGL (Belilovsky et al. 2020): the bottom on the cross-entropy of "
        "an MLP-SR auxiliary net")),
    ('infopro', Kind(
        lambda h_shape, in_shape, n_class, loss_func, weight:
            InfoProAuxiliary(h_shape, in_shape, n_class, loss_func, weight),
        infopro.CLASSIFIER_WEIGHT,
        "lambda2, the auxiliary classifier's weight in "
        "%g*reconstruction + lambda2*cross-entropy"
        % infopro.RECONSTRUCTION_WEIGHT,
        "InfoPro, softmax (Wang et al. 2021): the bottom on "
        "lambda1*reconstruction of x + lambda2*cross-entropy")),
])


def names():
    """Every kind's name, in the registry's order."""
    return tuple(KINDS)


def weighted():
    """The kinds with a tunable local weight."""
    return tuple(name for name, k in KINDS.items() if k.weight is not None)


def weight_ok(weight):
    """Whether a local weight means something: finite and ``>= 0``."""
    return math.isfinite(weight) and weight >= 0


def resolve_weight(method, weight):
    """``weight``, or for ``None`` the default of ``method`` (``None`` for a
    method without one).

    Raises:
        ValueError: One line: a weight for a method that has none, or a
            negative or non-finite weight.
    """
    default = KINDS[method].weight if method in KINDS else None
    if weight is None:
        return default
    if default is None:
        raise ValueError(
            'local_weight applies to %s only, not to %s'
            % (', '.join(weighted()), method))
    if not weight_ok(weight):
        raise ValueError('local_weight must be finite and >= 0, got %r'
                         % weight)
    return weight


def help_line():
    """``name: what its weight is (default)`` of every weighted kind."""
    return '; '.join('%s: %s (default %g)' % (name, k.weight_help, k.weight)
                     for name, k in KINDS.items() if k.weight is not None)


def build_auxiliary(method, h_shape, in_shape, n_class=10, loss_func=None,
                    weight=None):
    """The auxiliary network of a local-learning method, for ``h`` of one
    shape.

    Args:
        method (str): One of :data:`KINDS`.
        h_shape (tuple of int): One example's ``h``, ``(C, H, W)`` or
            ``(D,)``.
        in_shape (tuple of int): One input example's shape (InfoPro's
            decoder rebuilds it).
        n_class (int): Number of classes.
        loss_func: The network's loss, which the auxiliary classifier is
            trained on; ``None`` for the mean softmax cross-entropy.
        weight (float): The kind's tunable weight; ``None`` for its default.

    Returns:
        ~chainer.Link: ``aux(h) -> scores``, with ``aux.local_loss(h, x,
        t)``.

    Example:
        >>> aux = build_auxiliary('dgl', (64, 11, 11), (3, 24, 24))
    """
    if method not in KINDS:
        raise ValueError('unknown local-learning method %r; choose from %s'
                         % (method, ', '.join(KINDS)))
    h_shape = tuple(int(d) for d in h_shape)
    if len(h_shape) not in (1, 3) or min(h_shape) < 1:
        raise ValueError('%s needs h of shape (C, H, W) or (D,) with '
                         'positive sizes, got %s' % (method, h_shape))
    return KINDS[method].build(h_shape, tuple(in_shape), n_class,
                               loss_func or F.softmax_cross_entropy,
                               resolve_weight(method, weight))

"""The one registry of gradient-synthesizer kinds.

Every list of kinds in the project is derived from :data:`KINDS`: the
synthetic methods and their default α_gs (:mod:`chainer_vfbn.methods`), the
kinds whose scale is fixed (:func:`scale_free`), the
command line's choices and help, the experiment protocol's tuned and
closed-form rows, and the benchmarks' method list. Adding a kind is one new
file (its Link, called as ``synth(h, t) -> δ̂``) and one entry here; from
outside the package, :func:`register` adds the entry, and the kind is then a
method of :func:`chainer_vfbn.build_method` like the project's own::

    from chainer_vfbn.synthesizers import Kind, register
    register('half', Kind(lambda h_shape, n_class, n_hidden, loss_func:
                          HalfGradient(), alpha_gs=0.25,
                          description='w * h'))
    method = chainer_vfbn.build_method('half', model, split_at=1,
                                       in_shape=(3, 32, 32))
"""
import collections

import chainer.functions as F
import numpy

from chainer_vfbn.synthesizers.dni import DNILinear
from chainer_vfbn.synthesizers.dni import DNIResNet
from chainer_vfbn.synthesizers.vfbn import VFBNLinear
from chainer_vfbn.synthesizers.vfbn import VFBNMLP
from chainer_vfbn.synthesizers.vfbn import VFBNResNet

# What a synthesizer may predict (chainer_vfbn.split_step): δ of the
# batch-mean loss, or B·δ applied as its prediction / B.
ANY_SCALE = ('batch-mean', 'per-example')
BATCH_MEAN = ('batch-mean',)

Kind = collections.namedtuple('Kind', [
    'build',          # build(h_shape, n_class, n_hidden, loss_func) -> Link
    'alpha_gs',       # default Adam step size of the synthesizer
    'target_scales',  # the scales it may predict; the first is the default
    'closed_form',    # δ̂ in closed form (no double back-propagation)
    'description',    # one line, for the help and the docs
], defaults=(ANY_SCALE, False, ''))


def _flat(h_shape):
    return int(numpy.prod(h_shape))


def _softmax_only(name, loss_func):
    if loss_func is not F.softmax_cross_entropy:
        raise ValueError(
            '%s is the closed form of the softmax cross-entropy\'s gradient; '
            'it cannot synthesize the gradient of %s (use vfbn or a DNI kind)'
            % (name, getattr(loss_func, '__name__', loss_func)))


def _vfbn(h_shape, n_class, n_hidden, loss_func):
    if len(h_shape) != 3:
        raise ValueError("'vfbn' (a convolutional v_f) needs h_shape "
                         '(C, H, W), got %s: for a flat h use vfbn-linear or '
                         'vfbn-mlp' % (h_shape,))
    return VFBNResNet(h_shape[0], n_class, loss_func)


def _vfbn_linear(h_shape, n_class, n_hidden, loss_func):
    _softmax_only('vfbn-linear', loss_func)
    return VFBNLinear(_flat(h_shape), n_class)


def _vfbn_mlp(h_shape, n_class, n_hidden, loss_func):
    _softmax_only('vfbn-mlp', loss_func)
    return VFBNMLP(_flat(h_shape), n_hidden, n_class)


# Default alpha_gs. VFBN: the paper's alpha_gs = 1e-3 (Table 1). DNI: the
# paper gives none. Adam moves every weight by about alpha per step whatever
# the gradient's scale, while grad_true of a mean loss is ~1e-4 per element
# here; a DNI synthesizer (a convolution over a fan-in of ~1850
# non-negative inputs) then overshoots by orders of magnitude and the bottom
# diverges: on the bundled sample (resnet8-paper, batch 50) alpha 1e-5 and
# 1e-6 diverged, 1e-7 trained. VFBN is immune by construction: its output
# is a real softmax gradient, bounded whatever v_f's weights.
KINDS = collections.OrderedDict([
    ('dni-linear', Kind(
        lambda h_shape, n_class, n_hidden, loss_func:
            DNILinear(h_shape[0], n_class),
        1e-7, ANY_SCALE, False,
        "Jaderberg's linear model, a 5x5 convolution of [h, y] (Eq. 7)")),
    ('dni-resnet', Kind(
        lambda h_shape, n_class, n_hidden, loss_func:
            DNIResNet(h_shape[0], n_class),
        1e-7, ANY_SCALE, False,
        "Jaderberg's small-ResNet model of [h, y] (Appendix B.1)")),
    ('vfbn', Kind(
        _vfbn, 1e-3, BATCH_MEAN, False,
        "VFBN with the paper's small-ResNet v_f, by double backprop (Eq. 6)")),
    ('vfbn-linear', Kind(
        _vfbn_linear, 1e-3, BATCH_MEAN, True,
        'VFBN with a linear v_f, in closed form (Eq. 8)')),
    ('vfbn-mlp', Kind(
        _vfbn_mlp, 1e-3, BATCH_MEAN, True,
        'VFBN with a one-hidden-layer v_f, in closed form (Eq. 9)')),
])


def register(name, entry):
    """Add a synthesizer kind, e.g. from a user's own module.

    The kind is then a method of :func:`chainer_vfbn.build_method`, and in
    every list derived from :data:`KINDS` (the command line's choices
    included, where the script imports the module that registers it).

    Args:
        name (str): The method's name; not one already taken.
        entry (Kind): Its builder and defaults.

    Raises:
        ValueError: One line: the name is taken, or ``entry`` is not a
            :class:`Kind` with a callable ``build``.

    Example (a kind ``half``, δ̂ = w · h with one learned scale ``w``)::

        >>> import chainer
        >>> import chainer.functions as F
        >>> import numpy
        >>> class HalfGradient(chainer.Link):
        ...     def __init__(self):
        ...         super().__init__()
        ...         with self.init_scope():
        ...             self.w = chainer.Parameter(0.5, ())
        ...     def forward(self, h, t):
        ...         return F.broadcast_to(self.w, h.shape) * h
        >>> def build_half(h_shape, n_class, n_hidden, loss_func):
        ...     return HalfGradient()
        >>> register('half', Kind(build_half, alpha_gs=0.25,
        ...                       description='w * h'))
        >>> kind('half').alpha_gs, 'half' in names()
        (0.25, True)
        >>> synth = build_synthesizer('half', (3,))
        >>> synth(numpy.ones((2, 3), numpy.float32), numpy.zeros(2)).array
        array([[0.5, 0.5, 0.5],
               [0.5, 0.5, 0.5]], dtype=float32)
        >>> del KINDS['half']   # the registry as it was
    """
    # Deferred: methods imports this module (the names it owns are a cycle).
    from chainer_vfbn.methods import BACKPROP_METHODS
    if name in KINDS or name in BACKPROP_METHODS:
        raise ValueError('a method named %r exists already' % name)
    if not isinstance(entry, Kind) or not callable(entry.build):
        raise ValueError('register(%r, entry): entry must be a '
                         'chainer_vfbn.synthesizers.Kind whose build is '
                         'build(h_shape, n_class, n_hidden, loss_func) -> '
                         'Link' % name)
    KINDS[name] = entry


def names():
    """Every kind's name, in the registry's order."""
    return tuple(KINDS)


def kind(name):
    """The registry's entry for ``name``; one-line ValueError if unknown."""
    if name not in KINDS:
        raise ValueError('unknown synthesizer %r; choose from %s'
                         % (name, ', '.join(KINDS)))
    return KINDS[name]


def default_alphas():
    """``{name: default alpha_gs}``."""
    return {name: k.alpha_gs for name, k in KINDS.items()}


def scale_free():
    """The kinds whose output has δ's scale by construction (VFBN's)."""
    return tuple(name for name, k in KINDS.items()
                 if 'per-example' not in k.target_scales)


def closed_forms():
    """The kinds with a closed-form δ̂."""
    return tuple(name for name, k in KINDS.items() if k.closed_form)


def help_line():
    """``name: description (default alpha_gs)`` of every kind, for --help."""
    return '; '.join('%s: %s, alpha_gs %g' % (name, k.description,
                                              k.alpha_gs)
                     for name, k in KINDS.items())


def build_synthesizer(method, h_shape, n_class=10, n_hidden=256,
                      loss_func=None):
    """The gradient synthesizer of a kind, for activations of one shape.

    Args:
        method (str): One of :data:`KINDS`.
        h_shape (tuple of int): Shape of one example's ``h``, ``(C, H, W)``
            (e.g. ``(64, 11, 11)`` at the paper's split of ResNet-110); the
            DNI models and the linear/MLP VFBNs also accept a flat ``(D,)``.
        n_class (int): Number of classes.
        n_hidden (int): Hidden units of ``vfbn-mlp`` (ignored otherwise).
        loss_func: The network's loss; a VFBN's δ̂ is its gradient (the
            closed forms take the softmax cross-entropy only). ``None``: the
            mean softmax cross-entropy.

    Returns:
        ~chainer.Link: ``synth(h, t) -> δ̂``.

    Raises:
        ValueError: Unknown kind, a shape or loss the kind cannot take.

    Example:
        >>> synth = build_synthesizer('vfbn-linear', (64, 11, 11))
    """
    entry = kind(method)
    h_shape = tuple(int(d) for d in h_shape)
    if len(h_shape) not in (1, 3) or min(h_shape) < 1:
        raise ValueError('h_shape must be (C, H, W) or (D,) with positive '
                         'sizes, got %s' % (h_shape,))
    return entry.build(h_shape, n_class, n_hidden,
                       loss_func or F.softmax_cross_entropy)

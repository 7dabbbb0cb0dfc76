"""Assemble each training method of the paper's Table 1 from its parts.

One entry point, :func:`build_method`, turns a method name into the links,
optimizers and updater that train it, so that the command-line script, the
reproduction script and the benchmarks build every method the same way.

Methods (the rows of Table 1, plus the closed-form VFBNs of Appendix A.2):

============  ===============================================================
``bp``          the whole network by back-propagation
``bottom-bp``   the bottom part alone, with a GAP + linear head ("bottom half
                with back prop")
``layerwise``   the bottom trained on a local supervised loss through a GAP +
                linear head, the top by BP on the detached activation
``dgl``         as ``layerwise``, with DGL's auxiliary network (Belilovsky et
                al. 2020)
``infopro``     as ``layerwise``, with InfoPro's classifier and decoder and
                its local loss (Wang et al. 2021; weight ``local_weight``)
============  ===============================================================

(the local-learning peers come from :mod:`chainer_vfbn.auxiliary`'s
registry)

and one synthetic-gradient method per kind of the synthesizer registry
(:data:`chainer_vfbn.synthesizers.registry.KINDS`: ``dni-linear``,
``dni-resnet``, ``vfbn``, ``vfbn-linear``, ``vfbn-mlp``), with the kind's
default α_gs.

The network is any sequential chain (:mod:`chainer_vfbn.sequential`).
"""
import chainer
import chainer.functions as F
import chainer.links as L
from chainer import optimizers

from chainer_vfbn import sequential
from chainer_vfbn import split_step
from chainer_vfbn.auxiliary import registry as auxiliary
from chainer_vfbn.models.resnet import Head
from chainer_vfbn.sequential import Sequence
from chainer_vfbn.synthesizers import registry

# The methods without a synthesizer: back-prop, and local learning.
BACKPROP_METHODS = ('bp', 'bottom-bp', 'layerwise') + auxiliary.names()


def __getattr__(name):
    # The lists of synthetic methods and their defaults are derived from the
    # synthesizer registry on each access, never kept as a second copy.
    if name == 'SYNTHETIC_METHODS':
        return registry.names()
    if name == 'METHODS':
        return BACKPROP_METHODS + registry.names()
    if name == 'PIPELINE_METHODS':
        # What a decoupled (one rank per module) run can train:
        # model-parallel back-propagation over the same modules, or any
        # synthetic method.
        return ('bp',) + registry.names()
    if name == 'DEFAULT_ALPHA_GS':
        return registry.default_alphas()
    raise AttributeError('module %r has no attribute %r' % (__name__, name))


class Method(object):
    """The trainable parts of one method.

    Attributes:
        name (str): The method's name.
        optimizers (dict): Optimizer per name, as the updater expects.
        predictor (chainer.Link): Maps images to class scores; what is
            evaluated on the test set.
        modules (list): The network's modules (one for ``bp``).
        synthesizers (list): One gradient synthesizer per split (synthetic
            methods only).
        decayed (list of str): Names of the optimizers whose learning rate
            follows the step schedule (the synthesizers' Adam does not).
        split_at (list): Where the network was cut (layer names, or a
            ``chainer.Sequential``'s step indices); empty for ``bp``.
        links (list): Every link the method trains (the network, auxiliary
            heads, synthesizers); :meth:`to_device` moves them all.
    """

    def __init__(self, name, net, optimizers, predictor, make_updater,
                 modules=(), synthesizers=(), decayed=(), split_at=(),
                 aux_links=()):
        self.name = name
        self.optimizers = optimizers
        self.predictor = predictor
        self._make_updater = make_updater
        self.modules = list(modules)
        self.synthesizers = list(synthesizers)
        self.decayed = list(decayed)
        self.split_at = list(split_at)
        self.links = [net] + list(aux_links) + list(synthesizers)

    def to_device(self, device):
        """Move every trained link to ``device``; returns ``self``."""
        for link in self.links:
            link.to_device(device)
        return self

    def make_updater(self, iterator, converter, device):
        """Return the updater that trains this method."""
        return self._make_updater(iterator, converter, device)


def resolve_alpha_gs(method, alpha_gs):
    """``alpha_gs``, or for ``None`` the default of ``method``'s synthesizer
    (registry): 0 for a back-prop method, which has none; ValueError for an
    unknown method."""
    if method not in BACKPROP_METHODS:
        registry.kind(method)  # raises for an unknown name
    if alpha_gs is not None:
        return alpha_gs
    return 0. if method in BACKPROP_METHODS else registry.kind(method).alpha_gs


def alpha_gs_ok(alpha_gs):
    """Whether Adam's step size means something: in ``[0, 1]``.

    Adam moves every synthesizer weight by about ``alpha_gs`` per step, so
    above 1 (the paper's is 1e-3) it can only diverge; 0 leaves the
    synthesizer at its initialization.
    """
    return 0 <= alpha_gs <= 1


def check_alpha_gs(alpha_gs):
    """Raise ValueError unless :func:`alpha_gs_ok`."""
    if not alpha_gs_ok(alpha_gs):
        raise ValueError('alpha_gs must be in [0, 1], got %g' % alpha_gs)


def momentum_sgd(link, lr, momentum, weight_decay):
    """MomentumSGD with weight decay on every parameter (the 2016 recipe)."""
    opt = optimizers.MomentumSGD(lr=lr, momentum=momentum)
    opt.setup(link)
    if weight_decay:
        opt.add_hook(chainer.optimizer_hooks.WeightDecay(weight_decay))
    return opt


def adam(link, alpha):
    """Adam for a synthesizer; ``alpha = 0`` leaves it at its initialization."""
    opt = optimizers.Adam(alpha=alpha)
    opt.setup(link)
    return opt


def _checked_options(method, alpha_gs, target_scale):
    """``alpha_gs`` resolved (:func:`resolve_alpha_gs`), once ``method``,
    ``alpha_gs`` and ``target_scale`` are checked; ``ValueError`` if not."""
    if method not in BACKPROP_METHODS + registry.names():
        raise ValueError('unknown method %r; choose from %s'
                         % (method, ', '.join(BACKPROP_METHODS +
                                              registry.names())))
    alpha_gs = resolve_alpha_gs(method, alpha_gs)
    check_alpha_gs(alpha_gs)
    split_step.check_target_scale(target_scale, method)
    if target_scale != 'batch-mean' and method not in registry.KINDS:
        raise ValueError('target scale %s needs a synthetic-gradient method, '
                         'not %s' % (target_scale, method))
    return alpha_gs


def build_method(method, net, split_at=None, lr=0.1, momentum=0.9,
                 weight_decay=1e-4, alpha_gs=None, n_hidden=256,
                 target_scale='batch-mean', n_class=None, in_shape=None,
                 loss_func=None, local_weight=None):
    """Build the links, optimizers and updater of a training method.

    Works for any sequential chain (:mod:`chainer_vfbn.sequential`): a
    ``chainer.Sequential``, or a chain with ``layer_names`` such as the
    project's ResNet. The shapes of ``h`` at the cuts and the number of
    classes come from one forward pass of a sample batch
    (:func:`~chainer_vfbn.sequential.forward_shapes`).

    Args:
        method (str): One of :data:`METHODS`.
        net: The network, already on its device or not (call
            :meth:`Method.to_device` afterwards).
        split_at: Split point(s) where the network is cut: a layer name (or
            a ``chainer.Sequential``'s step index) or a list of them;
            ``None`` for ``net.default_split``. Checked, but unused, by
            ``bp``; ``bottom-bp`` and ``layerwise`` take one point.
        lr, momentum, weight_decay (float): MomentumSGD of the network.
        alpha_gs (float): Adam step size of the gradient synthesizers;
            ``None`` for the registry's default of the kind.
        n_hidden (int): Hidden units of the ``vfbn-mlp`` virtual network.
        target_scale (str): What the synthesizers predict, δ or ``B·δ``
            (:mod:`chainer_vfbn.split_step`); synthetic methods only.
        n_class (int): Number of classes; ``None`` for the width of the
            network's output. Checked against that width.
        in_shape (tuple of int): One input example's shape; ``None`` for
            ``net.in_shape``.
        loss_func: The network's loss ``loss_func(y, t)``; ``None`` for the
            mean softmax cross-entropy. A VFBN synthesizer differentiates the
            same loss; the closed forms refuse any other.
        local_weight (float): The tunable weight of a local-learning method
            that has one (``infopro``'s λ2); ``None`` for its default
            (:mod:`chainer_vfbn.auxiliary.registry`). Refused for another
            method.

    Returns:
        Method

    Example:
        >>> net = chainer.Sequential(block1, block2, L.Linear(None, 10))
        >>> method = build_method('vfbn', net, split_at=1,
        ...                       in_shape=(3, 32, 32))
        >>> updater = method.make_updater(train_iter, concat_examples, -1)
    """
    alpha_gs = _checked_options(method, alpha_gs, target_scale)
    local_weight = auxiliary.resolve_weight(method, local_weight)
    loss_func = loss_func or F.softmax_cross_entropy
    # Back-prop ignores the split, but a wrong point is still a mistake.
    split_at = [] if method == 'bp' and split_at is None else \
        sequential.resolve_split_at(net, split_at)
    shapes, n_class = _shapes(net, in_shape, n_class)
    sgd = dict(lr=lr, momentum=momentum, weight_decay=weight_decay)
    if method == 'bp':
        return _backprop(net, sgd, loss_func)
    modules = sequential.split(net, split_at)
    if method in registry.KINDS:
        return _synthetic(method, net, split_at, modules, sgd, alpha_gs,
                          n_hidden, target_scale, shapes, n_class, loss_func)
    if len(modules) != 2:
        raise ValueError('%s takes one split point, got %d'
                         % (method, len(split_at)))
    if method in auxiliary.KINDS:
        aux = auxiliary.build_auxiliary(
            method, shapes[split_at[0]], in_shape or net.in_shape, n_class,
            loss_func, local_weight)
        return _layerwise(net, split_at, modules, aux, sgd, loss_func,
                          name=method, local_loss=aux.local_loss)
    head = Head(shapes[split_at[0]][0], n_class)
    build = _bottom_bp if method == 'bottom-bp' else _layerwise
    return build(net, split_at, modules, head, sgd, loss_func)


def _shapes(net, in_shape, n_class):
    """``(h shapes, n_class)`` from one forward pass; one line if wrong."""
    in_shape = in_shape or getattr(net, 'in_shape', None)
    if in_shape is None:
        raise ValueError(
            'give in_shape, the shape of one input example (e.g. (3, 32, '
            "32)): h's shapes come from one forward pass")
    shapes = sequential.forward_shapes(net, in_shape)
    out = list(shapes.values())[-1]
    if len(out) != 1:
        raise ValueError('the network gives an output of shape %s per '
                         'example; the methods need class scores (B, '
                         'n_class)' % (out,))
    if n_class is not None and n_class != out[0]:
        raise ValueError('n_class is %d but the network gives %d class '
                         'scores' % (n_class, out[0]))
    return shapes, out[0]


def _standard_updater(opts):
    from chainer.training import updaters as chainer_updaters

    def make(iterator, converter, device):
        return chainer_updaters.StandardUpdater(
            iterator, opts, converter=converter, device=device)
    return make


def _backprop(net, sgd, loss_func):
    opts = {'main': momentum_sgd(L.Classifier(net, lossfun=loss_func),
                                 **sgd)}
    return Method('bp', net, opts, net, _standard_updater(opts),
                  modules=[net], decayed=['main'])


def _bottom_bp(net, split_at, modules, head, sgd, loss_func):
    predictor = Sequence([('bottom', modules[0]), ('aux_head', head)])
    opts = {'main': momentum_sgd(
        L.Classifier(predictor, lossfun=loss_func), **sgd)}
    return Method('bottom-bp', net, opts, predictor, _standard_updater(opts),
                  modules=[modules[0]], decayed=['main'], split_at=split_at,
                  aux_links=[head])


def _layerwise(net, split_at, modules, head, sgd, loss_func,
               name='layerwise', local_loss=None):
    from chainer_vfbn import updaters
    bottom, top = modules
    opts = {'bottom': momentum_sgd(bottom, **sgd),
            'head': momentum_sgd(head, **sgd),
            'top': momentum_sgd(top, **sgd)}

    def make(iterator, converter, device):
        return updaters.LayerwiseUpdater(
            iterator, bottom, head, top, opts, converter=converter,
            device=device, loss_func=loss_func, local_loss=local_loss)
    return Method(name, net, opts, net, make, modules=modules,
                  decayed=list(opts), split_at=split_at, aux_links=[head])


def _synthetic(method, net, split_at, modules, sgd, alpha_gs, n_hidden,
               target_scale, shapes, n_class, loss_func):
    from chainer_vfbn import updaters

    synths = [registry.build_synthesizer(method, shapes[name], n_class,
                                         n_hidden, loss_func)
              for name in split_at]
    opts = {'module%d' % k: momentum_sgd(m, **sgd)
            for k, m in enumerate(modules)}
    for name, synth in zip(split_step.synth_names(len(synths)), synths):
        opts[name] = adam(synth, alpha_gs)

    def make(iterator, converter, device):
        return updaters.SyntheticGradientUpdater(
            iterator, modules, synths, opts, converter=converter,
            device=device, loss_func=loss_func, target_scale=target_scale)
    return Method(method, net, opts, net, make, modules=modules,
                  synthesizers=synths,
                  decayed=['module%d' % k for k in range(len(modules))],
                  split_at=split_at)


def build_pipeline(method, net, split_at=None, lr=0.1, momentum=0.9,
                   weight_decay=1e-4, alpha_gs=None, n_hidden=256,
                   target_scale='batch-mean'):
    """The modules of a method trained one module per process.

    As :func:`build_method`, except that ``'bp'`` is model-parallel
    back-propagation: the network cut at ``split_at`` like a synthetic
    method, one MomentumSGD per module (``'module0'`` ..), no synthesizer.

    Returns:
        Method: With :attr:`Method.modules` and, for a synthetic method,
        :attr:`Method.synthesizers`; its ``make_updater`` is the synchronous
        one (none for ``'bp'``).
    """
    if method not in ('bp',) + registry.names():
        raise ValueError('a decoupled run trains %s, not %s'
                         % (', '.join(('bp',) + registry.names()), method))
    if method != 'bp':
        return build_method(method, net, split_at=split_at, lr=lr,
                            momentum=momentum, weight_decay=weight_decay,
                            alpha_gs=alpha_gs, n_hidden=n_hidden,
                            target_scale=target_scale)
    split_at = sequential.resolve_split_at(net, split_at)
    modules = sequential.split(net, split_at)
    opts = {'module%d' % k: momentum_sgd(m, lr, momentum, weight_decay)
            for k, m in enumerate(modules)}
    return Method(method, net, opts, net, None, modules=modules,
                  decayed=list(opts), split_at=split_at)

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
from chainer.training import updaters as chainer_updaters

from chainer_vfbn import sequential
from chainer_vfbn import split_step
from chainer_vfbn import updaters
from chainer_vfbn.auxiliary import registry as auxiliary
from chainer_vfbn.models.resnet import Head
from chainer_vfbn.sequential import Sequence
from chainer_vfbn.synthesizers import registry

# The methods without a synthesizer: back-prop, and local learning (the
# auxiliary registry's). Every other method is a kind of the synthesizer
# registry, so the lists below are functions of it (a kind registered from
# outside the package is a method at once).
BACKPROP_METHODS = ('bp', 'bottom-bp', 'layerwise') + auxiliary.names()


def names():
    """Every method: :data:`BACKPROP_METHODS`, then each synthesizer kind."""
    return BACKPROP_METHODS + registry.names()


def synthetic(method):
    """Whether ``method`` trains gradient synthesizers."""
    return method in registry.KINDS


def pipeline_names():
    """What a decoupled (one rank per module) run trains: model-parallel
    back-propagation over the same modules, or any synthetic method."""
    return ('bp',) + registry.names()


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
        split_at (tuple): Where the network was cut (layer names or dotted
            paths, or a ``chainer.Sequential``'s step indices); empty for
            ``bp``.
        alpha_gs (float): The synthesizers' Adam step size, resolved
            (``None`` without a synthesizer): what a run records.
        local_weight (float): A local-learning method's weight, resolved
            (``None`` for a method without one): what a run records.
        links (list): Every link the method trains (the network, auxiliary
            heads, synthesizers); :meth:`to_device` moves them all.
    """

    def __init__(self, name, net, optimizers, predictor, make_updater,
                 modules=(), synthesizers=(), decayed=(), split_at=(),
                 aux_links=(), alpha_gs=None, local_weight=None):
        self.name = name
        self.optimizers = optimizers
        self.predictor = predictor
        self._make_updater = make_updater
        self.modules = list(modules)
        self.synthesizers = list(synthesizers)
        self.decayed = list(decayed)
        self.split_at = tuple(split_at)
        self.alpha_gs = alpha_gs
        self.local_weight = local_weight
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
    """``alpha_gs`` checked, or for ``None`` the default of ``method``'s
    synthesizer kind (registry); ``None`` for a method without a
    synthesizer. The one place where it is defaulted and checked.

    Raises:
        ValueError: One line: an unknown method, or a step size out of
            :func:`alpha_gs_ok`'s bounds.

    Example:
        >>> resolve_alpha_gs('vfbn', None), resolve_alpha_gs('bp', None)
        (0.001, None)
    """
    if method not in names():
        raise ValueError('unknown method %r; choose from %s'
                         % (method, ', '.join(names())))
    if not synthetic(method):
        return None
    if alpha_gs is None:
        return registry.kind(method).alpha_gs
    if not alpha_gs_ok(alpha_gs):
        raise ValueError('alpha_gs must be in [0, 1], got %g' % alpha_gs)
    return alpha_gs


def alpha_gs_ok(alpha_gs):
    """Whether Adam's step size means something: in ``[0, 1]``.

    Adam moves every synthesizer weight by about ``alpha_gs`` per step, so
    above 1 (the paper's is 1e-3) it can only diverge; 0 leaves the
    synthesizer at its initialization.
    """
    return 0 <= alpha_gs <= 1


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


def _check_target_scale(method, target_scale):
    split_step.check_target_scale(target_scale)
    if not synthetic(method):
        if target_scale != 'batch-mean':
            raise ValueError('target scale %s needs a synthetic-gradient '
                             'method, not %s' % (target_scale, method))
    elif target_scale not in registry.kind(method).target_scales:
        raise ValueError(
            'target scale %s is for free-form (DNI) synthesizers; %s gives '
            'the gradient of a batch-mean loss, whose scale is fixed'
            % (target_scale, method))


def _optimizer_factory(make_optimizer, sgd, alpha_gs):
    """``make(name, link)``: the user's optimizer for that part, or the
    default (MomentumSGD for the network, Adam for a synthesizer)."""
    def make(name, link):
        opt = make_optimizer(name, link) if make_optimizer else None
        if opt is None:
            return adam(link, alpha_gs) if name.startswith('synth') else \
                momentum_sgd(link, **sgd)
        if getattr(opt, 'target', None) is not link:
            raise ValueError('make_optimizer(%r, link) must return an '
                             'optimizer set up on link (opt.setup(link)) or '
                             'None' % name)
        return opt
    return make


def build_method(method, net, split_at=None, lr=0.1, momentum=0.9,
                 weight_decay=1e-4, alpha_gs=None, n_hidden=256,
                 target_scale='batch-mean', n_class=None, in_shape=None,
                 loss_func=None, make_optimizer=None, local_weight=None):
    """Build the links, optimizers and updater of a training method.

    Works for any sequential chain (:mod:`chainer_vfbn.sequential`): a
    ``chainer.Sequential``, a chain with ``layer_names`` such as the
    project's ResNet or chainercv's models, or a chain whose order one
    forward pass shows (chainercv2's). The shapes of ``h`` at the cuts and
    the number of classes come from one forward pass of a sample batch
    (:class:`~chainer_vfbn.sequential.Cut`).

    Args:
        method (str): One of :func:`names`.
        net: The network, already on its device or not (call
            :meth:`Method.to_device` afterwards). Its output must be class
            scores (logits), not probabilities.
        split_at: Split point(s) where the network is cut: a layer name, a
            dotted path into nested chains (``'features.stage2.unit2'``),
            a ``chainer.Sequential``'s step index, or a list of them;
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
        in_shape (tuple of int): One input example's shape, ``(C, H, W)``
            for images; ``None`` for ``net.in_shape``.
        loss_func: The network's loss ``loss_func(y, t)``; ``None`` for the
            mean softmax cross-entropy. A VFBN synthesizer differentiates the
            same loss; the closed forms refuse any other.
        make_optimizer: ``make_optimizer(name, link)``, called for each
            part with the optimizer's name (``'main'``, ``'module0'``..,
            ``'synth'``.., ``'bottom'``, ``'head'``, ``'top'``): an
            optimizer set up on ``link``, or ``None`` for the default
            (MomentumSGD(``lr``, ``momentum``) with ``weight_decay`` for
            the network, Adam(``alpha_gs``) for a synthesizer).
        local_weight (float): The tunable weight of a local-learning method
            that has one (``infopro``'s λ2); ``None`` for its default
            (:mod:`chainer_vfbn.auxiliary.registry`). Refused for another
            method.

    Returns:
        Method

    Example:
        >>> import chainer
        >>> import chainer.functions as F
        >>> import chainer.links as L
        >>> import numpy
        >>> net = chainer.Sequential(L.Convolution2D(3, 8, 3, pad=1), F.relu,
        ...                          L.Convolution2D(8, 8, 3, pad=1), F.relu,
        ...                          L.Linear(None, 10))
        >>> method = build_method('vfbn', net, split_at=1,
        ...                       in_shape=(3, 8, 8))
        >>> len(method.modules), len(method.synthesizers)
        (2, 1)
        >>> x = numpy.random.RandomState(0).rand(4, 3, 8, 8)
        >>> data = chainer.datasets.TupleDataset(
        ...     x.astype(numpy.float32), numpy.arange(4, dtype=numpy.int32))
        >>> train_iter = chainer.iterators.SerialIterator(data, 4)
        >>> updater = method.make_updater(
        ...     train_iter, chainer.dataset.concat_examples, -1)
        >>> updater.update()
        >>> updater.iteration
        1
    """
    return _build(method, net, split_at, lr, momentum, weight_decay,
                  alpha_gs, n_hidden, target_scale, n_class, in_shape,
                  loss_func, make_optimizer, local_weight,
                  model_parallel=False)


def build_pipeline(method, net, split_at=None, **kwargs):
    """The modules of a method trained one module per process.

    As :func:`build_method` (the same arguments), except that ``'bp'`` is
    model-parallel back-propagation: the network cut at ``split_at`` like a
    synthetic method, one MomentumSGD per module (``'module0'`` ..), no
    synthesizer. Every rank builds all of it, with the same random
    initialization where each seeds its generators alike first.

    Returns:
        Method: With :attr:`Method.modules` and, for a synthetic method,
        :attr:`Method.synthesizers`; its ``make_updater`` is the synchronous
        one (none for ``'bp'``).
    """
    if method not in pipeline_names():
        raise ValueError('a decoupled run trains %s, not %s'
                         % (', '.join(pipeline_names()), method))
    return _build(method, net, split_at, model_parallel=True, **kwargs)


def _build(method, net, split_at=None, lr=0.1, momentum=0.9,
           weight_decay=1e-4, alpha_gs=None, n_hidden=256,
           target_scale='batch-mean', n_class=None, in_shape=None,
           loss_func=None, make_optimizer=None, local_weight=None,
           model_parallel=False):
    alpha_gs = resolve_alpha_gs(method, alpha_gs)
    local_weight = auxiliary.resolve_weight(method, local_weight)
    _check_target_scale(method, target_scale)
    loss_func = loss_func or F.softmax_cross_entropy
    in_shape = in_shape or getattr(net, 'in_shape', None)
    if in_shape is None:
        raise ValueError(
            'give in_shape, the shape of one input example (e.g. (3, 32, '
            "32)): h's shapes come from one forward pass")
    # Back-prop ignores the split, but a wrong point is still a mistake.
    whole = method == 'bp' and not model_parallel
    cut = sequential.Cut(net, () if whole and split_at is None else split_at,
                         in_shape)
    n_class = _n_class(net, cut, n_class)
    make = _optimizer_factory(make_optimizer, dict(
        lr=lr, momentum=momentum, weight_decay=weight_decay), alpha_gs)
    if whole:
        return _backprop(net, make, loss_func)
    modules, split_at = cut.parts(), cut.points
    if method == 'bp':
        opts = {'module%d' % k: make('module%d' % k, m)
                for k, m in enumerate(modules)}
        return Method(method, net, opts, net, None, modules=modules,
                      decayed=list(opts), split_at=split_at)
    if synthetic(method):
        synths = [registry.build_synthesizer(method, cut.shapes[name],
                                             n_class, n_hidden, loss_func)
                  for name in split_at]
        return _synthetic(method, net, split_at, modules, synths, make,
                          target_scale, loss_func, alpha_gs)
    if len(modules) != 2:
        raise ValueError('%s takes one split point, got %d'
                         % (method, len(split_at)))
    if method in auxiliary.KINDS:
        aux = auxiliary.build_auxiliary(
            method, cut.shapes[split_at[0]], in_shape, n_class, loss_func,
            local_weight)
        return _layerwise(net, split_at, modules, aux, make, loss_func,
                          name=method, local_loss=aux.local_loss,
                          local_weight=local_weight)
    head = Head(cut.shapes[split_at[0]][0], n_class)
    build = _bottom_bp if method == 'bottom-bp' else _layerwise
    return build(net, split_at, modules, head, make, loss_func)


def _n_class(net, cut, n_class):
    """The width of the network's class scores; one line if its output is
    not class scores."""
    out = cut.output
    if out.ndim != 2:
        raise ValueError('the network gives an output of shape %s per '
                         'example; the methods need class scores (B, '
                         'n_class)' % (tuple(out.shape[1:]),))
    xp = chainer.backend.get_array_module(out)
    if bool((out >= 0).all()) and \
            float(xp.abs(out.sum(axis=1) - 1).max()) <= 1e-5:
        last = list(cut.shapes)
        hint = ''
        if hasattr(net, 'pick') and len(last) > 1:
            hint = " (a chainercv model: set model.pick = %r)" % last[-2]
        raise ValueError(
            'the network gives probabilities (each row non-negative, '
            'summing to 1), not class scores: the methods train on logits '
            'through the loss; cut off its last layer %r%s'
            % (last[-1], hint))
    if n_class is not None and n_class != out.shape[1]:
        raise ValueError('n_class is %d but the network gives %d class '
                         'scores' % (n_class, out.shape[1]))
    return out.shape[1]


def _standard_updater(opts):
    def make(iterator, converter, device):
        return chainer_updaters.StandardUpdater(
            iterator, opts, converter=converter, device=device)
    return make


def _backprop(net, make, loss_func):
    opts = {'main': make('main', L.Classifier(net, lossfun=loss_func))}
    return Method('bp', net, opts, net, _standard_updater(opts),
                  modules=[net], decayed=['main'])


def _bottom_bp(net, split_at, modules, head, make, loss_func):
    predictor = Sequence([('bottom', modules[0]), ('aux_head', head)])
    opts = {'main': make('main', L.Classifier(predictor, lossfun=loss_func))}
    return Method('bottom-bp', net, opts, predictor, _standard_updater(opts),
                  modules=[modules[0]], decayed=['main'], split_at=split_at,
                  aux_links=[head])


def _layerwise(net, split_at, modules, head, make, loss_func,
               name='layerwise', local_loss=None, local_weight=None):
    bottom, top = modules
    opts = {'bottom': make('bottom', bottom), 'head': make('head', head),
            'top': make('top', top)}

    def make_updater(iterator, converter, device):
        return updaters.LayerwiseUpdater(
            iterator, bottom, head, top, opts, converter=converter,
            device=device, loss_func=loss_func, local_loss=local_loss)
    return Method(name, net, opts, net, make_updater, modules=modules,
                  decayed=list(opts), split_at=split_at, aux_links=[head],
                  local_weight=local_weight)


def _synthetic(method, net, split_at, modules, synths, make, target_scale,
               loss_func, alpha_gs):
    opts = {'module%d' % k: make('module%d' % k, m)
            for k, m in enumerate(modules)}
    for name, synth in zip(split_step.synth_names(len(synths)), synths):
        opts[name] = make(name, synth)

    def make_updater(iterator, converter, device):
        return updaters.SyntheticGradientUpdater(
            iterator, modules, synths, opts, converter=converter,
            device=device, loss_func=loss_func, target_scale=target_scale)
    return Method(method, net, opts, net, make_updater, modules=modules,
                  synthesizers=synths,
                  decayed=['module%d' % k for k in range(len(modules))],
                  split_at=split_at, alpha_gs=alpha_gs)

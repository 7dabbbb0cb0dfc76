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
``dni-linear``  synthetic gradients from Jaderberg's linear model (Eq. 7)
``dni-resnet``  synthetic gradients from Jaderberg's small-ResNet model
``vfbn``        VFBN with the paper's small-ResNet virtual forward network
``vfbn-linear`` VFBN with a linear v_f, closed form (Eq. 8)
``vfbn-mlp``    VFBN with a one-hidden-layer v_f, closed form (Eq. 9)
============  ===============================================================
"""
import chainer
import chainer.links as L
from chainer import optimizers

from chainer_vfbn import split_step
from chainer_vfbn.models.resnet import Head
from chainer_vfbn.models.resnet import Sequence

BACKPROP_METHODS = ('bp', 'bottom-bp', 'layerwise')
SYNTHETIC_METHODS = ('dni-linear', 'dni-resnet', 'vfbn', 'vfbn-linear',
                     'vfbn-mlp')
METHODS = BACKPROP_METHODS + SYNTHETIC_METHODS

# Adam step size (alpha) of each synthesizer when none is given.
# VFBN: the paper's alpha_gs = 1e-3 (Table 1). DNI: the paper gives none.
# Adam moves every weight by about alpha per step whatever the gradient's
# scale, while grad_true of a mean loss is ~1e-4 per element here; a DNI
# synthesizer (a convolution over a fan-in of ~1850 non-negative inputs)
# then overshoots by orders of magnitude and the bottom diverges: on the
# bundled sample (resnet8-paper, batch 50) alpha 1e-5 and 1e-6 diverged,
# 1e-7 trained. VFBN is immune by construction: its output is a real
# softmax gradient, bounded whatever v_f's weights.
DEFAULT_ALPHA_GS = {
    'dni-linear': 1e-7,
    'dni-resnet': 1e-7,
    'vfbn': 1e-3,
    'vfbn-linear': 1e-3,
    'vfbn-mlp': 1e-3,
}


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
        split_names (list of str): Where the network was cut.
        links (list): Every link the method trains (the network, auxiliary
            heads, synthesizers); :meth:`to_device` moves them all.
    """

    def __init__(self, name, net, optimizers, predictor, make_updater,
                 modules=(), synthesizers=(), decayed=(), split_names=(),
                 aux_links=()):
        self.name = name
        self.optimizers = optimizers
        self.predictor = predictor
        self._make_updater = make_updater
        self.modules = list(modules)
        self.synthesizers = list(synthesizers)
        self.decayed = list(decayed)
        self.split_names = list(split_names)
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
    """``alpha_gs``, or the method's :data:`DEFAULT_ALPHA_GS` for ``None``."""
    return DEFAULT_ALPHA_GS.get(method, 0.) if alpha_gs is None else alpha_gs


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


def split_names(net, split_at=None):
    """The layer names where ``net`` is cut, as a list.

    ``None`` is the paper's point (``net.default_split``); a string is one
    name.
    """
    if split_at is None:
        return [net.default_split]
    return [split_at] if isinstance(split_at, str) else list(split_at)


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


def build_method(method, net, split_at=None, lr=0.1, momentum=0.9,
                 weight_decay=1e-4, alpha_gs=None, n_hidden=256,
                 target_scale='batch-mean'):
    """Build the links, optimizers and updater of a training method.

    Args:
        method (str): One of :data:`METHODS`.
        net (~chainer_vfbn.models.ResNetCIFAR): The network, already on its
            device or not (call ``to_device`` on the returned links' owner,
            ``net``, and on :attr:`Method.synthesizers` afterwards).
        split_at (str or list of str): Layer name(s) where the network is
            cut; ``None`` for the paper's point (``net.default_split``).
            Ignored by ``bp``; ``bottom-bp`` and ``layerwise`` take one name.
        lr, momentum, weight_decay (float): MomentumSGD of the network.
        alpha_gs (float): Adam step size of the gradient synthesizers;
            ``None`` for :data:`DEFAULT_ALPHA_GS` of the method.
        n_hidden (int): Hidden units of the ``vfbn-mlp`` virtual network.
        target_scale (str): What the synthesizers predict, δ or ``B·δ``
            (:mod:`chainer_vfbn.split_step`); synthetic methods only.

    Returns:
        Method
    """
    if method not in METHODS:
        raise ValueError('unknown method %r; choose from %s'
                         % (method, ', '.join(METHODS)))
    alpha_gs = resolve_alpha_gs(method, alpha_gs)
    check_alpha_gs(alpha_gs)
    split_step.check_target_scale(target_scale, method)
    if target_scale != 'batch-mean' and method not in SYNTHETIC_METHODS:
        raise ValueError('target scale %s needs a synthetic-gradient method, '
                         'not %s' % (target_scale, method))
    sgd = dict(lr=lr, momentum=momentum, weight_decay=weight_decay)
    if method == 'bp':
        return _backprop(net, split_at, sgd)
    names = split_names(net, split_at)
    modules = net.split(names)
    if method in SYNTHETIC_METHODS:
        return _synthetic(method, net, names, modules, sgd, alpha_gs,
                          n_hidden, target_scale)
    if len(modules) != 2:
        raise ValueError('%s takes one split point, got %d'
                         % (method, len(names)))
    head = Head(net.shapes[names[0]][0], net.n_class)
    build = _bottom_bp if method == 'bottom-bp' else _layerwise
    return build(net, names, modules, head, sgd)


def _standard_updater(opts):
    from chainer.training import updaters as chainer_updaters

    def make(iterator, converter, device):
        return chainer_updaters.StandardUpdater(
            iterator, opts, converter=converter, device=device)
    return make


def _backprop(net, split_at, sgd):
    # Back-prop ignores the split, but a wrong name is still a mistake.
    unknown = [n for n in split_at or () if n not in net.split_points]
    if unknown:
        raise ValueError('unknown split point(s) %s; choose from %s'
                         % (', '.join(unknown), ', '.join(net.split_points)))
    opts = {'main': momentum_sgd(L.Classifier(net), **sgd)}
    return Method('bp', net, opts, net, _standard_updater(opts),
                  modules=[net], decayed=['main'])


def _bottom_bp(net, names, modules, head, sgd):
    predictor = Sequence([('bottom', modules[0]), ('aux_head', head)])
    opts = {'main': momentum_sgd(L.Classifier(predictor), **sgd)}
    return Method('bottom-bp', net, opts, predictor, _standard_updater(opts),
                  modules=[modules[0]], decayed=['main'], split_names=names,
                  aux_links=[head])


def _layerwise(net, names, modules, head, sgd):
    from chainer_vfbn import updaters
    bottom, top = modules
    opts = {'bottom': momentum_sgd(bottom, **sgd),
            'head': momentum_sgd(head, **sgd),
            'top': momentum_sgd(top, **sgd)}

    def make(iterator, converter, device):
        return updaters.LayerwiseUpdater(
            iterator, bottom, head, top, opts, converter=converter,
            device=device)
    return Method('layerwise', net, opts, net, make, modules=modules,
                  decayed=list(opts), split_names=names, aux_links=[head])


def _synthetic(method, net, names, modules, sgd, alpha_gs, n_hidden,
               target_scale):
    from chainer_vfbn import updaters
    from chainer_vfbn.synthesizers import build_synthesizer

    synths = [build_synthesizer(method, net.shapes[name], n_class=net.n_class,
                                n_hidden=n_hidden) for name in names]
    opts = {'module%d' % k: momentum_sgd(m, **sgd)
            for k, m in enumerate(modules)}
    for name, synth in zip(split_step.synth_names(len(synths)), synths):
        opts[name] = adam(synth, alpha_gs)

    def make(iterator, converter, device):
        return updaters.SyntheticGradientUpdater(
            iterator, modules, synths, opts, converter=converter,
            device=device, target_scale=target_scale)
    return Method(method, net, opts, net, make, modules=modules,
                  synthesizers=synths,
                  decayed=['module%d' % k for k in range(len(modules))],
                  split_names=names)


# What a decoupled (one rank per module) run can train: model-parallel
# back-propagation over the same modules, or any synthetic method.
PIPELINE_METHODS = ('bp',) + SYNTHETIC_METHODS


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
    if method not in PIPELINE_METHODS:
        raise ValueError('a decoupled run trains %s, not %s'
                         % (', '.join(PIPELINE_METHODS), method))
    if method != 'bp':
        return build_method(method, net, split_at=split_at, lr=lr,
                            momentum=momentum, weight_decay=weight_decay,
                            alpha_gs=alpha_gs, n_hidden=n_hidden,
                            target_scale=target_scale)
    names = split_names(net, split_at)
    modules = net.split(names)
    opts = {'module%d' % k: momentum_sgd(m, lr, momentum, weight_decay)
            for k, m in enumerate(modules)}
    return Method(method, net, opts, net, None, modules=modules,
                  decayed=list(opts), split_names=names)

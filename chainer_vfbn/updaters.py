"""Updaters that train a network cut into modules without end-to-end back-prop.

:class:`SyntheticGradientUpdater`
    Decoupled training with synthetic gradients (Jaderberg et al., 2016;
    Section 2 of the VFBN paper). Each module below a split is updated with
    the gradient ``grad_synth`` (δ̂) that the split's synthesizer predicts
    from the module's output ``h`` and the labels, never waiting for the
    modules above; each synthesizer is then regressed onto the gradient the
    module above actually sends back (Eq. 3).
:class:`LayerwiseUpdater`
    The paper's "layer-wise supervised loss" baseline (Table 1): the bottom
    is trained through an auxiliary head on a local softmax cross-entropy,
    the top by back-prop on the detached activation.

Both are :class:`~chainer.training.updaters.StandardUpdater` subclasses that
override only ``update_core``, so ``serialize`` (and with it
:func:`~chainer.training.extensions.snapshot`) saves every optimizer's state
and every optimizer's target link: the modules, the auxiliary head and the
synthesizers. The plain back-prop baselines (``bp``, ``bottom-bp``) need no
custom updater.

Vocabulary (as in koz4k/dni-pytorch): ``h`` the activation at a split, ``t``
the labels, ``grad_true`` (δ) the gradient back-propagated from above,
``grad_synth`` (δ̂) the synthetic one.
"""
import chainer
import chainer.functions as F
from chainer.dataset import convert
from chainer.training import updaters

from chainer_vfbn import split_step


def _check_optimizers(optimizers, links):
    """Validate an ``{name: optimizer}`` dict against ``{name: link}``.

    Every name must be present, no other name allowed, and each optimizer
    must be set up on exactly its link (it updates that link's parameters).
    """
    if not isinstance(optimizers, dict):
        raise ValueError('optimizers must be a dict {name: optimizer} with '
                         'names %s, got %s'
                         % (', '.join(links), type(optimizers).__name__))
    missing = [name for name in links if name not in optimizers]
    unknown = sorted(name for name in optimizers if name not in links)
    if missing or unknown:
        raise ValueError(
            'optimizers must have exactly the names %s; missing: %s; '
            'unexpected: %s' % (', '.join(links), ', '.join(missing) or '-',
                                ', '.join(unknown) or '-'))
    for name, link in links.items():
        target = getattr(optimizers[name], 'target', None)
        if target is not link:
            raise ValueError(
                'optimizer %r must be set up on its own link (%r), '
                'got one set up on %r' % (name, link, target))


class SyntheticGradientUpdater(updaters.StandardUpdater):
    """Decoupled training of ``K`` modules with ``K - 1`` synthesizers.

    Per iteration, for each split ``k`` (between module ``k`` and ``k + 1``)
    in forward order:

    a. ``h = modules[k](inp)``; ``grad_synth = synthesizers[k](h_const, t)``
       on ``h_const``, a copy of ``h`` cut from the bottom's graph;
    b. module ``k`` back-propagates ``grad_synth`` from ``h`` and is updated
       at once: the bottom never waits for the top (Eq. 2);
    c. module ``k + 1`` runs on a fresh Variable holding ``h.array``, whose
       ``.grad`` after that module's backward is the split's target δ: the
       true gradient of the loss for the last module, and for a middle
       module the gradient implied by its own synthetic gradient (the
       bootstrapped target of Jaderberg et al., Section 3.1).

    Then the last module computes ``loss = loss_func(y, t)``, back-propagates
    and is updated; finally each synthesizer is trained on
    ``synth_loss = ||grad_true - grad_synth||²`` (Eq. 3, summed over the
    batch, ``grad_true`` a constant) by its own optimizer.

    Optimizers (a dict): ``'module0'`` .. ``'module{K-1}'`` for the modules,
    and ``'synth'`` (``K == 2``) or ``'synth0'`` .. ``'synth{K-2}'``
    (``K > 2``) for the synthesizers. The last module's optimizer is also
    registered as ``'main'``, because some extensions default to
    ``get_optimizer('main')``; note that a learning-rate schedule must still
    be applied to every ``'module{k}'`` optimizer by name. The alias makes
    :meth:`serialize` write the last module's state under both names; the
    two copies are identical and loading them restores the same state.

    Reports: ``'main/loss'``, ``'main/accuracy'`` (the last module's), and
    for each split ``'<prefix>/loss'`` (``synth_loss``), ``'<prefix>/cos'``
    (cosine similarity of δ̂ and δ over the whole batch),
    ``'<prefix>/relerr'`` (``||δ - δ̂|| / ||δ||``) and
    ``'<prefix>/norm_ratio'`` (``||δ̂|| / ||δ||``), with ``<prefix>`` the
    synthesizer's optimizer name (:func:`chainer_vfbn.split_step.agreement`).

    Args:
        iterator: Dataset iterator (or ``{'main': iterator}``) yielding
            ``(x, t)`` examples.
        modules (list of ~chainer.Link): ``K >= 2`` consecutive modules,
            e.g. from :func:`chainer_vfbn.split`.
        synthesizers (list of ~chainer.Link): ``K - 1`` gradient
            synthesizers, each called as ``synth(h, t) -> grad_synth``
            (a Variable shaped like ``h`` on the scale of dℓ/dh).
        optimizers (dict): ``{name: optimizer}`` as above, each set up on
            its module or synthesizer (Adam with ``alpha = alpha_gs`` for the
            synthesizers in the paper; ``alpha_gs = 0`` keeps them at their
            initialization).
        converter: Batch converter, ``converter(batch, device) -> (x, t)``.
        device: Device of the links and the data (``None`` leaves the links
            where they are).
        loss_func: ``loss_func(y, t)`` of the last module, the mean softmax
            cross-entropy by default. A VFBN synthesizer built for another
            loss is refused (:func:`chainer_vfbn.split_step.check_loss`).
        target_scale (str): What the synthesizers predict, δ
            (``'batch-mean'``) or ``B·δ`` (``'per-example'``, applied as
            ``δ̂/B``); see :mod:`chainer_vfbn.split_step`.
    """

    def __init__(self, iterator, modules, synthesizers, optimizers,
                 converter=convert.concat_examples, device=None,
                 loss_func=F.softmax_cross_entropy,
                 target_scale='batch-mean'):
        split_step.check_target_scale(target_scale)
        modules = list(modules)
        synthesizers = list(synthesizers)
        if len(modules) < 2:
            raise ValueError('SyntheticGradientUpdater needs at least 2 '
                             'modules, got %d' % len(modules))
        if len(synthesizers) != len(modules) - 1:
            raise ValueError(
                '%d modules need %d synthesizers (one per split), got %d'
                % (len(modules), len(modules) - 1, len(synthesizers)))
        self.module_names = ['module%d' % k for k in range(len(modules))]
        self.synth_names = split_step.synth_names(len(synthesizers))
        links = dict(zip(self.module_names, modules))
        links.update(zip(self.synth_names, synthesizers))
        _check_optimizers(optimizers, links)
        for name, synth in zip(self.synth_names, synthesizers):
            split_step.check_loss(synth, loss_func, name)
        optimizers = dict(optimizers)
        optimizers['main'] = optimizers[self.module_names[-1]]
        super().__init__(iterator, optimizers, converter=converter,
                         device=device, loss_func=loss_func)
        self.modules = modules
        self.synthesizers = synthesizers
        self.target_scale = target_scale

    def update_core(self):
        iterator = self._iterators['main']
        x, t = self.converter(iterator.next(), self.input_device)
        opts = self._optimizers

        inp = x
        splits = []  # (prediction, input Variable of the module above)
        for k, synth in enumerate(self.synthesizers):
            module = self.modules[k]
            # a. The module's output, and δ̂ from a copy cut from its graph
            # (the synthesizer's own graph stays, for its update below).
            h = module(inp)
            prediction, grad_synth = split_step.synthesize(
                synth, h.array, t, self.target_scale, self.synth_names[k])
            # b. Back-propagate δ̂ into module k and update it now (Eq. 2).
            split_step.backward_from(module, h, grad_synth)
            opts[self.module_names[k]].update()
            # c. The module above starts from a fresh leaf: its .grad will be
            # the target δ of this split.
            inp = chainer.Variable(h.array)
            splits.append((prediction, inp))

        # d. The last module by plain back-prop on the task loss.
        y, loss = split_step.top_backward(self.modules[-1], inp, t,
                                          self.loss_func)
        opts[self.module_names[-1]].update()
        chainer.report({'main/loss': loss,
                        'main/accuracy': F.accuracy(y, t)})

        # e. Regress each δ̂ onto its target δ (Eq. 3); δ is a constant.
        for name, synth, (prediction, inp) in zip(
                self.synth_names, self.synthesizers, splits):
            split_step.report(name, split_step.regress(
                synth, opts[name], prediction, inp.grad, self.target_scale,
                name))

        if self.auto_new_epoch and iterator.is_new_epoch:
            # 'main' aliases the last module's optimizer: count it once.
            for name in self.module_names + self.synth_names:
                opts[name].new_epoch(auto=True)


class LayerwiseUpdater(updaters.StandardUpdater):
    """The "layer-wise supervised loss" baseline of the paper's Table 1.

    Per iteration: ``h = bottom(x)``; the bottom and the auxiliary ``head``
    (e.g. :class:`~chainer_vfbn.models.resnet.Head`, GAP + linear) are
    updated by back-prop of the local loss ``loss_func(head(h), t)``; the
    top is updated by back-prop of ``loss_func(top(h'), t)`` on ``h'``, a
    fresh Variable holding ``h.array``, so no gradient of the top's loss
    reaches the bottom.

    Optimizers (a dict): ``'bottom'``, ``'head'`` and ``'top'``, each set
    up on its link; the top's is also registered as ``'main'`` (see
    :class:`SyntheticGradientUpdater` on this alias).

    Reports ``'main/loss'``, ``'main/accuracy'`` (the top's) and
    ``'local/loss'``, ``'local/accuracy'`` (the auxiliary head's), and
    ``'local/<key>'`` for each further figure of ``local_loss``.

    The local-learning methods of :mod:`chainer_vfbn.auxiliary` (DGL,
    InfoPro) are this step with another head and local objective.

    Args:
        iterator: Dataset iterator yielding ``(x, t)`` examples.
        bottom (~chainer.Link): Module below the split.
        head (~chainer.Link): Auxiliary classifier on ``h``.
        top (~chainer.Link): Module above the split (ends in class scores).
        optimizers (dict): ``{'bottom': ..., 'head': ..., 'top': ...}``.
        converter: Batch converter, ``converter(batch, device) -> (x, t)``.
        device: Device of the links and the data.
        loss_func: Loss of both heads, the mean softmax cross-entropy by
            default.
        local_loss: The bottom's objective, ``local_loss(h, x, t) -> (loss,
            y_local, values)`` (``values``: further figures to report);
            ``None`` for ``loss_func(head(h), t)``.
    """

    def __init__(self, iterator, bottom, head, top, optimizers,
                 converter=convert.concat_examples, device=None,
                 loss_func=F.softmax_cross_entropy, local_loss=None):
        _check_optimizers(optimizers, {'bottom': bottom, 'head': head,
                                       'top': top})
        optimizers = dict(optimizers)
        optimizers['main'] = optimizers['top']
        super().__init__(iterator, optimizers, converter=converter,
                         device=device, loss_func=loss_func)
        self.bottom = bottom
        self.head = head
        self.top = top
        self.local_loss = local_loss or self._head_loss

    def _head_loss(self, h, x, t):
        y_local = self.head(h)
        return self.loss_func(y_local, t), y_local, {}

    def update_core(self):
        iterator = self._iterators['main']
        x, t = self.converter(iterator.next(), self.input_device)
        opts = self._optimizers

        # The bottom and its auxiliary head, on the local loss only.
        h = self.bottom(x)
        local_loss, y_local, values = self.local_loss(h, x, t)
        self.bottom.cleargrads()
        self.head.cleargrads()
        local_loss.backward()
        local_loss.unchain_backward()
        opts['bottom'].update()
        opts['head'].update()

        # The top, by back-prop on the detached activation.
        y = self.top(chainer.Variable(h.array))
        loss = self.loss_func(y, t)
        self.top.cleargrads()
        loss.backward()
        opts['top'].update()

        chainer.report({'main/loss': loss,
                        'main/accuracy': F.accuracy(y, t),
                        'local/loss': local_loss,
                        'local/accuracy': F.accuracy(y_local, t)})
        chainer.report({'local/' + k: v for k, v in values.items()})

        if self.auto_new_epoch and iterator.is_new_epoch:
            for name in ('bottom', 'head', 'top'):
                opts[name].new_epoch(auto=True)

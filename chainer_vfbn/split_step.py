"""The science at one split, shared by the synchronous and decoupled trainers.

At a split between module ``k`` and ``k + 1`` a synthesizer predicts δ̂ from
the activation ``h`` and the labels ``t``; module ``k`` back-propagates δ̂ at
once (:func:`synthesize`), and once the true gradient δ arrives from above
the synthesizer is regressed onto it, Eq. 3 (:func:`regress`).

Target scale (``target_scale``):

``batch-mean`` (default, the paper's set-up)
    The synthesizer predicts δ = ∂ℓ/∂h of the batch-*mean* loss ℓ, whose
    per-example entries carry a factor ``1/B``; δ̂ is applied as predicted.
``per-example``
    The synthesizer predicts ``B·δ``, the gradient of each example's own
    loss, and is applied as ``δ̂/B``; the regression target is ``B·δ``. A
    synthesizer whose output starts at zero (DNI) then meets a target of
    order one instead of order ``1/B``, so one Adam step of size α moves its
    prediction about as far as the target is from zero whatever the batch
    size. The gradient applied to the module below is the same function of
    the weights up to that factor: a ``per-example`` synthesizer whose output
    weights are ``B`` times a ``batch-mean`` one applies the same δ̂.
    VFBN's δ̂ is the gradient of a batch-mean loss through ``v_f`` and has
    δ's scale by construction, so ``per-example`` is refused for VFBN
    (the registry's kinds whose ``target_scales`` are ``batch-mean`` only,
    :func:`chainer_vfbn.synthesizers.registry.scale_free`).
"""
import chainer
import chainer.functions as F

from chainer_vfbn.divergence import check_finite

TARGET_SCALES = ('batch-mean', 'per-example')


def synth_name(k, n_splits):
    """Optimizer (and report) name of the synthesizer at split ``k``."""
    return 'synth' if n_splits == 1 else 'synth%d' % k


def synth_names(n_splits):
    """Optimizer (and report) names of the synthesizers, one per split."""
    return [synth_name(k, n_splits) for k in range(n_splits)]


def check_target_scale(target_scale):
    """Raise ValueError for an unknown scale (which scales a synthesizer
    kind may predict is the registry's ``Kind.target_scales``)."""
    if target_scale not in TARGET_SCALES:
        raise ValueError('unknown target scale %r; choose from %s'
                         % (target_scale, ', '.join(TARGET_SCALES)))


def check_loss(synth, loss_func, name='synth'):
    """Refuse a synthesizer whose δ̂ is the gradient of another loss.

    A VFBN synthesizer's ``loss_func`` attribute is the loss its δ̂
    differentiates (Eq. 6); it must be the loss the network is trained on,
    or δ̂ would estimate the wrong gradient. A free-form synthesizer (DNI)
    has none and learns whichever gradient it is regressed onto.
    """
    own = getattr(synth, 'loss_func', None)
    if own is not None and own is not loss_func:
        raise ValueError(
            '%s synthesizes the gradient of %s but the network is trained on '
            '%s: build the synthesizer with the same loss_func'
            % (name, getattr(own, '__name__', own),
               getattr(loss_func, '__name__', loss_func)))


def target_factor(target_scale, batch_size):
    """What the synthesizer's output is δ times: 1 or the batch size."""
    return batch_size if target_scale == 'per-example' else 1


def applied(prediction, target_scale):
    """The gradient a prediction stands for: it divided by
    :func:`target_factor`."""
    factor = target_factor(target_scale, prediction.shape[0])
    return prediction / factor if factor != 1 else prediction


def synthesize(synth, h, t, target_scale='batch-mean', name='synth'):
    """δ̂ for one activation.

    Args:
        synth (~chainer.Link): ``synth(h, t) -> prediction``.
        h (array): The activation, already cut from the bottom's graph.
        t (array): Labels.
        target_scale (str): One of :data:`TARGET_SCALES`.
        name (str): The synthesizer's name, for the error messages.

    Raises:
        ~chainer_vfbn.divergence.Diverged: δ̂ is not finite (checked before
            it reaches the module below).

    Returns:
        tuple: ``(prediction, grad_synth)``: the synthesizer's output, a
        Variable that keeps its graph for :func:`regress`, and the array to
        back-propagate into the module below (the prediction divided by
        :func:`target_factor`).
    """
    prediction = synth(chainer.Variable(h), t)
    if prediction.shape != h.shape:
        raise ValueError(
            'synthesizer %s returned a gradient of shape %s for an '
            'activation of shape %s' % (name, prediction.shape, h.shape))
    check_finite('%s: the synthetic gradient' % name, prediction)
    grad_synth = applied(prediction.array, target_scale)
    return prediction, grad_synth


def backward_from(module, h, grad):
    """Back-propagate ``grad`` from ``h`` into ``module`` (Eq. 2 with δ̂).

    Clears the module's gradients first and cuts ``h``'s graph after, so
    that the optimizer's update sees exactly this gradient.
    """
    module.cleargrads()
    h.grad = grad
    h.backward()
    h.unchain_backward()


def top_backward(module, inp, t, loss_func):
    """The last module: its loss on ``inp``, back-propagated.

    ``inp`` is a fresh leaf Variable holding the activation below, so after
    this its ``.grad`` is the split's target δ.

    Returns:
        tuple: ``(y, loss)``, the class scores and the loss Variable.
    """
    y = module(inp)
    loss = loss_func(y, t)
    module.cleargrads()
    loss.backward()
    return y, loss


def agreement(grad_true, grad_synth):
    """Agreement of the applied δ̂ with δ, flattened over the whole batch.

    Returns:
        dict: 0-dim arrays ``cos = <δ, δ̂> / (||δ|| ||δ̂||)``,
        ``relerr = ||δ - δ̂|| / ||δ||`` and ``norm_ratio = ||δ̂|| / ||δ||``
        (denominators floored at the dtype's smallest normal number, so a
        zero gradient gives 0, not NaN).
    """
    xp = chainer.backend.get_array_module(grad_true)
    d = grad_true.ravel()
    s = grad_synth.ravel()
    tiny = xp.finfo(d.dtype).tiny
    norm_d = xp.maximum(xp.sqrt(xp.dot(d, d)), tiny)
    norm_s = xp.sqrt(xp.dot(s, s))
    diff = d - s
    return {'cos': xp.dot(d, s) / xp.maximum(norm_d * norm_s, tiny),
            'relerr': xp.sqrt(xp.dot(diff, diff)) / norm_d,
            'norm_ratio': norm_s / norm_d}


def regress(synth, optimizer, prediction, grad_true,
            target_scale='batch-mean', name='synth'):
    """Eq. 3: one step of the synthesizer on ``||target - prediction||²``.

    The target is δ times :func:`target_factor` (a constant); the loss is
    summed over the batch.

    Raises:
        ~chainer_vfbn.divergence.Diverged: The loss is not finite (checked
            before the step, so the synthesizer keeps finite weights).

    Returns:
        dict: ``loss`` and :func:`agreement` of the applied δ̂ with δ, ready
        for ``chainer.report`` under the synthesizer's name.
    """
    factor = target_factor(target_scale, grad_true.shape[0])
    target = grad_true * factor if factor != 1 else grad_true
    synth_loss = F.sum(F.squared_difference(prediction, target))
    check_finite('%s/loss' % name, synth_loss)
    synth.cleargrads()
    synth_loss.backward()
    optimizer.update()
    grad_synth = applied(prediction.array, target_scale)
    values = agreement(grad_true, grad_synth)
    values['loss'] = synth_loss.array
    return values


def report(name, values):
    """``chainer.report`` of :func:`regress`'s values as ``<name>/<key>``."""
    chainer.report({'%s/%s' % (name, k): v for k, v in values.items()})

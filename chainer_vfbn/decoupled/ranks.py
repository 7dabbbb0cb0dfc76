"""Building one rank's worker: the same way in the CLI, the benchmark and
the tests. Every rank first builds the whole method with
:func:`chainer_vfbn.methods.build_pipeline` (the same initialisation on every
rank when each seeds its generators alike), then keeps its own parts.
"""
from chainer_vfbn import split_step
from chainer_vfbn.decoupled.placement import synth_placement
from chainer_vfbn.decoupled.worker import DecoupledWorker


def make_worker(method, transport, max_staleness=0, placement='above',
                device=None, target_scale='batch-mean', **kwargs):
    """The worker of rank ``transport.rank`` for a built ``method``.

    Moves this rank's links to ``device``. Rank ``k`` gets module ``k``,
    synth_k below the top and, with ``placement='above'``, the master copy
    of synth_{k-1}.

    Args:
        method (~chainer_vfbn.methods.Method): From
            :func:`chainer_vfbn.methods.build_pipeline`.
        transport: A transport, or a ChainerMN communicator.
        max_staleness, device, target_scale: As
            :class:`~chainer_vfbn.decoupled.worker.DecoupledWorker`.
        placement (str): ``'above'`` or ``'below'`` (ignored for ``bp``).
        kwargs: More :class:`DecoupledWorker` options (``timeout``, ...).
    """
    k, n_splits = transport.rank, len(method.modules) - 1
    synths = method.synthesizers
    placement = synth_placement(bool(synths), placement)
    has_synth = bool(synths) and k < n_splits
    has_lower = placement == 'above' and k > 0

    def synth_opt(j):
        return method.optimizers[split_step.synth_name(j, n_splits)]
    links = [method.modules[k]]
    links += [synths[k]] if has_synth else []
    links += [synths[k - 1]] if has_lower else []
    if device is not None:
        for link in links:
            link.to_device(device)
    return DecoupledWorker(
        transport, method.modules[k], method.optimizers['module%d' % k],
        synthesizer=synths[k] if has_synth else None,
        synth_optimizer=synth_opt(k) if has_synth else None,
        mode='synthetic' if synths else 'bp',
        max_staleness=max_staleness, device=device,
        synth_placement=placement,
        lower_synthesizer=synths[k - 1] if has_lower else None,
        lower_synth_optimizer=synth_opt(k - 1) if has_lower else None,
        target_scale=target_scale, **kwargs)

"""Decoupled training: each module of the network in its own process.

The reason synthetic gradients exist (Jaderberg et al., 2016; Section 2 of
the VFBN paper) is that a module need not wait for the modules above it.
The paper's footnote 1 admits that its synthetic gradients only replaced
back-propagation inside ordinary synchronous training.
:class:`~chainer_vfbn.updaters.SyntheticGradientUpdater` does the same: one
process runs the modules one after the other. This module runs them in
*different processes*, one ChainerMN rank per module, so that the bottom
really never waits for the top.

Who does what (rank ``k`` of ``K`` owns module ``k``, its optimizer, and
the synthesizer at its output):

* rank 0 reads the batch ``(x, t)``; every other rank receives
  ``(h_{k-1}, t)`` from rank ``k - 1``: the labels travel with ``h``, so
  every rank sees the same ``t``;
* a rank below the top computes ``h_k``, sends ``(h_k, t)`` up at once
  (non-blocking), back-propagates ``grad_synth = synth(h_k, t)`` (Eq. 2)
  into its module and updates it: it does NOT wait for the true gradient;
* rank ``k + 1`` back-propagates into its input and sends
  ``grad_true`` = δ_k = ∂ℓ/∂h_k down (non-blocking; for a middle rank δ_k
  is the gradient implied by its own synthetic gradient, the bootstrapped
  target of Jaderberg et al., Section 3.1, exactly as in the synchronous
  updater);
* the last rank computes the real loss ``ℓ = loss_func(y, t)``;
* when δ_k for iteration ``j`` arrives, rank ``k`` trains its synthesizer on
  ``||δ_k(j) - synth(h_k(j), t(j))||²`` (Eq. 3). A queue of
  ``(j, h_k(j), t(j))`` on rank ``k`` pairs each δ with the activation and
  labels of *its own* iteration; ``synth(h_k(j), t(j))`` is recomputed with
  the synthesizer's current parameters when the synthesizer was updated
  since iteration ``j`` (its old graph would see parameters that the
  optimizer has since changed in place); otherwise the graph of the forward
  that produced the module's δ̂ is reused.

Where the synthesizer trains (``synth_placement``). The protocol above is
``'below'``: synth_k trains on rank k. With ``'above'`` the *master* copy of
synth_k and its optimizer live on rank ``k + 1``, which already holds
``h_k(j)``, ``t(j)`` and δ_k(j) the moment its backward ends: it trains
synth_k there at once (no queue, no recomputation) and sends the new
weights down (non-blocking); rank ``k`` keeps a *replica* that only
computes δ̂ and takes each weight version when the staleness bound needs
it. No δ travels down at all. The schedule is the same (the synthesizer
used at iteration ``i`` has learnt from δ(1..i-1-s)), so the numbers are
the same as with ``'below'``; only who pays for Eq. 3 changes: at the
paper's split the bottom module is the heavier one and the top idles, so
``'above'`` moves the synthesizer's training (about 2/3 of its cost) onto
the idle rank.

Staleness. Rank ``k`` keeps at most ``max_staleness`` δ's outstanding: after
its update at iteration ``i`` it blocks until δ(j) has arrived for every
``j <= i - max_staleness`` and trains the synthesizer on them, oldest first.
A δ is consumed exactly when that bound forces it, never earlier, so the
synthesizer used at iteration ``i`` has learned from δ(1..i-1-s), ``s =
max_staleness``: the schedule, hence the numbers, do not depend on timing
(a CPU run is reproducible). The staleness of each consumed δ (iterations
of the module completed since its forward) is reported as
``<synth>/staleness``. With ``max_staleness = 0`` every rank waits for δ
before its next step: the computation is then exactly that of
:class:`~chainer_vfbn.updaters.SyntheticGradientUpdater` in one process.

``mode='bp'`` is the model-parallel back-propagation baseline: the same
ranks, no synthesizers, and rank ``k`` waits for δ_k before it can
back-propagate and update (the "lock" that synthetic gradients remove).

Transport. ChainerMN's communicator (``chainermn.create_communicator``:
``'naive'`` on CPUs, ``'pure_nccl'`` with one GPU per rank) sets up the
ranks; the messages go through :mod:`~chainer_vfbn.decoupled.transport`
(non-blocking MPI, or a loopback between the threads of one process for
the tests). ChainerMN's multi-node iterator is not used: it broadcasts
every batch to every rank (a collective per iteration, which would
re-synchronise the ranks); here only rank 0 reads data.

The package:

* :mod:`~chainer_vfbn.decoupled.transport`: the message codec, the MPI and
  loopback transports, the synthesizer weight transfer;
* :mod:`~chainer_vfbn.decoupled.worker`: :class:`DecoupledWorker`, one
  rank: the protocol that orders the work of the next three modules;
* :mod:`~chainer_vfbn.decoupled.steps`: the module's training step (built
  on :mod:`chainer_vfbn.split_step`) and the evaluation relay;
* :mod:`~chainer_vfbn.decoupled.placement`: the synthesizers' placements
  (the staleness queue of ``'below'``, the replica and master copy of
  ``'above'``);
* :mod:`~chainer_vfbn.decoupled.channel`: one rank's messages and
  observations;
* :mod:`~chainer_vfbn.decoupled.ranks`: building one rank's parts (shared
  by the CLI, ``benchmarks/bench_decoupled.py`` and the tests).

The run around it (``train_cifar.py --decoupled``: ``--out``, its snapshot
sets, rank 0's log and plots) is the run layer's:
:mod:`chainer_vfbn.runs.decoupled`, :mod:`chainer_vfbn.runs.snapshot_sets`
and :mod:`chainer_vfbn.runs.relay`.
"""
from chainer_vfbn.decoupled.transport import abort  # NOQA
from chainer_vfbn.decoupled.transport import DecoupledError  # NOQA
from chainer_vfbn.decoupled.transport import EpochInfo  # NOQA
from chainer_vfbn.decoupled.transport import LoopbackTransport  # NOQA
from chainer_vfbn.decoupled.transport import MPITransport  # NOQA
from chainer_vfbn.decoupled.transport import run_loopback  # NOQA
from chainer_vfbn.decoupled.worker import DecoupledWorker  # NOQA
from chainer_vfbn.decoupled.worker import EVALUATE  # NOQA
from chainer_vfbn.decoupled.worker import LOG  # NOQA
from chainer_vfbn.decoupled.worker import LR_DECAY  # NOQA
from chainer_vfbn.decoupled.worker import PLACEMENTS  # NOQA
from chainer_vfbn.decoupled.worker import SNAPSHOT  # NOQA
from chainer_vfbn.decoupled.worker import STOP  # NOQA

"""What the ``benchmarks/`` scripts share, so that they import the package
only (never each other):

:mod:`~chainer_vfbn.experiments.bench.steps`
    one training step, built as training builds it, on a fixed batch, and
    its timing;
:mod:`~chainer_vfbn.experiments.bench.machine`
    the device, library versions and code version a figure was measured on;
:mod:`~chainer_vfbn.experiments.bench.pipeline`
    each rank's work in a K = 2 split step, its cost and the most a
    pipeline gains;
:mod:`~chainer_vfbn.experiments.bench.decoupled_speed`
    the steady-state speed of a decoupled run and of one process;
:mod:`~chainer_vfbn.experiments.bench.macs`
    the multiply-accumulates Chainer executes;
:mod:`~chainer_vfbn.experiments.bench.kernel_profile`
    GPU kernel time of a step from a ``torch.profiler`` trace;
:mod:`~chainer_vfbn.experiments.bench.torch_resnet`
    the PyTorch eager twin of the CIFAR ResNet (imports PyTorch).

Importing any of them but ``torch_resnet`` needs neither PyTorch nor CuPy.
"""

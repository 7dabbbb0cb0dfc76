"""chainer_vfbn.experiments.bench.macs (and its CLI, benchmarks/count_macs.py): MACs of
what Chainer runs, checked by hand."""
import subprocess
import sys

import chainer
import chainer.functions as F
import chainer.links as L
import numpy
import pytest

import chainer_vfbn
from chainer_vfbn.experiments.bench import macs
from chainer_vfbn.experiments.bench.pipeline import pipeline_bounds
from chainer_vfbn.models import resnet_cifar
from chainer_vfbn.synthesizers import build_synthesizer

from support import REPO


def _x(*shape):
    return numpy.random.RandomState(0).standard_normal(shape).astype(
        numpy.float32)


@pytest.mark.parametrize('stride,pad,out', [(1, 1, 8), (2, 1, 4), (1, 0, 6)])
def test_convolution_forward_and_both_gradients(stride, pad, out):
    conv = L.Convolution2D(3, 4, 3, stride=stride, pad=pad)
    x = chainer.Variable(_x(2, 3, 8, 8))
    forward = 2 * out * out * 4 * 3 * 3 * 3      # N Ho Wo O C kh kw
    assert macs.count(lambda: conv(x)) == forward

    def step():
        F.sum(conv(x)).backward()
    # gradient w.r.t. W (Convolution2DGradW) and x (Deconvolution2DFunction)
    assert macs.count(step) == 3 * forward


def test_dilated_convolution():
    # 8x8 input, 3x3 kernel dilated by 2 (a 5x5 footprint), no pad: 4x4 out
    got = macs.count(lambda: F.dilated_convolution_2d(
        _x(1, 3, 8, 8), _x(4, 3, 3, 3), dilate=2))
    assert got == 1 * 4 * 4 * 4 * 27
    # depthwise: a grouped Convolution2DFunction, 2 maps per input map
    got = macs.count(lambda: F.depthwise_convolution_2d(
        _x(1, 3, 8, 8), _x(2, 3, 3, 3)))
    assert got == 1 * 6 * 6 * (3 * 2) * 9


def test_input_without_gradient_costs_no_data_gradient():
    conv = L.Convolution2D(3, 4, 3, pad=1)
    x = _x(2, 3, 8, 8)                           # an array: no gx

    def step():
        F.sum(conv(x)).backward()
    assert macs.count(step) == 2 * (2 * 8 * 8 * 4 * 27)


def test_linear_and_matmul():
    fc = L.Linear(7, 3)
    x = chainer.Variable(_x(5, 7))
    assert macs.count(lambda: fc(x)) == 5 * 7 * 3
    assert macs.count(lambda: F.sum(fc(x)).backward()) == 3 * 5 * 7 * 3
    a, b = _x(4, 6), _x(5, 6)
    assert macs.count(
        lambda: F.matmul(a, b, transb=True)) == 4 * 6 * 5
    assert macs.count(
        lambda: F.matmul(_x(2, 4, 6), _x(2, 6, 5))) == 2 * 4 * 6 * 5


def test_unknown_matrix_product_is_an_error_not_a_short_count():
    with pytest.raises(RuntimeError, match='TensorDot'):
        macs.count(lambda: F.tensordot(_x(4, 6), _x(6, 5), axes=1))
    with pytest.raises(RuntimeError, match='EinSum'):
        macs.count(lambda: F.einsum('ij,jk->ik', _x(4, 6), _x(6, 5)))


def test_closed_form_vfbn_is_counted():
    h = _x(4, 64, 2, 2)
    synth = build_synthesizer('vfbn-linear', h.shape[1:], 10)
    t = numpy.arange(4, dtype=numpy.int32)
    # scores h W^T and δ̂ = g W: 2 B D K
    assert macs.count(lambda: synth(h, t)) == 2 * 4 * 256 * 10


def test_split_costs_add_up_to_back_propagation():
    """bottom + top is one BP step at any split; BP = 3 forwards - stem gx."""
    numpy.random.seed(0)
    net = resnet_cifar('resnet8-paper')
    x, t = _x(2, 3, 24, 24), numpy.array([1, 2], numpy.int32)
    forward = macs.count(lambda: net(x)) / 2
    stem = macs.count(lambda: chainer_vfbn.split(net, 'stem')[0](x)) / 2
    full = macs.count(
        lambda: F.softmax_cross_entropy(net(x), t).backward()) / 2
    assert full == 3 * forward - stem
    for split in ('stage1_unit1', 'stage2_unit1', 'stage3_unit1'):
        c = macs.split_costs(net, split, 'vfbn', batchsize=2)
        assert c['bottom'] + c['top'] == full
        assert c['dhat'] > 0 and c['dhat_train'] > 2 * c['dhat']
        b = pipeline_bounds(c)
        assert b['free'] == pytest.approx(full / max(c['bottom'], c['top']))
        assert 1 <= b['free'] <= 2 and b['above'] <= b['free']


def test_cli_prints_the_paper_split():
    proc = subprocess.run(
        [sys.executable, 'benchmarks/count_macs.py', '--arch',
         'resnet8-paper', '--no-scan'], capture_output=True, text=True,
        cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert 'resnet8-paper (paper split stage2_unit1)' in out
    assert '<- paper' in out

"""Closed-form VFBN gradients of a linear and a one-hidden-layer ``v_f``.

The VFBN synthesizer (Eq. 6) is ``δ̂ = v_f'(h) ∂ℓ(y, v_f(h)) / ∂v_f(h)``.
For a linear ``v_f`` (Eq. 8) and a one-hidden-layer ``v_f`` (Eq. 9) this
derivative has a closed form, computed here by two FunctionNodes without
building the double-backprop graph that autograd would need:

:func:`vfbn_linear_grad`
    Eq. (8): ``δ̂ = g W`` with ``g = (softmax(h W^T + b) - Y) / B``.
:func:`vfbn_mlp_grad`
    Eq. (9): ``δ̂ = ((g W2) ⊙ f'(a1)) W1`` with ``a1 = h W1^T + b1``,
    ``f = ReLU`` and ``g = (softmax(f(a1) W2^T + b2) - Y) / B``.

``forward_cpu`` is the NumPy reference; ``forward_gpu`` keeps the matrix
products on cuBLAS (``xp.dot``) and fuses the rest into the CuPy kernels of
:mod:`chainer_vfbn.functions.vfbn_kernels` (softmax minus one-hot with the
labels checked, bias plus ReLU, the ReLU's gradient product). ``backward``
is written with differentiable chainer functions, so the synthesizer's
training loss ``||δ - δ̂||^2`` can be differentiated w.r.t. the weights
(that is how ``v_f`` is trained, Eq. 3) and twice more; its hot part, the
softmax's VJP, is one more FunctionNode (:class:`SoftmaxMinusOnehotVJP`)
whose forward is a fused kernel, in place of the one-hot matrix and about
eight separate operations.

Both paths give the same results, NaN included (a NaN in ``h`` or the
weights propagates to ``δ̂``), and the same error for a label out of range.

Sign and scale (both functions): Eq. (8) and (9) are written for the
log-likelihood, ``W^T (y - softmax(W h))`` for one example. The networks
here minimise the *loss* ``ℓ = -(1/B) Σ_n log softmax(a_n)[t_n]`` (the mean
softmax cross-entropy, :func:`chainer.functions.softmax_cross_entropy`), so
the true gradient ``δ = ∂ℓ/∂h`` of example ``n`` is
``-(1/B) W^T (y_n - softmax(W h_n)) = (1/B) W^T (softmax(W h_n) - y_n)``:
the paper's expression negated and divided by the batch size ``B``. That is
what these functions return, so ``δ̂`` is directly comparable with ``δ``.

Biases: the paper omits them "for simplicity"; we keep them (``b``, ``b1``,
``b2``), as :class:`chainer.links.Linear` has them by default. A bias on the
scores shifts the softmax; ``b1`` shifts the ReLU's kink.

Labels ``t`` must lie in ``[0, n_class)`` (no ``ignore_label``); both paths
raise the same ``ValueError`` otherwise.
"""
import chainer
import chainer.functions as F
from chainer import function_node
from chainer import utils
from chainer.utils import type_check

from chainer_vfbn.functions import vfbn_kernels


# ---------------------------------------------------------------------------
# The softmax's VJP, shared by both backwards.

def _onehot(t, n_class, dtype):
    xp = chainer.backend.get_array_module(t)
    return xp.eye(n_class, dtype=dtype)[t]


class SoftmaxMinusOnehotVJP(function_node.FunctionNode):

    """VJP of ``g = (softmax(a) - Y) / B`` w.r.t. ``a``, fused.

    Inputs ``(g, gg, t)``: ``g`` the forward's output ``(B, K)``, ``gg`` the
    gradient w.r.t. ``g``, ``t`` the labels. Output ``ga``: with
    ``s = softmax(a) = B g + Y`` and the softmax Jacobian
    ``diag(s) - s s^T``, ``ga = s ⊙ (gg - <s, gg>) / B``, the inner product
    per row. One CuPy kernel on a GPU (the backward's hot part), the NumPy
    reference on the CPU; the backward is differentiable again.
    """

    def forward_cpu(self, inputs):
        self.retain_inputs((0, 1, 2))
        return vfbn_kernels.softmax_vjp_cpu(*inputs),

    def forward_gpu(self, inputs):
        self.retain_inputs((0, 1, 2))
        return vfbn_kernels.softmax_vjp_gpu(*inputs),

    def backward(self, indexes, grad_outputs):
        g, gg, t = self.get_retained_inputs()
        u, = grad_outputs
        ret = []
        if 0 in indexes:
            # ga_j = s_j (gg_j - <s, gg>) / B and ds/dg = B:
            # ∂/∂g = u ⊙ (gg - <s, gg>) - <u, s> gg.
            n_batch, n_class = g.shape
            s = g * n_batch + _onehot(t.array, n_class, g.dtype)
            inner = F.broadcast_to(F.sum(s * gg, axis=1, keepdims=True),
                                   g.shape)
            u_s = F.broadcast_to(F.sum(u * s, axis=1, keepdims=True),
                                 g.shape)
            ret.append(u * (gg - inner) - u_s * gg)
        if 1 in indexes:
            # Linear in gg: the same VJP, applied to u.
            ret.append(SoftmaxMinusOnehotVJP().apply((g, u, t))[0])
        if 2 in indexes:
            ret.append(None)   # t: integer labels
        return ret


def _softmax_vjp(g, grad_g, t):
    """VJP of ``g = (softmax(a) - Y) / B`` w.r.t. ``a`` (differentiable)."""
    return SoftmaxMinusOnehotVJP().apply((g, grad_g, t))[0]


# ---------------------------------------------------------------------------
# Shared by both FunctionNodes.

def _add(a, b):
    """``a + b`` where either may be ``None`` (a missing gradient)."""
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _check_types(in_types, names, n_layers):
    type_check._argname(in_types, names)
    h_type, t_type = in_types[0], in_types[-1]
    type_check.expect(
        h_type.dtype.kind == 'f',
        h_type.dtype.itemsize >= 4,   # float32 or float64
        h_type.ndim == 2,
        t_type.dtype.kind == 'i',
        t_type.ndim == 1,
        t_type.shape[0] == h_type.shape[0],
    )
    in_size = h_type.shape[1]
    for k in range(n_layers):
        w_type, b_type = in_types[1 + 2 * k], in_types[2 + 2 * k]
        type_check.expect(
            w_type.dtype == h_type.dtype,
            b_type.dtype == h_type.dtype,
            w_type.ndim == 2,
            b_type.ndim == 1,
            w_type.shape[1] == in_size,
            b_type.shape[0] == w_type.shape[0],
        )
        in_size = w_type.shape[0]


# ---------------------------------------------------------------------------
# Eq. (8): linear v_f.

class VFBNLinearGrad(function_node.FunctionNode):

    """VFBN gradient of a linear ``v_f`` (Eq. 8).

    See :func:`vfbn_linear_grad`.

    Inputs ``(h, W, b, t)``; outputs ``(grad_synth, g)``: the synthetic
    gradient ``(B, D)`` and the scores' gradient ``g = ∂ℓ/∂a`` ``(B, K)``.
    ``g`` is an output (not a saved array) so that ``backward``, which
    needs it, stays differentiable; :func:`vfbn_linear_grad` returns only
    ``grad_synth``.
    """

    def check_type_forward(self, in_types):
        _check_types(in_types, ('h', 'W', 'b', 't'), 1)

    def forward_cpu(self, inputs):
        return self._forward(inputs, vfbn_kernels.softmax_minus_onehot_cpu)

    def forward_gpu(self, inputs):
        return self._forward(inputs, vfbn_kernels.softmax_minus_onehot_gpu)

    def _forward(self, inputs, softmax_minus_onehot):
        self.retain_inputs((0, 1, 3))
        self.retain_outputs((1,))
        h, W, b, t = inputs
        # a = h W^T (cuBLAS on GPU); g = (softmax(a + b) - Y) / B fused.
        g = softmax_minus_onehot(h.dot(W.T), b, t)
        grad_synth = g.dot(W)            # Eq. (8): W^T g per example
        return utils.force_array(grad_synth, h.dtype), g

    def backward(self, indexes, grad_outputs):
        h, W, t = self.get_retained_inputs()
        g, = self.get_retained_outputs()
        gy, gg_out = grad_outputs
        # grad_synth = g W: through g, and directly into W.
        gg = _add(None if gy is None else F.linear(gy, W), gg_out)
        # g = (softmax(a) - Y) / B with a = h W^T + b.
        ga = _softmax_vjp(g, gg, t)
        ret = []
        for i in indexes:
            if i == 0:
                ret.append(F.matmul(ga, W))
            elif i == 1:
                gW = F.matmul(ga, h, transa=True)
                if gy is not None:
                    gW = gW + F.matmul(g, gy, transa=True)
                ret.append(gW)
            elif i == 2:
                ret.append(F.sum(ga, axis=0))
            else:
                ret.append(None)   # t: integer labels
        return ret


def vfbn_linear_grad(h, W, b, t):
    """VFBN synthetic gradient of a linear ``v_f`` (Eq. 8), in closed form.

    With ``v_f(h) = W h + b`` and ``ℓ`` the mean softmax cross-entropy over
    the batch, this returns ``δ̂ = ∂ℓ(t, v_f(h)) / ∂h``:

    .. math::

        a = h W^T + b, \\quad
        g = \\frac{1}{B} (\\mathrm{softmax}(a) - Y), \\quad
        \\hat\\delta = g W,

    ``Y`` the one-hot rows of ``t``. Row ``n`` is the paper's Eq. (8),
    :math:`W^T (y_n - \\mathrm{softmax}(W h_n))`, times ``-1/B``: Eq. (8) is
    the gradient of the log-likelihood of one example, this is the gradient
    of the loss ``ℓ`` averaged over the batch, the scale and sign of the
    true gradient ``δ = ∂ℓ/∂h``.

    Differentiable w.r.t. ``h``, ``W`` and ``b`` (twice and more): the
    gradient of ``||δ - δ̂||^2`` w.r.t. ``W`` and ``b`` trains ``v_f``.

    Args:
        h (~chainer.Variable or array): Activation, ``(B, D)``, float32 or
            float64.
        W (~chainer.Variable or array): Weight of ``v_f``, ``(K, D)``.
        b (~chainer.Variable or array): Bias of ``v_f``, ``(K,)``.
        t (array): Integer labels in ``[0, K)``, ``(B,)``.

    Returns:
        ~chainer.Variable: ``δ̂``, ``(B, D)``.
    """
    return VFBNLinearGrad().apply((h, W, b, t))[0]


# ---------------------------------------------------------------------------
# Eq. (9): one hidden layer, f = ReLU.

class VFBNMLPGrad(function_node.FunctionNode):

    """VFBN gradient of a one-hidden-layer ``v_f`` (Eq. 9).

    See :func:`vfbn_mlp_grad`.

    Inputs ``(h, W1, b1, W2, b2, t)``; outputs ``(grad_synth, z, g, ga1)``:
    the synthetic gradient ``(B, D)``, the hidden activation
    ``z = f(a1)`` ``(B, H)``, the scores' gradient ``g`` ``(B, K)`` and the
    hidden pre-activation's gradient ``ga1 = f'(a1) ⊙ (g W2)`` ``(B, H)``.
    The intermediates are outputs so that ``backward`` reuses them and stays
    differentiable; :func:`vfbn_mlp_grad` returns only ``grad_synth``.
    """

    def check_type_forward(self, in_types):
        _check_types(in_types, ('h', 'W1', 'b1', 'W2', 'b2', 't'), 2)

    def forward_cpu(self, inputs):
        return self._forward(inputs, vfbn_kernels.bias_relu_cpu,
                             vfbn_kernels.softmax_minus_onehot_cpu,
                             vfbn_kernels.relu_grad_product_cpu)

    def forward_gpu(self, inputs):
        return self._forward(inputs, vfbn_kernels.bias_relu_gpu,
                             vfbn_kernels.softmax_minus_onehot_gpu,
                             vfbn_kernels.relu_grad_product_gpu)

    def _forward(self, inputs, bias_relu, softmax_minus_onehot,
                 relu_grad_product):
        self.retain_inputs((0, 1, 3, 5))
        self.retain_outputs((1, 2, 3))
        h, W1, b1, W2, b2, t = inputs
        # Virtual forward: z = f(h W1^T + b1), scores z W2^T + b2.
        z = bias_relu(h.dot(W1.T), b1)
        g = softmax_minus_onehot(z.dot(W2.T), b2, t)
        # Virtual backward, Eq. (9): ((g W2) ⊙ f'(a1)) W1.
        ga1 = relu_grad_product(g.dot(W2), z)
        grad_synth = ga1.dot(W1)
        return utils.force_array(grad_synth, h.dtype), z, g, ga1

    def backward(self, indexes, grad_outputs):
        h, W1, W2, t = self.get_retained_inputs()
        z, g, ga1 = self.get_retained_outputs()
        gy, gz_out, gg_out, gga1_out = grad_outputs
        # f'(a1) for f = ReLU: piecewise constant, so a constant here.
        mask = (z.array > 0).astype(z.dtype)

        # grad_synth = ga1 W1.
        gga1 = _add(None if gy is None else F.linear(gy, W1), gga1_out)
        # ga1 = f'(a1) ⊙ gz with gz = g W2.
        ggz = None if gga1 is None else gga1 * mask
        gg = _add(None if ggz is None else F.linear(ggz, W2), gg_out)
        # g = (softmax(a2) - Y) / B with a2 = z W2^T + b2.
        ga2 = None
        if gg is not None:
            ga2 = _softmax_vjp(g, gg, t)
        gz = _add(None if ga2 is None else F.matmul(ga2, W2), gz_out)
        # z = f(a1) with a1 = h W1^T + b1.
        ga1_in = None if gz is None else gz * mask

        # None is a zero gradient (an output that received none).
        ret = []
        for i in indexes:
            if i == 0:
                ret.append(None if ga1_in is None else F.matmul(ga1_in, W1))
            elif i == 1:
                ret.append(_add(
                    None if ga1_in is None
                    else F.matmul(ga1_in, h, transa=True),
                    None if gy is None else F.matmul(ga1, gy, transa=True)))
            elif i == 2:
                ret.append(None if ga1_in is None else F.sum(ga1_in, axis=0))
            elif i == 3:
                ret.append(_add(
                    None if ga2 is None else F.matmul(ga2, z, transa=True),
                    None if ggz is None else F.matmul(g, ggz, transa=True)))
            elif i == 4:
                ret.append(None if ga2 is None else F.sum(ga2, axis=0))
            else:
                ret.append(None)   # t: integer labels
        return ret


def vfbn_mlp_grad(h, W1, b1, W2, b2, t):
    """VFBN synthetic gradient of a one-hidden-layer ``v_f`` (Eq. 9).

    With ``v_f(h) = W2 f(W1 h + b1) + b2``, ``f = ReLU`` and ``ℓ`` the mean
    softmax cross-entropy over the batch, this returns
    ``δ̂ = ∂ℓ(t, v_f(h)) / ∂h`` in closed form:

    .. math::

        a_1 = h W_1^T + b_1, \\quad z = f(a_1), \\quad
        g = \\frac{1}{B} (\\mathrm{softmax}(z W_2^T + b_2) - Y),

        \\hat\\delta = \\big((g W_2) \\odot f'(a_1)\\big) W_1.

    Row ``n`` is the paper's Eq. (9),
    :math:`W_1^T f'(W_1 h_n) W_2^T (y_n - \\mathrm{softmax}(W_2 f(W_1 h_n)))`,
    with biases, times ``-1/B`` (the gradient of the batch-mean loss, not of
    one example's log-likelihood; see :func:`vfbn_linear_grad`).
    ``f'(a_1) = 1[a_1 > 0]``, read as ``z > 0``.

    Differentiable w.r.t. ``h``, ``W1``, ``b1``, ``W2``, ``b2`` (twice and
    more, away from the ReLU's kink).

    Args:
        h (~chainer.Variable or array): Activation, ``(B, D)``, float32 or
            float64.
        W1 (~chainer.Variable or array): Hidden weight, ``(H, D)``.
        b1 (~chainer.Variable or array): Hidden bias, ``(H,)``.
        W2 (~chainer.Variable or array): Output weight, ``(K, H)``.
        b2 (~chainer.Variable or array): Output bias, ``(K,)``.
        t (array): Integer labels in ``[0, K)``, ``(B,)``.

    Returns:
        ~chainer.Variable: ``δ̂``, ``(B, D)``.
    """
    return VFBNMLPGrad().apply((h, W1, b1, W2, b2, t))[0]

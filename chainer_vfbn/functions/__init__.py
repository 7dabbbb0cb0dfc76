"""FunctionNodes of the VFBN paper: closed-form synthetic gradients."""
from chainer_vfbn.functions.vfbn_grad import vfbn_linear_grad  # NOQA
from chainer_vfbn.functions.vfbn_grad import vfbn_mlp_grad  # NOQA
from chainer_vfbn.functions.vfbn_grad import VFBNLinearGrad  # NOQA
from chainer_vfbn.functions.vfbn_grad import VFBNMLPGrad  # NOQA

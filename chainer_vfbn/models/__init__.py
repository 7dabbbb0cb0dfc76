"""Networks: the CIFAR ResNet and its parts."""
from chainer_vfbn.models.resnet import Head  # NOQA
from chainer_vfbn.models.resnet import parse_arch  # NOQA
from chainer_vfbn.models.resnet import ResidualUnit  # NOQA
from chainer_vfbn.models.resnet import ResNetCIFAR  # NOQA
from chainer_vfbn.models.resnet import resnet_cifar  # NOQA
from chainer_vfbn.models.resnet import Sequence  # NOQA

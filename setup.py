"""chainer-vfbn: synthetic gradients with Virtual Forward-Backward Networks in Chainer.

Install (Chainer 7.8.1 needs setuptools<81 in its build; see README.md)::

    PIP_CONSTRAINT=constraints.txt PIP_BUILD_CONSTRAINT=constraints.txt \\
        pip install -e '.[test,plot,report]'
"""
import os

from setuptools import find_packages
from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))

# The pins that the Dockerfile and README repeat; tests/test_docker.py keeps
# them in step.
CHAINER = 'chainer==7.8.1'
CUPY_CUDA12 = 'cupy-cuda12x>=13,<14'   # the last CuPy with cuDNN
CUPY_CUDA13 = 'cupy-cuda13x>=14'

with open(os.path.join(HERE, 'README.md'), encoding='utf-8') as f:
    long_description = f.read()

setup(
    name='chainer-vfbn',
    version='0.1.0',
    description=('Synthetic-gradient training with Virtual Forward-Backward '
                 'Networks (Miyato et al., ICLR 2017 workshop) in Chainer'),
    long_description=long_description,
    long_description_content_type='text/markdown',
    license='MIT',
    packages=find_packages(include=['chainer_vfbn', 'chainer_vfbn.*']),
    # The bundled CIFAR-10 sample (get_cifar10('sample'), --dataset sample),
    # so that a non-editable install has it too.
    package_data={'chainer_vfbn.datasets': ['sample/cifar-10-python.tar.gz']},
    python_requires='>=3.9',
    install_requires=[
        CHAINER,
        'numpy',
        'pillow',
        # Names the BLAS library and kernel in every run's record.
        'threadpoolctl',
        # Chainer imports pkg_resources at run time on the faithful stack.
        'setuptools<81',
    ],
    extras_require={
        'cuda12': [CUPY_CUDA12],
        'cuda13': [CUPY_CUDA13],
        # packaging: tests/test_docker.py reads the version specifiers;
        # chainercv2 (pure Python): the README's own-model example and
        # tests/test_sequential.py cut its CIFAR ResNets.
        'test': ['pytest>=7', 'pytest-xdist', 'packaging', 'chainercv2'],
        'plot': ['matplotlib'],
        # The experiment reports' p-values (binomial and Student t tails).
        'report': ['scipy'],
        'mpi': ['mpi4py'],
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)

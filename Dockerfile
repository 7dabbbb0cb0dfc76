# The faithful stack of chainer-vfbn, on a GPU:
#   CUDA 12 runtime with cuDNN 8, Python 3.11, NumPy 1.26, cupy-cuda12x 13.x (the last
#   CuPy with cuDNN; it supports cuDNN 8, not 9), Chainer 7.8.1, this package.
# The default command reproduces the paper's Table 1 and Figure 3 on the `short` schedule.
#
#   docker build -t chainer-vfbn .
#   docker run --gpus all -v $PWD/cifar10:/data -v $PWD/results:/results chainer-vfbn
#
# /data holds cifar-10-python.tar.gz (downloaded there on the first run if absent);
# /results receives one folder per Table 1 row, table.md, table.json and the figures.
#
# tests/test_docker.py checks it against setup.py's pins, the constraints file and the
# README's install recipe so that they cannot drift apart. tools/docker_check.sh (run by CI
# where podman installs) builds THIS file and runs it, on a stand-in base: Debian bookworm
# made by debootstrap, passed as BASE_IMAGE. Nothing else differs; what the stand-in cannot
# prove (Ubuntu 22.04's package names, CUDA) is said there and in README.md.
ARG BASE_IMAGE=nvidia/cuda:12.2.2-cudnn8-runtime-ubuntu22.04
FROM ${BASE_IMAGE}

ARG PYTHON_VERSION=3.11

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python${PYTHON_VERSION} python${PYTHON_VERSION}-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN python${PYTHON_VERSION} -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# pip 23 to 26.3: the versions on which the constraints recipe below was proven.
# --force-reinstall: the installed pip is no candidate, so the step FAILS when the index
# cannot be reached; with --upgrade alone it exits 0 and keeps the venv's old pip.
RUN python -m pip install --upgrade --force-reinstall 'pip>=23,<26.4'

WORKDIR /opt/chainer-vfbn
COPY . .

# The README's recipe: Chainer 7.8.1 is an sdist whose setup.py imports pkg_resources, so the
# constraints file (setuptools<81; here also numpy<2 and cupy-cuda12x<14, the faithful stack)
# is exported for the install AND for the isolated build.
RUN PIP_CONSTRAINT=/opt/chainer-vfbn/constraints-faithful.txt \
    PIP_BUILD_CONSTRAINT=/opt/chainer-vfbn/constraints-faithful.txt \
    pip install -e '.[cuda12,plot]' \
    && python -c "import chainer_vfbn, chainer, numpy, sys; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'chainer', chainer.__version__)"

ENV CHAINER_VFBN_DATA=/data
VOLUME ["/data", "/results"]

CMD ["python", "train/reproduce.py", "--schedule", "short", "--device", "0", "--out", "/results"]

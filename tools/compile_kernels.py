#!/usr/bin/env python
"""Compile every CuPy kernel of chainer_vfbn to cubin with NVRTC, without a GPU.

Every module of the package that builds CuPy kernels lists them in an
``ELEMENTWISE_KERNELS`` table (name -> ``ElementwiseKernelSpec``); a kernel
built any other way is an error here, so none escapes the check. Each kernel
is compiled for every architecture of ``--arch`` (sm_80 and sm_90) and every
dtype its function accepts (float32 and float64 for ``T``; int8, int16,
int32 and int64 for the labels ``S``), from the source CuPy itself would
generate, with the options CuPy itself builds.

CuPy's public compile functions ask the device for its architecture, so this
uses private APIs that work on CuPy 13 and 14
(``cupy._core._kernel._get_elementwise_kernel_code``,
``cupy.cuda.compiler._NVRTCProgram``); hence the pinned wheels
(``--requirements 13`` or ``14`` prints them for pip)::

    pip install $(python tools/compile_kernels.py --requirements 14)
    python tools/compile_kernels.py

Exit status 0 when every kernel compiled, 1 otherwise (each failure is
printed with NVRTC's log), 2 when CuPy or NVRTC cannot be loaded.
"""
import argparse
import ctypes
import glob
import importlib
import importlib.metadata
import itertools
import os
import pkgutil
import re
import sys

import numpy

# The wheels this check was written against (private APIs): CuPy 13 with
# CUDA 12.9's NVRTC (the runtime wheel supplies cuda_fp16.h and must match
# NVRTC's major.minor), CuPy 14 with CUDA 13's. NumPy < 2 for CuPy 13.
REQUIREMENTS = {
    '13': ['numpy<2', 'cupy-cuda12x==13.6.*', 'nvidia-cuda-nvrtc-cu12==12.9.*',
           'nvidia-cuda-runtime-cu12==12.9.*'],
    '14': ['cupy-cuda13x==14.2.*', 'nvidia-cuda-nvrtc==13.*',
           'nvidia-cuda-runtime==13.*'],
}
ARCHS = ('sm_80', 'sm_90')
# Optional dependencies a module of the package may import at import time:
# chainer_vfbn.experiments.bench.torch_resnet (the benchmarks' PyTorch twin) needs
# PyTorch. Such a module builds no kernel; where the dependency is absent it
# is passed over.
OPTIONAL_IMPORTS = ('torch',)
FLOAT_DTYPES = ('float32', 'float64')       # T: h's dtype
LABEL_DTYPES = ('int8', 'int16', 'int32', 'int64')   # S: the labels'
# CuPy's kinds of kernel argument (its _ArgKind enum, the same in 13 and 14;
# checked on a probe kernel by kernel_source()).
ARG_NDARRAY, ARG_INDEXER, ARG_SCALAR = 1, 2, 3
KERNEL_CONSTRUCTORS = re.compile(
    r'\b(?:cuda|cupy)\.(?:elementwise|reduce|raw|ElementwiseKernel|'
    r'ReductionKernel|RawKernel|RawModule)\(')


def prepare_cuda_13():
    """Let CuPy 13 find the NVRTC and headers of the pip wheels.

    CuPy 13 loads ``libnvrtc.so.12`` by name only, and takes the CUDA root
    from ``CUDA_PATH``, else from the ``nvcc`` on ``PATH`` (CUDA 13 on this
    CI machine): preload the wheel's library and point ``CUDA_PATH`` at the
    runtime wheel (``include/cuda_fp16.h``). Must run before CuPy imports.
    """
    try:
        if not importlib.metadata.version('cupy-cuda12x').startswith('13.'):
            return
    except importlib.metadata.PackageNotFoundError:
        return
    for base in sys.path:
        nvrtc = glob.glob(os.path.join(base, 'nvidia', 'cuda_nvrtc', 'lib',
                                       'libnvrtc.so.12'))
        if nvrtc:
            ctypes.CDLL(nvrtc[0], mode=ctypes.RTLD_GLOBAL)
            runtime = os.path.join(base, 'nvidia', 'cuda_runtime')
            if os.path.isdir(runtime):
                os.environ.setdefault('CUDA_PATH', runtime)
            return


def kernel_tables(package='chainer_vfbn'):
    """``{module name: ELEMENTWISE_KERNELS}`` of every module of ``package``.

    Raises ``RuntimeError`` naming a module that builds a CuPy kernel other
    than through its table (more than the one call in its ``_kernel``).
    """
    root = importlib.import_module(package)
    tables, stray = {}, []
    for info in pkgutil.walk_packages(root.__path__, package + '.'):
        try:
            module = importlib.import_module(info.name)
        except ImportError as e:
            if (e.name or '').split('.')[0] in OPTIONAL_IMPORTS:
                continue
            raise
        with open(module.__file__, encoding='utf-8') as f:
            calls = len(KERNEL_CONSTRUCTORS.findall(f.read()))
        table = getattr(module, 'ELEMENTWISE_KERNELS', None)
        if calls > (1 if table else 0):
            stray.append('%s (%d kernel constructor calls)' % (info.name,
                                                               calls))
        if table:
            tables[info.name] = table
    if stray:
        raise RuntimeError(
            'CuPy kernels built outside an ELEMENTWISE_KERNELS table (list '
            'them there, built by one _kernel() helper): %s'
            % ', '.join(stray))
    return tables


def kernel_source(name, spec, dtypes):
    """The CUDA source CuPy generates for ``spec`` with ``dtypes``.

    ``dtypes`` maps the type variables (``T``, ``S``) to NumPy dtypes. The
    arrays are taken C-contiguous, their non-raw ones reduced to 1-D, as
    CuPy does for contiguous arguments.
    """
    # Imported here: CuPy is a heavy optional dependency (a CUDA wheel, with
    # the CUDA path prepared first: prepare_cuda_13).
    import cupy
    from cupy._core import _kernel, _carray, _scalar, core

    kernel = cupy.ElementwiseKernel(spec.in_params, spec.out_params,
                                    spec.operation, name)
    params = kernel.params            # inputs, outputs, then _ind
    n_in = kernel.nin

    def dtype_of(p):
        return numpy.dtype(p.dtype if p.dtype is not None
                           else dtypes[p.ctype])

    in_types = tuple(None if p.name in spec.scalars else dtype_of(p)
                     for p in params[:n_in])
    out_types = tuple(dtype_of(p) for p in params[n_in:-1])
    in_types, out_types, type_map = kernel._decide_params_type(in_types,
                                                               out_types)
    arginfos = []
    for p, dtype in zip(params[:-1], in_types + out_types):
        if p.name in spec.scalars:
            arginfos.append(_kernel._ArgInfo(ARG_SCALAR, _scalar.CScalar,
                                             dtype, 0, True, True))
        else:
            ndim = (2 if 'raw' in _declaration(spec, p.name) and
                    _is_matrix(spec, p.name) else 1)
            arginfos.append(_kernel._ArgInfo(ARG_NDARRAY, cupy.ndarray,
                                             dtype, ndim, True, True))
    arginfos.append(_kernel._ArgInfo(ARG_INDEXER, _carray.Indexer, None, 1,
                                     True, True))
    code = _kernel._get_elementwise_kernel_code(
        tuple(arginfos), type_map, params, spec.operation, name,
        kernel.preamble)
    if 'CIndexer<' not in code or ' _ind)' not in code:
        raise RuntimeError('CuPy %s generated unexpected code for %s: its '
                           'private kernel API changed (pinned: %s)'
                           % (cupy.__version__, name, REQUIREMENTS))
    header = ''.join('#include <%s>\n' % h for h in core._cupy_header_list)
    return header + code


def _declaration(spec, param):
    for decl in (spec.in_params + ',' + spec.out_params).split(','):
        if decl.split() and decl.split()[-1] == param:
            return decl
    raise KeyError(param)


def _is_matrix(spec, param):
    # A raw array read as a (B, K) matrix, by row: indexed with `start + j`
    # or `i` (2-D in the kernel's callers); `raw` vectors (b, t, bad) are 1-D.
    return bool(re.search(r'\b%s\[(start|i)\b' % re.escape(param),
                          spec.operation))


def compile_source(source, name, arch):
    """Compile ``source`` to cubin for ``arch``; returns the cubin bytes.

    Raises ``cupy.cuda.compiler.CompileException`` with NVRTC's log.
    """
    # Imported here: CuPy is a heavy optional dependency (kernel_source's).
    from cupy._core import core
    from cupy.cuda import compiler
    options = core.assemble_cupy_compiler_options(()) + ('-arch=%s' % arch,)
    program = compiler._NVRTCProgram(source, name + '.cu', method='cubin')
    cubin = program.compile(options)
    return cubin[0] if isinstance(cubin, tuple) else cubin


def check_all(archs=ARCHS, only=None, log=print, package='chainer_vfbn'):
    """Compile every kernel for every arch and dtype; returns the failures."""
    failures = []
    n = 0
    for module, table in sorted(kernel_tables(package).items()):
        for name, spec in sorted(table.items()):
            if only and name not in only:
                continue
            text = spec.in_params + ',' + spec.out_params
            floats = FLOAT_DTYPES if re.search(r'\bT\b', text) else (None,)
            labels = LABEL_DTYPES if re.search(r'\bS\b', text) else (None,)
            for arch, t, s in itertools.product(archs, floats, labels):
                dtypes = {k: v for k, v in (('T', t), ('S', s)) if v}
                what = '%s.%s %s %s' % (module, name, arch, ' '.join(
                    '%s=%s' % kv for kv in sorted(dtypes.items())))
                try:
                    cubin = compile_source(kernel_source(name, spec, dtypes),
                                           name, arch)
                except Exception as e:
                    failures.append(what)
                    log('FAILED %s: %s' % (what, e))
                    continue
                n += 1
                log('ok     %s (%d bytes of cubin)' % (what, len(cubin)))
    log('%d compiled, %d failed' % (n, len(failures)))
    return failures


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--requirements', choices=sorted(REQUIREMENTS),
                   help='print the pinned pip requirements for CuPy 13 or 14 '
                   'and exit')
    p.add_argument('--arch', default=','.join(ARCHS),
                   help='architectures, comma separated (default %(default)s)')
    p.add_argument('--kernel', action='append', default=None,
                   help='only this kernel (repeatable)')
    p.add_argument('--package', default='chainer_vfbn',
                   help='the package whose kernels to compile')
    args = p.parse_args(argv)
    if args.requirements:
        print(' '.join(REQUIREMENTS[args.requirements]))
        return 0
    prepare_cuda_13()
    try:
        # Imported here: CuPy is a heavy optional dependency, loaded once
        # the CUDA path is prepared (and --requirements needs none).
        import cupy
        from cupy.cuda import nvrtc
        version = nvrtc.getVersion()
    except Exception as e:
        print('compile_kernels: CuPy or NVRTC cannot be loaded: %s: %s '
              '(install: pip install $(python tools/compile_kernels.py '
              '--requirements 14))' % (type(e).__name__, e), file=sys.stderr)
        return 2
    print('CuPy %s, NVRTC %d.%d, CUDA_PATH %s'
          % (cupy.__version__, version[0], version[1],
             os.environ.get('CUDA_PATH', '-')))
    failures = check_all(tuple(args.arch.split(',')), args.kernel,
                         package=args.package)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())

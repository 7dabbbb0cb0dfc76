"""The machine a record's run ran on, and which records a table may pair:
one kind of machine (:func:`same_kind`), or, under the schedule's BLAS
kernel pin, one kernel (:func:`same_machine`, :func:`check_one_kernel`).
"""
import collections

from chainer_vfbn.experiments import ExperimentError
from chainer_vfbn.runs import provenance


#: The schedule setting that pins OpenBLAS's kernel for every run
#: (``OPENBLAS_CORETYPE``; the mini schedule's, since 2026-12-06). A record
#: whose settings carry it ran under the pin; the records made before it
#: (Evidence II, which mixed two kernels) carry none.
KERNEL_SETTING = 'blas_kernel'


def machine_of(record):
    """The machine a record's run ran on (its ``environment.machine``:
    CPU, BLAS library and kernel, and, since 2026-12-04, the CPU's family
    and model), or None where the record names none (before 2026-12-03).
    Where the record's settings pin the BLAS kernel
    (:data:`KERNEL_SETTING`), the pin is added as ``pinned_kernel``, and
    the run's NumPy version as ``numpy`` (:func:`kernel_of`)."""
    record = record or {}
    env = record.get('environment') or {}
    machine = env.get('machine') or None
    pin = (record.get('settings') or {}).get(KERNEL_SETTING)
    if machine and pin:
        machine = dict(machine, pinned_kernel=pin, numpy=env.get('numpy'))
    return machine


def machine_label(machine):
    """A short name of a machine kind, for reports.

    Example:
        >>> machine_label({'cpu': 'AMD EPYC', 'blas': [
        ...     {'internal_api': 'openblas', 'architecture': 'Haswell'}]})
        'AMD EPYC, openblas Haswell'
    """
    if not machine:
        return 'not recorded'
    return ', '.join([str(machine.get('cpu'))]
                     + ([machine['cpu_id']] if machine.get('cpu_id') else [])
                     + [provenance.kernel_label(machine)])


def same_kind(a, b):
    """Whether two machines are one kind, as the reports' machines table
    tells them apart: the same CPU model and BLAS library and kernel
    (:func:`kernel_of`), and the same CPU family and model where both name
    them. False where either is None.

    Example:
        >>> m = {'cpu': 'AMD EPYC', 'blas': [{'architecture': 'Haswell'}]}
        >>> same_kind(m, dict(m, cpu='Intel Xeon'))
        False
    """
    if not a or not b:
        return False
    if a.get('cpu_id') and b.get('cpu_id') and a['cpu_id'] != b['cpu_id']:
        return False
    return a.get('cpu') == b.get('cpu') and kernel_of(a) == kernel_of(b)


def same_machine(a, b):
    """Whether two runs do the same arithmetic, so that a seed pairs them
    fully: for two runs under the BLAS kernel pin (``pinned_kernel``,
    :func:`machine_of`), the same BLAS library, version and kernel,
    whatever the CPU; otherwise the cautious :func:`same_kind`. False where
    either names no machine.

    The BLAS kernel decides: runs on an AMD EPYC and an Intel Xeon, both
    with OpenBLAS's SkylakeX kernel, repeated each other bit for bit, while
    one CPU model with the Haswell and the SkylakeX kernels did not
    (docs/RESULTS.md, "Machines"). The records made before the pin keep
    the cautious test, under which their reports were written.

    Example:
        >>> m = {'cpu': 'AMD EPYC', 'blas': [{'architecture': 'Haswell'}],
        ...      'pinned_kernel': 'Haswell'}
        >>> same_machine(m, dict(m, cpu='Intel Xeon'))
        True
        >>> same_machine(m, dict(m, blas=[{'architecture': 'SkylakeX'}]))
        False
    """
    if not a or not b:
        return False
    if a.get('pinned_kernel') and b.get('pinned_kernel'):
        return kernel_of(a) == kernel_of(b)
    return same_kind(a, b)


def kernel_of(machine):
    """What decides a pinned run's arithmetic, as one label: the BLAS
    kernels loaded, each once, and NumPy's version, whose wheel fixes the
    OpenBLAS build that NumPy computes with. The other OpenBLAS that a
    run may load (SciPy's, which Chainer imports where SciPy is installed)
    computes none of its numbers, runs the same pinned kernel, and comes
    before or after NumPy's in the list as the loader found them: neither
    its version nor the order counts.

    Example:
        >>> lib = {'internal_api': 'openblas', 'architecture': 'Haswell'}
        >>> kernel_of({'blas': [dict(lib, version='0.3.31'),
        ...                     dict(lib, version='0.3.30')], 'numpy': '2.4.6'})
        'openblas Haswell, NumPy 2.4.6'
    """
    if not machine:
        return 'not recorded'
    return '%s, NumPy %s' % (provenance.kernel_label(machine),
                             machine.get('numpy'))


def check_one_kernel(table):
    """Refuse a table that would pair records of two BLAS kernels, once
    any of its records ran under the kernel pin (:func:`machine_of`).
    Tables of records made before the pin are left as they were written.

    Args:
        table (list): Rows with ``row`` and ``machines`` (``{seed:
            machine_of(record)}``), as :func:`.summary.summarize` gives.

    Raises:
        ExperimentError: One line: the kernels, with the runs of all but
        the most common one.
    """
    runs = [(r['row'], seed, m) for r in table
            for seed, m in sorted((r.get('machines') or {}).items())]
    if not any(m and m.get('pinned_kernel') for _, _, m in runs):
        return
    by_kernel = collections.OrderedDict()
    for row, seed, m in runs:
        by_kernel.setdefault(kernel_of(m), []).append('%s seed %s' % (row,
                                                                     seed))
    if len(by_kernel) < 2:
        return
    kernels = sorted(by_kernel.items(), key=lambda kv: -len(kv[1]))
    raise ExperimentError(
        'the table would pair records of %d BLAS kernels: %s; a table '
        'compares the runs of one kernel: run those again under the '
        "schedule's %s, or move their records away" % (
            len(kernels), '; '.join(
                '%d on %s%s' % (len(names), kernel, '' if i == 0 else ' (%s)'
                                % ', '.join(names[:6] + ['...'] * (
                                    len(names) > 6)))
                for i, (kernel, names) in enumerate(kernels)),
            KERNEL_SETTING))

"""tests/_mpi.launcher: the flags that the installed mpiexec's flavour needs."""
import os

import pytest

import _mpi  # NOQA  (tests/_mpi.py)


@pytest.mark.parametrize('version, expected', [
    ('mpiexec (Open MPI) 5.0.3', ['mpiexec'] + _mpi.OPEN_MPI_FLAGS),
    ('mpiexec (OpenRTE) 4.1.2', ['mpiexec'] + _mpi.OPEN_MPI_FLAGS),
    ('HYDRA build details:\n    Version: 4.3.0', ['mpiexec']),
])
def test_flags_follow_the_flavour(tmp_path, monkeypatch, version, expected):
    fake = tmp_path / 'mpiexec'
    fake.write_text('#!/bin/sh\ncat <<"EOF"\n%s\nEOF\n' % version)
    fake.chmod(0o755)
    monkeypatch.setenv('PATH', str(tmp_path) + os.pathsep +
                       os.environ['PATH'])
    assert _mpi.launcher() == expected

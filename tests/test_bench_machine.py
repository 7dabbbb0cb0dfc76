"""chainer_vfbn.bench.machine: what a figure was measured on."""
import io
import os

from chainer_vfbn.bench import machine


def test_cpu_name_reads_the_model_name(monkeypatch):
    cpuinfo = 'processor\t: 0\nmodel name\t: Some CPU 9000\nflags\t: x\n'
    monkeypatch.setattr(machine, 'open', lambda path: io.StringIO(cpuinfo),
                        raising=False)
    assert machine.cpu_name() == 'Some CPU 9000, %d cores' % os.cpu_count()


def test_cpu_name_without_proc(monkeypatch):
    def no_file(path):
        raise OSError('no /proc')
    monkeypatch.setattr(machine, 'open', no_file, raising=False)
    monkeypatch.setattr(machine.platform, 'processor', lambda: 'x86_64')
    assert machine.cpu_name() == 'x86_64, %d cores' % os.cpu_count()

"""Tests of what a run's record says of its machine
(chainer_vfbn/runs/record.py)."""
from chainer_vfbn.runs import record

CPUINFO = '''processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 23
model\t\t: 49
model name\t: Another CPU
'''


def test_machine_names_the_first_cpu_its_family_and_model(tmp_path):
    # "AMD EPYC" covers generations whose BLAS kernels differ (Haswell and
    # SkylakeX on this project's machines): the family and model tell them
    # apart
    path = tmp_path / 'cpuinfo'
    path.write_text(CPUINFO)
    m = record.machine(str(path))
    assert m['cpu'] == 'AMD EPYC'
    assert m['cpu_id'] == 'family 25 model 17'
    assert isinstance(m['blas'], list) and m['cpu_count'] >= 1


def test_machine_without_cpuinfo_names_what_platform_knows(tmp_path):
    m = record.machine(str(tmp_path / 'none'))
    assert m['cpu'] and 'cpu_id' not in m

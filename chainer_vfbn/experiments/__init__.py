"""The experiment harness: every schedule of ``train/reproduce.py``, and the
speed measurements of ``benchmarks/``.

One harness runs the Table 1 schedules (``smoke``, ``short``, ``paper``)
and the ``mini`` schedule (Table 1 on the real cifar-10-mini subset, tuned
fairly, with seeds), in one subpackage per concern:

- :mod:`.protocol`: what runs. The rows and the schedules, each in one
  table (:mod:`~.protocol.rows`, :mod:`~.protocol.schedules`); a run
  (:mod:`~.protocol.run`), planned as ``train_cifar.py``'s typed options
  and written as its command line in one place
  (:func:`chainer_vfbn.runs.command_line.command_line`); a schedule's
  runs (:mod:`~.protocol.plan`) and the static slots of a job array
  (:mod:`~.protocol.slots`); what the records choose
  (:mod:`~.protocol.choices`); a schedule's GPU cost
  (:mod:`~.protocol.gpu_cost`).
- :mod:`.records`: a run's record, whose ``config`` is the run's identity
  (:mod:`~.records.store`); its lock (:mod:`~.records.locks`); a finished
  run folder adopted as its record (:mod:`~.records.adoption`); the
  machine it names (:mod:`~.records.machines`).
- :mod:`.running`: the runs as subprocesses, ``jobs`` at a time
  (:mod:`~.running.pool`), each in its environment
  (:mod:`~.running.process`), and how far each has come
  (:mod:`~.running.progress`).
- :mod:`.statistics`: numbers, no Markdown. The paired tests
  (:mod:`~.statistics.paired`), the paired comparisons of two rows
  (:mod:`~.statistics.comparisons`), per-row figures
  (:mod:`~.statistics.summary`), a replay against its original
  (:mod:`~.statistics.replay`).
- :mod:`.reporting`: the Markdown and the plots. The mini schedule's
  report (:mod:`~.reporting.mini_report`), a Table 1 schedule's
  (:mod:`~.reporting.table_report`), the tables of the comparisons
  (:mod:`~.reporting.comparison_tables`), the figures
  (:mod:`~.reporting.figures`) and a results page's blocks
  (:mod:`~.reporting.results_doc`).
- :mod:`.bench`: the speed measurements that ``benchmarks/`` share (timed
  steps, the decoupled runs' speed, MAC counts, the kernel profile, the
  PyTorch twin).

:mod:`.execute` ties the first five together: one call per schedule that runs, then
reports.
"""


class ExperimentError(Exception):
    """A refused run or an incomplete prerequisite: one line for the user."""

"""The experiment harness: every schedule of ``train/reproduce.py``.

One harness runs the Table 1 schedules (``smoke``, ``short``, ``paper``)
and the ``mini`` schedule (Table 1 on the real cifar-10-mini subset, tuned
fairly, with seeds), one idea per module:

- :mod:`.rows`: the methods of Table 1 (and of the mini schedule only);
- :mod:`.schedules`: every schedule's settings, in one table each;
- :mod:`.plan`: the runs of a schedule (:class:`~.plan.Run`), each a list
  of ``train_cifar.py`` arguments;
- :mod:`.records`: a run's record, whose ``config`` is the run's identity;
- :mod:`.pool`: running the runs as subprocesses, ``jobs`` at a time;
- :mod:`.progress`: how far a running run has come, how long runs took;
- :mod:`.choices`: what the records choose (the tuned ``alpha_gs``, the
  pilot's cut) and the length check;
- :mod:`.summary`: per-row statistics from the records;
- :mod:`.comparisons` and :mod:`.paired`: paired comparisons of two rows;
- :mod:`.report`, :mod:`.table_report`, :mod:`.figures` and
  :mod:`.results_doc`: the markdown, the plots and a results page's block;
- :mod:`.execute`: one call per schedule that runs, then reports.
"""


class ExperimentError(Exception):
    """A refused run or an incomplete prerequisite: one line for the user."""

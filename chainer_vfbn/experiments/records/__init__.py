"""A schedule's run records, one JSON file per finished run.

- :mod:`.store`: a record's path, its format (written, read) and whether a
  run is done (its ``config`` is the run's identity);
- :mod:`.locks`: a record's lock, under which its run trains;
- :mod:`.adoption`: a finished run folder adopted as its record;
- :mod:`.machines`: the machine a record names, and which records a table
  may pair.

Not to be confused with what a run writes into its own folder
(``args.json``, ``summary.json``: :mod:`chainer_vfbn.runs.record`), from
which its record here is made.
"""

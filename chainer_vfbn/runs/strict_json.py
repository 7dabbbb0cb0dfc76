"""Strict JSON: NaN and infinities as ``null``, files written atomically.

``json.dump`` writes a NaN as a bare ``NaN``, which is not JSON; a run
that diverged has such figures in its log. Every JSON file the package
writes (a run's ``args.json``, ``summary.json`` and predictions, a
decoupled snapshot set's manifest, the protocol's run records) goes
through :func:`write_json`, in one of two layouts:

- a run's own files: keys sorted, indent 2 (the default);
- the protocol's run records (:data:`RECORD`): keys in the order they were
  built, indent 1, the layout of the records committed under
  ``docs/results/``, so that a record rewritten is byte-identical.
"""
import json
import math
import os

#: :func:`write_json`'s layout of a protocol run record.
RECORD = dict(indent=1, sort_keys=False)


def json_safe(obj):
    """``obj`` with every NaN or infinite float replaced by ``None``.

    Example:
        >>> json_safe({'loss': float('nan'), 'curve': (1.0, float('inf'))})
        {'loss': None, 'curve': [1.0, None]}
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path, obj, indent=2, sort_keys=True):
    """Write ``obj`` to ``path`` as strict JSON, atomically.

    The text goes to ``<path>.tmp<pid>`` and is renamed over ``path`` once
    whole, so a killed write never leaves half a file (what it leaves is
    removed by :func:`chainer_vfbn.runs.folder.clean_temporary`); a write
    that fails (a full disk) removes it and raises. The folder
    is made if needed; the file ends with a newline.

    Args:
        path (str): The file.
        obj: Anything ``json`` writes; NaN and infinities become ``null``.
        indent (int), sort_keys (bool): The layout (``**RECORD`` for a
            protocol record).

    Example:
        >>> import os
        >>> import tempfile
        >>> folder = tempfile.TemporaryDirectory()
        >>> path = os.path.join(folder.name, 'run', 'summary.json')
        >>> write_json(path, {'test_error': float('nan')})
        >>> with open(path) as f:
        ...     f.read()
        '{\\n  "test_error": null\\n}\\n'
        >>> os.listdir(os.path.dirname(path))
        ['summary.json']
        >>> folder.cleanup()
    """
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    tmp = '%s.tmp%d' % (path, os.getpid())
    try:
        with open(tmp, 'w') as f:
            json.dump(json_safe(obj), f, indent=indent, sort_keys=sort_keys,
                      allow_nan=False)
            f.write('\n')
        os.replace(tmp, path)
    except BaseException:
        # A failed write (a full disk, say) leaves nothing behind.
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise

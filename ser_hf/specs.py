"""Reading the YAML files users write (training configs, report specs) with errors of one line.

A YAML file is read with the safe loader, so a tag that would build a Python object (``!!python/object``) is
refused, not run; a syntax error names the file, the line and the column.
"""

from __future__ import annotations

import os
from pathlib import Path


def read_yaml(path: str | os.PathLike, expected: str):
    """The parsed content of a YAML file (``None`` for an empty one).

    Args:
        expected: what the file should hold, for the error message (e.g. "a flat mapping of flag names to
            values").

    Raises:
        FileNotFoundError: no such file (named).
        ValueError: one line: the file, the line and column of the first YAML error and what was ``expected``.
    """
    import yaml

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(f"{path}: not valid YAML{where}: {problem}; expected {expected}") from None

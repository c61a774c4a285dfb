"""Reading the YAML files users write (training configs, report specs) with errors of one line.

A YAML file is read with the safe loader, so a tag that would build a Python object (``!!python/object``) is
refused, not run; a syntax error names the file, the line and the column.

A mapping may name a ``base:`` file (a path relative to its own folder, or a list of them): the base's keys come
first and the file's own keys override them (a key set to ``null`` drops the base's value). That is how one recipe per
model family serves every corpus (``configs/recipes/``), and how report specs share one data block.
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


BASE_KEY = "base"
"""The key naming the file(s) a YAML mapping builds on (:func:`read_layered_yaml`)."""


def read_layered_yaml(path: str | os.PathLike, expected: str, _seen: tuple[Path, ...] = ()):
    """A YAML mapping merged over its ``base:`` file(s), read recursively (module docstring).

    Returns:
        The merged top-level mapping; a value of ``None`` is kept, so that the caller can tell "unset here" from
        "not given". Content that is not a mapping (``None`` for an empty file, a list, a string) is returned as it
        is, for the caller's own shape check.

    Raises:
        FileNotFoundError: the file or a base does not exist (the message names the file that points at it).
        ValueError: one line naming the file: not valid YAML, not a mapping, a ``base`` that is not a path or a
            list of paths, or bases that include each other.
    """
    path = Path(path)
    data = read_yaml(path, expected)
    if not isinstance(data, dict):
        return data
    bases = data.pop(BASE_KEY, None)
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ValueError(f"{path}: {BASE_KEY} is {bases!r}; expected a path relative to {path.parent}, or a list")
    merged: dict = {}
    for base in bases:
        base_path = (path.parent / base).resolve()
        if base_path in (*_seen, path.resolve()):
            raise ValueError(f"{path}: {BASE_KEY} {base!r} includes itself (through {base_path})")
        if not base_path.is_file():
            raise FileNotFoundError(f"{path}: {BASE_KEY} {base!r} does not exist ({base_path})")
        layer = read_layered_yaml(base_path, expected, (*_seen, path.resolve()))
        if not isinstance(layer, dict):
            raise ValueError(f"{path}: {BASE_KEY} {base!r} holds {type(layer).__name__}; expected {expected}")
        merged.update(layer)
    merged.update(data)
    return merged


def spec_argv(argv: list[str], pairs: dict[str, str], pick: dict[str, str] | None = None) -> list[str]:
    """``ser-hf compare SPEC.yaml [--flag value ...]``: a report spec's keys as the command's flags, before those of
    the command line (which override them); ``argv`` unchanged when it does not start with a YAML file.

    Args:
        pairs: keys holding a mapping ``NAME: VALUE`` and the flag each entry becomes (``{"systems": "--system"}``:
            ``--system NAME=VALUE``, repeated).
        pick: keys holding a mapping of which one value is taken, named by another key (``{"data_dir": "corpus"}``:
            ``--data_dir`` is ``data_dir[corpus]``, so that one shared data block serves every spec).

    Raises:
        ValueError: one line naming the file, the key, the value and what was expected.
    """
    if not argv or not str(argv[0]).endswith((".yaml", ".yml")):
        return argv
    path = argv[0]
    raw = read_layered_yaml(path, "a report spec: a mapping of flag names to values")
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of flag names to values, got {type(raw).__name__}")
    out: list[str] = []
    for key, value in raw.items():
        if value is None:
            continue
        if key in (pick or {}) and isinstance(value, dict):
            by = raw.get(pick[key])
            if by not in value:
                raise ValueError(f"{path}: {key} has no entry for {pick[key]} {by!r}; it has {sorted(value)}")
            value = value[by]
        if key in pairs:
            if not isinstance(value, dict):
                raise ValueError(f"{path}: {key} is {value!r}; expected a mapping of names to values")
            out += [x for name, v in value.items() for x in (pairs[key], f"{name}={v}")]
        elif isinstance(value, dict | list):
            raise ValueError(f"{path}: {key} is {value!r}; expected one value")
        else:
            out += [f"--{key}", str(value)]
    return out + list(argv[1:])

"""The one writer of report folders (``ser-hf compare``, ``cross-corpus``, ``multicorpus-report``, ``evaluate``).

A report owns a fixed set of files in its folder. :meth:`ReportFolder.check` runs before any evaluation: a folder
that holds one of them is refused unless ``--overwrite_output_dir`` is given, and then only those files are
replaced; nothing else in the folder (a user's notes, a study write-up) is touched. Every file is written
atomically (a temporary file in the same folder, then ``os.replace``), so an interrupted report never leaves a
half-written ``report.json`` that a later command would read.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


class ReportFolder:
    """A report's folder and the files the report owns there.

    Args:
        path: the folder (created on the first write).
        files: the names of the files this report writes, e.g. ``("report.json", "report.md")``.
    """

    def __init__(self, path: str | os.PathLike, files: tuple[str, ...]):
        self.path = Path(path)
        self.files = tuple(files)

    def existing(self) -> list[str]:
        """The report's files already in the folder."""
        return [name for name in self.files if (self.path / name).exists()]

    def check(self, overwrite: bool = False) -> None:
        """Refuse a folder that already holds one of the report's files, unless ``overwrite``.

        Raises:
            FileExistsError: naming the folder, the files found and ``--overwrite_output_dir``.
        """
        found = self.existing()
        if found and not overwrite:
            raise FileExistsError(
                f"{self.path} already holds {', '.join(found)}; choose another --output_dir, or pass "
                f"--overwrite_output_dir to replace the report's files ({', '.join(self.files)}; nothing else in the "
                "folder is touched)"
            )

    @contextmanager
    def atomic(self, name: str):
        """A temporary path to write ``name`` to; it replaces ``name`` when the block ends without an error.

        Raises:
            ValueError: ``name`` is not one of the report's files.
        """
        if name not in self.files:
            raise ValueError(f"{name!r} is not one of the report's files {self.files}")
        self.path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=Path(name).suffix, dir=self.path)
        os.close(fd)
        try:
            yield Path(tmp)
            os.replace(tmp, self.path / name)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def write_text(self, name: str, text: str) -> None:
        """Write ``text`` to ``name`` atomically."""
        with self.atomic(name) as tmp:
            tmp.write_text(text)

    def write_json(self, name: str, data) -> None:
        """Write ``data`` as indented JSON (a final newline) to ``name`` atomically."""
        self.write_text(name, json.dumps(data, indent=2) + "\n")

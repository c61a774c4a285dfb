"""Output folders: an exclusive lock, so that two trainings never write (and report) one folder, and the
message for a write that failed (:func:`disk_full_hint`).

The lock is a file beside the folder, ``<output_dir>.ser_hf.lock``, created atomically (``O_CREAT | O_EXCL``)
and holding the owner's pid, host and start time; it is removed when the run ends, however it ends (an
exception or ``KeyboardInterrupt`` included). A lock left by a process that no longer runs on this host (killed
with ``SIGKILL``, a crashed machine) is stale: it is reported and taken over. Keeping it beside the folder, not
inside, leaves the folder's contents to the run-directory checks (``--overwrite_output_dir`` never sees it).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)


class OutputDirLockedError(FileExistsError):
    """Another running process holds the output folder; the message names it (pid, host, start time)."""


def lock_path(output_dir: str | os.PathLike) -> Path:
    """Where the lock of ``output_dir`` lives: ``<output_dir>.ser_hf.lock`` beside it."""
    path = Path(output_dir).expanduser().resolve()
    return path.with_name(path.name + ".ser_hf.lock")


def _holder(lock: Path) -> dict:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return {}


def _alive(holder: dict) -> bool:
    """Whether the lock's process still runs (always assumed for another host, which cannot be checked)."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return holder.get("pid") is not None
    return True


@contextmanager
def output_dir_lock(output_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold the exclusive lock of ``output_dir`` for the duration of the ``with`` block.

    Raises:
        OutputDirLockedError: a running process holds it (pid, host and start time named; nothing was written).
    """
    lock = lock_path(output_dir)
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(lock)
            if holder and _alive(holder):
                raise OutputDirLockedError(
                    f"--output_dir {Path(output_dir)} is being written by process {holder.get('pid')} on "
                    f"{holder.get('host')} since {holder.get('started')} (lock file {lock}); wait for it to finish "
                    "or choose another --output_dir"
                ) from None
            if not holder:  # being written this instant by its creator: look again
                time.sleep(0.2)
                if _holder(lock):
                    continue
            logger.warning(
                "%s: stale lock of process %s, which no longer runs; taking it over", lock, holder.get("pid")
            )
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:
        raise OutputDirLockedError(f"{lock}: could not take the lock of --output_dir {Path(output_dir)}")
    try:
        yield lock
    finally:
        if _holder(lock).get("pid") == me["pid"]:
            lock.unlink(missing_ok=True)


def disk_full_hint(path: str | os.PathLike, err: BaseException) -> str:
    """``err`` with the free space of ``path``'s disk, and "disk full" when that is what it is (``ENOSPC``, or
    less than 64 MiB free: torch's checkpoint writer reports a full disk only as "unexpected pos")."""
    import errno
    import shutil

    probe = next((p for p in (Path(path), *Path(path).parents) if p.exists()), Path("."))
    free = shutil.disk_usage(probe).free
    full = getattr(err, "errno", None) == errno.ENOSPC or free < 64 * 2**20
    return f"{err} ({'disk full: ' if full else ''}{free / 2**20:.0f} MiB free on the disk of {probe})"

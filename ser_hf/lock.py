"""Output folders: an exclusive lock, so that two trainings never write (and report) one folder, and the
message for a write that failed (:func:`disk_full_hint`).

The lock is a file beside the folder, ``<output_dir>.ser_hf.lock``, created atomically (``O_CREAT | O_EXCL``)
and holding the owner's pid, host and start time (and the process's own start time from ``/proc``, so that a pid
reused by another process is not taken for the owner); it is removed when the run ends, however it ends (an
exception or ``KeyboardInterrupt`` included). A lock left by a process that no longer runs on this host (killed
with ``SIGKILL``, a crashed machine) is stale: it is reported and taken over. A lock taken on another host cannot
be checked: the message names the file to remove once no run writes there. The lock also covers the folders
around and inside ``<output_dir>``: a run into a running grid's ``fold_K`` is refused, and so is a grid around a
running fold. Keeping it beside the folder, not
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


LOCK_SUFFIX = ".ser_hf.lock"


def lock_path(output_dir: str | os.PathLike) -> Path:
    """Where the lock of ``output_dir`` lives: ``<output_dir>.ser_hf.lock`` beside it."""
    path = Path(output_dir).expanduser().resolve()
    return path.with_name(path.name + LOCK_SUFFIX)


def _holder(lock: Path) -> dict:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return {}


def process_start(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot (field 22 of ``/proc/<pid>/stat``), or ``None``
    where that cannot be read (not Linux, no such process): with the pid it names one process, so a lock whose
    pid was since reused by another process is told apart."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError):
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(holder: dict) -> bool:
    """Whether the lock's process still runs (always assumed for another host, which cannot be checked; a pid
    that now belongs to a process started at another time is not the holder)."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return holder.get("pid") is not None
    then = holder.get("pid_start")
    return then is None or process_start(int(holder["pid"])) in (None, then)


def _held_message(lock: Path, holder: dict, what: str) -> str:
    """Why ``lock`` blocks ``what``, and the exact file to remove when its holder is gone."""
    where = f"process {holder.get('pid')} on {holder.get('host')} since {holder.get('started')} (lock file {lock})"
    if holder.get("host") != socket.gethostname():
        how = (
            f"it was taken on another machine, whose processes ser_hf cannot see; if no run is writing there any "
            f"more, remove {lock}"
        )
    else:
        how = "wait for it to finish, or choose another --output_dir"
        how += f" (if that process is not a ser_hf run, remove {lock})"
    return f"{what} is being written by {where}; {how}"


def _conflicts(path: Path, me: dict) -> list[tuple[Path, dict, str]]:
    """Live locks of other processes on a folder around ``path`` (an ancestor: a grid writing its folds) or
    inside it (a run in one of its subfolders): ``(lock, holder, relation)``."""
    found = []
    for parent in path.parents:
        if parent.name:
            found.append((lock_path(parent), f"--output_dir {path} lies inside {parent}, which"))
    if path.is_dir():
        found += [
            (lock, f"--output_dir {path} holds {lock.parent / lock.name[: -len(LOCK_SUFFIX)]}, which")
            for lock in path.rglob("*" + LOCK_SUFFIX)
        ]
    out = []
    for lock, relation in found:
        holder = _holder(lock) if lock.is_file() else {}
        if holder and holder.get("pid") != me["pid"] and _alive(holder):
            out.append((lock, holder, relation))
    return out


@contextmanager
def output_dir_lock(output_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold the exclusive lock of ``output_dir`` for the duration of the ``with`` block. A folder inside or around
    one that another live process holds (a grid's ``fold_K`` while the grid runs, or the grid's folder while a run
    writes one of its folds) is refused too: one would replace the other's finished runs.

    Raises:
        OutputDirLockedError: a running process holds it, a folder around it or one inside it (pid, host, start
            time and the lock file named, with how to clear a lock whose process is gone; nothing was written).
    """
    path = Path(output_dir).expanduser().resolve()
    lock = lock_path(output_dir)
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    me["pid_start"] = process_start(os.getpid())
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(lock)
            if holder and _alive(holder):
                raise OutputDirLockedError(_held_message(lock, holder, f"--output_dir {Path(output_dir)}")) from None
            if not holder:  # being written this instant by its creator: look again
                time.sleep(0.2)
                if _holder(lock):
                    continue
            logger.warning(
                "%s: stale lock of process %s, which no longer runs (or whose pid is now another process's); "
                "taking it over",
                lock,
                holder.get("pid"),
            )
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:
        raise OutputDirLockedError(f"{lock}: could not take the lock of --output_dir {Path(output_dir)}")
    try:
        # checked after taking our own lock: of two runs starting at once, at least one sees the other
        clash = _conflicts(path, me)
        if clash:
            other, holder, relation = clash[0]
            raise OutputDirLockedError(_held_message(other, holder, relation))
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

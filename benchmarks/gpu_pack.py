"""Pack the real corpora, a pretrained encoder and the missing Python wheels for the lent GPU machine, in parts that
each fit one call of the `device` tool, and print those calls.

A call of the device tool sends the working tree plus the ignored paths it names in ``carry``, at most 64 MiB in
all. The four corpora (115 MiB of 16 kHz FLAC) and the Whisper base encoder (39 MiB) do not fit one call, so this
script splits them over several parts, ``.gpu/part1``, ``.gpu/part2``, ... (``.gpu/`` is git-ignored), each under
``64 MiB - the working tree - a margin``. The machine stays warm 30 s after a call and keeps what a call wrote
outside the tree, so the calls go back to back: each one copies its part into ``/tmp/ser_gpu``, and the last one
also runs ``benchmarks/gpu_grid.py``. Nothing is changed on the way: the FLAC files and weights are byte copies.

The machine's image has torch, transformers, peft, accelerate, pyarrow, pandas and scikit-learn (Python 3.12;
/work/.library/device/KINDS.md) but not datasets, evaluate, soundfile or soxr: their wheels (and their own
missing needs) travel in a part, at the versions installed here, fetched with ``pip download`` for CPython 3.12.

    D=../shared/data; ALL=ravdess=$D/ravdess-16k,emovo=$D/emovo-16k,eyase=$D/eyase-16k,urdu=$D/urdu-16k
    python benchmarks/gpu_pack.py --data_dir $ALL --model_dir ../shared/models/whisper-base-encoder
    # then the printed `run` calls, one after the other (docs/benchmarks.md, "On a lent GPU")

Writes ``.gpu/manifest.json`` (every part: its items and bytes) and prints one JSON line per call.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

MIB = 1024 * 1024
CARRY_LIMIT = 64 * MIB  # the device tool's limit on what one call sends (tree + carried paths)
MARGIN = 2 * MIB
# Python packages the GPU machine lacks (KINDS.md, read 2026-11-17) that ser_hf needs at run time, with their own
# needs it also lacks; each travels at the version installed here
MISSING_ON_DEVICE = ["datasets", "evaluate", "soundfile", "soxr", "cffi", "pycparser", "dill", "multiprocess"]
WHEEL_PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
MACHINE_ROOT = "/tmp/ser_gpu"  # where each call copies its part on the GPU machine


def tree_bytes(repo: Path) -> int:
    """Bytes of the working tree the device tool sends with every call: tracked and untracked-not-ignored files.
    Outside a git checkout (or without git), every file but ``.git``, ``.gpu``, ``.whl`` and ``runs``: more than
    is sent, so the parts stay under the limit."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=repo, check=True, capture_output=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return sum(dir_bytes(p) for p in repo.iterdir() if p.name not in {".git", ".gpu", ".whl", "runs"})
    return sum((repo / name).stat().st_size for name in out.decode().split("\0") if name and (repo / name).is_file())


def dir_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (a file's own size when ``path`` is a file)."""
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def pack_parts(items: dict[str, int], capacity: int) -> list[list[str]]:
    """First-fit decreasing: group items (name -> bytes) into as few parts of at most ``capacity`` bytes as it finds.

    Returns:
        The parts, each a list of item names, largest items first.

    Raises:
        ValueError: an item is larger than ``capacity`` on its own (named, with both sizes in MiB).
    """
    parts: list[list[str]] = []
    room: list[int] = []
    for name in sorted(items, key=lambda n: (-items[n], n)):
        size = items[name]
        if size > capacity:
            raise ValueError(f"{name} is {size / MIB:.1f} MiB, more than one call can carry ({capacity / MIB:.1f} MiB)")
        for i, free in enumerate(room):
            if size <= free:
                parts[i].append(name)
                room[i] -= size
                break
        else:
            parts.append([name])
            room.append(capacity - size)
    return parts


def download_wheels(dest: Path, packages: list[str]) -> list[Path]:
    """``pip download`` CPython 3.12 manylinux wheels of ``packages`` at the versions installed here (no deps)."""
    dest.mkdir(parents=True, exist_ok=True)
    pins = [f"{p}=={importlib.metadata.version(p)}" for p in packages]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", "--implementation", "cp", "-d", str(dest)]  # fmt: skip
    for platform in WHEEL_PLATFORMS:
        cmd += ["--platform", platform]
    subprocess.run(cmd + pins, check=True)
    return sorted(dest.glob("*.whl"))


def run_calls(parts: list[str], grid_command: str) -> list[dict]:
    """The device tool's ``run`` calls, in order: each copies its part into :data:`MACHINE_ROOT`; the last also
    runs ``grid_command``."""
    calls = []
    for i, part in enumerate(parts):
        command = f"mkdir -p {MACHINE_ROOT} && cp -a .gpu/{part}/. {MACHINE_ROOT}/ && du -sh {MACHINE_ROOT}"
        if i == len(parts) - 1:
            command += f" && {grid_command}"
        calls.append({"carry": [f".gpu/{part}"], "command": command, "timeout_s": 600 if i == len(parts) - 1 else 120})
    return calls


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data_dir", required=True, help="corpus folders: NAME=DIR,NAME=DIR (copied to data/<DIR name>)"
    )
    parser.add_argument("--model_dir", nargs="+", default=[], help="pretrained model folders (copied to models/<name>)")
    parser.add_argument("--wheels", nargs="*", default=MISSING_ON_DEVICE, help="packages whose wheels travel")
    parser.add_argument("--output_dir", default=".gpu", help="where the parts go (git-ignored)")
    parser.add_argument("--grid_command", default="python3 benchmarks/gpu_grid.py", help="what the last call runs")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output_dir")
    args = parser.parse_args(argv)

    repo = Path(__file__).resolve().parents[1]
    out = Path(args.output_dir)
    if out.exists():
        if not args.overwrite:
            raise SystemExit(f"--output_dir {out} exists; pass --overwrite to replace it")
        shutil.rmtree(out)
    sources: dict[str, Path] = {}
    for pair in args.data_dir.split(","):
        name, sep, folder = pair.partition("=")
        if not sep or not Path(folder).is_dir():
            raise SystemExit(f"--data_dir: {pair!r} is not NAME=DIR with an existing DIR")
        sources[f"data/{Path(folder).name}"] = Path(folder)
    for folder in args.model_dir:
        if not (Path(folder) / "config.json").is_file():
            raise SystemExit(f"--model_dir: {folder} has no config.json (expected a saved transformers model)")
        sources[f"models/{Path(folder).name}"] = Path(folder)
    if args.wheels:
        sources["whl"] = out / "_wheels"
        download_wheels(sources["whl"], args.wheels)
    sizes = {item: dir_bytes(path) for item, path in sources.items()}
    capacity = CARRY_LIMIT - tree_bytes(repo) - MARGIN
    parts = pack_parts(sizes, capacity)
    manifest = {"capacity_bytes": capacity, "machine_root": MACHINE_ROOT, "parts": {}}
    for i, items in enumerate(parts, start=1):
        part = out / f"part{i}"
        for item in items:
            shutil.copytree(sources[item], part / item)
        manifest["parts"][f"part{i}"] = {item: sizes[item] for item in items}
    if args.wheels:
        shutil.rmtree(sources["whl"])
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for call in run_calls(list(manifest["parts"]), args.grid_command):
        print(json.dumps(call))
    return manifest


if __name__ == "__main__":
    main()

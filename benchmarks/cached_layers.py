#!/usr/bin/env python
"""Today's transformer recipe against cached-layers training (``--adapt_top_layers K``), timed in one run.

    D=../shared/data; python benchmarks/cached_layers.py configs/multicorpus_wav2vec2_lora.yaml \\
        --data_dir ravdess=$D/ravdess-16k,emovo=$D/emovo-16k,eyase=$D/eyase-16k,urdu=$D/urdu-16k \\
        --model_name_or_path ../shared/models/whisper-base-encoder --adapt_top_layers 2 --epochs 1

Each recipe trains fold ``--fold`` of the config for ``--epochs`` epochs (validation every epoch, as the configs
do; no test needed, but the run tests its checkpoint as every run does) through ``scripts/finetune.py``'s
``ser_hf.training.main``, in its own process (so that peak RSS and CPU seconds are that recipe's), into a
temporary folder; the cached recipe gets a fresh, empty hidden-state cache, so its build is timed too. Prints one
JSON line per recipe and a summary line:

- ``wall_s_per_epoch`` / ``cpu_s_per_epoch``: training wall and CPU seconds (user + system of the process) per
  epoch, the cache build excluded;
- ``cache_build_s``, ``cache_bytes``, ``cache_rows``: the cache this fold filled (train views and validation clips);
- ``fold_wall_s`` / ``fold_cpu_s``: a whole fold at the config's ``num_train_epochs`` (the cached recipe's at
  ``--cached_epochs`` when given), the cache build included (the process's CPU seconds are shared out between
  training, the build and the rest by their wall time);
- ``peak_rss_mb``, ``threads``, ``cpu``: the machine facts.

The summary gives ``speedup_fold_cpu``: today's ``fold_cpu_s`` over the cached one. Every fold of a grid after the
first finds most of its clips cached already; the first fold's full build is counted here. Time it only when
nothing else runs (``OMP_NUM_THREADS`` sets the threads).

``--rows FILE`` trains nothing: it reads the JSON lines of an earlier run and prints them again with the folds
recomputed at ``--cached_epochs`` (a recipe with fewer epochs costs its measured seconds per epoch times its
epochs).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(argv: list[str]) -> None:
    """Train once (``ser_hf.training.main(argv)``) and print the run record's runtime and this process's usage."""
    import torch

    from ser_hf.environment import machine_facts
    from ser_hf.training import main as train

    start = time.time()
    record = train(argv)
    wall = time.time() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "runtime": record["runtime"],
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "process_wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
        "cpu": machine_facts().get("cpu"),
    }
    print("RESULT " + json.dumps(out), flush=True)


def run_recipe(name: str, argv: list[str], num_train_epochs: float) -> dict:
    """Train one recipe in a child process and return its row, the fold counted at ``num_train_epochs``."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *argv], capture_output=True, text=True, cwd=ROOT, check=False
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{name}: the training process failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    got = json.loads(lines[-1][len("RESULT ") :])
    rt = got["runtime"]
    cache = rt.get("feature_cache") or {}
    build = float(cache.get("build_s") or 0.0)
    epochs = float(rt["epochs_run"])
    wall = float(rt["train_wall_time_s"])  # training only: the cache is filled before training starts
    # the process's CPU seconds shared out by wall time: training, cache build, and the rest (loading, testing)
    cpu_per_wall = got["cpu_s"] / max(got["process_wall_s"], 1e-9)
    cpu_train = cpu_per_wall * wall
    row = {
        "recipe": name,
        "epochs": epochs,
        "train_clips": rt["train_clips"],
        "wall_s_per_epoch": wall / epochs,
        "cpu_s_per_epoch": cpu_train / epochs,
        "cache_build_s": build,
        "cache_build_cpu_s": cpu_per_wall * build,
        "cache_bytes": cache.get("bytes"),
        "cache_rows": cache.get("rows_built"),
        "peak_rss_mb": round(got["peak_rss_mb"], 1),
        "threads": got["threads"],
        "cpu": got["cpu"],
        "validation_ua": (rt.get("validation") or {}).get("ua"),
    }
    return with_fold(row, num_train_epochs)


def with_fold(row: dict, num_train_epochs: float) -> dict:
    """``row`` with ``num_train_epochs`` and the fold's totals at that many epochs: ``fold_wall_s`` and
    ``fold_cpu_s`` (seconds, the cache build included); printed as one JSON line."""
    row = {**row, "num_train_epochs": float(num_train_epochs)}
    row["fold_wall_s"] = row["cache_build_s"] + row["wall_s_per_epoch"] * row["num_train_epochs"]
    row["fold_cpu_s"] = row["cache_build_cpu_s"] + row["cpu_s_per_epoch"] * row["num_train_epochs"]
    print(json.dumps(row), flush=True)
    return row


def summarise(today: dict, cached: dict, adapt_top_layers: int, cache_views: int) -> dict:
    """The speed-ups of the cached recipe's row over today's (wall per epoch, wall and CPU per fold); printed."""
    summary = {
        "summary": True,
        "adapt_top_layers": adapt_top_layers,
        "cache_views": cache_views,
        "cached_num_train_epochs": cached["num_train_epochs"],
        "speedup_epoch_wall": today["wall_s_per_epoch"] / cached["wall_s_per_epoch"],
        "speedup_fold_wall": today["fold_wall_s"] / cached["fold_wall_s"],
        "speedup_fold_cpu": today["fold_cpu_s"] / cached["fold_cpu_s"],
    }
    print(json.dumps(summary), flush=True)
    return summary


def recompute(path: str, cached_epochs: float | None) -> list[dict]:
    """Reprint the rows of an earlier run (``--rows``) with the cached recipe's fold at ``cached_epochs``.

    Raises:
        ValueError: the file lacks a ``today`` or a ``cached`` row, or its summary line.
    """
    lines = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    by_recipe = {r["recipe"]: r for r in lines if "recipe" in r}
    old = [r for r in lines if r.get("summary")]
    if set(by_recipe) != {"today", "cached"} or not old:
        raise ValueError(f"{path}: expected a 'today' row, a 'cached' row and a summary line, got {sorted(by_recipe)}")
    today = with_fold(by_recipe["today"], by_recipe["today"]["num_train_epochs"])
    cached = with_fold(by_recipe["cached"], cached_epochs or by_recipe["cached"]["num_train_epochs"])
    return [today, cached, summarise(today, cached, old[-1]["adapt_top_layers"], old[-1]["cache_views"])]


def main(argv: list[str] | None = None) -> list[dict]:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(argv[1:])
        return []
    if any(a == "--rows" or a.startswith("--rows=") for a in argv):  # anywhere on the line: recompute only
        parser = argparse.ArgumentParser(description="Recompute the folds of an earlier run's rows")
        parser.add_argument("--rows", required=True, help="the JSON lines an earlier run printed")
        parser.add_argument("--cached_epochs", type=float, help="epochs of the cached recipe's fold")
        args = parser.parse_args(argv)
        return recompute(args.rows, args.cached_epochs)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="a transformer config, e.g. configs/multicorpus_wav2vec2_lora.yaml")
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--model_name_or_path", required=True)
    parser.add_argument("--adapt_top_layers", type=int, default=2)
    parser.add_argument("--cache_views", type=int, default=1)
    parser.add_argument("--epochs", type=float, default=1.0, help="epochs each recipe trains here")
    parser.add_argument("--cached_epochs", type=float, help="epochs of the cached recipe's fold (default: config's)")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--cache_dir", help="datasets cache of the decoded corpora (shared by both recipes)")
    parser.add_argument("--recipes", nargs="+", default=["today", "cached"], choices=["today", "cached"])
    args, extra = parser.parse_known_args(argv)
    from ser_hf.specs import read_layered_yaml

    config_epochs = float(read_layered_yaml(args.config, "a training config")["num_train_epochs"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="cached_layers_") as tmp:
        common = [str(Path(args.config).resolve()), "--data_dir", args.data_dir, "--fold", str(args.fold)]
        common += ["--model_name_or_path", args.model_name_or_path, "--num_train_epochs", str(args.epochs)]
        common += ["--disable_tqdm", "true", *(["--cache_dir", args.cache_dir] if args.cache_dir else []), *extra]
        for name in args.recipes:
            argv_r = [*common, "--output_dir", str(Path(tmp) / name)]
            if name == "cached":
                argv_r += ["--adapt_top_layers", str(args.adapt_top_layers), "--cache_views", str(args.cache_views)]
                argv_r += ["--feature_cache_dir", str(Path(tmp) / "hidden_states")]
            epochs = args.cached_epochs if name == "cached" and args.cached_epochs else config_epochs
            rows.append(run_recipe(name, argv_r, epochs))
    if len(rows) == 2:
        rows.append(summarise(*rows, args.adapt_top_layers, args.cache_views))
    return rows


if __name__ == "__main__":
    main()

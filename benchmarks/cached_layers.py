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
- ``fold_wall_s`` / ``fold_cpu_s``: a whole fold at the config's ``num_train_epochs``, the cache build included
  (the process's CPU seconds are shared out between training, the build and the rest by their wall time);
- ``peak_rss_mb``, ``threads``, ``cpu``: the machine facts.

The summary gives ``speedup_fold_cpu``: today's ``fold_cpu_s`` over the cached one. Every fold of a grid after the
first finds most of its clips cached already; the first fold's full build is counted here. Time it only when
nothing else runs (``OMP_NUM_THREADS`` sets the threads).
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


def run_recipe(name: str, argv: list[str], config_epochs: float) -> dict:
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
        "num_train_epochs": config_epochs,
        "validation_ua": (rt.get("validation") or {}).get("ua"),
    }
    row["fold_wall_s"] = build + row["wall_s_per_epoch"] * row["num_train_epochs"]
    row["fold_cpu_s"] = row["cache_build_cpu_s"] + row["cpu_s_per_epoch"] * row["num_train_epochs"]
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(argv[1:])
        return []
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="a transformer config, e.g. configs/multicorpus_wav2vec2_lora.yaml")
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--model_name_or_path", required=True)
    parser.add_argument("--adapt_top_layers", type=int, default=2)
    parser.add_argument("--cache_views", type=int, default=1)
    parser.add_argument("--epochs", type=float, default=1.0)
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
            rows.append(run_recipe(name, argv_r, config_epochs))
    if len(rows) == 2:
        summary = {
            "summary": True,
            "adapt_top_layers": args.adapt_top_layers,
            "cache_views": args.cache_views,
            "speedup_epoch_wall": rows[0]["wall_s_per_epoch"] / rows[1]["wall_s_per_epoch"],
            "speedup_fold_wall": rows[0]["fold_wall_s"] / rows[1]["fold_wall_s"],
            "speedup_fold_cpu": rows[0]["fold_cpu_s"] / rows[1]["fold_cpu_s"],
        }
        print(json.dumps(summary), flush=True)
        rows.append(summary)
    return rows


if __name__ == "__main__":
    main()

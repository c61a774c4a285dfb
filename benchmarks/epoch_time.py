#!/usr/bin/env python
"""Training speed of the real recipes on this machine: clips/s and wall time per epoch, one fold, N epochs.

    python benchmarks/epoch_time.py --data_dir ../shared/data/ravdess-16k \\
        --whisper ../shared/models/whisper-tiny.en-encoder --epochs 1 --before 4130388

Runs ``scripts/finetune.py``'s training (``ser_hf.training.main``) for each system on fold 0 of RAVDESS, with
the system's own config, for ``--epochs`` epochs (validation every epoch, as the configs do), into a temporary
folder, and reads the run record: training clips/s (``train_clips * epochs / train_runtime``, the Trainer's
loop without the final test) and wall time per epoch (training wall time, validation included, / epochs).
Prints one JSON line per system with the thread count, and the training time of a whole fold at the config's
``num_train_epochs`` (wall time per epoch x epochs). ``--before REF`` first times the recipes of git commit REF
(its code and configs, checked out into a temporary git worktree and run by its own copy of this script in a
subprocess), so one run gives before and after on the same machine. Time it only when nothing else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
SYSTEMS = {
    "mel_cnn": ("ravdess_melcnn.yaml", []),
    "whisper_tiny_lora": ("ravdess_wav2vec2_lora.yaml", ["--model_name_or_path", "WHISPER"]),
}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--whisper", default="openai/whisper-tiny.en", help="Whisper encoder (hub id or folder)")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--before", metavar="GIT_REF", help="also time the recipes of this commit, first")
    args = parser.parse_args(argv)
    if args.before:
        before(args)

    from ser_hf.training import main as train

    rows = []
    for name in args.systems:
        config, extra = SYSTEMS[name]
        extra = [args.whisper if x == "WHISPER" else x for x in extra]
        with tempfile.TemporaryDirectory(prefix=f"epoch_time_{name}_") as tmp:
            record = train(
                [
                    str(ROOT / "configs" / config),
                    "--data_dir",
                    args.data_dir,
                    "--fold",
                    str(args.fold),
                    "--num_train_epochs",
                    str(args.epochs),
                    "--output_dir",
                    str(Path(tmp) / "run"),
                    "--disable_tqdm",
                    "true",
                    *extra,
                ]
            )
        rt = record["runtime"]
        epochs = rt["epochs_run"] or args.epochs
        row = {
            "system": name,
            "fold": args.fold,
            "epochs": epochs,
            "train_clips": rt["train_clips"],
            "train_clips_per_s": rt["train_clips"] * epochs / rt["train_runtime_s"],
            "wall_s_per_epoch": rt["train_wall_time_s"] / epochs,
            "threads": torch.get_num_threads(),
            "device": rt["device"],
        }
        row["fold_train_s"] = row["wall_s_per_epoch"] * config_epochs(ROOT, config)
        row["code"] = "current"
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def config_epochs(root: Path, config: str) -> float:
    return float(yaml.safe_load((root / "configs" / config).read_text())["num_train_epochs"])


def before(args) -> None:
    """Time the recipes of commit ``args.before`` with that commit's own benchmark, in a temporary worktree."""
    with tempfile.TemporaryDirectory(prefix="epoch_time_before_") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.before], check=True)
        try:
            whisper = str(Path(args.whisper).resolve()) if Path(args.whisper).exists() else args.whisper
            cmd = [sys.executable, str(tree / "benchmarks" / "epoch_time.py")]
            cmd += ["--data_dir", str(Path(args.data_dir).resolve()), "--whisper", whisper]
            cmd += ["--epochs", str(args.epochs), "--fold", str(args.fold)]
            cmd += ["--systems", *args.systems]
            env = {**os.environ, "PYTHONPATH": str(tree)}
            out = subprocess.run(cmd, env=env, cwd=tree, check=True, capture_output=True, text=True).stdout
            for line in out.splitlines():
                if line.startswith('{"system"'):
                    row = json.loads(line)
                    config = SYSTEMS[row["system"]][0]
                    row["fold_train_s"] = row["wall_s_per_epoch"] * config_epochs(tree, config)
                    row["code"] = args.before
                    print(json.dumps(row), flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


if __name__ == "__main__":
    main()

"""The ``ser-hf`` command line: ``ser-hf train CONFIG.yaml [--flag value ...]`` and ``ser-hf folds``."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "train": "train a model (same flags as scripts/finetune.py)",
        "folds": "print the speaker-independent split of a corpus fold as JSON",
    }
    if not argv or argv[0] not in commands:
        print(
            "usage: ser-hf {train,folds} ...\n" + "\n".join(f"  {k:<6} {v}" for k, v in commands.items()),
            file=sys.stderr,
        )
        return 2
    if argv[0] == "train":
        from .training import main as train_main

        train_main(argv[1:])
        return 0
    parser = argparse.ArgumentParser(prog="ser-hf folds")
    parser.add_argument("corpus")
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--protocol", default="folds")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--num_val_speakers", type=int, default=2)
    parser.add_argument("--cache_dir", default=None, help="datasets cache folder")
    args = parser.parse_args(argv[1:])
    from .corpora import load_corpus
    from .folds import make_split

    ds = load_corpus(args.corpus, args.data_dir, cache_dir=args.cache_dir)
    split = make_split(args.corpus, ds["speaker"], args.protocol, args.fold, args.num_val_speakers)
    print(json.dumps(split.__dict__, indent=2))
    return 0

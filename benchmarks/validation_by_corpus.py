"""Validation UA per corpus of multi-corpus runs: the shipped checkpoint of each run on each corpus's validation
speakers (its own labels), and the unweighted mean over the corpora, next to the pooled validation UA the run
recorded (``runtime.validation``).

Runs trained since ``runtime.validation_per_corpus`` exists carry these numbers in ``metrics.json``; this script
computes them for any multi-corpus run, older ones included, with the same function
(:func:`ser_hf.evaluation.scores_by_corpus`). Validation speakers were never trained on, and with
``--select_best_by last`` they chose nothing either.

    D=../shared/data; ALL=ravdess=$D/ravdess-16k,emovo=$D/emovo-16k,eyase=$D/eyase-16k,urdu=$D/urdu-16k
    python benchmarks/validation_by_corpus.py runs/multi_melcnn/fold_{0,1,2,3} --data_dir $ALL

Prints one JSON line per run (``run``, ``pooled_ua``, ``per_corpus`` UA, ``mean_ua``), then one line per
folder of runs with the means over its folds.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories (one fold each) of multi-corpus runs")
    parser.add_argument("--data_dir", required=True, help="the corpora the runs were trained on: NAME=DIR,NAME=DIR")
    parser.add_argument("--cache_dir", default=None)
    parser.add_argument("--no_verify_counts", action="store_true", help="accept corpus folders of other sizes")
    args = parser.parse_args(argv)

    import numpy as np

    from ser_hf.corpora import data_dirs
    from ser_hf.data import select_side
    from ser_hf.evaluation import scores_by_corpus
    from ser_hf.inference import load_classifier
    from ser_hf.multicorpus import decode_corpora, load_corpora
    from ser_hf.run import RunRecord

    records = {run: RunRecord.load(run) for run in args.runs}
    decoded_by = {}  # (corpora, labels) -> decoded clips, shared by runs of the same corpora and labels
    rows = []
    for run, record in records.items():
        names = record.split.corpora
        if len(names) < 2:
            raise ValueError(f"{run}: trained on {record.split.corpus!r}, one corpus; give multi-corpus runs")
        key = (tuple(names), tuple(record.label_names))
        if key not in decoded_by:
            dirs = data_dirs(names, args.data_dir)
            multi = load_corpora(names, dirs, list(record.label_names), args.cache_dir, not args.no_verify_counts)
            decoded_by[key] = decode_corpora(multi, record.preprocessing.sampling_rate or 16000)
        side = select_side(decoded_by[key], record.split, "validation")
        model, fe = load_classifier(run, device="cpu")
        scores = scores_by_corpus(model, fe, side.with_format("numpy"), side["corpus"])
        rows.append(
            {
                "run": run,
                "pooled_ua": record.runtime.validation_ua,
                "per_corpus": {c: v["ua"] for c, v in scores.items() if c != "mean"},
                "mean_ua": scores["mean"]["ua"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    by_folder = defaultdict(list)
    for row in rows:
        by_folder[str(Path(row["run"]).parent)].append(row)
    for folder, group in by_folder.items():
        corpora = sorted({c for r in group for c in r["per_corpus"]})
        summary = {
            "runs": folder,
            "folds": len(group),
            "pooled_ua": float(np.mean([r["pooled_ua"] for r in group])),
            "per_corpus": {
                c: float(np.mean([r["per_corpus"][c] for r in group if c in r["per_corpus"]])) for c in corpora
            },
            "mean_ua": float(np.mean([r["mean_ua"] for r in group])),
        }
        print(json.dumps(summary), flush=True)
    return rows


if __name__ == "__main__":
    main()

"""ASED scored on its two common sentences only: the test-side UA of each fold on the clips of sentences 01-02,
which every speaker recorded in every emotion, beside the UA on all test clips (where the emotion-specific
sentences 03-07 let a model recognise the text instead of the emotion; see ser_hf/corpora/ased.py).

    python benchmarks/ased_common_sentences.py runs/ased_melcnn

Reads each fold's stored evaluation (``fold_K/eval_ased_test/predictions.jsonl``, written by ``ser-hf compare``).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ser_hf.grid import fold_dirs
from ser_hf.metrics import mean_std, unweighted_average_recall
from ser_hf.reports.evaluation_report import read_predictions

COMMON = ("01", "02")


def ua(lines: list[dict]) -> float:
    labels = sorted({x["reference"] for x in lines} | {x["prediction"] for x in lines})
    ref = np.array([labels.index(x["reference"]) for x in lines])
    pred = np.array([labels.index(x["prediction"]) for x in lines])
    return unweighted_average_recall(pred, ref)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="an ASED cross-validation run folder (fold_K/ with eval_ased_test/)")
    args = parser.parse_args(argv)
    rows = []
    for fold, dirs in sorted(fold_dirs(args.root).items()):
        for run in dirs:
            lines = read_predictions(run / "eval_ased_test")
            common = [x for x in lines if x["id"].split("-")[1] in COMMON]
            rows.append((fold, ua(lines), ua(common), len(lines), len(common)))
            print(f"fold {fold}: UA all {rows[-1][1]:.3f} ({len(lines)} clips), common sentences {rows[-1][2]:.3f} "
                  f"({len(common)} clips)")  # fmt: skip
    for k, name in ((1, "all test clips"), (2, "common sentences")):
        stats = mean_std([r[k] for r in rows])
        print(f"{name}: UA {stats['mean']:.3f} +- {stats['std']:.3f} over {len(rows)} folds")
    return 0


if __name__ == "__main__":
    sys.exit(main())

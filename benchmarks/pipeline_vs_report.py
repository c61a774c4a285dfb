"""What users get vs what the report says: UA of ``pipeline("audio-classification")`` on the raw test files of a
run, next to the UA in the run's own ``metrics.json``.

The clips are read with soundfile exactly as a Hub user would (mono-mixed if stereo; resampled with soxr only when
the file's rate differs from the model's, since the pipeline's own resampling needs torchaudio) and handed to the
pipeline as ``{"raw": x, "sampling_rate": sr}``. Nothing else is done to them: any trim or crop must come from the
checkpoint itself.

    python benchmarks/pipeline_vs_report.py runs/ravdess_melcnn/fold_0 --data_dir ../shared/data/ravdess-16k
    python benchmarks/pipeline_vs_report.py RUN --data_dir DIR --without_ser_hf   # a Hub user without ser_hf

Prints one JSON line: ``report_ua``, ``pipeline_ua`` (and WA), their difference in points, clip count, seconds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

_WORKER = r"""
import json, sys
if sys.argv[1] == "1":
    sys.modules["ser_hf"] = None  # a Hub user: no ser_hf, no peft; the mel-CNN loads as remote code
    sys.modules["peft"] = None
import numpy as np, soundfile as sf, soxr
from transformers import pipeline
clf = pipeline("audio-classification", model=sys.argv[2], trust_remote_code=True, device="cpu")
sr_model = clf.feature_extractor.sampling_rate
out = []
for path in json.loads(sys.stdin.read()):
    wav, sr = sf.read(path, dtype="float32")
    wav = wav.mean(axis=1) if wav.ndim == 2 else wav
    if sr != sr_model:
        wav, sr = soxr.resample(wav, sr, sr_model).astype(np.float32), sr_model
    out.append(clf({"raw": wav, "sampling_rate": sr}, top_k=1)[0]["label"])
print(json.dumps(out))
"""


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="run directory of scripts/finetune.py (one fold)")
    parser.add_argument(
        "--data_dir", required=True, help="the corpus the run was trained on (several: NAME=DIR,NAME=DIR)"
    )
    parser.add_argument("--cache_dir", default=None)
    parser.add_argument("--without_ser_hf", action="store_true", help="run the pipeline where ser_hf is not importable")
    args = parser.parse_args(argv)

    import numpy as np

    import ser_hf
    from ser_hf.corpora import data_dirs, is_multi
    from ser_hf.data import select_side
    from ser_hf.metrics import compute_ser_metrics
    from ser_hf.multicorpus import load_corpora
    from ser_hf.run import RunRecord

    record = RunRecord.load(args.run)
    if is_multi(record.split.corpus):  # several corpora: --data_dir NAME=DIR,... and the run's label set
        names = record.split.corpora
        dirs = data_dirs(names, args.data_dir)
        ds = load_corpora(names, dirs, record.label_names, args.cache_dir).dataset
    else:
        ds = ser_hf.load_corpus(record.split.corpus, args.data_dir, cache_dir=args.cache_dir)
    test = select_side(ds, record.split, "test")
    names = ds.features["label"].names
    files, refs = list(test["audio"]), [names[y] for y in test["label"]]

    start = time.perf_counter()
    env = None
    if args.without_ser_hf:
        import os

        env = {**os.environ, "PYTHONPATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", _WORKER, "1" if args.without_ser_hf else "0", str(Path(args.run).resolve())],
        input=json.dumps(files),
        capture_output=True,
        text=True,
        env=env,
        cwd="/" if args.without_ser_hf else None,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the pipeline failed on {args.run}:\n{done.stderr[-3000:]}")
    preds = json.loads(done.stdout.strip().splitlines()[-1])
    seconds = time.perf_counter() - start
    index = {n: i for i, n in enumerate(record.label_names)}
    scores = compute_ser_metrics(
        np.array([index[p] for p in preds]), np.array([index[r] for r in refs]), len(record.label_names)
    )
    per_corpus = {}
    if "corpus" in test.column_names:  # each corpus's pipeline UA beside the report's
        corpora = np.array(test["corpus"])
        pred_idx, ref_idx = np.array([index[p] for p in preds]), np.array([index[r] for r in refs])
        for name, reported in record.test.get("per_corpus", {}).items():
            rows = corpora == name
            got = compute_ser_metrics(pred_idx[rows], ref_idx[rows], len(record.label_names))["ua"]
            per_corpus[name] = {"report_ua": reported["ua"], "pipeline_ua": got, "clips": int(rows.sum())}
    result = {
        "run": args.run,
        **({"per_corpus": per_corpus} if per_corpus else {}),
        "test_speakers": record.split.test_speakers,
        "num_clips": len(files),
        "report_ua": record.ua,
        "pipeline_ua": scores["ua"],
        "report_wa": record.wa,
        "pipeline_wa": scores["wa"],
        "ua_difference_points": 100 * (scores["ua"] - record.ua),
        "preprocessing": record.preprocessing.to_dict(),
        "without_ser_hf": args.without_ser_hf,
        "seconds": seconds,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

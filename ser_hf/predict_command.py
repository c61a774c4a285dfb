"""``ser-hf predict``: the emotion of clips and folders, or timelines of long recordings (:mod:`ser_hf.inference`).

ser-hf predict MODEL PATHS... [--format table|csv|jsonl] [--output FILE]
ser-hf predict MODEL PATHS... --timeline [--window_s 2 --hop_s 1] [--output_dir DIR] [--plot]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def shown(value) -> str:
    """``value`` as printable text: a path (or a message holding one) whose name is not valid UTF-8 (kept by
    Python as surrogate escapes) is shown with backslash escapes (``caf\\xe9.wav``) instead of failing to print."""
    text = str(value)
    return (
        os.fsencode(text).decode("utf-8", "backslashreplace") if any("\udc80" <= c <= "\udcff" for c in text) else text
    )


def timeline_targets(files: list, out_dir, ext: str) -> dict:
    """The timeline file of each input: ``<stem>.timeline.<ext>`` in ``out_dir``; inputs whose stems collide (the
    same name in two folders) get their parent folders' names in front (``a__x.timeline.csv``), then a number."""
    from collections import Counter
    from pathlib import Path

    stems = Counter(Path(f).stem for f in files)
    names = {}
    for f in files:
        f = Path(f)
        name = f.stem if stems[f.stem] == 1 else f"{f.parent.name}__{f.stem}"
        base, n = name, 1
        while name in names.values():
            n += 1
            name = f"{base}_{n}"
        names[f] = name
    return {f: Path(out_dir) / f"{shown(name)}.timeline.{ext}" for f, name in names.items()}


def main(argv: list[str]) -> int:
    """``ser-hf predict``: parse, find the audio files (errors before the model loads), load the model, run."""
    parser = argparse.ArgumentParser(
        prog="ser-hf predict", description="Emotion of clips and folders, or a timeline of long recordings."
    )
    parser.add_argument("model", help="checkpoint folder, hub id, or ONNX export folder")
    parser.add_argument("paths", nargs="+", help="audio files and/or folders (searched recursively)")
    parser.add_argument("--format", choices=["table", "csv", "jsonl"], default="table")
    parser.add_argument("--output", default=None, help="clip mode: write here instead of stdout (never replaced)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--timeline", action="store_true", help="sliding-window timeline per file")
    parser.add_argument("--window_s", type=float, default=2.0, help="timeline window length in seconds")
    parser.add_argument("--hop_s", type=float, default=1.0, help="timeline window step in seconds")
    parser.add_argument("--gate_db", type=float, default=-60.0, help="windows below this RMS dBFS are non-speech")
    parser.add_argument("--no_gate", action="store_true", help="classify every window")
    parser.add_argument("--smooth", type=int, default=1, help="moving average over this many speech windows")
    parser.add_argument("--output_dir", default=".", help="timeline mode: folder for <name>.timeline.csv/jsonl/png")
    parser.add_argument("--plot", action="store_true", help="timeline mode: also write a PNG")
    parser.add_argument(
        "--backend",
        choices=["auto", "torch", "onnx"],
        default="auto",
        help="onnx: run an export of `ser-hf export-onnx` on onnxruntime, without PyTorch (auto: onnx for an "
        "export folder, torch otherwise)",
    )
    parser.add_argument("--quantized", action="store_true", help="onnx backend: the int8 model")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        raise ValueError(f"--batch_size {args.batch_size}: expected 1 or more clips per batch")
    from .inference import audio_files, open_model

    files = audio_files(args.paths)  # errors (missing file, empty folder) before loading the model
    clf, fe, labels = open_model(args.model, args.device, args.backend, args.quantized)
    if args.timeline:
        return predict_timelines(args, clf, fe, files, labels)
    return predict_clips(args, clf, fe, files, labels)


def predict_timelines(args, clf, fe, files: list, labels: list[str]) -> int:
    """Timeline mode: one ``<name>.timeline.csv`` / ``.jsonl`` (and ``.png`` with ``--plot``) per file in
    ``--output_dir``, none replaced (all targets are checked before any is written); a file that cannot be used is
    skipped and named. Returns the exit status (1 when any file was skipped)."""
    from .audio import AudioError
    from .timeline import predict_timeline

    out_dir = Path(args.output_dir)
    ext = "jsonl" if args.format == "jsonl" else "csv"
    targets = timeline_targets(files, out_dir, ext)
    existing = [str(t) for t in targets.values() if t.exists() or (args.plot and t.with_suffix(".png").exists())]
    if existing:  # checked for every file before any is written
        raise FileExistsError(
            f"{', '.join(existing[:3])} exist(s); choose another --output_dir (outputs are not replaced)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    for f in files:
        target = targets[f]
        try:
            tl = predict_timeline(
                clf,
                f,
                args.window_s,
                args.hop_s,
                args.batch_size,
                None if args.no_gate else args.gate_db,
                args.smooth,
                feature_extractor=fe,
            )
        except (OSError, AudioError) as err:
            failed.append(shown(err))
            print(f"ser-hf predict: skipped: {shown(err)}", file=sys.stderr)
            continue
        tl.to_jsonl(target) if ext == "jsonl" else tl.to_csv(target)
        if args.plot:
            tl.plot(target.with_suffix(".png"))
        speech = [s for s in tl.segments if s.speech]
        counts = {n: sum(s.label == n for s in speech) for n in labels}
        top = max(counts, key=counts.get) if speech else "-"
        print(
            f"{shown(f)}: {tl.duration_s:.1f} s, {len(tl.segments)} windows, {len(speech)} with speech; "
            f"most frequent: {top}; timeline: {shown(target)}"
        )
    if failed:
        print(f"ser-hf predict: {len(failed)} of {len(files)} files could not be used (listed above)", file=sys.stderr)
    return 1 if failed else 0


def predict_clips(args, clf, fe, files: list, labels: list[str]) -> int:
    """Clip mode: one row per file (label, score, duration, every label's probability) as a table, CSV or JSONL,
    to stdout or ``--output`` (never replaced). Returns the exit status (1 when any file was skipped)."""
    from .inference import predict

    if args.output and Path(args.output).exists():
        raise FileExistsError(f"{args.output} exists; choose another --output (outputs are not replaced)")
    failed: list[tuple[str, str]] = []
    results = predict(clf, files, args.batch_size, feature_extractor=fe, errors=failed)
    failed = [(shown(p), shown(m)) for p, m in failed]
    for r in results:  # a file name that is not valid UTF-8 is shown with backslash escapes, never lost
        r.path = shown(r.path)
    if not results:
        for _, message in failed:
            print(f"ser-hf predict: error: {message}", file=sys.stderr)
        return 1
    import csv

    stream = open(args.output, "w", newline="") if args.output else sys.stdout  # noqa: SIM115
    try:
        if args.format == "jsonl":
            for r in results:
                stream.write(json.dumps(r.__dict__) + "\n")
        elif args.format == "csv":
            w = csv.writer(stream)
            w.writerow(["path", "label", "score", "duration_s", *labels])
            for r in results:
                w.writerow(
                    [r.path, r.label, f"{r.score:.5f}", f"{r.duration_s:.3f}"]
                    + [f"{r.probabilities[n]:.5f}" for n in labels]
                )
        else:
            width = max(len(r.path) for r in results)
            stream.write(f"{'path':<{width}}  {'label':<12} {'score':>6}  {'seconds':>8}\n")
            for r in results:
                stream.write(f"{r.path:<{width}}  {r.label:<12} {r.score:6.3f}  {r.duration_s:8.2f}\n")
    finally:
        if args.output:
            stream.close()
    for _, message in failed:
        print(f"ser-hf predict: skipped: {message}", file=sys.stderr)
    if failed:
        print(f"ser-hf predict: {len(failed)} of {len(files)} files could not be used (listed above)", file=sys.stderr)
    return 1 if failed else 0

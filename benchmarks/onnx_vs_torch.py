"""PyTorch against onnxruntime (fp32 and int8) for one trained run, on its own test side of real clips.

    python benchmarks/onnx_vs_torch.py --run runs/urdu_whisper_base_lora/fold_1 --corpus urdu \\
        --data_dir ../shared/data/urdu-16k --threads 2 --output docs/results/onnx/urdu_whisper_base_fold1.json

Exports the run (``ser-hf export-onnx``) unless ``--export`` names an existing export, then runs each backend in
a process of its own (so that its peak RSS is its own) over the run's test clips, one clip at a time as
``pipeline()`` runs them, with ``--threads`` intra-op threads, and prints / writes:

- the largest absolute logit difference of fp32 and int8 against PyTorch;
- test UA of each backend (argmax over all the model's labels, as the run's own record scores it) beside the
  record's UA; for int8 the UA difference to PyTorch with its paired speaker-bootstrap 95 % CI
  (:func:`ser_hf.reports.compare.paired_bootstrap_ua`);
- real-time factor (wall seconds per second of audio, model loading excluded), peak RSS (MiB, the process's
  maximum resident set, model loading included) and model size on disk.
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

import numpy as np

BACKENDS = ("torch", "onnx", "onnx-int8")


def test_clips(run: str, corpus: str, data_dir: str) -> tuple[list[str], list[str], list[str], list[str]]:
    """``(ids, paths, speakers, labels)`` of the run's test side of ``corpus`` (canonical label names)."""
    from ser_hf.corpora import load_corpus
    from ser_hf.labels import canonical_label
    from ser_hf.run import RunRecord

    split = RunRecord.load(run).split.for_corpus(corpus)
    ds = load_corpus(corpus, data_dir)
    names = ds.features["label"].names
    keep = [i for i, s in enumerate(ds["speaker"]) if s in set(split.test_speakers)]
    rows = ds.select(keep)
    labels = [canonical_label(names[y]) or names[y] for y in rows["label"]]
    return list(rows["id"]), list(rows["audio"]), list(rows["speaker"]), labels


def measure(backend: str, model: str, paths: list[str], threads: int, out: Path) -> dict:
    """Run one backend over the clips in this process: logits saved to ``out`` (``.npy``), timing returned."""
    from ser_hf.audio import load_audio

    if backend == "torch":
        import torch

        from ser_hf.data import featurize
        from ser_hf.inference import load_classifier

        torch.set_num_threads(threads)
        clf, fe = load_classifier(model, "cpu")
        sr, labels = fe.sampling_rate, [clf.config.id2label[i] for i in range(clf.config.num_labels)]

        def logits(w):
            with torch.no_grad():
                return clf(**featurize(fe, [w])).logits.numpy()[0]
    else:
        from ser_hf.onnx_backend import OnnxClassifier

        onnx = OnnxClassifier(model, quantized=backend == "onnx-int8", threads=threads)
        sr, labels = onnx.sampling_rate, onnx.labels

        def logits(w):
            return onnx.logits([w])[0]

    waves = [load_audio(p, sr) for p in paths]
    logits(waves[0])  # warm-up
    start = time.perf_counter()
    rows = [logits(w) for w in waves]
    wall = time.perf_counter() - start
    np.save(out, np.stack(rows))
    audio_s = sum(len(w) for w in waves) / sr
    peak = peak_rss_mib()
    return {"backend": backend, "rtf": wall / audio_s, "wall_s": wall, "audio_s": audio_s, "peak_rss_mib": peak,
            "threads": threads, "labels": labels}  # fmt: skip


def peak_rss_mib() -> float:
    """This process's peak resident set in MiB (``VmHWM`` of ``/proc/self/status``, which starts anew at exec,
    unlike ``ru_maxrss``, which a child inherits from the process that started it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ua_with_interval(ids, speakers, refs, pred_a, pred_b, labels) -> dict:
    """UA of both prediction sets and the paired speaker-bootstrap CI of UA(b) - UA(a)."""
    from ser_hf.reports.compare import FoldResult, paired_bootstrap_ua

    def result(pred):
        lines = [{"id": i, "speaker": s, "reference": r, "prediction": labels[p]}
                 for i, s, r, p in zip(ids, speakers, refs, pred, strict=True)]  # fmt: skip
        return FoldResult(0, Path("."), None, None, lines)

    return paired_bootstrap_ua([result(pred_a)], [result(pred_b)], num_bootstrap=2000)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a finished run folder (its test side is scored)")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--export", default=None, help="an existing ONNX export of the run (default: export now)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    parser.add_argument("--_measure", default=None, help=argparse.SUPPRESS)  # child process: one backend
    parser.add_argument("--_paths", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._measure:
        model = args.run if args._measure == "torch" else args.export
        paths = json.loads(Path(args._paths).read_text())
        print(json.dumps(measure(args._measure, model, paths, args.threads, Path(args._out))))
        return 0

    from ser_hf.environment import machine_facts
    from ser_hf.metrics import compute_ser_metrics
    from ser_hf.run import RunRecord

    record = RunRecord.load(args.run)
    tmp = Path(tempfile.mkdtemp(prefix="onnx_vs_torch_"))
    export = args.export
    if export is None:
        from ser_hf.onnx_export import export_onnx

        export = str(tmp / "export")
        export_onnx(args.run, export)
    ids, paths, speakers, refs = test_clips(args.run, args.corpus, args.data_dir)
    (tmp / "paths.json").write_text(json.dumps(paths))
    results, logits = {}, {}
    for backend in BACKENDS:
        out = tmp / f"{backend}.npy"
        cmd = [sys.executable, __file__, "--run", args.run, "--corpus", args.corpus, "--data_dir", args.data_dir,
               "--export", export, "--threads", str(args.threads), "--_measure", backend,
               "--_paths", str(tmp / "paths.json"), "--_out", str(out)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
        logits[backend] = np.load(out)
    labels = results["torch"]["labels"]
    ref = np.array([labels.index(r) for r in refs])
    summary = {"run": args.run, "export": export, "corpus": args.corpus, "clips": len(ids), "record_ua": record.ua}
    sizes = {"torch": Path(args.run, "model.safetensors").stat().st_size}
    sizes |= {"onnx": Path(export, "onnx/model.onnx").stat().st_size}
    sizes["onnx-int8"] = Path(export, "onnx/model_quantized.onnx").stat().st_size
    for backend in BACKENDS:
        pred = logits[backend].argmax(1)
        results[backend] |= {
            "ua": compute_ser_metrics(pred, ref, len(labels))["ua"],
            "max_abs_logit_diff": float(np.abs(logits[backend] - logits["torch"]).max()),
            "size_mib": sizes[backend] / 2**20,
        }
        results[backend].pop("labels")
    summary["backends"] = results
    summary["int8_minus_torch"] = ua_with_interval(
        ids, speakers, refs, logits["torch"].argmax(1), logits["onnx-int8"].argmax(1), labels
    )
    summary["speedup_fp32"] = results["torch"]["rtf"] / results["onnx"]["rtf"]
    summary["speedup_int8"] = results["torch"]["rtf"] / results["onnx-int8"]["rtf"]
    summary["machine"] = machine_facts(threads=args.threads)
    print(f"{args.run} on {args.corpus}: {len(ids)} test clips; record UA {record.ua:.4f}")
    print("| backend | UA | max abs logit diff | RTF | peak RSS MiB | size MiB |")
    print("|---|---|---|---|---|---|")
    for backend, r in results.items():
        print(f"| {backend} | {r['ua']:.4f} | {r['max_abs_logit_diff']:.2e} | {r['rtf']:.4f} | "
              f"{r['peak_rss_mib']:.0f} | {r['size_mib']:.1f} |")  # fmt: skip
    b = summary["int8_minus_torch"]
    print(f"int8 minus PyTorch UA {b['ua_difference']:+.4f} [{b['ci95_low']:+.4f}, {b['ci95_high']:+.4f}]; "
          f"speed-up fp32 {summary['speedup_fp32']:.2f}x, int8 {summary['speedup_int8']:.2f}x "
          f"({args.threads} threads, {summary['machine']['cpu']})")  # fmt: skip
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

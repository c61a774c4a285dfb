#!/usr/bin/env python
"""Real-time factor and peak memory of long-recording inference: ser_hf's timeline against the plain
``pipeline("audio-classification")`` applied window by window.

    python benchmarks/inference_rtf.py                          # 1 h recording, all three models
    python benchmarks/inference_rtf.py --minutes 10 --models mel_cnn whisper_tiny --threads 2

A synthetic recording (harmonic "voiced" segments of 0.5-4 s with pauses of digital silence, 16 kHz mono
16-bit WAV, written block by block) is made once in ``--work_dir``. Models, all with 8 emotion labels:

- ``mel_cnn``: ser_hf's mel-CNN with the RAVDESS config's shape (random weights);
- ``whisper_tiny``: the Whisper tiny.en encoder from ``--whisper`` (default
  ``../shared/models/whisper-tiny.en-encoder``; a random model of the same shape when absent), with ser_hf's
  input window cut to ``--window_s`` (rounded up to whole seconds);
- ``wav2vec2_base``: a random model of facebook/wav2vec2-base's shape (95 M parameters).

Weights do not change speed. Each measurement runs in its own process (so peak RSS, from
``getrusage(RUSAGE_SELF).ru_maxrss``, belongs to it alone), with ``--threads`` torch threads:

- ``ser_hf``: :func:`ser_hf.timeline.predict_timeline` (block-wise reading and resampling, energy gate,
  batched windows, ``--window_s`` / ``--hop_s``);
- ``pipeline``: ``soundfile.read`` of the whole file, then ``pipeline("audio-classification")`` called on
  every window (``--window_s`` / ``--hop_s``), one window per call, as a user of the plain pipeline would.

RTF = wall-clock seconds / seconds of audio (below 1: faster than real time). Model loading is excluded;
reading and decoding are included. Prints one row per model and method and writes ``--json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def make_recording(path: Path, minutes: float, sr: int = 16000, seed: int = 0) -> float:
    import soundfile as sf

    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * sr)
    written = 0
    with sf.SoundFile(str(path), "w", sr, 1, subtype="PCM_16") as f:
        while written < total:
            n = min(int(rng.uniform(0.5, 4.0) * sr), total - written)
            t = np.arange(n) / sr
            f0 = rng.uniform(90, 300)
            seg = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * 0.1 * np.hanning(n)
            f.write(seg.astype(np.float32))
            written += n
            gap = min(int(rng.uniform(0.1, 1.5) * sr), total - written)
            f.write(np.zeros(gap, dtype=np.float32))
            written += gap
    return total / sr


def build_models(work: Path, names: list[str], whisper: str, window_s: float) -> dict[str, Path]:
    import torch
    from transformers import AutoModelForAudioClassification, Wav2Vec2Config, Wav2Vec2FeatureExtractor, WhisperConfig

    from ser_hf.models import MelCNNConfig, MelCNNForAudioClassification
    from ser_hf.models.pretrained import load_backbone

    id2label = dict(enumerate(LABELS))
    label2id = {v: k for k, v in id2label.items()}
    out = {}
    torch.manual_seed(0)
    for name in names:
        d = work / name
        if not (d / "config.json").exists():
            if name == "mel_cnn":
                cfg = MelCNNConfig(num_labels=8, id2label=id2label, label2id=label2id)
                MelCNNForAudioClassification(cfg).save_pretrained(d)
                Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=True).save_pretrained(d)
            elif name == "wav2vec2_base":
                cfg = Wav2Vec2Config(num_labels=8, id2label=id2label, label2id=label2id)
                AutoModelForAudioClassification.from_config(cfg).save_pretrained(d)
                Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(d)
            elif name == "whisper_tiny":
                src = Path(whisper)
                if not (src / "config.json").exists():
                    from transformers import WhisperFeatureExtractor

                    src = work / "whisper_tiny_random"
                    cfg = WhisperConfig(
                        d_model=384,
                        encoder_layers=4,
                        encoder_attention_heads=6,
                        encoder_ffn_dim=1536,
                        num_mel_bins=80,
                        num_labels=8,
                        id2label=id2label,
                        label2id=label2id,
                    )
                    AutoModelForAudioClassification.from_config(cfg).save_pretrained(src)
                    WhisperFeatureExtractor(feature_size=80).save_pretrained(src)
                model, fe = load_backbone(str(src), LABELS, whisper_window_s=max(1, math.ceil(window_s)))
                model.save_pretrained(d)
                fe.save_pretrained(d)
            else:
                raise ValueError(f"unknown model {name!r}")
        out[name] = d
    return out


def worker(args) -> None:
    import resource

    import torch

    torch.set_num_threads(args.threads)
    import ser_hf  # noqa: F401  (registers the mel-CNN)

    if args.method == "ser_hf":
        from ser_hf.inference import load_classifier
        from ser_hf.timeline import predict_timeline

        clf, fe = load_classifier(args.model, "cpu")
        start = time.perf_counter()
        tl = predict_timeline(clf, args.audio, args.window_s, args.hop_s, args.batch_size, feature_extractor=fe)
        wall = time.perf_counter() - start
        windows, speech = len(tl.segments), sum(s.speech for s in tl.segments)
        duration = tl.duration_s
    else:
        import soundfile as sf
        from transformers import pipeline

        clf = pipeline("audio-classification", model=args.model, device="cpu")
        start = time.perf_counter()
        wav, sr = sf.read(args.audio, dtype="float32")
        win, hop = int(args.window_s * sr), int(args.hop_s * sr)
        windows = 0
        for a in range(0, max(len(wav) - win, 0) + 1, hop):
            clf({"raw": wav[a : a + win], "sampling_rate": sr}, top_k=1)
            windows += 1
        wall = time.perf_counter() - start
        speech, duration = windows, len(wav) / sr
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB (Linux)
    print(
        json.dumps(
            {
                "wall_s": wall,
                "audio_s": duration,
                "rtf": wall / duration,
                "peak_rss_mib": rss,
                "windows": windows,
                "speech_windows": speech,
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the synthetic recording")
    parser.add_argument("--models", nargs="+", default=["mel_cnn", "whisper_tiny", "wav2vec2_base"])
    parser.add_argument("--methods", nargs="+", default=["ser_hf", "pipeline"], choices=["ser_hf", "pipeline"])
    parser.add_argument("--window_s", type=float, default=2.0)
    parser.add_argument("--hop_s", type=float, default=1.0)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--whisper", default="../shared/models/whisper-tiny.en-encoder")
    parser.add_argument("--work_dir", default="runs/bench_inference", help="recording and models are kept here")
    parser.add_argument("--json", default=None, help="also write the rows here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--audio", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    audio = work / f"recording_{args.minutes:g}min.wav"
    if not audio.exists():
        make_recording(audio, args.minutes)
    models = build_models(work, args.models, args.whisper, args.window_s)
    cpu = os.popen("lscpu | grep 'Model name'").read().split(":")[-1].strip() or "CPU"
    print(
        f"{args.minutes:g} min recording; window {args.window_s} s, hop {args.hop_s} s; {args.threads} threads on {cpu}"
    )
    print(f"{'model':<14} {'method':<9} {'wall s':>9} {'RTF':>8} {'peak RSS MiB':>13} {'windows':>8}")
    rows = []
    for name, path in models.items():
        for method in args.methods:
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                "--model",
                str(path),
                "--audio",
                str(audio),
                "--method",
                method,
                "--window_s",
                str(args.window_s),
                "--hop_s",
                str(args.hop_s),
                "--batch_size",
                str(args.batch_size),
                "--threads",
                str(args.threads),
            ]
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                print(f"{name:<14} {method:<9} failed: {done.stderr[-500:]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1]) | {"model": name, "method": method}
            rows.append(r)
            print(
                f"{name:<14} {method:<9} {r['wall_s']:>9.1f} {r['rtf']:>8.4f} {r['peak_rss_mib']:>13.0f} "
                f"{r['windows']:>8}",
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu, "args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

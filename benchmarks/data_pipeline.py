#!/usr/bin/env python
"""Data-pipeline throughput: decode + resample + log-mel over RAVDESS, ser_hf against the seeds' approach.

    python benchmarks/data_pipeline.py --data_dir ../shared/data/ravdess-16k [--limit N] [--threads 2]

ser_hf: ``ser_hf.load_audio`` (soundfile + soxr) to 16 kHz mono, then the mel-CNN's torch log-mel front end
(64 bands, 25 ms / 10 ms). Seeds: ``librosa.load(path)`` (librosa's default 22.05 kHz, soxr_hq) then
``librosa.feature.melspectrogram`` and ``librosa.power_to_db`` with librosa's defaults (128 bands), as in
the seed write-ups. A third row runs librosa with ser_hf's settings (16 kHz, 64 bands, 400/160 samples) so
the comparison at equal work is printed too. Each clip is processed on its own (no batching), one process.
Prints clips/s, seconds of audio per second of wall time, and the ratios. Needs ``pip install -e .[bench]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch


def run(name, fn, files, durations):
    fn(files[0])  # warm-up (imports, caches, numba compilation for librosa)
    start = time.perf_counter()
    for f in files:
        fn(f)
    wall = time.perf_counter() - start
    clips, audio = len(files) / wall, sum(durations) / wall
    print(f"{name:<48} {len(files):>5} clips {wall:8.2f} s {clips:9.1f} clips/s {audio:9.1f} audio-s/s")
    return clips


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="RAVDESS folder (Actor_XX/*.wav|flac)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N clips")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import librosa
    import soundfile as sf

    from ser_hf.audio import load_audio
    from ser_hf.models import MelCNNConfig
    from ser_hf.models.mel_cnn import LogMel

    files = sorted(p for p in Path(args.data_dir).rglob("*") if p.suffix.lower() in (".wav", ".flac"))
    if not files:
        raise SystemExit(f"{args.data_dir}: no .wav or .flac files")
    files = files[: args.limit]
    durations = [sf.info(str(f)).duration for f in files]
    rate = sf.info(str(files[0])).samplerate
    print(f"{len(files)} clips, {sum(durations) / 60:.1f} min of audio, source rate {rate} Hz, threads {args.threads}")

    frontend = LogMel(MelCNNConfig()).eval()

    def ser_hf_path(f):
        with torch.no_grad():
            return frontend(torch.from_numpy(load_audio(f, 16000))[None])

    def seeds_path(f):
        y, sr = librosa.load(f)
        return librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr), ref=np.max)

    def librosa_same_settings(f):
        y, sr = librosa.load(f, sr=16000)
        mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=512, win_length=400, hop_length=160, n_mels=64)
        return np.log(mel + 1e-6)

    ours = run("ser_hf (soundfile + soxr + torch log-mel)", ser_hf_path, files, durations)
    seeds = run("seeds (librosa.load + melspectrogram, defaults)", seeds_path, files, durations)
    same = run("librosa at ser_hf's settings (16 kHz, 64 mels)", librosa_same_settings, files, durations)
    print(f"speed-up over the seeds' approach: {ours / seeds:.2f}x; over librosa at equal settings: {ours / same:.2f}x")


if __name__ == "__main__":
    main()

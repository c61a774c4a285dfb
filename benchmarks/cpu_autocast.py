#!/usr/bin/env python
"""Does bf16 autocast pay on this CPU? Seconds per LoRA training step of a real Whisper encoder, float32 against
``torch.autocast("cpu", dtype=torch.bfloat16)``, at the RAVDESS config's settings.

    python benchmarks/cpu_autocast.py --whisper ../shared/models/whisper-tiny.en-encoder --windows 4 6

Builds the model exactly as ``scripts/finetune.py`` does from ``configs/ravdess_wav2vec2_lora.yaml`` (LoRA on the
attention projections, ``--whisper_window_s`` per window), then times forward + backward + AdamW steps on a
batch of ``--batch_size`` 3.5 s clips of noise (speed does not depend on the audio). Prints one JSON line per
window and dtype with the thread count. Time it only when nothing else runs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def step(model, opt, feats: torch.Tensor, labels: torch.Tensor, bf16: bool) -> None:
    """One forward + backward + AdamW step; ``feats`` ``(batch_size, 80, num_frames)``, ``labels`` ``(batch_size,)``."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(input_features=feats).logits
    loss = torch.nn.functional.cross_entropy(logits.float(), labels)
    loss.backward()
    opt.step()
    opt.zero_grad()


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--whisper", required=True, help="Whisper encoder (hub id or folder)")
    parser.add_argument("--windows", type=int, nargs="+", default=[4, 6], help="whisper_window_s values")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)

    from ser_hf.training import build_model, parse_args

    rows = []
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(int(3.5 * 16000)).astype(np.float32) * 0.1 for _ in range(args.batch_size)]
    for window in args.windows:
        config = str(ROOT / "configs" / "ravdess_wav2vec2_lora.yaml")
        model_args, _, _ = parse_args(
            [config, "--data_dir", ".", "--model_name_or_path", args.whisper, "--whisper_window_s", str(window)]
        )
        torch.manual_seed(0)
        model, fe = build_model(model_args, [str(i) for i in range(8)], 16000)
        model.train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        feats = fe(clips, sampling_rate=16000, return_tensors="pt")["input_features"]  # (batch, 80, frames)
        labels = torch.arange(args.batch_size) % 8
        for dtype in ("fp32", "bf16"):
            step(model, opt, feats, labels, dtype == "bf16")  # warm-up
            start = time.perf_counter()
            for _ in range(args.steps):
                step(model, opt, feats, labels, dtype == "bf16")
            row = {
                "window_s": window,
                "dtype": dtype,
                "batch_size": args.batch_size,
                "s_per_step": (time.perf_counter() - start) / args.steps,
                "threads": torch.get_num_threads(),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


if __name__ == "__main__":
    main()

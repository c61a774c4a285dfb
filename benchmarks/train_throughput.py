#!/usr/bin/env python
"""Training throughput and peak memory of a wav2vec2-base-sized model: LoRA against full fine-tuning.

    python benchmarks/train_throughput.py                       # GPU: bf16, batch sizes 8 and 32, 4 s clips
    python benchmarks/train_throughput.py --device cpu --batch_sizes 2 --steps 2 --warmup 1   # smoke run

The model is ``Wav2Vec2ForSequenceClassification`` built from the default ``Wav2Vec2Config`` (the shape of
facebook/wav2vec2-base: 12 layers, hidden size 768, 95 M parameters) with random weights: speed and memory do
not depend on the weights, and no hub download is needed. The modes are set up exactly as
``scripts/finetune.py`` does (``ser_hf.models.pretrained.apply_finetune_mode``: LoRA rank 8 on q/k/v/out, or
everything but the CNN feature encoder). Each step is forward + backward + AdamW step on random audio of
``--seconds`` seconds, under ``torch.autocast`` in ``--dtype``. Prints clips/s, audio-seconds/s and peak GPU
memory (``torch.cuda.max_memory_allocated``) per mode and batch size, plus the device name.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from transformers import AutoModelForAudioClassification, Wav2Vec2Config

from ser_hf.models.pretrained import FinetuneSettings, apply_finetune_mode
from ser_hf.models.summary import count_parameters


def bench(mode: str, batch_size: int, args) -> dict:
    torch.manual_seed(0)
    model = AutoModelForAudioClassification.from_config(Wav2Vec2Config(num_labels=8))
    model = apply_finetune_mode(model, FinetuneSettings(mode=mode)).to(args.device).train()
    if args.gradient_checkpointing:
        model.activation_checkpointing_enable()
    params = count_parameters(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    samples = int(args.seconds * 16000)
    x = torch.randn(batch_size, samples, device=args.device)
    y = torch.randint(0, 8, (batch_size,), device=args.device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    cuda = args.device.startswith("cuda")

    def step():
        with torch.autocast(device_type="cuda" if cuda else "cpu", dtype=dtype, enabled=args.dtype != "fp32"):
            loss = model(input_values=x, labels=y).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    clips = batch_size * args.steps / wall
    row = {
        "mode": mode,
        "batch_size": batch_size,
        "clips_per_s": clips,
        "audio_s_per_s": clips * args.seconds,
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "trainable": params["trainable"],
        "total": params["total"],
    }
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--modes", nargs="+", default=["lora", "full"], choices=["lora", "full", "frozen"])
    parser.add_argument("--batch_sizes", nargs="+", type=int, default=[8, 32])
    parser.add_argument("--seconds", type=float, default=4.0, help="clip length in seconds (16 kHz)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--gradient_checkpointing", action="store_true")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args()

    cuda = args.device.startswith("cuda")
    device = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {device}; torch {torch.__version__}; {args.dtype}; {args.seconds} s clips; {args.steps} steps")
    rows = []
    print(f"{'mode':<6} {'batch':>5} {'clips/s':>9} {'audio-s/s':>10} {'peak GiB':>9} {'trainable':>12} {'total':>12}")
    for mode in args.modes:
        for bs in args.batch_sizes:
            r = bench(mode, bs, args)
            rows.append(r)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            mem = f"{r['peak_gpu_memory_gib']:.2f}" if r["peak_gpu_memory_gib"] is not None else "-"
            print(
                f"{mode:<6} {bs:>5} {r['clips_per_s']:>9.1f} {r['audio_s_per_s']:>10.1f} {mem:>9} "
                f"{r['trainable']:>12,} {r['total']:>12,}",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device, "args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()

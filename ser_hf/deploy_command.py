"""The deployment commands of ``ser-hf``: ``export-onnx`` (:mod:`ser_hf.onnx_export`), ``demo`` and ``space``
(:mod:`ser_hf.demo`)."""

from __future__ import annotations

import argparse


def export_onnx_main(argv: list[str]) -> int:
    """``ser-hf export-onnx``: see :mod:`ser_hf.onnx_export`."""
    parser = argparse.ArgumentParser(
        prog="ser-hf export-onnx",
        description="Export a checkpoint as ONNX (onnx/model.onnx, int8 onnx/model_quantized.onnx) with its configs "
        "and the settings a client needs to reproduce its preprocessing.",
    )
    parser.add_argument("run", help="run folder or checkpoint (mel-CNN, Whisper encoder, wav2vec2 family)")
    parser.add_argument("--to", required=True, help="output folder (must not exist or be empty)")
    parser.add_argument("--no_quantize", action="store_true", help="skip the int8 copy")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export in --to")
    args = parser.parse_args(argv)
    from .onnx_export import export_onnx

    summary = export_onnx(args.run, args.to, quantize=not args.no_quantize, overwrite=args.overwrite)
    for key in ("max_abs_logit_diff_fp32", "max_abs_logit_diff_int8"):
        if key in summary:
            print(f"{key.replace('_', ' ')} (PyTorch vs onnxruntime, synthetic clips): {summary[key]:.2e}")
    for name, size in summary["files"].items():
        print(f"  {name}: {size / 2**20:.2f} MiB")
    print(f"exported to {summary['folder']} ({summary['exporter']})")
    return 0


def demo_main(argv: list[str]) -> int:
    """``ser-hf demo``: see :mod:`ser_hf.demo`."""
    parser = argparse.ArgumentParser(prog="ser-hf demo", description="Try a model on your own voice in a browser.")
    parser.add_argument("model", help="ONNX export folder, run folder or checkpoint")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this machine only)")
    parser.add_argument("--quantized", action="store_true", help="ONNX export: the int8 model")
    args = parser.parse_args(argv)
    from .demo import build_demo, classifier_for

    build_demo(classifier_for(args.model, quantized=args.quantized)).launch(
        server_name=args.host, server_port=args.port
    )
    return 0


def space_main(argv: list[str]) -> int:
    """``ser-hf space``: see :func:`ser_hf.demo.write_space`."""
    parser = argparse.ArgumentParser(
        prog="ser-hf space", description="A Hugging Face Space folder (Gradio on onnxruntime) for an ONNX export."
    )
    parser.add_argument("export", help="ONNX export folder (ser-hf export-onnx)")
    parser.add_argument("--to", required=True, help="output folder (must not exist or be empty)")
    parser.add_argument("--model_repo", default=None, help="the Hub model repository the Space is for (linked)")
    args = parser.parse_args(argv)
    from .demo import write_space

    out = write_space(args.export, args.to, model_repo=args.model_repo)
    print(f"Space folder: {out} (app.py, requirements.txt, README.md, model/); upload it as a Gradio Space")
    return 0

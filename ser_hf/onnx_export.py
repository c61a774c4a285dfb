"""``ser-hf export-onnx RUN --to DIR``: a checkpoint as ONNX for onnxruntime and transformers.js.

The export (layout and client-side preprocessing: :mod:`ser_hf.onnx_backend`) holds the fp32 graph, a copy with
int8 weights (onnxruntime's dynamic quantisation: weights of MatMul / Gemm / Conv stored as int8, activations
quantised at run time), the checkpoint's ``config.json`` and ``preprocessor_config.json``, and the settings a
client needs to reproduce the feature extractor.

Exporter: ``torch.onnx.export(..., dynamo=True)`` (the ``torch.export`` based exporter, opset 18) for every family.
optimum's exporters (optimum-onnx) would be the first choice for the wav2vec2 family, but its current release
requires transformers < 4.58 and ser_hf needs transformers 5; it has no exporter for Whisper's encoder classifier
nor for the mel-CNN either. Axes: Whisper takes ``input_features`` with a dynamic batch and the checkpoint's fixed
window; the wav2vec2 family and the mel-CNN take ``input_values`` ``(1, num_samples)`` with a dynamic length (one
clip at a time, as ``pipeline()`` runs them; the group-norm wav2vec2-base must not see padding).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from .onnx_backend import CONFIG_FILE, MEL_FILTERS_FILE, MODEL_FILE, QUANTIZED_FILE, OnnxClassifier

logger = logging.getLogger(__name__)

OPSET = 18


class _Logits(torch.nn.Module):
    """The classifier with named inputs and the logits as its one output."""

    def __init__(self, model, input_name: str):
        super().__init__()
        self.model, self.input_name = model, input_name

    def forward(self, x):
        return self.model(**{self.input_name: x}).logits


def family_of(model) -> str:
    """``whisper``, ``mel_cnn`` or ``wav2vec2`` (wav2vec2, HuBERT, WavLM, data2vec-audio: waveform input)."""
    kind = model.config.model_type
    return kind if kind in ("whisper", "mel_cnn") else "wav2vec2"


def client_settings(model, fe) -> dict:
    """What :class:`ser_hf.onnx_backend.OnnxClassifier` needs to reproduce the feature extractor ``fe``."""
    family = family_of(model)
    out = {
        "family": family,
        "sampling_rate": int(fe.sampling_rate),
        "id2label": {str(i): model.config.id2label[i] for i in range(model.config.num_labels)},
        "opset": OPSET,
        "exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}",
    }
    if family == "whisper":
        out |= {"n_samples": int(fe.n_samples), "n_fft": int(fe.n_fft), "hop_length": int(fe.hop_length)}
        out["window_s"] = fe.n_samples / fe.sampling_rate
    elif family == "mel_cnn":
        out |= {"trim_db": fe.trim_db, "center_crop_s": fe.center_crop_s}
        out |= {"trim_frame_length": fe.trim_frame_length, "trim_hop_length": fe.trim_hop_length}
    else:
        out["do_normalize"] = bool(getattr(fe, "do_normalize", False))
    return out


def example_input(family: str, model, fe) -> tuple[str, torch.Tensor, dict]:
    """The input name, an example input and the dynamic axes of a family's graph."""
    if family == "whisper":
        frames = fe.nb_max_frames
        return "input_features", torch.randn(2, model.config.num_mel_bins, frames), {0: torch.export.Dim("batch")}
    length = torch.export.Dim("num_samples", min=1600, max=fe.sampling_rate * 3600)
    return "input_values", 0.1 * torch.randn(1, fe.sampling_rate), {1: length}


def export_onnx(run: str | Path, to: str | Path, quantize: bool = True, overwrite: bool = False) -> dict:
    """Export the checkpoint ``run`` (a run folder or any checkpoint :func:`ser_hf.inference.load_classifier`
    loads) into ``to``.

    Returns:
        A summary: the files with their sizes (bytes), the largest logit difference between PyTorch and
        onnxruntime (fp32 and int8) on synthetic clips, and the exporter used.

    Raises:
        FileExistsError: ``to`` exists and holds files (``overwrite`` replaces only an earlier export's files).
    """
    from .inference import load_classifier

    to = Path(to)
    if to.exists() and any(to.iterdir()) and not (overwrite and (to / CONFIG_FILE).is_file()):
        raise FileExistsError(
            f"--to {to} already holds files; choose an empty folder"
            + (" (or pass --overwrite to replace that export)" if (to / CONFIG_FILE).is_file() else "")
        )
    model, fe = load_classifier(str(run), device="cpu")
    model.eval()
    family = family_of(model)
    name, example, axes = example_input(family, model, fe)
    parent = to.parent if to.parent.exists() else Path(tempfile.gettempdir())
    partial = Path(tempfile.mkdtemp(prefix=f".{to.name}.partial-", dir=parent))
    try:
        (partial / "onnx").mkdir()
        torch.onnx.export(
            _Logits(model, name).eval(), (example,), str(partial / MODEL_FILE), input_names=[name],
            output_names=["logits"], dynamic_shapes={"x": axes}, dynamo=True, opset_version=OPSET,
            external_data=False,
        )  # fmt: skip
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(partial / MODEL_FILE, partial / QUANTIZED_FILE, weight_type=QuantType.QInt8)
        if family == "whisper":
            np.save(partial / MEL_FILTERS_FILE, np.asarray(fe.mel_filters, dtype=np.float32))
        model.config.save_pretrained(partial)
        fe.save_pretrained(partial)
        for remote in Path(str(run)).glob("*_mel_cnn.py") if Path(str(run)).is_dir() else []:
            shutil.copy2(remote, partial / remote.name)  # the mel-CNN's code, which its config names
        settings = client_settings(model, fe) | {"source_weights_sha256": weights_digest(Path(str(run)))}
        (partial / CONFIG_FILE).write_text(json.dumps(settings, indent=2) + "\n")
        summary = check_export(partial, model, fe, quantize)
        if to.exists():
            shutil.rmtree(to)
        partial.replace(to)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    summary["folder"] = str(to)
    return summary


def weights_digest(run: Path) -> str | None:
    """SHA-256 (first 16 hex digits) of a checkpoint folder's ``model.safetensors``, ``None`` for a hub id: it ties
    an export to the weights it was made from (``ser-hf push --onnx`` checks it)."""
    import hashlib

    weights = run / "model.safetensors"
    if not weights.is_file():
        return None
    h = hashlib.sha256()
    with weights.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def check_export(folder: Path, model, fe, quantized: bool, num_clips: int = 4) -> dict:
    """The largest absolute logit difference between the PyTorch model and the export (fp32, and int8 when
    written) on ``num_clips`` synthetic clips of 1-5 s (harmonic tones with noise), and the file sizes."""
    from .data import featurize  # the checkpoint's own feature extractor, as pipeline() applies it

    rng = np.random.default_rng(0)
    waves = []
    for k in range(num_clips):
        t = np.arange(int(fe.sampling_rate * (1 + k))) / fe.sampling_rate
        wave = 0.2 * np.sin(2 * np.pi * (120 + 40 * k) * t) + 0.01 * rng.standard_normal(t.shape)
        waves.append(wave.astype(np.float32))
    with torch.no_grad():
        reference = np.concatenate([model(**featurize(fe, [w])).logits.numpy() for w in waves])
    out = {"exporter": client_settings(model, fe)["exporter"], "files": {}}
    for key, quant in (("fp32", False), ("int8", True)) if quantized else (("fp32", False),):
        logits = OnnxClassifier(folder, quantized=quant).logits(waves)
        out[f"max_abs_logit_diff_{key}"] = float(np.abs(logits - reference).max())
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            out["files"][str(path.relative_to(folder))] = path.stat().st_size
    return out

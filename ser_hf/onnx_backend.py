"""ser_hf checkpoints exported to ONNX (``ser-hf export-onnx``), run on onnxruntime without PyTorch.

An export folder holds ``onnx/model.onnx`` (fp32), ``onnx/model_quantized.onnx`` (int8 weights, dynamic
quantisation), the checkpoint's ``config.json`` and ``preprocessor_config.json`` (the layout transformers.js reads
from a Hub repository) and :data:`CONFIG_FILE`, which says how a client turns a mono waveform into the model's
input, so that this module reproduces the checkpoint's feature extractor with numpy alone:

- ``whisper``: the clip zero-padded or cut to the checkpoint's window, then Whisper's log-mel spectrogram (centred
  STFT with reflect padding, periodic Hann window, power, the saved Slaney mel filters ``onnx/mel_filters.npy``,
  log10 floored at 1e-10 and at the maximum minus 8, then ``(x + 4) / 4``; Radford et al. 2022, as
  ``transformers.WhisperFeatureExtractor`` computes it), input ``input_features`` ``(batch_size, n_mels,
  num_frames)``;
- ``wav2vec2`` (wav2vec2, HuBERT, WavLM, data2vec-audio): the waveform, zero-mean unit-variance normalised when the
  extractor does (``do_normalize``), input ``input_values`` ``(1, num_samples)``;
- ``mel_cnn``: the checkpoint's silence trim and centre crop, then the waveform (the log-mel front end is inside
  the graph), input ``input_values`` ``(1, num_samples)``.

Self-contained (numpy and onnxruntime; no PyTorch, no transformers, no other ser_hf module), so that
a generated Hub Space (``ser-hf space``) ships this file as it is.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

CONFIG_FILE = "ser_hf_onnx.json"
MODEL_FILE = "onnx/model.onnx"
QUANTIZED_FILE = "onnx/model_quantized.onnx"
MEL_FILTERS_FILE = "onnx/mel_filters.npy"


def is_onnx_export(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is an ONNX export of ``ser-hf export-onnx`` (it holds :data:`CONFIG_FILE`)."""
    return (Path(folder) / CONFIG_FILE).is_file()


def trim_silence(wav: np.ndarray, top_db: float = 30.0, frame_length: int = 400, hop_length: int = 160) -> np.ndarray:
    """The mel-CNN's silence trim (``MelCNNFeatureExtractor.trim``; ``tests/test_onnx.py`` checks they agree):
    ``(num_samples,)`` -> the samples from the first to the last frame whose RMS is within ``top_db`` dB of the
    loudest frame's (``librosa.effects.trim``'s rule). Silent or sub-frame audio is returned unchanged."""
    if wav.shape[0] < frame_length:
        return wav
    frames = np.lib.stride_tricks.sliding_window_view(wav, frame_length)[::hop_length]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    peak = rms.max()
    if peak <= 0:
        return wav
    loud = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-10) / peak) > -top_db)
    return wav[loud[0] * hop_length : min(wav.shape[0], loud[-1] * hop_length + frame_length)]


def _one_blas_thread():
    """numpy's BLAS kept to one thread for the block: its idle threads spin after a call and take the cores from
    onnxruntime's (measured: 81 against 37 ms a clip for Whisper base with 2 onnxruntime threads on 2 cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn, and with a Space's requirements
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def whisper_log_mel(wav: np.ndarray, mel_filters: np.ndarray, n_samples: int, n_fft: int = 400, hop: int = 160):
    """Whisper's input features of one clip: ``(num_samples,)`` float32 at 16 kHz -> ``(n_mels, n_samples // hop)``.

    Args:
        mel_filters: ``(n_fft // 2 + 1, n_mels)`` Slaney mel filter bank (the extractor's ``mel_filters``).
        n_samples: the window; the clip is zero-padded or cut to it first.
    """
    x = np.zeros(n_samples, dtype=np.float32)
    x[: min(len(wav), n_samples)] = wav[:n_samples]
    padded = np.pad(x, n_fft // 2, mode="reflect")
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]  # (num_frames + 1, n_fft)
    power = np.abs(np.fft.rfft(frames * window, n=n_fft)) ** 2  # (num_frames + 1, n_fft // 2 + 1)
    with _one_blas_thread():
        mel = power @ mel_filters
    log = np.log10(np.maximum(mel, 1e-10)).T[:, :-1]  # (n_mels, num_frames)
    log = np.maximum(log, log.max() - 8.0)
    return ((log + 4.0) / 4.0).astype(np.float32)


class OnnxClassifier:
    """An ONNX export on onnxruntime: class probabilities of mono waveforms, as the PyTorch checkpoint gives them.

    Args:
        folder: an export folder (see the module docstring).
        quantized: run ``onnx/model_quantized.onnx`` (int8 weights) instead of the fp32 model.
        threads: onnxruntime intra-op threads (default: onnxruntime's choice, all cores).

    Raises:
        FileNotFoundError: ``folder`` is not an export folder, or lacks the model file asked for (named).
    """

    def __init__(self, folder: str | os.PathLike, quantized: bool = False, threads: int | None = None):
        import onnxruntime as ort

        folder = Path(folder)
        if not is_onnx_export(folder):
            raise FileNotFoundError(f"{folder}: not an ONNX export (no {CONFIG_FILE}); make it with ser-hf export-onnx")
        self.folder = folder
        self.config = json.loads((folder / CONFIG_FILE).read_text())
        self.family = self.config["family"]
        self.labels = [self.config["id2label"][str(i)] for i in range(len(self.config["id2label"]))]
        self.sampling_rate = int(self.config["sampling_rate"])
        self.window_s = self.config.get("window_s")
        path = folder / (QUANTIZED_FILE if quantized else MODEL_FILE)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model file in the export")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.mel_filters = np.load(folder / MEL_FILTERS_FILE) if self.family == "whisper" else None

    def features(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        """The model inputs of one mono waveform ``(num_samples,)`` at :attr:`sampling_rate` (batch of one)."""
        c, wav = self.config, np.asarray(wav, dtype=np.float32)
        if self.family == "whisper":
            feats = whisper_log_mel(wav, self.mel_filters, c["n_samples"], c["n_fft"], c["hop_length"])
            return {"input_features": feats[None]}
        if self.family == "mel_cnn":
            if c.get("trim_db") is not None:
                wav = trim_silence(wav, c["trim_db"], c["trim_frame_length"], c["trim_hop_length"])
            if c.get("center_crop_s") is not None:
                crop = int(round(c["center_crop_s"] * self.sampling_rate))
                start = max(0, (len(wav) - crop) // 2)
                wav = wav[start : start + crop]
        elif c.get("do_normalize"):
            wav = (wav - wav.mean()) / np.sqrt(wav.var() + 1e-7)
        out = {"input_values": wav[None].astype(np.float32)}
        if "attention_mask" in self.inputs:
            out["attention_mask"] = np.ones_like(out["input_values"], dtype=np.int64)
        return out

    def logits(self, waves: list[np.ndarray]) -> np.ndarray:
        """Logits ``(len(waves), num_labels)``; clips run one at a time (a Whisper window batches them)."""
        if not waves:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        if self.family == "whisper":
            batch = np.concatenate([self.features(w)["input_features"] for w in waves])
            return self.session.run(["logits"], {"input_features": batch})[0]
        return np.concatenate([self.session.run(["logits"], self.features(w))[0] for w in waves])

    def probabilities(self, waves: list[np.ndarray]) -> np.ndarray:
        """Softmax of :meth:`logits`, ``(len(waves), num_labels)`` float32."""
        z = self.logits(waves).astype(np.float64)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

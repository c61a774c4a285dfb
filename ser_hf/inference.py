"""Inference for applications: labels for clips and folders, emotion timelines for long recordings.

- :func:`predict` gives one :class:`ClipPrediction` per file (any format soundfile reads, any sampling rate,
  any channel count: decoded to mono at the model's rate).
- :func:`ser_hf.timeline.predict_timeline` labels a recording of any length window by window (its own module).

Both run the model in batches through its own feature extractor (:func:`ser_hf.data.featurize`), which holds the
checkpoint's clip preprocessing, exactly as ``pipeline("audio-classification")`` and evaluation run it. Models
load with :func:`load_classifier` (local folder or hub id; ser_hf's mel-CNN is registered on import, other
checkpoints need no ser_hf). An ONNX export (``ser-hf export-onnx``) runs on onnxruntime instead
(:class:`ser_hf.onnx_backend.OnnxClassifier`, ``backend="onnx"`` or an export folder): that path imports neither
PyTorch nor transformers (PyTorch is imported here only when a PyTorch checkpoint is loaded).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import AUDIO_EXTENSIONS, AudioError, check_clip_length, load_audio, not_a_file
from .onnx_backend import OnnxClassifier, is_onnx_export

BACKENDS = ("auto", "torch", "onnx")
"""``auto``: onnxruntime for an ONNX export folder (``ser-hf export-onnx``), PyTorch for anything else."""

logger = logging.getLogger(__name__)


@dataclass
class ClipPrediction:
    """The model's answer for one clip.

    Attributes:
        path: the file.
        label: the most probable label.
        score: its probability.
        probabilities: ``{label: probability}`` over all the model's labels (softmax of the logits).
        duration_s: clip length in seconds.
    """

    path: str
    label: str
    score: float
    probabilities: dict[str, float]
    duration_s: float


def load_classifier(model: str, device: str | None = None):
    """The one checkpoint loader of ser_hf: ``(model, feature_extractor)`` in eval mode on ``device``.

    Args:
        model: checkpoint folder or hub id (``AutoModelForAudioClassification`` + ``AutoFeatureExtractor``).
        device: ``"cpu"``, ``"cuda"``, ...; default CUDA when available, else CPU.

    A run directory written before the preprocessing was stored with the checkpoint (its ``metrics.json`` has no
    ``format_version``) is run with the preprocessing it was trained with, read from its ``split.json``: a mel-CNN
    gets a :class:`ser_hf.models.MelCNNFeatureExtractor` with that silence trim (with a warning: ``pipeline()`` on
    the folder itself does not trim).

    Raises:
        OSError: no checkpoint at ``model`` (from transformers, naming it).
        ser_hf.run.RunRecordError: a legacy transformer run trained on silence-trimmed clips, which its stock
            feature extractor cannot reproduce (the message says what to do).
    """
    import torch
    from safetensors import SafetensorError
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    if Path(str(model)).is_dir() and not (Path(str(model)) / "config.json").is_file():
        raise OSError(f"{model}: a folder without config.json, so not a checkpoint (a run directory holds one)")
    try:
        clf = AutoModelForAudioClassification.from_pretrained(model)
        fe = AutoFeatureExtractor.from_pretrained(model)
    except SafetensorError as err:
        raise OSError(f"{model}: its weights file cannot be read ({err}); copy or download it again") from err
    except (OSError, ValueError, KeyError) as err:
        raise OSError(
            f"{model}: not a checkpoint that loads with AutoModelForAudioClassification and AutoFeatureExtractor "
            f"(a ser_hf run directory, another audio-classification checkpoint folder, or a hub id): {err}"
        ) from err
    fe = _legacy_preprocessing(model, clf, fe)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return clf.to(device).eval(), fe


def _legacy_preprocessing(model: str, clf, fe):
    from .run import RunRecord, RunRecordError, is_legacy_run

    if hasattr(fe, "trim") or not is_legacy_run(model):
        return fe
    record = RunRecord.load(model)
    trim, crop = record.preprocessing.trim_db, record.preprocessing.center_crop_s
    if trim is None and crop is None:
        return fe
    if clf.config.model_type != "mel_cnn":
        raise RunRecordError(
            f"{model} was trained on silence-trimmed / cropped clips (trim_db {trim}, crop {crop} s in its split.json) "
            "but its feature extractor cannot trim, so pipeline() users of this checkpoint get untrimmed audio and "
            "other scores than its report; train it again with the current config (transformer recipes train on "
            "untrimmed audio) to get a checkpoint whose report holds for pipeline() users"
        )
    from .models import MelCNNFeatureExtractor

    logger.warning(
        "%s predates storing the preprocessing with the checkpoint: ser_hf applies its silence trim (%s dB) from "
        "split.json, but pipeline() on this folder does not; train it again to ship the trim with the checkpoint",
        model,
        trim,
    )
    return MelCNNFeatureExtractor(
        sampling_rate=fe.sampling_rate,
        padding_value=fe.padding_value,
        return_attention_mask=fe.return_attention_mask,
        trim_db=trim,
        center_crop_s=crop,
    )


def audio_files(paths: list[str | Path]) -> list[Path]:
    """Expand files and folders (recursively, :data:`AUDIO_EXTENSIONS`) into a sorted, de-duplicated list.

    Raises:
        FileNotFoundError: a path does not exist.
        AudioError: a folder holds no audio file.
    """
    if isinstance(paths, (str, Path)):  # one path, not a list of them (a str would be read as its characters)
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
            if not found:
                raise AudioError(f"{p}: directory holds no audio files ({', '.join(AUDIO_EXTENSIONS)})")
            out += found
        elif p.is_file():
            out.append(p)
        elif p.exists():
            raise AudioError(f"{p}: {not_a_file(p)}")
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return list(dict.fromkeys(out))


def batch_probabilities(clf, feature_extractor, waves: list[np.ndarray]) -> np.ndarray:
    """Softmax class probabilities ``(len(waves), num_labels)`` of mono waveforms at the extractor's rate, made
    by the checkpoint's own feature extractor (:func:`ser_hf.data.featurize`), so every clip gets what
    ``pipeline("audio-classification")`` gives it. Models whose extractor returns no attention mask (and has no
    fixed window) run one clip at a time, since zero padding would change their output.

    Raises:
        ValueError: a clip the feature extractor refuses (empty, NaN / infinite samples).
    """
    import torch

    from .data import batches_exactly, featurize

    if not waves:
        return np.zeros((0, clf.config.num_labels), dtype=np.float32)
    if len(waves) > 1 and not batches_exactly(feature_extractor):
        return np.concatenate([batch_probabilities(clf, feature_extractor, [w]) for w in waves])
    device = next(clf.parameters()).device
    inputs = {k: v.to(device) for k, v in featurize(feature_extractor, waves).items()}
    with torch.no_grad():
        return torch.softmax(clf(**inputs).logits.float(), dim=-1).cpu().numpy()


def predict_probabilities(model, feature_extractor, waves, batch_size: int = 16) -> np.ndarray:
    """Class probabilities ``(num_clips, num_labels)`` of ``model`` for mono waveforms at the extractor's rate,
    in the input order, through :func:`batch_probabilities` (the checkpoint's own preprocessing,
    as ``pipeline()`` applies it). Clips are batched by length (:func:`ser_hf.data.length_batches`: at most
    ``batch_size`` clips and a bounded number of padded samples a batch), so a long recording among short clips
    does not multiply memory."""
    from .data import length_batches  # lazily: ser-hf predict does not need datasets

    model.eval()
    probs = np.zeros((len(waves), model.config.num_labels), dtype=np.float32)
    for idx in length_batches([len(w) for w in waves], batch_size):
        probs[idx] = batch_probabilities(model, feature_extractor, [waves[i] for i in idx])
    return probs


def open_model(model, device: str | None = None, backend: str = "auto", quantized: bool = False):
    """A model ready to score: ``(model, feature_extractor, labels)``, where ``model`` is an
    :class:`~ser_hf.onnx_backend.OnnxClassifier` (and ``feature_extractor`` ``None``) on onnxruntime, else the
    PyTorch model of :func:`load_classifier`.

    Args:
        backend: ``auto`` (onnxruntime for an ONNX export folder, PyTorch otherwise), ``torch`` or ``onnx``.
        quantized: with onnxruntime, run the int8 model (``onnx/model_quantized.onnx``).

    Raises:
        ValueError: an unknown ``backend``, or ``onnx`` for a folder that is not an ONNX export (named).
    """
    if backend not in BACKENDS:
        raise ValueError(f"--backend {backend!r} is not valid; choose one of {', '.join(BACKENDS)}")
    is_export = isinstance(model, (str, Path)) and is_onnx_export(model)
    if backend == "onnx" or (backend == "auto" and is_export):
        if not is_export:
            raise ValueError(f"--backend onnx: {model} is not an ONNX export; make one with ser-hf export-onnx")
        clf = OnnxClassifier(model, quantized=quantized)
        return clf, None, clf.labels
    clf, fe = load_classifier(model, device)
    return clf, fe, [clf.config.id2label[i] for i in range(clf.config.num_labels)]


def scorer(model, feature_extractor=None, backend: str = "auto", quantized: bool = False):
    """How :func:`predict` and :func:`ser_hf.timeline.predict_timeline` score waveforms: ``(labels,
    sampling_rate, probabilities)``, where ``probabilities(waves)`` maps mono float32 waveforms at
    ``sampling_rate`` Hz to ``(len(waves), num_labels)`` class probabilities.

    Args:
        model: a loaded PyTorch model (then pass ``feature_extractor``), an
            :class:`~ser_hf.onnx_backend.OnnxClassifier`, or a folder / hub id (:func:`open_model`).
    """
    if isinstance(model, OnnxClassifier):
        return model.labels, model.sampling_rate, model.probabilities
    if feature_extractor is None:
        model, feature_extractor, _ = open_model(model, None, backend, quantized)
        if isinstance(model, OnnxClassifier):
            return model.labels, model.sampling_rate, model.probabilities
    clf, fe = model, feature_extractor
    labels = [clf.config.id2label[i] for i in range(clf.config.num_labels)]
    return labels, fe.sampling_rate, lambda waves: batch_probabilities(clf, fe, waves)


def predict(
    model,
    paths: list[str | Path],
    batch_size: int = 16,
    feature_extractor=None,
    errors: list | None = None,
    backend: str = "auto",
    quantized: bool = False,
) -> list[ClipPrediction]:
    """Classify whole clips: one :class:`ClipPrediction` per audio file in ``paths`` (a file or folder, or a list
    of them).

    Args:
        model: a loaded model (then pass ``feature_extractor``), a checkpoint folder / hub id, or an ONNX export
            folder (see :func:`scorer` for ``backend`` and ``quantized``).
        errors: when a list is given, a file that cannot be used is appended to it as ``(path, message)`` and
            skipped, and the other files are still classified (``ser-hf predict`` does this and exits non-zero);
            by default the first such file raises.

    Raises:
        FileNotFoundError / AudioError: a missing, unreadable, truncated, zero-length or NaN-holding file (unless
            ``errors`` collects it), or a folder without audio (the message names it).
    """
    if batch_size < 1:
        raise ValueError(f"--batch_size {batch_size}: expected 1 or more clips per batch")
    files = audio_files(paths)  # before the model loads: a missing path fails fast
    labels, sr, probabilities = scorer(model, feature_extractor, backend, quantized)
    results = []
    for start in range(0, len(files), batch_size):
        chunk, waves = [], []
        for f in files[start : start + batch_size]:
            try:
                check_clip_length(f)
                wav = load_audio(f, sr)
            except (OSError, AudioError) as err:
                if errors is None:
                    raise
                errors.append((str(f), str(err)))
                continue
            _warn_unfit_clip(f, wav, sr)
            waves.append(wav)
            chunk.append(f)
        if not chunk:
            continue
        probs = probabilities(waves)
        for f, w, p in zip(chunk, waves, probs, strict=True):
            k = int(p.argmax())
            results.append(
                ClipPrediction(
                    str(f),
                    labels[k],
                    float(p[k]),
                    dict(zip(labels, map(float, p), strict=True)),
                    len(w) / sr,
                )
            )
    return results


LONG_CLIP_S = 60.0
"""Clips longer than this (seconds) get a warning in clip mode: one label for a whole recording hides its course."""
SILENCE_DBFS = -60.0
"""Clips whose RMS level is below this (dB re full scale) get a warning: the model's label for silence means nothing."""


def rms_dbfs(wav: np.ndarray) -> float:
    """RMS level of a waveform ``(num_samples,)`` in dB relative to full scale (``-inf`` for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if len(wav) else 0.0
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


def _warn_unfit_clip(path, wav: np.ndarray, sampling_rate: int) -> None:
    """Warn (``logging``) about a clip whose single label cannot mean much: near silence (RMS below
    :data:`SILENCE_DBFS`) or a long recording (over :data:`LONG_CLIP_S`, where :func:`predict_timeline` fits)."""
    level = rms_dbfs(wav)
    if level < SILENCE_DBFS:
        logger.warning("%s: near silence (RMS %.0f dBFS): its emotion label means nothing", path, level)
    seconds = len(wav) / sampling_rate
    if seconds > LONG_CLIP_S:
        logger.warning(
            "%s lasts %.0f s: clip mode gives one label for all of it; `ser-hf predict --timeline` (or "
            "ser_hf.predict_timeline) labels it window by window in bounded memory",
            path,
            seconds,
        )

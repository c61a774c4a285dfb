"""From corpus rows to model batches: decoding, speaker-side selection, augmentation and padding.

Pipeline: :func:`decode_dataset` decodes every clip once (soundfile + soxr: mono at the model's rate, exactly
what a ``pipeline()`` user reads from the file) into an ``input_values`` column cached by ``datasets``;
:class:`AudioCollator` then makes each batch.

What happens to a clip before the model sees it at evaluation time is defined once, by the checkpoint's feature
extractor (:func:`featurize`: silence trim and centre crop for the mel-CNN, the fixed window for Whisper), and
saved with the checkpoint, so validation, test, ``ser-hf evaluate``, ``ser-hf predict`` and ``pipeline()`` feed
the model the same input. Training applies the same trim, then augmentation and a random crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .audio import fixed_window, load_audio, random_crop, resample

if TYPE_CHECKING:  # datasets and the fold logic are imported where they are used: inference needs neither
    import datasets

    from .folds import SplitDefinition


def decode_dataset(
    ds: datasets.Dataset, sampling_rate: int, num_proc: int | None = None, channel: int | None = None
) -> datasets.Dataset:
    """Add ``input_values`` (float32 mono waveform ``(num_samples,)`` at ``sampling_rate`` Hz) and its length
    ``num_samples`` to every row.

    Nothing else is done to the clip here: trimming and cropping belong to the checkpoint's feature extractor
    (:func:`featurize`), so that they are the same for every consumer.

    Args:
        ds: a corpus from :func:`ser_hf.load_corpus` (needs the ``audio`` path column).
        sampling_rate: target rate in Hz (the model feature extractor's).
        num_proc: worker processes for decoding.
        channel: the channel to keep from multi-channel files, ``None`` to average them
            (:func:`ser_hf.corpora.decode_channel` gives a corpus's choice).

    Raises:
        ser_hf.audio.AudioError: clips are missing, corrupt, truncated, empty or hold NaN / infinite samples; the
            message lists every such file of the corpus (not only the first), with what is wrong with each.
    """
    from .audio import AudioError

    def decode(example):
        try:
            wav = load_audio(example["audio"], sampling_rate, channel)
            return {"input_values": wav, "num_samples": len(wav), "decode_error": ""}
        except (OSError, AudioError) as err:
            return {"input_values": np.zeros(0, np.float32), "num_samples": 0, "decode_error": str(err)}

    import datasets

    features = ds.features.copy()
    features["input_values"] = datasets.Sequence(datasets.Value("float32"))
    features["num_samples"] = datasets.Value("int64")
    features["decode_error"] = datasets.Value("string")
    decoded = ds.map(decode, features=features, num_proc=num_proc, desc="decode + resample")
    errors = [e for e in decoded["decode_error"] if e]
    if errors:
        shown = "\n  ".join(errors[:20]) + (f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else "")
        raise AudioError(f"{len(errors)} of {len(decoded)} clips cannot be used:\n  {shown}")
    return decoded.remove_columns("decode_error")


def clip_list_fingerprint(ds: datasets.Dataset) -> str:
    """A hash of the clip list of a corpus (or of several): each clip's ``id``, ``speaker``, label name and
    duration (``duration_s`` from the file header, to 0.1 ms), in id order.

    It identifies *what* was trained or scored on, not where it lay: a copy of the corpus folder (new paths, new
    modification times) has the same fingerprint, while a clip added, removed, relabelled, moved to another
    speaker or replaced by a recording of another length changes it. Stored in run records
    (:func:`data_identity`) and evaluation reports, so that a finished fold or a stored evaluation is reused only
    for the same clips.

    Args:
        ds: rows with ``id``, ``speaker``, a ``label`` ``ClassLabel`` and ``duration_s`` (or ``num_samples``).
    """
    import hashlib

    names = ds.features["label"].names
    length = "duration_s" if "duration_s" in ds.column_names else "num_samples"
    cols = ds.select_columns(["id", "speaker", "label", length])[:]
    rows = sorted(
        zip(cols["id"], cols["speaker"], (names[y] for y in cols["label"]), cols[length], strict=True),
        key=lambda r: str(r[0]),
    )
    h = hashlib.sha256()
    for clip, speaker, label, size in rows:
        h.update(f"{clip}\t{speaker}\t{label}\t{float(size):.4f}\n".encode())
    return h.hexdigest()[:16]


def data_identity(ds: datasets.Dataset, data_dirs: dict[str, str | None] | None = None) -> dict:
    """What a run trains on, for its record (:attr:`ser_hf.run.RunRecord.data`): ``clips``, ``labels`` (the label
    names), ``fingerprint`` (:func:`clip_list_fingerprint`), for several corpora (a ``corpus`` column) each
    corpus's own under ``per_corpus``, and ``data_dir`` (``{corpus: folder}``, for people: the fingerprint, not
    the folder, is what is compared)."""
    out = {"clips": len(ds), "labels": list(ds.features["label"].names), "fingerprint": clip_list_fingerprint(ds)}
    if "corpus" in ds.column_names:
        corpus_of = ds["corpus"]
        out["per_corpus"] = {
            name: clip_list_fingerprint(ds.select([i for i, c in enumerate(corpus_of) if c == name]))
            for name in sorted(set(corpus_of))
        }
    if data_dirs:
        out["data_dir"] = {k: str(Path(v).expanduser().resolve()) if v else None for k, v in data_dirs.items()}
    return out


EVAL_BATCH_SAMPLES = 32 * 30 * 16000
"""Padded samples one evaluation batch may hold (32 clips of 30 s at 16 kHz, about 61 MB of float32 input)."""


def length_batches(lengths, max_batch: int, max_samples: int = EVAL_BATCH_SAMPLES) -> list[list[int]]:
    """Indices ``0 .. len(lengths) - 1`` grouped into evaluation batches in order of length: at most ``max_batch``
    clips a batch, and at most ``max_samples`` padded samples (clips x the batch's longest clip), so one long
    recording is scored alone instead of padding a whole batch to its length (memory stays bounded).

    Args:
        lengths: clip lengths in samples, ``(num_clips,)``.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, current = [], []
    for i in order:  # ascending: the newest clip is the batch's longest
        if current and (len(current) >= max_batch or (len(current) + 1) * lengths[i] > max_samples):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def batches_exactly(feature_extractor) -> bool:
    """Whether a padded batch gives every clip the same logits as the clip alone (what ``pipeline()`` computes).

    True for extractors that return an attention mask (the model ignores the padding) and for fixed-window
    extractors (every clip is padded to the window anyway). False for group-norm wav2vec2-base style extractors
    (no attention mask): their evaluation runs one clip at a time.
    """
    return (
        bool(getattr(feature_extractor, "return_attention_mask", False)) or fixed_window(feature_extractor) is not None
    )


def featurize(feature_extractor, waves: list[np.ndarray]) -> dict:
    """Model inputs for a batch of mono waveforms at the extractor's rate, made by the checkpoint's own feature
    extractor with its own preprocessing, as ``pipeline("audio-classification")`` makes them for one clip.

    Returns:
        ``input_values`` ``(batch_size, max_num_samples)`` (or ``input_features`` ``(batch_size, n_mels,
        num_frames)`` for Whisper), plus ``attention_mask`` when the extractor returns one.

    Raises:
        ValueError: a clip the extractor refuses (empty, NaN / infinite samples), from the extractor.
    """
    fe = feature_extractor
    kwargs = {"sampling_rate": fe.sampling_rate, "return_tensors": "pt"}
    if fixed_window(fe) is None:
        kwargs["padding"] = True  # Whisper's extractor pads (and truncates) to its window by default
    return dict(fe(list(waves), **kwargs))


def training_lengths(waves, feature_extractor) -> list[int]:
    """Length in samples of each clip as training sees it before augmentation and cropping: after the
    extractor's silence trim when it has one (the mel-CNN), else whole. For length-grouped batches
    (``--train_sampling_strategy group_by_length``), which pad each batch only to its longest clip.

    Args:
        waves: mono waveforms ``(num_samples,)`` at the extractor's rate.
    """
    trim = getattr(feature_extractor, "trim", None)
    return [len(trim(np.asarray(w, dtype=np.float32))) if trim is not None else len(w) for w in waves]


def training_crop_samples(feature_extractor, max_duration_s: float | None) -> int | None:
    """Length in samples of a training clip's random crop: ``max_duration_s`` seconds (``--max_duration_s``) at the
    extractor's rate, at most a fixed-window extractor's window (Whisper: a longer crop would be truncated anyway);
    ``None`` for no crop."""
    crop = int(max_duration_s * feature_extractor.sampling_rate) if max_duration_s else None
    window = fixed_window(feature_extractor)
    return min(crop or window, window) if window else crop


def select_side(ds: datasets.Dataset, split: SplitDefinition, side: str) -> datasets.Dataset:
    """Rows whose speaker is on ``side`` (``train``/``validation``/``test``) of ``split`` (for the
    ``speaker_dependent`` protocol: rows whose ``id`` is on that side)."""
    if split.protocol == "speaker_dependent":  # utterance-level sides
        wanted = set(split.extra["utterances"][side])
        return ds.select([i for i, u in enumerate(ds["id"]) if u in wanted])
    wanted = set(split.speakers(side))
    idx = [i for i, s in enumerate(ds["speaker"]) if s in wanted]
    return ds.select(idx)


@dataclass
class WaveformAugment:
    """Training-only waveform augmentation (the seeds used noise, pitch and speed changes).

    Args:
        speed_factors: speed perturbation factors (Ko et al. 2015, "Audio augmentation for speech
            recognition"): resampling by a factor changes tempo and pitch together; one is drawn per clip.
        noise_prob: probability of adding white Gaussian noise.
        noise_snr_db: (low, high) signal-to-noise ratio range in dB.
        gain_db: (low, high) gain range in dB.
    """

    speed_factors: tuple[float, ...] = (0.9, 1.0, 1.1)
    noise_prob: float = 0.5
    noise_snr_db: tuple[float, float] = (15.0, 40.0)
    gain_db: tuple[float, float] = (-6.0, 6.0)

    def __call__(self, wav: np.ndarray, sampling_rate: int, rng: np.random.Generator) -> np.ndarray:
        factor = float(rng.choice(self.speed_factors))
        if factor != 1.0:
            wav = resample(wav, int(round(sampling_rate * factor)), sampling_rate)
        wav = wav * np.float32(10 ** (rng.uniform(*self.gain_db) / 20))
        if rng.random() < self.noise_prob:
            power = float(np.mean(wav.astype(np.float64) ** 2)) + 1e-12
            snr = rng.uniform(*self.noise_snr_db)
            wav = wav + rng.standard_normal(wav.shape[0]).astype(np.float32) * np.float32(
                np.sqrt(power / 10 ** (snr / 10))
            )
        return wav.astype(np.float32, copy=False)


class AudioCollator:
    """Batch rows ``{"input_values": (num_samples,), "label": int}`` into model inputs.

    Evaluation (``train=False``): :func:`featurize`, the checkpoint's own preprocessing. Training: the extractor's
    silence trim (when it has one), optional :class:`WaveformAugment`, a random crop to ``max_duration_s`` (and
    to a fixed-window extractor's window), then padding by the extractor without its evaluation preprocessing.
    Padding and the attention mask come from the feature extractor, so a model whose extractor has
    ``return_attention_mask=False`` (group-norm wav2vec2-base) gets none.

    Returns:
        ``input_values`` ``(batch_size, max_num_samples)`` (or ``input_features`` for extractors that make
        them), ``attention_mask`` when the extractor returns one, ``labels`` ``(batch_size,)``, and
        ``loss_weights`` ``(batch_size,)`` when the rows carry a ``loss_weight``.
    """

    def __init__(
        self,
        feature_extractor,
        train: bool,
        max_duration_s: float | None = None,
        augment: WaveformAugment | None = None,
        seed: int = 0,
    ):
        self.fe = feature_extractor
        self.sr = feature_extractor.sampling_rate
        self.train = train
        self.max_samples = training_crop_samples(feature_extractor, max_duration_s)
        self.augment = augment
        self.rng = np.random.default_rng(seed)

    def _train_inputs(self, waves: list[np.ndarray]) -> dict:
        out = []
        trim = getattr(self.fe, "trim", None)
        for wav in waves:
            if trim is not None:
                wav = trim(wav)
            if self.augment is not None:
                wav = self.augment(wav, self.sr, self.rng)
            if self.max_samples:
                wav = random_crop(wav, self.max_samples, self.rng)
            out.append(wav)
        if trim is not None:  # ser_hf's extractor: pad only, its preprocessing was applied above
            return dict(self.fe(out, sampling_rate=self.sr, return_tensors="pt", padding=True, preprocess=False))
        return featurize(self.fe, out)

    def __call__(self, rows: list[dict]) -> dict:
        waves = [np.asarray(row["input_values"], dtype=np.float32) for row in rows]
        batch = self._train_inputs(waves) if self.train else featurize(self.fe, waves)
        batch["labels"] = torch.tensor([int(r["label"]) for r in rows], dtype=torch.long)
        if "loss_weight" in rows[0]:  # per-clip loss weights (--class_weights_by_corpus), read by SERTrainer
            batch["loss_weights"] = torch.tensor([float(r["loss_weight"]) for r in rows], dtype=torch.float32)
        return batch

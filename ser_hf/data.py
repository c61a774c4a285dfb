"""From corpus rows to model batches: decoding, speaker-side selection, augmentation and padding.

Pipeline: :func:`decode_dataset` decodes every clip once (soundfile + soxr, optional silence trim) into an
``input_values`` column cached by ``datasets``; :class:`AudioCollator` then crops, augments (training only)
and pads each batch with the model's feature extractor.

Evaluation handling is deterministic: no augmentation, and the whole utterance is used, centre-cropped to
``max_eval_duration_s`` when that is set (default: no crop; RAVDESS clips last 2.9-5.3 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .audio import center_crop, load_audio, random_crop, resample, trim_silence

if TYPE_CHECKING:  # datasets and the fold logic are imported where they are used: inference needs neither
    import datasets

    from .folds import SplitDefinition


def decode_dataset(
    ds: datasets.Dataset, sampling_rate: int, trim_db: float | None = None, num_proc: int | None = None
) -> datasets.Dataset:
    """Add ``input_values`` (float32 waveform ``(num_samples,)`` at ``sampling_rate`` Hz) to every row.

    Args:
        ds: a corpus from :func:`ser_hf.load_corpus` (needs the ``audio`` path column).
        sampling_rate: target rate in Hz (the model feature extractor's).
        trim_db: trim leading/trailing silence quieter than this many dB below the peak (``None``: keep).
        num_proc: worker processes for decoding.

    Raises:
        FileNotFoundError / ser_hf.audio.AudioError: a clip is missing, corrupt, truncated or empty (the
            message names the file).
    """

    def decode(example):
        wav = load_audio(example["audio"], sampling_rate)
        if trim_db is not None:
            wav = trim_silence(wav, top_db=trim_db, frame_length=sampling_rate // 40, hop_length=sampling_rate // 100)
        return {"input_values": wav}

    import datasets

    features = ds.features.copy()
    features["input_values"] = datasets.Sequence(datasets.Value("float32"))
    return ds.map(decode, features=features, num_proc=num_proc, desc="decode + resample")


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

    Training: optional :class:`WaveformAugment`, then a random crop to ``max_duration_s``. Evaluation: centre
    crop to ``max_eval_duration_s`` if set. Padding and the attention mask come from the model's feature
    extractor, so a model whose extractor has ``return_attention_mask=False`` (group-norm wav2vec2-base)
    gets none. A fixed-window extractor (Whisper's, ``n_samples`` long) pads every clip to its window, and
    longer clips are cropped to the window (random crop in training, centre crop in evaluation).

    Returns:
        ``input_values`` ``(batch_size, max_num_samples)`` (or ``input_features`` for extractors that make
        them), ``attention_mask`` when the extractor returns one, and ``labels`` ``(batch_size,)``.
    """

    def __init__(
        self,
        feature_extractor,
        train: bool,
        max_duration_s: float | None = None,
        max_eval_duration_s: float | None = None,
        augment: WaveformAugment | None = None,
        seed: int = 0,
    ):
        self.fe = feature_extractor
        self.sr = feature_extractor.sampling_rate
        self.train = train
        self.max_samples = int(max_duration_s * self.sr) if max_duration_s else None
        self.max_eval_samples = int(max_eval_duration_s * self.sr) if max_eval_duration_s else None
        self.pad_kwargs = {"padding": True}
        window = getattr(feature_extractor, "n_samples", None) if hasattr(feature_extractor, "nb_max_frames") else None
        if window:  # Whisper: fixed input length
            self.pad_kwargs = {"padding": "max_length", "max_length": int(window), "truncation": True}
            self.max_samples = min(self.max_samples or window, window)
            self.max_eval_samples = min(self.max_eval_samples or window, window)
        self.augment = augment
        self.rng = np.random.default_rng(seed)

    def __call__(self, rows: list[dict]) -> dict:
        waves = []
        for row in rows:
            wav = np.asarray(row["input_values"], dtype=np.float32)
            if self.train:
                if self.augment is not None:
                    wav = self.augment(wav, self.sr, self.rng)
                if self.max_samples:
                    wav = random_crop(wav, self.max_samples, self.rng)
            elif self.max_eval_samples:
                wav = center_crop(wav, self.max_eval_samples)
            waves.append(wav)
        batch = self.fe(waves, sampling_rate=self.sr, return_tensors="pt", **self.pad_kwargs)
        batch["labels"] = torch.tensor([int(r["label"]) for r in rows], dtype=torch.long)
        return dict(batch)

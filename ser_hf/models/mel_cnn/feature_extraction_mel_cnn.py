"""Feature extractor of the log-mel CNN: the one definition of what is done to a clip before the model sees it.

Self-contained (numpy + transformers only): it ships with every mel-CNN checkpoint as remote code
(``preprocessor_config.json`` names it in ``auto_map``), so ``pipeline("audio-classification")`` applies the same
silence trim and evaluation crop as training, ``ser-hf evaluate`` and ``ser-hf predict``, with or without ser_hf.
Its :func:`trim_silence` and :func:`center_crop` are the only copies in ser_hf (the ONNX backend's numpy twin
is tested equal).
"""

from __future__ import annotations

import numpy as np
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature


def trim_silence(wav: np.ndarray, top_db: float = 30.0, frame_length: int = 400, hop_length: int = 160) -> np.ndarray:
    """Remove leading and trailing silence.

    A frame is silent when its RMS is more than ``top_db`` dB below the loudest frame's RMS; the result runs
    from the first to the last non-silent frame. Same rule as ``librosa.effects.trim`` (its default is 60 dB;
    the seeds used 30 dB). Audio that is silent throughout, or shorter than one frame, is returned unchanged.
    Trimming is idempotent: the kept samples start and end on the same frame grid.

    Args:
        wav: ``(num_samples,)`` float waveform.
        top_db: threshold in dB below the loudest frame.
        frame_length: analysis frame in samples (400 = 25 ms at 16 kHz).
        hop_length: frame step in samples (160 = 10 ms at 16 kHz).

    Returns:
        ``(num_trimmed_samples,)`` view of ``wav``.
    """
    if wav.shape[0] < frame_length:
        return wav
    frames = np.lib.stride_tricks.sliding_window_view(wav, frame_length)[::hop_length]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    peak = rms.max()
    if peak <= 0:
        return wav
    loud = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-10) / peak) > -top_db)
    start = loud[0] * hop_length
    end = min(wav.shape[0], loud[-1] * hop_length + frame_length)
    return wav[start:end]


def center_crop(wav: np.ndarray, max_samples: int) -> np.ndarray:
    """Crop ``(num_samples,)`` to at most ``max_samples`` around its centre (deterministic evaluation)."""
    if wav.shape[0] <= max_samples:
        return wav
    start = (wav.shape[0] - max_samples) // 2
    return wav[start : start + max_samples]


class MelCNNFeatureExtractor(SequenceFeatureExtractor):
    r"""Raw mono waveforms -> padded ``input_values`` and ``attention_mask`` for the mel-CNN, after the
    checkpoint's clip preprocessing: silence trim (``trim_db``) then centre crop (``center_crop_s``).

    Training applies the same :meth:`trim` before its random crop and augmentation and calls this extractor
    with ``preprocess=False``; every evaluation path (validation, test, ``ser-hf evaluate``, ``ser-hf predict``,
    ``pipeline``) calls it with the default ``preprocess=True``.

    Args:
        sampling_rate (`int`, 16000): the rate in Hz the model expects; inputs at another rate are refused.
        trim_db (`float`, *optional*): trim leading / trailing frames quieter than this many dB below the loudest
            frame (:func:`trim_silence`); ``None`` keeps clips whole.
        trim_frame_length / trim_hop_length (`int`, *optional*): trim analysis frame and hop in samples
            (default 25 ms and 10 ms at ``sampling_rate``).
        center_crop_s (`float`, *optional*): keep at most this many seconds around the centre of each clip
            (after trimming); ``None`` keeps the whole clip.
        padding_value (`float`, 0.0), return_attention_mask (`bool`, True): padding of a batch to its longest clip.

    Raises:
        ValueError: a setting out of range (named), or an input at the wrong rate, empty, or with NaN / inf.
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self,
        feature_size: int = 1,
        sampling_rate: int = 16000,
        padding_value: float = 0.0,
        return_attention_mask: bool = True,
        trim_db: float | None = None,
        trim_frame_length: int | None = None,
        trim_hop_length: int | None = None,
        center_crop_s: float | None = None,
        **kwargs,
    ):
        super().__init__(
            feature_size=feature_size,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        if not isinstance(sampling_rate, int) or sampling_rate <= 0:
            raise ValueError(f"sampling_rate must be a positive whole number of Hz, got {sampling_rate!r}")
        if trim_db is not None and not trim_db > 0:
            raise ValueError(f"trim_db must be a positive number of dB below the peak (or None), got {trim_db!r}")
        if center_crop_s is not None and not center_crop_s > 0:
            raise ValueError(f"center_crop_s must be a positive number of seconds (or None), got {center_crop_s!r}")
        self.trim_db = None if trim_db is None else float(trim_db)
        self.trim_frame_length = int(trim_frame_length or sampling_rate // 40)
        self.trim_hop_length = int(trim_hop_length or sampling_rate // 100)
        self.center_crop_s = None if center_crop_s is None else float(center_crop_s)

    def trim(self, wav: np.ndarray) -> np.ndarray:
        """Silence trim of one ``(num_samples,)`` waveform per this extractor's settings (identity without)."""
        if self.trim_db is None:
            return wav
        return trim_silence(wav, self.trim_db, self.trim_frame_length, self.trim_hop_length)

    def preprocess(self, wav: np.ndarray) -> np.ndarray:
        """The clip preprocessing of one ``(num_samples,)`` waveform: trim, then centre crop.

        Raises:
            ValueError: the clip is empty or holds NaN / infinite samples.
        """
        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim != 1 or wav.shape[0] == 0:
            raise ValueError(f"expected a mono waveform of shape (num_samples,) with samples, got shape {wav.shape}")
        if not np.isfinite(wav).all():
            bad = int((~np.isfinite(wav)).sum())
            raise ValueError(f"the waveform holds {bad} NaN / infinite samples; expected finite audio samples")
        wav = self.trim(wav)
        if self.center_crop_s is not None:
            wav = center_crop(wav, int(round(self.center_crop_s * self.sampling_rate)))
        return wav

    def __call__(
        self,
        raw_speech,
        sampling_rate: int | None = None,
        padding: bool | str = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors=None,
        preprocess: bool = True,
        **kwargs,
    ) -> BatchFeature:
        """Preprocess (unless ``preprocess=False``) and pad one waveform ``(num_samples,)`` or a batch of them.

        Args:
            raw_speech: a mono float waveform, or a list of them, at ``self.sampling_rate``.
            sampling_rate: rate of ``raw_speech`` in Hz; must equal ``self.sampling_rate`` when given.
            preprocess: apply :meth:`preprocess` (trim, crop) to every clip first.

        Returns:
            ``BatchFeature`` with ``input_values`` ``(batch_size, max_num_samples)`` and ``attention_mask``.
        """
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(
                f"the audio is at {sampling_rate} Hz but this model takes {self.sampling_rate} Hz; resample it first"
            )
        batched = isinstance(raw_speech, (list, tuple)) or (isinstance(raw_speech, np.ndarray) and raw_speech.ndim > 1)
        clips = list(raw_speech) if batched else [raw_speech]
        clips = [np.asarray(c, dtype=np.float32) for c in clips]
        if preprocess:
            clips = [self.preprocess(c) for c in clips]
        padded = self.pad(
            BatchFeature({"input_values": clips}),
            padding=padding,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=self.return_attention_mask
            if return_attention_mask is None
            else return_attention_mask,
        )
        padded["input_values"] = [np.asarray(v, dtype=np.float32) for v in padded["input_values"]]
        return padded.convert_to_tensors(return_tensors) if return_tensors is not None else padded

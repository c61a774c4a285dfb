"""Audio decoding, resampling, silence trimming and cropping.

Everything here works on mono ``float32`` numpy arrays of shape ``(num_samples,)``. Decoding goes through
``soundfile`` (libsndfile: WAV of any bit depth, FLAC, OGG/Vorbis/Opus, ...) and resampling through
``soxr``; neither torchaudio nor torchcodec is needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr


class AudioError(ValueError):
    """Raised when an audio file cannot be used; the message names the file and the problem."""


def load_audio(path: str | os.PathLike, sampling_rate: int | None = 16000) -> np.ndarray:
    """Decode an audio file to a mono float32 waveform, resampled to ``sampling_rate``.

    Multi-channel audio is down-mixed by averaging the channels. Integer PCM is scaled to [-1, 1].

    Args:
        path: file readable by libsndfile (WAV, FLAC, OGG, ...), any sampling rate, bit depth and channel
            count.
        sampling_rate: target sampling rate in Hz; ``None`` keeps the file's own rate.

    Returns:
        ``np.ndarray`` of shape ``(num_samples,)``, dtype float32.

    Raises:
        FileNotFoundError: the file does not exist.
        AudioError: the file cannot be decoded (corrupt or not audio), is truncated (fewer frames than its
            header declares) or holds no samples.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such audio file")
    try:
        with sf.SoundFile(path) as f:
            declared = f.frames
            source_rate = f.samplerate
            data = f.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(f"{path}: cannot decode audio ({err}); expected a file libsndfile reads") from err
    if declared > 0 and data.shape[0] < declared or _wav_data_missing(path):
        raise AudioError(
            f"{path}: truncated audio, header declares {declared} frames but only {data.shape[0]} could be read"
        )
    if data.shape[0] == 0:
        raise AudioError(f"{path}: zero-length audio (0 samples); expected at least one sample")
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if sampling_rate is not None and source_rate != sampling_rate:
        wav = resample(wav, source_rate, sampling_rate)
    return np.ascontiguousarray(wav, dtype=np.float32)


def _wav_data_missing(path: Path) -> bool:
    """True when a RIFF/WAVE file's ``data`` chunk declares more bytes than the file holds (a cut-off download).

    libsndfile silently clamps such files to the bytes present, so the check reads the chunk headers itself
    (RIFF layout: Microsoft/IBM "Multimedia Programming Interface and Data Specifications 1.0", 1991).
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(4) != b"RIFF":
            return False
        f.seek(12)
        while True:
            header = f.read(8)
            if len(header) < 8:
                return False
            chunk_size = int.from_bytes(header[4:], "little")
            if header[:4] == b"data":
                return chunk_size != 0xFFFFFFFF and f.tell() + chunk_size > size
            f.seek(chunk_size + (chunk_size & 1), 1)


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono waveform of shape ``(num_samples,)`` from ``orig_sr`` to ``target_sr`` Hz with soxr (HQ)."""
    if orig_sr == target_sr:
        return wav
    return soxr.resample(wav, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def trim_silence(wav: np.ndarray, top_db: float = 30.0, frame_length: int = 400, hop_length: int = 160) -> np.ndarray:
    """Remove leading and trailing silence.

    A frame is silent when its RMS is more than ``top_db`` dB below the loudest frame's RMS; the result runs
    from the first to the last non-silent frame. Same rule as ``librosa.effects.trim`` (its default is 60 dB;
    the seeds used 30 dB). Audio that is silent throughout is returned unchanged.

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


def random_crop(wav: np.ndarray, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Crop ``(num_samples,)`` to at most ``max_samples`` at a uniformly random offset (training)."""
    if wav.shape[0] <= max_samples:
        return wav
    start = int(rng.integers(0, wav.shape[0] - max_samples + 1))
    return wav[start : start + max_samples]


def center_crop(wav: np.ndarray, max_samples: int) -> np.ndarray:
    """Crop ``(num_samples,)`` to at most ``max_samples`` around its centre (deterministic evaluation)."""
    if wav.shape[0] <= max_samples:
        return wav
    start = (wav.shape[0] - max_samples) // 2
    return wav[start : start + max_samples]

"""Audio decoding, resampling, silence trimming and cropping.

Everything here works on mono ``float32`` numpy arrays of shape ``(num_samples,)``. Decoding goes through
``soundfile`` (libsndfile: WAV of any bit depth, FLAC, OGG/Vorbis/Opus, ...) and resampling through
``soxr``; neither torchaudio nor torchcodec is needed.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64", ".caf")
"""File types that folders are searched for (libsndfile reads them; anything it reads can be named directly)."""

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioError",
    "load_audio",
    "open_audio",
    "random_crop",
    "resample",
    "stream_audio",
    "to_mono",
]


class AudioError(ValueError):
    """Raised when an audio file cannot be used; the message names the file and the problem."""


AudioSource = str | os.PathLike | bytes | dict
"""A file path, the encoded bytes of a file, or a ``datasets`` audio dict ``{"bytes": ..., "path": ...}``."""


@contextmanager
def open_audio(path: AudioSource) -> Iterator[sf.SoundFile]:
    """Open audio for reading after the checks every reader shares (whole-file and streaming).

    Args:
        path: a file path, the encoded bytes of a file, or a ``datasets`` ``Audio(decode=False)`` dict
            (``{"bytes": ..., "path": ...}``: the bytes are read, the path names it in errors).

    Raises:
        FileNotFoundError: the file does not exist.
        AudioError: the audio cannot be decoded (corrupt or not audio), is a RIFF/WAVE file whose ``data`` chunk
            is cut short (truncated download), or declares no samples.
    """
    if isinstance(path, dict) and path.get("bytes") is None:
        path = path.get("path") or ""
    name = source_name(path)
    if isinstance(path, (bytes, bytearray, dict)):
        data = bytes(path["bytes"] if isinstance(path, dict) else path)
        source, size = io.BytesIO(data), len(data)
    else:
        source = Path(path)
        if source.exists() and not source.is_file():
            raise AudioError(f"{source}: {not_a_file(source)}")
        if not source.is_file():
            raise FileNotFoundError(f"{source}: no such audio file")
        size = source.stat().st_size
    handle = None
    if isinstance(source, Path) and not _encodable(source):
        # a name that is not valid UTF-8 (kept by Python as surrogate escapes): soundfile cannot pass it to
        # libsndfile, so the file is opened by Python and read through soundfile's file-object interface
        handle = source.open("rb")
    try:
        f = sf.SoundFile(handle or source)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        if handle is not None:
            handle.close()
        raise AudioError(f"{name}: cannot decode audio ({err}); expected a file libsndfile reads") from err
    with f, handle or contextlib.nullcontext():
        if _wav_data_missing(source, size):
            raise AudioError(
                f"{name}: truncated WAV, its data chunk declares more bytes than the file holds "
                f"({size} bytes); download or export it again"
            )
        if f.frames == 0:
            raise AudioError(f"{name}: zero-length audio (0 samples); expected at least one sample")
        yield f


def not_a_file(path: Path) -> str:
    """Why an existing ``path`` is not an audio file: a folder, or a pipe / socket / device, which cannot be read
    twice (the header, then the samples) nor sought in."""
    if path.is_dir():
        return "a folder, not an audio file"
    return "not a regular file (a pipe, socket or device); save the audio to a file first"


def _encodable(path: Path) -> bool:
    try:
        str(path).encode(sys.getfilesystemencoding())
    except UnicodeEncodeError:
        return False
    return True


def source_name(path: AudioSource) -> str:
    """How errors name an audio source: its path, the ``path`` of a ``datasets`` audio dict, or its byte count."""
    if isinstance(path, dict):
        return str(path.get("path") or f"<{len(path.get('bytes') or b'')} bytes of audio>")
    if isinstance(path, (bytes, bytearray)):
        return f"<{len(path)} bytes of audio>"
    return str(path)


def _check_finite(path, wav: np.ndarray) -> None:
    if not np.isfinite(wav).all():
        raise AudioError(
            f"{path}: {int((~np.isfinite(wav)).sum())} NaN / infinite samples; expected finite audio samples"
        )


def load_audio(path: AudioSource, sampling_rate: int | None = 16000, channel: int | None = None) -> np.ndarray:
    """Decode an audio file to a mono float32 waveform, resampled to ``sampling_rate``.

    Multi-channel audio is down-mixed by averaging the channels, unless ``channel`` names one to keep. Averaging is
    right for coincident channels (a stereo mix of one source) and wrong for spaced microphones: a delay of ``d``
    seconds between the channels makes their average a comb filter with notches at odd multiples of ``1 / (2 d)``
    Hz (EMOVO: about 0.5 ms, first notch near 1 kHz), so such corpora keep one channel
    (:attr:`ser_hf.corpora.CorpusInfo.decode_channel`). Integer PCM is scaled to [-1, 1].

    Args:
        path: file readable by libsndfile (WAV, FLAC, OGG, ...), any sampling rate, bit depth and channel
            count; or its bytes, or a ``datasets`` ``Audio(decode=False)`` dict (see :func:`open_audio`).
        sampling_rate: target sampling rate in Hz; ``None`` keeps the file's own rate.
        channel: 0-based channel to keep from multi-channel files; ``None`` averages all channels. Mono files are
            read as they are whatever ``channel`` says.

    Returns:
        ``np.ndarray`` of shape ``(num_samples,)``, dtype float32.

    Raises:
        FileNotFoundError: the file does not exist.
        AudioError: see :func:`open_audio`; also a decoder error after the header (a truncated FLAC), fewer frames
            than the header declares, NaN / infinite samples (float WAV), and a ``channel`` the file does not have.
    """
    with open_audio(path) as f:
        declared, source_rate, name = f.frames, f.samplerate, source_name(path)
        data = _read(f, name)
    if declared > 0 and data.shape[0] < declared:
        raise AudioError(
            f"{name}: truncated audio, the header declares {declared} frames but {data.shape[0]} were read"
        )
    _check_finite(name, data)
    wav = to_mono(data, channel, name)
    if sampling_rate is not None and source_rate != sampling_rate:
        wav = resample(wav, source_rate, sampling_rate)
    return np.ascontiguousarray(wav, dtype=np.float32)


def to_mono(data: np.ndarray, channel: int | None, name: str = "audio") -> np.ndarray:
    """One channel of ``data`` ``(num_frames, num_channels)``: the average of the channels (``channel=None``), or
    channel ``channel`` (0-based; a mono file's only channel whatever ``channel`` says), shape ``(num_frames,)``.

    Raises:
        AudioError: ``channel`` is not one of the file's channels (naming the file ``name``).
    """
    if data.shape[1] == 1:
        return data[:, 0]
    if channel is None:
        return data.mean(axis=1)
    if not 0 <= channel < data.shape[1]:
        raise AudioError(f"{name}: channel {channel} asked for, but the file has {data.shape[1]} channels (0-based)")
    return data[:, channel]


def stream_audio(
    path: str | os.PathLike, sampling_rate: int, block_s: float = 30.0, channel: int | None = None
) -> Iterator[np.ndarray]:
    """Yield a recording as consecutive mono float32 blocks at ``sampling_rate`` Hz, reading ``block_s``
    seconds at a time (soundfile) and resampling with a streaming soxr resampler, so memory does not grow
    with the recording's length. ``channel``: as :func:`load_audio`.

    Raises:
        FileNotFoundError / AudioError: as :func:`load_audio` (checked before the first block is yielded, except
            NaN / infinite samples, which are found in the block that holds them).
    """
    with open_audio(path) as f:
        rs = None if f.samplerate == sampling_rate else soxr.ResampleStream(f.samplerate, sampling_rate, 1, "float32")
        frames = max(1, int(block_s * f.samplerate))
        while True:
            block = _read(f, str(path), frames)
            last = len(block) < frames
            _check_finite(path, block)
            mono = to_mono(block, channel, str(path))
            out = mono if rs is None else rs.resample_chunk(np.ascontiguousarray(mono), last=last)
            if len(out):
                yield out.astype(np.float32, copy=False)
            if last:
                break


def _read(f: sf.SoundFile, name: str, frames: int = -1) -> np.ndarray:
    """``f.read`` as float32 ``(num_frames, num_channels)``, with decoder errors (a FLAC cut short: "flac decoder
    lost sync") raised as :class:`AudioError` naming the file."""
    try:
        return f.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(
            f"{name}: cannot decode audio after its header ({err}); the file is corrupt or truncated, "
            "download or export it again"
        ) from err


def _wav_data_missing(path: Path | io.BytesIO, size: int) -> bool:
    """True when a RIFF/WAVE file's ``data`` chunk declares more bytes than the file holds (a cut-off download).

    libsndfile silently clamps such files to the bytes present, so the check reads the chunk headers itself
    (RIFF layout: Microsoft/IBM "Multimedia Programming Interface and Data Specifications 1.0", 1991).
    """
    with open(path, "rb") if isinstance(path, Path) else _rewound(path) as f:
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


@contextmanager
def _rewound(buf: io.BytesIO):
    """``buf`` read from its start, then returned to where its reader (soundfile) had left it."""
    position = buf.tell()
    buf.seek(0)
    try:
        yield buf
    finally:
        buf.seek(position)


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono waveform of shape ``(num_samples,)`` from ``orig_sr`` to ``target_sr`` Hz with soxr (HQ)."""
    if orig_sr == target_sr:
        return wav
    return soxr.resample(wav, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def random_crop(wav: np.ndarray, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Crop ``(num_samples,)`` to at most ``max_samples`` at a uniformly random offset (training)."""
    if wav.shape[0] <= max_samples:
        return wav
    start = int(rng.integers(0, wav.shape[0] - max_samples + 1))
    return wav[start : start + max_samples]


def fixed_window(feature_extractor) -> int | None:
    """Input length in samples of a fixed-window extractor (Whisper's ``n_samples``), ``None`` for others."""
    fe = feature_extractor
    return int(fe.n_samples) if hasattr(fe, "nb_max_frames") and getattr(fe, "n_samples", None) else None


MAX_CLIP_S = 600.0
"""The longest file clip mode takes (seconds): it runs the model over the whole recording at once, so memory grows
with the length (a 2-hour file needed about 5.5 GB before failing); longer ones go to
:func:`ser_hf.timeline.predict_timeline`."""


def check_clip_length(path) -> None:
    """Refuse, from its header, a file longer than :data:`MAX_CLIP_S` for clip mode (``ser-hf predict`` without
    ``--timeline``, :func:`ser_hf.inference.predict`).

    Raises:
        AudioError: naming the file, its length and ``--timeline``; FileNotFoundError / AudioError from
            :func:`ser_hf.audio.open_audio` for a file that cannot be read.
    """
    with open_audio(path) as f:
        seconds = f.frames / f.samplerate
    if seconds > MAX_CLIP_S:
        raise AudioError(
            f"{path}: lasts {seconds:.0f} s, more than clip mode's {MAX_CLIP_S:.0f} s (one pass over the whole "
            "recording needs memory in proportion to its length); use `ser-hf predict --timeline` (or "
            "ser_hf.predict_timeline), which labels it window by window in bounded memory"
        )

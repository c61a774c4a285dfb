"""Emotion timelines of long recordings: :func:`predict_timeline` slides a window over a recording of any length,
reading and resampling it block by block (memory stays bounded: a few windows of audio plus one row of
probabilities per window), gates out non-speech by energy, optionally smooths the probabilities over time, and
returns an :class:`EmotionTimeline` that writes CSV / JSONL and plots class probabilities over time. Windows are
scored as :func:`ser_hf.inference.predict` scores clips (:func:`ser_hf.inference.scorer`: the checkpoint's own
feature extractor on PyTorch, or an ONNX export on onnxruntime).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import stream_audio
from .inference import scorer


@dataclass
class TimelineSegment:
    """One analysis window of a recording.

    Attributes:
        start_s / end_s: window position in seconds from the start of the recording.
        speech: whether the energy gate found speech in the window.
        label: most probable label, ``None`` for non-speech windows.
        probabilities: ``{label: probability}`` (after smoothing, if any); empty for non-speech windows.
        level_db: window RMS level in dB relative to full scale (dBFS).
    """

    start_s: float
    end_s: float
    speech: bool
    label: str | None
    probabilities: dict[str, float]
    level_db: float


@dataclass
class EmotionTimeline:
    """Emotion over time for one recording (see :func:`predict_timeline`).

    Attributes:
        path: the recording.
        labels: the model's labels, in its class order.
        segments: one :class:`TimelineSegment` per window, in time order.
        window_s / hop_s: window length and step in seconds.
        duration_s: length of the recording in seconds.
    """

    path: str
    labels: list[str]
    segments: list[TimelineSegment]
    window_s: float
    hop_s: float
    duration_s: float
    settings: dict = field(default_factory=dict)

    def probabilities(self) -> np.ndarray:
        """``(num_windows, num_labels)`` probabilities; NaN rows for non-speech windows."""
        out = np.full((len(self.segments), len(self.labels)), np.nan, dtype=np.float32)
        for i, s in enumerate(self.segments):
            if s.speech:
                out[i] = [s.probabilities[name] for name in self.labels]
        return out

    def to_csv(self, path: str | Path) -> None:
        """Columns ``start_s, end_s, speech, label, level_db`` then one probability column per label."""
        with Path(path).open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["start_s", "end_s", "speech", "label", "level_db", *self.labels])
            for s in self.segments:
                probs = [f"{s.probabilities[n]:.5f}" if s.speech else "" for n in self.labels]
                w.writerow(
                    [f"{s.start_s:.3f}", f"{s.end_s:.3f}", int(s.speech), s.label or "", f"{s.level_db:.1f}", *probs]
                )

    def to_jsonl(self, path: str | Path) -> None:
        """One JSON object per window: ``start_s, end_s, speech, label, level_db, probabilities``."""
        with Path(path).open("w") as f:
            for s in self.segments:
                f.write(json.dumps(s.__dict__) + "\n")

    def plot(self, path: str | Path) -> None:
        """PNG of each class's probability over time (speech windows), non-speech shaded grey."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        probs = self.probabilities()
        centres = np.array([(s.start_s + s.end_s) / 2 for s in self.segments])
        fig, ax = plt.subplots(figsize=(min(4 + self.duration_s / 30, 40), 3.2))
        for k, name in enumerate(self.labels):
            ax.plot(centres, probs[:, k], label=name, lw=1)
        for s in self.segments:
            if not s.speech:
                ax.axvspan(
                    s.start_s + (self.window_s - self.hop_s) / 2,
                    s.end_s - (self.window_s - self.hop_s) / 2,
                    color="0.9",
                    lw=0,
                )
        ax.set_xlabel("time (s)")
        ax.set_ylabel("probability")
        ax.set_ylim(0, 1)
        ax.set_xlim(0, max(self.duration_s, 1e-3))
        ax.legend(fontsize=7, ncol=min(len(self.labels), 8), loc="upper right")
        ax.set_title(Path(self.path).name)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def _release_freed_memory() -> None:
    """Hand freed heap memory back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    Many short-lived window and feature arrays allocated from several threads fragment glibc's heap, and
    the peak RSS of an hour-long timeline then creeps up with the recording's length; trimming every few
    batches keeps it flat (measured: benchmarks/inference_rtf.py).
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _level_db(w: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(w.astype(np.float64) ** 2) + 1e-12))


def sliding_windows(path, sampling_rate: int, win: int, hop: int, block_s: float):
    """``(start, window)`` pairs over a recording read block by block (:func:`ser_hf.audio.stream_audio`):
    windows of ``win`` samples every ``hop`` samples, then a last window ending at the end of the recording when
    the hops do not reach it; a recording shorter than ``win`` gives one window of all of it.

    Yields:
        ``(start sample, float32 array of shape (win,))`` (shorter only for a recording shorter than ``win``).
    """
    buf = np.zeros(0, dtype=np.float32)
    buf_start = 0  # sample index of buf[0]
    next_start = total = count = 0
    for block in stream_audio(path, sampling_rate, block_s):
        total += len(block)
        buf = np.concatenate([buf, block])
        while next_start + win <= buf_start + len(buf):
            a = next_start - buf_start
            yield next_start, buf[a : a + win].copy()
            count += 1
            next_start += hop
        # keep the audio from the next window start on, and at least the last window (for the tail window)
        drop = min(next_start, buf_start + len(buf) - win) - buf_start
        if drop > 0:
            buf, buf_start = buf[drop:], buf_start + drop
    if not count:  # recording shorter than one window: one window of all of it
        yield 0, buf.copy()
    elif next_start - hop + win < total:  # tail: a last window ending at the end of the recording
        yield total - win, buf[total - win - buf_start :].copy()


def label_speech(segments: list, probs_by_index: dict, labels: list[str], smooth: int) -> None:
    """Give every speech segment its probabilities (moving average over ``smooth`` consecutive speech windows,
    edges padded with the first / last window) and its most probable label, in place."""
    idx = [i for i, s in enumerate(segments) if s.speech]
    if not idx:
        return
    mat = np.stack([probs_by_index[i] for i in idx])  # (speech windows, labels)
    if smooth > 1:
        kernel = np.ones(smooth) / smooth
        pad = smooth // 2
        padded = np.pad(mat, ((pad, smooth - 1 - pad), (0, 0)), mode="edge")
        mat = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(mat.shape[1])], 1)
    for i, row in zip(idx, mat, strict=True):
        segments[i].probabilities = dict(zip(labels, map(float, row), strict=True))
        segments[i].label = labels[int(row.argmax())]


def _check_timeline_args(window_s: float, hop_s: float, smooth: int) -> None:
    """Raises ValueError naming the flag: window or hop not positive, hop above the window, ``smooth`` < 1."""
    if window_s <= 0 or hop_s <= 0:
        raise ValueError(f"--window_s and --hop_s must be positive, got {window_s} and {hop_s}")
    if hop_s > window_s:
        raise ValueError(f"--hop_s {hop_s} is longer than --window_s {window_s}: parts of the audio would be skipped")
    if smooth < 1:
        raise ValueError(f"--smooth must be at least 1 window, got {smooth}")


def predict_timeline(
    model,
    path: str | Path,
    window_s: float = 2.0,
    hop_s: float = 1.0,
    batch_size: int = 32,
    gate_db: float | None = -60.0,
    smooth: int = 1,
    feature_extractor=None,
    block_s: float = 30.0,
    backend: str = "auto",
    quantized: bool = False,
) -> EmotionTimeline:
    """Emotion over time for a recording of any length.

    Windows of ``window_s`` seconds every ``hop_s`` seconds; the last window ends at the end of the recording
    (it may overlap more). A recording shorter than the window gives one window covering all of it
    (documented result, not an error). Windows whose RMS level is below ``gate_db`` dBFS are non-speech
    and get no emotion (``gate_db=None`` classifies every window). The default, -60 dBFS, passes quiet
    studio speech (2 s windows of RAVDESS measure -44 to -55 dBFS) and stops digital silence and a quiet
    room; raise it for noisy recordings. This energy gate is no voice activity detector: loud non-speech
    (music, noise) passes it. ``smooth > 1`` averages each speech
    window's probabilities with its neighbours over ``smooth`` consecutive windows (moving average,
    non-speech windows excluded).

    Args:
        model: a loaded model (then pass ``feature_extractor``), a checkpoint folder / hub id, or an ONNX export
            folder (see :func:`scorer` for ``backend`` and ``quantized``).
        block_s: seconds of audio read per block (memory is about ``block_s + window_s`` of audio).

    Raises:
        ValueError: ``window_s`` or ``hop_s`` not positive, ``hop_s`` above ``window_s``, ``smooth`` < 1.
        FileNotFoundError / AudioError: missing, unreadable or zero-length file.
    """
    _check_timeline_args(window_s, hop_s, smooth)
    labels, sr, probabilities = scorer(model, feature_extractor, backend, quantized)
    win, hop = int(round(window_s * sr)), int(round(hop_s * sr))

    segments: list[TimelineSegment] = []
    pending: list[tuple[int, np.ndarray]] = []  # (start sample, window) of speech windows not yet classified
    probs_by_index: dict[int, np.ndarray] = {}

    flushes = [0]

    def flush():
        if pending:
            p = probabilities([w for _, w in pending])
            for (i, _), row in zip(pending, p, strict=True):
                probs_by_index[i] = row
            pending.clear()
            flushes[0] += 1
            if flushes[0] % 8 == 0:
                _release_freed_memory()

    def add_window(start: int, w: np.ndarray):
        level = _level_db(w)
        speech = gate_db is None or level >= gate_db
        segments.append(TimelineSegment(start / sr, (start + len(w)) / sr, speech, None, {}, level))
        if speech:
            pending.append((len(segments) - 1, w))
            if len(pending) >= batch_size:
                flush()

    total = 0
    for start, window in sliding_windows(path, sr, win, hop, block_s):
        add_window(start, window)
        total = max(total, start + len(window))
    flush()

    label_speech(segments, probs_by_index, labels, smooth)
    return EmotionTimeline(
        str(path),
        labels,
        segments,
        window_s,
        hop_s,
        total / sr,
        {"gate_db": gate_db, "smooth": smooth, "sampling_rate": sr},
    )

"""Shared fixtures: synthetic corpora in the real layouts (tests never need ../shared)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

RAVDESS_SR = 48000


def ravdess_names(actors=range(1, 25)):
    """All 60 official speech stems per actor: 8 emotions x intensities x 2 statements x 2 repetitions."""
    for actor in actors:
        for emotion in range(1, 9):
            for intensity in (1,) if emotion == 1 else (1, 2):
                for statement in (1, 2):
                    for rep in (1, 2):
                        yield (
                            actor,
                            emotion,
                            f"03-01-{emotion:02d}-{intensity:02d}-{statement:02d}-{rep:02d}-{actor:02d}",
                        )


def tone(emotion: int, seconds: float, sr: int, seed: int) -> np.ndarray:
    """A short emotion-dependent harmonic tone with noise, int16-safe float in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 110.0 * (1 + 0.25 * emotion)
    wav = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3)) * 0.2
    return (wav + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def write_ravdess_tree(root: Path, actors=range(1, 25), seconds: float = 0.3) -> Path:
    """Write RAVDESS speech in the official zip layout: Actor_XX/*.wav, 48 kHz 16-bit, one stereo file."""
    for i, (actor, emotion, stem) in enumerate(ravdess_names(actors)):
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        wav = tone(emotion, seconds, RAVDESS_SR, i)
        if stem == "03-01-02-01-01-02-01":  # stereo in the real corpus too
            wav = np.stack([wav, 0.5 * wav], axis=1)
        sf.write(folder / f"{stem}.wav", wav, RAVDESS_SR, subtype="PCM_16")
    return root


@pytest.fixture(scope="session")
def ravdess_dir(tmp_path_factory) -> Path:
    """A complete (1440-clip, 24-actor) synthetic RAVDESS speech tree of 0.3 s clips."""
    return write_ravdess_tree(tmp_path_factory.mktemp("ravdess"))


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "hf_cache"

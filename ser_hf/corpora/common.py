"""Pieces shared by the corpus builders: the common schema and errors."""

from __future__ import annotations

from pathlib import Path

import datasets
import soundfile as sf


class CorpusError(ValueError):
    """Raised when a corpus folder does not match the documented layout; the message says what is wrong."""


def ser_features(label_names: list[str], extra: dict[str, datasets.features.FeatureType] | None = None):
    """The schema every ser_hf corpus shares.

    Columns: ``id`` (stable utterance id), ``audio`` (absolute path of the audio file; decode it with
    :func:`ser_hf.audio.load_audio`, or ``ds.cast_column("audio", datasets.Audio())`` where torchcodec is
    installed), ``label`` (``ClassLabel``), ``speaker``, ``gender`` (``"male"``/``"female"``/``""``),
    ``duration_s`` (seconds, from the file header), plus corpus-specific ``extra`` columns.
    """
    features = {
        "id": datasets.Value("string"),
        "audio": datasets.Value("string"),
        "label": datasets.ClassLabel(names=label_names),
        "speaker": datasets.Value("string"),
        "gender": datasets.Value("string"),
        "duration_s": datasets.Value("float32"),
    }
    features.update(extra or {})
    return datasets.Features(features)


def clip_duration_s(path: str | Path, expected: str = "audio") -> float:
    """Duration in seconds from the audio file's header.

    Raises:
        CorpusError: the header cannot be read, or the clip has no samples (the message names the file and
            says what was ``expected``).
    """
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise CorpusError(f"{path}: cannot read audio header ({err}); expected {expected}") from err
    if info.frames == 0:
        raise CorpusError(f"{path}: zero-length clip (0 samples); expected {expected}")
    return float(info.frames) / info.samplerate


def check_headers(paths, expected: str = "audio") -> None:
    """Read every clip's header before a corpus is built, so that all bad clips are reported at once.

    Raises:
        CorpusError: listing every clip whose header cannot be read or that has no samples (first 20 named, then
            a count), with what was ``expected``.
    """
    bad = []
    for path in paths:
        try:
            clip_duration_s(path, expected)
        except CorpusError as err:
            bad.append(str(err))
    if bad:
        shown = "\n  ".join(bad[:20]) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else "")
        raise CorpusError(f"{len(bad)} clip(s) cannot be used:\n  {shown}")


def corpus_root(data_dir: str | None, corpus: str, expected: str) -> Path:
    """The resolved corpus folder of a builder config.

    Raises:
        CorpusError: no ``data_dir`` was given (the message says what folder is ``expected``).
        FileNotFoundError: ``data_dir`` does not exist or is not a directory.
    """
    if not data_dir:
        raise CorpusError(f"{corpus}: data_dir is required ({expected})")
    root = Path(data_dir).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{corpus} data_dir {root} does not exist or is not a directory")
    return root


def listing_fingerprint(data_dir: str | Path) -> str:
    """A hash of every file under ``data_dir`` (relative path, size, modification time; hidden entries skipped).

    Builders take it as their config's ``fingerprint``, so ``datasets`` keys its cache on the folder's contents:
    adding, removing or replacing a clip rebuilds the corpus instead of returning the rows of an earlier build.
    """
    import hashlib
    import os

    root = Path(data_dir).expanduser().resolve()
    h = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(f for f in files if not f.startswith(".")):
            path = Path(folder) / name
            st = path.stat()
            h.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]

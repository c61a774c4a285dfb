"""Pieces shared by the corpus builders: the common schema and errors."""

from __future__ import annotations

import datasets


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

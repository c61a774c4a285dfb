"""Emotional-speech corpora as Hugging Face ``datasets`` with one schema (see :func:`ser_features`)."""

from __future__ import annotations

import os

import datasets

from . import anad, ased, emovdb, emovo, eyase, nemo, ravdess, turevdb, urdu
from .anad import Anad
from .ased import Ased
from .common import CorpusError, CorpusInfo, listing_fingerprint, ser_features
from .emovdb import Emovdb
from .emovo import Emovo
from .eyase import Eyase
from .folder import Folder, folder_fingerprint
from .nemo import Nemo
from .ravdess import Ravdess
from .turevdb import Turevdb
from .urdu import Urdu

CORPORA: dict[str, type[datasets.GeneratorBasedBuilder]] = {
    "ravdess": Ravdess,
    "emovdb": Emovdb,
    "anad": Anad,
    "eyase": Eyase,
    "emovo": Emovo,
    "urdu": Urdu,
    "nemo": Nemo,
    "ased": Ased,
    "turevdb": Turevdb,
    "folder": Folder,
}
"""Corpus name -> builder class."""

_MODULES = {
    "ravdess": ravdess,
    "emovdb": emovdb,
    "anad": anad,
    "eyase": eyase,
    "emovo": emovo,
    "urdu": urdu,
    "nemo": nemo,
    "ased": ased,
    "turevdb": turevdb,
}


def corpus_info(name: str) -> CorpusInfo | None:
    """The facts of corpus ``name`` (license, citation, languages, protocols, decoding, cited results) from its
    corpus module, ``None`` for a user's folder or an unknown name."""
    module = _MODULES.get(name)
    return None if module is None else module.INFO


def decode_channel(name: str) -> int | None:
    """The channel every reader of corpus ``name`` keeps from multi-channel files (``None``: average them); see
    :attr:`CorpusInfo.decode_channel` and :func:`ser_hf.audio.load_audio`."""
    info = corpus_info(name)
    return None if info is None else info.decode_channel


def load_corpus(
    name: str,
    data_dir: str | os.PathLike | None = None,
    config_name: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    **config_kwargs,
) -> datasets.Dataset:
    """Build (once, then from the cache) and return a whole corpus as one ``datasets.Dataset``.

    Args:
        name: corpus name, one of :data:`CORPORA`: ``"ravdess"``, ``"emovdb"``, ``"anad"``, ``"eyase"``,
            ``"emovo"``, ``"urdu"``, or ``"folder"`` (a user's folder, see :mod:`ser_hf.corpora.folder`).
        data_dir: folder holding the corpus files in its documented layout; ``None`` fetches RAVDESS or EmoV-DB
            into the Hugging Face cache on first use (:func:`ser_hf.download.fetch_corpus`) and reads it from there.
        config_name: builder config (RAVDESS: ``"speech"``, the default, or ``"song"``).
        cache_dir: datasets cache folder (default: the Hugging Face datasets cache).
        **config_kwargs: builder config fields, e.g. ``verify_counts=False`` to load a subset of a corpus, or
            ``metadata="meta.csv"`` / ``labels=[...]`` for a folder.

    Returns:
        The corpus with the columns of :func:`ser_features`; one row per clip.

    Raises:
        ValueError: unknown corpus name (the message lists valid ones).
        FileNotFoundError: ``data_dir`` does not exist.
        ser_hf.download.DownloadError: fetching on first use failed.
        CorpusError: the folder's files do not match the corpus layout or expected counts.
    """
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; valid corpora: {', '.join(sorted(CORPORA))}")
    if data_dir is None:
        from ..download import DownloadError, fetch_corpus

        try:
            data_dir = fetch_corpus(name, cache_dir)
        except DownloadError as err:
            raise DownloadError(
                f"{err}\n(no data_dir was given, so {name} is fetched on first use: if you have it on disk, pass "
                "data_dir=... in Python or --data_dir DIR on the command line)"
            ) from None
    if name == "folder":
        config_kwargs.pop("verify_counts", None)  # a user's folder has no documented counts to check
        config_kwargs.setdefault("fingerprint", folder_fingerprint(data_dir, config_kwargs.get("metadata")))
    elif os.path.isdir(data_dir):  # a missing folder is reported by the builder, naming the corpus
        config_kwargs.setdefault("fingerprint", listing_fingerprint(data_dir))
    builder = CORPORA[name](
        config_name=config_name,
        data_dir=str(os.path.abspath(os.fspath(data_dir))),
        cache_dir=None if cache_dir is None else os.fspath(cache_dir),
        **config_kwargs,
    )
    try:
        builder.download_and_prepare()
    except datasets.exceptions.DatasetGenerationError as err:
        # datasets wraps errors raised while generating examples; surface the one that names the file
        if isinstance(err.__cause__, (CorpusError, OSError)):
            raise err.__cause__ from None
        raise
    return builder.as_dataset(split="train")


__all__ = [
    "CORPORA",
    "Anad",
    "Ased",
    "CorpusError",
    "CorpusInfo",
    "Emovdb",
    "Emovo",
    "Eyase",
    "Folder",
    "Nemo",
    "Ravdess",
    "Turevdb",
    "Urdu",
    "corpus_info",
    "decode_channel",
    "load_corpus",
    "ser_features",
]

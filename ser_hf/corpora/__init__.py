"""Emotional-speech corpora as Hugging Face ``datasets`` with one schema (see :func:`ser_features`)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

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

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Corpus:
    """One entry of the corpus registry: the name used on the command line, the ``datasets`` builder and the
    corpus facts (:class:`CorpusInfo`: languages, license, folds, download) from the corpus's own module."""

    name: str
    builder: type[datasets.GeneratorBasedBuilder]
    info: CorpusInfo | None  # None: a user's folder

    @property
    def fetchable(self) -> bool:
        """Whether ``ser-hf download`` (and a command without ``--data_dir``) can fetch it automatically."""
        return self.info is not None and self.info.download is not None


REGISTRY: dict[str, Corpus] = {
    c.name: c
    for c in (
        Corpus("ravdess", Ravdess, ravdess.INFO),
        Corpus("emovdb", Emovdb, emovdb.INFO),
        Corpus("anad", Anad, anad.INFO),
        Corpus("eyase", Eyase, eyase.INFO),
        Corpus("emovo", Emovo, emovo.INFO),
        Corpus("urdu", Urdu, urdu.INFO),
        Corpus("nemo", Nemo, nemo.INFO),
        Corpus("ased", Ased, ased.INFO),
        Corpus("turevdb", Turevdb, turevdb.INFO),
        Corpus("folder", Folder, None),
    )
}
"""Every corpus ser_hf knows, in one place: the CLI's choices and help, the folds and the downloads read it.
Adding a corpus is its own module (builder + ``INFO``) and one line here."""

CORPORA: dict[str, type[datasets.GeneratorBasedBuilder]] = {name: c.builder for name, c in REGISTRY.items()}
"""Corpus name -> builder class."""

NAMED_CORPORA = tuple(name for name, c in REGISTRY.items() if c.info is not None)
"""The published corpora (every registry name but ``folder``)."""

MANUAL_ONLY = tuple(name for name in NAMED_CORPORA if not REGISTRY[name].fetchable)
"""Corpora that cannot be fetched automatically (a login or the authors' consent is needed, or no verified download
is written yet): a command that would fetch them on first use needs their folder instead; :func:`manual_instructions`
gives the steps."""


def corpus_info(name: str) -> CorpusInfo | None:
    """The facts of corpus ``name`` (license, citation, languages, protocols, folds, decoding, download, cited
    results) from its corpus module, ``None`` for a user's folder or an unknown name."""
    corpus = REGISTRY.get(name)
    return None if corpus is None else corpus.info


def manual_instructions(name: str, to: str | os.PathLike) -> str:
    """The manual steps for a corpus that ``ser-hf download`` does not fetch (:data:`MANUAL_ONLY`) and the layout
    ser_hf expects in ``to/<name>``.

    Raises:
        ValueError: a corpus without manual steps (the message lists those that have them).
    """
    info = corpus_info(name)
    if info is None or not info.manual_steps:
        raise ValueError(f"no manual steps for {name!r}; corpora with them: {', '.join(MANUAL_ONLY)}")
    where, layout = info.manual_steps
    folder = Path(to) / name
    return f"""{where}
Then put it in {folder} so that it holds:
       {layout}
and load it: ser_hf.load_corpus("{name}", data_dir="{folder}")"""


def fetch_corpus(name: str, cache_dir: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """The folder of corpus ``name``, downloaded on first use (verified, resumable, safely extracted: the
    ``ser-hf download`` path) into :func:`ser_hf.download.corpora_cache`; later calls find it there without the
    network.

    Raises:
        DownloadError: the download failed (what is kept and how to resume is in the message), or the server lacks
            part of the corpus.
        ValueError: a corpus of :data:`MANUAL_ONLY` (the message gives the manual steps) or ``folder`` (a user's own
            folder has nowhere to come from: pass ``data_dir``).
    """
    from .. import download as dl

    root = dl.corpora_cache(cache_dir)
    corpus = REGISTRY.get(name)
    if corpus is not None and corpus.info is not None and not corpus.fetchable:
        raise ValueError(f"{name.upper()} cannot be fetched automatically:\n" + manual_instructions(name, root))
    if corpus is None or not corpus.fetchable:
        raise ValueError(f"corpus {name!r} has nothing to download: pass --data_dir (the folder holding it)")
    target = root / name
    marker = target / dl.COMPLETE_MARKER
    if marker.exists():  # "folder: <corpus folder inside target>"; a marker of an older ser_hf: target itself
        text = marker.read_text().strip()
        return target / text.removeprefix("folder: ") if text.startswith("folder: ") else target
    logger.warning("corpus %s is not in %s yet: downloading it once (resumable, checksum-verified)", name, root)
    folder, missing = corpus.info.download(root, progress)
    if missing:
        raise dl.DownloadError(f"{name} archives {missing} are not on the server; {folder} is incomplete")
    marker.write_text(f"folder: {Path(folder).relative_to(target).as_posix()}\n")
    return Path(folder)


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
        name: corpus name, one of :data:`REGISTRY` (``"ravdess"``, ``"emovo"``, ...), or ``"folder"`` (a user's
            folder, see :mod:`ser_hf.corpora.folder`).
        data_dir: folder holding the corpus files in its documented layout; ``None`` fetches RAVDESS or EmoV-DB
            into the Hugging Face cache on first use (:func:`fetch_corpus`) and reads it from there.
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
        from ..download import DownloadError

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


SEPARATOR = "+"
"""Joins the member corpora into the name a multi-corpus split records (``ravdess+emovo``)."""


def corpus_list(spec: str) -> list[str]:
    """The corpora of ``--corpus`` (``"ravdess,emovo"``; one name gives a one-element list).

    Raises:
        ValueError: an unknown name, ``folder`` among several, or a corpus named twice (the message lists the
            valid names).
    """
    names = [n.strip() for n in str(spec).replace(SEPARATOR, ",").split(",") if n.strip()]
    unknown = [n for n in names if n not in CORPORA]
    if unknown:
        raise ValueError(f"--corpus {spec}: unknown corpus {unknown}; valid corpora: {', '.join(sorted(CORPORA))}")
    if len(names) > 1 and "folder" in names:
        raise ValueError(f"--corpus {spec}: a folder corpus trains alone (prefix its speakers in metadata instead)")
    if len(set(names)) != len(names):
        raise ValueError(f"--corpus {spec}: each corpus once")
    return names


def is_multi(spec: str | None) -> bool:
    """Whether ``--corpus`` names several corpora (or a split records several, joined by ``+``)."""
    return spec is not None and ("," in spec or SEPARATOR in spec)


def data_dirs(names: list[str], spec: str | None) -> dict[str, str | None]:
    """The folder of each corpus from ``--data_dir NAME=DIR,NAME=DIR`` (a corpus left out is fetched on first use,
    where it can be).

    Raises:
        ValueError: an entry is not ``NAME=DIR``, names a corpus not in ``names`` or twice, has no folder, or a
            corpus that cannot be fetched (ANAD, EYASE, EMOVO) has no folder.
    """
    dirs: dict[str, str | None] = dict.fromkeys(names)
    for item in [i for i in (spec or "").split(",") if i.strip()]:
        name, sep, path = item.partition("=")
        if not sep or name.strip() not in dirs:
            raise ValueError(
                f"--data_dir {spec}: {item!r} is not NAME=DIR for one of the corpora {names} "
                "(e.g. --data_dir ravdess=../shared/data/ravdess-16k,emovo=../shared/data/emovo-16k)"
            )
        if dirs[name.strip()] is not None:
            raise ValueError(f"--data_dir {spec}: {name.strip()} is given twice; give each corpus one folder")
        if not path.strip():
            raise ValueError(f"--data_dir {spec}: {name.strip()}= has no folder; expected {name.strip()}=DIR")
        dirs[name.strip()] = os.path.expanduser(path.strip())
    missing = [n for n, d in dirs.items() if d is None and n in MANUAL_ONLY]
    if missing:
        raise ValueError(f"--data_dir needs NAME=DIR for {missing}: they cannot be fetched on first use")
    return dirs


@dataclass(frozen=True)
class CorpusSelection:
    """``--corpus`` and ``--data_dir`` parsed once into a typed value (``DataArguments.selection``, built from
    :func:`corpus_list` and :func:`data_dirs`): the corpora of a run and the folder of each (``None``: fetched on
    first use)."""

    names: tuple[str, ...]
    dirs: dict[str, str | None]

    @property
    def multi(self) -> bool:
        """Whether the run trains on several corpora at once."""
        return len(self.names) > 1


__all__ = [
    "CORPORA",
    "MANUAL_ONLY",
    "NAMED_CORPORA",
    "REGISTRY",
    "SEPARATOR",
    "Corpus",
    "CorpusSelection",
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
    "corpus_list",
    "data_dirs",
    "decode_channel",
    "fetch_corpus",
    "is_multi",
    "manual_instructions",
    "load_corpus",
    "ser_features",
]

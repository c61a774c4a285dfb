"""Pieces shared by the corpus builders: the common schema and errors."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
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


def clip_problem(path: str | Path, expected: str = "audio") -> str | None:
    """What makes a clip unusable, or ``None``: its header (:func:`clip_duration_s`), then a full decode with
    :func:`ser_hf.audio.load_audio` (a FLAC cut short after its header, a WAV data chunk shorter than declared,
    NaN / infinite samples), so that a corpus build names every bad clip, not only those with a bad header."""
    from ..audio import AudioError, load_audio

    try:
        clip_duration_s(path, expected)
        load_audio(path, None)
    except (CorpusError, AudioError, OSError) as err:
        return str(err)
    return None


def check_headers(paths, expected: str = "audio") -> None:
    """Read (header and samples) every clip before a corpus is built, so that all bad clips are reported at once.

    Raises:
        CorpusError: listing every clip whose header cannot be read, that has no samples or that does not decode
            (first 20 named, then a count), with what was ``expected``.
    """
    bad = [problem for path in paths if (problem := clip_problem(path, expected))]
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


ACTED_SPEECH = (
    "acted, read speech of a fixed set of sentences recorded in a studio. Spontaneous emotion in conversation, "
    "telephone audio, noise, children's or elderly voices are all out of domain; expect much lower accuracy there."
)
"""The default :attr:`CorpusInfo.speech`: an acted corpus read in a studio."""


@dataclass(frozen=True)
class CorpusInfo:
    """The facts of one corpus that the rest of the toolkit reads (model and dataset cards, folds, decoding,
    downloads, comparison reports). Each corpus module defines one as ``INFO``; :func:`ser_hf.corpora.corpus_info`
    returns it by name.

    Args:
        name: the corpus's display name (``"RAVDESS"``).
        dataset_id: the id written into model-card metadata (``datasets:``).
        languages: ISO 639-1 codes of the spoken languages (``["ar"]``).
        license: the license as published (``"CC BY-NC-SA 4.0"``), or the terms in words when there is no
            standard license (``"research use only (no license stated)"``).
        license_id: Hub license id (``"cc-by-nc-sa-4.0"``), ``"other"`` otherwise.
        terms: what the license allows, in one or two plain sentences (shown in cards).
        citation: BibTeX of the corpus paper.
        homepage: where the corpus is published.
        description: one paragraph for model and dataset cards.
        language_note: who speaks in the corpus (what a model trained on it has not heard).
        speech: what kind of speech it is and what is out of its domain, completing "<name> is ..." (cards).
        protocols: protocol name -> one sentence describing its speaker-independent folds.
        decode_channel: ``None`` to average the channels of multi-channel files (the default), or the 0-based
            channel to keep (EMOVO: its stereo channels are two spaced microphones, see
            :func:`ser_hf.audio.load_audio`).
        published: cited results for this corpus, shown beside measured ones and never as measured here.
        folds: test speakers of each fixed speaker-independent fold (protocol ``folds``); ``None``: scikit-learn's
            ``GroupKFold`` over the speakers (:func:`ser_hf.folds.speaker_folds`).
        download: ``download(to, progress) -> (folder, missing)``, the verified, resumable automatic download into
            folder ``to`` (``missing``: parts the server no longer has); ``None`` when a login or the authors'
            consent is needed, and :attr:`manual_steps` say what to do.
        manual_steps: ``(where, layout)``: how to obtain the corpus by hand, and the folder layout ser_hf expects.
        caveat: what a reader of any score on this corpus must know (shown under result tables), e.g. that the
            text gives the label away.
    """

    name: str
    dataset_id: str
    languages: tuple[str, ...]
    license: str
    license_id: str
    terms: str
    citation: str
    homepage: str
    description: str
    language_note: str = ""
    speech: str = ACTED_SPEECH
    protocols: dict = field(default_factory=dict)
    decode_channel: int | None = None
    published: tuple = ()
    folds: list | None = None
    download: Callable[[Path, bool], tuple[Path, list[str]]] | None = None
    manual_steps: tuple[str, str] = ()
    caveat: str = ""


def check_counts(corpus: str, root: Path, found: Counter, expected: dict, what: str) -> list[str]:
    """Compare counted clips with the documented ones: one line per mismatch, e.g.
    ``"Male01: 116 clips, expected 117"`` (``what`` names the key, e.g. ``"speaker"``); ``[]`` when all agree."""
    problems = [f"{what} {key}: missing, expected {n} clips" for key, n in expected.items() if key not in found]
    problems += [
        f"{what} {key}: {found[key]} clips, expected {n}"
        for key, n in expected.items()
        if key in found and found[key] != n
    ]
    problems += [
        f"{what} {key}: {found[key]} clips, not in the documented corpus" for key in found if key not in expected
    ]
    return problems


def raise_problems(corpus: str, root: Path, problems: list[str], hint: str = "") -> None:
    """Raise one :class:`CorpusError` listing every problem found in a corpus folder (first 30, then a count).

    Raises:
        CorpusError: when ``problems`` is not empty.
    """
    if problems:
        shown = "\n  ".join(problems[:30]) + (f"\n  ... and {len(problems) - 30} more" if len(problems) > 30 else "")
        raise CorpusError(f"{root}: {corpus} does not match its documented layout:\n  {shown}{hint}")


@dataclass
class ClipsConfig(datasets.BuilderConfig):
    """BuilderConfig of the corpora whose labels and speakers come from their file and folder names.

    Args:
        verify_counts: raise when the folder does not hold the complete corpus (its documented per-speaker and
            per-emotion counts); ``False`` loads a subset.
        fingerprint: set by :func:`ser_hf.load_corpus` from the folder listing, so edits rebuild the cache.
    """

    verify_counts: bool = True
    fingerprint: str | None = None


class ClipsBuilder(datasets.GeneratorBasedBuilder):
    """A corpus of one clip per file, labelled by its name (EYASE, EMOVO, URDU): subclasses define
    :meth:`parse` and the class attributes below; this class finds the audio files, names every bad file at
    once, checks the documented counts and the clips' headers, and yields rows of :func:`ser_features`.

    Class attributes:
        INFO: the corpus's :class:`CorpusInfo`.
        EMOTIONS: canonical label names, in ``ClassLabel`` order.
        EXTRA: corpus-specific columns (name -> ``datasets`` feature).
        LAYOUT: the expected folder layout in words (used in errors).
        EXPECTED_SPEAKERS / EXPECTED_EMOTIONS: documented clip counts per speaker and per emotion.
    """

    BUILDER_CONFIG_CLASS = ClipsConfig
    BUILDER_CONFIGS = [ClipsConfig(name="default", version=datasets.Version("1.0.0"))]
    DEFAULT_CONFIG_NAME = "default"
    INFO: CorpusInfo
    EMOTIONS: list[str]
    EXTRA: dict = {}
    LAYOUT: str = ""
    EXPECTED_SPEAKERS: dict[str, int] = {}
    EXPECTED_EMOTIONS: dict[str, int] = {}

    def parse(self, path: Path) -> dict:
        """The row of one clip without ``audio`` and ``duration_s``: ``id``, ``label`` (a name of
        :attr:`EMOTIONS`), ``speaker``, ``gender`` and the :attr:`EXTRA` columns.

        Raises:
            CorpusError: the name or folder does not follow the corpus's documented layout (naming the file).
        """
        raise NotImplementedError

    def _info(self):
        import sys

        return datasets.DatasetInfo(
            description=sys.modules[type(self).__module__].__doc__,
            features=ser_features(self.EMOTIONS, self.EXTRA),
            homepage=self.INFO.homepage,
            license=self.INFO.license,
            citation=self.INFO.citation,
        )

    def _split_generators(self, dl_manager):
        from ..audio import AUDIO_EXTENSIONS

        root = corpus_root(self.config.data_dir, self.INFO.name, self.LAYOUT)
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        if not files:
            raise CorpusError(f"{root}: no {self.INFO.name} audio files found; expected {self.LAYOUT}")
        rows, problems, seen = [], [], {}
        for path in files:
            try:
                row = self.parse(path)
            except CorpusError as err:
                problems.append(str(err))
                continue
            if row["id"] in seen:
                problems.append(f"{path}: same clip as {seen[row['id']]} (id {row['id']})")
                continue
            seen[row["id"]] = path
            rows.append((path, row))
        for path, _ in rows:  # unreadable clips are listed together with misnamed ones
            if problem := clip_problem(path, f"{self.INFO.name} audio"):
                problems.append(problem)
        raise_problems(self.INFO.name, root, problems, f"\nExpected {self.LAYOUT}.")
        if self.config.verify_counts:
            problems = check_counts(
                self.INFO.name, root, Counter(r["speaker"] for _, r in rows), self.EXPECTED_SPEAKERS, "speaker"
            )
            problems += check_counts(
                self.INFO.name, root, Counter(r["label"] for _, r in rows), self.EXPECTED_EMOTIONS, "emotion"
            )
            raise_problems(
                self.INFO.name,
                root,
                problems,
                "\nPass verify_counts=False (--verify_counts false on the command line) to load a subset.",
            )
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"rows": rows})]

    def _generate_examples(self, rows):
        for path, row in rows:
            yield (
                row["id"],
                {
                    **row,
                    "audio": str(path),
                    "label": self.EMOTIONS.index(row["label"]),
                    "duration_s": clip_duration_s(path, f"{self.INFO.name} audio"),
                },
            )

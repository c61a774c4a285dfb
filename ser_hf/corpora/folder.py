"""Bring-your-own corpus: a folder of clips described by a metadata file or by class-named subfolders.

Two layouts, like ``datasets``' ``audiofolder``:

1. A metadata file (``metadata.csv``, ``metadata.jsonl``, or the file given as ``metadata``) with one row per
   clip: ``path`` or ``file_name`` (relative to the metadata file's folder, or absolute), ``label``, and
   optionally ``speaker``, ``gender`` and any other columns (kept as strings)::

       file_name,label,speaker,gender,session
       clips/a_001.wav,angry,spk01,female,1

2. No metadata file: every immediate subfolder is a class, every audio file below it a clip of that class
   (``data_dir/angry/x.wav``). Speakers are then unknown.

Speakers drive speaker-independent folds (:mod:`ser_hf.folds`). When they are unknown each clip is its own
"speaker", so any split is an utterance-level random split; the builder warns, and so does
:func:`ser_hf.folds.make_split`.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import datasets

from ..audio import AUDIO_EXTENSIONS
from .common import CorpusError, check_headers, clip_duration_s, corpus_root, ser_features

logger = logging.getLogger(__name__)

METADATA_NAMES = ("metadata.csv", "metadata.jsonl")
UNKNOWN_SPEAKER_PREFIX = "utt:"
"""Speaker id prefix given to clips whose speaker is unknown (one pseudo-speaker per clip)."""

_CORE = ("path", "file_name", "label", "speaker", "gender")


@dataclass
class FolderConfig(datasets.BuilderConfig):
    """BuilderConfig for a user's folder of clips.

    Args:
        metadata: metadata file (CSV or JSONL), absolute or relative to ``data_dir``; ``None`` looks for
            ``metadata.csv`` / ``metadata.jsonl`` in ``data_dir`` and falls back to class subfolders.
        labels: class names in the order of the ``label`` ClassLabel; ``None`` uses the sorted labels found.
            A row whose label is not listed is an error.
        label_aliases: ``{label as written: label to use}``, applied to every row before anything else (exact
            match first, then case-insensitive), e.g. ``{"Angry": "angry"}`` merges a differently written label.
    """

    metadata: str | None = None
    labels: list[str] | None = None
    label_aliases: dict | None = None
    fingerprint: str | None = None  # set by load_corpus from the rows, so edits to the data rebuild the cache


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at position {err.start}); save the metadata "
            "as UTF-8 (e.g. re-export it, or `iconv -f latin1 -t utf-8`)"
        ) from None


def _read_rows(path: Path) -> list[dict]:
    if path.suffix.lower() == ".csv":
        import io

        reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
        columns = [(c or "").strip() for c in (reader.fieldnames or [])]
    elif path.suffix.lower() in (".jsonl", ".json"):
        rows = []
        for n, line in enumerate(_read_text(path).splitlines(), 1):
            if line.strip():
                try:
                    rows.append({k: "" if v is None else str(v) for k, v in json.loads(line).items()})
                except json.JSONDecodeError as err:
                    raise CorpusError(f"{path}: line {n} is not valid JSON ({err.msg})") from err
        columns = sorted({k for r in rows for k in r})
    else:
        raise CorpusError(f"{path}: metadata must be .csv or .jsonl, got {path.suffix or 'no extension'}")
    if not rows:
        raise CorpusError(f"{path}: metadata file has no rows")
    missing = [c for c in ("label",) if c not in columns]
    if not ({"path", "file_name"} & set(columns)):
        missing.insert(0, "path or file_name")
    if missing:
        raise CorpusError(f"{path}: missing column(s) {', '.join(missing)}; found columns {columns}")
    return rows


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _is_audio(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and p.suffix.lower() in AUDIO_EXTENSIONS


def check_label_variants(rows: list[dict], where: str) -> None:
    """Refuse label sets that hold variants of one label: the same name in another case or with extra spaces
    (``Angry`` beside ``angry``), or a near-identical spelling (``angyr`` beside ``angry``, string similarity
    >= 0.8 by ``difflib``). Each would silently become a class of its own.

    Raises:
        CorpusError: naming both labels, their clip counts and an example file of the rarer one.
    """
    import difflib
    from collections import Counter

    counts = Counter(r["label"] for r in rows)
    example = {}
    for r in rows:
        example.setdefault(r["label"], r["path"])
    labels = sorted(counts, key=lambda x: (-counts[x], x))
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            same = a.strip().lower() == b.strip().lower()
            close = min(len(a), len(b)) >= 4 and difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio() >= 0.8
            if same or close:
                kind = "differ only in case or spacing" if same else "look like one label misspelt"
                raise CorpusError(
                    f"{where}: labels {a!r} ({counts[a]} clips) and {b!r} ({counts[b]} clips, e.g. {example[b]}) "
                    f"{kind}; fix the labels, or map one onto the other: label_aliases={{{b!r}: {a!r}}} "
                    f"(ser-hf evaluate: --label_alias {b.strip()}={a.strip()})"
                )


def read_folder(root: Path, metadata: str | None = None) -> tuple[list[dict], list[str]]:
    """Rows ``{"path", "label", "speaker", "gender", **extra}`` of a folder corpus and its extra column names.

    Raises:
        FileNotFoundError: ``root`` or the metadata file does not exist.
        CorpusError: a missing column, a row without path or label, a listed file that does not exist, a
            duplicate file, or a folder without audio (the message names the file and row).
    """
    root = corpus_root(str(root), "folder corpus", "the folder holding the clips")
    meta = None
    if metadata:
        meta = Path(metadata) if Path(metadata).is_absolute() else root / metadata
        if not meta.is_file():
            raise FileNotFoundError(f"metadata file {meta} does not exist")
    else:
        meta = next((root / n for n in METADATA_NAMES if (root / n).is_file()), None)

    rows: list[dict] = []
    extra: list[str] = []
    if meta is not None:
        for n, row in enumerate(_read_rows(meta), 2 if meta.suffix.lower() == ".csv" else 1):
            where = f"{meta} row {n}"
            rel = row.get("path") or row.get("file_name")
            if not rel:
                raise CorpusError(f"{where}: empty path / file_name")
            if not row.get("label"):
                raise CorpusError(f"{where}: empty label for {rel}")
            path = Path(rel) if Path(rel).is_absolute() else meta.parent / rel
            if not Path(rel).is_absolute() and meta.parent.resolve() not in path.resolve().parents:
                raise CorpusError(
                    f"{where}: relative path {rel!r} leads outside the metadata's folder {meta.parent} (to "
                    f"{path.resolve()}); give an absolute path if the clip really lives there"
                )
            if not path.is_file():
                raise CorpusError(f"{where}: audio file {path} does not exist")
            rows.append(
                {
                    "path": path.resolve(),
                    "label": row["label"],
                    "speaker": row.get("speaker", ""),
                    "gender": row.get("gender", ""),
                    **{k: v for k, v in row.items() if k not in _CORE},
                }
            )
        extra = sorted({k for r in rows for k in r} - {"path", "label", "speaker", "gender"})
    else:
        loose = sorted(p.name for p in root.iterdir() if _is_audio(p))
        if loose:
            logger.warning(
                "folder corpus %s: %d audio file(s) at the top level belong to no class folder and are skipped: %s",
                root,
                len(loose),
                ", ".join(loose[:5]) + (" ..." if len(loose) > 5 else ""),
            )
        for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            clips = sorted(p for p in sub.rglob("*") if _is_audio(p) and not _hidden(p.relative_to(sub)))
            if not clips:
                logger.warning("folder corpus %s: class folder %s holds no audio and is skipped", root, sub.name)
            rows += [{"path": path.resolve(), "label": sub.name, "speaker": "", "gender": ""} for path in clips]
        if not rows:
            raise CorpusError(
                f"{root}: no metadata file ({' or '.join(METADATA_NAMES)}) and no audio files "
                f"({', '.join(AUDIO_EXTENSIONS)}) in class subfolders"
            )
    seen = {}
    for r in rows:
        if r["path"] in seen:
            raise CorpusError(f"{r['path']}: listed twice (labels {seen[r['path']]!r} and {r['label']!r})")
        seen[r["path"]] = r["label"]
    return rows, extra


def folder_fingerprint(root: str | Path, metadata: str | None = None) -> str:
    """A hash of a folder corpus's rows (paths, labels, speakers, extra columns, file sizes and times)."""
    import hashlib

    rows, _ = read_folder(Path(root).expanduser().resolve(), metadata)
    h = hashlib.sha256()
    for r in rows:
        st = r["path"].stat()
        h.update(json.dumps({**r, "path": str(r["path"]), "size": st.st_size, "mtime": st.st_mtime_ns}).encode())
    return h.hexdigest()[:16]


class Folder(datasets.GeneratorBasedBuilder):
    """A user's folder of labelled clips in the ser_hf schema (``id, audio, label, speaker, gender,
    duration_s`` plus the metadata's extra columns as strings); one ``train`` split."""

    BUILDER_CONFIG_CLASS = FolderConfig
    BUILDER_CONFIGS = [FolderConfig(name="default", version=datasets.Version("1.0.0"))]
    DEFAULT_CONFIG_NAME = "default"

    def _rows(self):
        if not hasattr(self, "_cached_rows"):
            root = corpus_root(self.config.data_dir, "folder corpus", "the folder holding the clips")
            rows, extra = read_folder(root, self.config.metadata)
            aliases = dict(self.config.label_aliases or {})
            lowered = {str(k).strip().lower(): v for k, v in aliases.items()}
            for r in rows:
                r["label"] = aliases.get(r["label"], lowered.get(r["label"].strip().lower(), r["label"]))
            self._cached_rows = rows, extra
        return self._cached_rows

    def _label_names(self, rows) -> list[str]:
        found = sorted({r["label"] for r in rows})
        if self.config.labels is None:
            check_label_variants(rows, f"folder corpus {self.config.data_dir}")
            return found
        unknown = [r for r in rows if r["label"] not in self.config.labels]
        if unknown:
            r = unknown[0]
            raise CorpusError(
                f"{r['path']}: label {r['label']!r} is not one of the expected labels {list(self.config.labels)}"
                + (f" ({len(unknown)} clips in all)" if len(unknown) > 1 else "")
            )
        empty = [label for label in self.config.labels if label not in found]
        if empty:
            raise CorpusError(
                f"folder corpus {self.config.data_dir}: no clip has the label(s) {empty} of --labels "
                f"{list(self.config.labels)} (its labels: {found}); a class without clips can never be learnt or "
                "scored: remove it from --labels"
            )
        return list(self.config.labels)

    def _info(self):
        rows, extra = self._rows()
        return datasets.DatasetInfo(
            description=__doc__,
            features=ser_features(self._label_names(rows), {k: datasets.Value("string") for k in extra}),
        )

    def _split_generators(self, dl_manager):
        rows, extra = self._rows()
        unknown = sum(1 for r in rows if not r["speaker"])
        if unknown:
            logger.warning(
                "folder corpus %s: %d of %d clips have no speaker; each is its own pseudo-speaker, so folds are "
                "NOT speaker-independent (add a 'speaker' column to the metadata)",
                self.config.data_dir,
                unknown,
                len(rows),
            )
        root = Path(self.config.data_dir).expanduser().resolve()
        check_headers([r["path"] for r in rows], "a clip of speech audio")
        return [
            datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"rows": rows, "extra": extra, "root": root})
        ]

    def _generate_examples(self, rows, extra, root):
        names = self.info.features["label"].names
        for r in rows:
            path: Path = r["path"]
            duration = clip_duration_s(path, "a clip of speech audio")
            try:
                key = str(path.relative_to(root).with_suffix(""))
            except ValueError:
                key = str(path.with_suffix(""))
            yield (
                key,
                {
                    "id": key,
                    "audio": str(path),
                    "label": names.index(r["label"]),
                    "speaker": r["speaker"] or UNKNOWN_SPEAKER_PREFIX + key,
                    "gender": r["gender"],
                    "duration_s": duration,
                    **{k: r.get(k, "") for k in extra},
                },
            )

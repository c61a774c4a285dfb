"""The Arabic Natural Audio Dataset (ANAD) as a Hugging Face ``datasets`` builder.

Klaylat, Osman, Hamandi & Zantout 2018, "Emotion recognition in Arabic speech", Analog Integrated Circuits
and Signal Processing 96, https://doi.org/10.1007/s10470-018-1142-4; distributed on Kaggle as
``suso172/arabic-natural-audio-dataset`` (a Kaggle account is needed to download it). Natural speech from
Arabic talk-show videos, cut into 1-second segments and labelled happy, surprised or angry.

Layout read here (the Kaggle archive extracted): clips in ``1sec_segmented_part1/`` .. ``part3/`` named
``V<video>_<turn> (<segment>).wav`` or ``V<video>-<turn> (<segment>).wav``; labels in ``ANAD.csv`` with
columns ``name`` (the clip name, with or without ``.wav``), ``Emotion `` (with a trailing space in the
header) and ``Type`` (1 happy, 2 surprised, 3 angry). About 1384 labelled records for about 1420 files: clips
without a label and labels without a clip are skipped and reported by name.

Speakers are not annotated. Adjacent 1-second segments of the same video are near duplicates, so random
splits leak between train and test (which is how published 95-98 % accuracies arise); the ``speaker`` column
therefore holds the **video** id and every fold of :mod:`ser_hf.folds` is video- (call-) independent.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import datasets

from .common import CorpusError, CorpusInfo, check_headers, clip_duration_s, corpus_root, ser_features

logger = logging.getLogger(__name__)

EMOTIONS = ["happy", "surprised", "angry"]
"""ANAD classes in the order of its ``Type`` codes 1, 2, 3."""
_TEXT = {"happy": "happy", "surprised": "surprised", "surprise": "surprised", "angry": "angry", "anger": "angry"}
_NAME = re.compile(r"^V(\d+)[_-](\d+)\s*\((\d+)\)$")
CITATION = """@article{klaylat2018emotion,
  title={Emotion recognition in Arabic speech},
  author={Klaylat, Samira and Osman, Ziad and Hamandi, Lama and Zantout, Rached},
  journal={Analog Integrated Circuits and Signal Processing}, volume={96}, number={2}, pages={337--351},
  year={2018}}"""

INFO = CorpusInfo(
    name="ANAD",
    dataset_id="anad",
    languages=("ar",),
    license="as published on its Kaggle page (suso172/arabic-natural-audio-dataset)",
    license_id="other",
    terms="Use ANAD under the terms published on its Kaggle page (read them there before any use) and cite the "
    "paper below.",
    citation=CITATION,
    homepage="https://www.kaggle.com/datasets/suso172/arabic-natural-audio-dataset",
    description="ANAD (Klaylat et al. 2018): 1-second segments of Arabic talk-show videos labelled happy, "
    "surprised or angry.",
    language_note="Only Arabic talk-show speech in 1-second segments; speakers are not annotated.",
    speech="natural speech cut into 1-second segments from Arabic talk-show videos; longer utterances, read "
    "speech and telephone audio are out of domain.",
    protocols={"folds": "5 video-independent folds (GroupKFold over talk-show videos)"},
    manual_steps=(
        "ANAD (Klaylat et al. 2018) is distributed on Kaggle and needs a Kaggle account: sign in at "
        "https://www.kaggle.com, open https://www.kaggle.com/datasets/suso172/arabic-natural-audio-dataset and "
        "download the archive (or: kaggle datasets download suso172/arabic-natural-audio-dataset), then unzip it.",
        "ANAD.csv  1sec_segmented_part1/V1_1 (1).wav ...  1sec_segmented_part2/  1sec_segmented_part3/",
    ),
)
"""The corpus facts the rest of ser_hf reads (cards, folds, comparison reports)."""


def parse_anad_name(stem: str) -> tuple[str, int, int]:
    """``("V4", turn, segment)`` from a clip name such as ``V4-2 (1)`` or ``V1_1 (12)``.

    Raises:
        CorpusError: the name does not follow the pattern.
    """
    m = _NAME.match(stem.strip())
    if not m:
        raise CorpusError(f"{stem!r} is not an ANAD clip name like 'V1_1 (1)' or 'V4-2 (1)'")
    return f"V{int(m.group(1))}", int(m.group(2)), int(m.group(3))


def read_anad_labels(path: Path) -> dict[str, str]:
    """``{clip stem: emotion}`` from ``ANAD.csv`` (header names are stripped: ``Emotion `` has a trailing space).

    Raises:
        FileNotFoundError: no ``ANAD.csv``.
        CorpusError: a missing column, an unknown ``Type`` code, a ``Type`` that disagrees with the ``Emotion``
            text, or one clip labelled twice (naming the row).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ANAD label file not found (ANAD.csv from the Kaggle archive)")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [(c or "").strip() for c in reader.fieldnames or []]
        missing = [c for c in ("name", "Type") if c not in columns]
        if missing:
            raise CorpusError(f"{path}: missing column(s) {', '.join(missing)}; found {columns}")
        labels: dict[str, str] = {}
        for n, raw in enumerate(reader, 2):
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            stem = row["name"].removesuffix(".wav").removesuffix(".WAV").strip()
            code = row["Type"].removesuffix(".0")
            if code not in ("1", "2", "3"):
                raise CorpusError(f"{path} row {n}: Type {row['Type']!r} is not 1 (happy), 2 (surprised) or 3 (angry)")
            emotion = EMOTIONS[int(code) - 1]
            text = _TEXT.get(row.get("Emotion", "").lower())
            if text is not None and text != emotion:
                raise CorpusError(
                    f"{path} row {n}: Type {row['Type']} ({emotion}) disagrees with Emotion {row['Emotion']!r}"
                )
            if stem in labels and labels[stem] != emotion:
                raise CorpusError(f"{path} row {n}: {stem!r} labelled {labels[stem]} and {emotion}")
            labels[stem] = emotion
    return labels


@dataclass
class AnadConfig(datasets.BuilderConfig):
    """BuilderConfig for ANAD. ``labels_file``: the label CSV relative to ``data_dir`` (default ``ANAD.csv``)."""

    labels_file: str = "ANAD.csv"
    fingerprint: str | None = None  # set by load_corpus from the folder listing: edits rebuild the cache


class Anad(datasets.GeneratorBasedBuilder):
    """ANAD in the ser_hf schema; ``speaker`` holds the video id (see module docstring); extra columns
    ``video``, ``turn``, ``segment``."""

    BUILDER_CONFIG_CLASS = AnadConfig
    BUILDER_CONFIGS = [AnadConfig(name="default", version=datasets.Version("1.0.0"))]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self):
        extra = {"video": datasets.Value("string"), "turn": datasets.Value("int32"), "segment": datasets.Value("int32")}
        return datasets.DatasetInfo(
            description=__doc__,
            features=ser_features(EMOTIONS, extra),
            homepage="https://www.kaggle.com/datasets/suso172/arabic-natural-audio-dataset",
            citation=CITATION,
        )

    def _split_generators(self, dl_manager):
        root = corpus_root(self.config.data_dir, "ANAD", "the folder holding ANAD.csv and 1sec_segmented_part1..3")
        labels = read_anad_labels(root / self.config.labels_file)
        files = {}
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix.lower() == ".wav":
                if p.stem in files:
                    raise CorpusError(f"{p}: clip name also used by {files[p.stem]}")
                parse_anad_name(p.stem)
                files[p.stem] = p
        if not files:
            raise CorpusError(f"{root}: no ANAD clips (*.wav under 1sec_segmented_part1..3)")
        unlabelled = sorted(set(files) - set(labels))
        orphans = sorted(set(labels) - set(files))
        if unlabelled:
            logger.warning(
                "ANAD: %d clips have no label in %s and are skipped: %s",
                len(unlabelled),
                self.config.labels_file,
                ", ".join(unlabelled),
            )
        if orphans:
            logger.warning("ANAD: %d labels have no clip and are skipped: %s", len(orphans), ", ".join(orphans))
        rows = [(files[s], labels[s]) for s in sorted(set(files) & set(labels))]
        if not rows:
            raise CorpusError(f"{root}: no clip has a label in {self.config.labels_file}")
        self.report = {"unlabelled_clips": unlabelled, "labels_without_clip": orphans}
        check_headers([path for path, _ in rows], "a 1-second ANAD clip")
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"rows": rows})]

    def _generate_examples(self, rows):
        for path, emotion in rows:
            video, turn, segment = parse_anad_name(path.stem)
            yield (
                path.stem,
                {
                    "id": path.stem,
                    "audio": str(path),
                    "label": EMOTIONS.index(emotion),
                    "speaker": video,
                    "gender": "",
                    "duration_s": clip_duration_s(path, "a 1-second ANAD clip"),
                    "video": video,
                    "turn": turn,
                    "segment": segment,
                },
            )

"""RAVDESS as a Hugging Face ``datasets`` builder.

The Ryerson Audio-Visual Database of Emotional Speech and Song (Livingstone & Russo 2018,
https://doi.org/10.1371/journal.pone.0196391; audio at https://zenodo.org/record/1188976, CC BY-NC-SA 4.0).
File names follow the official scheme ``MM-CC-EE-II-SS-RR-AA``: modality (03 = audio-only), vocal channel
(01 = speech, 02 = song), emotion (01 neutral .. 08 surprised), intensity (01 normal, 02 strong; neutral has
no strong), statement (01 "Kids are talking by the door", 02 "Dogs are sitting by the door"), repetition
(01, 02), actor (01..24; odd male, even female).

Reads the official zip layout (``Actor_XX/*.wav``, 48 kHz 16-bit, a few stereo files) and re-encoded copies
with the same stems (for example 16 kHz FLAC) alike.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import datasets

from ..audio import AUDIO_EXTENSIONS
from ..download import download_ravdess
from .common import CorpusError, CorpusInfo, check_headers, clip_duration_s, corpus_root, ser_features

EMOTIONS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
"""The 8 RAVDESS emotions in the official code order 01..08."""

STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
CITATION = """@article{livingstone2018ravdess,
  title={The Ryerson Audio-Visual Database of Emotional Speech and Song (RAVDESS)},
  author={Livingstone, Steven R. and Russo, Frank A.},
  journal={PLoS ONE}, volume={13}, number={5}, pages={e0196391}, year={2018}}"""

PUBLISHED_RESULTS = [
    {
        "system": "EmoBox: Whisper-large-v3, frozen encoder + probe",
        "ua": 0.753,
        "protocol": "same 6 speaker-independent folds (EmoBox)",
        "source": "Ma et al. 2024, EmoBox, https://arxiv.org/abs/2406.07162",
    },
    {
        "system": "EmoBox: wav2vec2-base, frozen encoder + probe",
        "ua": 0.543,
        "protocol": "same 6 speaker-independent folds (EmoBox)",
        "source": "Ma et al. 2024, EmoBox, https://arxiv.org/abs/2406.07162",
    },
    {
        "system": "ResLSTM-SA on MFCC + chroma (46.8 k parameters)",
        "ua": 0.623,
        "protocol": "5 actor-wise folds (UAR 62.3 +- 1.2)",
        "source": "Mak-Sim/ResLSTM-SER",
    },
    {
        "system": "seed 001: MLP on MFCC / chroma / mel means",
        "accuracy": 0.733,
        "protocol": "random utterance split: test speakers also trained on",
        "source": "../shared/seeds/001_ravdess_mlp.md",
    },
    {
        "system": "seed 003: mel-spectrogram CNN",
        "accuracy": 0.60,
        "protocol": "validation accuracy, unspecified split",
        "source": "../shared/seeds/003_ravdess_mel_cnn.md",
    },
    {
        "system": "seed 004: CNN",
        "accuracy": 0.61,
        "protocol": "unspecified split (speakers on both sides)",
        "source": "../shared/seeds/004_ravdess_cnn.md",
    },
]
"""Published / reported RAVDESS speech results, shown beside ours as cited, never as measured here. Only the EmoBox
rows use this toolkit's folds; the seeds' accuracies come from splits where test speakers were also trained on."""


FOLDS = [[f"Actor_{a:02d}" for a in range(4 * k + 1, 4 * k + 5)] for k in range(6)]
"""Test speakers of each fold: EmoBox's 6 folds of 4 consecutive actors (1-4, 5-8, ..., 21-24)."""

INFO = CorpusInfo(
    name="RAVDESS",
    dataset_id="ravdess",
    languages=("en",),
    license="CC BY-NC-SA 4.0",
    license_id="cc-by-nc-sa-4.0",
    terms="CC BY-NC-SA 4.0: non-commercial use only, credit the authors (cite below), and share anything built "
    "from it under the same license (share-alike).",
    citation=CITATION,
    homepage="https://zenodo.org/record/1188976",
    description="RAVDESS speech (Livingstone & Russo 2018): 24 professional actors (12 female, 12 male), "
    "1440 clips of two fixed English sentences in 8 emotions, North American accent; license CC BY-NC-SA "
    "4.0, so this model is shared under the same non-commercial terms.",
    language_note="Only North American English from 24 actors.",
    protocols={
        "folds": "the 6 EmoBox folds of 4 actors (Ma et al. 2024, arXiv:2406.07162); per fold, the 4 test "
        "actors are unseen, 2 actors of the next fold select the checkpoint, the other 18 train",
    },
    published=tuple(PUBLISHED_RESULTS),
    folds=FOLDS,
    download=download_ravdess,
)
"""The corpus facts the rest of ser_hf reads (cards, folds, comparison reports)."""


@dataclass(frozen=True)
class RavdessName:
    """The fields of one RAVDESS file name (all 1-based codes as in the official documentation)."""

    modality: int
    channel: int
    emotion: int
    intensity: int
    statement: int
    repetition: int
    actor: int


def parse_ravdess_name(path: str | Path) -> RavdessName:
    """Parse and validate a RAVDESS file name such as ``03-01-05-02-01-02-12.wav``.

    Raises:
        CorpusError: naming the file, when the stem is not seven two-digit fields, the modality is not 03
            (audio-only), or a field is out of its documented range.
    """
    path = Path(path)
    m = _NAME.match(path.stem)
    if not m:
        raise CorpusError(f"{path}: not a RAVDESS file name; expected seven two-digit fields like 03-01-05-02-01-02-12")
    name = RavdessName(*(int(g) for g in m.groups()))
    checks = [
        ("modality", name.modality, (3,), "03 (audio-only)"),
        ("vocal channel", name.channel, (1, 2), "01 (speech) or 02 (song)"),
        ("emotion", name.emotion, range(1, 9), "01..08"),
        ("intensity", name.intensity, (1, 2), "01 or 02"),
        ("statement", name.statement, (1, 2), "01 or 02"),
        ("repetition", name.repetition, (1, 2), "01 or 02"),
        ("actor", name.actor, range(1, 25), "01..24"),
    ]
    for field, value, valid, expected in checks:
        if value not in valid:
            raise CorpusError(f"{path}: RAVDESS {field} is {value:02d}, expected {expected}")
    if name.emotion == 1 and name.intensity == 2:
        raise CorpusError(f"{path}: RAVDESS neutral (emotion 01) has no strong intensity (02)")
    return name


def ravdess_speaker(actor: int) -> str:
    """Speaker id used in the ``speaker`` column, e.g. ``Actor_07``."""
    return f"Actor_{actor:02d}"


@dataclass
class RavdessConfig(datasets.BuilderConfig):
    """BuilderConfig for RAVDESS.

    Args:
        channel: 1 for speech, 2 for song.
        expected_clips: number of clips the complete corpus has for this channel.
        expected_speakers: number of actors the complete corpus has for this channel.
        verify_counts: raise when the folder does not hold the complete corpus (set ``False`` for subsets).
    """

    channel: int = 1
    expected_clips: int = 1440
    expected_speakers: int = 24
    verify_counts: bool = True
    fingerprint: str | None = None  # set by load_corpus from the folder listing: edits rebuild the cache


class Ravdess(datasets.GeneratorBasedBuilder):
    """RAVDESS speech (default) or song, one ``train`` split holding every clip; folds come from
    :mod:`ser_hf.folds`."""

    BUILDER_CONFIG_CLASS = RavdessConfig
    BUILDER_CONFIGS = [
        RavdessConfig(
            name="speech",
            version=datasets.Version("1.0.0"),
            channel=1,
            expected_clips=1440,
            expected_speakers=24,
            description="RAVDESS audio-only speech, 24 actors x 60 clips",
        ),
        RavdessConfig(
            name="song",
            version=datasets.Version("1.0.0"),
            channel=2,
            expected_clips=1012,
            expected_speakers=23,
            description="RAVDESS audio-only song, 23 actors (no actor 18)",
        ),
    ]
    DEFAULT_CONFIG_NAME = "speech"

    def _info(self):
        return datasets.DatasetInfo(
            description=__doc__,
            features=ser_features(
                EMOTIONS,
                {
                    "intensity": datasets.Value("string"),
                    "statement": datasets.Value("string"),
                    "repetition": datasets.Value("int8"),
                },
            ),
            homepage="https://zenodo.org/record/1188976",
            license="CC BY-NC-SA 4.0",
            citation=CITATION,
        )

    def _split_generators(self, dl_manager):
        root = corpus_root(self.config.data_dir, "RAVDESS", "the folder holding Actor_01 .. Actor_24")
        files = self._collect(root)
        check_headers([path for path, _ in files], "RAVDESS speech audio")
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"files": files})]

    def _collect(self, root: Path) -> list[tuple[Path, RavdessName]]:
        audio = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        if not audio:
            raise CorpusError(f"{root}: no RAVDESS audio files ({', '.join(AUDIO_EXTENSIONS)}) found")
        files, seen = [], {}
        for path in audio:
            name = parse_ravdess_name(path)
            parent = re.fullmatch(r"Actor_(\d{2})", path.parent.name)
            if parent and int(parent.group(1)) != name.actor:
                raise CorpusError(f"{path}: file of actor {name.actor:02d} inside folder {path.parent.name}")
            if name.channel != self.config.channel:
                continue
            if path.stem in seen:
                raise CorpusError(f"{path}: duplicate of {seen[path.stem]} (same RAVDESS stem)")
            seen[path.stem] = path
            files.append((path, name))
        if not files:
            raise CorpusError(f"{root}: no RAVDESS {self.config.name} files (vocal channel {self.config.channel:02d})")
        if self.config.verify_counts:
            self._verify(root, files)
        return files

    def _verify(self, root: Path, files: list[tuple[Path, RavdessName]]) -> None:
        per_actor = Counter(name.actor for _, name in files)
        per_clip = self.config.expected_clips // self.config.expected_speakers
        expected_actors = [a for a in range(1, 25) if not (self.config.channel == 2 and a == 18)]
        problems = [f"{ravdess_speaker(a)} missing" for a in expected_actors if a not in per_actor]
        problems += [
            f"{ravdess_speaker(a)} has {n} clips, expected {per_clip}"
            for a, n in sorted(per_actor.items())
            if n != per_clip
        ]
        if len(files) != self.config.expected_clips or problems:
            raise CorpusError(
                f"{root}: RAVDESS {self.config.name} has {len(files)} clips from {len(per_actor)} actors, expected "
                f"{self.config.expected_clips} from {self.config.expected_speakers}: "
                + "; ".join(problems)
                + ". Pass verify_counts=False (--verify_counts false on the command line) to load a subset."
            )

    def _generate_examples(self, files):
        for path, name in files:
            duration = clip_duration_s(path, "RAVDESS speech audio")
            yield (
                path.stem,
                {
                    "id": path.stem,
                    "audio": str(path),
                    "label": name.emotion - 1,
                    "speaker": ravdess_speaker(name.actor),
                    "gender": "male" if name.actor % 2 else "female",
                    "duration_s": duration,
                    "intensity": "normal" if name.intensity == 1 else "strong",
                    "statement": STATEMENTS[name.statement],
                    "repetition": name.repetition,
                },
            )

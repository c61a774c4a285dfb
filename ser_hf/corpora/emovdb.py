"""EmoV-DB as a Hugging Face ``datasets`` builder.

The Emotional Voices Database (Adigwe, Tits, El Haddad, Ostadabbas & Dutoit 2018, "The Emotional Voices
Database: Towards Controlling the Emotional Expressiveness in Voice Generation Systems",
https://arxiv.org/abs/1806.09514), distributed as openslr resource 115 (https://www.openslr.org/115/), one
archive per speaker and emotion (``bea_Amused.tar.gz``, ...). CMU Arctic sentences read by actors in five
styles: amused, angry, disgusted, neutral, sleepy. Audio: 44.1 kHz mono 64-bit float WAV.

Layout read here (the archives extracted side by side): ``<speaker>_<Emotion>/<style>_<a>-<b>_<NNNN>.wav``,
for example ``bea_Amused/amused_1-15_0001.wav``; the folder gives speaker and emotion, ``NNNN`` is the Arctic
sentence number and ``a-b`` the recording batch. The file-name style must agree with the folder's emotion
(``amused``/``amusement``, ``anger``/``angry``, ``disgust``/``disgusted``, ``neutral``,
``sleepiness``/``sleepy``).

English speakers and the expected clip counts of the public release: bea (female) 1787, jenie (female) 1790,
josh (male) 863, sam (male) 2453; 6893 in all. Folds are leave-one-speaker-out (:mod:`ser_hf.folds`): each
speaker is tested once, the next speaker selects the checkpoint. The ``french`` config reads the male French
actor (any speaker folder that is not an English one).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import datasets

from ..download import download_emovdb
from .common import CorpusError, CorpusInfo, check_headers, clip_duration_s, corpus_root, ser_features

EMOTIONS = ["amused", "angry", "disgusted", "neutral", "sleepy"]
"""EmoV-DB styles, in the order of the ``label`` ClassLabel."""

SPEAKERS = {"bea": "female", "jenie": "female", "josh": "male", "sam": "male"}
FOLDS = [["bea"], ["jenie"], ["josh"], ["sam"]]
"""Test speaker of each fold: leave one speaker out; the next speaker validates."""
EXPECTED_CLIPS = {"bea": 1787, "jenie": 1790, "josh": 863, "sam": 2453}
_FOLDER_EMOTION = {
    "amused": "amused",
    "angry": "angry",
    "disgusted": "disgusted",
    "neutral": "neutral",
    "sleepy": "sleepy",
}
_FILE_STYLE = {
    "amused": "amused",
    "amusement": "amused",
    "anger": "angry",
    "angry": "angry",
    "disgust": "disgusted",
    "disgusted": "disgusted",
    "neutral": "neutral",
    "sleepiness": "sleepy",
    "sleepy": "sleepy",
}
_FOLDER = re.compile(r"^([a-z]+)_([A-Za-z]+)$")
_NAME = re.compile(r"^([a-z]+)_(\d+-\d+)_(\d{4})$")
CITATION = """@article{adigwe2018emotional,
  title={The Emotional Voices Database: Towards Controlling the Emotional Expressiveness in Voice Generation
         Systems},
  author={Adigwe, Adaeze and Tits, No{\\'e} and El Haddad, Kevin and Ostadabbas, Sarah and Dutoit, Thierry},
  journal={arXiv preprint arXiv:1806.09514}, year={2018}}"""


INFO = CorpusInfo(
    name="EmoV-DB",
    dataset_id="emovdb",
    languages=("en",),
    license="as published with openslr resource 115 (https://www.openslr.org/115/)",
    license_id="other",
    terms="Use EmoV-DB under the terms published with openslr resource 115 (read them there before any use) and "
    "cite the paper below.",
    citation=CITATION,
    homepage="https://www.openslr.org/115/",
    description="EmoV-DB (Adigwe et al. 2018): CMU Arctic sentences read by 4 English speakers (bea, jenie, josh, "
    "sam) in 5 styles (amused, angry, disgusted, neutral, sleepy).",
    language_note="Only English read speech from 4 speakers.",
    protocols={
        "folds": "leave one speaker out over the 4 English speakers; the next speaker selects the checkpoint",
        "speaker_dependent": "EmoBox's random 80 / 10 / 10 utterance split (every speaker on every side; not "
        "speaker-independent)",
    },
    folds=FOLDS,
    download=download_emovdb,
)
"""The corpus facts the rest of ser_hf reads (cards, folds, comparison reports)."""


@dataclass(frozen=True)
class EmovdbClip:
    """One EmoV-DB file: speaker, emotion (one of :data:`EMOTIONS`), Arctic sentence number and batch."""

    path: Path
    speaker: str
    emotion: str
    sentence_id: int
    batch: str


def parse_emovdb_path(path: str | Path, known_speakers: bool = True) -> EmovdbClip:
    """Parse ``<speaker>_<Emotion>/<style>_<a>-<b>_<NNNN>.wav`` (``known_speakers``: require an English one).

    Raises:
        CorpusError: naming the file, when the folder or file name does not follow the layout, the speaker or
            emotion is unknown, or the file's style disagrees with its folder.
    """
    path = Path(path)
    folder = _FOLDER.match(path.parent.name)
    if not folder:
        raise CorpusError(f"{path}: folder {path.parent.name!r} is not <speaker>_<Emotion> (e.g. bea_Amused)")
    speaker, folder_emotion = folder.group(1), folder.group(2).lower()
    if known_speakers and speaker not in SPEAKERS:
        raise CorpusError(f"{path}: speaker {speaker!r} is not one of {', '.join(SPEAKERS)}")
    if folder_emotion not in _FOLDER_EMOTION:
        raise CorpusError(
            f"{path}: emotion {folder.group(2)!r} is not one of Amused, Angry, Disgusted, Neutral, Sleepy"
        )
    name = _NAME.match(path.stem)
    if not name:
        raise CorpusError(f"{path}: file name is not <style>_<a>-<b>_<NNNN> (e.g. amused_1-15_0001)")
    style = _FILE_STYLE.get(name.group(1))
    if style != _FOLDER_EMOTION[folder_emotion]:
        raise CorpusError(f"{path}: file style {name.group(1)!r} disagrees with folder emotion {folder.group(2)!r}")
    return EmovdbClip(path, speaker, style, int(name.group(3)), name.group(2))


@dataclass
class EmovdbConfig(datasets.BuilderConfig):
    """BuilderConfig for EmoV-DB.

    Args:
        speakers: speakers to load (``english``: default the four English speakers).
        verify_counts: require the documented clip count of every loaded speaker (``False`` loads a subset).
        language: ``english`` (bea, jenie, josh, sam) or ``french``: the male French actor of the paper, read
            from every ``<speaker>_<Emotion>`` folder whose speaker is not an English one (the release's name
            and count for him are not known to ser_hf, so his counts are not checked; with one speaker only
            the named ``speaker_dependent`` protocol or evaluation applies).
    """

    speakers: list[str] | None = None
    verify_counts: bool = True
    language: str = "english"
    fingerprint: str | None = None  # set by load_corpus from the folder listing: edits rebuild the cache


class Emovdb(datasets.GeneratorBasedBuilder):
    """EmoV-DB English speakers in the ser_hf schema plus ``sentence_id`` (Arctic sentence) and ``batch``."""

    BUILDER_CONFIG_CLASS = EmovdbConfig
    BUILDER_CONFIGS = [
        EmovdbConfig(name="english", version=datasets.Version("1.0.0"), language="english"),
        EmovdbConfig(name="french", version=datasets.Version("1.0.0"), language="french", verify_counts=False),
    ]
    DEFAULT_CONFIG_NAME = "english"

    def _info(self):
        return datasets.DatasetInfo(
            description=__doc__,
            features=ser_features(
                EMOTIONS, {"sentence_id": datasets.Value("int32"), "batch": datasets.Value("string")}
            ),
            homepage="https://www.openslr.org/115/",
            citation=CITATION,
        )

    def _split_generators(self, dl_manager):
        root = corpus_root(self.config.data_dir, "EmoV-DB", "the folder holding bea_Amused/, ...")
        english = self.config.language == "english"
        wanted = self.config.speakers or (list(SPEAKERS) if english else None)
        unknown = [s for s in wanted or [] if english and s not in SPEAKERS]
        if unknown:
            raise CorpusError(f"EmoV-DB speakers {unknown} are not among {', '.join(SPEAKERS)}")
        files = sorted(p for p in root.rglob("*.wav") if p.is_file())
        clips = [parse_emovdb_path(p, known_speakers=False) for p in files]
        if english:
            clips = [c for c in clips if c.speaker in wanted]
        else:
            clips = [c for c in clips if c.speaker not in SPEAKERS and (wanted is None or c.speaker in wanted)]
        if not clips:
            raise CorpusError(
                f"{root}: no EmoV-DB {self.config.language} clips (<speaker>_<Emotion>/<style>_<a>-<b>_<NNNN>.wav)"
            )
        if english and self.config.verify_counts:
            counts = Counter(c.speaker for c in clips)
            wrong = [
                f"{s} has {counts.get(s, 0)} clips, expected {EXPECTED_CLIPS[s]}"
                for s in wanted
                if counts.get(s, 0) != EXPECTED_CLIPS[s]
            ]
            if wrong:
                raise CorpusError(
                    f"{root}: EmoV-DB "
                    + "; ".join(wrong)
                    + ". Pass verify_counts=False (--verify_counts false on the command line) to load a subset."
                )
        check_headers([c.path for c in clips], "EmoV-DB speech audio")
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"clips": clips, "root": root})]

    def _generate_examples(self, clips, root):
        for c in clips:
            key = f"{c.path.parent.name}/{c.path.stem}"
            yield (
                key,
                {
                    "id": key,
                    "audio": str(c.path),
                    "label": EMOTIONS.index(c.emotion),
                    "speaker": c.speaker,
                    "gender": SPEAKERS.get(c.speaker, "male"),  # the French actor is male (Adigwe et al.)
                    "duration_s": clip_duration_s(c.path, "EmoV-DB speech audio"),
                    "sentence_id": c.sentence_id,
                    "batch": c.batch,
                },
            )

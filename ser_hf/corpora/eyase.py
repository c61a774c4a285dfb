"""EYASE, the Egyptian Arabic Semi-natural Emotion speech database, as a Hugging Face ``datasets`` builder.

Abdel-Hamid 2020, "Egyptian Arabic speech emotion recognition using prosodic, spectral and wavelet features",
Speech Communication 122, 19-30 (https://doi.org/10.1016/j.specom.2020.04.005). Utterances of 3 male and 3
female professional actors cut from an Egyptian TV series; four emotions: angry, happy, neutral, sad. 579 clips,
44.1 kHz mono 16-bit WAV as distributed (22.5 min). No license is stated with the corpus: research use only.

Layout read here (as distributed, and 16 kHz FLAC copies with the same stems): ``Female01..03/``,
``Male01..03/``, files ``fm01_ang (1).wav`` ... ``ml03_sad (30).wav`` = gender (``fm``/``ml``) + a number, the
emotion (``ang|hap|neu|sad``) and a running number in parentheses. **The folder names the speaker**: the files
in ``Female02/`` are also named ``fm01_*``, so the file prefix cannot tell Female01 from Female02. The prefix's
gender must agree with the folder's.

Documented counts: Female01-03 80 clips each (20 per emotion), Male01 117 (sad 27), Male02 110 (happy 20),
Male03 112 (happy 22); angry 150, happy 132, neutral 150, sad 147.

Protocol (:mod:`ser_hf.folds`): leave one speaker out, 6 folds in the order Female01, Male01, Female02, Male02,
Female03, Male03, and the next fold's speaker validates, so every fold tests one speaker, validates on one of
the other gender and trains on the remaining four (two male, two female). Two-speaker test folds (one male, one
female) were considered and not used: with two validation speakers they leave two speakers to train on.
EmoBox (Ma et al. 2024) has no EYASE folds.
"""

from __future__ import annotations

import re
from pathlib import Path

import datasets

from .common import ClipsBuilder, CorpusError, CorpusInfo

EMOTIONS = ["angry", "happy", "neutral", "sad"]
"""EYASE emotions (canonical names of :mod:`ser_hf.labels`), in ``ClassLabel`` order."""
CODES = {"ang": "angry", "hap": "happy", "neu": "neutral", "sad": "sad"}
SPEAKERS = {"Female01": 80, "Female02": 80, "Female03": 80, "Male01": 117, "Male02": 110, "Male03": 112}
"""Speaker folder -> documented clip count."""
EMOTION_COUNTS = {"angry": 150, "happy": 132, "neutral": 150, "sad": 147}
FOLDS = [["Female01"], ["Male01"], ["Female02"], ["Male02"], ["Female03"], ["Male03"]]
"""Test speakers of each fold (leave one speaker out, genders alternating; the next fold validates)."""
_NAME = re.compile(r"^(fm|ml)(\d{2})_(ang|hap|neu|sad) \((\d+)\)$")
_FOLDER = re.compile(r"^(Female|Male)0[1-3]$")

INFO = CorpusInfo(
    name="EYASE",
    dataset_id="eyase",
    languages=("ar",),
    license="research use only (no license is stated with the corpus)",
    license_id="other",
    terms="No license is stated with EYASE: use it for research only, cite the paper below, and do not "
    "redistribute the audio; models trained on it inherit these terms.",
    citation="""@article{abdelhamid2020egyptian,
  title={Egyptian Arabic speech emotion recognition using prosodic, spectral and wavelet features},
  author={Abdel-Hamid, Lamiaa},
  journal={Speech Communication}, volume={122}, pages={19--30}, year={2020}}""",
    homepage="https://doi.org/10.1016/j.specom.2020.04.005",
    description="EYASE (Abdel-Hamid 2020): semi-natural Egyptian Arabic speech of 3 male and 3 female professional "
    "actors cut from a TV series, 579 clips in 4 emotions (angry, happy, neutral, sad); research use only.",
    language_note="Only Egyptian Arabic from 6 actors of one TV series.",
    speech="semi-natural speech: lines of 6 professional actors cut from one Egyptian TV series, with its "
    "production sound. Everyday conversation, telephone audio, other Arabic dialects and non-actors are out of "
    "domain; expect lower accuracy there.",
    protocols={
        "folds": "leave one speaker out over the 6 actors (genders alternating); per fold 1 speaker is tested, the "
        "next fold's speaker (the other gender) selects the checkpoint, 4 train",
    },
    published=(
        {
            "system": "SVM on a spectral + prosodic feature set (bilingual Arabic-English study)",
            "accuracy": 0.64,
            "protocol": "10-fold cross-validation over utterances (speakers not held out)",
            "source": "Arabic English Speech Emotion Recognition System (2023), scribd.com/document/645753044",
        },
        {
            "system": "CNN-Transformer on MFCC + spectrogram",
            "accuracy": 0.981,
            "protocol": "EYASE and BAVED, split as described in the paper (not stated speaker-independent)",
            "source": "Gheffar & Silarbi 2026, arXiv:2606.10278",
        },
    ),
    folds=FOLDS,
    manual_steps=(
        "EYASE (Abdel-Hamid 2020, Speech Communication 122) is not openly hosted: ask the corpus author (see the "
        "paper, https://doi.org/10.1016/j.specom.2020.04.005) for a copy, for research use only.",
        "Female01/fm01_ang (1).wav ...  Female02/fm01_ang (1).wav ... (Female02's files carry the fm01_ prefix)\n"
        "       Female03/  Male01/  Male02/  Male03/",
    ),
)


class Eyase(ClipsBuilder):
    """EYASE in the ser_hf schema (one ``train`` split of every clip); extra column ``number`` (the running number
    in the file name)."""

    INFO = INFO
    EMOTIONS = EMOTIONS
    EXTRA = {"number": datasets.Value("int32")}
    LAYOUT = "Female01..03/ and Male01..03/ holding files like 'fm01_ang (1).wav'"
    EXPECTED_SPEAKERS = SPEAKERS
    EXPECTED_EMOTIONS = EMOTION_COUNTS

    def parse(self, path: Path) -> dict:
        folder = path.parent.name
        if not _FOLDER.match(folder):
            raise CorpusError(f"{path}: not inside a speaker folder Female01..03 / Male01..03 (found {folder!r})")
        m = _NAME.match(path.stem)
        if not m:
            raise CorpusError(f"{path}: not an EYASE clip name; expected e.g. 'fm01_ang (1)' (gender, emotion, number)")
        gender = "female" if folder.startswith("Female") else "male"
        if (m.group(1) == "fm") != (gender == "female"):
            raise CorpusError(f"{path}: file prefix {m.group(1)!r} disagrees with the speaker folder {folder}")
        number = int(m.group(4))
        return {
            "id": f"{folder}_{m.group(3)}_{number:03d}",
            "label": CODES[m.group(3)],
            "speaker": folder,
            "gender": gender,
            "number": number,
        }

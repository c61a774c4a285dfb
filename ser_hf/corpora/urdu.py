"""URDU-Dataset, natural emotional Urdu speech from talk shows, as a Hugging Face ``datasets`` builder.

Latif, Qayyum, Usman & Qadir 2018, "Cross Lingual Speech Emotion Recognition: Urdu vs. Western Languages",
FIT 2018 (arXiv:1812.10411); https://github.com/siddiquelatif/URDU-Dataset. Clips cut from Urdu TV talk shows,
four emotions, 100 clips each (400 clips, 16.6 min, 44.1 kHz mono 16-bit WAV). The distribution's README says:
research use only.

Layout read here (as distributed, and 16 kHz FLAC copies with the same stems): ``Angry/ Happy/ Neutral/ Sad/``,
files ``SGX_FYY_EZZ.wav``: ``S`` + gender (``M``/``F``) + speaker number = **the speaker**, ``F`` + the speaker's
file number, the emotion letter (``A|H|N|S``, which must agree with the folder) + a running number. The README
claims 38 speakers; the names hold 29 distinct speaker tokens (SM1-SM7, SM17-SM27, SF1-SF11), very unequal in
size (2 to 80 clips), and emotion is nearly confounded with speaker: 26 of the 29 speakers have one emotion only,
and SM5 alone holds 72 of the 100 neutral clips.

Protocol (:mod:`ser_hf.folds`): 4 speaker-disjoint folds, assigned by hand so that every fold's test side holds
all four emotions and about 100 clips (test clips angry / happy / neutral / sad):

====  ==========================================================  =====================  ======
fold  test speakers (the first two validate the previous fold)    A / H / N / S          clips
====  ==========================================================  =====================  ======
0     SM3 SM23 SF10 SM17 SM5                                      2 / 12 / 80 / 8        102
1     SF9 SF6 SM24 SM4                                            48 / 14 / 4 / 38       104
2     SF7 SM21 SM26 SM7 SM2 SM25                                  28 / 34 / 4 / 42       108
3     SM6 SM20 SM1 SM22 SF1 SF5 SF4 SF2 SM19 SM18 SF8 SF3 SM27    22 / 40 / 12 / 12      86
      SF11
====  ==========================================================  =====================  ======

The validation speakers of fold K are the first ``num_val_speakers`` (default 2) of fold K+1, listed first
because they are small and span several emotions (10-24 clips). The folds cannot be balanced per emotion: fold 0
tests 80 of the 100 neutral clips (SM5 holds 72), so its model trains on 20 neutral clips, and fold 0 tests
2 angry clips (SM3), since only four speakers are angry. Report UA (every class weighs the same) and read per-fold
scores with that in mind. EmoBox (Ma et al. 2024) publishes one URDU split, a random 80 / 20 split of utterances
in which speakers (SM5 among them) sit on both sides: it is not speaker-independent, so it is not used here and its
numbers do not compare with these folds.
"""

from __future__ import annotations

import re
from pathlib import Path

import datasets

from ..download import download_urdu
from .common import ClipsBuilder, CorpusError, CorpusInfo

EMOTIONS = ["angry", "happy", "neutral", "sad"]
"""URDU emotions (canonical names of :mod:`ser_hf.labels`), in ``ClassLabel`` order."""
CODES = {"A": "angry", "H": "happy", "N": "neutral", "S": "sad"}
FOLDERS = {"Angry": "A", "Happy": "H", "Neutral": "N", "Sad": "S"}
# fmt: off
SPEAKERS = {
    "SM5": 80, "SM4": 48, "SM25": 40, "SM24": 38, "SM2": 28, "SM7": 28, "SM1": 22, "SF6": 14, "SM6": 14, "SM3": 12,
    "SF1": 12, "SM20": 10, "SF7": 6, "SM23": 6, "SM21": 4, "SF9": 4, "SF5": 4, "SF4": 4, "SM27": 4, "SF11": 4,
    "SM22": 2, "SF2": 2, "SM19": 2, "SM18": 2, "SF8": 2, "SF3": 2, "SM17": 2, "SM26": 2, "SF10": 2,
}
"""Speaker token -> clip count in the public release (29 tokens, 400 clips)."""
FOLDS = [
    ["SM3", "SM23", "SF10", "SM17", "SM5"],
    ["SF9", "SF6", "SM24", "SM4"],
    ["SF7", "SM21", "SM26", "SM7", "SM2", "SM25"],
    ["SM6", "SM20", "SM1", "SM22", "SF1", "SF5", "SF4", "SF2", "SM19", "SM18", "SF8", "SF3", "SM27", "SF11"],
]
"""Test speakers of each fold, in the order that makes the first two the next-fold validation speakers."""
# fmt: on
EMOTION_COUNTS = {e: 100 for e in EMOTIONS}
_NAME = re.compile(r"^S([MF])(\d+)_F(\d+)_([AHNS])(\d+)$")

INFO = CorpusInfo(
    name="URDU",
    dataset_id="urdu",
    languages=("ur",),
    license="research use only (the distribution's README)",
    license_id="other",
    terms="The URDU-Dataset README allows research use only: no commercial use; cite the paper below. Models "
    "trained on it inherit these terms.",
    citation="""@inproceedings{latif2018cross,
  title={Cross Lingual Speech Emotion Recognition: Urdu vs. Western Languages},
  author={Latif, Siddique and Qayyum, Adnan and Usman, Muhammad and Qadir, Junaid},
  booktitle={International Conference on Frontiers of Information Technology (FIT)}, pages={88--93}, year={2018}}""",
    homepage="https://github.com/siddiquelatif/URDU-Dataset",
    description="URDU-Dataset (Latif et al. 2018): natural emotional speech cut from Urdu TV talk shows, 400 clips "
    "of 29 speaker tokens in 4 emotions (angry, happy, neutral, sad); research use only.",
    language_note="Only Urdu talk-show speech; speakers are very unequal and most have one emotion only.",
    speech="natural speech cut from Urdu TV talk shows. Most of its speakers show one emotion only, so a model "
    "can learn voices as much as emotions; telephone audio, read speech and other languages are out of domain.",
    protocols={
        "folds": "4 speaker-disjoint folds assigned by hand so that every test side holds all 4 emotions (about "
        "100 clips each; fold 0 tests 80 of the 100 neutral clips); 2 small speakers of the next fold validate",
    },
    folds=FOLDS,
    download=download_urdu,
)


class Urdu(ClipsBuilder):
    """URDU in the ser_hf schema (one ``train`` split of every clip); extra column ``file_number`` (``FYY``)."""

    INFO = INFO
    EMOTIONS = EMOTIONS
    EXTRA = {"file_number": datasets.Value("int32")}
    LAYOUT = "Angry/ Happy/ Neutral/ Sad/ holding files like 'SM1_F10_A010.wav'"
    EXPECTED_SPEAKERS = SPEAKERS
    EXPECTED_EMOTIONS = EMOTION_COUNTS

    def parse(self, path: Path) -> dict:
        m = _NAME.match(path.stem)
        if not m:
            raise CorpusError(f"{path}: not an URDU clip name; expected SGX_FYY_EZZ like 'SM1_F10_A010'")
        gender, number, file_number, code, _ = m.groups()
        folder = FOLDERS.get(path.parent.name)
        if folder is None:
            raise CorpusError(f"{path}: not inside an emotion folder ({', '.join(FOLDERS)})")
        if folder != code:
            raise CorpusError(f"{path}: emotion letter {code} disagrees with the folder {path.parent.name}")
        return {
            "id": path.stem,
            "label": CODES[code],
            "speaker": f"S{gender}{int(number)}",
            "gender": "male" if gender == "M" else "female",
            "file_number": int(file_number),
        }

"""ASED, the Amharic Speech Emotion Dataset, as a Hugging Face ``datasets`` builder.

Retta, Almekhlafi, Sutcliffe, Mhamed, Ali & Feng 2023, "A New Amharic Speech Emotion Dataset and Classification
Benchmark", ACM Transactions on Asian and Low-Resource Language Information Processing
(https://doi.org/10.1145/3529759, arXiv:2201.02710); https://github.com/wgwangang/ASED_V1. Four dialects (Gojjam,
Wollo, Shewa, Gonder). 65 speakers (25 female, 40 male) recorded
25 emotion-specific and 2 common sentences, twice each, in their own Amharic dialect; eight judges kept 2,474 of
the 4,550 recordings. Five emotions: neutral, fearful, happy, sad, angry. 16 kHz mono WAV (2.1 h). The
repository states no license (its README calls the corpus freely available to researchers).

Layout read here (the repository as published): ``01Neutral/ 02Fearful/ 03Happy/ 04Sad/ 05Angry/``, files
``xN-ss-rr-gg-pp.wav``: emotion letter and folder number (``n1 f2 h3 s4 a5``, which must agree with the folder;
one file writes the letter in capitals), sentence, repetition, gender code (``01`` female, ``02`` male) and
**the speaker** ``pp``. Five files carry a gender code that contradicts every other file of their speaker
(speakers 09, 15, 21, 23 and 25, all female); the speaker field alone is the identity, and its gender is the one
of the speaker's other files (:data:`FEMALE`). Speakers are very uneven (4 to 70 clips).

The text is a cue: sentences 03-07 of each folder are that emotion's own sentences (never spoken in another
emotion; 1,850 clips), only sentences 01-02 (the two common sentences, 624 clips) are spoken in every emotion. A
model can recognise the sentence instead of the emotion, which speaker-independent folds do not prevent: report
the common sentences' scores beside the whole test side's.

Protocol (:mod:`ser_hf.folds`): 5 speaker folds of 13 speakers, each with 5 female and 8 male speakers and
488-500 test clips (assigned greedily from the clip counts, by gender). The first two speakers of each fold, its
largest female and largest male speaker (136-140 clips), validate the fold before it, so every fold trains on 50
speakers. EmoBox (Ma et al. 2024) has no ASED folds.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import datasets

from ..download import download_github
from .common import ClipsBuilder, CorpusError, CorpusInfo

EMOTIONS = ["neutral", "fearful", "happy", "sad", "angry"]
"""ASED emotions (canonical names of :mod:`ser_hf.labels`), in ``ClassLabel`` order (the folder order)."""
FOLDERS = {"01Neutral": "n1", "02Fearful": "f2", "03Happy": "h3", "04Sad": "s4", "05Angry": "a5"}
"""Emotion folder -> the letter and number its file names start with."""
LETTERS = {"n": "neutral", "f": "fearful", "h": "happy", "s": "sad", "a": "angry"}
FEMALE = frozenset(("01 03 05 07 09 11 13 15 17 19 21 23 25 27 29 31 33 35 37 43 47 48 49 58 62").split())
"""The 25 female speakers (by their files' majority gender code; the other 40 are male)."""
_COUNTS = (
    "70 20 20 70 66 70 12 8 16 66 58 12 70 16 12 8 12 16 16 54 58 8 50 12 66 66 66 66 66 66 54 20 12 4 8 12 12 16 "
    "70 4 70 8 8 8 50 8 18 50 6 70 50 50 50 50 50 50 50 50 50 50 50 50 50 50 50"
)
SPEAKERS = {f"{k + 1:02d}": int(n) for k, n in enumerate(_COUNTS.split())}
"""Speaker ``01`` .. ``65`` -> clip count of the published release."""
EMOTION_COUNTS = {"neutral": 522, "fearful": 510, "happy": 486, "sad": 470, "angry": 486}
FOLDS = [
    ["01", "50", "15", "16", "20", "31", "34", "38", "43", "52", "57", "58", "64"],
    ["13", "39", "07", "12", "22", "23", "28", "35", "40", "48", "53", "59", "65"],
    ["29", "06", "05", "08", "18", "19", "26", "37", "46", "47", "51", "56", "63"],
    ["25", "41", "02", "11", "17", "24", "30", "32", "42", "49", "54", "60", "62"],
    ["27", "04", "03", "09", "10", "14", "21", "33", "36", "44", "45", "55", "61"],
]
"""Test speakers of each fold (5 female + 8 male; the first two validate the fold before)."""
_NAME = re.compile(r"^([nfhsa])(\d)-(\d{2})-(\d{2})-(0[12])-(\d{2})$", re.IGNORECASE)

SOURCE = ("wgwangang/ASED_V1", "3feb6d25ec1a88d770594c88d2c4e6cae5c0d046", "ased", "")
"""Where ``ser-hf download ased`` fetches the corpus: GitHub repository, the commit whose counts were checked, the
registry name and the corpus folder inside the repository (:func:`ser_hf.download.download_github`)."""

INFO = CorpusInfo(
    name="ASED",
    dataset_id="ased",
    languages=("am",),
    license="none stated (the repository calls it freely available to researchers)",
    license_id="other",
    terms="No license is stated with ASED: use it for research, cite the paper below and do not redistribute "
    "the audio; models trained on it inherit these terms.",
    citation="""@article{retta2023ased,
  title={A New Amharic Speech Emotion Dataset and Classification Benchmark},
  author={Retta, Ephrem Afele and Almekhlafi, Eiad and Sutcliffe, Richard and Mhamed, Mustafa and Ali, Haider
    and Feng, Jun},
  journal={ACM Transactions on Asian and Low-Resource Language Information Processing}, year={2023},
  doi={10.1145/3529759}}""",
    homepage="https://github.com/wgwangang/ASED_V1",
    description="ASED (Retta et al. 2023): Amharic speech of 65 speakers (25 female, 40 male), 2,474 judged "
    "clips in 5 emotions (neutral, fearful, happy, sad, angry); no license stated.",
    language_note="Only Amharic, read sentences, recorded by the speakers themselves.",
    speech="read sentences in 5 acted emotions, recorded by 65 volunteer speakers in places of their choosing and "
    "kept only when judges agreed on the emotion. Spontaneous conversation and other languages are out of "
    "domain; expect lower accuracy there.",
    published=(
        {
            "system": "VGGb (4-layer VGG) on MFCC",
            "accuracy": 0.9073,
            "protocol": "cross-validation over utterances (speakers on both sides)",
            "source": "Retta et al. 2023, arXiv:2201.02710",
        },
    ),
    protocols={
        "folds": "5 speaker folds of 13 speakers (5 female, 8 male, about 495 clips); the next fold's largest "
        "female and male speakers select the checkpoint, 50 speakers train",
    },
    folds=FOLDS,
    download=functools.partial(download_github, *SOURCE),
    caveat="25 of its 27 sentences are spoken in one emotion only, so the text gives the label away: scores over "
    "all clips overstate emotion recognition; benchmarks/ased_common_sentences.py scores the 2 common sentences alone.",
)


class Ased(ClipsBuilder):
    """ASED in the ser_hf schema (one ``train`` split of every clip); extra columns ``sentence`` and
    ``repetition`` (from the file name)."""

    INFO = INFO
    EMOTIONS = EMOTIONS
    EXTRA = {"sentence": datasets.Value("int32"), "repetition": datasets.Value("int32")}
    LAYOUT = "01Neutral/ 02Fearful/ 03Happy/ 04Sad/ 05Angry/ holding files like 'n1-01-01-02-05.wav'"
    EXPECTED_SPEAKERS = SPEAKERS
    EXPECTED_EMOTIONS = EMOTION_COUNTS

    def parse(self, path: Path) -> dict:
        folder = path.parent.name
        if folder not in FOLDERS:
            raise CorpusError(f"{path}: not inside an emotion folder ({', '.join(FOLDERS)}; found {folder!r})")
        m = _NAME.match(path.stem)
        if not m:
            raise CorpusError(f"{path}: not an ASED clip name; expected xN-ss-rr-gg-pp, e.g. 'n1-01-01-02-05'")
        code = (m.group(1).lower(), m.group(2))
        if "".join(code) != FOLDERS[folder]:
            raise CorpusError(f"{path}: emotion code {''.join(code)!r} disagrees with its folder {folder}")
        speaker = m.group(6)
        return {
            "id": "-".join([code[0] + code[1], m.group(3), m.group(4), m.group(5), speaker]),
            "label": LETTERS[code[0]],
            "speaker": speaker,
            "gender": "female" if speaker in FEMALE else "male",
            "sentence": int(m.group(3)),
            "repetition": int(m.group(4)),
        }

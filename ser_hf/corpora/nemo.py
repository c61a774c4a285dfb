"""nEMO, a dataset of emotional speech in Polish, as a Hugging Face ``datasets`` builder.

Christop 2024, "nEMO: Dataset of Emotional Speech in Polish", LREC-COLING 2024
(https://aclanthology.org/2024.lrec-main.1059/); https://github.com/amu-cai/nEMO (also the Hub dataset
``amu-cai/nEMO``). Nine actors (4 female, 5 male) read phonetically balanced Polish sentences in six emotional
states: anger, fear, happiness, neutral, sadness, surprise. 4,481 clips, 24 kHz mono 16-bit WAV (3.1 h).
License: CC BY-NC-SA 4.0.

Layout read here (the repository as published): ``samples/SPK_emotion_N.wav`` (speaker id ``EB0``, ``IC0``, ...,
the emotion as a word, ``N`` a running number), beside ``data.tsv`` (file, emotion, transcripts, speaker, gender,
age), whose speaker and emotion agree with the file names; the names are what is read. Speakers are uneven: MP0
recorded 256 clips, MK0 450, the others 538-540.

Protocol (:mod:`ser_hf.folds`): leave one speaker out, 9 folds with genders alternating (EB0, WR0, KD0, KS0, IC0,
TP0, MK0, SM0, MP0); the next fold's speaker validates, 7 train. Every speaker has all six emotions, so every
test side scores all six classes. EmoBox (Ma et al. 2024) has no nEMO folds.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import datasets

from ..download import download_github
from .common import ClipsBuilder, CorpusError, CorpusInfo

EMOTIONS = ["neutral", "happy", "sad", "angry", "fearful", "surprised"]
"""nEMO emotions (canonical names of :mod:`ser_hf.labels`), in ``ClassLabel`` order."""
WORDS = {
    "anger": "angry",
    "fear": "fearful",
    "happiness": "happy",
    "neutral": "neutral",
    "sadness": "sad",
    "surprised": "surprised",
}
"""Emotion word of the file names -> canonical emotion."""
SPEAKERS = {
    "EB0": 539, "IC0": 540, "KD0": 540, "MK0": 450, "KS0": 540, "MP0": 256, "SM0": 538, "TP0": 539, "WR0": 539,
}  # fmt: skip
"""Speaker -> clip count of the published release (``data.tsv``)."""
GENDER = {"EB0": "female", "IC0": "female", "KD0": "female", "MK0": "female"} | dict.fromkeys(
    ("KS0", "MP0", "SM0", "TP0", "WR0"), "male"
)
"""Speaker -> gender, from ``data.tsv``."""
EMOTION_COUNTS = {"neutral": 809, "happy": 749, "sad": 769, "angry": 749, "fearful": 736, "surprised": 669}
FOLDS = [["EB0"], ["WR0"], ["KD0"], ["KS0"], ["IC0"], ["TP0"], ["MK0"], ["SM0"], ["MP0"]]
"""Test speaker of each fold (leave one speaker out, genders alternating; the next fold's speaker validates)."""
_NAME = re.compile(r"^([A-Z]{2}\d)_([a-z]+)_(\d+)$")

SOURCE = ("amu-cai/nEMO", "66de9999a8f2f605eb5f64841790aa5cb0877782", "nemo", "")
"""Where ``ser-hf download nemo`` fetches the corpus: GitHub repository, the commit whose counts were checked, the
registry name and the corpus folder inside the repository (:func:`ser_hf.download.download_github`)."""

INFO = CorpusInfo(
    name="nEMO",
    dataset_id="amu-cai/nEMO",
    languages=("pl",),
    license="CC BY-NC-SA 4.0",
    license_id="cc-by-nc-sa-4.0",
    terms="CC BY-NC-SA 4.0: non-commercial use only, with attribution; models trained on it should be shared "
    "under the same terms.",
    citation="""@inproceedings{christop-2024-nemo-dataset,
  title={n{EMO}: Dataset of Emotional Speech in {P}olish},
  author={Christop, Iwona},
  booktitle={Proceedings of the 2024 Joint International Conference on Computational Linguistics, Language
    Resources and Evaluation (LREC-COLING 2024)}, address={Torino, Italia}, year={2024},
  url={https://aclanthology.org/2024.lrec-main.1059/}}""",
    homepage="https://github.com/amu-cai/nEMO",
    description="nEMO (Christop 2024): 9 Polish actors (4 female, 5 male), 4,481 clips in 6 emotional states "
    "(anger, fear, happiness, neutral, sadness, surprise); CC BY-NC-SA 4.0.",
    language_note="Only Polish from 9 actors reading fixed sentences.",
    protocols={
        "folds": "leave one speaker out over the 9 actors (genders alternating); per fold 1 speaker is tested, the "
        "next fold's speaker selects the checkpoint, 7 train",
    },
    folds=FOLDS,
    download=functools.partial(download_github, *SOURCE),
)


class Nemo(ClipsBuilder):
    """nEMO in the ser_hf schema (one ``train`` split of every clip); extra column ``number`` (the running number
    in the file name)."""

    INFO = INFO
    EMOTIONS = EMOTIONS
    EXTRA = {"number": datasets.Value("int32")}
    LAYOUT = "samples/ holding files like 'EB0_anger_1.wav' (speaker, emotion word, number), beside data.tsv"
    EXPECTED_SPEAKERS = SPEAKERS
    EXPECTED_EMOTIONS = EMOTION_COUNTS

    def parse(self, path: Path) -> dict:
        m = _NAME.match(path.stem)
        if not m or m.group(2) not in WORDS:
            raise CorpusError(
                f"{path}: not an nEMO clip name; expected SPEAKER_EMOTION_N, e.g. 'EB0_anger_1' (emotion one of "
                f"{', '.join(WORDS)})"
            )
        speaker = m.group(1)
        if speaker not in GENDER:
            raise CorpusError(f"{path}: speaker {speaker!r} is not one of nEMO's 9 ({', '.join(GENDER)})")
        return {
            "id": path.stem,
            "label": WORDS[m.group(2)],
            "speaker": speaker,
            "gender": GENDER[speaker],
            "number": int(m.group(3)),
        }

"""EMOVO, an Italian emotional speech corpus, as a Hugging Face ``datasets`` builder.

Costantini, Iaderola, Paoloni & Todisco 2014, "EMOVO Corpus: an Italian Emotional Speech Database", LREC 2014
(http://www.lrec-conf.org/proceedings/lrec2014/pdf/591_Paper.pdf). 3 male and 3 female actors, 14 sentences,
7 emotions: 588 clips (30.6 min). No license is stated with the corpus: research use only.

Layout read here (as distributed, and 16 kHz FLAC copies with the same stems): ``f1 f2 f3 m1 m2 m3/``, files
``EMO-SPK-SENT.wav`` such as ``rab-f1-b1.wav``. Emotion codes (Italian): ``neu`` neutral, ``gio`` joy (happy),
``rab`` anger, ``pau`` fear, ``tri`` sadness, ``dis`` disgust, ``sor`` surprise. Sentences ``b1-b3``,
``d1-d2``, ``l1-l4``, ``n1-n5`` (short, questions, long, nonsense). 84 clips per emotion, 98 per actor.

**Decoding**: the original files are 48 kHz stereo from two spaced microphones, about 0.5 ms apart (17-27
samples at 48 kHz). Averaging the two channels comb-filters the speech (first notch near 1 kHz), so this corpus
decodes the first channel only (:attr:`CorpusInfo.decode_channel` ``= 0``, applied by every ser_hf reader of
the corpus).

Protocol (:mod:`ser_hf.folds`): EmoBox's 6 speaker folds (Ma et al. 2024, "EmoBox: Multilingual Multi-corpus
Speech Emotion Recognition Toolkit and Benchmark", Interspeech 2024, arXiv:2406.07162; its ``data/emovo``
metadata): one actor per fold in the order f2, m3, m2, f3, f1, m1; the next fold's actor validates, the other
four train.
"""

from __future__ import annotations

import re
from pathlib import Path

import datasets

from .common import ClipsBuilder, CorpusError, CorpusInfo

EMOTIONS = ["neutral", "happy", "angry", "fearful", "sad", "disgust", "surprised"]
"""EMOVO emotions (canonical names of :mod:`ser_hf.labels`), in ``ClassLabel`` order."""
CODES = {
    "neu": "neutral",
    "gio": "happy",
    "rab": "angry",
    "pau": "fearful",
    "tri": "sad",
    "dis": "disgust",
    "sor": "surprised",
}
"""Italian emotion code of the file names -> canonical emotion."""
SENTENCES = ("b1", "b2", "b3", "d1", "d2", "l1", "l2", "l3", "l4", "n1", "n2", "n3", "n4", "n5")
SPEAKERS = {s: 98 for s in ("f1", "f2", "f3", "m1", "m2", "m3")}
EMOTION_COUNTS = {e: 84 for e in EMOTIONS}
FOLDS = [["f2"], ["m3"], ["m2"], ["f3"], ["f1"], ["m1"]]
"""Test speakers of each fold, EmoBox's order (fold_1 .. fold_6 of its ``data/emovo``)."""
_NAME = re.compile(r"^([a-z]{3})-([fm][1-3])-([bdln]\d)$")

INFO = CorpusInfo(
    name="EMOVO",
    dataset_id="emovo",
    languages=("it",),
    license="research use only (no license is stated with the corpus)",
    license_id="other",
    terms="No license is stated with EMOVO: use it for research only, cite the paper below, and do not "
    "redistribute the audio; models trained on it inherit these terms.",
    citation="""@inproceedings{costantini2014emovo,
  title={EMOVO Corpus: an Italian Emotional Speech Database},
  author={Costantini, Giovanni and Iaderola, Iacopo and Paoloni, Andrea and Todisco, Massimiliano},
  booktitle={Proceedings of LREC}, pages={3501--3504}, year={2014}}""",
    homepage="http://voice.fub.it/activities/corpora/emovo/index.html",
    description="EMOVO (Costantini et al. 2014): 3 male and 3 female Italian actors, 14 sentences in 7 emotions "
    "(neutral, joy, anger, fear, sadness, disgust, surprise), 588 clips; research use only.",
    language_note="Only Italian from 6 actors reading 14 sentences.",
    protocols={
        "folds": "EmoBox's 6 speaker folds (Ma et al. 2024, arXiv:2406.07162), one actor per fold; the next fold's "
        "actor selects the checkpoint, 4 train",
    },
    decode_channel=0,
    published=(
        {
            "system": "HuMP-CAT (HuBERT + MFCC + prosody, cross-attention), trained on IEMOCAP and fine-tuned on "
            "part of EMOVO",
            "accuracy": 0.7948,
            "protocol": "transfer with a portion of EMOVO used for fine-tuning, split as in the paper",
            "source": "arXiv:2501.10408",
        },
    ),
    folds=FOLDS,
    manual_steps=(
        "EMOVO (Costantini et al. 2014, LREC) is distributed by its authors (Fondazione Ugo Bordoni, "
        "http://voice.fub.it/activities/corpora/emovo/index.html): request or download it there, for research use.",
        "f1/rab-f1-b1.wav ...  f2/  f3/  m1/  m2/  m3/   (48 kHz stereo: ser_hf decodes the first channel)",
    ),
)


class Emovo(ClipsBuilder):
    """EMOVO in the ser_hf schema (one ``train`` split of every clip); extra column ``sentence`` (``b1`` .. ``n5``)."""

    INFO = INFO
    EMOTIONS = EMOTIONS
    EXTRA = {"sentence": datasets.Value("string")}
    LAYOUT = "actor folders f1 f2 f3 m1 m2 m3 holding files like 'rab-f1-b1.wav'"
    EXPECTED_SPEAKERS = SPEAKERS
    EXPECTED_EMOTIONS = EMOTION_COUNTS

    def parse(self, path: Path) -> dict:
        m = _NAME.match(path.stem.lower())
        if not m or m.group(1) not in CODES or m.group(3) not in SENTENCES:
            raise CorpusError(
                f"{path}: not an EMOVO clip name; expected EMO-SPK-SENT like 'rab-f1-b1' with EMO one of "
                f"{', '.join(CODES)} and SENT one of {', '.join(SENTENCES)}"
            )
        emotion, speaker, sentence = m.groups()
        folder = path.parent.name.lower()
        if re.fullmatch(r"[fm][1-3]", folder) and folder != speaker:
            raise CorpusError(f"{path}: clip of actor {speaker} inside the folder of actor {folder}")
        return {
            "id": f"{emotion}-{speaker}-{sentence}",
            "label": CODES[emotion],
            "speaker": speaker,
            "gender": "female" if speaker[0] == "f" else "male",
            "sentence": sentence,
        }

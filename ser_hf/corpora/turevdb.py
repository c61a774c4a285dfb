"""TurEV-DB, the Turkish Emotion-Voice Database, as a Hugging Face ``datasets`` builder.

Canpolat, Ormanoğlu & Zeyrek 2020, "Turkish Emotion Voice Database (TurEV-DB)", SLTU-CCURL 2020, pages 368-375;
https://github.com/Xeonen/TurEV-DB. Six actors speak single Turkish words in four emotions: angry, calm, happy,
sad. 1,735 clips, 44.1 kHz mono WAV (28 min). License: the repository's README says CC BY-NC-ND 4.0 (its LICENSE
file says GPL-3.0); the README's, the more restrictive, is the one this module records.

Layout read here: the repository's ``Sound Source/`` folder, ``Angry/ Calm/ Happy/ Sad/``, files
``SPEAKER_CODE_WORD.wav``: the speaker (``1157``, ``1234``, ``1358``, ``1984``, ``6783``, ``7895``), the Turkish
emotion code (``kz`` kızgın = angry, ``sk`` sakin = calm, ``mt`` mutlu = happy, ``hl`` hüzünlü = sad, which must
agree with the folder) and the word spoken. The rest of the repository (spectrograms, filtered copies, CSVs, model
outputs) is not corpus audio: point ``data_dir`` at ``Sound Source``. The speakers' genders are not published
(the ``gender`` column is empty).

Speakers are uneven: 1157 has only angry (77) and sad (73) clips, 7895 only 29 happy ones (and 80 calm), the
other four 82 of each emotion.

Protocol (:mod:`ser_hf.folds`): leave one speaker out, 6 folds (1234, 1358, 1984, 6783, 7895, 1157); the next
fold's speaker validates, 4 train. UA is the mean recall over the classes a test side has
(:func:`ser_hf.metrics.compute_ser_metrics`), so fold 5 (speaker 1157) is scored on angry and sad only and its UA
does not compare with the other folds'; the mean over folds and the pooled speaker bootstrap of ``ser-hf compare``
weigh it as one fold. Fold 4's checkpoint is selected on 1157's two classes. EmoBox (Ma et al. 2024) has no
TurEV-DB folds.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import datasets

from ..download import download_github
from .common import ClipsBuilder, CorpusError, CorpusInfo

EMOTIONS = ["calm", "happy", "sad", "angry"]
"""TurEV-DB emotions (canonical names of :mod:`ser_hf.labels`), in ``ClassLabel`` order."""
CODES = {"kz": "angry", "sk": "calm", "mt": "happy", "hl": "sad"}
"""Turkish emotion code of the file names -> canonical emotion."""
FOLDER_OF = {"angry": "Angry", "calm": "Calm", "happy": "Happy", "sad": "Sad"}
SPEAKERS = {"1157": 150, "1234": 328, "1358": 328, "1984": 328, "6783": 328, "7895": 273}
"""Speaker -> clip count of the published release."""
EMOTION_COUNTS = {"angry": 487, "calm": 408, "happy": 357, "sad": 483}
FOLDS = [["1234"], ["1358"], ["1984"], ["6783"], ["7895"], ["1157"]]
"""Test speaker of each fold (leave one speaker out; the next fold's speaker validates)."""
_NAME = re.compile(r"^(\d{4})_(kz|sk|mt|hl)_(.+)$")

SOURCE = ("Xeonen/TurEV-DB", "be9873eccbc40538acbeb5e67c718bda96763cf3", "turevdb", "Sound Source")
"""Where ``ser-hf download turevdb`` fetches the corpus: GitHub repository, the commit whose counts were checked, the
registry name and the corpus folder inside the repository (:func:`ser_hf.download.download_github`)."""

INFO = CorpusInfo(
    name="TurEV-DB",
    dataset_id="turevdb",
    languages=("tr",),
    license="CC BY-NC-ND 4.0 (the repository's README; its LICENSE file says GPL-3.0)",
    license_id="cc-by-nc-nd-4.0",
    terms="CC BY-NC-ND 4.0: non-commercial use only, with attribution, and no derivatives of the corpus may be "
    "shared; whether a trained model is a derivative is for its publisher to judge.",
    citation="""@inproceedings{canpolat2020turkish,
  title={Turkish Emotion Voice Database ({TurEV-DB})},
  author={Canpolat, Salih Firat and Ormano{\\u{g}}lu, Zuhal and Zeyrek, Deniz},
  booktitle={Proceedings of the 1st Joint Workshop on Spoken Language Technologies for Under-resourced languages
    (SLTU) and Collaboration and Computing for Under-Resourced Languages (CCURL)},
  pages={368--375}, year={2020}}""",
    homepage="https://github.com/Xeonen/TurEV-DB",
    description="TurEV-DB (Canpolat et al. 2020): single Turkish words spoken by 6 actors in 4 emotions (angry, "
    "calm, happy, sad), 1,735 clips; CC BY-NC-ND 4.0.",
    language_note="Only single Turkish words from 6 actors.",
    speech="single words spoken in acted emotions by 6 actors, about a second each. Sentences, conversation and "
    "other languages are out of domain; expect lower accuracy there.",
    protocols={
        "folds": "leave one speaker out over the 6 actors; per fold 1 speaker is tested, the next fold's speaker "
        "selects the checkpoint, 4 train (speaker 1157 has only angry and sad clips)",
    },
    folds=FOLDS,
    download=functools.partial(download_github, *SOURCE),
)


class Turevdb(ClipsBuilder):
    """TurEV-DB in the ser_hf schema (one ``train`` split of every clip); extra column ``word`` (the word spoken,
    from the file name)."""

    INFO = INFO
    EMOTIONS = EMOTIONS
    EXTRA = {"word": datasets.Value("string")}
    LAYOUT = "the repository's 'Sound Source' folder: Angry/ Calm/ Happy/ Sad/ holding files like '1234_kz_acik.wav'"
    EXPECTED_SPEAKERS = SPEAKERS
    EXPECTED_EMOTIONS = EMOTION_COUNTS

    def parse(self, path: Path) -> dict:
        m = _NAME.match(path.stem)
        if not m:
            raise CorpusError(f"{path}: not a TurEV-DB clip name; expected SPEAKER_CODE_WORD, e.g. '1234_kz_acik'")
        label = CODES[m.group(2)]
        if path.parent.name != FOLDER_OF[label]:
            raise CorpusError(
                f"{path}: emotion code {m.group(2)!r} ({label}) disagrees with its folder {path.parent.name!r}"
            )
        return {"id": path.stem, "label": label, "speaker": m.group(1), "gender": "", "word": m.group(3)}

"""The evaluation report: one checkpoint scored on one corpus, as a typed record with its own files.

An evaluation report folder (``<run>/eval_<corpus>_<scope>/`` by default) holds

- ``evaluation.json``: :class:`EvaluationReport` (the scores and what was scored, how, and how fast);
- ``predictions.jsonl``: one line per scored clip (``id``, ``speaker``, ``reference``, ``prediction``,
  ``probabilities`` over the scored labels), read by :func:`read_predictions`;
- ``confusion_matrix.png``.

Written by :func:`ser_hf.evaluation.evaluate_checkpoint` (and by :mod:`ser_hf.classic` for its own folds); read
by ``ser-hf compare`` and ``ser-hf cross-corpus``. The training run's own record is a different thing
(:class:`ser_hf.run.RunRecord`, ``metrics.json`` in the run folder). Report folders written before this record
existed hold the same content as ``metrics.json``; :meth:`EvaluationReport.load` reads them too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .folder import ReportFolder

EVALUATION_FILE = "evaluation.json"
LEGACY_EVALUATION_FILE = "metrics.json"  # report folders written before EVALUATION_FILE
PREDICTIONS_FILE = "predictions.jsonl"


@dataclass
class EvaluationReport:
    """What one evaluation measured.

    Attributes:
        wa, ua, macro_f1: accuracy, unweighted average recall and macro-F1 over the scored labels
            (:func:`ser_hf.metrics.compute_ser_metrics`).
        per_class_recall, per_class_precision, per_class_f1, support: per scored label, in ``label_names`` order.
        confusion_matrix: ``(num_labels, num_labels)``, rows the reference, columns the prediction.
        label_names: the labels scored (those the model and the corpus share, in the model's order).
        model: the checkpoint (folder or hub id). corpus / corpus_config / data_dir: what it was scored on.
        scope: ``test`` (the checkpoint's own test speakers of that corpus), ``all`` (every clip) or ``fold<K>``.
        num_clips: clips scored; speakers: the speakers scored.
        per_speaker / per_gender: UA per speaker / gender.
        inference: ``wall_s``, ``audio_s``, ``rtf`` (wall seconds per second of audio), ``device``, ``threads``,
            ``batch_size`` (:func:`ser_hf.evaluation.inference_timing`).
        preprocessing: :func:`ser_hf.models.summary.describe_preprocessing` of the checkpoint's feature extractor.
        shared_labels / dropped_model_labels / dropped_corpus_labels: the label plan (:mod:`ser_hf.labels`).
        clips_dropped_for_labels: clips in scope whose label the model cannot predict (not scored).
        leakage: the leakage guard's result (``checked``, ``seen_speakers``).
        trained_on: the checkpoint's training split (``corpus``, ``protocol``, ``fold``), ``None`` without one.
        data_fingerprint: :func:`ser_hf.data.clip_list_fingerprint` of the corpus as loaded from ``data_dir``;
            checkpoint_fingerprint: :func:`ser_hf.evaluation.checkpoint_fingerprint` of the model scored. A stored
            report is reused only when both still match (``None``: written before they were stored).
        output_dir: the report folder (set when written or read; not stored in the file).
        extra: keys this version does not know (kept and written back).
    """

    wa: float
    ua: float
    macro_f1: float
    label_names: list[str]
    confusion_matrix: list[list[int]]
    per_class_recall: list[float] = field(default_factory=list)
    per_class_precision: list[float] = field(default_factory=list)
    per_class_f1: list[float] = field(default_factory=list)
    support: list[int] = field(default_factory=list)
    model: str | None = None
    corpus: str | None = None
    corpus_config: str | None = None
    data_dir: str | None = None
    scope: str | None = None
    num_clips: int | None = None
    speakers: list[str] = field(default_factory=list)
    per_speaker: dict = field(default_factory=dict)
    per_gender: dict = field(default_factory=dict)
    inference: dict | None = None
    preprocessing: dict | None = None
    shared_labels: list[str] | None = None
    dropped_model_labels: list[str] = field(default_factory=list)
    dropped_corpus_labels: list[str] = field(default_factory=list)
    clips_dropped_for_labels: int = 0
    leakage: dict | None = None
    trained_on: dict | None = None
    data_fingerprint: str | None = None
    checkpoint_fingerprint: str | None = None
    output_dir: str | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> EvaluationReport:
        """Build from the JSON object; keys this version does not know go to ``extra``.

        Raises:
            ValueError: a required field (``wa``, ``ua``, ``macro_f1``, ``label_names``, ``confusion_matrix``) is
                missing (named).
        """
        data = dict(data)
        names = {f.name for f in fields(cls)} - {"extra", "output_dir"}
        missing = [n for n in ("wa", "ua", "macro_f1", "label_names", "confusion_matrix") if n not in data]
        if missing:
            raise ValueError(f"evaluation report without {missing}")
        known = {k: data.pop(k) for k in list(data) if k in names}
        data.pop("output_dir", None)
        return cls(**known, extra=data)

    def to_dict(self) -> dict:
        """The ``evaluation.json`` content (``output_dir`` left out: the file's own folder)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("extra", "output_dir")}
        return {**out, **self.extra}

    def save(self, folder: str | Path) -> None:
        """Write ``evaluation.json`` into ``folder`` (created).

        Raises:
            FileExistsError: ``folder`` already holds a report (reports are never replaced).
        """
        folder = Path(folder)
        if is_report_dir(folder):
            raise FileExistsError(f"{folder} already holds an evaluation report; pass another --output_dir")
        ReportFolder(folder, (EVALUATION_FILE,)).write_json(EVALUATION_FILE, self.to_dict())
        self.output_dir = str(folder)

    @classmethod
    def load(cls, folder: str | Path) -> EvaluationReport:
        """Read the report of ``folder`` (``evaluation.json``, or ``metrics.json`` of an older report folder).

        Raises:
            FileNotFoundError: ``folder`` holds no report (named). ValueError: the file is not a report (named).
        """
        folder = Path(folder)
        path = next((folder / n for n in (EVALUATION_FILE, LEGACY_EVALUATION_FILE) if (folder / n).is_file()), None)
        if path is None:
            raise FileNotFoundError(f"{folder}: no evaluation report ({EVALUATION_FILE})")
        try:
            report = cls.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, ValueError) as err:
            raise ValueError(f"{path}: not an evaluation report ({err})") from err
        report.output_dir = str(folder)
        return report


def is_report_dir(folder: str | Path) -> bool:
    """Whether ``folder`` holds an evaluation report (either file name)."""
    return any((Path(folder) / n).is_file() for n in (EVALUATION_FILE, LEGACY_EVALUATION_FILE))


def read_predictions(folder: str | Path) -> list[dict]:
    """The per-clip lines of a report folder's ``predictions.jsonl`` (id, speaker, reference, prediction,
    probabilities)."""
    lines = (Path(folder) / PREDICTIONS_FILE).read_text().splitlines()
    return [json.loads(line) for line in lines if line]

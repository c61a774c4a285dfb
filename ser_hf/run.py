"""The run record: one typed description of a finished training run, written by training and read by evaluation,
comparison, publishing and inference.

A run directory holds the checkpoint (``config.json``, ``model.safetensors``, ``preprocessor_config.json``: the
feature extractor, which *is* the clip preprocessing) and the record, serialised to two files:

- ``metrics.json``: the whole record. Its top level keeps the test scores (``wa``, ``ua``, ``macro_f1``, per-class
  lists, ``confusion_matrix``) for people and scripts that read the file directly; ``format_version`` 2 marks the
  records written by :class:`RunRecord`.
- ``split.json``: the split alone (corpus, protocol, fold, speakers per side), which the leakage guard also
  fetches from hub repos.

Runs written before the record (no ``format_version``) still load: their preprocessing is read from the old
``split.json`` (``extra.trim_db``, ``extra.max_eval_duration_s``) and :attr:`RunRecord.legacy` is set; see
:func:`ser_hf.inference.load_classifier` for how such checkpoints are run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # folds pulls in datasets / scikit-learn: imported on use, so inference stays light
    from .folds import SplitDefinition

FORMAT_VERSION = 2
METRICS_FILE = "metrics.json"
SPLIT_FILE = "split.json"
SCORE_KEYS = ("wa", "ua", "macro_f1")
_TEST_KEYS = (
    "wa",
    "ua",
    "macro_f1",
    "per_class_recall",
    "per_class_precision",
    "per_class_f1",
    "support",
    "confusion_matrix",
    "per_corpus",
)


class RunRecordError(ValueError):
    """A run directory lacks its record or holds an unreadable one (the message names the file)."""


@dataclass
class RunRecord:
    """What a run was and what it measured.

    Args:
        split: the speaker sides (:class:`ser_hf.folds.SplitDefinition`).
        label_names: class names in the model's label order.
        test: test-side scores from :func:`ser_hf.metrics.compute_ser_metrics` (``wa``, ``ua``, ``macro_f1``,
            per-class lists, ``confusion_matrix``; ``per_corpus``: ``{corpus: {wa, ua, macro_f1, clips}}`` when the
            test side spans several corpora), computed on the saved checkpoint through
            :func:`ser_hf.data.featurize`, as a ``pipeline()`` user runs it.
        preprocessing: the checkpoint's clip preprocessing, from
            :func:`ser_hf.models.summary.describe_preprocessing` (its definition is the saved feature extractor).
        model: :func:`ser_hf.models.summary.describe_model` (family, model type, base model, LoRA settings).
        parameters: :func:`ser_hf.models.summary.count_parameters`.
        training: training settings (epochs, learning rate, batch size, seed, crops, augmentation, ...).
        runtime: measured facts of the run (``train_wall_time_s``, ``device``, ``threads``, ``world_size``,
            ``best_checkpoint``, ``best_validation``, ``validation`` (the shipped checkpoint's validation scores),
            ``select_best_by``, ``export_max_abs_logit_diff``).
        recipe: every setting that changes the weights (:func:`ser_hf.training.recipe_of`), which
            ``--resume_folds`` compares; empty for runs written before it was recorded.
        legacy: read from a run written before this record existed.
    """

    split: SplitDefinition
    label_names: list[str]
    test: dict
    preprocessing: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    runtime: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)
    legacy: bool = False

    @property
    def ua(self) -> float:
        return float(self.test["ua"])

    @property
    def wa(self) -> float:
        return float(self.test["wa"])

    @property
    def macro_f1(self) -> float:
        return float(self.test["macro_f1"])

    @property
    def validation_ua(self) -> float | None:
        """Validation UA of the checkpoint that ships (what chooses a fold or a system: never the test side)."""
        return validation_ua(self.runtime)

    @property
    def family(self) -> str:
        return self.model.get("family", "mel_cnn")

    def to_dict(self) -> dict:
        """The ``metrics.json`` content: test scores at the top level, then the other parts by name."""
        return {
            **self.test,
            "format_version": FORMAT_VERSION,
            "label_names": self.label_names,
            "split": asdict(self.split),
            "preprocessing": self.preprocessing,
            "model": self.model,
            "parameters": self.parameters,
            "training": self.training,
            "runtime": self.runtime,
            **({"recipe": self.recipe} if self.recipe else {}),
        }

    def save(self, run_dir: str | Path) -> None:
        """Write ``split.json``, then ``metrics.json`` (under a temporary name, renamed when complete) into
        ``run_dir``: ``metrics.json`` is what marks a run finished."""
        run_dir = Path(run_dir)
        self.split.save(run_dir / SPLIT_FILE)
        partial = run_dir / (METRICS_FILE + ".partial")  # renamed when complete: a cut write is never a finished run
        partial.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        partial.replace(run_dir / METRICS_FILE)

    @classmethod
    def load(cls, run_dir: str | Path) -> RunRecord:
        """Read the record of a run directory (current or legacy format).

        Raises:
            RunRecordError: ``metrics.json`` or ``split.json`` is missing or not the JSON of a run (named).
        """
        from .folds import SplitDefinition

        run_dir = Path(run_dir)
        data = _read_json(run_dir / METRICS_FILE)
        if "split" in data:
            split = SplitDefinition(**data["split"])
        else:
            split = SplitDefinition.load(_existing(run_dir / SPLIT_FILE))
        missing = [k for k in SCORE_KEYS if k not in data]
        if missing:
            raise RunRecordError(f"{run_dir / METRICS_FILE}: no test scores {missing}; is this a finished ser_hf run?")
        test = {k: data[k] for k in _TEST_KEYS if k in data}
        if data.get("format_version", 1) >= FORMAT_VERSION:
            return cls(
                split=split,
                label_names=list(data["label_names"]),
                test=test,
                preprocessing=data.get("preprocessing", {}),
                model=data.get("model", {}),
                parameters=data.get("parameters", {}),
                training=data.get("training", {}),
                runtime=data.get("runtime", {}),
                recipe=data.get("recipe", {}),
            )
        # legacy (format 1): preprocessing rode in split.json's extra; run facts sat at the top level
        extra = split.extra
        runtime_keys = (
            "train_wall_time_s",
            "train_runtime_s",
            "best_checkpoint",
            "best_validation",
            "select_best_by",
            "device",
            "world_size",
            "export_max_abs_logit_diff",
        )
        return cls(
            split=split,
            label_names=list(data.get("label_names", [])),
            test=test,
            preprocessing={
                "sampling_rate": extra.get("sampling_rate"),
                "trim_db": extra.get("trim_db"),
                "center_crop_s": extra.get("max_eval_duration_s"),
            },
            model=data.get("model", {"family": "mel_cnn"}),
            parameters=data.get("parameters", {}),
            training=data.get("training", {}),
            runtime={k: data[k] for k in runtime_keys if k in data},
            legacy=True,
        )


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a finished run (``metrics.json`` and ``split.json``)."""
    path = Path(path)
    return (path / METRICS_FILE).is_file() and (path / SPLIT_FILE).is_file()


def is_legacy_run(path: str | Path) -> bool:
    """Whether ``path`` is a run directory written before :class:`RunRecord` (no ``format_version``); cheap."""
    return is_run_dir(path) and _read_json(Path(path) / METRICS_FILE).get("format_version", 1) < FORMAT_VERSION


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise RunRecordError(f"{path}: missing; a finished ser_hf run directory holds metrics.json and split.json")
    return path


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(_existing(path).read_text())
    except json.JSONDecodeError as err:
        raise RunRecordError(f"{path}: not valid JSON ({err}); the run record is damaged") from err
    if not isinstance(data, dict):
        raise RunRecordError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def validation_ua(runtime: dict) -> float | None:
    """Validation UA of a run's shipped checkpoint from its ``runtime`` record: ``validation["ua"]``, or, for runs
    recorded before that field, ``best_validation`` when the checkpoint was selected by UA; ``None`` otherwise."""
    value = (runtime.get("validation") or {}).get("ua")
    if value is None and runtime.get("select_best_by", "ua") == "ua":
        value = runtime.get("best_validation")
    return value

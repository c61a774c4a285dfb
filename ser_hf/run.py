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
from dataclasses import asdict, dataclass, field, fields
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
    "per_language",
)


class RunRecordError(ValueError):
    """A run directory lacks its record or holds an unreadable one (the message names the file)."""


class _Section:
    """A typed section of the record, read from its JSON object and written back unchanged: keys this version does
    not know are kept in ``extra``; a key the file held is written again even when its value is ``null``; a field
    that is ``None`` and was not read from a file is left out."""

    extra: dict
    given: frozenset

    @classmethod
    def from_dict(cls, data: dict | None):
        data = dict(data or {})
        names = {f.name for f in fields(cls)} - {"extra", "given"}
        known = {k: data.pop(k) for k in list(data) if k in names}
        return cls(**known, extra=data, given=frozenset(known))

    def to_dict(self) -> dict:
        out = {
            k: v for k, v in asdict(self).items() if k not in ("extra", "given") and (v is not None or k in self.given)
        }
        return {**out, **self.extra}


@dataclass
class Preprocessing(_Section):
    """What is done to a clip before the model sees it at evaluation time; for neural models its definition is the
    saved feature extractor (``preprocessor_config.json``), described by
    :func:`ser_hf.models.summary.describe_preprocessing`.

    Attributes:
        feature_extractor: the feature extractor's class name.
        sampling_rate: Hz; inputs are mono.
        trim_db: leading / trailing silence trimmed below this many dB under the clip's peak; ``None``: no trim.
        center_crop_s: clips longer than this many seconds keep their centre; ``None``: the whole clip.
        window_s: fixed input window of Whisper-type extractors in seconds (shorter clips padded, longer ones
            keep their first ``window_s`` seconds); ``None``: variable-length inputs.
        features: the classic MLP's feature set (:mod:`ser_hf.classic`), ``None`` for neural models.
        statistic: how the classic MLP pools frames, ``None`` for neural models.
        extra: keys this version does not know.
    """

    feature_extractor: str | None = None
    sampling_rate: int | None = None
    trim_db: float | None = None
    center_crop_s: float | None = None
    window_s: float | None = None
    features: dict | None = None
    statistic: str | None = None
    extra: dict = field(default_factory=dict)
    given: frozenset = field(default=frozenset(), repr=False, compare=False)


@dataclass
class ModelDescription(_Section):
    """What was trained (:func:`ser_hf.models.summary.describe_model`).

    Attributes:
        family: ``mel_cnn``, ``pretrained`` (a transformers backbone) or ``classic_mlp`` (:mod:`ser_hf.classic`).
        model_type: the config's ``model_type`` (``mel_cnn``, ``whisper``, ``wav2vec2``, ...).
        base_model: the hub id or folder a pretrained backbone was loaded from; base_model_id: its hub id when
            loaded from a local copy (``--base_model_id``).
        finetune_mode: ``lora``, ``frozen``, ``full`` or ``top_layers``; weighted_layer_sum: whether the head
            reads a learnt weighted sum of the encoder's layers.
        lora: the LoRA settings applied (``rank``, ``alpha``, ``dropout``, ``target_modules``), ``None`` without.
        adapt_top_layers: cached-layers training: the encoder layers adapted, counted from the top (``0``: a head
            over the frozen encoder's layers); ``None`` for a run that trained every layer the mode says.
        n_mels, channels, normalize, pooling, freq_pooling, dropout: the mel-CNN's architecture
            (:data:`ser_hf.models.summary.MEL_CNN_SETTINGS`); win_length / hop_length: its STFT frames, samples.
        hidden_units: the classic MLP's hidden layer size.
        extra: keys this version does not know.
    """

    family: str = "mel_cnn"
    model_type: str | None = None
    base_model: str | None = None
    base_model_id: str | None = None
    finetune_mode: str | None = None
    weighted_layer_sum: bool | None = None
    lora: dict | None = None
    adapt_top_layers: int | None = None
    n_mels: int | None = None
    channels: list[int] | None = None
    normalize: str | None = None
    pooling: str | None = None
    freq_pooling: str | None = None
    dropout: float | None = None
    win_length: int | None = None
    hop_length: int | None = None
    hidden_units: int | None = None
    extra: dict = field(default_factory=dict)
    given: frozenset = field(default=frozenset(), repr=False, compare=False)

    @property
    def kind(self) -> str:
        """``model_type``, ``mel_cnn`` for records that do not name it."""
        return self.model_type or "mel_cnn"

    @property
    def base_model_name(self) -> str | None:
        """The last path component of ``base_model`` (a local folder's name, or a hub id's repo name)."""
        return Path(str(self.base_model)).name if self.base_model else None


@dataclass
class TrainingSettings(_Section):
    """How it was trained (:func:`ser_hf.training.recipe.training_settings`; the classic MLP's own settings).

    Attributes:
        num_train_epochs, max_steps, learning_rate, weight_decay, lr_scheduler_type, warmup_steps,
            per_device_train_batch_size, gradient_accumulation_steps, seed, bf16, fp16, label_smoothing_factor,
            train_sampling_strategy: the ``transformers.TrainingArguments`` of the run.
        max_duration_s: training crop, seconds; augment: waveform augmentation on; class_weighted_loss: loss
            weighted by inverse class frequency; class_weights_by_corpus: that frequency taken within each corpus;
            select_best_by: ``ua`` / ``wa`` / ``macro_f1`` / ``loss`` / ``last``; ema_decay: decay of the
            weights' exponential moving average (``None``: none); mixup_alpha: mixup's Beta parameter (0: off).
        alpha, batch_size, max_iter: the classic MLP's L2 penalty, batch size and epoch cap.
        extra: keys this version does not know.
    """

    num_train_epochs: float | None = None
    max_steps: int | None = None
    learning_rate: float | None = None
    weight_decay: float | None = None
    lr_scheduler_type: str | None = None
    warmup_steps: float | None = None
    per_device_train_batch_size: int | None = None
    gradient_accumulation_steps: int | None = None
    seed: int | None = None
    bf16: bool | None = None
    fp16: bool | None = None
    label_smoothing_factor: float | None = None
    train_sampling_strategy: str | None = None
    max_duration_s: float | None = None
    augment: bool | None = None
    class_weighted_loss: bool | None = None
    class_weights_by_corpus: bool | None = None
    select_best_by: str | None = None
    ema_decay: float | None = None
    mixup_alpha: float | None = None
    alpha: float | None = None
    batch_size: int | None = None
    max_iter: int | None = None
    extra: dict = field(default_factory=dict)
    given: frozenset = field(default=frozenset(), repr=False, compare=False)


@dataclass
class Runtime(_Section):
    """Measured facts of a training run.

    Attributes:
        train_wall_time_s: wall-clock training time, seconds.
        train_runtime_s: the Trainer's own ``train_runtime``, seconds.
        device: the training device (with the GPU's name), e.g. ``cpu`` or ``cuda:0 (NVIDIA H200)``.
        threads: torch intra-op threads; world_size: processes (GPUs) in the run.
        best_checkpoint: the checkpoint folder chosen by validation, ``None`` with ``select_best_by: last``.
        best_validation: the validation score that chose it (its metric is ``select_best_by``).
        validation: the shipped checkpoint's validation scores (``ua``, ``wa``, ``macro_f1``, ``loss``).
        validation_per_corpus: a multi-corpus run's shipped checkpoint on each corpus's validation speakers,
            ``{corpus: {wa, ua, macro_f1, clips}, "mean": {ua, wa, macro_f1}}`` (each corpus over its own labels;
            ``mean``: unweighted over the corpora); ``None`` for one corpus.
        select_best_by: ``ua``, ``wa``, ``macro_f1``, ``loss`` or ``last`` (no selection).
        train_clips: clips in the training side; epochs_run: epochs trained (fractional when stopped early).
        export_max_abs_logit_diff: largest logit difference between the LoRA adapter model and the merged export.
        resumed_from_epoch: epoch of the checkpoint training continued from (``--resume_from_checkpoint``), ``None``
            for a run trained in one go. ``train_wall_time_s`` then covers the whole training, the processes before
            the interruption included (read from the checkpoint, :data:`ser_hf.training.CHECKPOINT_COMPLETE`),
            and ``resumed_wall_time_s`` the part this process trained; ``train_runtime_s`` is the Trainer's, of
            this process alone.
        resumed_wall_time_s: wall-clock seconds of the resumed process alone, ``None`` for a run trained in one go.
        machine: :func:`ser_hf.environment.machine_facts` (CPU model or GPU name, threads, library versions);
            ``None`` for runs recorded before it was.
        feature_cache: cached-layers training (``--adapt_top_layers``): the hidden-state cache's ``folder``,
            ``bytes`` on disk, ``build_s`` (seconds this run spent filling it), ``rows_built`` / ``rows_reused``,
            ``views``, ``adapt_top_layers`` and ``cut_layer``; ``None`` otherwise.
        extra: keys this version does not know.
    """

    train_wall_time_s: float | None = None
    train_runtime_s: float | None = None
    device: str | None = None
    threads: int | None = None
    world_size: int | None = None
    best_checkpoint: str | None = None
    best_validation: float | None = None
    validation: dict | None = None
    validation_per_corpus: dict | None = None
    select_best_by: str | None = None
    train_clips: int | None = None
    epochs_run: float | None = None
    export_max_abs_logit_diff: float | None = None
    resumed_from_epoch: float | None = None
    resumed_wall_time_s: float | None = None
    machine: dict | None = None
    feature_cache: dict | None = None
    extra: dict = field(default_factory=dict)
    given: frozenset = field(default=frozenset(), repr=False, compare=False)

    @property
    def validation_ua(self) -> float | None:
        """Validation UA of the shipped checkpoint: ``validation["ua"]``, or, for runs recorded before that field,
        ``best_validation`` when the checkpoint was selected by UA; ``None`` otherwise."""
        value = (self.validation or {}).get("ua")
        if value is None and (self.select_best_by or "ua") == "ua":
            value = self.best_validation
        return value


@dataclass
class RunRecord:
    """What a run was and what it measured.

    Args:
        split: the speaker sides (:class:`ser_hf.folds.SplitDefinition`).
        label_names: class names in the model's label order.
        test: test-side scores from :func:`ser_hf.metrics.compute_ser_metrics` (``wa``, ``ua``, ``macro_f1``,
            per-class lists, ``confusion_matrix``; ``per_corpus``: ``{corpus: {wa, ua, macro_f1, clips}}`` and
            ``per_language``: ``{language code: {wa, ua, macro_f1, clips}}`` when the test side spans several
            corpora), computed on the saved checkpoint through :func:`ser_hf.data.featurize`, as a ``pipeline()``
            user runs it.
        preprocessing: the checkpoint's clip preprocessing (:class:`Preprocessing`).
        model: what was trained (:class:`ModelDescription`).
        parameters: :func:`ser_hf.models.summary.count_parameters`.
        training: how it was trained (:class:`TrainingSettings`).
        runtime: measured facts of the run (:class:`Runtime`).
        recipe: every setting that changes the weights (:func:`ser_hf.training.recipe_of`), which
            ``--resume_folds`` compares; empty for runs written before it was recorded.
        data: what it was trained on (:func:`ser_hf.data.data_identity`: the clip list's fingerprint, clip count,
            per-corpus fingerprints and data folders), which ``--resume_folds`` also compares; empty for runs
            written before it was recorded.
        legacy: read from a run written before this record existed.
    """

    split: SplitDefinition
    label_names: list[str]
    test: dict
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    model: ModelDescription = field(default_factory=ModelDescription)
    parameters: dict = field(default_factory=dict)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    runtime: Runtime = field(default_factory=Runtime)
    recipe: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    legacy: bool = False

    def __post_init__(self):
        if not isinstance(self.preprocessing, Preprocessing):
            self.preprocessing = Preprocessing.from_dict(self.preprocessing)
        if not isinstance(self.model, ModelDescription):
            self.model = ModelDescription.from_dict(self.model)
        if not isinstance(self.training, TrainingSettings):
            self.training = TrainingSettings.from_dict(self.training)
        if not isinstance(self.runtime, Runtime):
            self.runtime = Runtime.from_dict(self.runtime)

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
    def scores(self) -> dict[str, float]:
        """The test side's ``wa``, ``ua`` and ``macro_f1``."""
        return {k: float(self.test[k]) for k in SCORE_KEYS}

    @property
    def validation_ua(self) -> float | None:
        """Validation UA of the checkpoint that ships (what chooses a fold or a system: never the test side)."""
        return self.runtime.validation_ua

    @property
    def family(self) -> str:
        return self.model.family

    def to_dict(self) -> dict:
        """The ``metrics.json`` content: test scores at the top level, then the other parts by name."""
        return {
            **self.test,
            "format_version": FORMAT_VERSION,
            "label_names": self.label_names,
            "split": asdict(self.split),
            "preprocessing": self.preprocessing.to_dict(),
            "model": self.model.to_dict(),
            "parameters": self.parameters,
            "training": self.training.to_dict(),
            "runtime": self.runtime.to_dict(),
            **({"recipe": self.recipe} if self.recipe else {}),
            **({"data": self.data} if self.data else {}),
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
                preprocessing=Preprocessing.from_dict(data.get("preprocessing")),
                model=ModelDescription.from_dict(data.get("model")),
                parameters=data.get("parameters", {}),
                training=TrainingSettings.from_dict(data.get("training")),
                runtime=Runtime.from_dict(data.get("runtime")),
                recipe=data.get("recipe", {}),
                data=data.get("data", {}),
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
            preprocessing=Preprocessing(
                sampling_rate=extra.get("sampling_rate"),
                trim_db=extra.get("trim_db"),
                center_crop_s=extra.get("max_eval_duration_s"),
            ),
            model=ModelDescription.from_dict(data.get("model", {"family": "mel_cnn"})),
            parameters=data.get("parameters", {}),
            training=TrainingSettings.from_dict(data.get("training")),
            runtime=Runtime.from_dict({k: data[k] for k in runtime_keys if k in data}),
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

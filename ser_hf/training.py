"""Training and cross-validation with ``transformers.Trainer`` (the logic behind ``scripts/finetune.py``).

A run directory (one fold) ends up holding: the best checkpoint by validation UA (``config.json`` with
``id2label``, ``model.safetensors``, ``preprocessor_config.json``: the feature extractor, which holds the clip
preprocessing), the run record (:class:`ser_hf.run.RunRecord`: ``metrics.json`` and ``split.json``) and
``confusion_matrix.png``. The test scores are computed on the saved checkpoint, loaded back from the run
directory and fed through its own feature extractor, as ``pipeline("audio-classification")`` users run it.
``--all_folds`` writes one such directory per fold under ``output_dir/fold_K`` and ``cv_results.json`` with mean
and sample standard deviation (ddof=1).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from transformers import HfArgumentParser, Trainer, TrainerCallback, TrainingArguments, set_seed

from .corpora import decode_channel, load_corpus
from .data import (
    AudioCollator,
    WaveformAugment,
    decode_dataset,
    featurize,
    length_batches,
    select_side,
    training_lengths,
)
from .folds import PROTOCOLS, SplitDefinition, make_split, num_folds
from .lock import disk_full_hint, output_dir_lock
from .metrics import compute_ser_metrics, format_mean_std, mean_std, plot_confusion_matrix, trainer_compute_metrics
from .models import MelCNNConfig, MelCNNFeatureExtractor, MelCNNForAudioClassification
from .models.pretrained import (
    FINETUNE_MODES,
    FinetuneSettings,
    apply_finetune_mode,
    export_merged,
    is_adapter_model,
    load_backbone,
    load_extra_weights,
    save_adapter,
    save_extra_weights,
)
from .models.summary import MEL_CNN_SETTINGS, count_parameters, describe_model, describe_preprocessing, mel_cnn_settings
from .run import RunRecord, validation_ua

logger = logging.getLogger(__name__)

MODELS = ("mel_cnn", "pretrained")
SELECT_BY = ("ua", "wa", "macro_f1", "loss", "last")
# model outputs that are not predictions (a weighted layer sum makes models return every hidden layer)
OUTPUTS_NOT_PREDICTIONS = ["hidden_states", "attentions"]


def _is_hub_id(name: str) -> bool:
    """``OWNER/NAME`` as the Hub accepts it (``huggingface_hub.utils.validate_repo_id``), and not a local path."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return name.count("/") == 1 and not Path(name).exists()


class RunExistsError(FileExistsError):
    """Raised when the output directory already holds a run and ``--overwrite_output_dir`` is not given."""


@dataclass
class ModelArguments:
    """Which model to train and its hyperparameters."""

    model: str = field(
        default="mel_cnn",
        metadata={
            "help": f"Model family, one of {', '.join(MODELS)}: the log-mel CNN baseline, or a pretrained speech "
            "transformer from --model_name_or_path."
        },
    )
    model_name_or_path: str = field(
        default="facebook/wav2vec2-base",
        metadata={
            "help": "pretrained: hub id or local folder of a wav2vec2, hubert, wavlm, data2vec-audio or whisper "
            "checkpoint (Whisper: its encoder)."
        },
    )
    base_model_id: str | None = field(
        default=None,
        metadata={
            "help": "pretrained: hub id of the checkpoint when --model_name_or_path is a local copy (e.g. "
            "openai/whisper-tiny.en for ../shared/models/whisper-tiny.en-encoder); recorded in the run, so the model "
            "card's base_model names the hub model rather than a path."
        },
    )
    finetune_mode: str = field(
        default="lora",
        metadata={"help": f"pretrained: {', '.join(FINETUNE_MODES)} (see ser_hf.models.pretrained)."},
    )
    lora_rank: int = field(default=8, metadata={"help": "pretrained/lora: LoRA rank r."})
    lora_alpha: float = field(default=16.0, metadata={"help": "pretrained/lora: LoRA alpha (scale alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "pretrained/lora: dropout on the adapter input."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={"help": "pretrained/lora: module names to adapt (default: the model type's q/k/v/out projections)."},
    )
    lora_ffn: bool = field(
        default=False, metadata={"help": "pretrained/lora: adapt the feed-forward layers too (as PEFT-SER)."}
    )
    weighted_layer_sum: bool | None = field(
        default=None,
        metadata={"help": "pretrained: learned weighted sum of all hidden layers (default: on for frozen only)."},
    )
    freeze_feature_encoder: bool = field(
        default=True, metadata={"help": "pretrained/full: keep the CNN feature encoder frozen."}
    )
    classifier_proj_size: int | None = field(
        default=None, metadata={"help": "pretrained: projector width before the classifier (default: config's)."}
    )
    whisper_window_s: int = field(
        default=8,
        metadata={
            "help": "whisper: input window in whole seconds instead of Whisper's 30 s (the saved feature extractor "
            "pads to it and keeps the first N s of longer clips, in evaluation and pipeline() alike); 0 keeps 30 s."
        },
    )
    n_mels: int = field(default=64, metadata={"help": "mel-CNN: mel bands of the log-mel front end."})
    channels: list[int] = field(
        default_factory=lambda: [16, 32, 64, 128], metadata={"help": "mel-CNN: output channels of the conv blocks."}
    )
    dropout: float = field(default=0.3, metadata={"help": "mel-CNN: dropout before the classifier."})
    normalize: str = field(
        default="utterance",
        metadata={
            "help": "mel-CNN: 'utterance' (per-utterance CMVN per mel band), 'utterance_global' (one mean and std "
            "per utterance: keeps the spectral shape) or 'none'."
        },
    )
    pooling: str = field(default="meanmax", metadata={"help": "mel-CNN: 'mean', 'max' or 'meanmax' time pooling."})
    freq_pooling: str = field(
        default="mean",
        metadata={"help": "mel-CNN: 'mean' (average the last block's mel bins) or 'flatten' (keep each bin)."},
    )
    spec_augment: bool = field(default=True, metadata={"help": "mel-CNN: SpecAugment masks in training."})

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"--model {self.model!r} is not valid; choose one of {', '.join(MODELS)}")
        if self.base_model_id is not None and not _is_hub_id(self.base_model_id):
            raise ValueError(
                f"--base_model_id {self.base_model_id!r} is not a hub id: give OWNER/NAME, e.g. openai/whisper-tiny.en"
            )
        self.finetune = FinetuneSettings(
            mode=self.finetune_mode,
            lora_rank=self.lora_rank,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            lora_target_modules=self.lora_target_modules,
            lora_ffn=self.lora_ffn,
            weighted_layer_sum=self.weighted_layer_sum,
            freeze_feature_encoder=self.freeze_feature_encoder,
        )


@dataclass
class DataArguments:
    """Corpus, split protocol, audio handling and run-level options."""

    data_dir: str = field(
        default=None,
        metadata={
            "help": "Folder holding the corpus in its documented layout; without it RAVDESS / EmoV-DB are fetched "
            "into the Hugging Face cache on first use."
        },
    )
    dataset: str | None = field(
        default=None,
        metadata={
            "help": "Instead of --data_dir: a dataset exported by `ser-hf export-dataset` (local folder or hub "
            "id), with --dataset_config fold_K giving the speaker sides."
        },
    )
    dataset_config: str | None = field(default=None, metadata={"help": "--dataset: its config, e.g. fold_0."})
    corpus: str = field(default="ravdess", metadata={"help": "Corpus name (ser_hf.corpora.CORPORA)."})
    corpus_config: str | None = field(default=None, metadata={"help": "Builder config, e.g. 'speech' or 'song'."})
    metadata: str | None = field(
        default=None, metadata={"help": "Corpus 'folder': metadata CSV/JSONL (default: metadata.csv/.jsonl)."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "datasets cache folder."})
    labels: list[str] | None = field(
        default=None,
        metadata={
            "help": "The classes the corpus must have (and, for a folder corpus, their order): a clip with another "
            "label, or a corpus whose labels differ, is an error naming it."
        },
    )
    verify_counts: bool = field(default=True, metadata={"help": "Require the complete corpus."})
    protocol: str = field(default="folds", metadata={"help": f"Split protocol: {', '.join(PROTOCOLS)}."})
    fold: int = field(default=0, metadata={"help": "Fold index for protocols 'folds' and 'loso'."})
    all_folds: bool = field(default=False, metadata={"help": "Run every fold and write mean +- std."})
    seeds: list[int] | None = field(
        default=None,
        metadata={
            "help": "Train the fold (or, with --all_folds, every fold) once per seed into OUTPUT_DIR/seed_S and write "
            "seeds_results.json: mean +- std over seeds per fold and overall (replaces --seed)."
        },
    )
    test_speakers: list[str] | None = field(default=None, metadata={"help": "Protocol 'speakers': test side."})
    val_speakers: list[str] | None = field(default=None, metadata={"help": "Protocol 'speakers': validation side."})
    num_val_speakers: int = field(default=2, metadata={"help": "Validation speakers per fold (see ser_hf.folds)."})
    sampling_rate: int = field(default=16000, metadata={"help": "Model input sampling rate in Hz."})
    trim_db: float | None = field(
        default=None,
        metadata={
            "help": "mel-CNN: trim leading/trailing silence below this many dB under the peak; stored in the "
            "checkpoint's feature extractor, so evaluation, predict and pipeline() trim the same way. Transformer "
            "exports keep their stock feature extractor, which cannot trim: they train on untrimmed audio."
        },
    )
    max_duration_s: float | None = field(default=3.0, metadata={"help": "Training random-crop length in seconds."})
    max_eval_duration_s: float | None = field(
        default=None,
        metadata={
            "help": "mel-CNN: evaluation centre-crop length in seconds, stored in the feature extractor (default: "
            "whole clip)."
        },
    )
    augment: bool = field(default=True, metadata={"help": "Waveform augmentation (speed, gain, noise) in training."})
    class_weighted_loss: bool = field(
        default=False, metadata={"help": "Cross-entropy weighted by inverse class frequency."}
    )
    select_best_by: str = field(
        default="ua",
        metadata={
            "help": f"Validation metric for the best checkpoint: {', '.join(SELECT_BY)} ('last': no selection, ship "
            "the model as training ends; with a 2-speaker validation side one epoch's score is noisy)."
        },
    )
    ema_decay: float | None = field(
        default=None,
        metadata={
            "help": "Exponential moving average of the weights with this decay per optimizer step (e.g. 0.99: about "
            "the last 100 steps); validation, checkpoints and the shipped model use the averaged weights."
        },
    )
    mixup_alpha: float = field(
        default=0.0,
        metadata={
            "help": "Mixup of training batches (Zhang et al. 2018, https://arxiv.org/abs/1710.09412): each batch is "
            "mixed with a shuffled copy of itself, weight lam ~ Beta(alpha, alpha), and the loss is lam * loss(y) + "
            "(1 - lam) * loss(y_shuffled); 0 turns it off."
        },
    )
    resume_folds: bool = field(
        default=False,
        metadata={
            "help": "Continue an interrupted grid (--all_folds and/or --seeds, or one fold): keep runs whose "
            "directory already holds metrics.json of the same split and recipe, and train the others, replacing "
            "their unfinished directories."
        },
    )
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace a run already in output_dir."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for decoding."})

    def __post_init__(self):
        if self.dataset is not None:
            if self.data_dir is not None:
                raise ValueError(
                    f"--dataset {self.dataset} and --data_dir {self.data_dir}: give one (an export, or a corpus folder)"
                )
            if not self.dataset_config:
                raise ValueError("--dataset needs --dataset_config fold_K (the fold whose sides to train on)")
            if self.all_folds:
                raise ValueError("--dataset trains one fold config; run one command per --dataset_config fold_K")
        elif self.data_dir is None and self.corpus in ("anad", "eyase", "emovo", "folder"):
            raise ValueError(
                f"--data_dir is required for corpus {self.corpus!r}: the folder holding it (RAVDESS, EmoV-DB and URDU "
                "are fetched on first use without it)"
            )
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"--protocol {self.protocol!r} is not valid; choose one of {', '.join(PROTOCOLS)}")
        if self.select_best_by not in SELECT_BY:
            raise ValueError(
                f"--select_best_by {self.select_best_by!r} is not valid; choose one of {', '.join(SELECT_BY)}"
            )
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"--ema_decay must lie strictly between 0 and 1 (e.g. 0.99), got {self.ema_decay}")
        if self.mixup_alpha < 0:
            raise ValueError(f"--mixup_alpha must be >= 0 (0 turns mixup off, e.g. 0.2), got {self.mixup_alpha}")
        if self.trim_db is not None and not self.trim_db > 0:
            raise ValueError(f"--trim_db must be a positive number of dB below the peak, got {self.trim_db}")
        for flag in ("max_duration_s", "max_eval_duration_s"):
            value = getattr(self, flag)
            if value is not None and not value > 0:
                raise ValueError(f"--{flag} must be a positive number of seconds, got {value}")
        if self.sampling_rate <= 0:
            raise ValueError(f"--sampling_rate must be a positive number of Hz, got {self.sampling_rate}")


def yaml_to_argv(path: str | os.PathLike) -> list[str]:
    """Turn a flat YAML mapping into ``--key value`` arguments (lists become several values, nulls are skipped).

    Raises:
        ValueError: the file is not a flat mapping of scalars and lists (the message names the file and key).
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err}); expected a flat mapping of flag names to values") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of argument names to values, got {type(data).__name__}")
    argv = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, dict):
            raise ValueError(f"{path}: key {key!r} holds a mapping; only scalars and lists are supported")
        argv.append(f"--{key}")
        argv += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return argv


def parse_args(argv: list[str] | None = None):
    """Parse ``[CONFIG.yaml] [--flag value ...]``: the YAML gives defaults, command-line flags override them."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments))
    parser.allow_abbrev = False  # --num_train_epoch is an error, not --num_train_epochs
    if argv and argv[0].endswith((".yaml", ".yml")):
        from_yaml = yaml_to_argv(argv[0])
        known = {o for action in parser._actions for o in action.option_strings}
        for flag in (a for a in from_yaml if a.startswith("--")):
            if flag not in known:
                import difflib

                close = difflib.get_close_matches(flag, known, n=1)
                raise ValueError(
                    f"{argv[0]}: key {flag[2:]!r} is not a flag of scripts/finetune.py"
                    + (f"; did you mean {close[0][2:]!r}?" if close else "")
                )
        argv = from_yaml + argv[1:]
    return parser.parse_args_into_dataclasses(args=argv)


RUN_ARTIFACTS = (
    "config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "metrics.json",
    "metrics.json.partial",
    "split.json",
    "cv_results.json",
    "confusion_matrix.png",
    "training_args.bin",
    "extra_trainable.safetensors",
    "adapter",
    "checkpoint-*",
    "fold_*",
    "eval_*",
    "runs",
    "configuration_*.py",
    "modeling_*.py",
    "feature_extraction_*.py",
)
"""What a ser_hf run directory may hold: the only entries ``--overwrite_output_dir`` ever deletes."""


def _is_artifact(entry: Path) -> bool:
    return any(entry.match(pattern) for pattern in RUN_ARTIFACTS)


def remove_run(path: Path, protected: dict[str, str | None] | None = None) -> None:
    """Delete the ser_hf run in ``path`` (only :data:`RUN_ARTIFACTS`), after checking that nothing else is there.

    Args:
        protected: ``{flag: path}`` of user inputs (``--data_dir``, ``--resume_from_checkpoint``, ``--cache_dir``,
            ``--metadata``) that must not be deleted with it.

    Raises:
        RunExistsError: ``path`` holds entries that are not run artifacts (named: nothing is deleted), or a
            protected input lies inside it.
    """
    path = path.resolve()
    for flag, value in (protected or {}).items():
        if value and (Path(value).resolve() == path or path in Path(value).resolve().parents):
            raise RunExistsError(
                f"{flag} {value} lies inside --output_dir {path}, which --overwrite_output_dir would delete; "
                "nothing was deleted: choose another --output_dir"
            )
    foreign = sorted(e.name for e in path.iterdir() if not _is_artifact(e))
    if foreign:
        raise RunExistsError(
            f"--output_dir {path} holds files that ser_hf did not write ({', '.join(foreign[:5])}"
            + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            + "); --overwrite_output_dir only replaces a ser_hf run, so nothing was deleted: choose another "
            "--output_dir"
        )
    for entry in path.iterdir():
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def check_output_dir(
    path: Path,
    overwrite: bool,
    protected: dict[str, str | None] | None = None,
    resuming: bool = False,
    resume_hint: str | None = "--resume_from_checkpoint true",
    overwrite_hint: str = "--overwrite_output_dir true",
) -> None:
    """Refuse to reuse a directory that holds a run unless ``overwrite`` (then the old run is removed with
    :func:`remove_run`) or ``resuming`` an unfinished run from its checkpoints.

    Args:
        resume_hint: the flag that continues an unfinished run of the calling command, suggested in the error
            (``None``: the command cannot resume, nothing is suggested).
        overwrite_hint: the calling command's flag that replaces a run.

    Raises:
        RunExistsError: ``path`` holds a finished run (``metrics.json`` / ``cv_results.json``) or files of an
            unfinished one (and neither flag applies), or overwriting would delete something else.
    """
    if not path.exists() or not any(path.iterdir()):
        return
    finished = [n for n in ("metrics.json", "cv_results.json") if (path / n).exists()]
    if resuming and not finished:
        return
    if not overwrite:
        what = f"a finished run ({finished[0]})" if finished else "files of an earlier run"
        raise RunExistsError(
            f"output_dir {path} already holds {what}; choose another --output_dir"
            + ("" if finished or not resume_hint else f", resume it with {resume_hint},")
            + f" or pass {overwrite_hint} to replace it"
        )
    remove_run(path, protected)  # refuses, deleting nothing, when anything else is there
    logger.warning("--overwrite_output_dir: removed the earlier run in %s", path)


def check_training_args(training_args: TrainingArguments) -> None:
    """Refuse training settings that would silently train nothing or not what was asked.

    Raises:
        ValueError: no training steps (``--num_train_epochs`` <= 0 without ``--max_steps``), a learning rate
            not above 0, a batch size below 1, or ``--fp16`` without a CUDA device (it would do nothing and
            still be recorded as used); the message names the flag and the value.
    """
    a = training_args
    if a.max_steps <= 0 and not a.num_train_epochs > 0:
        raise ValueError(
            f"--num_train_epochs {a.num_train_epochs} trains nothing; give a positive --num_train_epochs or --max_steps"
        )
    if not a.learning_rate > 0:
        raise ValueError(f"--learning_rate must be positive, got {a.learning_rate}")
    for flag in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        if getattr(a, flag) < 1:
            raise ValueError(f"--{flag} must be at least 1, got {getattr(a, flag)}")
    if a.fp16 and not torch.cuda.is_available():
        raise ValueError(
            "--fp16 true needs a CUDA GPU and none is available here; on a CPU leave it off (or use --bf16 true)"
        )


class NonFiniteGuard(TrainerCallback):
    """Stop training when the logged loss or gradient norm becomes NaN or infinite: the run is then not saved as
    finished (training would otherwise end with rc 0 and a checkpoint full of NaN weights)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "grad_norm"):
            value = (logs or {}).get(key)
            if value is not None and not np.isfinite(value):
                raise FloatingPointError(
                    f"training {key} became {value} at step {state.global_step}; stopped, nothing was saved as a "
                    "finished run (lower --learning_rate, or check the data for corrupt clips)"
                )


def check_preprocessing_flags(model: str, trim_db: float | None, center_crop_s: float | None) -> None:
    """Refuse clip preprocessing that a model family cannot ship with its checkpoint.

    Raises:
        ValueError: ``--trim_db`` or ``--max_eval_duration_s`` for ``--model pretrained``: a transformer checkpoint
            is exported with its stock feature extractor (so that ``pipeline()`` loads it without remote code),
            which cannot trim or crop, so its users would feed it other audio than its report was measured on.
    """
    if model == "pretrained" and (trim_db is not None or center_crop_s is not None):
        flag = "--trim_db" if trim_db is not None else "--max_eval_duration_s"
        raise ValueError(
            f"{flag} is for the mel-CNN only: a transformer checkpoint is exported with its stock feature extractor "
            "(so that pipeline() loads it without remote code), which cannot trim silence or crop, and pipeline() "
            f"users would feed it other audio than its report was measured on; remove {flag} (set it to null in "
            "the YAML) and train on untrimmed audio"
        )


def build_model(
    model_args: ModelArguments,
    label_names: list[str],
    sampling_rate: int,
    trim_db: float | None = None,
    center_crop_s: float | None = None,
):
    """Return ``(model, feature_extractor)`` with ``id2label``/``label2id`` in the model config.

    ``--model pretrained`` loads ``--model_name_or_path`` and applies ``--finetune_mode`` (a ``PeftModel`` for
    ``lora``). The mel-CNN gets a :class:`ser_hf.models.MelCNNFeatureExtractor` holding the clip preprocessing
    (``trim_db``, ``center_crop_s``), saved with the checkpoint.

    Raises:
        ValueError: the pretrained feature extractor expects another sampling rate than ``--sampling_rate``, or
            ``--trim_db`` / ``--max_eval_duration_s`` is given for a pretrained transformer (its exported
            checkpoint keeps the stock feature extractor, which cannot trim or crop, so ``pipeline()`` users
            would feed it other audio than it was evaluated on).
    """
    check_preprocessing_flags(model_args.model, trim_db, center_crop_s)
    if model_args.model == "pretrained":
        model, fe = load_backbone(
            model_args.model_name_or_path,
            label_names,
            weighted_layer_sum=model_args.finetune.weighted_layer_sum,
            whisper_window_s=model_args.whisper_window_s,
            classifier_proj_size=model_args.classifier_proj_size,
        )
        if fe.sampling_rate != sampling_rate:
            raise ValueError(
                f"--sampling_rate {sampling_rate} does not match the feature extractor of "
                f"{model_args.model_name_or_path} ({fe.sampling_rate} Hz); pass --sampling_rate {fe.sampling_rate}"
            )
        return apply_finetune_mode(model, model_args.finetune), fe
    id2label = dict(enumerate(label_names))
    label2id = {v: k for k, v in id2label.items()}
    config = MelCNNConfig(
        sampling_rate=sampling_rate,
        n_mels=model_args.n_mels,
        channels=model_args.channels,
        dropout=model_args.dropout,
        normalize=model_args.normalize,
        pooling=model_args.pooling,
        freq_pooling=model_args.freq_pooling,
        spec_augment=model_args.spec_augment,
        num_labels=len(label_names),
        id2label=id2label,
        label2id=label2id,
    )
    fe = MelCNNFeatureExtractor(sampling_rate=sampling_rate, trim_db=trim_db, center_crop_s=center_crop_s)
    return MelCNNForAudioClassification(config), fe


def weighted_ce(weights: torch.Tensor, label_smoothing: float = 0.0):
    """``compute_loss_func`` for Trainer: cross-entropy with per-class ``weights`` ``(num_labels,)`` and
    ``label_smoothing`` (``--label_smoothing_factor``; Szegedy et al. 2016, "Rethinking the Inception
    architecture")."""

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"]
        return torch.nn.functional.cross_entropy(
            logits, labels, weight=weights.to(logits.device), label_smoothing=label_smoothing
        )

    return loss


def validation_scores(state, step: int | None = None) -> dict[str, float]:
    """Validation ``ua`` / ``wa`` / ``macro_f1`` / ``loss`` of the checkpoint that ships: the evaluation logged at
    ``step`` (the best checkpoint's), or the last evaluation when ``step`` is ``None``; ``{}`` without any."""
    evals = [e for e in state.log_history if "eval_ua" in e and (step is None or e.get("step") == step)]
    if not evals:
        return {}
    return {k: float(evals[-1][f"eval_{k}"]) for k in ("ua", "wa", "macro_f1", "loss") if f"eval_{k}" in evals[-1]}


def run_fold(model_args, data_args, training_args, decoded, label_names, split: SplitDefinition) -> dict:
    """Train on ``split``'s train side, select by validation, test on its test side; write the run directory.

    The test scores come from the saved checkpoint loaded back from the run directory and fed through its own
    feature extractor (:func:`ser_hf.inference.batch_probabilities`), i.e. what ``pipeline()`` users get.

    Returns:
        The test metrics dict written to ``metrics.json`` (:meth:`ser_hf.run.RunRecord.to_dict`).
    """
    out = Path(training_args.output_dir)
    set_seed(training_args.seed)
    sides = {
        s: select_side(decoded, split, s).select_columns(["input_values", "label", "num_samples"]).with_format("numpy")
        for s in ("train", "validation", "test")
    }
    model, fe = build_model(
        model_args, label_names, data_args.sampling_rate, data_args.trim_db, data_args.max_eval_duration_s
    )
    params = count_parameters(model)
    print(
        f"[ser_hf] fold {split.fold}: train {len(sides['train'])} / validation {len(sides['validation'])} / "
        f"test {len(sides['test'])} clips; trainable parameters {params['trainable']:,} of {params['total']:,} "
        f"({100 * params['trainable_share']:.2f} %; backbone {params['trainable_backbone']:,} of "
        f"{params['backbone']:,} = {100 * params['trainable_backbone_share']:.2f} %, head {params['head']:,})"
    )

    if training_args.train_sampling_strategy == "group_by_length":  # batches of similar length: less padding
        name = training_args.length_column_name
        lengths = training_lengths(sides["train"]["input_values"], fe)
        sides["train"] = sides["train"].remove_columns([c for c in [name] if c in sides["train"].column_names])
        sides["train"] = sides["train"].add_column(name, lengths).with_format("numpy")

    loss_func = None
    if data_args.class_weighted_loss:
        counts = np.bincount(np.asarray(sides["train"]["label"]), minlength=len(label_names)).astype(float)
        weights = torch.tensor(counts.sum() / (len(label_names) * np.maximum(counts, 1)), dtype=torch.float32)
        loss_func = weighted_ce(weights, training_args.label_smoothing_factor)

    augment = WaveformAugment() if data_args.augment else None
    train_collator = AudioCollator(
        fe, train=True, max_duration_s=data_args.max_duration_s, augment=augment, seed=training_args.seed
    )
    eval_collator = AudioCollator(fe, train=False)

    trainer = SERTrainer(
        eval_data_collator=eval_collator,
        model=model,
        args=training_args,
        train_dataset=sides["train"],
        eval_dataset=sides["validation"],
        data_collator=train_collator,
        processing_class=fe,
        compute_metrics=trainer_compute_metrics(len(label_names)),
        compute_loss_func=loss_func,
        callbacks=[NonFiniteGuard()],
        ema_decay=data_args.ema_decay,
        mixup_alpha=data_args.mixup_alpha,
    )
    start = time.time()
    train_result = trainer.train(
        resume_from_checkpoint=training_args.resume_from_checkpoint, ignore_keys_for_eval=OUTPUTS_NOT_PREDICTIONS
    )
    wall = time.time() - start
    bad = [n for n, p in trainer.model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise FloatingPointError(
            f"{len(bad)} weight tensors of the trained model hold NaN / inf (e.g. {bad[0]}); nothing was saved as a "
            "finished run (lower --learning_rate, or check the data)"
        )

    test_waves = [np.asarray(w, dtype=np.float32) for w in sides["test"]["input_values"]]
    test_labels = np.asarray(sides["test"]["label"])
    select = data_args.select_best_by != "last"
    shipped_validation = validation_scores(trainer.state, trainer.state.best_global_step if select else None)
    runtime = {
        "train_wall_time_s": wall,
        "train_runtime_s": train_result.metrics.get("train_runtime"),
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_validation": shipped_validation.get(data_args.select_best_by if select else "ua"),
        "validation": shipped_validation,
        "select_best_by": data_args.select_best_by,
        "device": str(training_args.device)
        + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else ""),
        "threads": torch.get_num_threads(),
        "world_size": training_args.world_size,
        "train_clips": len(sides["train"]),
        "epochs_run": float(trainer.state.epoch or 0.0),
    }
    trained = trainer.accelerator.unwrap_model(trainer.model)
    description = describe_model(trained, model_args.model_name_or_path, model_args.finetune)
    if model_args.model == "pretrained" and model_args.base_model_id:
        description["base_model_id"] = model_args.base_model_id
    if trainer.is_world_process_zero():
        if is_adapter_model(trained):
            # adapter-only artifact first: merging below changes the model in place
            save_adapter(trained, out / "adapter")
            diff = export_merged(trained, fe, out, featurize(fe, test_waves[:8]))
            runtime["export_max_abs_logit_diff"] = diff
            print(f"[ser_hf] merged LoRA export: largest logit difference to the adapter model {diff:.2e}")
        else:
            trainer.save_model(str(out))  # best checkpoint (load_best_model_at_end) + feature extractor
    trainer.accelerator.wait_for_everyone()

    # what users get: the saved checkpoint, loaded back, through its own feature extractor
    from .evaluation import predict_probabilities
    from .inference import load_classifier

    shipped, shipped_fe = load_classifier(str(out), device=str(training_args.device))
    probs = predict_probabilities(shipped, shipped_fe, test_waves, training_args.per_device_eval_batch_size)
    record = RunRecord(
        split=split,
        label_names=label_names,
        test=compute_ser_metrics(probs.argmax(-1), test_labels, len(label_names)),
        preprocessing=describe_preprocessing(shipped_fe),
        model=description,
        parameters=params,
        training=training_settings(training_args, data_args),
        runtime=runtime,
        recipe=recipe_of(model_args, data_args, training_args),
    )
    if trainer.is_world_process_zero():
        plot_confusion_matrix(
            record.test["confusion_matrix"],
            label_names,
            out / "confusion_matrix.png",
            title=f"{split.corpus} fold {split.fold}: UA {record.ua:.3f}",
        )
        record.save(out)  # last: metrics.json is what marks the fold finished (--resume_folds keeps it)
    print(
        f"[ser_hf] fold {split.fold} test: WA {record.wa:.4f}  UA {record.ua:.4f}  "
        f"macro-F1 {record.macro_f1:.4f}  ({wall:.0f} s)"
    )
    return record.to_dict()


EMA_STATE = "ema_state.pt"
CHECKPOINT_COMPLETE = ".ser_hf_complete"
"""Written into a ``checkpoint-N`` folder once all its files are: resuming never takes a half-written one."""


def complete_checkpoints(out: Path) -> list[Path]:
    """The ``checkpoint-N`` folders of ``out`` that were written completely (they hold
    :data:`CHECKPOINT_COMPLETE`), in step order; those a crash (a full disk, a kill) left half written are named
    in a warning and left out."""
    found = sorted(
        (p for p in out.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    complete = [p for p in found if (p / CHECKPOINT_COMPLETE).exists()]
    for p in sorted(set(found) - set(complete)):
        logger.warning(
            "%s was not written completely (no %s; or by a ser_hf older than the marker): not resumed from unless "
            "named with --resume_from_checkpoint %s",
            p,
            CHECKPOINT_COMPLETE,
            p,
        )
    return complete


"""Checkpoint file of a run with ``--ema_decay``: the raw (not averaged) trainable weights and buffers, and the
number of averaged steps, so that ``--resume_from_checkpoint`` continues both (the checkpoint's model weights are
the averaged ones)."""


def _weights(module: torch.nn.Module) -> list[torch.Tensor]:
    """Parameters then buffers, in the order ``torch.optim.swa_utils.AveragedModel`` averages them."""
    return [*module.parameters(), *module.buffers()]


def ema_decay_at(decay: float, num_averaged: int) -> float:
    """Decay of the update after ``num_averaged`` averaged steps: ``min(decay, (1 + n) / (10 + n))``, the warm-up
    of TensorFlow's ``tf.train.ExponentialMovingAverage(num_updates=...)``, so that a short run's average is not
    dominated by its first steps."""
    return min(decay, (1 + num_averaged) / (10 + num_averaged))


def ema_with_warmup(decay: float):
    """``multi_avg_fn`` for ``torch.optim.swa_utils.AveragedModel``: ``ema = d * ema + (1 - d) * weights`` with
    ``d = ema_decay_at(decay, n)`` (integer buffers such as batch norm's step count take the current value)."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged) -> None:
        d = ema_decay_at(decay, int(num_averaged))
        for a, c in zip(averaged, current):
            if a.is_floating_point():
                a.lerp_(c, 1.0 - d)
            else:
                a.copy_(c)

    return update


class _UpdateEMA(TrainerCallback):
    def __init__(self, trainer: SERTrainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):  # after the optimizer step, before evaluate / save
        self.trainer.update_ema()


class SERTrainer(Trainer):
    """``Trainer`` whose evaluation and test batches use ``eval_data_collator`` (no augmentation, no random
    crop), while training batches use ``data_collator``.

    For LoRA models it also keeps trainable parameters that peft's adapter file cannot hold (the weighted
    layer sum's ``layer_weights``) in every checkpoint, and restores them with the best checkpoint.

    With ``ema_decay`` it keeps an exponential moving average of the weights (parameters and batch-norm
    statistics; Polyak & Juditsky 1992, via ``torch.optim.swa_utils.AveragedModel``): after every optimizer step
    ``ema = d * ema + (1 - d) * weights``, ``d`` warming up to ``ema_decay`` (:func:`ema_decay_at`). Validation
    scores the averaged weights, checkpoints hold them (plus the raw weights in :data:`EMA_STATE`, for resuming),
    and the model left after training is the averaged one (or, with ``load_best_model_at_end``, the best averaged
    checkpoint). An average over the last ~``1 / (1 - decay)`` steps smooths the epoch-to-epoch swings that make
    picking one epoch's checkpoint a lottery.

    With ``mixup_alpha > 0`` every training batch is mixed with a shuffled copy of itself (mixup, Zhang et al.
    2018, https://arxiv.org/abs/1710.09412): the model input (waveforms ``input_values`` or Whisper's log-mel
    ``input_features``) becomes ``lam * x + (1 - lam) * x[perm]`` with ``lam ~ Beta(alpha, alpha)`` drawn per
    batch, the padding mask covers both clips, and the loss is ``lam * loss(y) + (1 - lam) * loss(y[perm])``. The
    draws come from a generator seeded with ``args.seed``; evaluation is never mixed.
    """

    MIXED_INPUTS = ("input_values", "input_features")

    def __init__(
        self, *args, eval_data_collator=None, ema_decay: float | None = None, mixup_alpha: float = 0.0, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.eval_data_collator = eval_data_collator or self.data_collator
        self.mixup_alpha = mixup_alpha
        self._mixup_rng = np.random.default_rng(self.args.seed)
        self.ema_decay = ema_decay
        self.ema = None  # torch.optim.swa_utils.AveragedModel, made at the first step (or from a resumed checkpoint)
        if ema_decay:
            self.add_callback(_UpdateEMA(self))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        key = next((k for k in self.MIXED_INPUTS if k in inputs), None)
        if not (self.mixup_alpha and model.training and "labels" in inputs and key):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs["labels"]
        lam = float(self._mixup_rng.beta(self.mixup_alpha, self.mixup_alpha))
        perm = torch.as_tensor(self._mixup_rng.permutation(len(labels)), device=labels.device)
        mixed = {k: v for k, v in inputs.items() if k != "labels"}
        mixed[key] = lam * inputs[key] + (1 - lam) * inputs[key][perm]
        if "attention_mask" in inputs:
            mixed["attention_mask"] = torch.maximum(inputs["attention_mask"], inputs["attention_mask"][perm])
        outputs = model(**mixed)

        def loss_of(y):
            if self.compute_loss_func is not None:
                return self.compute_loss_func(outputs, y, num_items_in_batch=num_items_in_batch)
            return torch.nn.functional.cross_entropy(
                outputs["logits"], y, label_smoothing=self.args.label_smoothing_factor
            )

        loss = lam * loss_of(labels) + (1 - lam) * loss_of(labels[perm])
        return (loss, outputs) if return_outputs else loss

    def update_ema(self) -> None:
        """Fold the current weights into the average (the first call copies them)."""
        from torch.optim.swa_utils import AveragedModel

        model = self.accelerator.unwrap_model(self.model)
        if self.ema is None:
            self.ema = AveragedModel(model, multi_avg_fn=ema_with_warmup(self.ema_decay), use_buffers=True)
        self.ema.update_parameters(model)

    @torch.no_grad()
    def _swap_ema(self) -> None:
        for averaged, current in zip(_weights(self.ema.module), _weights(self.accelerator.unwrap_model(self.model))):
            kept = current.detach().clone()
            current.copy_(averaged)
            averaged.copy_(kept)

    @contextlib.contextmanager
    def averaged_weights(self):
        """Within the block the model holds the averaged weights (and the average the raw ones); no-op without EMA."""
        if self.ema is None:
            yield
            return
        self._swap_ema()
        try:
            yield
        finally:
            self._swap_ema()

    def evaluate(self, *args, **kwargs):
        with self.averaged_weights():
            return super().evaluate(*args, **kwargs)

    def _save_checkpoint(self, model, trial):
        folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
        try:
            with self.averaged_weights():
                super()._save_checkpoint(model, trial)
                if self.ema is not None and self.args.should_save:
                    # inside the block the average holds the raw weights: keep the trainable ones and the buffers
                    raw = {
                        i: t.detach().cpu()
                        for i, t in enumerate(_weights(self.ema.module))
                        if not isinstance(t, torch.nn.Parameter) or t.requires_grad
                    }
                    torch.save({"n_averaged": int(self.ema.n_averaged), "raw_weights": raw}, folder / EMA_STATE)
        except (OSError, RuntimeError) as err:
            raise OSError(f"writing checkpoint {folder} failed: {disk_full_hint(folder, err)}") from err
        if self.args.should_save and folder.is_dir():
            (folder / CHECKPOINT_COMPLETE).write_text("written completely by ser_hf\n")

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        state_file = Path(resume_from_checkpoint) / EMA_STATE
        if not self.ema_decay or self.ema is not None:
            return
        if not state_file.exists():
            logger.warning(
                "%s has no %s: the weight average restarts from its weights", resume_from_checkpoint, EMA_STATE
            )
            return
        state = torch.load(state_file, weights_only=True)
        self.update_ema()  # the model holds the checkpoint's averaged weights: the average starts from them
        self.ema.n_averaged.fill_(state["n_averaged"])
        current = _weights(self.accelerator.unwrap_model(self.model))
        with torch.no_grad():
            for i, tensor in state["raw_weights"].items():
                current[int(i)].copy_(tensor)

    def train(self, *args, **kwargs):
        result = super().train(*args, **kwargs)
        if self.ema is not None:
            if not (self.args.load_best_model_at_end and self.state.best_model_checkpoint):
                self._swap_ema()  # keep the averaged weights: they are what validation scored last
            self.ema = None  # (the best checkpoint, loaded by Trainer, holds averaged weights already)
        return result

    def _save(self, output_dir=None, state_dict=None):
        super()._save(output_dir, state_dict)
        save_extra_weights(self.accelerator.unwrap_model(self.model), output_dir or self.args.output_dir)

    def _load_best_model(self):
        super()._load_best_model()
        load_extra_weights(self.accelerator.unwrap_model(self.model), self.state.best_model_checkpoint)

    def _with_eval_collator(self, make_loader, *args):
        train_collator, self.data_collator = self.data_collator, self.eval_data_collator
        try:
            return make_loader(*args)
        finally:
            self.data_collator = train_collator

    def _length_batched(self, dataset):
        """Single-process evaluation batched by length under a padded-sample budget
        (:func:`ser_hf.data.length_batches`), so one long clip does not pad a whole batch; ``None`` where that does
        not apply (several processes, or no ``num_samples`` column)."""
        if self.args.world_size > 1 or dataset is None or "num_samples" not in getattr(dataset, "column_names", []):
            return None
        batches = length_batches(list(dataset["num_samples"]), self.args.eval_batch_size)
        return torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, collate_fn=self.eval_data_collator, num_workers=0
        )

    def get_eval_dataloader(self, eval_dataset=None):
        loader = self._length_batched(self.eval_dataset if eval_dataset is None else eval_dataset)
        return loader or self._with_eval_collator(super().get_eval_dataloader, eval_dataset)

    def get_test_dataloader(self, test_dataset):
        return self._length_batched(test_dataset) or self._with_eval_collator(super().get_test_dataloader, test_dataset)


NOT_RECIPE = {
    "base_model_id": "the hub id a local copy stands for: a name on the card, not a setting",
    "data_dir": "where the corpus is; the split check compares its speakers",
    "dataset": "where the export is; the split check compares its speakers",
    "dataset_config": "which fold of an export; the split check compares its speakers",
    "cache_dir": "where caches go",
    "verify_counts": "a check of the folder, not a setting of the training",
    "fold": "which fold; the split check compares it",
    "all_folds": "how many folds are run",
    "seeds": "how many seeds are run (each run's own seed is in the recipe)",
    "resume_folds": "how a grid is continued",
    "overwrite_output_dir": "what happens to an earlier run",
    "preprocessing_num_workers": "how many processes decode; the clips are the same",
}
"""Fields of :class:`ModelArguments` and :class:`DataArguments` that do not change the weights, with why; every
other field of both is part of a run's recipe (``tests/test_reliability_round2.py`` checks that each field is
one or the other)."""

TRAINING_NOT_RECIPE = (
    "output_dir",
    "overwrite_output_dir",
    "logging_",
    "log_",
    "save_",
    "eval_",
    "per_device_eval_batch_size",
    "eval_accumulation_steps",
    "eval_delay",
    "eval_do_concat_batches",
    "report_to",
    "run_name",
    "project",
    "trackio_",
    "hub_",
    "push_to_hub",
    "disable_tqdm",
    "dataloader_",
    "resume_from_checkpoint",
    "load_best_model_at_end",
    "metric_for_best_model",
    "greater_is_better",
    "do_train",
    "do_eval",
    "do_predict",
    "local_rank",
    "ddp_",
    "fsdp",
    "deepspeed",
    "accelerator_config",
    "include_",
    "prediction_loss_only",
    "skip_memory_metrics",
    "batch_eval_metrics",
    "restore_callback_states_from_checkpoint",
    "ignore_data_skip",
    "use_cpu",
    "no_cuda",
    "use_mps_device",
    "torch_compile",
    "ray_scope",
    "tpu_",
    "debug",
    "past_index",
    "label_names",
    "remove_unused_columns",
    "neftune_noise_alpha",
    "optim_target_modules",
    "full_determinism",
    "use_liger_kernel",
    "liger_kernel_config",
    "average_tokens_across_devices",
    "torchdynamo",
    "gradient_checkpointing_kwargs",
    "enable_jit_checkpoint",
    "parallelism_config",
    "auto_find_batch_size",
    "length_column_name",
)
"""``TrainingArguments`` fields (or name prefixes) that do not change the weights: logging, saving, evaluation,
reporting, hub and device plumbing. Every other field is part of the recipe."""


def recipe_of(model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> dict:
    """Every setting of a run that changes its weights, derived from the argument dataclasses: all fields of
    :class:`ModelArguments` and :class:`DataArguments` but those of :data:`NOT_RECIPE`, and all of
    ``TrainingArguments.to_dict()`` but those of :data:`TRAINING_NOT_RECIPE`; a local base model by its resolved
    folder. Stored in the run record; ``--resume_folds`` keeps a finished fold only when it is equal."""
    import dataclasses

    recipe = {}
    for args in (model_args, data_args):
        for f in dataclasses.fields(args):
            if f.name not in NOT_RECIPE:
                recipe[f.name] = _comparable(getattr(args, f.name))
    for key, value in training_args.to_dict().items():
        if not key.startswith(TRAINING_NOT_RECIPE) and not key.startswith("_"):
            recipe[f"training.{key}"] = value
    return json.loads(json.dumps(recipe, default=str))


def reuse_fold(run_dir: Path, split: SplitDefinition, settings: dict | None = None, recipe: dict | None = None) -> dict:
    """The record of a finished fold (:class:`ser_hf.run.RunRecord`, current or legacy), kept by ``--resume_folds``.

    Args:
        settings: the current run's :func:`run_settings`; a finished fold trained with other values is refused
            (the comparison for runs recorded before the whole recipe was).
        recipe: the current run's :func:`recipe_of`; compared with the finished fold's recorded recipe, every
            setting that either side has.

    Returns:
        :meth:`RunRecord.to_dict`, the shape :func:`run_fold` returns.

    Raises:
        ValueError: the finished fold used other speakers than ``split``, or other settings (the message names
            the fold and every differing setting).
    """
    record = RunRecord.load(run_dir)
    sides = ("train_speakers", "val_speakers", "test_speakers")
    if record.split.corpus != split.corpus or any(getattr(record.split, k) != getattr(split, k) for k in sides):
        raise ValueError(
            f"{run_dir / 'metrics.json'}: this finished fold used another split than fold {split.fold} of "
            f"{split.corpus}/{split.protocol}; use another --output_dir"
        )
    if recipe and record.recipe:
        # ser_hf's own settings are compared on both sides' keys (a setting one side lacks differs);
        # transformers' on the keys both have, so that a transformers upgrade adding a field is not a difference
        keys = {k for k in set(recipe) | set(record.recipe) if not k.startswith("training.")}
        keys |= {k for k in set(recipe) & set(record.recipe) if k.startswith("training.")}
        missing = object()
        differ = [
            f"{k}: {record.recipe.get(k, 'unset')!r} there, {recipe.get(k, 'unset')!r} now"
            for k in sorted(keys)
            if record.recipe.get(k, missing) != recipe.get(k, missing)
        ]
    elif settings:
        saved = {**record.training, **_model_settings(record.model), "trim_db": record.preprocessing.get("trim_db")}
        differ = [
            f"{k}: {saved[k]!r} there, {v!r} now"
            for k, v in settings.items()
            if k in saved and _comparable(saved[k]) != _comparable(v)
        ]
    else:
        differ = []
    if differ:
        raise ValueError(
            f"{run_dir / 'metrics.json'}: this finished fold was trained with other settings "
            f"({'; '.join(differ)}); --resume_folds only keeps folds of the same recipe: use another --output_dir"
        )
    print(f"[ser_hf] fold {split.fold}: kept finished run {run_dir} (UA {record.ua:.4f})")
    return record.to_dict()


def _comparable(value):
    """A setting as ``--resume_folds`` compares it: a local folder by its resolved path, so that
    ``../shared/models/x`` and ``/work/shared/models/x`` name the same base model."""
    if isinstance(value, str) and ("/" in value or "\\" in value) and Path(value).is_dir():
        return str(Path(value).resolve())
    return value


def _model_settings(model: dict) -> dict:
    keys = ("family", "base_model", "finetune_mode", *MEL_CNN_SETTINGS)
    out = {k: model[k] for k in keys if k in model}
    if "lora" in model:
        out.update(lora_rank=model["lora"].get("rank"), lora_alpha=model["lora"].get("alpha"))
    return out


def run_settings(model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> dict:
    """The recipe of a run as its record stores it (training settings, model family and size, trim), for
    comparing a finished fold with the current command (``--resume_folds``)."""
    settings = training_settings(training_args, data_args)
    if model_args.model == "pretrained":
        model = {"family": "pretrained", "base_model": model_args.model_name_or_path}
        model["finetune_mode"] = model_args.finetune.mode
        if model_args.finetune.mode == "lora":
            model["lora"] = {"rank": model_args.lora_rank, "alpha": model_args.lora_alpha}
    else:
        model = {"family": "mel_cnn", **mel_cnn_settings(model_args)}
    return {**settings, **_model_settings(model), "trim_db": data_args.trim_db}


def training_settings(training_args: TrainingArguments, data_args: DataArguments) -> dict:
    """The training settings stored in the run record."""
    keys = (
        "num_train_epochs",
        "max_steps",
        "learning_rate",
        "weight_decay",
        "lr_scheduler_type",
        "warmup_steps",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "seed",
        "bf16",
        "fp16",
        "label_smoothing_factor",
        "train_sampling_strategy",
    )
    return {k: getattr(training_args, k) for k in keys} | {
        "max_duration_s": data_args.max_duration_s,
        "augment": data_args.augment,
        "class_weighted_loss": data_args.class_weighted_loss,
        "select_best_by": data_args.select_best_by,
        "ema_decay": data_args.ema_decay,
        "mixup_alpha": data_args.mixup_alpha,
    }


def summarize(folds: dict[int, dict]) -> dict:
    """Mean and sample standard deviation (ddof=1; ``None`` for one fold) of WA, UA and macro-F1 over folds
    (:func:`ser_hf.metrics.mean_std`)."""
    summary = {"num_folds": len(folds), "folds": {}}
    for key in ("wa", "ua", "macro_f1"):
        vals = [m[key] for m in folds.values()]
        summary[key] = {**mean_std(vals), "per_fold": vals}
    summary["train_wall_time_s"] = float(sum(m["runtime"].get("train_wall_time_s", 0.0) for m in folds.values()))
    summary["folds"] = {k: {"wa": m["wa"], "ua": m["ua"], "macro_f1": m["macro_f1"]} for k, m in folds.items()}
    return summary


def resolve_resume_checkpoint(training_args: TrainingArguments, data_args: DataArguments) -> str | None:
    """``--resume_from_checkpoint true`` -> the last ``checkpoint-N`` in ``--output_dir``; a path is checked.

    Raises:
        ValueError: used with ``--all_folds`` (use ``--resume_folds``), no checkpoint to resume from, or the
            path is not a checkpoint folder (the message names it).
    """
    value = training_args.resume_from_checkpoint
    if value in (None, "", "false", "False"):
        training_args.resume_from_checkpoint = None
        return None
    if data_args.all_folds:
        raise ValueError(
            "--resume_from_checkpoint resumes one fold; with --all_folds use --resume_folds true (finished folds are "
            "kept, unfinished ones trained again)"
        )
    if value in ("true", "True"):
        out = Path(training_args.output_dir)
        complete = complete_checkpoints(out) if out.is_dir() else []
        last = str(complete[-1]) if complete else None
        if last is None:
            raise ValueError(f"--resume_from_checkpoint true: no checkpoint-N folder in --output_dir {out} to resume")
        if (out / "metrics.json").exists():
            raise ValueError(
                f"--resume_from_checkpoint true: {out} holds a finished run (metrics.json); nothing to resume"
            )
        value = last
    if not (Path(value) / "trainer_state.json").is_file():
        raise ValueError(f"--resume_from_checkpoint {value}: not a Trainer checkpoint folder (no trainer_state.json)")
    training_args.resume_from_checkpoint = str(value)
    print(f"[ser_hf] resuming from {value}")
    return str(value)


def publish(run_dir: Path, training_args: TrainingArguments, token: str | None = None) -> None:
    """``--push_to_hub``: upload a finished run with its model card (:func:`ser_hf.hub.push_to_hub`)."""
    from .hub import push_to_hub

    result = push_to_hub(
        run_dir,
        training_args.hub_model_id,
        private=bool(training_args.hub_private_repo),
        revision=getattr(training_args, "hub_revision", None),
        token=token,
    )
    print(f"[ser_hf] pushed {run_dir} to {training_args.hub_model_id}: {result['url']}")


def main(argv: list[str] | None = None) -> dict:
    """Parse arguments, load and decode the corpus, then train one fold or all of them (once per ``--seeds``),
    holding the output folder's lock (:func:`ser_hf.lock.output_dir_lock`) throughout.

    Raises:
        ser_hf.lock.OutputDirLockedError: another running process writes the same ``--output_dir``.
    """
    model_args, data_args, training_args = parse_args(argv)
    # one writer per output folder: a second run into it fails at once (the first process of a distributed run
    # holds the lock for all of them)
    first = os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) in ("", "0")
    with output_dir_lock(training_args.output_dir) if first else contextlib.nullcontext():
        if data_args.seeds:
            resume = data_args.resume_folds
            return run_seeds(
                argv, data_args.seeds, Path(training_args.output_dir), data_args.overwrite_output_dir or resume
            )
        return train(model_args, data_args, training_args)


def seeds_summary(per_seed: dict[int, dict[int, dict]]) -> dict:
    """Mean +- std over seeds of ``{seed: {fold: record}}`` (records with ``wa`` / ``ua`` / ``macro_f1``).

    Returns:
        ``{"seeds", "per_fold": {fold: {metric: {"mean", "std", "per_seed"}}}, "overall": {metric: ...},
        "all_runs": {metric: ...}}``: ``overall`` is the mean +- std over seeds of each seed's mean over folds (how
        much the headline number moves with the seed); ``all_runs`` the mean +- std over every fold x seed run.
    """
    seeds = list(per_seed)
    folds = sorted(next(iter(per_seed.values())))
    summary = {"seeds": list(seeds), "per_fold": {}, "overall": {}, "all_runs": {}}
    for k in folds:
        summary["per_fold"][k] = {
            m: {**mean_std([per_seed[s][k][m] for s in seeds]), "per_seed": {s: per_seed[s][k][m] for s in seeds}}
            for m in ("wa", "ua", "macro_f1")
        }
    for m in ("wa", "ua", "macro_f1"):
        seed_means = {s: float(np.mean([per_seed[s][k][m] for k in folds])) for s in seeds}
        summary["overall"][m] = {**mean_std(seed_means.values()), "per_seed": seed_means}
        summary["all_runs"][m] = mean_std([per_seed[s][k][m] for s in seeds for k in folds])
    return summary


def run_seeds(argv: list[str] | None, seeds: list[int], root: Path, overwrite: bool = False) -> dict:
    """``--seeds``: the same command once per seed into ``root/seed_S``, then ``root/seeds_results.json``.

    Returns:
        :func:`seeds_summary` of the runs.

    Raises:
        RunExistsError: ``root`` already holds a finished ``seeds_results.json`` (and neither
            ``--overwrite_output_dir`` nor ``--all_folds --resume_folds``, which keeps every finished fold).
        ValueError: a seed given twice.
    """
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {seeds}: each seed once")
    if (root / "seeds_results.json").exists() and not overwrite:
        raise RunExistsError(f"{root} already holds seeds_results.json; choose another --output_dir")
    per_seed: dict[int, dict[int, dict]] = {}
    for seed in seeds:
        model_args, data_args, training_args = parse_args(argv)
        data_args.seeds = None
        training_args.seed = seed
        training_args.output_dir = str(root / f"seed_{seed}")
        result = train(model_args, data_args, training_args)
        per_seed[seed] = result["folds"] if data_args.all_folds else {data_args.fold: result}
    summary = seeds_summary(per_seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "seeds_results.json").write_text(json.dumps(summary, indent=2) + "\n")
    for k in summary["per_fold"]:
        print(f"[ser_hf] fold {k} over seeds {seeds}: UA {format_mean_std(summary['per_fold'][k]['ua'], digits=4)}")
    print(f"[ser_hf] over seeds {seeds}: UA {format_mean_std(summary['overall']['ua'], digits=4)} (mean over folds)")
    return summary


def train(model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> dict:
    """One fold, or every fold with ``--all_folds``, for parsed arguments (the body of :func:`main`)."""
    check_preprocessing_flags(model_args.model, data_args.trim_db, data_args.max_eval_duration_s)
    check_training_args(training_args)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    # ser_hf publishes the finished run itself (merged safetensors + model card), not the Trainer's checkpoints
    push, training_args.push_to_hub = training_args.push_to_hub, False
    # the token must not reach training_args.bin, which Trainer writes into the run and every checkpoint
    hub_token, training_args.hub_token = training_args.hub_token, None
    if push:
        from huggingface_hub import get_token

        if not training_args.hub_model_id:
            raise ValueError("--push_to_hub true needs --hub_model_id USER/NAME")
        if not (hub_token or get_token()):
            raise ValueError("--push_to_hub true needs a Hugging Face token: set HF_TOKEN or run `hf auth login`")
    select = data_args.select_best_by != "last"
    training_args.metric_for_best_model = data_args.select_best_by if select else None
    training_args.greater_is_better = data_args.select_best_by != "loss" if select else None
    training_args.load_best_model_at_end = select
    training_args.remove_unused_columns = False

    root = Path(training_args.output_dir)
    resume = data_args.resume_folds
    resume_checkpoint = resolve_resume_checkpoint(training_args, data_args)
    protected = {
        "--data_dir": data_args.data_dir,
        "--cache_dir": data_args.cache_dir,
        "--metadata": data_args.metadata,
        "--resume_from_checkpoint": resume_checkpoint,
    }
    if training_args.process_index == 0:
        # resuming accepts fold directories (a finished cross-validation is read back, fold by fold, through the
        # same recipe check)
        if not resume:
            hint = "--resume_folds true" if data_args.all_folds else "--resume_from_checkpoint true"
            check_output_dir(
                root,
                data_args.overwrite_output_dir,
                protected,
                resuming=resume_checkpoint is not None,
                resume_hint=hint,
            )
    if data_args.dataset:
        from .export import load_export

        decoded, label_names, split = load_export(
            data_args.dataset,
            data_args.dataset_config,
            data_args.sampling_rate,
            data_args.corpus,
            data_args.cache_dir,
            data_args.preprocessing_num_workers,
            training_args.seed,
        )
        metrics = run_fold(model_args, data_args, training_args, decoded, label_names, split)
        if push and training_args.process_index == 0:
            publish(root, training_args, hub_token)
        return metrics

    kwargs = {} if data_args.verify_counts else {"verify_counts": False}
    if data_args.metadata:
        kwargs["metadata"] = data_args.metadata
    if data_args.labels and data_args.corpus == "folder":
        kwargs["labels"] = list(data_args.labels)
    corpus = load_corpus(data_args.corpus, data_args.data_dir, data_args.corpus_config, data_args.cache_dir, **kwargs)
    label_names = corpus.features["label"].names
    if data_args.labels and sorted(label_names) != sorted(data_args.labels):
        raise ValueError(
            f"--labels {data_args.labels} does not match the labels of corpus {data_args.corpus!r} in "
            f"{data_args.data_dir}: {label_names}"
        )
    decoded = decode_dataset(
        corpus, data_args.sampling_rate, data_args.preprocessing_num_workers, decode_channel(data_args.corpus)
    )
    speakers = corpus["speaker"]

    def split_for(fold):
        return make_split(
            data_args.corpus,
            speakers,
            data_args.protocol,
            fold,
            data_args.num_val_speakers,
            data_args.test_speakers,
            data_args.val_speakers,
            training_args.seed,
            ids=corpus["id"],
            labels=corpus["label"],
        )

    if not data_args.all_folds:
        split = split_for(data_args.fold)
        if resume and (root / "metrics.json").exists():  # a finished fold (one seed of a --seeds grid): kept
            return reuse_fold(
                root,
                split,
                run_settings(model_args, data_args, training_args),
                recipe_of(model_args, data_args, training_args),
            )
        if resume and root.exists() and training_args.process_index == 0:
            logger.warning("--resume_folds: replacing the unfinished run in %s", root)
            remove_run(root, protected)
        metrics = run_fold(model_args, data_args, training_args, decoded, label_names, split)
        if push and training_args.process_index == 0:
            publish(root, training_args, hub_token)
        return metrics

    results = {}
    for k in range(num_folds(data_args.corpus, speakers, data_args.protocol)):
        fold_dir, split = root / f"fold_{k}", split_for(k)
        if resume:
            if (fold_dir / "metrics.json").exists():
                results[k] = reuse_fold(
                    fold_dir,
                    split,
                    run_settings(model_args, data_args, training_args),
                    recipe_of(model_args, data_args, training_args),
                )
                continue
            if training_args.process_index == 0 and fold_dir.exists():
                logger.warning("--resume_folds: replacing the unfinished fold directory %s", fold_dir)
                remove_run(fold_dir, protected)
        training_args.output_dir = str(fold_dir)
        results[k] = run_fold(model_args, data_args, training_args, decoded, label_names, split)
    summary = summarize(results)
    if training_args.process_index == 0:
        (root / "cv_results.json").write_text(json.dumps(summary, indent=2) + "\n")
    if push and training_args.process_index == 0:
        # the checkpoint chosen for publishing is the fold with the best validation score, never the best test
        best = max(results, key=lambda k: validation_ua(results[k]["runtime"]) or 0.0)
        publish(root / f"fold_{best}", training_args, hub_token)
    print(
        "[ser_hf] cross-validation: "
        + "  ".join(f"{k} {format_mean_std(summary[k], digits=4)}" for k in ("wa", "ua", "macro_f1"))
    )
    return summary


def run_cli(argv: list[str] | None = None) -> int:
    """:func:`main` for the command line (``ser-hf train``, ``scripts/finetune.py``): a bad flag, file or corpus
    prints one ``error:`` line naming it (exit status 2) instead of a traceback."""
    from .audio import AudioError
    from .corpora import CorpusError
    from .download import DownloadError

    try:
        main(argv)
    except (ValueError, OSError, CorpusError, AudioError, DownloadError, FloatingPointError) as err:
        print(f"ser-hf train: error: {err}", file=sys.stderr)
        return 2
    return 0

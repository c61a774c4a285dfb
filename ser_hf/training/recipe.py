"""A run's recipe: every setting that changes its weights, derived from the argument dataclasses, stored in the
run record and compared by ``--resume_folds`` before a finished fold is kept.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..models.summary import MEL_CNN_SETTINGS, mel_cnn_settings
from ..run import RunRecord

if TYPE_CHECKING:
    from transformers import TrainingArguments

    from ..folds import SplitDefinition
    from .arguments import DataArguments, ModelArguments

logger = logging.getLogger(__name__)


NOT_RECIPE = {
    "base_model_id": "the hub id a local copy stands for: a name on the card, not a setting",
    "data_dir": "where the corpus is; the split check compares its speakers",
    "dataset": "where the export is; the split check compares its speakers",
    "dataset_config": "which fold of an export; the split check compares its speakers",
    "cache_dir": "where caches go",
    "feature_cache_dir": "where the hidden-state caches go (their rows are keyed by what they hold)",
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
    recipe = {}
    for args in (model_args, data_args):
        for f in dataclasses.fields(args):
            if f.name not in NOT_RECIPE:
                recipe[f.name] = _comparable(getattr(args, f.name))
    for key, value in training_args.to_dict().items():
        if not key.startswith(TRAINING_NOT_RECIPE) and not key.startswith("_"):
            recipe[f"training.{key}"] = value
    return json.loads(json.dumps(recipe, default=str))


def reuse_fold(
    run_dir: Path,
    split: SplitDefinition,
    settings: dict | None = None,
    recipe: dict | None = None,
    data: dict | None = None,
) -> dict:
    """The record of a finished fold (:class:`ser_hf.run.RunRecord`, current or legacy), kept by ``--resume_folds``.

    Args:
        settings: the current run's :func:`run_settings`; a finished fold trained with other values is refused
            (the comparison for runs recorded before the whole recipe was).
        recipe: the current run's :func:`recipe_of`; compared with the finished fold's recorded recipe, every
            setting that either side has.
        data: the current run's :func:`ser_hf.data.data_identity`; its label names are compared with the
            finished fold's, and its clip-list fingerprint with the one the fold recorded (runs recorded before
            fingerprints: the labels only).

    Returns:
        The finished fold's :class:`ser_hf.run.RunRecord`, as :func:`run_fold` returns it.

    Raises:
        ValueError: the finished fold used other speakers than ``split``, other labels, other clips, or other
            settings (the message names the fold and every difference).
    """
    record = RunRecord.load(run_dir)
    if data:
        check_same_data(run_dir, record, data)
    sides = ("train_speakers", "val_speakers", "test_speakers")
    if record.split.corpus != split.corpus or any(getattr(record.split, k) != getattr(split, k) for k in sides):
        raise ValueError(
            f"{run_dir / 'metrics.json'}: this finished fold used another split than fold {split.fold} of "
            f"{split.corpus}/{split.protocol}; use another --output_dir"
        )
    if recipe and record.recipe:
        # ser_hf's own settings are compared on both sides' keys (a setting one side lacks differs, unless the
        # other side holds its default: a flag added later with a default that keeps the old behaviour);
        # transformers' on the keys both have, so that a transformers upgrade adding a field is not a difference
        keys = {k for k in set(recipe) | set(record.recipe) if not k.startswith("training.")}
        keys |= {k for k in set(recipe) & set(record.recipe) if k.startswith("training.")}
        missing = object()
        defaults = _defaults()
        differ = [
            f"{k}: {record.recipe.get(k, 'unset')!r} there, {recipe.get(k, 'unset')!r} now"
            for k in sorted(keys)
            if record.recipe.get(k, defaults.get(k, missing)) != recipe.get(k, defaults.get(k, missing))
        ]
    elif settings:
        saved = {
            **record.training.to_dict(),
            **_model_settings(record.model.to_dict()),
            "trim_db": record.preprocessing.trim_db,
        }
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
    logger.info("fold %s: kept finished run %s (UA %.4f)", split.fold, run_dir, record.ua)
    return record


def check_same_data(run_dir: Path, record: RunRecord, data: dict) -> None:
    """Refuse to keep a finished fold trained on other labels or other clips than the current command's ``data``
    (:func:`ser_hf.data.data_identity`).

    Raises:
        ValueError: naming the fold, the labels or the corpora whose clips differ, and the folders.
    """
    where = f"{run_dir / 'metrics.json'}: this finished fold"
    fix = "--resume_folds only keeps folds trained on the same data: use another --output_dir"
    if record.label_names and list(record.label_names) != list(data["labels"]):
        raise ValueError(f"{where} was trained on the labels {record.label_names}, now {data['labels']}; {fix}")
    then = record.data
    if not then.get("fingerprint") or then["fingerprint"] == data["fingerprint"]:
        return
    per_then, per_now = then.get("per_corpus") or {}, data.get("per_corpus") or {}
    differ = sorted(k for k in set(per_then) | set(per_now) if per_then.get(k) != per_now.get(k)) or ["the corpus"]
    raise ValueError(
        f"{where} was trained on other clips ({then.get('clips')} clips in {then.get('data_dir')}; now "
        f"{data['clips']} in {data.get('data_dir')}; differing: {', '.join(differ)}): a clip was added, removed, "
        f"relabelled or replaced; {fix}"
    )


def _defaults() -> dict:
    """The recipe value of every ser_hf flag left at its default."""
    from .arguments import DataArguments, ModelArguments

    out = {}
    for args in (ModelArguments, DataArguments):
        for f in dataclasses.fields(args):
            if f.default is not dataclasses.MISSING:
                out[f.name] = json.loads(json.dumps(_comparable(f.default), default=str))
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = json.loads(json.dumps(f.default_factory(), default=str))
    return out


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
        "class_weights_by_corpus": data_args.class_weights_by_corpus,
        "select_best_by": data_args.select_best_by,
        "ema_decay": data_args.ema_decay,
        "mixup_alpha": data_args.mixup_alpha,
    }

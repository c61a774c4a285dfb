"""Training and cross-validation with ``transformers.Trainer`` (the logic behind ``scripts/finetune.py``).

A run directory (one fold) ends up holding: the best checkpoint by validation UA (``config.json`` with
``id2label``, ``model.safetensors``, ``preprocessor_config.json``: the feature extractor, which holds the clip
preprocessing), the run record (:class:`ser_hf.run.RunRecord`: ``metrics.json`` and ``split.json``) and
``confusion_matrix.png``. The test scores are computed on the saved checkpoint, loaded back from the run
directory and fed through its own feature extractor, as ``pipeline("audio-classification")`` users run it.
``--all_folds`` writes one such directory per fold under ``output_dir/fold_K`` and ``cv_results.json`` with mean
and sample standard deviation (ddof=1); the layout is :mod:`ser_hf.grid`'s.

Modules, by concept:

- :mod:`.arguments`: the flags (dataclasses with help, YAML recipes), each checked once;
- :mod:`.recipe`: what changes the weights, recorded per run and compared by ``--resume_folds``;
- :mod:`.trainer`: ``SERTrainer`` (evaluation collator, EMA, mixup, weighted loss, non-finite guard);
- :mod:`.fold`: one fold, from the model to the tested checkpoint;
- :mod:`.command`: the command: lock, corpus, folds and seeds.
"""

from ..grid import RUN_ARTIFACTS, RunExistsError, check_output_dir, remove_run
from .arguments import MODELS, SELECT_BY, DataArguments, ModelArguments, check_training_args, parse_args, yaml_to_argv
from .command import PUBLISH_DIR, main, run, run_seeds, train
from .fold import build_model, resolve_resume_checkpoint, run_fold
from .recipe import NOT_RECIPE, TRAINING_NOT_RECIPE, recipe_of, reuse_fold, run_settings, training_settings
from .trainer import (
    CHECKPOINT_COMPLETE,
    EMA_STATE,
    NonFiniteGuard,
    SERTrainer,
    complete_checkpoints,
    ema_decay_at,
    validation_scores,
    weighted_ce,
)

__all__ = [
    "CHECKPOINT_COMPLETE",
    "EMA_STATE",
    "MODELS",
    "NOT_RECIPE",
    "RUN_ARTIFACTS",
    "SELECT_BY",
    "TRAINING_NOT_RECIPE",
    "DataArguments",
    "ModelArguments",
    "NonFiniteGuard",
    "RunExistsError",
    "SERTrainer",
    "build_model",
    "check_output_dir",
    "check_training_args",
    "complete_checkpoints",
    "ema_decay_at",
    "main",
    "parse_args",
    "recipe_of",
    "remove_run",
    "resolve_resume_checkpoint",
    "reuse_fold",
    "PUBLISH_DIR",
    "run_fold",
    "run",
    "run_seeds",
    "run_settings",
    "train",
    "training_settings",
    "validation_scores",
    "weighted_ce",
    "yaml_to_argv",
]

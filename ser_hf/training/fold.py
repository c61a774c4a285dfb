"""One fold: build the model, train it with :class:`ser_hf.training.trainer.SERTrainer`, ship the checkpoint users
get (LoRA merged), and test that checkpoint, loaded back through its own feature extractor, as ``pipeline()``
users run it. Writes the run directory (:class:`ser_hf.run.RunRecord`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from transformers import TrainerState, TrainingArguments, set_seed

from ..data import AudioCollator, WaveformAugment, data_identity, featurize, select_side, training_lengths
from ..environment import machine_facts
from ..metrics import plot_confusion_matrix, test_side_scores, trainer_compute_metrics
from ..models import MelCNNConfig, MelCNNFeatureExtractor, MelCNNForAudioClassification
from ..models.pretrained import apply_finetune_mode, export_merged, is_adapter_model, load_backbone, save_adapter
from ..models.summary import count_parameters, describe_model, describe_preprocessing
from ..multicorpus import corpus_class_weight_table, corpus_sample_weights
from ..run import ModelDescription, Preprocessing, RunRecord, Runtime, TrainingSettings
from .arguments import DataArguments, ModelArguments, check_preprocessing_flags, input_dirs
from .recipe import recipe_of, training_settings
from .trainer import (
    OUTPUTS_NOT_PREDICTIONS,
    NonFiniteGuard,
    SERTrainer,
    checkpoint_wall_time_s,
    complete_checkpoints,
    validation_scores,
    weighted_ce,
)

if TYPE_CHECKING:
    from ..folds import SplitDefinition

logger = logging.getLogger(__name__)


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


def run_fold(model_args, data_args, training_args, decoded, label_names, split: SplitDefinition) -> dict:
    """Train on ``split``'s train side, select by validation, test on its test side; write the run directory.

    The test scores come from the saved checkpoint loaded back from the run directory and fed through its own
    feature extractor (:func:`ser_hf.inference.predict_probabilities`), i.e. what ``pipeline()`` users get.

    Args:
        decoded: the decoded corpus (:func:`ser_hf.data.decode_dataset`): ``input_values`` float32 waveforms at
            ``--sampling_rate`` Hz, ``label``, ``num_samples``, ``speaker``.
        label_names: class names in label-index order (stored as ``id2label``).

    Returns:
        The fold's :class:`ser_hf.run.RunRecord` (also written as ``metrics.json`` and ``split.json``).
    """
    out = Path(training_args.output_dir)
    set_seed(training_args.seed)
    full = {s: select_side(decoded, split, s) for s in ("train", "validation", "test")}
    sides = {
        s: full[s].select_columns(["input_values", "label", "num_samples"]).with_format("numpy")
        for s in ("train", "validation", "test")
    }
    corpus_of = {s: full[s]["corpus"] if "corpus" in full[s].column_names else None for s in full}
    model, fe = build_model(
        model_args, label_names, data_args.sampling_rate, data_args.trim_db, data_args.max_eval_duration_s
    )
    params = count_parameters(model)
    log_fold(split.fold, {k: len(v) for k, v in sides.items()}, params)
    if data_args.class_weights_by_corpus:
        add_loss_weights(sides, corpus_of, label_names)
    weights = None
    if data_args.corpus_sampling_alpha is not None:
        weights = corpus_sample_weights(corpus_of["train"], data_args.corpus_sampling_alpha)
    trainer, cache_facts = fold_trainer(model_args, data_args, training_args, model, fe, sides, label_names, weights)
    runtime = train_and_check(trainer, data_args, training_args)
    runtime.feature_cache = cache_facts
    test_waves = [np.asarray(w, dtype=np.float32) for w in sides["test"]["input_values"]]
    description = save_shipped(trainer, model_args, fe, out, test_waves, runtime, model if cache_facts else None)

    # what users get: the saved checkpoint, loaded back, through its own feature extractor
    from ..evaluation import scores_by_corpus
    from ..inference import load_classifier, predict_probabilities

    shipped, shipped_fe = load_classifier(str(out), device=str(training_args.device))
    probs = predict_probabilities(shipped, shipped_fe, test_waves, training_args.per_device_eval_batch_size)
    pred, ref = probs.argmax(-1), np.asarray(sides["test"]["label"])
    test = test_side_scores(pred, ref, full["test"], len(label_names))
    if corpus_of["validation"] is not None:
        runtime.validation_per_corpus = scores_by_corpus(
            shipped, shipped_fe, sides["validation"], corpus_of["validation"], training_args.per_device_eval_batch_size
        )
    record = RunRecord(
        split=split,
        label_names=label_names,
        test=test,
        preprocessing=Preprocessing.from_dict(describe_preprocessing(shipped_fe)),
        model=ModelDescription.from_dict(description),
        parameters=params,
        training=TrainingSettings.from_dict(training_settings(training_args, data_args)),
        runtime=runtime,
        recipe=recipe_of(model_args, data_args, training_args),
        data=data_identity(decoded, input_dirs(data_args)),
    )
    if trainer.is_world_process_zero():
        plot_confusion_matrix(
            record.test["confusion_matrix"],
            label_names,
            out / "confusion_matrix.png",
            title=f"{split.corpus} fold {split.fold}: UA {record.ua:.3f}",
        )
        record.save(out)  # last: metrics.json is what marks the fold finished (--resume_folds keeps it)
    logger.info(
        "fold %s test: WA %.4f  UA %.4f  macro-F1 %.4f  (%.0f s)",
        split.fold,
        record.wa,
        record.ua,
        record.macro_f1,
        runtime.train_wall_time_s or runtime.resumed_wall_time_s or 0.0,
    )
    return record


def fold_trainer(model_args, data_args, training_args, model, fe, sides, label_names, weights) -> tuple:
    """The fold's :class:`SERTrainer` (:func:`make_trainer`) and, for cached-layers training
    (``--adapt_top_layers``), the cache facts of the run record: then the Trainer trains the top of ``model`` from
    the hidden-state cache (:func:`ser_hf.training.cached.prepare`); otherwise the facts are ``None``."""
    if model_args.adapt_top_layers is None:
        return make_trainer(model_args, data_args, training_args, model, fe, sides, len(label_names), weights), None
    from .cached import prepare

    top, cached, train_collator, eval_collator, facts = prepare(model, fe, sides, model_args, data_args, training_args)
    trainer = make_trainer(
        model_args, data_args, training_args, top, fe, cached, len(label_names), weights,
        collators=(train_collator, eval_collator),
    )  # fmt: skip
    return trainer, facts


def log_fold(fold: int | None, clips: dict[str, int], params: dict) -> None:
    """Log a fold's side sizes and trainable parameters (:func:`ser_hf.models.summary.count_parameters`)."""
    logger.info(
        "fold %s: train %d / validation %d / test %d clips; trainable parameters %s of %s (%.2f %%; backbone %s of "
        "%s = %.2f %%, head %s)",
        fold,
        clips["train"],
        clips["validation"],
        clips["test"],
        f"{params['trainable']:,}",
        f"{params['total']:,}",
        100 * params["trainable_share"],
        f"{params['trainable_backbone']:,}",
        f"{params['backbone']:,}",
        100 * params["trainable_backbone_share"],
        f"{params['head']:,}",
    )


def add_loss_weights(sides: dict, corpus_of: dict, label_names: list[str]) -> None:
    """Give the train and validation sides a ``loss_weight`` column (``--class_weights_by_corpus``): each clip's
    weight from :func:`ser_hf.multicorpus.corpus_class_weight_table` of the train side (a validation pair the
    train side lacks weighs 1). ``sides`` is updated in place; the table is logged."""
    table = corpus_class_weight_table(corpus_of["train"], sides["train"]["label"])
    logger.info(
        "loss weights by corpus and class: %s", {f"{c}/{label_names[y]}": round(w, 3) for (c, y), w in table.items()}
    )
    for s in ("train", "validation"):
        w = [table.get((c, int(y)), 1.0) for c, y in zip(corpus_of[s], sides[s]["label"])]
        sides[s] = sides[s].add_column("loss_weight", w).with_format("numpy")


def make_trainer(
    model_args, data_args, training_args, model, fe, sides: dict, num_labels: int, sample_weights=None, collators=None
) -> SERTrainer:
    """The :class:`SERTrainer` of one fold: length-grouped batches when asked, the class-weighted loss
    (inverse class frequency of the train side; with ``--class_weights_by_corpus`` the sides' ``loss_weight``
    column instead), augmentation and random crops on training batches only, and
    ``sample_weights`` (one per training clip) for corpus-balanced sampling.

    Args:
        collators: ``(train, eval)`` collators replacing the waveform ones (cached-layers training, whose sides
            hold cache rows rather than waveforms: no length grouping then).
    """
    grouped = training_args.train_sampling_strategy == "group_by_length"
    if grouped and collators is None:  # batches of similar length: less padding
        name = training_args.length_column_name
        lengths = training_lengths(sides["train"]["input_values"], fe)
        sides["train"] = sides["train"].remove_columns([c for c in [name] if c in sides["train"].column_names])
        sides["train"] = sides["train"].add_column(name, lengths).with_format("numpy")

    loss_func = None
    if data_args.class_weighted_loss and not data_args.class_weights_by_corpus:  # by corpus: the sides' loss_weight
        counts = np.bincount(np.asarray(sides["train"]["label"]), minlength=num_labels).astype(float)
        weights = torch.tensor(counts.sum() / (num_labels * np.maximum(counts, 1)), dtype=torch.float32)
        loss_func = weighted_ce(weights, training_args.label_smoothing_factor)

    if collators is None:
        augment = WaveformAugment() if data_args.augment else None
        seed, crop = training_args.seed, data_args.max_duration_s
        collators = (
            AudioCollator(fe, train=True, max_duration_s=crop, augment=augment, seed=seed),
            AudioCollator(fe, train=False),
        )
    train_collator, eval_collator = collators
    return SERTrainer(
        eval_data_collator=eval_collator,
        model=model,
        args=training_args,
        train_dataset=sides["train"],
        eval_dataset=sides["validation"],
        data_collator=train_collator,
        processing_class=fe,
        compute_metrics=trainer_compute_metrics(num_labels),
        compute_loss_func=loss_func,
        callbacks=[NonFiniteGuard()],
        ema_decay=data_args.ema_decay,
        mixup_alpha=data_args.mixup_alpha,
        train_sample_weights=sample_weights,
    )


def train_and_check(trainer: SERTrainer, data_args, training_args) -> Runtime:
    """Train; refuse a model holding NaN / inf weights.

    Returns:
        The run record's ``runtime`` section: wall time (seconds), the shipped checkpoint and its validation
        scores, the device, thread count and world size.

    Raises:
        FloatingPointError: a weight tensor of the trained model is not finite (nothing is saved as finished).
    """
    # read the checkpoint resumed from now: the Trainer rotates it away (save_total_limit) while training
    resumed = training_args.resume_from_checkpoint
    resumed_epoch, wall_before = resume_point(resumed) if resumed else (None, None)
    start = time.time()
    trainer.train_started, trainer.wall_time_before_s = start, wall_before or 0.0
    train_result = trainer.train(resume_from_checkpoint=resumed, ignore_keys_for_eval=OUTPUTS_NOT_PREDICTIONS)
    wall = time.time() - start
    bad = [n for n, p in trainer.model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise FloatingPointError(
            f"{len(bad)} weight tensors of the trained model hold NaN / inf (e.g. {bad[0]}); nothing was saved as a "
            "finished run (lower --learning_rate, or check the data)"
        )
    select = data_args.select_best_by != "last"
    shipped_validation = validation_scores(trainer.state, trainer.state.best_global_step if select else None)
    if resumed:
        before = "an unrecorded time" if wall_before is None else f"{wall_before:.0f} s"
        logger.info("resumed at epoch %.2f of %s: %s trained before, %.0f s now", resumed_epoch, resumed, before, wall)
    return Runtime(
        # the whole training's wall time; unknown (None) when an older checkpoint did not record its part
        train_wall_time_s=None if resumed and wall_before is None else wall + (wall_before or 0.0),
        train_runtime_s=train_result.metrics.get("train_runtime"),
        best_checkpoint=trainer.state.best_model_checkpoint,
        best_validation=shipped_validation.get(data_args.select_best_by if select else "ua"),
        validation=shipped_validation,
        select_best_by=data_args.select_best_by,
        device=str(training_args.device) + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else ""),
        threads=torch.get_num_threads(),
        machine=machine_facts(),
        world_size=training_args.world_size,
        train_clips=len(trainer.train_dataset),
        epochs_run=float(trainer.state.epoch or 0.0),
        resumed_from_epoch=resumed_epoch,
        resumed_wall_time_s=wall if resumed else None,
    )


def resume_point(checkpoint: str) -> tuple[float, float | None]:
    """Where a run continues from: the epoch of the Trainer checkpoint (its ``trainer_state.json``) and the wall
    time in seconds trained until it was written (:func:`ser_hf.training.trainer.checkpoint_wall_time_s`; ``None``
    for a checkpoint written before ser_hf recorded it). Read before training starts, since the Trainer may
    delete the checkpoint (``save_total_limit``) once it has saved a newer one."""
    epoch = float(TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json")).epoch or 0.0)
    return epoch, checkpoint_wall_time_s(checkpoint)


def save_shipped(
    trainer: SERTrainer, model_args, fe, out: Path, test_waves: list, runtime: Runtime, full_model=None
) -> dict:
    """Write the checkpoint users get into ``out``: LoRA adapters saved, then merged into a plain transformers
    checkpoint (the largest logit difference to the adapter model goes into ``runtime``); other models as the
    Trainer saves them (the best checkpoint with ``load_best_model_at_end``).

    Args:
        full_model: cached-layers training: the full model whose top the Trainer trained (it shares the trained
            modules); it is what is saved, with the feature extractor, instead of the Trainer's model.

    Returns:
        :func:`ser_hf.models.summary.describe_model` of the trained model (with ``base_model_id`` when given).
    """
    trained = full_model if full_model is not None else trainer.accelerator.unwrap_model(trainer.model)
    description = describe_model(trained, model_args.model_name_or_path, model_args.finetune)
    if model_args.model == "pretrained" and model_args.base_model_id:
        description["base_model_id"] = model_args.base_model_id
    if trainer.is_world_process_zero():
        if is_adapter_model(trained):
            # adapter-only artifact first: merging below changes the model in place
            save_adapter(trained, out / "adapter")
            diff = export_merged(trained, fe, out, featurize(fe, test_waves[:8]))
            runtime.export_max_abs_logit_diff = diff
            logger.info("merged LoRA export: largest logit difference to the adapter model %.2e", diff)
        elif full_model is not None:
            full_model.save_pretrained(str(out))
            fe.save_pretrained(str(out))
        else:
            trainer.save_model(str(out))  # best checkpoint (load_best_model_at_end) + feature extractor
    trainer.accelerator.wait_for_everyone()
    return description


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
    logger.info("resuming from %s", value)
    return str(value)

"""``SERTrainer``: ``transformers.Trainer`` with the evaluation collator, weight averaging (EMA), mixup, the
class-weighted loss and the non-finite guard; and the checkpoint files it writes.

Which ``Trainer`` methods it overrides, private ones included, is pinned by ``tests/test_trainer_contract.py``, so
that a transformers release that renames or re-signs one fails there rather than silently skipping EMA or resume.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from transformers import Trainer, TrainerCallback

from ..data import length_batches
from ..lock import disk_full_hint
from ..models.pretrained import load_extra_weights, save_extra_weights

logger = logging.getLogger(__name__)

# model outputs that are not predictions (a weighted layer sum makes models return every hidden layer)
OUTPUTS_NOT_PREDICTIONS = ["hidden_states", "attentions"]


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


EMA_STATE = "ema_state.pt"
"""Checkpoint file of a run with ``--ema_decay``: the raw (not averaged) trainable weights and buffers, and the
number of averaged steps, so that ``--resume_from_checkpoint`` continues both (the checkpoint's model weights are
the averaged ones)."""
CHECKPOINT_COMPLETE = ".ser_hf_complete"
"""Written into a ``checkpoint-N`` folder once all its files are: resuming never takes a half-written one. It holds
JSON ``{"train_wall_time_s": seconds}``, the wall time the run had trained when the checkpoint was written
(earlier processes of a resumed run included), which a resumed run's record adds to its own
(:func:`checkpoint_wall_time_s`); markers written before that hold plain text."""


def checkpoint_wall_time_s(checkpoint: str | Path) -> float | None:
    """The training wall time, in seconds, recorded in a checkpoint's :data:`CHECKPOINT_COMPLETE` marker; ``None``
    for a checkpoint without one or with an older, plain-text marker."""
    try:
        value = json.loads((Path(checkpoint) / CHECKPOINT_COMPLETE).read_text()).get("train_wall_time_s")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if value is not None else None


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

    With ``train_sample_weights`` training clips are drawn in proportion to them (corpus-balanced sampling over
    several corpora) instead of shuffled.

    Batches carrying ``loss_weights`` ``(batch_size,)`` (:class:`ser_hf.data.AudioCollator` from a ``loss_weight``
    column; ``--class_weights_by_corpus``) get the weighted mean of the per-clip cross-entropy,
    ``sum_i w_i * ce_i / sum_i w_i``, in training and validation, instead of ``compute_loss_func``.

    With ``mixup_alpha > 0`` every training batch is mixed with a shuffled copy of itself (mixup, Zhang et al.
    2018, https://arxiv.org/abs/1710.09412): the model input (waveforms ``input_values`` or Whisper's log-mel
    ``input_features``) becomes ``lam * x + (1 - lam) * x[perm]`` with ``lam ~ Beta(alpha, alpha)`` drawn per
    batch, the padding mask covers both clips, and the loss is ``lam * loss(y) + (1 - lam) * loss(y[perm])``. The
    draws come from a generator seeded with ``args.seed``; evaluation is never mixed.
    """

    MIXED_INPUTS = ("input_values", "input_features")

    def __init__(
        self,
        *args,
        eval_data_collator=None,
        ema_decay: float | None = None,
        mixup_alpha: float = 0.0,
        train_sample_weights=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.train_sample_weights = train_sample_weights
        # wall-clock bookkeeping for checkpoints (CHECKPOINT_COMPLETE): set by whoever starts training
        self.train_started: float | None = None
        self.wall_time_before_s = 0.0
        self.eval_data_collator = eval_data_collator or self.data_collator
        self.mixup_alpha = mixup_alpha
        self._mixup_rng = np.random.default_rng(self.args.seed)
        self.ema_decay = ema_decay
        self.ema = None  # torch.optim.swa_utils.AveragedModel, made at the first step (or from a resumed checkpoint)
        if ema_decay:
            self.add_callback(_UpdateEMA(self))

    def _get_train_sampler(self, train_dataset=None):
        """With ``train_sample_weights`` (one per training clip, e.g.
        :func:`ser_hf.multicorpus.corpus_sample_weights`): clips drawn with replacement in proportion to them,
        one epoch being as many draws as clips, from a generator seeded with ``args.seed``."""
        if self.train_sample_weights is None:
            return super()._get_train_sampler(train_dataset)
        generator = torch.Generator()
        generator.manual_seed(self.args.seed)
        weights = torch.as_tensor(np.asarray(self.train_sample_weights), dtype=torch.float64)
        return torch.utils.data.WeightedRandomSampler(weights, len(weights), replacement=True, generator=generator)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        weights = inputs.get("loss_weights")  # (batch_size,) per-clip loss weights, or None
        key = next((k for k in self.MIXED_INPUTS if k in inputs), None)
        mixing = bool(self.mixup_alpha and model.training and "labels" in inputs and key)
        if weights is None and not mixing:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs["labels"]
        model_inputs = {k: v for k, v in inputs.items() if k not in ("labels", "loss_weights")}
        lam, perm = 1.0, None
        if mixing:
            lam = float(self._mixup_rng.beta(self.mixup_alpha, self.mixup_alpha))
            perm = torch.as_tensor(self._mixup_rng.permutation(len(labels)), device=labels.device)
            model_inputs[key] = lam * inputs[key] + (1 - lam) * inputs[key][perm]
            if "attention_mask" in inputs:
                mask = inputs["attention_mask"]
                model_inputs["attention_mask"] = torch.maximum(mask, mask[perm])
        outputs = model(**model_inputs)

        def loss_of(y, w):
            smoothing = self.args.label_smoothing_factor
            if w is not None:  # weighted mean over the batch, as cross_entropy's per-class weights normalise
                per_clip = torch.nn.functional.cross_entropy(
                    outputs["logits"], y, reduction="none", label_smoothing=smoothing
                )
                return (w * per_clip).sum() / w.sum()
            if self.compute_loss_func is not None:
                return self.compute_loss_func(outputs, y, num_items_in_batch=num_items_in_batch)
            return torch.nn.functional.cross_entropy(outputs["logits"], y, label_smoothing=smoothing)

        loss = loss_of(labels, weights)
        if perm is not None:
            loss = lam * loss + (1 - lam) * loss_of(labels[perm], None if weights is None else weights[perm])
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
            wall = None if self.train_started is None else self.wall_time_before_s + time.time() - self.train_started
            (folder / CHECKPOINT_COMPLETE).write_text(json.dumps({"train_wall_time_s": wall}) + "\n")

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

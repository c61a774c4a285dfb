"""Weight averaging (``--ema_decay``): what validation scores, what checkpoints hold, what ships, and resuming."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback, TrainingArguments

from ser_hf.data import AudioCollator
from ser_hf.training import EMA_STATE, DataArguments, ModelArguments, SERTrainer, build_model, ema_decay_at


class RecordWeights(TrainerCallback):
    """The raw weights after every optimizer step (before the average is folded in)."""

    def __init__(self):
        self.steps = []

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.steps.append({k: v.detach().clone() for k, v in model.state_dict().items()})


def make_trainer(out, decay, max_steps, record=None, load_best=False):
    torch.manual_seed(0)
    model, extractor = build_model(ModelArguments(channels=[4]), ["a", "b"], 16000)
    rng = np.random.default_rng(0)
    import datasets

    waves = [rng.standard_normal(8000).astype(np.float32) * 0.1 for _ in range(8)]
    ds = datasets.Dataset.from_dict({"input_values": waves, "label": [0, 1] * 4}).with_format("numpy")
    args = TrainingArguments(
        str(out),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        max_steps=max_steps,
        learning_rate=0.05,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        load_best_model_at_end=load_best,
        metric_for_best_model="loss" if load_best else None,
        remove_unused_columns=False,
        report_to="none",
        seed=0,
        data_seed=0,
        disable_tqdm=True,
    )
    collate = AudioCollator(extractor, train=False)  # deterministic: no augmentation, no random crop
    trainer = SERTrainer(
        model=model,
        args=args,
        train_dataset=ds,
        eval_dataset=ds,
        data_collator=collate,
        eval_data_collator=collate,
        ema_decay=decay,
        callbacks=[record] if record else None,
    )
    return trainer


@pytest.mark.slow
def test_the_shipped_model_and_checkpoints_hold_the_exponential_average(tmp_path):
    decay, record = 0.6, RecordWeights()
    trainer = make_trainer(tmp_path / "run", decay, 4, record)
    trainer.train()
    assert len(record.steps) == 4
    expected = {k: v.clone() for k, v in record.steps[0].items()}  # the first step is copied
    for n, weights in enumerate(record.steps[1:], start=1):
        d = ema_decay_at(decay, n)  # warm-up: min(decay, (1 + n) / (10 + n))
        for k, v in weights.items():
            if v.dtype.is_floating_point:
                expected[k] = d * expected[k] + (1 - d) * v
    final = trainer.model.state_dict()
    raw = record.steps[-1]
    moved = [k for k in expected if expected[k].dtype.is_floating_point and not torch.equal(expected[k], raw[k])]
    assert moved, "the average should differ from the last raw weights"
    for k in moved:
        torch.testing.assert_close(final[k], expected[k])
    # the last checkpoint holds the averaged weights, and the raw ones for resuming
    saved = load_file(tmp_path / "run" / "checkpoint-4" / "model.safetensors")
    for k in moved:
        torch.testing.assert_close(saved[k], expected[k])
    state = torch.load(tmp_path / "run" / "checkpoint-4" / EMA_STATE, weights_only=True)
    assert state["n_averaged"] == 4
    names = [*dict(trainer.model.named_parameters()), *dict(trainer.model.named_buffers())]
    for i, tensor in state["raw_weights"].items():
        torch.testing.assert_close(tensor, raw[names[int(i)]])


@pytest.mark.slow
def test_validation_scores_the_average_and_training_goes_on_with_the_raw_weights(tmp_path):
    trainer = make_trainer(tmp_path / "run", 0.6, 2)
    seen = []

    class Spy(TrainerCallback):
        def on_evaluate(self, args, state, control, model=None, **kwargs):
            seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})

    trainer.add_callback(Spy())
    record = RecordWeights()
    trainer.add_callback(record)
    trainer.train()
    averaged = {k: v.clone() for k, v in record.steps[0].items()}
    for k, v in record.steps[1].items():
        if v.dtype.is_floating_point:
            averaged[k] = ema_decay_at(0.6, 1) * averaged[k] + (1 - ema_decay_at(0.6, 1)) * v
    raw = record.steps[1]
    floats = [k for k in averaged if averaged[k].dtype.is_floating_point]
    key = max(floats, key=lambda k: float((averaged[k] - raw[k]).abs().max()))
    torch.testing.assert_close(seen[0][key], averaged[key])  # evaluated after step 2: the average
    assert not torch.equal(seen[0][key], raw[key])


@pytest.mark.slow
def test_resuming_continues_the_average_and_the_raw_weights(tmp_path):
    whole = make_trainer(tmp_path / "whole", 0.6, 4)
    whole.train()

    class Interrupt(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            control.should_training_stop = True  # killed right after checkpoint-2 was written

    first = make_trainer(tmp_path / "cut", 0.6, 4)
    first.add_callback(Interrupt())
    first.train()
    assert not (tmp_path / "cut" / "checkpoint-4").exists()
    resumed = make_trainer(tmp_path / "cut", 0.6, 4)
    resumed.train(resume_from_checkpoint=str(tmp_path / "cut" / "checkpoint-2"))
    for k, v in whole.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, msg=k)


def test_the_decay_warms_up_to_its_setting():
    assert ema_decay_at(0.99, 1) == pytest.approx(2 / 11) and ema_decay_at(0.99, 10_000) == 0.99
    assert ema_decay_at(0.5, 100) == 0.5


def test_ema_decay_and_select_best_by_are_checked():
    with pytest.raises(ValueError, match="--ema_decay must lie strictly between 0 and 1"):
        DataArguments(data_dir="x", ema_decay=1.0)
    with pytest.raises(ValueError, match="choose one of ua, wa, macro_f1, loss, last"):
        DataArguments(data_dir="x", select_best_by="best")


def test_mixup_mixes_inputs_and_targets_with_one_beta_draw(tmp_path):
    trainer = make_trainer(tmp_path / "run", None, 1)
    trainer.mixup_alpha = 0.4
    model = trainer.model.train()
    model.config.dropout, model.dropout.p, model.config.spec_augment = 0.0, 0.0, False
    x = torch.randn(4, 8000)
    labels = torch.tensor([0, 1, 1, 0])
    inputs = {"input_values": x, "attention_mask": torch.ones(4, 8000, dtype=torch.long), "labels": labels}
    rng = np.random.default_rng(123)
    lam, perm = rng.beta(0.4, 0.4), rng.permutation(4)
    trainer._mixup_rng = np.random.default_rng(123)
    torch.manual_seed(0)
    loss = trainer.compute_loss(model, inputs)
    logits = model(lam * x + (1 - lam) * x[perm]).logits  # batch norm in training mode: same batch, same statistics
    ce = torch.nn.functional.cross_entropy
    expected = lam * ce(logits, labels) + (1 - lam) * ce(logits, labels[torch.as_tensor(perm)])
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
    # evaluation is never mixed
    model.eval()
    torch.testing.assert_close(trainer.compute_loss(model, inputs), model(x, labels=labels).loss)


def test_loss_weights_give_the_weighted_mean_of_the_per_clip_cross_entropy(tmp_path):
    trainer = make_trainer(tmp_path / "run", None, 1)
    model = trainer.model.eval()
    x, labels = torch.randn(4, 8000), torch.tensor([0, 1, 1, 0])
    weights = [2, 1, 1, 0]
    rows = [{"input_values": w.numpy(), "label": int(y), "loss_weight": lw} for w, y, lw in zip(x, labels, weights)]
    batch = trainer.eval_data_collator(rows)  # AudioCollator carries the column
    torch.testing.assert_close(batch["loss_weights"], torch.tensor([2.0, 1.0, 1.0, 0.0]))
    w = batch["loss_weights"]
    ce = torch.nn.functional.cross_entropy
    per_clip = ce(model(batch["input_values"]).logits, labels, reduction="none")
    loss = trainer.compute_loss(model, {"input_values": batch["input_values"], "labels": labels, "loss_weights": w})
    torch.testing.assert_close(loss, (w * per_clip).sum() / w.sum())
    assert not torch.isclose(loss, per_clip.mean())  # the weights count
    plain = trainer.compute_loss(model, {"input_values": x, "labels": labels, "loss_weights": torch.ones(4)})
    torch.testing.assert_close(plain, model(x, labels=labels).loss)  # equal weights: the plain loss


def test_mixup_alpha_is_checked():
    with pytest.raises(ValueError, match="--mixup_alpha must be >= 0"):
        DataArguments(data_dir="x", mixup_alpha=-0.1)

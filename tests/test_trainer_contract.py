"""The transformers ``Trainer`` methods SERTrainer overrides or calls, pinned: a transformers release that renames
one or changes its parameters fails here, by name, instead of silently skipping EMA, checkpoint markers or the
evaluation collator."""

import inspect

import pytest
from transformers import Trainer

from ser_hf.training import SERTrainer

CONTRACT = {
    # private: EMA weights and the completion marker in every checkpoint, EMA state on resume
    "_save_checkpoint": ["self", "model", "trial"],
    "_load_from_checkpoint": ["self", "resume_from_checkpoint", "model"],
    "_get_output_dir": ["self", "trial"],
    # private: LoRA's extra trainable weights (layer_weights) saved with the model and restored with the best one
    "_save": ["self", "output_dir", "state_dict"],
    "_load_best_model": ["self"],
    # private: corpus-balanced sampling over several corpora (--corpus_sampling_alpha)
    "_get_train_sampler": ["self", "train_dataset"],
    # public
    "compute_loss": ["self", "model", "inputs", "return_outputs", "num_items_in_batch"],
    "get_eval_dataloader": ["self", "eval_dataset"],
    "get_test_dataloader": ["self", "test_dataset"],
    "evaluate": ["self", "eval_dataset", "ignore_keys", "metric_key_prefix"],
    "train": ["self", "resume_from_checkpoint", "trial", "ignore_keys_for_eval"],
}


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_trainer_still_has_the_method_with_the_parameters_sertrainer_relies_on(name):
    method = getattr(Trainer, name, None)
    assert method is not None, f"transformers.Trainer.{name} is gone: SERTrainer's override of it no longer runs"
    assert list(inspect.signature(method).parameters)[: len(CONTRACT[name])] == CONTRACT[name], (
        f"transformers.Trainer.{name} changed its parameters to {list(inspect.signature(method).parameters)}"
    )
    assert name in SERTrainer.__dict__ or name == "_get_output_dir"  # each one is overridden (or called) on purpose

#!/usr/bin/env python
"""Train a speech emotion recognition model under a speaker-independent protocol.

Launch (single process, CPU or one GPU):
    accelerate launch scripts/finetune.py configs/ravdess_melcnn.yaml --data_dir ../shared/data/ravdess-16k --fold 0
    python scripts/finetune.py configs/ravdess_melcnn.yaml --data_dir DIR --all_folds true --output_dir runs/cv

The YAML file gives defaults for every flag (ser_hf.training.ModelArguments, DataArguments and
transformers.TrainingArguments); flags on the command line override it. See ser_hf/training/__init__.py for
what a run directory holds and which module does what; ser_hf/train_command.py publishes (--push_to_hub).
"""

import sys

from ser_hf.train_command import run_cli

if __name__ == "__main__":
    sys.exit(run_cli())

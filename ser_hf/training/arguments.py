"""The arguments of ``scripts/finetune.py``: :class:`ModelArguments`, :class:`DataArguments` and
``transformers.TrainingArguments``, read from a YAML recipe and the command line; every flag is checked here, once.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser, TrainingArguments

from ..corpora import CORPORA, MANUAL_ONLY, NAMED_CORPORA, CorpusSelection, corpus_list, data_dirs
from ..folds import PROTOCOLS
from ..models.pretrained import FINETUNE_MODES, FinetuneSettings
from ..specs import read_layered_yaml

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


FETCHABLE = [name for name in NAMED_CORPORA if name not in MANUAL_ONLY]


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
    adapt_top_layers: int | None = field(
        default=None,
        metadata={
            "help": "pretrained: cached-layers training. Adapt only the top K encoder layers (counted from the top; "
            "LoRA with --finetune_mode lora, every weight with full) and the head; the layers below are frozen, run "
            "once per clip and view, and their output cached in float16 (--feature_cache_dir). 0: a weighted-layer-"
            "sum head over the frozen encoder (--finetune_mode frozen; EmoBox's protocol). Unset: every layer runs "
            "in every step. The saved checkpoint is the full model either way."
        },
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
            adapt_top_layers=self.adapt_top_layers,
        )
        if self.adapt_top_layers is not None and self.model != "pretrained":
            raise ValueError(f"--adapt_top_layers applies to --model pretrained, not {self.model!r}")


@dataclass
class DataArguments:
    """Corpus, split protocol, audio handling and run-level options."""

    data_dir: str = field(
        default=None,
        metadata={
            "help": "Folder holding the corpus in its documented layout; without it RAVDESS / EmoV-DB are fetched "
            "into the Hugging Face cache on first use. Several corpora: NAME=DIR,NAME=DIR (ser_hf.multicorpus)."
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
    corpus: str = field(
        default="ravdess",
        metadata={
            "help": "Corpus name (ser_hf.corpora.CORPORA), or several joined by commas to train on all of them "
            "(ravdess,emovo,eyase,urdu; see ser_hf.multicorpus)."
        },
    )
    test_corpus: str | None = field(
        default=None, metadata={"help": "Protocol 'loco' (several corpora): the corpus left out, tested whole."}
    )
    corpus_sampling_alpha: float | None = field(
        default=None,
        metadata={
            "help": "Several corpora: draw training clips so that corpus c is sampled with probability proportional "
            "to n_c ** alpha (n_c: its training clips; 1 = as they come, 0 = every corpus equally often); unset: "
            "plain shuffling."
        },
    )
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
    class_weights_by_corpus: bool = field(
        default=False,
        metadata={
            "help": "Several corpora, with --class_weighted_loss: inverse class frequency within each corpus "
            "(each corpus's classes count equally, the corpus keeps its share of the loss) instead of over the "
            "union of the corpora (ser_hf.multicorpus.corpus_class_weight_table)."
        },
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
    cache_views: int = field(
        default=1,
        metadata={
            "help": "--adapt_top_layers: views stored per training clip in the hidden-state cache: view 0 is the clip "
            "as evaluation sees it, views 1..V-1 augmented (--augment) and randomly cropped (--max_duration_s); "
            "each time a clip is drawn one of its V views is used."
        },
    )
    cached_mask_time_prob: float = field(
        default=0.0,
        metadata={
            "help": "--adapt_top_layers: share of the cached frames masked (set to zero) in training, in spans of "
            "--cached_mask_time_length frames (wav2vec2's mask_time_prob in the hidden-state domain); 0: none. 0.1 "
            "lowered RAVDESS validation UA by 0.11 (docs/results/cached_masking_ravdess)."
        },
    )
    cached_mask_time_length: int = field(
        default=10, metadata={"help": "--adapt_top_layers: frames per masked span (20 ms each for these encoders)."}
    )
    feature_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "--adapt_top_layers: folder of the hidden-state caches (default: CACHE_DIR/ser_hf_hidden_states "
            "with --cache_dir, else ~/.cache/ser_hf/hidden_states); one cache serves every fold, seed and split."
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
        names = corpus_list(self.corpus)  # every name checked, the valid ones listed
        dirs = None
        if len(names) > 1:
            if self.dataset is not None:
                raise ValueError(f"--dataset trains one exported corpus, not --corpus {self.corpus}")
            dirs = data_dirs(names, self.data_dir)  # every NAME=DIR checked
        elif self.data_dir and "=" in self.data_dir and self.data_dir.partition("=")[0].strip() in CORPORA:
            name, _, folder = self.data_dir.partition("=")  # NAME=DIR with one corpus: the same corpus only
            if name.strip() != self.corpus:
                raise ValueError(
                    f"--data_dir {self.data_dir} names corpus {name.strip()!r}, not --corpus {self.corpus}"
                )
            if not folder.strip():
                raise ValueError(f"--data_dir {self.data_dir} has no folder; expected {self.corpus}=DIR or DIR")
            self.data_dir = folder.strip()
        elif self.data_dir is None and self.dataset is None and self.corpus in (*MANUAL_ONLY, "folder"):
            raise ValueError(
                f"--data_dir is required for corpus {self.corpus!r}: the folder holding it (the corpora that "
                f"`ser-hf download` fetches are fetched on first use without it: {', '.join(FETCHABLE)})"
            )
        # --corpus / --data_dir as a typed value, parsed once, here
        self.selection = CorpusSelection(tuple(names), dirs or {names[0]: self.data_dir})
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"--protocol {self.protocol!r} is not valid; choose one of {', '.join(PROTOCOLS)}")
        if (self.protocol == "loco") != (self.test_corpus is not None) or (
            self.test_corpus is not None and self.test_corpus not in names
        ):
            raise ValueError(
                f"--protocol loco goes with --test_corpus, one of the corpora of --corpus {self.corpus} (got "
                f"--protocol {self.protocol}, --test_corpus {self.test_corpus})"
            )
        if self.corpus_sampling_alpha is not None and not (0 <= self.corpus_sampling_alpha <= 1 and len(names) > 1):
            raise ValueError(
                f"--corpus_sampling_alpha {self.corpus_sampling_alpha}: a number in [0, 1], for several corpora "
                f"(--corpus {self.corpus})"
            )
        if self.class_weights_by_corpus and not (self.class_weighted_loss and len(names) > 1):
            raise ValueError(
                "--class_weights_by_corpus true goes with --class_weighted_loss true and several corpora "
                f"(got --class_weighted_loss {self.class_weighted_loss}, --corpus {self.corpus})"
            )
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
        if self.cache_views < 1:
            raise ValueError(f"--cache_views must be 1 or more (view 0 is the clip itself), got {self.cache_views}")
        if not 0 <= self.cached_mask_time_prob < 1:
            raise ValueError(f"--cached_mask_time_prob must be in [0, 1), got {self.cached_mask_time_prob}")
        if self.cached_mask_time_length < 1:
            raise ValueError(f"--cached_mask_time_length must be 1 or more frames, got {self.cached_mask_time_length}")

    def feature_cache_root(self) -> Path:
        """The folder of the hidden-state caches (``--feature_cache_dir``, see its help)."""
        if self.feature_cache_dir:
            return Path(self.feature_cache_dir).expanduser()
        if self.cache_dir:
            return Path(self.cache_dir).expanduser() / "ser_hf_hidden_states"
        return Path.home() / ".cache" / "ser_hf" / "hidden_states"


def yaml_to_argv(path: str | os.PathLike, takes_list: dict[str, bool] | None = None) -> list[str]:
    """Turn a flat YAML mapping into ``--key value`` arguments (lists become several values, nulls are skipped).
    A ``base:`` recipe is read first and the file's keys override it (:func:`ser_hf.specs.read_layered_yaml`).

    Args:
        takes_list: ``{"--flag": whether it takes several values}`` (``--channels 16 32``, ``--seeds 42 43``); a
            list given to a one-value flag is then an error. Flags it does not name are not checked here.

    Raises:
        ValueError: the file is not a flat mapping of scalars and lists, or a list is given to a one-value flag
            (one line naming the file, the key, the value and what was expected).
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    data = read_layered_yaml(path, "a mapping of argument names to values") or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of argument names to values, got {type(data).__name__}")
    argv = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, dict):
            raise ValueError(f"{path}: key {key!r} holds a mapping; only scalars and lists are supported")
        if isinstance(value, list) and not (takes_list or {}).get(f"--{key}", True):
            raise ValueError(f"{path}: {key} is {value!r}; expected one value, not a list")
        argv.append(f"--{key}")
        argv += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return argv


def parse_args(argv: list[str] | None = None):
    """Parse ``[CONFIG.yaml] [--flag value ...]``: the YAML gives defaults, command-line flags override them."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments))
    parser.allow_abbrev = False  # --num_train_epoch is an error, not --num_train_epochs
    source = f"{argv[0]} or the command line: " if argv and argv[0].endswith((".yaml", ".yml")) else ""

    def one_line_error(message: str):  # argparse would print its usage, then the error, and exit
        raise ValueError(f"{source}{message} (scripts/finetune.py --help lists the flags)")

    parser.error = one_line_error
    if argv and argv[0].endswith((".yaml", ".yml")):
        takes_list = {o: a.nargs in ("+", "*") for a in parser._actions for o in a.option_strings}
        from_yaml = yaml_to_argv(argv[0], takes_list)
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


def input_dirs(data_args: DataArguments) -> dict[str, str | None]:
    """``{corpus: data folder}`` of a run's input (``{"dataset": export}`` for ``--dataset``), for its record."""
    if data_args.dataset:
        return {"dataset": data_args.dataset}
    return dict(data_args.selection.dirs)

"""The training command (``scripts/finetune.py``, ``ser-hf train``): parse, lock the output folder, load and decode
the corpus, then run one fold, every fold (``--all_folds``) or each of them once per seed (``--seeds``) in the
grid layout of :mod:`ser_hf.grid`, keeping finished runs with ``--resume_folds``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from dataclasses import dataclass
from pathlib import Path

from transformers import TrainingArguments

from ..corpora import decode_channel, load_corpus
from ..data import data_identity, decode_dataset
from ..environment import configure_logging, first_process
from ..folds import make_split, num_folds
from ..grid import (
    SEEDS_RESULTS,
    CrossValidation,
    RunExistsError,
    SeedGrid,
    check_output_dir,
    fold_dir,
    remove_run,
    seed_dir,
)
from ..lock import output_dir_lock
from ..metrics import format_mean_std
from ..multicorpus import (
    decode_corpora,
    load_corpora,
    make_multi_split,
    multi_num_folds,
)
from .arguments import (
    DataArguments,
    ModelArguments,
    check_preprocessing_flags,
    check_training_args,
    input_dirs,
    parse_args,
)
from .fold import resolve_resume_checkpoint, run_fold
from .recipe import recipe_of, reuse_fold, run_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingJob:
    """One run the command trains: its seed and output folder (the fold and the corpora come with the parsed
    flags, ``data_args.fold`` / ``data_args.selection``). The parsed flags stay as parsed: each job trains with its
    own copy of the ``TrainingArguments`` (:meth:`training_args`)."""

    seed: int
    output_dir: Path

    def training_args(self, parsed: TrainingArguments) -> TrainingArguments:
        """A copy of ``parsed`` with this job's output folder and seed (``parsed`` is not changed)."""
        args = copy.copy(parsed)
        args.output_dir, args.seed = str(self.output_dir), self.seed
        return args


PUBLISH_DIR = "publish_dir"
"""Key of :func:`train`'s result naming the run to publish when ``--push_to_hub`` is set (the last seed's, with
``--seeds``)."""


def main(argv: list[str] | None = None) -> dict:
    """Parse arguments, then :func:`run` them."""
    return run(*parse_args(argv))


def run(model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> dict:
    """Load and decode the corpus, then train one fold or all of them (once per ``--seeds``), holding the output
    folder's lock (:func:`ser_hf.lock.output_dir_lock`) throughout. The parsed arguments are not changed (each run
    trains with a :class:`TrainingJob` copy).

    Raises:
        ser_hf.lock.OutputDirLockedError: another running process writes the same ``--output_dir``.
    """
    # one writer per output folder: a second run into it fails at once (the first process of a distributed run
    # holds the lock for all of them)
    with output_dir_lock(training_args.output_dir) if first_process() else contextlib.nullcontext():
        if data_args.seeds:
            resume = data_args.resume_folds
            return run_seeds(model_args, data_args, training_args, data_args.overwrite_output_dir or resume)
        job = TrainingJob(training_args.seed, Path(training_args.output_dir))
        return train(model_args, data_args, job.training_args(training_args))


def run_seeds(model_args, data_args, training_args: TrainingArguments, overwrite: bool = False) -> dict:
    """``--seeds``: the same command once per seed into ``root/seed_S`` (``root``: ``--output_dir``; one
    :class:`TrainingJob` per seed), then ``root/seeds_results.json``.

    Returns:
        :class:`ser_hf.grid.SeedGrid` of the runs, as a dict.

    Raises:
        RunExistsError: ``root`` already holds a finished ``seeds_results.json`` (and neither
            ``--overwrite_output_dir`` nor ``--all_folds --resume_folds``, which keeps every finished fold).
        ValueError: a seed given twice.
    """
    seeds, root = data_args.seeds, Path(training_args.output_dir)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {seeds}: each seed once")
    if (root / SEEDS_RESULTS).exists() and not overwrite:
        raise RunExistsError(f"{root} already holds seeds_results.json; choose another --output_dir")
    per_seed: dict[int, dict[int, dict]] = {}
    for seed in seeds:
        job = TrainingJob(seed, seed_dir(root, seed))
        result = train(model_args, data_args, job.training_args(training_args))
        per_seed[seed] = result["folds"] if data_args.all_folds else {data_args.fold: result}
        publish_dir = result.get(PUBLISH_DIR)
    grid = SeedGrid.of(per_seed)
    grid.save(root)
    for k, scores in grid.per_fold.items():
        logger.info("fold %s over seeds %s: UA %s", k, seeds, format_mean_std(scores["ua"], digits=4))
    logger.info("over seeds %s: UA %s (mean over folds)", seeds, format_mean_std(grid.overall["ua"], digits=4))
    return grid.to_dict() | ({PUBLISH_DIR: publish_dir} if publish_dir else {})


def prepare_training_args(training_args: TrainingArguments, data_args: DataArguments) -> bool:
    """Set the ``TrainingArguments`` that ser_hf decides (best-checkpoint selection from ``--select_best_by``,
    no column removal), and take publishing out of the Trainer's hands: training never publishes; the command
    (:mod:`ser_hf.train_command`) publishes the run that :func:`train` names.

    Returns:
        Whether ``--push_to_hub`` was asked for. The token is removed from ``training_args`` so that it never reaches
        ``training_args.bin`` in the run and its checkpoints.

    Raises:
        ValueError: ``--push_to_hub true`` without ``--hub_model_id`` or without a Hugging Face token.
    """
    # ser_hf publishes the finished run itself (merged safetensors + model card), not the Trainer's checkpoints
    push, training_args.push_to_hub = training_args.push_to_hub, False
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
    return push


def load_decoded(data_args: DataArguments):
    """The corpus of ``--corpus`` / ``--data_dir`` and its decoded clips (:func:`ser_hf.data.decode_dataset`, with
    the corpus's decode channel).

    Returns:
        ``(corpus, decoded, label_names)``.

    Raises:
        ValueError: ``--labels`` differs from the corpus's labels.
    """
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
    return corpus, decoded, label_names


def train(model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> dict:
    """One fold, or every fold with ``--all_folds``, for parsed arguments (the body of :func:`main`).

    Returns:
        One fold: its record (:meth:`ser_hf.run.RunRecord.to_dict`); ``--all_folds``: the
        :class:`ser_hf.grid.CrossValidation` as a dict. With ``--push_to_hub``, key :data:`PUBLISH_DIR` names the
        run to publish (the fold's, or the fold with the best validation UA, never test).
    """
    check_preprocessing_flags(model_args.model, data_args.trim_db, data_args.max_eval_duration_s)
    check_training_args(training_args)
    configure_logging()
    push = prepare_training_args(training_args, data_args)
    root = Path(training_args.output_dir)
    resume_checkpoint = resolve_resume_checkpoint(training_args, data_args)
    protected = {
        "--data_dir": data_args.data_dir,
        "--cache_dir": data_args.cache_dir,
        "--metadata": data_args.metadata,
        "--resume_from_checkpoint": resume_checkpoint,
    }
    if data_args.selection.multi:  # NAME=DIR,NAME=DIR: each folder protected
        del protected["--data_dir"]
        protected |= {f"--data_dir {n}=": d for n, d in data_args.selection.dirs.items()}
    # resuming accepts fold directories (a finished cross-validation is read back, fold by fold, through the
    # same recipe check)
    if training_args.process_index == 0 and not data_args.resume_folds:
        hint = "--resume_folds true" if data_args.all_folds else "--resume_from_checkpoint true"
        check_output_dir(
            root, data_args.overwrite_output_dir, protected, resuming=resume_checkpoint is not None, resume_hint=hint
        )
    decoded, label_names, splits = corpus_and_splits(data_args, training_args)
    args = (model_args, data_args, training_args)
    if not data_args.all_folds:
        (split,) = splits.values()
        record = fold_or_kept(*args, decoded, label_names, split, root, protected, resume=data_args.resume_folds)
        return record.to_dict() | ({PUBLISH_DIR: str(root)} if push else {})
    return cross_validate(*args, decoded, label_names, splits, root, protected, push)


def corpus_and_splits(data_args: DataArguments, training_args: TrainingArguments):
    """The decoded clips, the label names and the split of each fold to run (one fold, or every fold with
    ``--all_folds``), for an export (``--dataset``), one corpus or several (:mod:`ser_hf.multicorpus`).

    Returns:
        ``(decoded, label_names, {fold: SplitDefinition})``.
    """
    if data_args.dataset:
        from ..export import load_export

        decoded, label_names, split = load_export(
            data_args.dataset,
            data_args.dataset_config,
            data_args.sampling_rate,
            data_args.corpus,
            data_args.cache_dir,
            data_args.preprocessing_num_workers,
            training_args.seed,
        )
        return decoded, label_names, {split.fold: split}
    if data_args.selection.multi:
        return multi_corpus_splits(data_args, training_args)
    corpus, decoded, label_names = load_decoded(data_args)
    speakers = corpus["speaker"]
    folds = range(num_folds(data_args.corpus, speakers, data_args.protocol)) if data_args.all_folds else []
    splits = {
        k: make_split(
            data_args.corpus,
            speakers,
            data_args.protocol,
            k,
            data_args.num_val_speakers,
            data_args.test_speakers,
            data_args.val_speakers,
            training_args.seed,
            ids=corpus["id"],
            labels=corpus["label"],
        )
        for k in (folds or [data_args.fold])
    }
    return decoded, label_names, splits


def multi_corpus_splits(data_args: DataArguments, training_args: TrainingArguments):
    """:func:`corpus_and_splits` for several corpora; each split records the clips kept and dropped per corpus."""
    names = list(data_args.selection.names)
    multi = load_corpora(
        names,
        data_args.selection.dirs,
        data_args.labels,
        data_args.cache_dir,
        data_args.verify_counts,
        label_from=[n for n in names if n != data_args.test_corpus],
    )
    decoded = decode_corpora(multi, data_args.sampling_rate, data_args.preprocessing_num_workers)
    n = multi_num_folds(decoded, names, data_args.protocol)
    logger.info(
        "%s: %d clips (%s), labels %s, %d fold(s) of protocol %s",
        multi.name,
        len(decoded),
        ", ".join(f"{k} {v}" for k, v in multi.clips.items()),
        multi.label_names,
        n,
        data_args.protocol,
    )
    splits = {}
    for k in range(n) if data_args.all_folds else [data_args.fold]:
        try:
            split = make_multi_split(
                decoded,
                names,
                data_args.protocol,
                k,
                data_args.num_val_speakers,
                data_args.test_corpus,
                training_args.seed,
            )
        except ValueError as err:
            drops = {name: d for name, d in multi.dropped.items() if d}
            if not drops:
                raise
            raise ValueError(f"{err} (the label set {multi.label_names} dropped the clips {drops})") from None
        split.extra |= {"clips": multi.clips, "dropped_for_labels": multi.dropped}
        splits[k] = split
    return decoded, multi.label_names, splits


def fold_or_kept(model_args, data_args, training_args, decoded, label_names, split, out: Path, protected, resume):
    """Train ``split`` into ``out``, or, with ``resume`` (``--resume_folds``), keep the finished run there when it
    has the same split and recipe (:func:`ser_hf.training.recipe.reuse_fold`); an unfinished one is replaced."""
    if resume and (out / "metrics.json").exists():
        return reuse_fold(
            out,
            split,
            run_settings(model_args, data_args, training_args),
            recipe_of(model_args, data_args, training_args),
            data=data_identity(decoded, input_dirs(data_args)),
        )
    if resume and out.exists() and training_args.process_index == 0:
        logger.warning("--resume_folds: replacing the unfinished run in %s", out)
        remove_run(out, protected)
    job = TrainingJob(training_args.seed, out)
    return run_fold(model_args, data_args, job.training_args(training_args), decoded, label_names, split)


def cross_validate(
    model_args, data_args, training_args, decoded, label_names, splits: dict, root: Path, protected, push: bool
) -> dict:
    """``--all_folds``: every fold into ``root/fold_K``, then ``root/cv_results.json``; with ``push`` the fold with
    the best validation UA (never test) is named for publishing (:data:`PUBLISH_DIR`).

    Returns:
        :class:`ser_hf.grid.CrossValidation` as a dict.
    """
    results = {}
    for k, split in splits.items():
        out = fold_dir(root, k)
        results[k] = fold_or_kept(
            model_args, data_args, training_args, decoded, label_names, split, out, protected, data_args.resume_folds
        )
    cv = CrossValidation.of(results)
    if training_args.process_index == 0:
        cv.save(root)
    summary = cv.to_dict()
    if push:
        best = max(results, key=lambda k: results[k].validation_ua or 0.0)
        summary[PUBLISH_DIR] = str(fold_dir(root, best))
    logger.info(
        "cross-validation: %s",
        "  ".join(f"{k} {format_mean_std(summary[k], digits=4)}" for k in ("wa", "ua", "macro_f1")),
    )
    return summary

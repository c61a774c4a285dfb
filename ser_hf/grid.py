"""The run directory's grid: where the runs of a cross-validation and of a seed grid live, their summaries, and
the lifecycle of an output folder (refuse, replace, resume).

Layouts written by ``scripts/finetune.py`` and ``ser-hf classic`` (one run = one :class:`ser_hf.run.RunRecord`)::

    OUTPUT_DIR/                     one fold
    OUTPUT_DIR/fold_K/              --all_folds, plus OUTPUT_DIR/cv_results.json (CrossValidation)
    OUTPUT_DIR/seed_S/[fold_K/]     --seeds, plus OUTPUT_DIR/seeds_results.json (SeedGrid)
    RUN/eval_<corpus>_<split>/      an evaluation of the run (ser_hf.evaluation)

This module is the one writer and reader of that layout; it loads neither torch nor transformers.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .metrics import mean_std
from .run import RunRecord, is_run_dir

logger = logging.getLogger(__name__)

CV_RESULTS = "cv_results.json"
SEEDS_RESULTS = "seeds_results.json"
SCORES = ("wa", "ua", "macro_f1")


class RunExistsError(FileExistsError):
    """Raised when the output directory already holds a run and ``--overwrite_output_dir`` is not given."""


def fold_dir(root: str | Path, fold: int) -> Path:
    """``root/fold_K``: fold ``K`` of a cross-validation."""
    return Path(root) / f"fold_{fold}"


def seed_dir(root: str | Path, seed: int) -> Path:
    """``root/seed_S``: the run (or cross-validation) of seed ``S`` of a seed grid."""
    return Path(root) / f"seed_{seed}"


@dataclass
class CrossValidation:
    """``cv_results.json``: WA / UA / macro-F1 over the folds of one seed.

    Args:
        num_folds: folds summarised.
        folds: ``{fold: {"wa", "ua", "macro_f1"}}``.
        wa / ua / macro_f1: ``{"mean", "std", "per_fold"}``; ``std`` is the sample standard deviation (ddof=1,
            :func:`ser_hf.metrics.mean_std`), ``None`` for one fold.
        train_wall_time_s: training wall time of all folds together, in seconds.
        per_corpus: multi-corpus runs (:mod:`ser_hf.multicorpus`) only: ``{corpus: {"mean", "std", "per_fold"}}``
            of the UA on each corpus's part of the test sides (the record's ``test.per_corpus``); a corpus is
            summarised when every fold scored it. Empty (and not written) for a single corpus.
    """

    num_folds: int
    folds: dict[int, dict[str, float]]
    wa: dict
    ua: dict
    macro_f1: dict
    train_wall_time_s: float
    per_corpus: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def of(cls, records: dict[int, RunRecord]) -> CrossValidation:
        """Summarise ``{fold: record}``."""
        scores = {}
        for key in SCORES:
            scores[key] = _over_folds([r.scores[key] for r in records.values()])
        return cls(
            num_folds=len(records),
            folds={k: r.scores for k, r in records.items()},
            train_wall_time_s=float(sum(r.runtime.train_wall_time_s or 0.0 for r in records.values())),
            per_corpus=_per_corpus_ua(list(records.values())),
            **scores,
        )

    def to_dict(self) -> dict:
        out = asdict(self)
        if not self.per_corpus:  # single-corpus summaries keep their earlier form
            del out["per_corpus"]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> CrossValidation:
        fields = {k: data[k] for k in ("num_folds", *SCORES)}
        folds = {int(k): v for k, v in data.get("folds", {}).items()}
        return cls(
            folds=folds,
            train_wall_time_s=float(data.get("train_wall_time_s", 0.0)),
            per_corpus=data.get("per_corpus", {}),
            **fields,
        )

    def save(self, root: str | Path) -> None:
        _write_json(Path(root) / CV_RESULTS, self.to_dict())

    @classmethod
    def load(cls, root: str | Path) -> CrossValidation | None:
        """The cross-validation of ``root``, ``None`` when it has none."""
        path = Path(root) / CV_RESULTS
        return cls.from_dict(json.loads(path.read_text())) if path.is_file() else None


def _per_corpus_ua(records: list[RunRecord]) -> dict[str, dict]:
    """``{corpus: {"mean", "std", "per_fold"}}`` of the per-corpus test UA, for corpora every record scored."""
    tables = [r.test.get("per_corpus") or {} for r in records]
    common = [c for c in tables[0] if all(c in t for t in tables[1:])] if tables else []
    return {corpus: _over_folds([float(t[corpus]["ua"]) for t in tables]) for corpus in common}


def _over_folds(vals: list[float]) -> dict:
    """``{"mean", "std", "per_fold"}`` of one score over the folds (std: ddof=1, :func:`ser_hf.metrics.mean_std`)."""
    return {**mean_std(vals), "per_fold": vals}


@dataclass
class SeedGrid:
    """``seeds_results.json``: WA / UA / macro-F1 over the seeds of a grid.

    Args:
        seeds: the seeds, in run order.
        per_fold: ``{fold: {metric: {"mean", "std", "per_seed": {seed: value}}}}``.
        overall: ``{metric: {"mean", "std", "per_seed"}}``: mean +- std over seeds of each seed's mean over folds
            (how much the headline number moves with the seed).
        all_runs: ``{metric: {"mean", "std"}}`` over every fold x seed run.
    """

    seeds: list[int]
    per_fold: dict[int, dict]
    overall: dict
    all_runs: dict

    @classmethod
    def of(cls, per_seed: dict[int, dict[int, dict]]) -> SeedGrid:
        """Summarise ``{seed: {fold: scores}}`` (:attr:`ser_hf.run.RunRecord.scores`, or the ``folds`` of a
        :class:`CrossValidation`: ``wa`` / ``ua`` / ``macro_f1``)."""
        import numpy as np

        seeds = list(per_seed)
        folds = sorted(next(iter(per_seed.values())))
        grid = cls(seeds=list(seeds), per_fold={}, overall={}, all_runs={})
        for k in folds:
            grid.per_fold[k] = {
                m: {**mean_std([per_seed[s][k][m] for s in seeds]), "per_seed": {s: per_seed[s][k][m] for s in seeds}}
                for m in SCORES
            }
        for m in SCORES:
            seed_means = {s: float(np.mean([per_seed[s][k][m] for k in folds])) for s in seeds}
            grid.overall[m] = {**mean_std(seed_means.values()), "per_seed": seed_means}
            grid.all_runs[m] = mean_std([per_seed[s][k][m] for s in seeds for k in folds])
        return grid

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SeedGrid:
        per_fold = {int(k): v for k, v in data.get("per_fold", {}).items()}
        return cls(list(data["seeds"]), per_fold, data.get("overall", {}), data.get("all_runs", {}))

    def save(self, root: str | Path) -> None:
        _write_json(Path(root) / SEEDS_RESULTS, self.to_dict())

    @classmethod
    def load(cls, root: str | Path) -> SeedGrid | None:
        """The seed grid summary of ``root``, ``None`` when it has none."""
        path = Path(root) / SEEDS_RESULTS
        return cls.from_dict(json.loads(path.read_text())) if path.is_file() else None


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def cross_validation_of(run_dir: str | Path) -> dict | None:
    """Cross-validated scores of the grid a run belongs to: the :class:`CrossValidation` of ``run_dir/..`` as a
    dict, extended with ``seeds`` and ``over_seeds`` (:attr:`SeedGrid.overall`) when ``run_dir/../..`` holds the
    :class:`SeedGrid` of a ``--seeds`` grid over the same folds; ``None`` for a lone run."""
    run_dir = Path(run_dir)
    cv = CrossValidation.load(run_dir.parent)
    if cv is None:
        return None
    out = cv.to_dict()
    seeds = SeedGrid.load(run_dir.parent.parent)
    if seeds and len(seeds.per_fold) == cv.num_folds:
        out |= {"seeds": seeds.seeds, "over_seeds": seeds.overall}
    return out


def fold_dirs(root: str | Path) -> dict[int, list[Path]]:
    """``{fold: [run directory per seed]}`` of a system, in any layout of this module (``root`` itself being one
    run included: its fold is read from its ``split.json``).

    Raises:
        FileNotFoundError: ``root`` holds none of these (the message names it).
    """
    root = Path(root)
    tops = [d for d in sorted(root.glob("seed_*")) if d.is_dir() and d.name[5:].isdigit()] or [root]
    found: dict[int, list[Path]] = {}
    for top in tops:
        # fold_K only: not fold_K.hub (the upload folder `ser-hf push --dry-run` writes beside a run)
        folds = [d for d in sorted(top.glob("fold_*")) if d.name[5:].isdigit() and is_run_dir(d)]
        runs = {int(d.name[5:]): d for d in folds}
        if not runs and is_run_dir(top):
            runs = {int(RunRecord.load(top).split.fold or 0): top}
        for k, d in runs.items():
            found.setdefault(k, []).append(d)
    if not found:
        raise FileNotFoundError(
            f"{root}: no finished run (metrics.json + split.json), no fold_K/ and no seed_S/ run directories"
        )
    return dict(sorted(found.items()))


RUN_ARTIFACTS = (
    "config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "metrics.json",
    "metrics.json.partial",
    "split.json",
    CV_RESULTS,
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
    finished = [n for n in ("metrics.json", CV_RESULTS) if (path / n).exists()]
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


RECORD_FILES = ("metrics.json", "split.json", "config.json", "preprocessor_config.json", CV_RESULTS, SEEDS_RESULTS)
"""What :func:`copy_records` keeps of a run besides its stored evaluations (``eval_*``): no weights."""


def copy_records(source: str | Path, dest: str | Path) -> list[Path]:
    """Copy a trained system's records without its weights: every run's record, split, model and feature-extractor
    configs and stored evaluations (``eval_*/``: scores and ``predictions.jsonl``; not their plots), in the same
    layout, plus the grid summaries. ``ser-hf compare`` and ``ser-hf cross-corpus`` report such a copy from its
    stored evaluations (:func:`ser_hf.evaluation.evaluation_of`) after the runs and their weights are gone: about
    150 KB a fold of 500 clips instead of the checkpoint.

    Args:
        source: a run, a cross-validation (``fold_K/``) or a seed grid (``seed_S/[fold_K/]``), as :func:`fold_dirs`.
        dest: a new folder (written as ``<dest>.tmp<pid>``, then renamed, so an interrupted copy leaves no half
            record).

    Returns:
        The run directories copied, in ``dest``.

    Raises:
        FileExistsError: ``dest`` already exists (nothing is replaced); FileNotFoundError: ``source`` holds no
            finished run; ValueError: a run of ``source`` has no stored evaluation (run ``ser-hf evaluate`` or
            ``ser-hf compare`` on it first: a record without one could never be scored again).
    """
    source, dest = Path(source), Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} already exists; copy the records of {source} into a new folder")
    runs = [d for ds in fold_dirs(source).values() for d in ds]
    unscored = [str(d) for d in runs if not any(p.is_dir() for p in d.glob("eval_*"))]
    if unscored:
        raise ValueError(
            f"{', '.join(unscored)}: no stored evaluation (eval_*/); score the runs first, e.g. with ser-hf compare "
            "or ser-hf evaluate, so that their records can be reported without the weights"
        )
    tmp = dest.with_name(f"{dest.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    folders = sorted({source} | {p for d in runs for p in (d, d.parent) if p == source or source in p.parents})
    for folder in folders:
        out = tmp / folder.relative_to(source)
        out.mkdir(parents=True, exist_ok=True)
        for name in RECORD_FILES:
            if (folder / name).is_file():
                shutil.copy2(folder / name, out / name)
        if folder in runs:
            for ev in sorted(p for p in folder.glob("eval_*") if p.is_dir()):
                shutil.copytree(ev, out / ev.name, ignore=shutil.ignore_patterns("*.png"))  # plots: redrawn
    os.replace(tmp, dest)
    return [dest / d.relative_to(source) for d in runs]

"""Compare trained systems fold by fold: one Markdown + JSON report with plots.

    ser-hf compare --system mel_cnn=runs/ravdess_melcnn_cv --system lora=runs/whisper_lora \\
        --corpus ravdess --data_dir DIR --output_dir docs/results/ravdess [--reference mel_cnn]

A system is a run directory of ``scripts/finetune.py``: either a cross-validation root holding ``fold_K/`` run
directories, or one run directory (its fold is read from ``split.json``). For every fold the checkpoint is
scored on its own test side with :func:`ser_hf.evaluation.evaluate_checkpoint` (the report is written once,
into ``<fold dir>/eval_<corpus>_test/``, and collected on later calls), which also gives per-clip
predictions and the inference real-time factor.

Statistics (all on the test sides only):

- per system: mean and sample standard deviation (ddof=1) over folds of WA, UA and macro-F1;
- per fold: paired differences of UA, WA and macro-F1 against the reference system, on the folds both have;
- a paired bootstrap 95 % confidence interval of the UA difference (Efron & Tibshirani 1993, percentile
  interval): by default test *speakers* are resampled with replacement within each fold, all clips of a drawn
  speaker together (a cluster bootstrap, since clips of one speaker are not independent); ``clips`` resamples
  clips instead. Both systems see the same resample; UA is computed on the pooled resample, ``num_bootstrap``
  times. The report says which resampling was used.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..environment import machine_facts, machine_key
from ..grid import fold_dirs
from ..metrics import mean_std, unweighted_average_recall
from ..run import RunRecord
from .compare_report import METRICS, check_report_dir, write_report
from .evaluation_report import EvaluationReport, read_predictions
from .rows import BestSystem, Bootstrap, CitedResult, CompareReport, MeanStd, Paired, Stat, SystemSummary

logger = logging.getLogger(__name__)


@dataclass
class FoldResult:
    """One run (one fold, one seed) of a system, as the comparison reads it."""

    fold: int
    run_dir: Path
    metrics: EvaluationReport | None  # the evaluation of its test side (eval_<corpus>_test/)
    training: RunRecord  # the run's own record
    predictions: list[dict]  # predictions.jsonl lines


def collect_fold(run_dir: Path, fold: int, corpus: str, data_dir: str, **eval_kwargs) -> FoldResult:
    """Evaluate (once) and load one fold of one system."""
    from ..evaluation import evaluation_of

    metrics = evaluation_of(run_dir, corpus, data_dir, "test", **eval_kwargs)
    training = RunRecord.load(run_dir)
    predictions = read_predictions(metrics.output_dir)
    # (a multi-corpus run's own UA spans all its corpora: nothing to check it against here)
    if abs(metrics.ua - training.ua) > 1e-6 and training.split.corpus == corpus:
        logger.warning(
            "%s: UA on re-evaluation %.4f differs from the training report %.4f (by a clip or two: float rounding "
            "of near-ties under another thread count or batch; by more: a run written before the preprocessing "
            "was stored with the checkpoint?)",
            run_dir,
            metrics.ua,
            training.ua,
        )
    return FoldResult(fold, run_dir, metrics, training, predictions)


RESAMPLING = ("speakers", "clips")
"""Bootstrap units: ``speakers`` (cluster bootstrap, the default: clips of one speaker are not independent) or
``clips``."""


def pooled_predictions(runs_a: dict, runs_b: dict, folds: list[int], resample: str):
    """The two systems' predictions over the pooled test sides of ``folds``, clip by clip in one order.

    Returns:
        ``(preds_a, preds_b, refs, units)``: per seed of each system a list of predicted labels, the reference
        labels, and per fold the resampling units (arrays of clip positions: one per speaker, or one per clip).

    Raises:
        ValueError: the runs of a fold were scored on different clips, or lack speakers for a speaker bootstrap.
    """
    preds_a = [[] for _ in runs_a[folds[0]]]  # per seed: predictions over the pooled folds
    preds_b = [[] for _ in runs_b[folds[0]]]
    refs, units, offset = [], [], 0
    for k in folds:
        tables = [{p["id"]: p for p in r.predictions} for r in runs_a[k] + runs_b[k]]
        ids = sorted(tables[0])
        if any(t.keys() != tables[0].keys() for t in tables):
            raise ValueError(f"fold {k}: the runs were scored on different clips")
        for j, t in enumerate(tables[: len(preds_a)]):
            preds_a[j] += [t[i]["prediction"] for i in ids]
        for j, t in enumerate(tables[len(preds_a) :]):
            preds_b[j] += [t[i]["prediction"] for i in ids]
        first = tables[0]
        refs += [first[i]["reference"] for i in ids]
        if resample == "speakers":
            if any("speaker" not in first[i] for i in ids):
                raise ValueError(f"fold {k}: predictions without speakers; use resample='clips'")
            by_speaker: dict[str, list[int]] = {}
            for n, i in enumerate(ids):
                by_speaker.setdefault(first[i]["speaker"], []).append(offset + n)
            units.append([np.array(v) for _, v in sorted(by_speaker.items())])
        else:
            units.append([np.array([offset + n]) for n in range(len(ids))])
        offset += len(ids)
    return preds_a, preds_b, refs, units


def paired_bootstrap_ua(
    a: list[FoldResult],
    b: list[FoldResult],
    num_bootstrap: int = 10000,
    seed: int = 0,
    resample: str = "speakers",
) -> Bootstrap:
    """Paired bootstrap 95 % CI of UA(b) - UA(a) over the folds both systems have (percentile interval, Efron &
    Tibshirani 1993).

    With ``resample="speakers"`` (default) each resample draws, within every fold, as many speakers as the fold's
    test side has, with replacement (across all folds when every fold tests a single speaker, where drawing within
    a fold would always return the same speaker and a zero-width interval), and takes all their clips (a cluster
    bootstrap: Field & Welsh 2007, "Bootstrapping clustered data", JRSS-B 69(3)), since clips of one speaker are
    correlated and resampling clips would give too narrow an interval.
    ``resample="clips"`` draws clips within each fold. Both systems see the same resample; UA is
    computed on the pooled resample. A system run with several seeds per fold contributes the mean over its seeds
    of each seed's UA on the resample.

    Raises:
        ValueError: the two systems' predictions do not cover the same clips of a fold, the predictions lack
            speakers for a speaker bootstrap, an unknown ``resample``, or no shared fold.
    """
    if resample not in RESAMPLING:
        raise ValueError(f"resample {resample!r} is not one of {', '.join(RESAMPLING)}")
    rng = np.random.default_rng(seed)
    runs_a, runs_b = _by_fold(a), _by_fold(b)
    shared = [k for k in runs_a if k in runs_b]
    if not shared:
        raise ValueError("the systems share no fold")
    for name, runs in (("first", runs_a), ("second", runs_b)):
        if len({len(runs[k]) for k in shared}) > 1:
            counts = ", ".join(f"fold {k}: {len(runs[k])}" for k in shared)
            raise ValueError(
                f"the {name} system has different numbers of seeds on the shared folds ({counts} runs); the "
                "bootstrap pools every fold's clips per seed, so compare the folds every seed has, or each seed "
                "as a system of its own"
            )
    preds_a, preds_b, refs, units = pooled_predictions(runs_a, runs_b, shared, resample)
    pooled = len(units) > 1 and all(len(fold) == 1 for fold in units)
    if pooled:  # one unit per fold (one test speaker, as EYASE / EMOVO folds): resampling within folds never varies
        units = [[u for fold in units for u in fold]]
    labels = sorted(set(refs).union(*preds_a, *preds_b))
    codes = {label: n for n, label in enumerate(labels)}
    pa_, pb_ = (np.array([[codes[x] for x in p] for p in preds]) for preds in (preds_a, preds_b))
    ref = np.array([codes[x] for x in refs])

    both = np.concatenate([pa_, pb_])  # (seeds_a + seeds_b, num_clips): all seeds scored in one call

    def difference(idx) -> float:  # seed-averaged UA of b minus that of a
        ua = unweighted_average_recall(both[:, idx], np.broadcast_to(ref[idx], (len(both), len(idx))))
        return float(ua[len(pa_) :].mean() - ua[: len(pa_)].mean())

    point = difference(np.arange(len(ref)))
    diffs = np.empty(num_bootstrap)
    for n in range(num_bootstrap):
        diffs[n] = difference(
            np.concatenate([fold[j] for fold in units for j in rng.integers(0, len(fold), len(fold))])
        )
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return Bootstrap(
        ua_difference=point,
        ci95_low=float(lo),
        ci95_high=float(hi),
        num_bootstrap=num_bootstrap,
        resample=resample,
        num_units=sum(len(fold) for fold in units),
        num_clips=len(ref),
        seeds=[len(pa_), len(pb_)],
        share_above_zero=float((diffs > 0).mean()),
        strata="pooled over folds" if pooled else "within folds",
    )


def _by_fold(results: list[FoldResult]) -> dict[int, list[FoldResult]]:
    out: dict[int, list[FoldResult]] = {}
    for r in results:
        out.setdefault(r.fold, []).append(r)
    return dict(sorted(out.items()))


def mean_recall_per_class(recalls: list[list[float | None] | None], labels: list[str]) -> dict[str, float | None]:
    """Each class's recall averaged over the runs whose test side has it (a run's ``per_class_recall`` holds
    ``None`` for a class its test side lacks, e.g. TurEV-DB's speaker 1157 without calm and happy clips);
    ``None`` for a class no run has; ``{}`` without recalls.

    Args:
        recalls: per run, the recall of each of ``labels`` (or ``None`` for a run without them).
    """
    rows = np.array([[np.nan if v is None else v for v in r] for r in recalls if r], dtype=float)
    if not len(rows):
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a class no run has: all-NaN column
        means = np.nanmean(rows, axis=0)
    return {c: None if np.isnan(m) else round(float(m), 4) for c, m in zip(labels, means, strict=True)}


def summarize_system(name: str, runs: list[FoldResult]) -> SystemSummary:
    """One system's numbers: per fold the mean over its seeds, then mean +- std (ddof=1) over folds of WA, UA and
    macro-F1; with several seeds also mean +- std over seeds of each seed's mean over folds; per-class recall
    (mean over every run); validation UA of the shipped checkpoints (what chooses the best system); parameters,
    training wall time per fold and device, inference RTF."""
    folds = _by_fold(runs)
    n_seeds = {len(rs) for rs in folds.values()}

    def stat(key: str) -> Stat:
        per_fold = {k: float(np.mean([getattr(r.metrics, key) for r in rs])) for k, rs in folds.items()}
        out = Stat(**mean_std(per_fold.values()), per_fold=per_fold)
        if len(n_seeds) == 1 and min(n_seeds) > 1:
            per_seed = [np.mean([getattr(rs[j].metrics, key) for rs in folds.values()]) for j in range(min(n_seeds))]
            out.over_seeds = MeanStd(**mean_std(per_seed))
            out.per_fold_std_over_seeds = {
                k: mean_std([getattr(r.metrics, key) for r in rs])["std"] for k, rs in folds.items()
            }
        return out

    labels = runs[0].metrics.label_names or runs[0].training.label_names  # the labels scored
    vals = [r.training.validation_ua for r in runs if r.training.validation_ua is not None]
    t0 = runs[0].training
    # a resumed run counts when its record holds the whole training's time (ser_hf >= resume_point), not a part
    walls = [
        r.training.runtime.train_wall_time_s
        for r in runs
        if not r.training.runtime.resumed_from_epoch or r.training.runtime.resumed_wall_time_s is not None
    ]
    inf = [r.metrics.inference for r in runs]
    return SystemSummary(
        name=name,
        folds=list(folds),
        num_folds=len(folds),
        seeds_per_fold={k: [r.training.training.seed for r in rs] for k, rs in folds.items()},
        ua=stat("ua"),
        wa=stat("wa"),
        macro_f1=stat("macro_f1"),
        per_class_recall=mean_recall_per_class([r.metrics.per_class_recall for r in runs], labels),
        validation_ua=MeanStd(**mean_std(vals)) if vals else None,
        parameters=t0.parameters or None,
        model=t0.model.to_dict(),
        preprocessing=t0.preprocessing.to_dict(),
        train_wall_time_s_per_run=MeanStd(**mean_std(walls)) if walls and all(walls) else None,
        train_wall_time_s=float(sum(r.training.runtime.train_wall_time_s or 0.0 for r in runs)),
        train_resumed_runs=len(runs) - len(walls),
        train_device=sorted({str(r.training.runtime.device) for r in runs}),
        train_threads=sorted({r.training.runtime.threads for r in runs}, key=str),
        train_machines=sorted({machine_key(r.training.runtime.machine) or "unrecorded" for r in runs}),
        inference_rtf=float(sum(i["wall_s"] for i in inf) / sum(i["audio_s"] for i in inf)),
        inference_device=sorted({f"{i['device']} ({i['threads']} threads)" for i in inf}),
        run_dirs=[str(r.run_dir) for r in runs],
    )


def best_system(results: dict[str, list[FoldResult]]) -> BestSystem | None:
    """The system with the highest mean validation UA of its shipped checkpoints (never the test side), and its
    run with the highest validation UA (the checkpoint to publish); ``None`` when no run records validation.

    Every fold has its own validation speakers, so the systems are ranked on the folds they all have (their
    mean over seeds per fold, then over those folds); only when they share no fold does each system's mean over
    its own folds decide (``folds`` is then ``None``).
    """
    scored = {
        name: [(r.training.validation_ua, r) for r in runs if r.training.validation_ua is not None]
        for name, runs in results.items()
    }
    scored = {name: v for name, v in scored.items() if v}
    if not scored:
        return None
    shared = sorted(set.intersection(*({r.fold for _, r in v} for v in scored.values())))

    def mean_ua(name: str) -> float:
        per_fold: dict[int, list[float]] = {}
        for value, run in scored[name]:
            if not shared or run.fold in shared:
                per_fold.setdefault(run.fold, []).append(value)
        return float(np.mean([np.mean(v) for v in per_fold.values()]))

    by_system = {n: mean_ua(n) for n in scored}
    name = max(by_system, key=by_system.get)
    value, run = max(scored[name], key=lambda vr: vr[0])
    return BestSystem(
        name=name,
        validation_ua=by_system[name],
        folds=shared or None,
        by_system=by_system,
        run_dir=str(run.run_dir),
        run_validation_ua=float(value),
        run_fold=run.fold,
    )


def published_results(corpus: str) -> list[CitedResult]:
    """The cited results of the corpus module (:attr:`ser_hf.corpora.CorpusInfo.published`, shown beside ours),
    ``[]`` where it has none."""
    from ..corpora import corpus_info

    info = corpus_info(corpus)
    return [] if info is None else [CitedResult.from_dict(dict(row)) for row in info.published]


def check_systems_corpus(dirs: dict[str, dict[int, list[Path]]], corpus: str) -> None:
    """Refuse a system with a run that has no test side of ``corpus`` (trained on another corpus, or on all of
    it); a multi-corpus run compares on its test side of ``corpus`` (:meth:`SplitDefinition.for_corpus`).

    Raises:
        ValueError: names the system, the run and the corpus it was trained on.
    """
    for name, folds in dirs.items():
        for d in (d for ds in folds.values() for d in ds):
            split = RunRecord.load(d).split
            view = split.for_corpus(corpus)
            if view is None or not view.test_speakers:
                raise ValueError(
                    f"--system {name}: {d} was trained on {split.corpus!r}"
                    + (", all of it" if view is not None else "")
                    + f", so it has no test side of --corpus {corpus!r}; compare systems of one corpus "
                    "(`ser-hf cross-corpus` scores checkpoints on other corpora)"
                )


def paired_differences(
    results: dict[str, list[FoldResult]], reference: str, num_bootstrap, seed, resample
) -> dict[str, Paired]:
    """Per system against ``reference``, on the folds both have: the per-fold WA / UA / macro-F1 differences
    (means over seeds) and :func:`paired_bootstrap_ua`."""
    ref = _by_fold(results[reference])
    paired = {}
    for name, res in results.items():
        mine = _by_fold(res)
        common = [k for k in mine if k in ref]
        if name == reference or not common:
            continue

        def fold_mean(runs, key):
            return float(np.mean([getattr(r.metrics, key) for r in runs]))

        paired[name] = Paired(
            folds=common,
            **{
                f"{key}_difference_per_fold": [fold_mean(mine[k], key) - fold_mean(ref[k], key) for k in common]
                for key in METRICS
            },
            bootstrap=paired_bootstrap_ua(
                [r for k in common for r in ref[k]], [r for k in common for r in mine[k]], num_bootstrap, seed, resample
            ),
        )
    return paired


def machine_warnings(results: dict[str, list[FoldResult]]) -> list[str]:
    """A warning (logged too) when the compared runs were trained on different processors or GPUs (their records'
    :func:`ser_hf.environment.machine_key`): one recipe and seed gives other floats on another processor make,
    which on a small test side can move UA by points (docs/evaluation.md, "Across machines"). Runs recorded
    before ser_hf kept the machine are not counted."""
    by_machine: dict[str, list[str]] = {}
    for name, runs in results.items():
        for r in runs:
            key = machine_key(r.training.runtime.machine)
            if key is not None:
                by_machine.setdefault(key, []).append(f"{name} fold {r.fold}")
    if len(by_machine) < 2:
        return []
    text = (
        "these runs were trained on different machines ("
        + "; ".join(f"{k}: {', '.join(v[:4])}{' ...' if len(v) > 4 else ''}" for k, v in sorted(by_machine.items()))
        + "): the same recipe and seed gives other numbers on another processor, so part of a difference may be "
        "the machine's, not the system's (docs/evaluation.md, 'Across machines')"
    )
    logger.warning(text)
    return [text]


def compare_systems(
    systems: dict[str, str],
    corpus: str,
    data_dir: str,
    output_dir: str,
    reference: str | None = None,
    num_bootstrap: int = 10000,
    seed: int = 0,
    command: str = "",
    resample: str = "speakers",
    overwrite: bool = False,
    **eval_kwargs,
) -> CompareReport:
    """Collect (evaluating where needed) every fold of every system and write the comparison report.

    Args:
        systems: ``{name: run directory}`` in report order.
        reference: system the others are compared with (default: the first).
        overwrite: replace an earlier report in ``output_dir`` (see :func:`check_report_dir`).
        **eval_kwargs: passed to :func:`ser_hf.evaluation.evaluate_checkpoint` (``cache_dir``).

    Returns:
        The report (also ``report.json``).

    Raises:
        ValueError: an unknown ``reference``; FileNotFoundError: a system directory without runs;
        FileExistsError: ``output_dir`` holds a report and ``overwrite`` is off (checked before any evaluation).
    """
    if not systems:
        raise ValueError("give at least one --system NAME=RUN_DIR")
    check_report_dir(output_dir, overwrite)
    reference = reference or next(iter(systems))
    if reference not in systems:
        raise ValueError(f"--reference {reference!r} is not one of the systems {list(systems)}")
    dirs = {name: fold_dirs(root) for name, root in systems.items()}
    check_systems_corpus(dirs, corpus)  # before any evaluation: a system of another corpus is a mistake
    results = {
        name: [collect_fold(d, k, corpus, data_dir, **eval_kwargs) for k, ds in folds.items() for d in ds]
        for name, folds in dirs.items()
    }
    fold_sets = {name: sorted(folds) for name, folds in dirs.items()}
    warnings = []
    if len({tuple(f) for f in fold_sets.values()}) > 1:
        warnings.append(
            "the systems have different folds ("
            + "; ".join(f"{n}: {f}" for n, f in fold_sets.items())
            + "): each system's mean is over its own folds, so the means do not compare; the paired differences "
            "and the bootstrap use the folds both systems have"
        )
        logger.warning(warnings[-1])
    warnings += machine_warnings(results)
    report = CompareReport(
        corpus=corpus,
        command=command,
        machine=machine_facts(),
        reference=reference,
        systems=[summarize_system(n, r) for n, r in results.items()],
        paired=paired_differences(results, reference, num_bootstrap, seed, resample),
        best_system=best_system(results),
        published=published_results(corpus),
        warnings=warnings,
    )
    write_report(report, Path(output_dir))
    return report

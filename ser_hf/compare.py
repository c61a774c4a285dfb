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

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .metrics import format_mean_std, mean_std, unweighted_average_recall
from .run import RunRecord, is_run_dir

logger = logging.getLogger(__name__)

METRICS = ("ua", "wa", "macro_f1")


@dataclass
class FoldResult:
    fold: int
    run_dir: Path
    metrics: dict  # evaluation report (metrics.json of eval_<corpus>_test)
    training: RunRecord  # the run's own record
    predictions: list[dict]  # predictions.jsonl lines


def fold_dirs(root: str | Path) -> dict[int, Path]:
    """``{fold: run directory}`` of a system: ``root/fold_K`` folders, or ``root`` itself when it is one run.

    Raises:
        FileNotFoundError: ``root`` holds neither (the message names it).
    """
    root = Path(root)
    found = {}
    for d in sorted(root.glob("fold_*")):
        if is_run_dir(d):
            found[int(d.name.split("_", 1)[1])] = d
    if not found and is_run_dir(root):
        found[int(RunRecord.load(root).split.fold or 0)] = root
    if not found:
        raise FileNotFoundError(f"{root}: no finished run (metrics.json + split.json) and no fold_K/ run directories")
    return found


def collect_fold(run_dir: Path, fold: int, corpus: str, data_dir: str, **eval_kwargs) -> FoldResult:
    """Evaluate (once) and load one fold of one system."""
    from .evaluation import evaluate_checkpoint

    out = run_dir / f"eval_{corpus}_test"
    if not (out / "metrics.json").is_file():
        evaluate_checkpoint(str(run_dir), corpus, data_dir, split="test", output_dir=str(out), **eval_kwargs)
    metrics = json.loads((out / "metrics.json").read_text())
    training = RunRecord.load(run_dir)
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines() if line]
    if abs(metrics["ua"] - training.ua) > 1e-6:
        logger.warning(
            "%s: UA on re-evaluation %.4f differs from the training report %.4f (a run written before the "
            "preprocessing was stored with the checkpoint?)",
            run_dir,
            metrics["ua"],
            training.ua,
        )
    return FoldResult(fold, run_dir, metrics, training, predictions)


RESAMPLING = ("speakers", "clips")
"""Bootstrap units: ``speakers`` (cluster bootstrap, the default: clips of one speaker are not independent) or
``clips``."""


def paired_bootstrap_ua(
    a: list[FoldResult],
    b: list[FoldResult],
    num_bootstrap: int = 10000,
    seed: int = 0,
    resample: str = "speakers",
) -> dict[str, float]:
    """Paired bootstrap 95 % CI of UA(b) - UA(a) over the folds both systems have (percentile interval, Efron &
    Tibshirani 1993).

    With ``resample="speakers"`` (default) each resample draws, within every fold, as many speakers as the fold's
    test side has, with replacement, and takes all their clips (a cluster bootstrap: Field & Welsh 2007, "Bootstrapping
    clustered data", JRSS-B 69(3)), since clips of one speaker are correlated and resampling clips would give too
    narrow an interval. ``resample="clips"`` draws clips within each fold. Both systems see the same resample; UA is
    computed on the pooled resample.

    Raises:
        ValueError: the two systems' predictions do not cover the same clips of a fold, the predictions lack
            speakers for a speaker bootstrap, an unknown ``resample``, or no shared fold.
    """
    if resample not in RESAMPLING:
        raise ValueError(f"resample {resample!r} is not one of {', '.join(RESAMPLING)}")
    rng = np.random.default_rng(seed)
    by_fold_b = {r.fold: r for r in b}
    pred_a, pred_b, refs, units, offset = [], [], [], [], 0
    for ra in a:
        rb = by_fold_b.get(ra.fold)
        if rb is None:
            continue
        pa = {p["id"]: p for p in ra.predictions}
        pb = {p["id"]: p for p in rb.predictions}
        if pa.keys() != pb.keys():
            raise ValueError(f"fold {ra.fold}: the two systems were scored on different clips")
        ids = sorted(pa)
        pred_a += [pa[i]["prediction"] for i in ids]
        pred_b += [pb[i]["prediction"] for i in ids]
        refs += [pa[i]["reference"] for i in ids]
        if resample == "speakers":
            if any("speaker" not in pa[i] for i in ids):
                raise ValueError(f"fold {ra.fold}: predictions without speakers; use resample='clips'")
            by_speaker: dict[str, list[int]] = {}
            for k, i in enumerate(ids):
                by_speaker.setdefault(pa[i]["speaker"], []).append(offset + k)
            units.append([np.array(v) for _, v in sorted(by_speaker.items())])
        else:
            units.append([np.array([offset + k]) for k in range(len(ids))])
        offset += len(ids)
    if not units:
        raise ValueError("the systems share no fold")
    codes = {label: k for k, label in enumerate(sorted(set(refs) | set(pred_a) | set(pred_b)))}
    pa_, pb_, ref = (np.array([codes[x] for x in v]) for v in (pred_a, pred_b, refs))
    point = unweighted_average_recall(pb_, ref) - unweighted_average_recall(pa_, ref)
    diffs = np.empty(num_bootstrap)
    for n in range(num_bootstrap):
        idx = np.concatenate([fold[j] for fold in units for j in rng.integers(0, len(fold), len(fold))])
        diffs[n] = unweighted_average_recall(pb_[idx], ref[idx]) - unweighted_average_recall(pa_[idx], ref[idx])
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {
        "ua_difference": point,
        "ci95_low": float(lo),
        "ci95_high": float(hi),
        "num_bootstrap": num_bootstrap,
        "resample": resample,
        "num_units": sum(len(fold) for fold in units),
        "num_clips": len(ref),
        "share_above_zero": float((diffs > 0).mean()),
    }


def summarize_system(name: str, folds: list[FoldResult]) -> dict:
    """Mean +- std (ddof=1) over folds, parameters, training wall time and device, inference RTF."""
    out = {"name": name, "folds": [r.fold for r in folds], "num_folds": len(folds)}
    for key in METRICS:
        out[key] = {
            **mean_std([r.metrics[key] for r in folds]),
            "per_fold": {r.fold: float(r.metrics[key]) for r in folds},
        }
    t0 = folds[0].training
    out["parameters"] = t0.parameters or None
    out["model"] = t0.model or {"family": "mel_cnn"}
    out["preprocessing"] = t0.preprocessing
    out["train_wall_time_s"] = float(sum(r.training.runtime.get("train_wall_time_s", 0.0) for r in folds))
    out["train_device"] = sorted({str(r.training.runtime.get("device")) for r in folds})
    inf = [r.metrics["inference"] for r in folds]
    out["inference_rtf"] = float(sum(i["wall_s"] for i in inf) / sum(i["audio_s"] for i in inf))
    out["inference_device"] = sorted({f"{i['device']} ({i['threads']} threads)" for i in inf})
    out["run_dirs"] = [str(r.run_dir) for r in folds]
    return out


def write_report(report: dict, out: Path) -> None:
    """``report.json``, ``report.md`` and ``ua_per_fold.png`` in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    systems = report["systems"]
    lines = [
        f"# {report['corpus']}: system comparison",
        "",
        f"Generated by `{report['command']}`.",
        "",
        "Test sides of the speaker-independent folds; mean +- sample std (ddof=1) over folds.",
        "",
        "| system | folds | UA | WA | macro-F1 | trainable / total parameters | train wall time | train device "
        "| inference RTF |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in systems:
        p = s["parameters"] or {}
        params = f"{p.get('trainable', 0):,} / {p.get('total', 0):,}" if p else "-"
        scores = " | ".join(format_mean_std(s[k]) for k in METRICS)
        lines.append(
            f"| {s['name']} | {','.join(map(str, s['folds']))} | {scores} | {params} | "
            f"{s['train_wall_time_s']:.0f} s | {'; '.join(s['train_device'])} | "
            f"{s['inference_rtf']:.4f} ({'; '.join(s['inference_device'])}) |"
        )
    folds = sorted({f for s in systems for f in s["folds"]})
    lines += ["", "UA per fold:", "", "| fold | " + " | ".join(s["name"] for s in systems) + " |"]
    lines.append("|---" * (len(systems) + 1) + "|")
    for f in folds:
        cells = [f"{s['ua']['per_fold'][f]:.3f}" if f in s["ua"]["per_fold"] else "-" for s in systems]
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    ref = report["reference"]
    for name, comp in report["paired"].items():
        lines += [
            "",
            f"**{name} minus {ref}** on folds {comp['folds']}: per-fold UA differences "
            + ", ".join(f"{d:+.3f}" for d in comp["ua_difference_per_fold"])
            + f"; pooled-clip UA difference {comp['bootstrap']['ua_difference']:+.3f}, paired bootstrap 95 % CI "
            f"[{comp['bootstrap']['ci95_low']:+.3f}, {comp['bootstrap']['ci95_high']:+.3f}] "
            f"({comp['bootstrap']['num_bootstrap']} resamples of the {comp['bootstrap']['num_units']} "
            f"{comp['bootstrap']['resample']} within folds; {comp['bootstrap']['num_clips']} clips).",
        ]
    lines += ["", "![UA per fold](ua_per_fold.png)", ""]
    (out / "report.md").write_text("\n".join(lines))

    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(folds) * len(systems) / 2, 3.2))
    width = 0.8 / len(systems)
    for i, s in enumerate(systems):
        xs = [folds.index(f) + i * width for f in s["folds"]]
        ax.bar(
            xs, [s["ua"]["per_fold"][f] for f in s["folds"]], width, label=f"{s['name']} ({format_mean_std(s['ua'])})"
        )
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(folds))], [f"fold {f}" for f in folds])
    ax.set_ylabel("test UA")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"{report['corpus']}: UA per fold")
    fig.tight_layout()
    fig.savefig(out / "ua_per_fold.png", dpi=120)
    plt.close(fig)


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
    **eval_kwargs,
) -> dict:
    """Collect (evaluating where needed) every fold of every system and write the comparison report.

    Args:
        systems: ``{name: run directory}`` in report order.
        reference: system the others are compared with (default: the first).
        **eval_kwargs: passed to :func:`ser_hf.evaluation.evaluate_checkpoint` (``cache_dir``).

    Returns:
        The report (also ``report.json``).

    Raises:
        ValueError: an unknown ``reference``; FileNotFoundError: a system directory without runs.
    """
    if not systems:
        raise ValueError("give at least one --system NAME=RUN_DIR")
    reference = reference or next(iter(systems))
    if reference not in systems:
        raise ValueError(f"--reference {reference!r} is not one of the systems {list(systems)}")
    results = {
        name: [collect_fold(d, k, corpus, data_dir, **eval_kwargs) for k, d in fold_dirs(root).items()]
        for name, root in systems.items()
    }
    report = {
        "corpus": corpus,
        "command": command,
        "reference": reference,
        "systems": [summarize_system(n, r) for n, r in results.items()],
        "paired": {},
    }
    ref = {r.fold: r for r in results[reference]}
    for name, res in results.items():
        if name == reference:
            continue
        common = [r for r in res if r.fold in ref]
        if not common:
            continue
        report["paired"][name] = {
            "folds": [r.fold for r in common],
            "ua_difference_per_fold": [r.metrics["ua"] - ref[r.fold].metrics["ua"] for r in common],
            "wa_difference_per_fold": [r.metrics["wa"] - ref[r.fold].metrics["wa"] for r in common],
            "macro_f1_difference_per_fold": [r.metrics["macro_f1"] - ref[r.fold].metrics["macro_f1"] for r in common],
            "bootstrap": paired_bootstrap_ua([ref[r.fold] for r in common], common, num_bootstrap, seed, resample),
        }
    write_report(report, Path(output_dir))
    return report

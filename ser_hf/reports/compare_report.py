"""The report of ``ser-hf compare``: ``report.json``, ``report.md`` (summary table, per-fold table, paired
differences with their bootstrap intervals, cited published results) and ``ua_per_fold.png``, and the generated
results block of the README (:func:`update_readme`). The numbers come from
:func:`ser_hf.reports.compare.compare_systems`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..environment import describe_machine
from .folder import ReportFolder
from .rows import CompareReport, MeanStd, Stat

logger = logging.getLogger(__name__)

METRICS = ("ua", "wa", "macro_f1")
"""The scores every comparison reports."""


def _fmt(stats: MeanStd | Stat | None, digits: int = 3) -> str:
    if stats is None:
        return "-"
    return (stats.summary if isinstance(stats, Stat) else stats).text(digits)


def summary_lines(report: CompareReport) -> list[str]:
    """The report's headline tables in Markdown (systems, UA per fold, cited results): ``report.md`` starts with
    them and ``ser-hf compare --readme README.md`` copies them verbatim into the README."""
    systems = report.systems
    n_folds = max(len(s.folds) for s in systems)
    warnings = report.warnings or []
    lines = [f"**Warning**: {w}." for w in warnings] + ([""] if warnings else [])
    lines += [
        f"Test sides of the {report.corpus} speaker-independent folds. Per fold the mean over the system's seeds; "
        "then mean +- sample std (ddof=1) over folds. *UA over seeds*: mean +- std over seeds of each seed's "
        f"{n_folds}-fold mean. *Validation UA*: the shipped checkpoints' validation sides (what picks the best "
        "system).",
        "",
        "| system | folds x seeds | UA | WA | macro-F1 | UA over seeds | validation UA | trainable / total parameters "
        "| train time per run | inference RTF |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in systems:
        p = s.parameters or {}
        params = f"{p.get('trainable', 0):,} / {p.get('total', 0):,}" if p else "-"
        wall = "-" if not s.train_wall_time_s_per_run else f"{s.train_wall_time_s_per_run.mean:.0f} s"
        if s.train_resumed_runs:
            n = s.train_resumed_runs
            wall += f" ({n} resumed {'run' if n == 1 else 'runs'} left out)"
        lines.append(
            f"| {s.name} | {s.num_folds} x {'/'.join(map(str, s.num_seeds))} | "
            + " | ".join(_fmt(s.stat(k)) for k in METRICS)
            + f" | {_fmt(s.ua.over_seeds)} | {_fmt(s.validation_ua)} | {params} | "
            f"{wall} ({'; '.join(s.train_device)}, "
            f"{'/'.join(map(str, s.train_threads))} threads) | {s.inference_rtf:.4f} |"
        )
    folds = sorted({f for s in systems for f in s.folds})
    lines += ["", "UA per fold (mean +- std over seeds where several):", ""]
    lines += ["| fold | " + " | ".join(s.name for s in systems) + " |", "|---" * (len(systems) + 1) + "|"]
    for f in folds:
        cells = []
        for s in systems:
            if f not in s.ua.per_fold:
                cells.append("-")
                continue
            std = (s.ua.per_fold_std_over_seeds or {}).get(f)
            cells.append(f"{s.ua.per_fold[f]:.3f}" + (f" +- {std:.3f}" if std is not None else ""))
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    if report.best_system:
        b = report.best_system
        lines += [
            "",
            f"Best system by validation UA (never test): **{b.name}** (validation UA {b.validation_ua:.3f}"
            + (f" on the folds every system has, {b.folds}" if b.folds else "")
            + "; "
            + ", ".join(f"{n} {v:.3f}" for n, v in b.by_system.items() if n != b.name)
            + f"); its fold with the best validation UA: `{b.run_dir}`.",
        ]
    if report.published:
        lines += ["", "Published results, cited (not measured here):", ""]
        lines += ["| system | UA | accuracy | protocol | source |", "|---|---|---|---|---|"]
        for c in report.published:
            ua = f"{c.ua:.3f}" if c.ua is not None else "-"
            acc = f"{c.accuracy:.3f}" if c.accuracy is not None else "-"
            lines.append(f"| {c.system} | {ua} | {acc} | {c.protocol} | {c.source} |")
    return lines


REPORT_FILES = ("report.json", "report.md", "ua_per_fold.png")
"""The files a comparison report consists of."""


def check_report_dir(out: str | Path, overwrite: bool = False) -> None:
    """Refuse a report folder that already holds a report file (a user's ``report.md`` or an earlier report),
    unless ``overwrite``: then only the report's own files are replaced, nothing else in the folder is touched.

    Raises:
        FileExistsError: naming the files found and ``--overwrite_output_dir``.
    """
    ReportFolder(out, REPORT_FILES).check(overwrite)


def write_report(report: CompareReport, out: Path) -> None:
    """``report.json``, ``report.md`` and ``ua_per_fold.png`` in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = ReportFolder(out, REPORT_FILES)
    folder.write_json("report.json", report.to_dict())
    systems = report.systems
    lines = [f"# {report.corpus}: system comparison", "", f"Generated by `{report.command}`.", ""]
    lines += summary_lines(report)
    labels = list(next((s.per_class_recall for s in systems if s.per_class_recall), {}))
    if labels:
        lines += ["", "Per-class recall (mean over the folds and seeds whose test side has the class):", ""]
        lines += ["| system | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        for s in systems:
            recall = s.per_class_recall
            cells = " | ".join("-" if recall.get(c) is None else f"{recall[c]:.3f}" for c in labels)
            lines.append(f"| {s.name} | {cells} |")
    for name, comp in report.paired.items():
        b = comp.bootstrap
        lines += [
            "",
            f"**{name} minus {report.reference}** on folds {comp.folds}: per-fold UA differences "
            + ", ".join(f"{d:+.3f}" for d in comp.ua_difference_per_fold)
            + f"; pooled UA difference {b.ua_difference:+.3f}, paired bootstrap 95 % CI "
            f"{b.interval()} ({b.num_bootstrap} resamples of the {b.num_units} "
            f"test {b.resample} {b.strata_words()}, all clips of a drawn speaker together; {b.num_clips} clips; "
            f"seeds {b.seeds[1]} vs {b.seeds[0]}, averaged).",
        ]
    lines += ["", "![UA per fold](ua_per_fold.png)", ""]
    lines += [
        f"Evaluated on: {describe_machine(report.machine)}. Trained on: "
        + "; ".join(f"{s.name}: {', '.join(s.train_machines or ['unrecorded'])}" for s in systems)
        + ".",
        "",
    ]
    folder.write_text("report.md", "\n".join(lines))

    folds = sorted({f for s in systems for f in s.folds})
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(folds) * len(systems) / 2, 3.2))
    width = 0.8 / len(systems)
    for i, s in enumerate(systems):
        xs = [folds.index(f) + i * width for f in s.folds]
        ax.bar(xs, [s.ua.per_fold[f] for f in s.folds], width, label=f"{s.name} ({s.ua.summary.text()})")
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(folds))], [f"fold {f}" for f in folds])
    ax.set_ylabel("test UA")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"{report.corpus}: UA per fold")
    fig.tight_layout()
    with folder.atomic("ua_per_fold.png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


README_BEGIN = "<!-- results: generated by ser-hf compare --readme; do not edit by hand -->"
README_END = "<!-- end of generated results -->"


def update_readme(readme: Path, report: CompareReport, report_dir: str) -> None:
    """Replace the README's generated block (between :data:`README_BEGIN` and :data:`README_END`) with the report's
    :func:`summary_lines`, so no number there is typed by hand.

    Raises:
        ValueError: the README lacks the two marker lines (named).
    """
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(f"{readme} lacks the marker lines {README_BEGIN!r} and {README_END!r}")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    block = [README_BEGIN, "", f"Generated from `{report_dir}/report.json` by `{report.command}`.", ""]
    block += summary_lines(report) + ["", README_END]
    readme.write_text(head + "\n".join(block) + tail)

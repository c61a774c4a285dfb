"""Cross-corpus transfer: each system's checkpoint scored on the other corpora (and on the corpora a multi-corpus
system left out).

    ser-hf cross-corpus --system eyase_mel_cnn=runs/eyase_melcnn --system urdu_mel_cnn=runs/urdu_melcnn \\
        --corpus ravdess=../shared/data/ravdess-16k --corpus eyase=../shared/data/eyase-16k \\
        --corpus emovo=../shared/data/emovo-16k --corpus urdu=../shared/data/urdu-16k \\
        --output_dir docs/results/cross_corpus

A system is a run directory of ``scripts/finetune.py`` (a cross-validation root or one run). Its checkpoint is
the run with the highest validation UA (on its own corpus's validation speakers, never a test side: the one
ser_hf would publish, as :func:`ser_hf.reports.compare.best_system` picks it). That checkpoint is scored

- on every clip of each other corpus (``--split all``: none of those speakers was seen), and
- on its own fold's test side of its training corpus (the in-corpus reference for the same checkpoint); for a
  multi-corpus system (:mod:`ser_hf.multicorpus`), on each member corpus's test side, the left-out corpus of
  ``--protocol loco`` whole, and not at all on the corpora it trained on whole,

through :func:`ser_hf.evaluation.evaluate_checkpoint`: on the labels the model and the corpus share
(:mod:`ser_hf.labels`; the model's probabilities renormalised over them, clips of other labels left out), so
chance is ``1 / number of shared labels``. Each evaluation is written once into the checkpoint's folder
(``eval_<corpus>_all`` / ``eval_<corpus>_test``) and read back on later calls; the report (``report.json``,
``report.md``) goes to ``--output_dir``, which must not hold one already. With ``--reference NAME`` every other
system's cell carries its UA difference to NAME on the same clips with a paired speaker-bootstrap 95 % CI.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..environment import describe_machine, machine_facts
from ..run import RunRecord
from .evaluation_report import read_predictions
from .folder import ReportFolder
from .rows import CrossCell, CrossCorpusReport, CrossSystem

logger = logging.getLogger(__name__)

REPORT_FILES = ("report.json", "report.md")
"""The files a cross-corpus report consists of."""


def chosen_checkpoint(root: str | Path) -> tuple[Path, float | None]:
    """The run of a system with the highest validation UA, and that UA (``None`` when no run records one: then
    the lowest fold of the first seed is taken).

    Raises:
        FileNotFoundError: ``root`` holds no run (from :func:`ser_hf.grid.fold_dirs`).
    """
    from ..grid import fold_dirs

    runs = [d for _, dirs in sorted(fold_dirs(root).items()) for d in dirs]
    scored = [(RunRecord.load(d).validation_ua, d) for d in runs]
    with_val = [(v, d) for v, d in scored if v is not None]
    if not with_val:
        return runs[0], None
    value, run = max(with_val, key=lambda vd: vd[0])
    return run, float(value)


def scope_of(record: RunRecord, corpus: str) -> str | None:
    """How a checkpoint is scored on ``corpus``: ``test`` (the test speakers its split holds for that corpus: its
    own corpus, a member of a multi-corpus split, or the whole left-out corpus of leave-one-corpus-out), ``all``
    (a corpus it never saw) or ``None`` (a corpus it trained on whole: no unseen speaker is left)."""
    view = record.split.for_corpus(corpus)
    if view is None:
        return "all"
    return "test" if view.test_speakers else None


def add_differences(rows: list[CrossSystem], reference: str, num_bootstrap: int = 2000, rescore=None) -> None:
    """Add ``vs_reference`` to every cell whose clips the ``reference`` system's cell can be paired with: UA
    difference with a paired speaker-bootstrap 95 % CI (:func:`ser_hf.reports.compare.paired_bootstrap_ua`).

    Two models with different label sets score different clips of a corpus (each only the labels it shares
    with it). With ``rescore(run_dir, corpus, scope, labels) -> EvaluationReport``, each side whose labels are
    more than the two have in common is scored again on the common ones (at least two), so both score the same
    clips; ``vs_reference`` then also holds those ``labels`` and both UAs on them (``reference_ua``, ``ua``).
    Without ``rescore``, or with fewer than two common labels, such a cell gets no difference (logged).

    Raises:
        ValueError: ``reference`` is not one of the systems.
    """
    from ..evaluation import default_report_dir
    from .compare import FoldResult, paired_bootstrap_ua

    by_name = {r.system: r for r in rows}
    if reference not in by_name:
        raise ValueError(f"--reference {reference!r} is not one of the systems {list(by_name)}")
    ref = by_name[reference]

    def side(row: CrossSystem, corpus: str, labels):  # the cell's predictions and UA, on ``labels`` only when given
        cell = row.scores[corpus]
        ua = cell.ua if labels is None else rescore(row.run_dir, corpus, cell.scope, labels).ua
        out = default_report_dir(row.run_dir, corpus, None, cell.scope, labels)
        return FoldResult(0, out, None, None, read_predictions(out)), ua

    for row in rows:
        for corpus, cell in row.scores.items():
            ref_cell = ref.scores.get(corpus)
            if row is ref or cell is None or ref_cell is None:
                continue
            common = [c for c in cell.shared_labels if c in ref_cell.shared_labels]
            same = set(common) == set(cell.shared_labels) == set(ref_cell.shared_labels)
            if not same and (rescore is None or len(common) < 2):
                logger.warning("%s vs %s on %s: other labels, no paired difference", row.system, reference, corpus)
                continue
            (a, ua_a), (b, ua_b) = (
                side(r, corpus, None if set(c.shared_labels) == set(common) else common)
                for r, c in ((ref, ref_cell), (row, cell))
            )
            try:
                cell.vs_reference = paired_bootstrap_ua([a], [b], num_bootstrap=num_bootstrap)
            except ValueError as err:  # scored on other clips: no paired difference
                logger.warning("%s vs %s on %s: no paired difference (%s)", row.system, reference, corpus, err)
                continue
            if not same:
                cell.vs_reference.labels, cell.vs_reference.reference_ua, cell.vs_reference.ua = common, ua_a, ua_b


def system_row(name: str, root: str, corpora: dict[str, str], **eval_kwargs) -> CrossSystem:
    """One system's row of the cross-corpus report: its chosen checkpoint (:func:`chosen_checkpoint`) scored on
    each corpus it did not train on whole (:func:`scope_of`), through
    :func:`ser_hf.evaluation.evaluation_of` (computed once, then read back while the clips and checkpoint match)."""
    from ..evaluation import evaluation_of

    run, val_ua = chosen_checkpoint(root)
    record = RunRecord.load(run)
    cells = {}
    for corpus, data_dir in corpora.items():
        scope = scope_of(record, corpus)
        if scope is None:  # a corpus it trained on whole (a training corpus of leave-one-corpus-out)
            cells[corpus] = None
            continue
        m = evaluation_of(run, corpus, data_dir, scope, **eval_kwargs)
        cells[corpus] = CrossCell(
            scope=scope, ua=m.ua, wa=m.wa, macro_f1=m.macro_f1, shared_labels=m.shared_labels, num_clips=m.num_clips
        )
    return CrossSystem(
        system=name,
        run_dir=str(run),
        trained_on=record.split.corpus,
        fold=record.split.fold,
        left_out=record.split.extra.get("test_corpus") if record.split.protocol == "loco" else None,
        validation_ua=val_ua,
        scores=cells,
    )


def cross_corpus(
    systems: dict[str, str],
    corpora: dict[str, str],
    output_dir: str,
    command: str = "",
    reference: str | None = None,
    num_bootstrap: int = 2000,
    overwrite: bool = False,
    **eval_kwargs,
) -> CrossCorpusReport:
    """Score every system's chosen checkpoint on every corpus of ``corpora`` and write the report.

    Args:
        systems: ``{name: run directory}`` in report order.
        corpora: ``{corpus name: data folder}``: the columns of the report.
        reference: a system every other is compared with, per corpus, on the same clips (see
            :func:`add_differences`).
        overwrite: replace an earlier report in ``output_dir`` (its ``report.json`` / ``report.md`` only).
        **eval_kwargs: passed to :func:`ser_hf.evaluation.evaluate_checkpoint` (``cache_dir``).

    Returns:
        The report (also ``report.json``): per system the checkpoint, its training corpus and validation UA, and
        per corpus UA / WA / macro-F1, the shared labels, the clip count and whether it is the in-corpus test side.

    Raises:
        FileExistsError: ``output_dir`` already holds a report and ``overwrite`` is off.
        ValueError: no system or no corpus given.
    """
    if not systems or not corpora:
        raise ValueError("give at least one --system NAME=RUN_DIR and one --corpus NAME=DATA_DIR")
    folder = ReportFolder(output_dir, REPORT_FILES)
    folder.check(overwrite)
    from ..evaluation import evaluation_of

    rows = [system_row(name, root, corpora, **eval_kwargs) for name, root in systems.items()]
    if reference is not None:

        def rescore(run_dir, corpus, scope, labels):
            return evaluation_of(run_dir, corpus, corpora[corpus], scope, labels=labels, **eval_kwargs)

        add_differences(rows, reference, num_bootstrap, rescore)
    report = CrossCorpusReport(
        command=command, corpora=list(corpora), systems=rows, reference=reference, machine=machine_facts()
    )
    folder.write_json("report.json", report.to_dict())
    folder.write_text("report.md", "\n".join(report_lines(report)) + "\n")
    return report


def report_lines(report: CrossCorpusReport) -> list[str]:
    """The Markdown of a cross-corpus report: one UA table (systems x corpora) and the labels each cell shares."""
    corpora = report.corpora
    lines = [
        "# Cross-corpus transfer",
        "",
        f"Generated by `{report.command}`." if report.command else "",
        "",
        "Each system's checkpoint is its run with the best validation UA (on its own corpus; never a test side). "
        "**Bold**: its own fold's test speakers (in-corpus; for a leave-one-corpus-out system, every clip of the "
        "corpus it left out). Other cells: every clip of that corpus, scored on the "
        "labels the model and the corpus share (probabilities renormalised over them; chance = 1 / shared labels, "
        "in brackets).",
        "",
        "| system (trained on, fold) | " + " | ".join(f"UA on {c}" for c in corpora) + " |",
        "|---|" + "---|" * len(corpora),
    ]
    for row in report.systems:
        cells = []
        for c in corpora:
            s = row.scores[c]
            if s is None:
                cells.append("trained on all of it")
                continue
            value = f"{s.ua:.3f} (1/{len(s.shared_labels)})"
            diff = s.vs_reference
            if diff:
                on = f" on {len(diff.labels)} labels" if diff.labels else ""
                value += f" [{diff.ua_difference:+.3f}{on}, CI {diff.interval()}]"
            cells.append(f"**{value}**" if s.scope == "test" else value)
        trained = row.trained_on.replace("+", " + ")
        how = f"{trained}, {row.left_out} left out" if row.left_out else f"{trained}, fold {row.fold}"
        lines.append(f"| {row.system} ({how}) | " + " | ".join(cells) + " |")
    if report.reference:
        lines += [
            "",
            f"In square brackets: UA minus that of **{report.reference}** on the same clips, with the paired "
            "speaker-bootstrap 95 % CI (speakers resampled with replacement; Field & Welsh 2007). Where the two "
            "models share different labels with the corpus, both are scored again on the labels they have in "
            "common ('on N labels'), so that they score the same clips.",
        ]
    lines += ["", "Shared labels and clips scored per cell:", ""]
    for row in report.systems:
        for c in corpora:
            s = row.scores[c]
            if s is None:
                continue
            lines.append(
                f"- {row.system} on {c} ({s.scope}): {', '.join(s.shared_labels)}; {s.num_clips} clips; "
                f"WA {s.wa:.3f}, macro-F1 {s.macro_f1:.3f}"
            )
    lines += ["", "Checkpoints: " + "; ".join(f"{r.system}: `{r.run_dir}`" for r in report.systems)]
    lines += ["", f"Evaluated on: {describe_machine(report.machine)}."]
    return lines

"""The report commands of ``ser-hf``: ``compare``, ``cross-corpus``, ``multicorpus-report`` and ``results-index``
(:mod:`ser_hf.reports`). Each takes its flags from the command line, ``compare`` and ``cross-corpus`` also from a
report spec (``configs/reports/*.yaml``; :func:`ser_hf.specs.spec_argv`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli_args import _corpus_dir, _system, add_overwrite_report, add_verify_counts, corpus_names


def compare_main(argv: list[str]) -> int:
    """``ser-hf compare``: see :mod:`ser_hf.reports.compare`."""
    parser = argparse.ArgumentParser(
        prog="ser-hf compare",
        description="Fold-by-fold comparison of trained systems; a first argument SPEC.yaml (configs/reports/) gives "
        "the flags (systems: {NAME: RUN_DIR}, corpus, data_dir, reference, ...), the command line overrides them.",
    )
    parser.add_argument("--system", type=_system, action="append", required=True, help="NAME=RUN_DIR (repeat)")
    parser.add_argument("--corpus", required=True, choices=corpus_names(), help="the corpus the systems trained on")
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--output_dir", required=True, help="report folder (report.md, report.json, plots)")
    parser.add_argument("--reference", default=None, help="system the others are compared with (default: first)")
    parser.add_argument("--num_bootstrap", type=int, default=10000)
    parser.add_argument(
        "--resample", choices=["speakers", "clips"], default="speakers", help="bootstrap unit within folds"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache_dir", default=None)
    parser.add_argument(
        "--readme", default=None, help="also copy the headline tables into this README's generated block"
    )
    add_overwrite_report(parser)
    add_verify_counts(parser)
    from .specs import spec_argv

    argv = spec_argv(argv, {"systems": "--system"}, pick={"data_dir": "corpus"})
    args = parser.parse_args(argv)
    from .reports.compare import compare_systems
    from .reports.compare_report import update_readme

    names = [n for n, _ in args.system]
    if len(set(names)) != len(names):
        raise ValueError(f"--system names must be unique, got {names}")
    report = compare_systems(
        dict(args.system),
        args.corpus,
        args.data_dir,
        args.output_dir,
        reference=args.reference,
        num_bootstrap=args.num_bootstrap,
        seed=args.seed,
        command="ser-hf compare " + " ".join(argv),
        resample=args.resample,
        overwrite=args.overwrite_output_dir,
        cache_dir=args.cache_dir,
        **({} if args.verify_counts else {"verify_counts": False}),
    )
    for warning in report.warnings:
        print(f"ser-hf compare: warning: {warning}", file=sys.stderr)
    if args.readme:
        update_readme(Path(args.readme), report, args.output_dir)
    for s in report.systems:
        print(f"{s.name}: UA {s.ua.mean:.4f} over folds {s.folds}")
    print(f"report: {args.output_dir}/report.md")
    return 0


def cross_corpus_main(argv: list[str]) -> int:
    """``ser-hf cross-corpus``: see :mod:`ser_hf.reports.crosscorpus`."""
    parser = argparse.ArgumentParser(
        prog="ser-hf cross-corpus",
        description="Score each system's checkpoint on the other corpora; a first argument SPEC.yaml gives the flags "
        "(systems: {NAME: RUN_DIR}, data_dir: {CORPUS: DIR}, reference, ...), the command line overrides them.",
    )
    parser.add_argument("--system", type=_system, action="append", required=True, help="NAME=RUN_DIR (repeat)")
    parser.add_argument("--corpus", type=_corpus_dir, action="append", required=True, help="NAME=DATA_DIR (repeat)")
    parser.add_argument("--output_dir", required=True, help="report folder (report.md, report.json)")
    parser.add_argument("--cache_dir", default=None)
    add_verify_counts(parser)
    parser.add_argument(
        "--reference",
        default=None,
        help="system every other is compared with on the same clips (UA difference, speaker-bootstrap 95 %% CI)",
    )
    parser.add_argument("--num_bootstrap", type=int, default=2000, help="bootstrap resamples for --reference")
    add_overwrite_report(parser)
    from .specs import spec_argv

    argv = spec_argv(argv, {"systems": "--system", "data_dir": "--corpus"})
    args = parser.parse_args(argv)
    from .corpora import NAMED_CORPORA
    from .reports.crosscorpus import cross_corpus

    for name, _ in args.corpus:
        if name not in NAMED_CORPORA:
            raise ValueError(f"--corpus {name!r}: expected one of {', '.join(NAMED_CORPORA)}")
    for flag, pairs in (("--system", args.system), ("--corpus", args.corpus)):
        names = [n for n, _ in pairs]
        if len(set(names)) != len(names):
            raise ValueError(f"{flag} names must be unique, got {names}")
    report = cross_corpus(
        dict(args.system),
        dict(args.corpus),
        args.output_dir,
        command="ser-hf cross-corpus " + " ".join(argv),
        reference=args.reference,
        num_bootstrap=args.num_bootstrap,
        overwrite=args.overwrite_output_dir,
        cache_dir=args.cache_dir,
        **({} if args.verify_counts else {"verify_counts": False}),
    )
    for row in report.systems:
        print(row.system, " ".join(f"{c}={s.ua:.3f}" if s else f"{c}=trained" for c, s in row.scores.items()))
    print(f"report: {args.output_dir}/report.md")
    return 0


def multicorpus_report_main(argv: list[str]) -> int:
    """``ser-hf multicorpus-report``: see :mod:`ser_hf.reports.multicorpus`."""
    parser = argparse.ArgumentParser(
        prog="ser-hf multicorpus-report",
        description="In-corpus (all corpora vs each alone) and leave-one-corpus-out reports from one YAML spec.",
    )
    parser.add_argument("spec", help="YAML: data_dir, in_corpus families, loco_reference, loco runs")
    parser.add_argument("--output_dir", required=True, help="results folder (README.md, in_corpus/, loco/)")
    parser.add_argument("--num_bootstrap", type=int, default=2000, help="bootstrap resamples per difference")
    parser.add_argument("--cache_dir", default=None)
    add_overwrite_report(parser)
    add_verify_counts(parser)
    args = parser.parse_args(argv)
    from .reports.multicorpus import MulticorpusReportSpec, multicorpus_report

    summary = multicorpus_report(
        MulticorpusReportSpec.from_yaml(args.spec),
        args.output_dir,
        command="ser-hf multicorpus-report " + " ".join(argv),
        num_bootstrap=args.num_bootstrap,
        overwrite=args.overwrite_output_dir,
        cache_dir=args.cache_dir,
        **({} if args.verify_counts else {"verify_counts": False}),
    )
    for r in summary.in_corpus:
        print(f"{r.family} {r.corpus}: alone {r.single_ua:.3f}, all corpora {r.multi_ua:.3f}")
    for r in summary.loco:
        print(f"{r.system} on {r.corpus}: {r.ua:.3f} (reference {r.reference_ua:.3f})")
    print(f"report: {args.output_dir}/README.md")
    return 0


def results_index_main(argv: list[str]) -> int:
    """``ser-hf results-index``: see :mod:`ser_hf.reports.index`."""
    parser = argparse.ArgumentParser(
        prog="ser-hf results-index", description="Generate the results index and the README's generated tables."
    )
    parser.add_argument("--results_dir", default="docs/results", help="the folder of reports (default: docs/results)")
    parser.add_argument("--readme", default="README.md", help="README whose generated blocks are replaced ('' : none)")
    args = parser.parse_args(argv)
    from .reports.index import write_results_index

    write_results_index(args.results_dir, args.readme or None)
    tables = f" and the tables of {args.readme}" if args.readme else ""
    print(f"wrote {Path(args.results_dir) / 'README.md'}{tables}")
    return 0

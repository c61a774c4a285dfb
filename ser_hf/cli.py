"""The ``ser-hf`` command line: ``train``, ``evaluate`` and ``folds``.

ser-hf train CONFIG.yaml [--flag value ...]
ser-hf evaluate MODEL --corpus NAME --data_dir DIR [--fold K | --split test|all] [--allow_seen_speakers]
ser-hf folds CORPUS --data_dir DIR [--protocol folds|loso] [--fold K]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cli_args import _alias, add_verify_counts, corpus_names


def classic_main(argv: list[str]) -> int:
    from .classic import main

    main(argv)
    return 0


COMMANDS = {
    "train": "train a model (same flags as scripts/finetune.py)",
    "evaluate": "score a checkpoint on a corpus (evaluation.json, predictions.jsonl, confusion_matrix.png)",
    "compare": "fold-by-fold comparison report of several trained systems",
    "cross-corpus": "each single-corpus system's checkpoint scored on the other corpora (shared labels)",
    "multicorpus-report": "docs/results/multicorpus: in-corpus and leave-one-corpus-out comparisons (one spec)",
    "results-index": "docs/results/README.md (every report) and the README's corpus and headline tables",
    "keep-records": "copy a trained system's records and stored evaluations without its weights (for reports)",
    "classic": "the write-ups' MLP on MFCC / chroma / log-mel statistics, same folds and metrics",
    "predict": "emotion of clips and folders, or a timeline of long recordings",
    "push": "publish a run to the Hugging Face Hub with its model card (--dry-run: build and check only)",
    "download": "fetch a public corpus, verified and safely extracted (or print its manual steps)",
    "export-dataset": "a corpus as Parquet with one config per speaker-independent fold (+ --repo-id to push)",
    "export-onnx": "a checkpoint as ONNX (fp32 + int8) for onnxruntime and transformers.js",
    "demo": "a Gradio page to try a checkpoint or ONNX export on your own voice",
    "space": "a Hugging Face Space folder (Gradio app on onnxruntime) for an ONNX export",
    "folds": "print the speaker-independent split of a corpus fold as JSON",
}
"""Every ``ser-hf`` command and its one-line description (the usage message)."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(
            "usage: ser-hf {"
            + ",".join(COMMANDS)
            + "} ...\n"
            + "\n".join(f"  {k:<14} {v}" for k, v in COMMANDS.items()),
            file=sys.stderr,
        )
        return 2
    if argv[0] == "train":
        from .train_command import run_cli

        return run_cli(argv[1:])
    if argv[0] in ("predict", "demo", "space"):  # light commands: an ONNX export runs without torch
        from .audio import AudioError
        from .deploy_command import demo_main, space_main

        light = {"predict": predict_main, "demo": demo_main, "space": space_main}
        try:
            return light[argv[0]](argv[1:])
        except (AudioError, ValueError, OSError) as err:
            print(f"ser-hf {argv[0]}: error: {err}", file=sys.stderr)
            return 2
    if argv[0] in COMMANDS:
        from .audio import AudioError
        from .corpora import CorpusError
        from .deploy_command import export_onnx_main
        from .download import DownloadError
        from .folds import LeakageError
        from .hub import PushError
        from .report_command import compare_main, cross_corpus_main, multicorpus_report_main, results_index_main

        run = {
            "evaluate": evaluate_main,
            "compare": compare_main,
            "cross-corpus": cross_corpus_main,
            "multicorpus-report": multicorpus_report_main,
            "results-index": results_index_main,
            "keep-records": keep_records_main,
            "classic": classic_main,
            "push": push_main,
            "predict": predict_main,
            "download": download_main,
            "export-dataset": export_main,
            "export-onnx": export_onnx_main,
            "folds": folds_main,
        }
        try:
            return run[argv[0]](argv[1:])
        except (
            LeakageError,
            CorpusError,
            PushError,
            DownloadError,
            AudioError,
            ValueError,
            OSError,
        ) as err:
            print(f"ser-hf {argv[0]}: error: {err}", file=sys.stderr)
            return 2
    return 2  # not reached: every command is dispatched above


def keep_records_main(argv: list[str]) -> int:
    """``ser-hf keep-records SOURCE DEST``: see :func:`ser_hf.grid.copy_records`."""
    parser = argparse.ArgumentParser(
        prog="ser-hf keep-records",
        description="Copy a trained system (a run, --all_folds or --seeds folder) without its weights: run records, "
        "splits, configs and stored evaluations (eval_*/, scored by ser-hf compare or evaluate). ser-hf compare "
        "reports the copy from those evaluations after the runs are deleted.",
    )
    parser.add_argument("source", help="the system's output folder (scored: every run holds an eval_*/ folder)")
    parser.add_argument("dest", help="a new folder for the copy (an existing one is refused)")
    args = parser.parse_args(argv)
    from .grid import copy_records

    runs = copy_records(args.source, args.dest)
    size = sum(f.stat().st_size for f in Path(args.dest).rglob("*") if f.is_file())
    print(f"{len(runs)} runs of {args.source} kept in {args.dest} ({size / 1e6:.2f} MB, no weights)")
    return 0


def folds_main(argv: list[str]) -> int:
    """``ser-hf folds``: the speaker sides of one fold of a corpus, as JSON."""
    parser = argparse.ArgumentParser(prog="ser-hf folds")
    parser.add_argument("corpus", choices=corpus_names(), help="corpus name (folder: your own clips)")
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--protocol", default="folds")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--num_val_speakers", type=int, default=2)
    parser.add_argument("--cache_dir", default=None, help="datasets cache folder")
    add_verify_counts(parser)
    args = parser.parse_args(argv)
    from .corpora import load_corpus
    from .folds import make_split

    kwargs = {} if args.verify_counts else {"verify_counts": False}
    ds = load_corpus(args.corpus, args.data_dir, cache_dir=args.cache_dir, **kwargs)
    split = make_split(args.corpus, ds["speaker"], args.protocol, args.fold, args.num_val_speakers)
    print(json.dumps(split.__dict__, indent=2))
    return 0


def evaluate_main(argv: list[str]) -> int:
    """``ser-hf evaluate``: see :func:`ser_hf.evaluation.evaluate_checkpoint`."""
    parser = argparse.ArgumentParser(
        prog="ser-hf evaluate", description="Score a checkpoint on a corpus (in-corpus or cross-corpus)."
    )
    parser.add_argument("model", help="checkpoint folder or hub id")
    parser.add_argument("--corpus", required=True, choices=corpus_names(), help="corpus name (folder: your own clips)")
    parser.add_argument("--data_dir", required=True, help="folder holding the corpus")
    parser.add_argument("--corpus_config", default=None, help="builder config, e.g. song for RAVDESS")
    parser.add_argument("--metadata", default=None, help="folder corpus: metadata CSV/JSONL (default: auto)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--fold", type=int, default=None, help="score the test side of this fold")
    which.add_argument("--split", choices=["test", "all"], default=None, help="the checkpoint's test side, or all")
    parser.add_argument("--protocol", default=None, help="fold protocol (default: the checkpoint's, else folds)")
    parser.add_argument("--allow_seen_speakers", action="store_true", help="score seen speakers (flagged)")
    parser.add_argument("--label_alias", type=_alias, action="append", default=[], help="ALIAS=CANONICAL label")
    parser.add_argument(
        "--labels", nargs="+", default=None, help="score only these shared labels, e.g. angry happy neutral sad"
    )
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument(
        "--output_dir", default=None, help="report folder (default: MODEL/eval_<corpus>_<scope>[_<labels>])"
    )
    parser.add_argument("--cache_dir", default=None, help="datasets cache folder")
    args = parser.parse_args(argv)
    from .evaluation import evaluate_checkpoint
    from .reports.evaluation_report import EVALUATION_FILE

    kwargs = {"metadata": args.metadata} if args.metadata else {}
    report = evaluate_checkpoint(
        args.model,
        args.corpus,
        args.data_dir,
        fold=args.fold,
        split=args.split,
        protocol=args.protocol,
        corpus_config=args.corpus_config,
        allow_seen_speakers=args.allow_seen_speakers,
        output_dir=args.output_dir,
        cache_dir=args.cache_dir,
        batch_size=args.batch_size,
        label_aliases=dict(args.label_alias) or None,
        labels=args.labels,
        **kwargs,
    )
    print(
        f"{report.corpus} {report.scope}: {report.num_clips} clips, labels {report.shared_labels}: "
        f"WA {report.wa:.4f}  UA {report.ua:.4f}  macro-F1 {report.macro_f1:.4f}"
    )
    if report.dropped_model_labels or report.dropped_corpus_labels:
        print(
            f"dropped labels: model {report.dropped_model_labels}, corpus {report.dropped_corpus_labels} "
            f"({report.clips_dropped_for_labels} clips not scored)"
        )
    if report.leakage["seen_speakers"]:
        print(f"WARNING: scored speakers seen in training/validation: {report.leakage['seen_speakers']}")
    print(f"report: {report.output_dir}/{EVALUATION_FILE}")
    return 0


def push_main(argv: list[str]) -> int:
    """``ser-hf push``: see :mod:`ser_hf.hub`."""
    parser = argparse.ArgumentParser(prog="ser-hf push", description="Publish a run to the Hugging Face Hub.")
    parser.add_argument("run_dir", help="a finished run directory (e.g. runs/cv/fold_0)")
    parser.add_argument("--repo-id", "--repo_id", dest="repo_id", required=True, help="USER/NAME on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", default=None, help="branch to push to (created if missing)")
    parser.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true", help="build + check only")
    parser.add_argument("--output_dir", default=None, help="upload folder (dry run default: RUN_DIR.hub)")
    parser.add_argument("--base_model", default=None, help="hub id of the pretrained backbone, for the card")
    parser.add_argument("--license", default=None, help="card license (default: the training corpus's)")
    parser.add_argument("--commit_message", default=None)
    parser.add_argument(
        "--loco_summary",
        default=None,
        help="summary.json of ser-hf multicorpus-report: the card adds the leave-one-corpus-out results of the recipe",
    )
    parser.add_argument("--onnx", default=None, help="an ONNX export of the run (ser-hf export-onnx) to upload with it")
    parser.add_argument("--space", default=None, help="USER/NAME of the demo Space (ser-hf space) the card links")
    args = parser.parse_args(argv)
    from .hub import push_to_hub

    result = push_to_hub(
        args.run_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        dry_run=args.dry_run,
        output_dir=args.output_dir,
        base_model=args.base_model,
        license=args.license,
        commit_message=args.commit_message,
        loco_summary=args.loco_summary,
        onnx=args.onnx,
        space=args.space,
    )
    top = result["validation"]["prediction"][0]
    print(f"folder: {result['folder']} ({len(result['files'])} files: {', '.join(result['files'])})")
    print(f"checked: model card parses; pipeline without ser_hf answers {top['label']!r} ({top['score']:.3f})")
    print(f"pushed: {result['url']}" if result["url"] else "dry run: nothing uploaded")
    return 0


def predict_main(argv: list[str]) -> int:
    """``ser-hf predict``: see :mod:`ser_hf.predict_command`."""
    from .predict_command import main

    return main(argv)


def export_main(argv: list[str]) -> int:
    """``ser-hf export-dataset``: see :mod:`ser_hf.export` and :func:`ser_hf.hub.push_dataset`."""
    parser = argparse.ArgumentParser(
        prog="ser-hf export-dataset",
        description="Export a corpus as Parquet shards with one config per speaker-independent fold, a dataset "
        "card, and (with --repo-id) push it to the Hub as a dataset repo.",
    )
    parser.add_argument("corpus", choices=corpus_names(), help="corpus name (folder: your own clips)")
    parser.add_argument("--data_dir", required=True, help="folder holding the corpus")
    parser.add_argument("--to", required=True, help="output folder (must not exist or be empty)")
    add_verify_counts(parser)
    parser.add_argument("--protocol", choices=["folds", "loso"], default="folds")
    parser.add_argument("--sampling_rate", type=int, default=None, help="store mono FLAC at this rate (Hz)")
    parser.add_argument("--corpus_config", default=None)
    parser.add_argument("--metadata", default=None, help="folder corpus: metadata CSV/JSONL")
    parser.add_argument("--cache_dir", default=None)
    parser.add_argument("--repo-id", dest="repo_id", default=None, help="push to this dataset repo (USER/NAME)")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--revision", default=None)
    parser.add_argument("--dry-run", dest="dry_run", action="store_true", help="build and check the folder only")
    args = parser.parse_args(argv)
    from .export import export_dataset
    from .hub import check_push_target, push_dataset, validate_dataset_folder

    if args.sampling_rate is not None and args.sampling_rate <= 0:
        raise ValueError(f"--sampling_rate {args.sampling_rate}: expected a rate in Hz above 0, e.g. 16000")
    if args.repo_id:  # before the export is built: a bad repo id or a missing token costs nothing
        check_push_target(args.repo_id, args.dry_run, f"nothing was exported to {args.to}")
    kwargs = {"metadata": args.metadata} if args.metadata else {}
    if not args.verify_counts:
        kwargs["verify_counts"] = False
    summary = export_dataset(
        args.corpus,
        args.data_dir,
        args.to,
        args.protocol,
        args.sampling_rate,
        args.corpus_config,
        args.cache_dir,
        **kwargs,
    )
    print(
        f"exported {summary['num_clips']} clips into {summary['num_shards']} shards ({summary['bytes'] / 1e6:.1f} MB) "
        f"in {summary['seconds']:.1f} s: {args.to}"
    )
    for name, splits in summary["configs"].items():
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in splits.items()))
    if args.repo_id:
        result = push_dataset(args.to, args.repo_id, args.private, args.revision, dry_run=args.dry_run)
        print("dry run: nothing uploaded" if args.dry_run else f"pushed to {result['url']}")
    elif args.dry_run:
        validate_dataset_folder(args.to)
        print("checked: every config loads with datasets.load_dataset with the declared split sizes")
    return 0


def download_main(argv: list[str]) -> int:
    """``ser-hf download``: see :mod:`ser_hf.download`; which corpus downloads how is read from the registry."""
    from .corpora import MANUAL_ONLY, NAMED_CORPORA, REGISTRY, manual_instructions

    parser = argparse.ArgumentParser(prog="ser-hf download", description="Fetch a public corpus.")
    parser.add_argument(
        "corpus", choices=NAMED_CORPORA, help=f"corpus name ({', '.join(MANUAL_ONLY)}: prints the manual steps)"
    )
    parser.add_argument("--to", default="data", help="folder for archives and the extracted corpus")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    info = REGISTRY[args.corpus].info
    if info.download is None:
        print(manual_instructions(args.corpus, args.to))
        return 0
    folder, missing = info.download(args.to, not args.no_progress)
    if missing:
        print(f"not on the server (HTTP 404), skipped: {', '.join(missing)}")
    print(f"{args.corpus}: {folder} (load it with ser_hf.load_corpus({args.corpus!r}, data_dir={str(folder)!r}))")
    return 0

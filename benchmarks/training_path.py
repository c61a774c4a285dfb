"""Which package files one training run reads: a 2-step run from ``scripts/finetune.py``'s entry point
(:func:`ser_hf.train_command.run_cli`) to ``metrics.json``, with a profiler hook that records every function of
``ser_hf`` that is called.

A file counts as *followed* when one of its functions or methods runs; a file only imported (its module body, class
bodies, the other corpus modules read by the registry) counts as *imported*. The run is the tests' synthetic
RAVDESS (24 actors, 0.3 s tones) and a tiny random model built from a config (nothing is downloaded), so it takes
seconds. The front-door issue's target: a newcomer follows one run through at most 15 package files.

    python benchmarks/training_path.py                        # Whisper LoRA recipe, fold 0
    python benchmarks/training_path.py --config ravdess_melcnn.yaml
    python benchmarks/training_path.py -- --adapt_top_layers 1  # extra training flags after --

Prints one JSON line: ``followed`` (count and ``{file: [functions]}``), ``imported`` (count and files),
``package_lines`` of the followed files.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = str(REPO / "ser_hf") + "/"
CO_NEWLOCALS = 0x2  # set for functions, unset for module and class bodies


def trace(config: str, extra: list[str], work: Path) -> tuple[dict[str, set[str]], set[str]]:
    """Run one 2-step fold of ``configs/<config>`` under a profiler hook; ``({file: functions}, imported files)``
    with paths relative to the package."""
    sys.path.insert(0, str(REPO / "tests"))
    import conftest  # the tests' synthetic corpus and tiny models: one home

    data = conftest.write_ravdess_tree(work / "ravdess")
    argv = conftest.quick_run_args(config, data, work / "cache", work / "out", *extra)
    if "melcnn" in config:
        argv += conftest.TINY_MELCNN
    else:
        model = conftest.save_tiny_backbone("whisper", work / "whisper")
        argv += ["--model_name_or_path", str(model), "--per_device_train_batch_size", "4", "--whisper_window_s", "1"]
    followed: dict[str, set[str]] = {}

    def hook(frame, event, arg):
        code = frame.f_code
        if event == "call" and code.co_filename.startswith(PACKAGE) and code.co_flags & CO_NEWLOCALS:
            if not code.co_name.startswith("<"):  # comprehensions and lambdas belong to their function
                followed.setdefault(code.co_filename[len(PACKAGE) :], set()).add(code.co_name)

    sys.setprofile(hook)
    threading.setprofile(hook)
    try:
        from ser_hf.train_command import run_cli

        sys.argv = ["scripts/finetune.py", *argv]
        run_cli()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    imported = {
        m.__file__[len(PACKAGE) :]
        for m in list(sys.modules.values())
        if getattr(m, "__file__", None) and m.__file__.startswith(PACKAGE)
    }
    return followed, imported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="ravdess_wav2vec2_lora.yaml", help="a file of configs/ (%(default)s)")
    parser.add_argument("extra", nargs="*", help="extra training flags, after --")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        followed, imported = trace(args.config, args.extra, Path(tmp))
    lines = sum(len((REPO / "ser_hf" / f).read_text().splitlines()) for f in followed)
    print(
        json.dumps(
            {
                "config": args.config,
                "extra": args.extra,
                "followed": {"count": len(followed), "files": {f: sorted(followed[f]) for f in sorted(followed)}},
                "imported": {"count": len(imported), "files": sorted(imported)},
                "package_lines": lines,
            }
        )
    )


if __name__ == "__main__":
    main()

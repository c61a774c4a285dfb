"""The Whisper base LoRA grid of the multi-corpus issue on a lent GPU machine, inside one call of the `device` tool.

Runs on the GPU machine, after ``benchmarks/gpu_pack.py``'s parts have been copied into ``/tmp/ser_gpu`` (its
printed calls do that; this script is what the last one runs). In order:

1. installs the carried wheels into ``/tmp/site`` (datasets, evaluate, soundfile, soxr, ...; the image has torch,
   transformers, peft and accelerate) and checks that the image's transformers still has the ``Trainer`` methods
   ``SERTrainer`` overrides (``tests/test_trainer_contract.py``); stops there if not;
2. trains the grid in priority order (:func:`grid_runs`), ``--jobs`` runs at a time on the one GPU, each with
   its own datasets cache; no run starts after ``--budget_s`` seconds, and a run whose ``metrics.json`` exists
   is kept (a second call continues the grid);
3. writes the in-corpus report of what finished (``ser-hf multicorpus-report``'s code; the spec it used is
   saved beside it) and packs the report, every run's records (``metrics.json``, ``split.json``, evaluations,
   predictions), the adapters of the multi-corpus seed-42 runs (no other weights) and the log into
   ``$OUT/gpu_grid.tar.gz``.

The grid (``configs/multicorpus_wav2vec2_lora.yaml`` and ``configs/<corpus>_wav2vec2_lora.yaml`` with the Whisper
base encoder, fp32, seed 42, folds 0-3): the multi-corpus run; then RAVDESS alone (the row missing from
docs/results/multicorpus); then EYASE, EMOVO and URDU alone; then seed 43 of the multi-corpus run and of RAVDESS
alone. GPU floats differ from the CPU runs' (another reduction order), so the report compares GPU runs only.

    python3 benchmarks/gpu_grid.py --budget_s 360 --jobs 4
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

CORPORA = ["ravdess", "emovo", "eyase", "urdu"]
BASE = ["--base_model_id", "openai/whisper-base"]
PUBLISHED = "multi_whisper_base/seed_42/"  # the runs whose adapters come back


def corpus_dir(root: Path, corpus: str) -> Path:
    """Where a corpus's part was copied: ``root/data/<corpus>-16k`` (the folder name of ../shared/data)."""
    return root / "data" / f"{corpus}-16k"


def data_arg(root: Path) -> str:
    """``--data_dir`` of all four corpora under ``root/data`` (``NAME=DIR,...``)."""
    return ",".join(f"{c}={corpus_dir(root, c)}" for c in CORPORA)


def grid_runs(root: Path, runs_dir: Path, folds=(0, 1, 2, 3), extra: list[str] | None = None) -> list[tuple]:
    """The grid in priority order: ``(output_dir, finetune.py arguments)`` per run.

    Args:
        root: where the parts were copied (``data/<corpus>-16k``, ``models/whisper-base-encoder``).
        runs_dir: where run directories go (``<family>/seed_<S>/fold_<K>``).
        extra: arguments added to every run (e.g. ``--dataloader_num_workers 3``).
    """
    model = ["--model_name_or_path", str(root / "models" / "whisper-base-encoder"), *BASE]
    extra = list(extra or [])
    families = [("multi_whisper_base", "configs/multicorpus_wav2vec2_lora.yaml", data_arg(root), 42)]
    families += [(f"{c}_whisper_base_lora", f"configs/{c}_wav2vec2_lora.yaml", str(corpus_dir(root, c)), 42)
                 for c in ["ravdess", "eyase", "emovo", "urdu"]]  # fmt: skip
    families += [(name, config, data, 43) for name, config, data, _ in families[:2]]
    runs = []
    for name, config, data, seed in families:
        for k in folds:
            out = runs_dir / name / f"seed_{seed}" / f"fold_{k}"
            args = [config, "--data_dir", data, *model, "--fold", str(k), "--seed", str(seed)]
            runs.append((out, [*args, "--output_dir", str(out), *extra]))
    return runs


def run_queue(
    runs: list[tuple], jobs: int, budget_s: float, script: str, env: dict, log=print, stop_s: float | None = None
) -> dict:
    """Train ``runs`` ``jobs`` at a time; start none after ``budget_s`` seconds; keep runs already finished.

    Args:
        stop_s: after this many seconds, stop the runs still going and delete their folders, so that the report
            and the archive are written before the device call's own limit (600 s) kills everything.

    Returns:
        ``{output_dir: return code}`` of the runs seen here (finished earlier: ``"kept"``; stopped: ``"stopped"``;
        not started: absent). A folder without ``metrics.json`` (a run cut off by an earlier call) is this grid's
        own scratch on the machine and is started again from scratch.
    """
    start, running, codes = time.monotonic(), {}, {}
    pending = list(runs)
    while pending or running:
        elapsed = time.monotonic() - start
        for out, proc in list(running.items()):
            if proc.poll() is None and stop_s is not None and elapsed >= stop_s:
                proc.kill()
                proc.wait()
                shutil.rmtree(out, ignore_errors=True)
                codes[str(out)] = "stopped"
                log(f"{elapsed:7.0f} s  stopped (--stop_s), folder removed  {out}")
                del running[out]
            elif proc.poll() is not None:
                codes[str(out)] = proc.returncode
                log(f"{elapsed:7.0f} s  done rc={proc.returncode}  {out}")
                del running[out]
        while pending and len(running) < jobs and time.monotonic() - start < budget_s:
            out, args = pending.pop(0)
            if (out / "metrics.json").exists():
                codes[str(out)] = "kept"
                log(f"kept (finished earlier): {out}")
                continue
            if out.exists():
                shutil.rmtree(out)
                log(f"removed an unfinished run (cut off earlier): {out}")
            out.parent.mkdir(parents=True, exist_ok=True)
            job_env = {**env, "HF_DATASETS_CACHE": str(out.parent / f".cache_{out.name}")}
            with open(out.parent / f"{out.name}.log", "w") as f:
                running[out] = subprocess.Popen([sys.executable, script, *args], stdout=f, stderr=subprocess.STDOUT,
                                                env=job_env)  # fmt: skip
            log(f"{time.monotonic() - start:7.0f} s  start  {out}")
        if pending and time.monotonic() - start >= budget_s and not running:
            break
        time.sleep(1)
    for out, _ in pending:
        log(f"not started (budget): {out}")
    return codes


def finished(folder: Path) -> bool:
    """Whether ``folder`` (``<family>/seed_<S>``) holds at least one finished fold."""
    return any(folder.glob("fold_*/metrics.json"))


def report_spec(root: Path, runs_dir: Path, versions: dict, seed: int = 42) -> dict | None:
    """The ``ser-hf multicorpus-report`` spec of what finished with ``seed``: the multi-corpus run against each
    corpus alone; ``None`` when the multi-corpus run or every single-corpus run is missing."""
    multi = runs_dir / "multi_whisper_base" / f"seed_{seed}"
    single = {c: str(runs_dir / f"{c}_whisper_base_lora" / f"seed_{seed}") for c in CORPORA}
    single = {c: d for c, d in single.items() if finished(Path(d))}
    if not finished(multi) or not single:
        return None
    return {
        "data_dir": {c: str(corpus_dir(root, c)) for c in CORPORA},
        "in_corpus": [{"name": "whisper_base_lora", "multi": str(multi), "single": single}],
        "notes": [f"benchmarks/gpu_grid.py, seed {seed}, fp32, one run per fold; {json.dumps(versions)}."],
    }


def kept_in_results(relative: Path) -> bool:
    """Whether a file of the runs or the report (path relative to their folder) goes into the results archive:
    records (JSON, JSONL, logs, Markdown, plots, YAML), and the LoRA adapters (with the trained head) of the
    multi-corpus seed-42 runs, the family that is published, about 3 MB each; no other weights, no checkpoints."""
    if any(p.startswith(("checkpoint-", ".cache")) for p in relative.parts):
        return False
    if relative.suffix in {".json", ".jsonl", ".log", ".md", ".png", ".yaml"}:
        return True
    return relative.name == "adapter_model.safetensors" and relative.as_posix().startswith(PUBLISHED)


def pack_results(runs_dir: Path, report_dir: Path, log_file: Path, dest: Path) -> Path:
    """``dest/gpu_grid.tar.gz``: the report, the log and what :func:`kept_in_results` keeps of every run."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest / "gpu_grid.tar.gz", "w:gz") as tar:
        for base in (runs_dir, report_dir):
            for f in sorted(base.rglob("*")) if base.exists() else []:
                if f.is_file() and kept_in_results(f.relative_to(base)):
                    tar.add(f, arcname=str(Path(base.name) / f.relative_to(base)))
        if log_file.exists():
            tar.add(log_file, arcname=log_file.name)
    return dest / "gpu_grid.tar.gz"


def prepare(root: Path, install: bool = True) -> tuple[dict, dict]:
    """Install the carried wheels into /tmp/site and check the Trainer contract.

    Args:
        install: ``False`` on a machine that has every package already (a CPU rehearsal of the grid).

    Returns:
        The environment for the runs, and what they run on (``device`` name, package versions).

    Raises:
        SystemExit: no wheels under ``root/whl``, a package that does not import (its error), or the image's
            transformers breaks the contract.
    """
    wheels = sorted((root / "whl").glob("*.whl"))
    if install:
        if not wheels:
            raise SystemExit(f"{root}/whl holds no wheels: run benchmarks/gpu_pack.py here and its device calls first")
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
        subprocess.run([*pip, "--no-cache-dir", "--upgrade", "--target", "/tmp/site", *map(str, wheels)], check=True)
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["/tmp/site", repo]), "OMP_NUM_THREADS": "1"}
    probe = (
        "import json, torch, transformers, peft, datasets, soundfile, soxr; print(json.dumps({'device': "
        "torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu', 'torch': torch.__version__, "
        "'transformers': transformers.__version__, 'peft': peft.__version__, 'datasets': datasets.__version__}))"
    )
    found = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    if found.returncode:
        raise SystemExit(f"the packages do not import on this machine:\n{found.stderr[-3000:]}")
    versions = json.loads(found.stdout.strip().splitlines()[-1])
    contract = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                               "tests/test_trainer_contract.py"], env=env, cwd=repo)  # fmt: skip
    if contract.returncode:
        raise SystemExit(
            "the image's transformers breaks SERTrainer's contract: carry the transformers wheel "
            "(benchmarks/gpu_pack.py --wheels ... transformers)"
        )
    return env, versions


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/tmp/ser_gpu", help="where gpu_pack.py's parts were copied")
    parser.add_argument("--budget_s", type=float, default=360, help="no run starts after this many seconds")
    parser.add_argument("--stop_s", type=float, default=480, help="runs still going then are stopped and deleted")
    parser.add_argument("--jobs", type=int, default=4, help="runs at a time on the one GPU")
    parser.add_argument("--dataloader_num_workers", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="only the first N runs of the grid")
    parser.add_argument("--extra", default="", help="more finetune.py arguments for every run (one string)")
    parser.add_argument("--no_install", action="store_true", help="the packages are there already (a rehearsal)")
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu_out"), help="where gpu_grid.tar.gz goes")
    args = parser.parse_args(argv)

    root, repo = Path(args.root), Path(__file__).resolve().parents[1]
    runs_dir, report_dir, log_file = root / "runs", root / "report", root / "gpu_grid.log"

    def log(line: str) -> None:
        print(line, flush=True)
        with open(log_file, "a") as f:
            f.write(line + "\n")

    env, versions = prepare(root, install=not args.no_install)
    log(json.dumps(versions))
    extra = ["--dataloader_num_workers", str(args.dataloader_num_workers), *args.extra.split()]
    codes = run_queue(grid_runs(root, runs_dir, extra=extra)[: args.limit], args.jobs, args.budget_s,
                      str(repo / "scripts" / "finetune.py"), env, log, args.stop_s)  # fmt: skip
    spec = report_spec(root, runs_dir, versions)
    if spec is not None:
        import yaml

        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        # the function behind `ser-hf multicorpus-report`, not the CLI: the CLI imports ser_hf.hub, which needs
        # huggingface_hub 2.x (httpx2), and the image has 1.x
        report = (
            "import sys; from ser_hf.reports.multicorpus import MulticorpusReportSpec, multicorpus_report; "
            "multicorpus_report(MulticorpusReportSpec.from_yaml(sys.argv[1]), sys.argv[2], command=sys.argv[3], "
            "overwrite=True)"
        )
        command = f"ser-hf multicorpus-report {report_dir / 'spec.yaml'} --output_dir {report_dir}"
        subprocess.run([sys.executable, "-c", report, str(report_dir / "spec.yaml"), str(report_dir), command],
                       env=env, cwd=repo)  # fmt: skip
    tar = pack_results(runs_dir, report_dir, log_file, Path(args.out))
    log(json.dumps({"runs": codes, "results": str(tar)}))
    return codes


if __name__ == "__main__":
    main()

"""benchmarks/training_path.py: the files one training run follows (the front-door issue's reading target)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_training_path_names_the_files_a_run_calls_into():
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "training_path.py"), "--config", "ravdess_melcnn.yaml"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    followed = report["followed"]["files"]
    # the guided path of docs/training.md, in run order
    for name in ("train_command.py", "training/arguments.py", "training/command.py", "training/fold.py", "run.py"):
        assert name in followed, name
    assert "run_fold" in followed["training/fold.py"] and "run_cli" in followed["train_command.py"]
    # an imported-only module is not followed: the registry reads every corpus module, the run calls RAVDESS's
    assert "corpora/emovo.py" in report["imported"]["files"] and "corpora/emovo.py" not in followed
    assert report["followed"]["count"] == len(followed) < report["imported"]["count"]
    assert report["package_lines"] > 1000

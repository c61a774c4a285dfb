"""ser-hf compare: fold collection, paired differences, bootstrap CI, the report files."""

import json
from pathlib import Path

import numpy as np
import pytest

from ser_hf.cli import main as cli
from ser_hf.compare import FoldResult, fold_dirs, paired_bootstrap_ua
from ser_hf.training import main as train

from .conftest import TINY_MELCNN, quick_run_args
from .test_evaluation import checkpoint  # noqa: F401  (module-scoped trained fold-0 run)

ROOT = Path(__file__).resolve().parents[1]


def fake_fold(fold, refs, preds, speakers=None):
    speakers = speakers or [f"s{i % 3}" for i in range(len(refs))]
    lines = [
        {"id": f"{fold}-{i}", "speaker": s, "reference": r, "prediction": p}
        for i, (r, p, s) in enumerate(zip(refs, preds, speakers))
    ]
    return FoldResult(fold, Path("."), {}, {}, lines)


def test_bootstrap_of_identical_and_of_opposite_systems():
    refs = ["a", "b", "c", "a", "b", "c"] * 5
    wrong = ["b", "c", "a", "b", "c", "a"] * 5
    a = [fake_fold(0, refs, refs), fake_fold(1, refs, wrong)]
    same = paired_bootstrap_ua(a, a, num_bootstrap=200)
    assert same["ua_difference"] == 0 and same["ci95_low"] == 0 and same["ci95_high"] == 0
    b = [fake_fold(0, refs, wrong), fake_fold(1, refs, refs)]
    swapped = paired_bootstrap_ua(a, b, num_bootstrap=200)  # each wins one fold: pooled UA equal
    assert swapped["ua_difference"] == pytest.approx(0) and swapped["ci95_low"] < 0 < swapped["ci95_high"]
    better = paired_bootstrap_ua([fake_fold(0, refs, wrong)], [fake_fold(0, refs, refs)], num_bootstrap=200)
    assert better["ua_difference"] == 1 and better["ci95_low"] == 1 and better["num_clips"] == 30
    with pytest.raises(ValueError, match="share no fold"):
        paired_bootstrap_ua([fake_fold(0, refs, refs)], [fake_fold(3, refs, refs)])


def test_speaker_bootstrap_respects_that_clips_of_one_speaker_are_not_independent():
    # b beats a on every clip of one speaker of three and ties elsewhere: resampling clips makes that look sure,
    # resampling speakers shows that it rests on one speaker
    refs = ["a", "b", "c"] * 30
    speakers = [f"s{i // 30}" for i in range(90)]
    a_pred = [r if s != "s0" else "x" for r, s in zip(refs, speakers)]
    a, b = [fake_fold(0, refs, a_pred, speakers)], [fake_fold(0, refs, refs, speakers)]
    by_clip = paired_bootstrap_ua(a, b, num_bootstrap=2000, resample="clips")
    by_speaker = paired_bootstrap_ua(a, b, num_bootstrap=2000, resample="speakers")
    assert by_clip["ua_difference"] == by_speaker["ua_difference"] == pytest.approx(1 / 3)
    assert by_clip["ci95_low"] > 0.15  # clips: a confident win
    assert by_speaker["ci95_low"] == 0 and by_speaker["num_units"] == 3 and by_speaker["resample"] == "speakers"
    with pytest.raises(ValueError, match="resample 'actors' is not one of speakers, clips"):
        paired_bootstrap_ua(a, b, resample="actors")


def test_fold_dirs_needs_finished_runs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished run"):
        fold_dirs(tmp_path)


def test_compare_report_from_run_directories(checkpoint, ravdess_dir, tmp_path):  # noqa: F811
    single, cache = checkpoint
    cv = tmp_path / "cv"
    for k in (0, 1):
        train(
            quick_run_args(
                "ravdess_melcnn.yaml",
                ravdess_dir,
                cache,
                cv / f"fold_{k}",
                *f"--fold {k} --seed 7".split(),
                *TINY_MELCNN,
            )
        )
    out = tmp_path / "report"
    rc = cli(
        [
            "compare",
            "--system",
            f"single={single}",
            "--system",
            f"cv={cv}",
            "--corpus",
            "ravdess",
            "--data_dir",
            str(ravdess_dir),
            "--output_dir",
            str(out),
            "--num_bootstrap",
            "100",
            "--cache_dir",
            str(cache),
        ]
    )
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    single_s, cv_s = report["systems"]
    assert single_s["folds"] == [0] and cv_s["folds"] == [0, 1] and single_s["ua"]["std"] is None
    assert cv_s["ua"]["mean"] == pytest.approx(np.mean(list(cv_s["ua"]["per_fold"].values())))
    paired = report["paired"]["cv"]
    assert paired["folds"] == [0] and paired["bootstrap"]["num_clips"] == 240
    assert paired["ua_difference_per_fold"][0] == pytest.approx(cv_s["ua"]["per_fold"]["0"] - single_s["ua"]["mean"])
    assert single_s["parameters"]["trainable"] > 0 and single_s["inference_rtf"] > 0
    md = (out / "report.md").read_text()
    assert "| single | 0 |" in md and "bootstrap 95 % CI" in md and (out / "ua_per_fold.png").exists()
    assert (cv / "fold_1" / "eval_ravdess_test" / "predictions.jsonl").exists()  # evaluated once, then collected
    assert (
        cli(
            [
                "compare",
                "--system",
                f"a={single}",
                "--corpus",
                "ravdess",
                "--data_dir",
                str(ravdess_dir),
                "--output_dir",
                str(tmp_path / "r2"),
                "--reference",
                "zzz",
            ]
        )
        == 2
    )

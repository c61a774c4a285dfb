"""The write-ups' classic system (MFCC / chroma / log-mel means into an MLP) under the same folds and reports."""

import json

import numpy as np
import pytest

from ser_hf.classic import ClassicSettings, main, utterance_features
from ser_hf.grid import fold_dirs
from ser_hf.metrics import unweighted_average_recall
from ser_hf.reports.compare import collect_fold
from ser_hf.run import RunRecord


def test_features_are_the_documented_180_means():
    sr = 16000
    t = np.arange(sr) / sr
    low, high = (np.sin(2 * np.pi * f * t).astype(np.float32) * 0.3 for f in (220.0, 880.0))
    a, b = utterance_features(low, sr), utterance_features(high, sr)
    assert a.shape == (180,) and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.abs(a - b).max() > 1.0  # the pitch shows in the statistics
    with pytest.raises(ValueError, match="hidden_units must be at least 1, got 0"):
        ClassicSettings(hidden_units=0)


@pytest.mark.slow
def test_classic_runs_are_run_directories_that_compare_reads(ravdess_dir, ravdess_cache, tmp_path):
    out = tmp_path / "classic"
    argv = ["--data_dir", str(ravdess_dir), "--cache_dir", str(ravdess_cache), "--output_dir", str(out)]
    summary = main([*argv, "--fold", "1", "--seeds", "1", "2", "--max_iter", "60"])
    for seed in (1, 2):
        run = out / f"seed_{seed}"
        record = RunRecord.load(run)
        assert record.split.fold == 1 and record.family == "classic_mlp" and record.training.seed == seed
        assert sorted(record.split.test_speakers) == ["Actor_05", "Actor_06", "Actor_07", "Actor_08"]
        assert record.ua > 0.5  # the synthetic classes differ in pitch: far above chance (0.125)
        assert record.validation_ua is not None and (run / "model.joblib").exists()
        # the evaluation report: one line per test clip, and the same UA from its predictions
        lines = [json.loads(x) for x in (run / "eval_ravdess_test" / "predictions.jsonl").read_text().splitlines()]
        assert len(lines) == 240 and {x["speaker"] for x in lines} == set(record.split.test_speakers)
        names = record.label_names
        ua = unweighted_average_recall(
            np.array([names.index(x["prediction"]) for x in lines]),
            np.array([names.index(x["reference"]) for x in lines]),
        )
        assert ua == pytest.approx(record.ua) and (run / "eval_ravdess_test" / "confusion_matrix.png").exists()
        result = collect_fold(run, 1, "ravdess", str(ravdess_dir))  # read, not re-evaluated
        assert result.metrics.ua == pytest.approx(record.ua) and result.metrics.inference["rtf"] > 0
        assert fold_dirs(run) == {1: [run]} and fold_dirs(out) == {1: [out / "seed_1", out / "seed_2"]}
        assert summary["per_fold"][1]["ua"]["per_seed"][seed] == pytest.approx(record.ua)
    assert json.loads((out / "seeds_results.json").read_text())["seeds"] == [1, 2]
    with pytest.raises(FileExistsError):
        main([*argv, "--fold", "1"])

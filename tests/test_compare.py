"""ser-hf compare: fold collection, paired differences, bootstrap CI, the report files."""

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ser_hf.cli import main as cli
from ser_hf.grid import fold_dirs
from ser_hf.metrics import unweighted_average_recall
from ser_hf.reports.compare import FoldResult, best_system, paired_bootstrap_ua
from ser_hf.reports.compare_report import README_BEGIN, README_END
from ser_hf.training import main as train

from .conftest import TINY_MELCNN, quick_run_args

ROOT = Path(__file__).resolve().parents[1]


def fake_fold(fold, refs, preds, speakers=None):
    speakers = speakers or [f"s{i % 3}" for i in range(len(refs))]
    lines = [
        {"id": f"{fold}-{i}", "speaker": s, "reference": r, "prediction": p}
        for i, (r, p, s) in enumerate(zip(refs, preds, speakers))
    ]
    return FoldResult(fold, Path("."), None, None, lines)


def test_bootstrap_of_identical_and_of_opposite_systems():
    refs = ["a", "b", "c", "a", "b", "c"] * 5
    wrong = ["b", "c", "a", "b", "c", "a"] * 5
    a = [fake_fold(0, refs, refs), fake_fold(1, refs, wrong)]
    same = paired_bootstrap_ua(a, a, num_bootstrap=200)
    assert same.ua_difference == 0 and same.ci95_low == 0 and same.ci95_high == 0
    b = [fake_fold(0, refs, wrong), fake_fold(1, refs, refs)]
    swapped = paired_bootstrap_ua(a, b, num_bootstrap=200)  # each wins one fold: pooled UA equal
    assert swapped.ua_difference == pytest.approx(0) and swapped.ci95_low < 0 < swapped.ci95_high
    better = paired_bootstrap_ua([fake_fold(0, refs, wrong)], [fake_fold(0, refs, refs)], num_bootstrap=200)
    assert better.ua_difference == 1 and better.ci95_low == 1 and better.num_clips == 30
    with pytest.raises(ValueError, match="share no fold"):
        paired_bootstrap_ua([fake_fold(0, refs, refs)], [fake_fold(3, refs, refs)])


def test_bootstrap_refuses_uneven_seeds_and_says_per_fold_counts_and_what_to_do():
    refs = ["a", "b", "c"] * 4
    one_seed = [fake_fold(0, refs, refs), fake_fold(1, refs, refs)]
    uneven = [fake_fold(0, refs, refs), fake_fold(0, refs, refs), fake_fold(1, refs, refs)]  # 2 seeds, then 1
    with pytest.raises(ValueError, match=r"second system .*fold 0: 2, fold 1: 1 runs.*folds every seed has"):
        paired_bootstrap_ua(one_seed, uneven, num_bootstrap=10)
    # on the folds every seed has, the same runs compare
    out = paired_bootstrap_ua(one_seed[:1], uneven[:2], num_bootstrap=10)
    assert out.seeds == [1, 2] and out.ua_difference == 0


def test_speaker_bootstrap_respects_that_clips_of_one_speaker_are_not_independent():
    # b beats a on every clip of one speaker of three and ties elsewhere: resampling clips makes that look sure,
    # resampling speakers shows that it rests on one speaker
    refs = ["a", "b", "c"] * 30
    speakers = [f"s{i // 30}" for i in range(90)]
    a_pred = [r if s != "s0" else "x" for r, s in zip(refs, speakers)]
    a, b = [fake_fold(0, refs, a_pred, speakers)], [fake_fold(0, refs, refs, speakers)]
    by_clip = paired_bootstrap_ua(a, b, num_bootstrap=2000, resample="clips")
    by_speaker = paired_bootstrap_ua(a, b, num_bootstrap=2000, resample="speakers")
    assert by_clip.ua_difference == by_speaker.ua_difference == pytest.approx(1 / 3)
    assert by_clip.ci95_low > 0.15  # clips: a confident win
    assert by_speaker.ci95_low == 0 and by_speaker.num_units == 3 and by_speaker.resample == "speakers"
    with pytest.raises(ValueError, match="resample 'actors' is not one of speakers, clips"):
        paired_bootstrap_ua(a, b, resample="actors")


def test_one_test_speaker_per_fold_is_resampled_across_folds_not_within():
    # EYASE / EMOVO folds test one speaker each: within a fold the only draw is that speaker (zero width)
    refs = ["a", "b"] * 10
    wrong = ["b", "a"] * 10
    a = [fake_fold(k, refs, refs if k else wrong, [f"spk{k}"] * 20) for k in range(3)]
    b = [fake_fold(k, refs, wrong if k == 2 else refs, [f"spk{k}"] * 20) for k in range(3)]
    result = paired_bootstrap_ua(a, b, num_bootstrap=500)
    assert result.strata == "pooled over folds" and result.num_units == 3
    assert result.ci95_low < result.ua_difference < result.ci95_high  # b wins one speaker, loses one
    two = [fake_fold(0, refs, refs, ["s1", "s2"] * 10)]
    assert paired_bootstrap_ua(two, two, num_bootstrap=50).strata == "within folds"


def test_bootstrap_averages_each_systems_seeds_on_every_resample():
    # 2 seeds against 3 on two folds: the point estimate is the difference of the seed-averaged pooled UAs, and
    # every resample scores each seed on the same clips
    rng = np.random.default_rng(0)
    labels = np.array(["a", "b", "c", "d"])
    refs = {k: labels[rng.integers(0, 4, 48)].tolist() for k in (0, 1)}
    spk = [f"s{i // 12}" for i in range(48)]

    def noisy(k, p):
        return [r if rng.random() > p else str(rng.choice(labels)) for r in refs[k]]

    a = [fake_fold(k, refs[k], noisy(k, 0.6), spk) for k in (0, 1) for _ in range(2)]
    b = [fake_fold(k, refs[k], noisy(k, 0.3), spk) for k in (0, 1) for _ in range(3)]
    got = paired_bootstrap_ua(a, b, num_bootstrap=300)

    def pooled_ua(runs, seed):  # seed-th run of each fold, pooled over folds
        lines = [x for k in (0, 1) for x in [r for r in runs if r.fold == k][seed].predictions]
        pred, ref = [x["prediction"] for x in lines], [x["reference"] for x in lines]
        return unweighted_average_recall(np.array(pred), np.array(ref))

    expected = np.mean([pooled_ua(b, s) for s in range(3)]) - np.mean([pooled_ua(a, s) for s in range(2)])
    assert got.ua_difference == pytest.approx(expected) and got.seeds == [2, 3]
    assert got.ci95_low < expected < got.ci95_high and got.num_units == 8


def test_best_system_is_ranked_on_the_folds_every_system_has():
    # "two" has only folds 0-1, where "six" is better; "six" looks better on its own six folds only because its
    # other folds have easier validation sides: the ranking must use folds 0-1
    def run(fold, val_ua, name):
        return FoldResult(fold, Path(f"{name}/fold_{fold}"), None, SimpleNamespace(validation_ua=val_ua), [])

    six = [run(k, ua, "six") for k, ua in enumerate([0.50, 0.52, 0.90, 0.90, 0.90, 0.90])]
    two = [run(0, 0.60, "two"), run(1, 0.58, "two")]
    best = best_system({"six": six, "two": two})
    assert best.name == "two" and best.folds == [0, 1] and best.validation_ua == pytest.approx(0.59)
    assert best.by_system["six"] == pytest.approx(0.51) and best.run_dir == "two/fold_0"
    # no fold in common: each system's own mean decides
    best = best_system({"six": six, "other": [run(7, 0.7, "other")]})
    assert best.name == "six" and best.folds is None and best.run_dir == "six/fold_2"


def test_fold_dirs_needs_finished_runs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished run"):
        fold_dirs(tmp_path)


def test_fold_dirs_skips_the_upload_folder_a_dry_run_push_leaves_beside_a_fold(tmp_path):
    from ser_hf.folds import make_split
    from ser_hf.run import RunRecord

    split = make_split("ravdess", [f"Actor_{a:02d}" for a in range(1, 25)], "folds", 1)
    record = RunRecord(split=split, label_names=["neutral"], test={"wa": 0.5, "ua": 0.5, "macro_f1": 0.5})
    for name in ("fold_1", "fold_1.hub"):  # `ser-hf push RUN --dry-run` writes RUN.hub, a copy of the run's files
        (tmp_path / name).mkdir()
        record.save(tmp_path / name)
    assert fold_dirs(tmp_path) == {1: [tmp_path / "fold_1"]}


@pytest.mark.slow
def test_compare_report_from_run_directories(checkpoint, ravdess_dir, tmp_path):
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
    # fold 1 as if resumed from a checkpoint: its wall time covers part of the run, so it is left out of the time
    record = json.loads((cv / "fold_1" / "metrics.json").read_text())
    record["runtime"]["resumed_from_epoch"] = 1.0
    (cv / "fold_1" / "metrics.json").write_text(json.dumps(record, indent=2))
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
    fold0_wall = json.loads((cv / "fold_0" / "metrics.json").read_text())["runtime"]["train_wall_time_s"]
    assert cv_s["train_resumed_runs"] == 1 and cv_s["train_wall_time_s_per_run"]["mean"] == pytest.approx(fold0_wall)
    assert single_s["train_resumed_runs"] == 0
    md = (out / "report.md").read_text()
    assert "| single | 1 x 1 |" in md and "bootstrap 95 % CI" in md and (out / "ua_per_fold.png").exists()
    assert " s (1 resumed run left out) (cpu, " in md
    assert "test speakers within folds" in md and "EmoBox: Whisper-large-v3" in md  # resampling named; cited rows
    assert (cv / "fold_1" / "eval_ravdess_test" / "predictions.jsonl").exists()  # evaluated once, then collected
    assert report["best_system"]["name"] in ("single", "cv")  # by validation UA

    # a --seeds grid (seed_S/fold_K): per fold the mean over seeds, the spread over seeds, the README block
    grid = tmp_path / "grid"
    shutil.copytree(cv / "fold_0", grid / "seed_7" / "fold_0")
    shutil.copytree(single, grid / "seed_8" / "fold_0")
    assert {k: [d.parent.name for d in v] for k, v in fold_dirs(grid).items()} == {0: ["seed_7", "seed_8"]}
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_BEGIN}\nold numbers\n{README_END}\noutro\n")
    argv = ["compare", "--system", f"grid={grid}", "--system", f"cv={cv}", "--corpus", "ravdess"]
    argv += ["--data_dir", str(ravdess_dir), "--output_dir", str(tmp_path / "r3"), "--num_bootstrap", "50"]
    assert cli([*argv, "--cache_dir", str(cache), "--readme", str(readme)]) == 0
    grid_s = json.loads((tmp_path / "r3" / "report.json").read_text())["systems"][0]
    both = [cv_s["ua"]["per_fold"]["0"], single_s["ua"]["per_fold"]["0"]]
    assert grid_s["ua"]["per_fold"]["0"] == pytest.approx(np.mean(both))
    assert grid_s["ua"]["per_fold_std_over_seeds"]["0"] == pytest.approx(np.std(both, ddof=1))
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old numbers" not in text
    assert "| grid | 1 x 2 |" in text and (tmp_path / "r3" / "report.md").read_text().count("| grid | 1 x 2 |") == 1

    # a report folder is never replaced silently: neither an earlier report nor a user's own report.md
    before = (tmp_path / "r3" / "report.json").read_text()
    assert cli([*argv, "--cache_dir", str(cache)]) == 2
    assert (tmp_path / "r3" / "report.json").read_text() == before
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "report.md").write_text("my notes")
    (notes / "other.txt").write_text("keep")
    argv_notes = [a if a != str(tmp_path / "r3") else str(notes) for a in argv]
    assert cli([*argv_notes, "--cache_dir", str(cache)]) == 2
    assert (notes / "report.md").read_text() == "my notes" and not (notes / "report.json").exists()
    assert cli([*argv_notes, "--cache_dir", str(cache), "--overwrite_output_dir"]) == 0
    assert (notes / "report.json").exists() and (notes / "other.txt").read_text() == "keep"
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


def test_an_interval_over_one_test_speaker_is_not_printed_as_one():
    from ser_hf.reports.rows import interval_text

    assert interval_text(1, 0.1, 0.1) == "(no interval: one test speaker)"
    assert interval_text(6, -0.0141, 0.0857) == "[-0.014, +0.086]"


def test_a_system_kept_without_its_weights_is_reported_from_its_stored_evaluations(
    checkpoint, ravdess_dir, tmp_path, capsys
):
    single, cache = checkpoint
    base = ["--corpus", "ravdess", "--data_dir", str(ravdess_dir), "--cache_dir", str(cache), "--num_bootstrap", "50"]
    # a run without a stored evaluation cannot be kept: its record could never be scored again
    unscored = tmp_path / "unscored"
    shutil.copytree(single, unscored, ignore=shutil.ignore_patterns("eval_*"))
    assert cli(["keep-records", str(unscored), str(tmp_path / "nope")]) == 2
    assert "no stored evaluation" in capsys.readouterr().err and not (tmp_path / "nope").exists()

    assert cli(["compare", "--system", f"single={single}", *base, "--output_dir", str(tmp_path / "r1")]) == 0
    kept = tmp_path / "kept"
    assert cli(["keep-records", str(single), str(kept)]) == 0
    assert "1 runs of" in capsys.readouterr().out
    assert not list(kept.glob("*.safetensors")) and (kept / "eval_ravdess_test" / "predictions.jsonl").is_file()
    assert sorted(p.name for p in kept.iterdir() if p.is_file()) == [
        "config.json",
        "metrics.json",
        "preprocessor_config.json",
        "split.json",
    ]
    # the copy reports exactly what the run does, paired clip by clip with it
    argv = ["compare", "--system", f"run={single}", "--system", f"kept={kept}", *base]
    assert cli([*argv, "--output_dir", str(tmp_path / "r2")]) == 0
    report = json.loads((tmp_path / "r2" / "report.json").read_text())
    run_s, kept_s = report["systems"]
    assert kept_s["ua"]["per_fold"] == run_s["ua"]["per_fold"] and kept_s["parameters"] == run_s["parameters"]
    assert report["paired"]["kept"]["ua_difference_per_fold"] == [0.0]

    # an existing folder is never replaced
    before = sorted(p.name for p in kept.rglob("*"))
    assert cli(["keep-records", str(single), str(kept)]) == 2
    assert "already exists" in capsys.readouterr().err and sorted(p.name for p in kept.rglob("*")) == before
    # a copy whose stored evaluation is gone says so, rather than trying to load weights it does not have
    shutil.rmtree(kept / "eval_ravdess_test")
    assert cli(["compare", "--system", f"kept={kept}", *base, "--output_dir", str(tmp_path / "r3")]) == 2
    err = capsys.readouterr().err
    assert "no weights" in err and "eval_ravdess_test" in err and not (tmp_path / "r3").exists()


def test_keep_records_copies_every_fold_and_seed_of_a_grid_without_weights_or_checkpoints(tmp_path):
    from ser_hf.grid import copy_records

    grid = tmp_path / "grid"
    for seed in (1, 2):
        for k in (0, 1):
            run = grid / f"seed_{seed}" / f"fold_{k}"
            (run / "eval_ravdess_test").mkdir(parents=True)
            (run / "eval_ravdess_test" / "predictions.jsonl").write_text("{}\n")
            (run / "eval_ravdess_test" / "confusion_matrix.png").write_text("plot")
            (run / "checkpoint-10").mkdir()
            (run / "checkpoint-10" / "model.safetensors").write_text("w")
            for name in ("metrics.json", "split.json", "config.json", "model.safetensors", "training_args.bin"):
                (run / name).write_text("{}")
        (grid / f"seed_{seed}" / "cv_results.json").write_text("{}")
    (grid / "seeds_results.json").write_text("{}")
    runs = copy_records(grid, tmp_path / "kept")
    assert len(runs) == 4 and all(r.is_dir() for r in runs)
    kept = sorted(str(p.relative_to(tmp_path / "kept")) for p in (tmp_path / "kept").rglob("*") if p.is_file())
    assert kept == sorted(
        ["seeds_results.json", "seed_1/cv_results.json", "seed_2/cv_results.json"]
        + [
            f"seed_{s}/fold_{k}/{name}"
            for s in (1, 2)
            for k in (0, 1)
            for name in ("config.json", "metrics.json", "split.json", "eval_ravdess_test/predictions.jsonl")
        ]
    )
    assert not list(tmp_path.glob("kept.tmp*"))  # written aside, then renamed

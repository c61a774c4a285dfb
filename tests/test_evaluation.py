"""ser-hf evaluate: in-corpus folds, the leakage guard, cross-corpus scoring on shared labels."""

import json
from pathlib import Path

import numpy as np
import pytest

from ser_hf.cli import main as cli
from ser_hf.evaluation import evaluate_checkpoint, group_ua
from ser_hf.folds import LeakageError
from ser_hf.reports.evaluation_report import EvaluationReport
from ser_hf.training import main as train

from .conftest import TINY_MELCNN, quick_run_args
from .test_folder import clip

ROOT = Path(__file__).resolve().parents[1]


def test_group_ua_hand_computed():
    pred = np.array([0, 1, 1, 1, 0, 0])
    ref = np.array([0, 1, 0, 1, 0, 1])
    out = group_ua(pred, ref, ["a", "a", "a", "b", "b", "b"])
    assert out["a"] == {"ua": pytest.approx((0.5 + 1.0) / 2), "clips": 3}  # class 0: 1 of 2, class 1: 1 of 1
    assert out["b"] == {"ua": pytest.approx((1.0 + 0.5) / 2), "clips": 3}


def test_own_test_side_reproduces_the_training_report(checkpoint, ravdess_dir, tmp_path):
    run, cache = checkpoint
    report = evaluate_checkpoint(str(run), "ravdess", str(ravdess_dir), cache_dir=str(cache), output_dir=tmp_path / "e")
    trained = json.loads((run / "metrics.json").read_text())
    assert report.scope == "test" and report.num_clips == 240
    assert report.ua == pytest.approx(trained["ua"]) and report.wa == pytest.approx(trained["wa"])
    assert sorted(report.per_speaker) == ["Actor_01", "Actor_02", "Actor_03", "Actor_04"]
    assert sorted(report.per_gender) == ["female", "male"]
    assert report.leakage == {"checked": True, "seen_speakers": []}
    assert report.preprocessing["trim_db"] == 30  # the checkpoint's own feature extractor trims
    assert (tmp_path / "e" / "confusion_matrix.png").exists()
    lines = (tmp_path / "e" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 240 and set(json.loads(lines[0])) == {
        "id",
        "speaker",
        "reference",
        "prediction",
        "probabilities",
    }
    assert report.inference["rtf"] > 0
    with pytest.raises(FileExistsError, match="already holds an evaluation report"):
        evaluate_checkpoint(str(run), "ravdess", str(ravdess_dir), cache_dir=str(cache), output_dir=tmp_path / "e")


def test_leakage_guard(checkpoint, ravdess_dir, tmp_path, capsys):
    run, cache = checkpoint
    with pytest.raises(LeakageError, match=r"trained / validated on speakers \['Actor_05', 'Actor_06', 'Actor_07'"):
        evaluate_checkpoint(str(run), "ravdess", str(ravdess_dir), fold=1, cache_dir=str(cache))
    report = evaluate_checkpoint(
        str(run),
        "ravdess",
        str(ravdess_dir),
        fold=1,
        allow_seen_speakers=True,
        cache_dir=str(cache),
        output_dir=tmp_path / "seen",
    )
    assert report.leakage["seen_speakers"] == ["Actor_05", "Actor_06", "Actor_07", "Actor_08"]
    assert json.loads((tmp_path / "seen" / "evaluation.json").read_text())["leakage"]["seen_speakers"]
    rc = cli(
        [
            "evaluate",
            str(run),
            "--corpus",
            "ravdess",
            "--data_dir",
            str(ravdess_dir),
            "--split",
            "all",
            "--cache_dir",
            str(cache),
        ]
    )
    assert rc == 2 and "--allow_seen_speakers" in capsys.readouterr().err


def test_cross_corpus_on_shared_labels_through_the_folder_loader(checkpoint, tmp_path, capsys):
    run, cache = checkpoint
    root = tmp_path / "other"
    rows = []
    for s in ("x1", "x2"):
        for i, lab in enumerate(("ang", "neu", "amused", "ang")):
            clip(root / f"{s}_{i}.wav", seconds=0.4, sr=44100)
            rows.append(f"{s}_{i}.wav,{lab},{s}")
    (root / "metadata.csv").write_text("file_name,label,speaker\n" + "\n".join(rows) + "\n")
    rc = cli(
        [
            "evaluate",
            str(run),
            "--corpus",
            "folder",
            "--data_dir",
            str(root),
            "--cache_dir",
            str(cache),
            "--output_dir",
            str(tmp_path / "x"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    report = EvaluationReport.load(tmp_path / "x")
    assert report.scope == "all" and report.num_clips == 6 and report.clips_dropped_for_labels == 2
    assert report.shared_labels == ["neutral", "angry"]
    assert report.dropped_corpus_labels == ["amused"]
    assert report.dropped_model_labels == ["calm", "happy", "sad", "fearful", "disgust", "surprised"]
    assert np.array(report.confusion_matrix).shape == (2, 2) and np.sum(report.confusion_matrix) == 6
    assert report.leakage["checked"] is False  # another corpus: speakers cannot be compared
    assert "dropped labels: model ['calm'" in out and "corpus ['amused']" in out

    # an alias folds amused into happy: then happy is shared too
    report = evaluate_checkpoint(
        str(run),
        "folder",
        str(root),
        label_aliases={"amused": "happy"},
        cache_dir=str(cache),
        output_dir=tmp_path / "alias",
    )
    assert report.shared_labels == ["neutral", "happy", "angry"] and report.num_clips == 8

    # --labels keeps a subset of the shared labels; the default report folder names them
    argv = ["evaluate", str(run), "--corpus", "folder", "--data_dir", str(root), "--cache_dir", str(cache)]
    assert cli([*argv, "--label_alias", "amused=happy", "--labels", "angry", "Happiness"]) == 0
    report = EvaluationReport.load(run / "eval_folder_all_happy-angry")
    assert report.shared_labels == ["happy", "angry"] and report.num_clips == 6
    assert "neutral" in report.dropped_model_labels and report.dropped_corpus_labels == ["neu"]
    assert cli([*argv, "--labels", "angry", "calm", "--output_dir", str(tmp_path / "calm")]) == 2
    assert "labels ['calm'] are not among the labels the model and the corpus share" in capsys.readouterr().err

    # 'Angry' beside 'angry' in the metadata: refused with advice that works, and that advice merges them
    (root / "metadata.csv").write_text(
        "file_name,label,speaker\n" + "\n".join(rows).replace(",ang,", ",angry,") + "\nx1_3.wav,Angry,x9\n"
    )
    (root / "metadata.csv").write_text((root / "metadata.csv").read_text().replace("x1_3.wav,angry,x1\n", ""))
    argv = ["evaluate", str(run), "--corpus", "folder", "--data_dir", str(root), "--cache_dir", str(cache)]
    assert cli([*argv, "--output_dir", str(tmp_path / "case")]) == 2
    err = capsys.readouterr().err
    assert "differ only in case" in err and "--label_alias Angry=angry" in err and "--labels" not in err
    assert cli([*argv, "--output_dir", str(tmp_path / "case"), "--label_alias", "Angry=angry"]) == 0
    report = EvaluationReport.load(tmp_path / "case")
    assert report.shared_labels == ["neutral", "angry"] and report.num_clips == 6


def test_bad_choices(checkpoint, ravdess_dir, tmp_path):
    run, cache = checkpoint
    with pytest.raises(ValueError, match="--split 'dev' is not valid; choose one of test, all"):
        evaluate_checkpoint(str(run), "ravdess", str(ravdess_dir), split="dev")
    sub = tmp_path / "sub"
    clip(sub / "angry" / "1.wav")
    with pytest.raises(ValueError, match=r"share only the label \['angry'\].*would be scored correct"):
        evaluate_checkpoint(str(run), "folder", str(sub), cache_dir=str(cache))
    with pytest.raises(ValueError, match="--split test needs the checkpoint's split.json for corpus 'folder'"):
        evaluate_checkpoint(str(run), "folder", str(sub), split="test", cache_dir=str(cache))


@pytest.mark.slow
def test_train_and_evaluate_on_a_folder_corpus(tmp_path):
    root = tmp_path / "mine"
    rows = []
    for s in ("s1", "s2", "s3", "s4"):
        for i, lab in enumerate(("angry", "calm") * 3):
            clip(root / s / f"{i}.wav", seconds=0.3, sr=16000)
            rows.append(f"{s}/{i}.wav,{lab},{s}")
    (root / "meta.csv").write_text("path,label,speaker\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    metrics = train(
        quick_run_args(
            "ravdess_melcnn.yaml",
            root,
            tmp_path / "c",
            out,
            *"--corpus folder --metadata meta.csv --fold 0 --num_val_speakers 1 --max_steps 1".split(),
            *TINY_MELCNN,
        )
    )
    assert metrics["label_names"] == ["angry", "calm"] and metrics["split"]["corpus"] == "folder"
    assert len(metrics["split"]["test_speakers"]) == 1
    report = evaluate_checkpoint(str(out), "folder", str(root), metadata="meta.csv", cache_dir=str(tmp_path / "c"))
    assert report.scope == "test" and report.num_clips == 6
    with pytest.raises(LeakageError):
        evaluate_checkpoint(
            str(out), "folder", str(root), split="all", metadata="meta.csv", cache_dir=str(tmp_path / "c")
        )

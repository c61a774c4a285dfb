import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForAudioClassification, pipeline

import ser_hf  # noqa: F401
from ser_hf.specs import read_layered_yaml
from ser_hf.training import RunExistsError, main, parse_args, yaml_to_argv

from .conftest import TINY_MELCNN, quick_run_args

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "ravdess_melcnn.yaml"


def args(data_dir, cache_dir, out, *extra):
    return quick_run_args(CONFIG.name, data_dir, cache_dir, out, *TINY_MELCNN, *extra)


def test_yaml_then_command_line_overrides(tmp_path):
    model_args, data_args, training_args = parse_args(
        [str(CONFIG), "--data_dir", "x", "--fold", "3", "--learning_rate", "0.1", "--channels", "8", "16"]
    )
    assert data_args.fold == 3 and training_args.learning_rate == 0.1 and model_args.channels == [8, 16]
    assert training_args.num_train_epochs == read_layered_yaml(CONFIG, "x")["num_train_epochs"]  # from the recipe
    bad = tmp_path / "bad.yaml"
    bad.write_text("nested: {a: 1}\n")
    with pytest.raises(ValueError, match="bad.yaml: key 'nested' holds a mapping"):
        yaml_to_argv(bad)


def test_bad_flags_name_the_flag_and_choices():
    with pytest.raises(ValueError, match="--protocol 'random' is not valid; choose one of folds, loso, speakers"):
        parse_args([str(CONFIG), "--data_dir", "x", "--protocol", "random"])
    with pytest.raises(ValueError, match="--model 'svm' is not valid"):
        parse_args([str(CONFIG), "--data_dir", "x", "--model", "svm"])
    with pytest.raises(ValueError, match="--data_dir is required for corpus 'folder'"):
        parse_args([str(CONFIG), "--corpus", "folder"])  # RAVDESS / EmoV-DB are fetched on first use instead


@pytest.mark.slow
def test_one_fold_writes_a_reusable_run_and_refuses_to_overwrite(ravdess_dir, ravdess_cache, tmp_path):
    out = tmp_path / "run"
    metrics = main(args(ravdess_dir, ravdess_cache, out, "--fold", "2"))
    for name in (
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "split.json",
        "metrics.json",
        "confusion_matrix.png",
    ):
        assert (out / name).exists(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["ua"] == metrics["ua"] and len(saved["confusion_matrix"]) == 8
    assert sum(map(sum, saved["confusion_matrix"])) == 240  # 4 test actors x 60 clips
    assert saved["parameters"]["trainable"] == saved["parameters"]["total"] > 0
    assert saved["runtime"]["train_clips"] == 1080 and saved["runtime"]["epochs_run"] > 0  # for benchmarks/epoch_time
    split = json.loads((out / "split.json").read_text())
    assert split["test_speakers"] == ["Actor_09", "Actor_10", "Actor_11", "Actor_12"] and split["seed"] == 42

    model = AutoModelForAudioClassification.from_pretrained(out).eval()
    again = AutoModelForAudioClassification.from_pretrained(out).eval()
    x = torch.randn(2, 8000)
    with torch.no_grad():
        assert torch.equal(model(x).logits, again(x).logits)
    preds = pipeline("audio-classification", model=str(out))(np.zeros(8000, np.float32) + 0.01)
    assert preds[0]["label"] in ser_hf.corpora.ravdess.EMOTIONS and 0 <= preds[0]["score"] <= 1

    before = (out / "metrics.json").read_text()
    with pytest.raises(RunExistsError, match="already holds a finished run .*--overwrite_output_dir"):
        main(args(ravdess_dir, ravdess_cache, out, "--fold", "2"))
    assert (out / "metrics.json").read_text() == before  # nothing touched
    main(args(ravdess_dir, ravdess_cache, out, "--fold", "2", "--overwrite_output_dir", "true"))


@pytest.mark.slow
def test_all_folds_with_class_weights_write_mean_and_std(ravdess_dir, ravdess_cache, tmp_path):
    out = tmp_path / "cv"
    summary = main(
        args(
            ravdess_dir, ravdess_cache, out, "--all_folds", "true", "--class_weighted_loss", "true", "--max_steps", "1"
        )
    )
    assert summary["num_folds"] == 6
    saved = json.loads((out / "cv_results.json").read_text())
    assert saved["ua"]["mean"] == pytest.approx(np.mean(saved["ua"]["per_fold"]))
    assert saved["ua"]["std"] == pytest.approx(np.std(saved["ua"]["per_fold"], ddof=1))
    tested = [s for k in range(6) for s in json.loads((out / f"fold_{k}" / "split.json").read_text())["test_speakers"]]
    assert len(tested) == len(set(tested)) == 24


def test_cli_folds_and_usage(ravdess_dir, ravdess_cache, capsys):
    from ser_hf.cli import main as cli

    assert cli([]) == 2
    assert (
        cli(["folds", "ravdess", "--data_dir", str(ravdess_dir), "--fold", "5", "--cache_dir", str(ravdess_cache)]) == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["test_speakers"] == ["Actor_21", "Actor_22", "Actor_23", "Actor_24"]


@pytest.mark.slow
def test_resume_folds_keeps_finished_folds_and_redoes_the_rest(ravdess_dir, ravdess_cache, tmp_path):
    out = tmp_path / "cv"
    main(args(ravdess_dir, ravdess_cache, out / "fold_0", "--fold", "0", "--max_steps", "1"))
    kept = (out / "fold_0" / "metrics.json").read_text()
    (out / "fold_1" / "checkpoint-99").mkdir(parents=True)  # an interrupted fold's leftovers
    (out / "fold_1" / "checkpoint-99" / "trainer_state.json").write_text("{}")
    (out / "fold_1" / "notes.txt").write_text("mine")  # ... and a file ser_hf did not write
    with pytest.raises(RunExistsError):
        main(args(ravdess_dir, ravdess_cache, out, "--all_folds", "true", "--max_steps", "1"))
    resume = ["--all_folds", "true", "--max_steps", "1", "--resume_folds", "true"]
    with pytest.raises(RunExistsError, match=r"fold_1 holds files that ser_hf did not write \(notes.txt\)"):
        main(args(ravdess_dir, ravdess_cache, out, *resume))
    assert (out / "fold_1" / "notes.txt").read_text() == "mine"
    (out / "fold_1" / "notes.txt").unlink()
    summary = main(args(ravdess_dir, ravdess_cache, out, *resume))
    assert (out / "fold_0" / "metrics.json").read_text() == kept
    assert summary["ua"]["per_fold"][0] == json.loads(kept)["ua"]
    assert not (out / "fold_1" / "checkpoint-99").exists() and (out / "fold_1" / "metrics.json").exists()
    # a finished cross-validation resumes as itself (a long grid restarted after an interruption)
    again = main(args(ravdess_dir, ravdess_cache, out, *resume))
    assert again["ua"]["per_fold"] == summary["ua"]["per_fold"]
    assert (out / "fold_0" / "metrics.json").read_text() == kept
    with pytest.raises(ValueError, match="other settings"):  # ... of the same recipe only
        main(args(ravdess_dir, ravdess_cache, out, *resume, "--learning_rate", "0.5"))


@pytest.mark.slow
def test_resume_folds_refuses_a_fold_of_another_split(ravdess_dir, ravdess_cache, tmp_path):
    out = tmp_path / "cv"
    main(args(ravdess_dir, ravdess_cache, out / "fold_0", "--fold", "3", "--max_steps", "1"))
    with pytest.raises(ValueError, match="another split than fold 0"):
        main(args(ravdess_dir, ravdess_cache, out, "--all_folds", "true", "--resume_folds", "true"))


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_training_config_parses(config):
    multi = config.name.startswith("multicorpus")
    data_dir = ",".join(f"{c}=x" for c in ("ravdess", "emovo", "eyase", "urdu")) if multi else "x"
    model_args, data_args, training_args = parse_args([str(config), "--data_dir", data_dir])
    corpus = "ravdess,emovo,eyase,urdu" if multi else data_args.corpus
    assert data_args.corpus == corpus and corpus.split(",")[0] in config.name.replace("multicorpus", "ravdess")
    assert training_args.output_dir.startswith("runs/")
    assert model_args.model in ("mel_cnn", "pretrained")


@pytest.mark.slow
def test_seeds_run_one_fold_per_seed_and_report_mean_and_std(ravdess_dir, ravdess_cache, tmp_path):
    out = tmp_path / "seeds"
    summary = main(args(ravdess_dir, ravdess_cache, out, "--fold", "1", "--max_steps", "1", "--seeds", "1", "2"))
    for seed in (1, 2):
        record = json.loads((out / f"seed_{seed}" / "metrics.json").read_text())
        assert record["training"]["seed"] == seed
        assert summary["per_fold"][1]["ua"]["per_seed"][seed] == record["ua"]
    saved = json.loads((out / "seeds_results.json").read_text())
    uas = list(saved["per_fold"]["1"]["ua"]["per_seed"].values())
    assert saved["per_fold"]["1"]["ua"]["mean"] == pytest.approx(np.mean(uas))
    assert saved["per_fold"]["1"]["ua"]["std"] == pytest.approx(np.std(uas, ddof=1))
    assert saved["overall"]["ua"]["mean"] == pytest.approx(np.mean(uas))
    with pytest.raises(RunExistsError, match="seeds_results.json"):
        main(args(ravdess_dir, ravdess_cache, out, "--fold", "1", "--max_steps", "1", "--seeds", "1", "2"))


@pytest.mark.slow
def test_same_command_and_seed_give_the_same_model_and_scores(ravdess_dir, ravdess_cache, tmp_path):
    """Augmentation, crops, SpecAugment, length-grouped batches and the weight average all draw from the seed."""
    from safetensors.torch import load_file

    runs = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        out = tmp_path / name
        metrics = main(args(ravdess_dir, ravdess_cache, out, "--seed", str(seed), "--max_steps", "3"))
        runs[name] = (metrics, load_file(out / "model.safetensors"))
    (ma, wa), (mb, wb), (_, wc) = runs["a"], runs["b"], runs["c"]
    assert ma["confusion_matrix"] == mb["confusion_matrix"] and ma["ua"] == mb["ua"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa if wa[k].is_floating_point())


def test_a_job_trains_with_its_own_copy_of_the_parsed_arguments(tmp_path):
    from ser_hf.corpora import CorpusSelection
    from ser_hf.training.command import TrainingJob

    _, data_args, training_args = parse_args([str(CONFIG), "--data_dir", "x", "--output_dir", "o", "--seed", "7"])
    args = TrainingJob(43, Path("o/seed_43")).training_args(training_args)
    assert (args.seed, args.output_dir) == (43, "o/seed_43")
    assert (training_args.seed, training_args.output_dir) == (7, "o")  # the parsed flags stay as parsed
    assert data_args.selection == CorpusSelection(("ravdess",), {"ravdess": "x"})
    _, multi, _ = parse_args([str(CONFIG), "--corpus", "ravdess,urdu", "--data_dir", "urdu=u,ravdess=r"])
    assert multi.selection.multi and multi.selection.dirs == {"ravdess": "r", "urdu": "u"}

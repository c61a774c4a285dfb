"""No data loss, no silent garbage: overwrite protection, resuming, NaN guards, stale caches, flag checks."""

import json
import logging
import shutil

import numpy as np
import pytest
import soundfile as sf

from ser_hf import load_corpus
from ser_hf.audio import AudioError, load_audio, stream_audio
from ser_hf.training import NonFiniteGuard, RunExistsError, reuse_fold
from ser_hf.training import main as train

from .conftest import TINY_MELCNN, quick_run_args, write_ravdess_tree


def quick(data_dir, cache, out, *extra):
    return quick_run_args("ravdess_melcnn.yaml", data_dir, cache, out, *TINY_MELCNN, *extra)


def test_overwrite_never_deletes_the_corpus_or_foreign_files(ravdess_dir, ravdess_cache, tmp_path):
    corpus = tmp_path / "corpus"
    write_ravdess_tree(corpus, actors=range(1, 3))
    (corpus / "notes.txt").write_text("mine")
    before = sorted(p.relative_to(corpus) for p in corpus.rglob("*"))
    args = quick(corpus, tmp_path / "cache", corpus, "--overwrite_output_dir", "true", "--verify_counts", "false")
    with pytest.raises(RunExistsError, match="--data_dir .* lies inside --output_dir"):
        train(args)
    assert sorted(p.relative_to(corpus) for p in corpus.rglob("*")) == before
    # a folder that is not a run: named, kept
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("mine")
    with pytest.raises(RunExistsError, match=r"holds files that ser_hf did not write \(thesis.tex\)"):
        train(quick(ravdess_dir, ravdess_cache, other, "--overwrite_output_dir", "true"))
    assert (other / "thesis.tex").read_text() == "mine"


@pytest.mark.slow
def test_overwrite_replaces_a_run_and_resume_continues_from_the_last_checkpoint(
    ravdess_dir, ravdess_cache, tmp_path, caplog
):
    out = tmp_path / "run"
    train(quick(ravdess_dir, ravdess_cache, out))
    ckpt = max(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    # resuming a finished run is refused; a checkpoint inside the output dir is protected from overwriting
    with pytest.raises(ValueError, match="holds a finished run"):
        train(quick(ravdess_dir, ravdess_cache, out, "--resume_from_checkpoint", "true"))
    with pytest.raises(RunExistsError, match="--resume_from_checkpoint .* lies inside --output_dir"):
        train(
            quick(
                ravdess_dir, ravdess_cache, out, "--overwrite_output_dir", "true", "--resume_from_checkpoint", str(ckpt)
            )
        )
    # an interrupted run: no record yet, its last checkpoint carrying a marker in its state
    (out / "metrics.json").unlink()
    state = json.loads((ckpt / "trainer_state.json").read_text())
    step = state["global_step"]
    state["log_history"].append({"marker": "before-interruption", "step": step})
    (ckpt / "trainer_state.json").write_text(json.dumps(state))
    for name in ("model.safetensors", "split.json", "config.json"):
        (out / name).unlink()
    resumed = ["--resume_from_checkpoint", "true", "--max_steps", str(step + 2), "--save_total_limit", "5"]
    caplog.set_level(logging.INFO, logger="ser_hf")
    train(quick(ravdess_dir, ravdess_cache, out, *resumed))
    assert f"resuming from {ckpt}" in caplog.text
    last = json.loads((out / f"checkpoint-{step + 2}" / "trainer_state.json").read_text())
    assert last["global_step"] == step + 2
    assert {"marker": "before-interruption", "step": step} in last["log_history"]
    # the record says where it resumed, and its wall time covers the whole training (the card says so too)
    record = json.loads((out / "metrics.json").read_text())
    assert record["runtime"]["resumed_from_epoch"] == pytest.approx(state["epoch"]) and state["epoch"] > 0
    assert record["runtime"]["train_wall_time_s"] > record["runtime"]["resumed_wall_time_s"] > 0
    from ser_hf.hub import build_model_card

    card = str(build_model_card(out, "user/resumed"))
    assert f"resumed from a checkpoint of epoch {state['epoch']:g} (the time covers the whole training)" in card
    # and --overwrite_output_dir replaces a ser_hf run (only run files were there)
    train(quick(ravdess_dir, ravdess_cache, out, "--overwrite_output_dir", "true"))
    assert not (out / f"checkpoint-{step + 2}").exists() and (out / "metrics.json").exists()
    assert "resumed_from_epoch" not in json.loads((out / "metrics.json").read_text())["runtime"]  # trained in one go


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--num_train_epochs", "0", "--max_steps", "-1"], "--num_train_epochs 0.0 trains nothing"),
        (["--num_train_epochs", "-1", "--max_steps", "-1"], "--num_train_epochs -1.0 trains nothing"),
        (["--max_duration_s", "-1"], "--max_duration_s must be a positive number of seconds, got -1.0"),
        (["--learning_rate", "-0.1"], "--learning_rate must be positive, got -0.1"),
        (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be at least 1, got 0"),
        (["--sampling_rate", "0"], "--sampling_rate must be a positive number of Hz, got 0"),
        (["--trim_db", "-5"], "--trim_db must be a positive number of dB below the peak, got -5.0"),
        (["--fp16", "true"], "--fp16 true needs a CUDA GPU"),
    ],
)
def test_flags_that_would_train_garbage_are_refused(flags, message, ravdess_dir, ravdess_cache, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train(quick(ravdess_dir, ravdess_cache, out, *flags))
    assert not out.exists()


@pytest.mark.slow
def test_hub_token_is_never_written_into_the_run(ravdess_dir, ravdess_cache, tmp_path):
    out = tmp_path / "run"
    secret = "hf_doNotWriteMe0123456789"
    train(quick(ravdess_dir, ravdess_cache, out, "--hub_token", secret))
    leaked = [p for p in out.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaked == []
    assert any(out.rglob("training_args.bin"))  # the file that used to hold it is there, without it


def test_non_finite_audio_and_losses_are_stopped(tmp_path):
    bad = tmp_path / "nan.wav"
    wav = np.sin(np.arange(1600) / 5).astype(np.float32)
    wav[100] = np.nan
    sf.write(bad, wav, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: 1 NaN / infinite samples"):
        load_audio(bad)
    with pytest.raises(AudioError, match="NaN / infinite"):
        list(stream_audio(bad, 16000))

    class State:
        global_step = 7

    with pytest.raises(FloatingPointError, match="training loss became nan at step 7"):
        NonFiniteGuard().on_log(None, State(), None, logs={"loss": float("nan")})
    NonFiniteGuard().on_log(None, State(), None, logs={"loss": 0.5, "grad_norm": 1.0})


def test_truncated_wav_is_refused_by_timelines_as_by_clips(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, np.zeros(16000, dtype=np.float32), 16000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="cut.wav: truncated WAV"):
        load_audio(path)
    with pytest.raises(AudioError, match="cut.wav: truncated WAV"):
        list(stream_audio(path, 16000))


def test_adding_or_removing_actors_rebuilds_the_corpus(tmp_path):
    root = write_ravdess_tree(tmp_path / "r", actors=range(1, 3))
    cache = tmp_path / "cache"
    assert len(load_corpus("ravdess", root, cache_dir=cache, verify_counts=False)) == 120
    write_ravdess_tree(root, actors=[3])
    assert len(load_corpus("ravdess", root, cache_dir=cache, verify_counts=False)) == 180
    shutil.rmtree(root / "Actor_01")
    ds = load_corpus("ravdess", root, cache_dir=cache, verify_counts=False)
    assert sorted(set(ds["speaker"])) == ["Actor_02", "Actor_03"]


def test_resume_folds_refuses_folds_of_another_recipe(tmp_path):
    from ser_hf.folds import make_split

    split = make_split("ravdess", [f"Actor_{a:02d}" for a in range(1, 25)], "folds", 0)
    record = {"wa": 0.5, "ua": 0.5, "macro_f1": 0.5, "split": split.__dict__}  # a legacy record: no format_version
    record["training"] = {"learning_rate": 0.003, "num_train_epochs": 2}
    (tmp_path / "metrics.json").write_text(json.dumps(record))
    split.save(tmp_path / "split.json")
    assert reuse_fold(tmp_path, split, {"learning_rate": 0.003, "num_train_epochs": 2}).ua == 0.5
    with pytest.raises(ValueError, match=r"learning_rate: 0.003 there, 0.0001 now; num_train_epochs: 2 there, 1 now"):
        reuse_fold(tmp_path, split, {"learning_rate": 0.0001, "num_train_epochs": 1})
    # a local base model is the same folder however its path is spelled; another folder is another recipe
    (tmp_path / "models" / "enc").mkdir(parents=True)
    (tmp_path / "models" / "other").mkdir()
    record["model"] = {"family": "pretrained", "base_model": str(tmp_path / "models" / "enc")}
    (tmp_path / "metrics.json").write_text(json.dumps(record))
    relative = str(tmp_path / "models" / "other" / ".." / "enc")
    assert reuse_fold(tmp_path, split, {"base_model": relative, "num_train_epochs": 2}).ua == 0.5
    with pytest.raises(ValueError, match="base_model"):
        reuse_fold(tmp_path, split, {"base_model": str(tmp_path / "models" / "other")})


def test_every_bad_clip_of_a_corpus_is_reported_at_once(tmp_path):
    from ser_hf import CorpusError

    root = write_ravdess_tree(tmp_path / "r", actors=[4], seconds=0.1)
    bad = ["03-01-06-02-02-01-04", "03-01-07-01-01-01-04"]
    for stem in bad:
        (root / "Actor_04" / f"{stem}.wav").write_bytes(b"not audio" * 10)
    with pytest.raises(CorpusError, match="2 clip\\(s\\) cannot be used") as err:
        load_corpus("ravdess", root, cache_dir=tmp_path / "cache", verify_counts=False)
    assert all(stem in str(err.value) for stem in bad)


def test_decoding_reports_every_bad_clip(tmp_path):
    import datasets

    from ser_hf.data import decode_dataset

    good = tmp_path / "good.wav"
    sf.write(good, np.zeros(800, np.float32) + 0.1, 16000)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.full(800, np.nan, np.float32), 16000, subtype="FLOAT")
    ds = datasets.Dataset.from_dict({"audio": [str(good), str(nan), str(tmp_path / "gone.wav")]})
    with pytest.raises(AudioError, match="2 of 3 clips cannot be used") as err:
        decode_dataset(ds, 16000)
    assert "nan.wav: 800 NaN" in str(err.value) and "gone.wav: no such audio file" in str(err.value)


def test_predict_reports_bad_files_and_classifies_the_rest(tmp_path, capsys):

    from ser_hf.cli import main as cli

    from .conftest import save_tiny_melcnn

    save_tiny_melcnn(tmp_path / "m", ("LABEL_0", "LABEL_1"), channels=(4, 4, 4, 4))
    clips = tmp_path / "clips"
    clips.mkdir()
    sf.write(clips / "ok.wav", 0.1 * np.sin(np.arange(16000) / 5).astype(np.float32), 16000)
    sf.write(clips / "short.wav", 0.1 * np.sin(np.arange(800) / 5).astype(np.float32), 16000)  # 0.05 s: padded
    (clips / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    assert cli(["predict", str(tmp_path / "m"), str(clips), "--format", "csv"]) == 1
    out, err = capsys.readouterr()
    assert "ok.wav" in out and "short.wav" in out and "broken.wav" not in out
    assert "skipped: " in err and "broken.wav: cannot decode audio" in err and "1 of 3 files" in err


def test_bad_config_and_model_paths_give_one_line_errors(tmp_path, capsys):
    from ser_hf.cli import main as cli

    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("learning_rate: [0.1\nmodel: mel_cnn\n")
    assert cli(["train", str(bad_yaml), "--data_dir", str(tmp_path)]) == 2
    assert "bad.yaml: not valid YAML" in capsys.readouterr().err
    (tmp_path / "not_a_model").mkdir()
    sf.write(tmp_path / "a.wav", np.zeros(1600, np.float32) + 0.1, 16000)
    assert cli(["predict", str(tmp_path / "not_a_model"), str(tmp_path / "a.wav")]) == 2
    assert "not_a_model: a folder without config.json, so not a checkpoint" in capsys.readouterr().err

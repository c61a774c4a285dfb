"""Reliability, round two (issue 26): bad files named everywhere, exports that refuse broken clips, reports that
are never replaced."""

import json

import numpy as np
import pytest
import soundfile as sf

from ser_hf.audio import AudioError, load_audio, stream_audio
from ser_hf.export import export_dataset

from .test_eyase_emovo_urdu import write_eyase


def truncated_flac(path, seconds: float = 1.0):
    """A FLAC cut to its first 1000 bytes, as ``head -c 1000 x.flac > y.flac`` makes: the header still reads."""
    full = path.with_name("full_" + path.name)
    sf.write(full, 0.1 * np.random.default_rng(0).standard_normal(int(16000 * seconds)), 16000, format="FLAC")
    path.write_bytes(full.read_bytes()[:1000])
    full.unlink()
    return path


def test_a_truncated_flac_is_named_by_every_reader(tmp_path):
    bad = truncated_flac(tmp_path / "cut.flac")
    assert sf.info(bad).frames > 0  # the header alone looks fine
    with pytest.raises(AudioError, match=r"cut.flac: cannot decode audio after its header .*corrupt or truncated"):
        load_audio(bad)
    with pytest.raises(AudioError, match=r"cut.flac: cannot decode audio after its header"):
        list(stream_audio(bad, 16000))


def test_export_refuses_broken_clips_listing_every_one_and_writes_nothing(tmp_path):
    root = write_eyase(tmp_path / "eyase")
    nan = np.zeros(4000, np.float32)
    nan[100] = np.nan
    sf.write(root / "Male01" / "ml01_ang (1).wav", nan, 16000, subtype="FLOAT")
    (root / "Female03" / "fm03_sad (1).wav").unlink()
    truncated_flac(root / "Female03" / "fm03_sad (1).flac")
    from ser_hf import CorpusError
    from ser_hf.export import check_decodes

    for rate in (None, 16000):  # the corpus build already decodes every clip and names both
        out = tmp_path / f"export_{rate}"
        with pytest.raises(CorpusError) as err:
            export_dataset("eyase", root, out, sampling_rate=rate, cache_dir=tmp_path / "c", verify_counts=False)
        assert "ml01_ang (1).wav: 1 NaN / infinite samples" in str(err.value)
        assert "fm03_sad (1).flac: cannot decode audio after its header" in str(err.value)
        assert not out.exists()
    # and the export's own check, for clips that changed after a corpus was built
    paths = [str(root / "Male01" / "ml01_ang (1).wav"), str(root / "Female03" / "fm03_sad (1).flac")]
    with pytest.raises(AudioError, match=r"2 of 3 clips cannot be exported \(nothing was written\)"):
        check_decodes([*paths, str(root / "Male02" / "ml02_ang (1).wav")])


@pytest.mark.slow
def test_an_output_folder_has_one_writer_at_a_time(tmp_path, caplog):
    import json
    import socket
    import subprocess
    import sys

    from ser_hf.lock import OutputDirLockedError, lock_path, output_dir_lock
    from ser_hf.training import main as train

    from .conftest import TINY_MELCNN, quick_run_args

    out = tmp_path / "R"
    with output_dir_lock(out) as lock:  # a second writer, here the same process, is refused at once
        assert lock == lock_path(out) and json.loads(lock.read_text())["pid"] == __import__("os").getpid()
        with pytest.raises(OutputDirLockedError, match=r"R is being written by process \d+ on .* since"):
            with output_dir_lock(out):
                pass
    assert not lock_path(out).exists()

    root = write_eyase(tmp_path / "eyase")
    args = [*quick_run_args("eyase_melcnn.yaml", root, tmp_path / "c", out, *TINY_MELCNN), "--verify_counts", "false"]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = {"pid": sleeper.pid, "host": socket.gethostname(), "started": "2026-01-01 00:00:00"}
        lock_path(out).write_text(json.dumps(holder))
        with pytest.raises(OutputDirLockedError, match=f"being written by process {sleeper.pid}"):
            train(args)
        assert not out.exists()  # nothing was written
    finally:
        sleeper.kill()
        sleeper.wait()
    # the holder is gone (killed): its lock is stale, reported and taken over, and released after the run
    train(args)
    assert "stale lock of process" in caplog.text and (out / "metrics.json").exists()
    assert not lock_path(out).exists()
    # released when the run fails too
    with pytest.raises(ValueError):
        train([*args, "--fold", "99", "--output_dir", str(tmp_path / "R2")])
    assert not lock_path(tmp_path / "R2").exists()


def test_a_corpus_names_all_five_kinds_of_bad_clip_at_load(tmp_path):
    from ser_hf import CorpusError, load_corpus

    from .conftest import write_ravdess_tree

    root = write_ravdess_tree(tmp_path / "r", actors=[4], seconds=0.3) / "Actor_04"
    stems = [f"03-01-0{e}-01-01-01-04" for e in range(2, 7)]
    for stem in stems:
        (root / f"{stem}.wav").unlink()
    (root / f"{stems[0]}.wav").write_bytes(b"not audio" * 10)  # undecodable
    (root / f"{stems[1]}.wav").write_bytes(b"")  # empty file
    truncated_flac(root / f"{stems[2]}.flac")  # header fine, data cut
    nan = np.zeros(4800, np.float32)
    nan[7] = np.inf
    sf.write(root / f"{stems[3]}.wav", nan, 48000, subtype="FLOAT")  # infinite sample
    sf.write(root / f"{stems[4]}.wav", np.zeros((0, 1), np.float32), 48000)  # zero samples
    with pytest.raises(CorpusError, match=r"5 clip\(s\) cannot be used") as err:
        load_corpus("ravdess", root.parent, cache_dir=tmp_path / "cache", verify_counts=False)
    assert all(stem in str(err.value) for stem in stems)
    assert "cannot decode audio after its header" in str(err.value) and "NaN / infinite" in str(err.value)


@pytest.fixture
def tiny_model(tmp_path):
    from .conftest import save_tiny_melcnn

    save_tiny_melcnn(tmp_path / "m", ("LABEL_0", "LABEL_1"), channels=(4, 4, 4, 4))
    return tmp_path / "m"


@pytest.mark.parametrize("mode", [["--format", "table"], ["--format", "csv"], ["--format", "jsonl"], ["--timeline"]])
def test_predict_skips_bad_files_keeps_odd_names_and_same_names(tiny_model, tmp_path, capsys, mode):
    import os

    from ser_hf.cli import main as cli

    clips = tmp_path / "clips"
    tone = (0.1 * np.sin(np.arange(32000) / 5)).astype(np.float32)
    for sub in ("a", "b"):  # one file name in two folders
        (clips / sub).mkdir(parents=True)
        sf.write(clips / sub / "x.wav", tone, 16000)
    odd = os.fsdecode(bytes(clips) + b"/caf\xe9_\xff.wav")  # not valid UTF-8
    with open(odd, "wb") as f:
        sf.write(f, tone, 16000, format="WAV")
    truncated_flac(clips / "cut.flac")
    out_dir = tmp_path / "timelines"
    assert cli(["predict", str(tiny_model), str(clips), *mode, "--output_dir", str(out_dir)]) == 1
    out, err = capsys.readouterr()
    assert "cut.flac: cannot decode audio after its header" in err and "1 of 4 files could not be used" in err
    if mode == ["--format", "jsonl"]:
        out = "".join(json.loads(line)["path"] for line in out.splitlines())
    assert "caf\\xe9_\\xff.wav" in out  # the odd name is shown escaped, and its clip classified
    if mode == ["--timeline"]:
        names = sorted(p.name for p in out_dir.iterdir())
        assert names == ["a__x.timeline.csv", "b__x.timeline.csv", "caf\\xe9_\\xff.timeline.csv"]
        before = {p.name: p.stat().st_mtime_ns for p in out_dir.iterdir()}
        assert cli(["predict", str(tiny_model), str(clips), "--timeline", "--output_dir", str(out_dir)]) == 2
        assert "exist(s); choose another --output_dir" in capsys.readouterr().err
        assert {p.name: p.stat().st_mtime_ns for p in out_dir.iterdir()} == before  # nothing replaced
    else:
        assert out.count("x.wav") == 2


def test_every_argument_field_is_recipe_or_named_as_not(tmp_path):
    import dataclasses

    from ser_hf.training import NOT_RECIPE, DataArguments, ModelArguments, parse_args, recipe_of

    from .conftest import CONFIGS

    args = parse_args([str(CONFIGS / "eyase_melcnn.yaml"), "--data_dir", "x", "--output_dir", str(tmp_path / "o")])
    recipe = recipe_of(*args)
    for cls in (ModelArguments, DataArguments):
        for f in dataclasses.fields(cls):
            assert (f.name in recipe) != (f.name in NOT_RECIPE), f.name
    assert {"training.learning_rate", "training.seed", "training.optim", "spec_augment", "sampling_rate"} <= set(recipe)
    assert not any(k.startswith(("training.logging_", "training.output_dir", "training.report_to")) for k in recipe)
    other = parse_args([str(CONFIGS / "eyase_melcnn.yaml"), "--data_dir", "y", "--output_dir", str(tmp_path / "p")])
    assert recipe_of(*other) == recipe  # where the data and the run live is not the recipe


@pytest.mark.slow
def test_resume_folds_keeps_only_folds_of_the_whole_same_recipe(tmp_path):
    from ser_hf.training import main as train

    from .conftest import TINY_MELCNN, quick_run_args

    root = write_eyase(tmp_path / "eyase")
    grid = tmp_path / "grid"
    args = quick_run_args("eyase_melcnn.yaml", root, tmp_path / "c", grid, *TINY_MELCNN, "--verify_counts", "false")
    train([*args, "--all_folds", "true", "--max_steps", "1"])
    for extra, named in (
        (["--spec_augment", "false"], "spec_augment: True there, False now"),
        (["--sampling_rate", "22050"], "sampling_rate: 16000 there, 22050 now"),
        (["--max_eval_duration_s", "2"], "max_eval_duration_s: None there, 2.0 now"),
        (["--adam_beta2", "0.99"], "training.adam_beta2: 0.999 there, 0.99 now"),
    ):
        with pytest.raises(ValueError, match="fold_0/metrics.json: this finished fold was trained with other settings"):
            try:
                train([*args, "--all_folds", "true", "--max_steps", "1", "--resume_folds", "true", *extra])
            except ValueError as err:
                assert named in str(err)
                raise
    result = train([*args, "--all_folds", "true", "--max_steps", "1", "--resume_folds", "true"])  # same recipe: kept
    assert len(result["folds"]) == 6


@pytest.mark.slow
def test_a_seeds_grid_on_one_fold_resumes_and_errors_suggest_flags_that_exist(tmp_path, capsys):
    from ser_hf.cli import main as cli
    from ser_hf.training import RunExistsError
    from ser_hf.training import main as train

    from .conftest import TINY_MELCNN, quick_run_args

    root = write_eyase(tmp_path / "eyase")
    grid = tmp_path / "seeds"
    args = quick_run_args("eyase_melcnn.yaml", root, tmp_path / "c", grid, *TINY_MELCNN, "--verify_counts", "false")
    args += ["--max_steps", "1", "--fold", "2"]
    train([*args, "--seeds", "1"])  # seed 1 finished; then "interrupted": seed 2 left half-written
    (grid / "seed_2" / "checkpoint-99").mkdir(parents=True)
    first = (grid / "seed_1" / "model.safetensors").stat().st_mtime_ns
    summary = train([*args, "--seeds", "1", "2", "--resume_folds", "true"])
    assert summary["per_fold"][2]["ua"]["per_seed"].keys() == {1, 2}
    assert (grid / "seed_1" / "model.safetensors").stat().st_mtime_ns == first  # kept, not retrained
    assert (grid / "seed_2" / "metrics.json").exists() and not (grid / "seed_2" / "checkpoint-99").exists()

    # a plain re-run of an unfinished --all_folds grid suggests --resume_folds, which --all_folds accepts
    cv = tmp_path / "cv"
    (cv / "fold_0" / "checkpoint-1").mkdir(parents=True)
    cv_args = [*args[: args.index("--output_dir")], "--output_dir", str(cv), *args[args.index("--output_dir") + 2 :]]
    with pytest.raises(RunExistsError, match="resume it with --resume_folds true"):
        train([*cv_args, "--all_folds", "true"])
    # classic has no resume flag and a store_true --overwrite_output_dir: its message says so
    out = tmp_path / "classic"
    (out / "fold_0").mkdir(parents=True)
    assert cli(["classic", "--corpus", "eyase", "--data_dir", str(root), "--output_dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--resume" not in err and "pass --overwrite_output_dir to replace it" in err


def test_a_full_disk_leaves_no_export_that_looks_finished(tmp_path, monkeypatch):
    import errno

    import datasets

    root = write_eyase(tmp_path / "eyase")
    real = datasets.Dataset.to_parquet
    calls = []

    def fill_the_disk(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:  # the second shard: half written, then the disk is full
            open(path, "wb").write(b"PAR1")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(datasets.Dataset, "to_parquet", fill_the_disk)
    out = tmp_path / "x"
    with pytest.raises(OSError, match=r"writing the export .*x failed: .*No space left.*\(disk full: \d+ MiB free"):
        export_dataset("eyase", root, out, cache_dir=tmp_path / "c", verify_counts=False)
    assert not out.exists() and not list(tmp_path.glob(".x.partial-*"))
    monkeypatch.setattr(datasets.Dataset, "to_parquet", real)
    summary = export_dataset("eyase", root, out, cache_dir=tmp_path / "c", verify_counts=False)  # then it works
    assert summary["out"] == str(out) and (out / "README.md").exists() and summary["num_clips"] == 24


@pytest.mark.slow
def test_a_checkpoint_cut_short_is_never_resumed_from_and_a_failed_save_names_its_folder(tmp_path, monkeypatch, caplog):
    import torch

    from ser_hf.training import CHECKPOINT_COMPLETE, EMA_STATE, parse_args, resolve_resume_checkpoint
    from ser_hf.training import main as train

    from .conftest import TINY_MELCNN, quick_run_args

    root = write_eyase(tmp_path / "eyase")
    run = tmp_path / "run"
    args = quick_run_args("eyase_melcnn.yaml", root, tmp_path / "c", run, *TINY_MELCNN, "--verify_counts", "false")
    train([*args, "--save_total_limit", "3"])
    assert (run / "checkpoint-2" / CHECKPOINT_COMPLETE).exists() and (run / "checkpoint-2" / EMA_STATE).exists()
    (run / "metrics.json").unlink()  # as if the run had stopped while writing checkpoint-2:
    (run / "checkpoint-2" / CHECKPOINT_COMPLETE).unlink()
    (run / "checkpoint-2" / EMA_STATE).write_bytes(b"PK\x03\x04 cut")
    _, data_args, training_args = parse_args([*args, "--resume_from_checkpoint", "true"])
    assert resolve_resume_checkpoint(training_args, data_args) == str(run / "checkpoint-1")
    assert "checkpoint-2 was not written completely" in caplog.text

    def full(*a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError, match=r"writing checkpoint .*run2/checkpoint-1 failed: .*unexpected pos .*MiB free"):
        train([*args, "--output_dir", str(tmp_path / "run2")])


def test_export_flags_are_checked_before_any_work(tmp_path, capsys, monkeypatch):
    from ser_hf.cli import main as cli

    root = write_eyase(tmp_path / "eyase")
    base = ["export-dataset", "eyase", "--data_dir", str(root), "--cache_dir", str(tmp_path / "c")]
    assert cli([*base, "--to", str(tmp_path / "x"), "--sampling_rate", "0", "--verify_counts", "false"]) == 2
    assert "--sampling_rate 0: expected a rate in Hz above 0" in capsys.readouterr().err
    assert cli([*base, "--to", str(root / "export"), "--verify_counts", "false"]) == 2
    assert "lies inside the corpus folder" in capsys.readouterr().err and not (root / "export").exists()
    monkeypatch.setenv("HF_TOKEN", "")
    monkeypatch.setattr("ser_hf.hub.get_token", lambda: None)
    for repo, message in (("no-slash", "is not a valid repo id"), ("u/ok", "no Hugging Face token")):
        argv = [*base, "--to", str(tmp_path / "y"), "--verify_counts", "false", "--repo-id", repo]
        assert cli(argv) == 2
        assert message in capsys.readouterr().err and not (tmp_path / "y").exists()  # refused before exporting
    assert cli([*base, "--to", str(tmp_path / "z")]) == 2  # a subset without the flag: the advice names the flag
    assert "--verify_counts false on the command line" in capsys.readouterr().err
    assert cli([*base, "--to", str(tmp_path / "z"), "--verify_counts", "false"]) == 0


@pytest.mark.slow
def test_compare_refuses_systems_of_another_corpus_and_warns_about_missing_folds(tmp_path, capsys):
    import shutil

    from ser_hf.cli import main as cli
    from ser_hf.training import main as train

    from .conftest import TINY_MELCNN, quick_run_args

    root = write_eyase(tmp_path / "eyase")
    cv = tmp_path / "cv"
    args = quick_run_args("eyase_melcnn.yaml", root, tmp_path / "c", cv, *TINY_MELCNN, "--verify_counts", "false")
    train([*args, "--all_folds", "true", "--max_steps", "1"])
    part = tmp_path / "part"
    for k in (0, 1):
        shutil.copytree(cv / f"fold_{k}", part / f"fold_{k}")
    argv = ["compare", "--system", f"all={cv}", "--system", f"two={part}", "--data_dir", str(root)]
    argv += ["--cache_dir", str(tmp_path / "c"), "--num_bootstrap", "20", "--verify_counts", "false"]
    assert cli([*argv, "--corpus", "emovo", "--output_dir", str(tmp_path / "r0")]) == 2
    assert "was trained on 'eyase', so it has no test side of --corpus 'emovo'" in capsys.readouterr().err
    assert cli([*argv, "--corpus", "eyase", "--output_dir", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "warning: the systems have different folds (all: [0, 1, 2, 3, 4, 5]; two: [0, 1])" in err
    md = (tmp_path / "r" / "report.md").read_text()
    assert md.count("**Warning**: the systems have different folds") == 1 and "6-fold mean" in md


def test_weak_spots_give_errors_that_name_the_flag_file_or_value(tmp_path, tiny_model, capsys, caplog):
    import shutil

    from ser_hf.cli import main as cli
    from ser_hf.download import safe_extract
    from ser_hf.inference import audio_files, load_classifier
    from ser_hf.training import parse_args

    from .conftest import CONFIGS

    # a weights file cut in half; a data folder given as a model
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    weights = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(OSError, match=r"broken: its weights file cannot be read"):
        load_classifier(str(broken))
    data = write_eyase(tmp_path / "eyase")
    with pytest.raises(OSError, match=r"eyase: a folder without config.json, so not a checkpoint"):
        load_classifier(str(data))
    # ser-hf folds on a missing folder, predict --batch_size 0: one error line each
    assert cli(["folds", "ravdess", "--data_dir", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    clip = data / "Male01" / "ml01_ang (1).wav"
    assert cli(["predict", str(tiny_model), str(clip), "--batch_size", "0"]) == 2
    assert "--batch_size 0: expected 1 or more" in capsys.readouterr().err
    assert audio_files(str(clip)) == [clip]  # one path as a string is one path, not its characters
    # abbreviated flags, on the command line and as YAML keys
    base = [str(CONFIGS / "eyase_melcnn.yaml"), "--data_dir", str(data)]
    with pytest.raises(ValueError, match=r"not used by the HfArgumentParser: \['--num_train_epoch'"):
        parse_args([*base, "--num_train_epoch", "1"])
    config = tmp_path / "c.yaml"
    config.write_text(f"base: {CONFIGS / 'recipes' / 'mel_cnn.yaml'}\ncorpus: eyase\nnum_train_epoch: 40\n")
    with pytest.raises(ValueError, match=r"key 'num_train_epoch' is not a flag .*did you mean 'num_train_epochs'"):
        parse_args([str(config), "--data_dir", str(data)])
    # a metadata row that climbs out of the data folder
    from ser_hf import CorpusError, load_corpus

    (tmp_path / "outside.wav").write_bytes(clip.read_bytes())
    mine = tmp_path / "mine"
    shutil.copytree(data / "Male01", mine)
    (mine / "metadata.csv").write_text("file_name,label,speaker\n../outside.wav,angry,s1\nml01_ang (1).wav,sad,s2\n")
    with pytest.raises(CorpusError, match=r"relative path '../outside.wav' leads outside the metadata's folder"):
        load_corpus("folder", mine, cache_dir=tmp_path / "cache")
    # silence and long recordings get a warning in clip mode; a missing archive is not called corrupt
    sf.write(tmp_path / "silence.wav", np.zeros(48000, np.float32), 16000)
    sf.write(tmp_path / "long.wav", 0.1 * np.ones(16000 * 61, np.float32), 16000)
    assert cli(["predict", str(tiny_model), str(tmp_path / "silence.wav"), str(tmp_path / "long.wav")]) == 0
    assert "silence.wav: near silence (RMS -inf dBFS)" in caplog.text and "long.wav lasts 61 s" in caplog.text
    assert "--timeline" in caplog.text
    with pytest.raises(FileNotFoundError, match="gone.zip: no such archive to extract"):
        safe_extract(tmp_path / "gone.zip", tmp_path / "x")


def test_a_cut_shard_and_an_offline_first_use_give_one_clear_error(tmp_path, monkeypatch):
    import ser_hf.corpora as registry
    from ser_hf import load_corpus
    from ser_hf.download import DownloadError
    from ser_hf.export import load_export

    root = write_eyase(tmp_path / "eyase")
    export_dataset("eyase", root, tmp_path / "x", cache_dir=tmp_path / "c", verify_counts=False)
    shard = sorted((tmp_path / "x" / "data").glob("*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"--dataset .*x --dataset_config fold_0: its data files cannot be read"):
        load_export(str(tmp_path / "x"), "fold_0", 16000, None, str(tmp_path / "hf"))

    def offline(*args, **kwargs):
        raise DownloadError("https://zenodo.org/api/records/1188976: cannot read the Zenodo record (no network)")

    monkeypatch.setattr(registry, "fetch_corpus", offline)
    with pytest.raises(DownloadError, match=r"no network\)\n\(no data_dir was given.*--data_dir DIR"):
        load_corpus("ravdess", cache_dir=tmp_path / "c2")

"""Reliability, round three (issue 50): the documented resume finishes, stored results are reused only for the
data they were computed on, the lock covers a grid's whole folder, labels without clips are refused, and every
spec error is one line. Each test failed on the main of before the issue."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import CONFIGS, TINY_MELCNN, quick_run_args
from .test_eyase_emovo_urdu import write_eyase, write_urdu
from .test_folder import csv_corpus

REPO = Path(__file__).resolve().parents[1]


def folder_corpus(root: Path, labels=("angry", "happy", "neutral", "sad"), speakers: int = 6) -> Path:
    """A folder corpus of ``speakers`` speakers, two clips of every label each (metadata.csv)."""
    rows = [
        f"s{s}_{label}_{k}.wav,{label},spk{s},{'female' if s % 2 else 'male'},1"
        for s in range(speakers)
        for label in labels
        for k in range(2)
    ]
    return csv_corpus(root, rows)


@pytest.mark.slow
def test_sigterm_then_the_documented_resume_finishes_with_true_epochs_and_wall_time(tmp_path):
    """A real training process, killed with SIGTERM once a checkpoint is written, then resumed as the README says:
    the resume trains to the end and writes the model and its record (before: it crashed reading the checkpoint
    it resumed from, which the Trainer had rotated away)."""
    from ser_hf.training import complete_checkpoints

    root = write_eyase(tmp_path / "eyase")
    run = tmp_path / "R"
    epochs = 30
    args = [
        sys.executable,
        str(REPO / "scripts" / "finetune.py"),
        *quick_run_args("eyase_melcnn.yaml", root, tmp_path / "c", run, *TINY_MELCNN, "--verify_counts", "false"),
        *("--max_steps", "-1", "--num_train_epochs", str(epochs), "--eval_strategy", "epoch"),
        *("--save_strategy", "epoch", "--save_total_limit", "1"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if any(run.glob("checkpoint-*/.ser_hf_complete")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before a checkpoint was seen: {proc.stderr.read()[-2000:]}"
        started = time.time()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGTERM and not (run / "metrics.json").exists()
    resumed_from = complete_checkpoints(run)[-1]  # what --resume_from_checkpoint true continues from
    before = json.loads((resumed_from / ".ser_hf_complete").read_text())["train_wall_time_s"]  # rotated away later

    resumed = subprocess.run([*args, "--resume_from_checkpoint", "true"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = json.loads((run / "metrics.json").read_text())
    runtime = record["runtime"]
    assert (run / "model.safetensors").exists()
    assert runtime["epochs_run"] == epochs and 1 <= runtime["resumed_from_epoch"] < epochs
    assert runtime["train_wall_time_s"] == pytest.approx(before + runtime["resumed_wall_time_s"])
    assert runtime["resumed_wall_time_s"] < time.time() - started
    assert runtime["machine"]["cpu"] and runtime["machine"]["versions"]["torch"]

    # a resume of the finished run says so and changes nothing
    stamp = (run / "metrics.json").stat().st_mtime_ns
    again = subprocess.run([*args, "--resume_from_checkpoint", "true"], env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "holds a finished run (metrics.json); nothing to resume" in again.stderr
    assert (run / "metrics.json").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_resume_folds_keeps_a_fold_only_for_the_same_labels_and_clips(tmp_path):
    from ser_hf.training import main as train

    data = folder_corpus(tmp_path / "data")
    grid = tmp_path / "grid"
    args = quick_run_args("ravdess_melcnn.yaml", data, tmp_path / "c", grid, *TINY_MELCNN, "--corpus", "folder")
    args += ["--max_steps", "1", "--all_folds", "true"]
    first = train(args)
    assert all((grid / f"fold_{k}" / "metrics.json").exists() for k in first["folds"])
    recorded = json.loads((grid / "fold_0" / "metrics.json").read_text())["data"]
    assert recorded["clips"] == 48 and recorded["labels"] == ["angry", "happy", "neutral", "sad"]

    # the same data copied elsewhere (new paths and times): the same clips, so the folds are kept
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    kept = train([*args, "--data_dir", str(copy), "--resume_folds", "true"])
    assert kept["ua"] == first["ua"]

    # without the 'sad' clips: other labels, refused by name
    no_sad = tmp_path / "no_sad"
    shutil.copytree(data, no_sad)
    meta = no_sad / "metadata.csv"
    meta.write_text("\n".join(line for line in meta.read_text().splitlines() if ",sad," not in line) + "\n")
    with pytest.raises(ValueError, match=r"fold_0/metrics.json: this finished fold was trained on the labels"):
        train([*args, "--data_dir", str(no_sad), "--resume_folds", "true"])

    # one clip relabelled, same label set: other clips, refused by name
    relabelled = tmp_path / "relabelled"
    shutil.copytree(data, relabelled)
    meta = relabelled / "metadata.csv"
    meta.write_text(meta.read_text().replace("s0_angry_0.wav,angry", "s0_angry_0.wav,sad"))
    with pytest.raises(ValueError, match=r"this finished fold was trained on other clips \(48 clips"):
        train([*args, "--data_dir", str(relabelled), "--resume_folds", "true"])


def _hold_lock(folder: Path) -> subprocess.Popen:
    """Another process that holds ``folder``'s lock until killed (prints once it does)."""
    code = (
        "import sys, time\nfrom ser_hf.lock import output_dir_lock\n"
        f"with output_dir_lock({str(folder)!r}):\n    print('held', flush=True)\n    time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_the_lock_covers_a_running_grid_s_whole_folder_and_says_how_to_clear_a_stale_one(tmp_path, caplog):
    from ser_hf.lock import OutputDirLockedError, lock_path, output_dir_lock
    from ser_hf.training import main as train

    root = write_eyase(tmp_path / "eyase")
    grid = tmp_path / "N"
    holder = _hold_lock(grid)  # a grid is running in N
    try:
        args = quick_run_args("eyase_melcnn.yaml", root, tmp_path / "c", grid / "fold_3", *TINY_MELCNN)
        with pytest.raises(
            OutputDirLockedError, match=rf"fold_3 lies inside {grid}, which is being written by process"
        ):
            train([*args, "--verify_counts", "false", "--fold", "3", "--seed", "7"])
        assert not (grid / "fold_3").exists()
    finally:
        holder.kill()
        holder.wait()
    inner = _hold_lock(tmp_path / "M" / "fold_3")  # a fold is running: the grid around it is refused
    try:
        with pytest.raises(OutputDirLockedError, match=r"M holds .*M/fold_3, which is being written"):
            with output_dir_lock(tmp_path / "M"):
                pass
    finally:
        inner.kill()
        inner.wait()

    # a lock of another host cannot be checked: the message names the file to remove
    other = tmp_path / "other"
    lock_path(other).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "2026-01-01 00:00:00"}))
    with pytest.raises(OutputDirLockedError, match=rf"on another machine.* remove {lock_path(other)}"):
        with output_dir_lock(other):
            pass
    # a live pid that is not the process that took the lock (the pid was reused): stale, taken over
    reused = tmp_path / "reused"
    mine = {"pid": os.getppid(), "host": socket.gethostname(), "started": "2026-01-01", "pid_start": "-1"}
    lock_path(reused).write_text(json.dumps(mine))
    with output_dir_lock(reused):
        assert json.loads(lock_path(reused).read_text())["pid"] == os.getpid()
    assert "stale lock of process" in caplog.text


def test_labels_without_clips_are_refused_for_several_corpora_and_for_a_folder(tmp_path):
    from ser_hf.corpora import CorpusError, load_corpus
    from ser_hf.multicorpus import load_corpora

    dirs = {"eyase": str(write_eyase(tmp_path / "eyase")), "urdu": str(write_urdu(tmp_path / "urdu"))}
    kwargs = {"cache_dir": tmp_path / "c", "verify_counts": False}
    with pytest.raises(ValueError, match=r"no clip of \['calm'\] in eyase, urdu; a class without training clips"):
        load_corpora(["eyase", "urdu"], dirs, ["angry", "happy", "neutral", "sad", "calm"], **kwargs)
    folder = folder_corpus(tmp_path / "folder", labels=("angry", "happy", "neutral"))
    with pytest.raises(CorpusError, match=r"no clip has the label\(s\) \['calm'\] of --labels"):
        load_corpus("folder", folder, cache_dir=tmp_path / "c", labels=["angry", "calm", "happy", "neutral"])
    # a label set that leaves a corpus without clips names it (before: "Column 'decode_error' doesn't exist")
    with pytest.raises(ValueError, match=r"--labels calm fearful leaves no clip of corpus eyase"):
        load_corpora(["eyase", "urdu"], dirs, ["calm", "fearful"], **kwargs)


@pytest.mark.slow
def test_a_fold_emptied_by_labels_names_the_dropped_clips_and_loso(tmp_path):
    from ser_hf.training import main as train

    eyase, urdu = write_eyase(tmp_path / "eyase"), write_urdu(tmp_path / "urdu")
    args = quick_run_args("eyase_melcnn.yaml", f"eyase={eyase},urdu={urdu}", tmp_path / "c", tmp_path / "o")
    with pytest.raises(ValueError, match=r"have no utterances in the data.*--protocol loso.*dropped the clips"):
        train(
            [*args, *TINY_MELCNN, "--corpus", "eyase,urdu", "--verify_counts", "false", "--labels", "angry", "joyful"]
        )


def test_data_dir_mistakes_are_named(tmp_path):
    from ser_hf.training import parse_args

    base = [str(CONFIGS / "eyase_melcnn.yaml"), "--output_dir", str(tmp_path / "o")]
    cases = {
        "eyase=A,urdu=B,eyase=C": "eyase is given twice",
        "eyase=,urdu=B": "eyase= has no folder; expected eyase=DIR",
    }
    for spec, named in cases.items():
        with pytest.raises(ValueError, match=named):
            parse_args([*base, "--corpus", "eyase,urdu", "--data_dir", spec])
    _, data_args, _ = parse_args([*base, "--corpus", "urdu", "--data_dir", f"urdu={tmp_path}"])
    assert data_args.data_dir == str(tmp_path)  # NAME=DIR of the one corpus
    with pytest.raises(ValueError, match="names corpus 'urdu', not --corpus eyase"):
        parse_args([*base, "--data_dir", f"urdu={tmp_path}"])
    # an export needs no --data_dir (before: "--data_dir is required")
    _, data_args, _ = parse_args([*base, "--dataset", str(tmp_path), "--dataset_config", "fold_0"])
    assert data_args.dataset == str(tmp_path)


SPEC_ERRORS = {
    "data_dir: {eyase: [unclosed\n": r"not valid YAML at line 2, column 1",
    "": r"the spec is empty",
    "hello\n": r"the spec is str 'hello'; expected a mapping",
    "data_dir: [a, b]\n": r"data_dir is \['a', 'b'\]; expected a mapping of corpus names",
    "data_dir: {eyase: E}\nloco: {a: R}\nloco_reference: x\n": r"loco_reference is 'x'; expected a mapping",
    "data_dir: {eyase: E}\nnotes: hello\n": r"notes is 'hello'; expected a list of strings",
    "data_dir: {eyase: E}\nin_corpus: [{name: f, multi: M}]\n": r"in_corpus\[0\] is \{'name': 'f', 'multi': 'M'\}",
    "data_dir: {eyase: E}\nextra: 1\n": r"unknown key\(s\) \['extra'\]",
    "data_dir: !!python/object/apply:os.system [echo hi]\n": r"not valid YAML at line 1",
    "loco: {a: R}\n": r"no data_dir",
    "data_dir: {nosuch: E}\nloco: {a: R}\nloco_reference: {r: R}\n": r"data_dir: unknown corpus 'nosuch'",
}


def test_a_left_out_corpus_without_data_dir_is_named_before_any_evaluation(tmp_path):
    from ser_hf.folds import SplitDefinition
    from ser_hf.reports.multicorpus import MulticorpusReportSpec, multicorpus_report
    from ser_hf.run import RunRecord

    def fake_run(path, corpus, **extra):
        split = SplitDefinition(corpus, extra.pop("protocol", "folds"), 0, ["a"], ["b"], ["c"], 42, extra=extra)
        test = {"wa": 0.5, "ua": 0.5, "macro_f1": 0.5}
        path.mkdir(parents=True)
        RunRecord(split=split, label_names=["angry", "sad"], test=test).save(path)
        return str(path)

    spec = MulticorpusReportSpec(
        data_dir={"ravdess": "R", "eyase": "E"},
        loco_reference={"ravdess_only": fake_run(tmp_path / "ref", "ravdess")},
        loco={"no_urdu": fake_run(tmp_path / "loco", "ravdess+eyase+urdu", protocol="loco", test_corpus="urdu")},
    )
    with pytest.raises(ValueError, match=r"loco 'no_urdu': its run .* left out 'urdu', which has no data_dir entry"):
        multicorpus_report(spec, str(tmp_path / "out"))


def test_predict_names_a_pipe_and_sends_a_long_recording_to_the_timeline(tmp_path, monkeypatch):
    import numpy as np
    import soundfile as sf

    from ser_hf import audio
    from ser_hf.audio import AudioError, check_clip_length, load_audio
    from ser_hf.inference import audio_files

    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    for call in (lambda: audio_files([fifo]), lambda: load_audio(fifo)):
        with pytest.raises(AudioError, match=r"pipe.wav: not a regular file \(a pipe, socket or device\)"):
            call()
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(8000 * 3, dtype=np.float32), 8000)
    check_clip_length(long)
    monkeypatch.setattr(audio, "MAX_CLIP_S", 2.0)
    with pytest.raises(AudioError, match=r"long.wav: lasts 3 s, more than clip mode's 2 s.*--timeline"):
        check_clip_length(long)


def test_a_subset_of_a_corpus_with_fixed_folds_points_at_loso(tmp_path):
    from ser_hf.export import export_dataset

    from .conftest import write_ravdess_tree

    root = write_ravdess_tree(tmp_path / "r", actors=range(1, 7), seconds=0.1)
    with pytest.raises(ValueError, match=r"this data holds 6 of them .*use --protocol loso"):
        export_dataset("ravdess", root, tmp_path / "x", cache_dir=tmp_path / "c", verify_counts=False)


@pytest.fixture
def eyase_run(tmp_path):
    """A 2-step mel-CNN run on fold 0 of a synthetic EYASE (two clips per speaker and emotion), and its folder."""
    from ser_hf.training import main as train

    root = write_eyase(tmp_path / "eyase", per_emotion=2)
    run = tmp_path / "run"
    train(quick_run_args("eyase_melcnn.yaml", root, tmp_path / "c", run, *TINY_MELCNN, "--verify_counts", "false"))
    return run, root


@pytest.mark.slow
def test_cross_corpus_reuses_a_stored_evaluation_only_for_the_clips_and_checkpoint_it_scored(tmp_path, eyase_run):
    from ser_hf.corpora import CorpusError
    from ser_hf.reports.crosscorpus import cross_corpus

    run, root = eyase_run
    kwargs = {"cache_dir": tmp_path / "c", "verify_counts": False}
    first = cross_corpus({"a": str(run)}, {"eyase": str(root)}, str(tmp_path / "r1"), **kwargs).to_dict()
    cell = first["systems"][0]["scores"]["eyase"]
    assert cell["num_clips"] == 8 and first["machine"]["cpu"]
    copy = tmp_path / "copy"  # the same clips elsewhere: reused
    shutil.copytree(root, copy)
    again = cross_corpus({"a": str(run)}, {"eyase": str(copy)}, str(tmp_path / "r2"), **kwargs).to_dict()
    assert again["systems"][0]["scores"]["eyase"] == cell
    # fewer clips (before: the stored evaluation of the other folder was reported), or another corpus's folder
    for path in copy.rglob("* (2).wav"):
        path.unlink()
    with pytest.raises(ValueError, match=r"eval_eyase_test: this stored evaluation scored other clips \(8 clips"):
        cross_corpus({"a": str(run)}, {"eyase": str(copy)}, str(tmp_path / "r3"), **kwargs)
    with pytest.raises(CorpusError):
        cross_corpus({"a": str(run)}, {"eyase": str(write_urdu(tmp_path / "urdu"))}, str(tmp_path / "r4"), **kwargs)
    # the checkpoint trained again in place: its stored evaluation is not reused
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes())
    with pytest.raises(ValueError, match=r"scored another checkpoint than the one now in"):
        cross_corpus({"a": str(run)}, {"eyase": str(root)}, str(tmp_path / "r5"), **kwargs)


@pytest.mark.slow
def test_runs_and_reports_name_their_machine_and_compare_warns_across_processors(tmp_path, eyase_run):
    from ser_hf.reports.compare import compare_systems

    run, root = eyase_run
    machine = json.loads((run / "metrics.json").read_text())["runtime"]["machine"]
    assert set(machine) == {"cpu", "gpu", "threads", "python", "versions"}
    assert set(machine["versions"]) >= {"torch", "transformers", "peft", "datasets"}
    other = tmp_path / "other"
    shutil.copytree(run, other)
    record = json.loads((other / "metrics.json").read_text())
    record["runtime"]["machine"]["cpu"] = "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"
    (other / "metrics.json").write_text(json.dumps(record))
    kwargs = {"cache_dir": tmp_path / "c", "verify_counts": False, "num_bootstrap": 50}
    report = compare_systems({"amd": str(run), "intel": str(other)}, "eyase", str(root), str(tmp_path / "r"), **kwargs)
    assert any("trained on different machines" in w and "Intel(R) Xeon" in w for w in report.warnings)
    text = (tmp_path / "r" / "report.md").read_text()
    assert f"Evaluated on: {machine['cpu']}" in text and "intel: Intel(R) Xeon" in text
    evaluation = json.loads((run / "eval_eyase_test" / "evaluation.json").read_text())
    assert evaluation["inference"]["machine"]["versions"]["torch"] and evaluation["data_fingerprint"]


TRAINING_SPEC_ERRORS = {
    "corpus: eyase\nnum_train_epochs: [1, 2\n": r"spec.yaml: not valid YAML at line 3, column 1: expected ','",
    "corpus: eyase\nlearning_rate: !!python/object/apply:os.system [echo hi]\n": r"not valid YAML at line 2, column 16",
    "corpus: eyase\nnum_train_epochs: abc\n": r"spec.yaml or the command line: argument --num_train_epochs.*: "
    r"invalid float value: 'abc'",
    "corpus: [eyase]\n": r"spec.yaml: corpus is \['eyase'\]; expected one value, not a list",
    "- a\n- b\n": r"spec.yaml: expected a mapping of argument names to values, got list",
}


SPEC_CASES = [("multicorpus-report", t) for t in SPEC_ERRORS] + [("train", t) for t in TRAINING_SPEC_ERRORS]


@pytest.mark.parametrize("command,text", SPEC_CASES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(SPEC_CASES)])
def test_every_spec_error_is_one_line_naming_the_key(tmp_path, capsys, command, text):
    from ser_hf.cli import main as cli

    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    out = tmp_path / "o"
    if command == "train":
        args, pattern, prefix = ["--output_dir", str(out), "--data_dir", str(tmp_path)], TRAINING_SPEC_ERRORS[text], ""
    else:
        args, pattern, prefix = ["--output_dir", str(out)], SPEC_ERRORS[text], f"{spec}: "
    assert cli([command, str(spec), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ser-hf {command}: error: {prefix}"), err
    assert __import__("re").search(pattern, err), err
    assert not out.exists()

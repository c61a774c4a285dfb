"""The bring-your-own folder corpus: metadata CSV / JSONL or class subfolders, clear errors, folds."""

import json
import warnings

import numpy as np
import pytest
import soundfile as sf

from ser_hf import CorpusError, load_corpus, make_split
from ser_hf.folds import num_folds


def clip(path, seconds=0.2, sr=22050, channels=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = 0.1 * np.sin(np.arange(int(seconds * sr)) / 7.0).astype(np.float32)
    sf.write(path, np.stack([wav] * channels, 1) if channels > 1 else wav, sr)
    return path


def csv_corpus(root, rows, header="file_name,label,speaker,gender,session"):
    for r in rows:
        clip(root / r.split(",")[0])
    (root / "metadata.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return root


ROWS = [
    f"clips/{s}_{i}.wav,{lab},{s},{g},{i % 2}"
    for s, g in (("spk1", "female"), ("spk2", "male"), ("spk3", "female"))
    for i, lab in enumerate(("ang", "neu", "ps", "ang"))
]


def test_csv_metadata_gives_the_common_schema(tmp_path):
    ds = load_corpus("folder", csv_corpus(tmp_path / "c", ROWS), cache_dir=tmp_path / "cache")
    assert len(ds) == 12
    assert ds.features["label"].names == ["ang", "neu", "ps"]
    assert set(ds.column_names) == {"id", "audio", "label", "speaker", "gender", "duration_s", "session"}
    row = ds[0]
    assert row["id"] == "clips/spk1_0" and row["speaker"] == "spk1" and row["gender"] == "female"
    assert row["duration_s"] == pytest.approx(0.2, abs=1e-3) and row["session"] == "0"


def test_jsonl_metadata_and_class_subfolders(tmp_path):
    root = tmp_path / "j"
    lines = [{"path": f"a/{i}.flac", "label": lab, "speaker": f"s{i % 2}"} for i, lab in enumerate("xyxy")]
    for line in lines:
        clip(root / line["path"])
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    ds = load_corpus("folder", root, cache_dir=tmp_path / "cache")
    assert ds["speaker"] == ["s0", "s1", "s0", "s1"] and ds.features["label"].names == ["x", "y"]

    sub = tmp_path / "sub"
    clip(sub / "angry" / "1.wav")
    clip(sub / "happy" / "deep" / "2.ogg")
    ds = load_corpus("folder", sub, cache_dir=tmp_path / "cache")
    assert ds.features["label"].names == ["angry", "happy"]
    assert ds["speaker"] == ["utt:angry/1", "utt:happy/deep/2"]  # unknown speakers: one pseudo-speaker per clip


def test_edits_to_the_metadata_rebuild_the_cache(tmp_path):
    root = csv_corpus(tmp_path / "c", ROWS)
    assert len(load_corpus("folder", root, cache_dir=tmp_path / "cache")) == 12
    (root / "metadata.csv").write_text("file_name,label,speaker\n" + ROWS[0].rsplit(",", 2)[0] + "\n")
    assert len(load_corpus("folder", root, cache_dir=tmp_path / "cache")) == 1


def test_bad_inputs_are_clear_errors(tmp_path):
    root = csv_corpus(tmp_path / "missing_file", ROWS)
    (root / "clips" / "spk2_1.wav").unlink()
    with pytest.raises(CorpusError, match=r"metadata.csv row 7: audio file .*spk2_1.wav does not exist"):
        load_corpus("folder", root, cache_dir=tmp_path / "cache")

    root = csv_corpus(tmp_path / "no_label_col", ["clips/a.wav,spk1"], header="file_name,speaker")
    with pytest.raises(CorpusError, match=r"missing column\(s\) label; found columns \['file_name', 'speaker'\]"):
        load_corpus("folder", root, cache_dir=tmp_path / "cache")

    root = csv_corpus(tmp_path / "no_path_col", ["clips/a.wav,ang"], header="audio,label")
    with pytest.raises(CorpusError, match="missing column.*path or file_name"):
        load_corpus("folder", root, cache_dir=tmp_path / "cache")

    root = csv_corpus(tmp_path / "unknown_label", ROWS)
    with pytest.raises(CorpusError, match=r"spk1_2.wav: label 'ps' is not one of the expected labels \['ang', 'neu'\]"):
        load_corpus("folder", root, cache_dir=tmp_path / "cache", labels=["ang", "neu"])

    root = csv_corpus(tmp_path / "empty_label", ["clips/a.wav,,spk1"], header="file_name,label,speaker")
    with pytest.raises(CorpusError, match="row 2: empty label for clips/a.wav"):
        load_corpus("folder", root, cache_dir=tmp_path / "cache")

    root = csv_corpus(tmp_path / "zero", ["clips/z.wav,ang,spk1"], header="file_name,label,speaker")
    sf.write(root / "clips" / "z.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(CorpusError, match="z.wav: zero-length clip"):
        load_corpus("folder", root, cache_dir=tmp_path / "cache")

    (tmp_path / "nothing").mkdir()
    with pytest.raises(CorpusError, match="no metadata file .* and no audio files"):
        load_corpus("folder", tmp_path / "nothing", cache_dir=tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="metadata file .*other.csv does not exist"):
        load_corpus("folder", tmp_path / "nothing", cache_dir=tmp_path / "cache", metadata="other.csv")


def test_speaker_independent_folds_and_a_warning_without_speakers(tmp_path):
    ds = load_corpus("folder", csv_corpus(tmp_path / "c", ROWS), cache_dir=tmp_path / "cache")
    assert num_folds("folder", ds["speaker"]) == 3
    for k in range(3):
        split = make_split("folder", ds["speaker"], "folds", k, num_val_speakers=1)
        assert len(split.test_speakers) == 1 and len(split.val_speakers) == 1 and len(split.train_speakers) == 1
    tested = [make_split("folder", ds["speaker"], "folds", k, num_val_speakers=1).test_speakers[0] for k in range(3)]
    assert sorted(tested) == ["spk1", "spk2", "spk3"]

    sub = tmp_path / "sub"
    for i in range(10):
        clip(sub / ("angry" if i % 2 else "calm") / f"{i}.wav")
    ds = load_corpus("folder", sub, cache_dir=tmp_path / "cache")
    with pytest.warns(UserWarning, match="NOT speaker-independent"):
        split = make_split("folder", ds["speaker"], "folds", 0)
    assert len(split.test_speakers) == 2 and len(split.val_speakers) == 2  # whole folds of 2 clips
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_split("folder", ["a", "a", "b", "c"], "folds", 0, num_val_speakers=1)  # known speakers: no warning


def test_label_variants_hidden_folders_empty_classes_and_loose_clips(tmp_path, caplog):
    root = tmp_path / "c"
    for label in ("angry", "happy"):
        for i in range(3):
            clip(root / label / f"{i}.wav")
    clip(root / ".ipynb_checkpoints" / "0-checkpoint.wav")  # hidden: never a class
    clip(root / "angry" / ".hidden" / "x.wav")
    (root / "sad").mkdir()  # empty class folder
    clip(root / "loose.wav")  # no class folder
    ds = load_corpus("folder", root, cache_dir=tmp_path / "cache")
    assert ds.features["label"].names == ["angry", "happy"] and len(ds) == 6
    assert "class folder sad holds no audio" in caplog.text and "loose.wav" in caplog.text
    clip(root / "Angry" / "0.wav")
    with pytest.raises(CorpusError, match=r"labels 'angry' \(3 clips\) and 'Angry' \(1 clips.*differ only in case"):
        load_corpus("folder", root, cache_dir=tmp_path / "cache")
    (root / "Angry" / "0.wav").rename(root / "Angry" / "moved.wav")
    (root / "Angry").rename(root / "angyr")
    with pytest.raises(CorpusError, match=r"'angry' \(3 clips\) and 'angyr' .* look like one label misspelt"):
        load_corpus("folder", root, cache_dir=tmp_path / "cache")
    # naming the classes turns the typo into an error about that clip
    with pytest.raises(CorpusError, match=r"label 'angyr' is not one of the expected labels"):
        load_corpus("folder", root, cache_dir=tmp_path / "cache", labels=["angry", "happy"])


def test_metadata_that_is_not_utf8_is_named(tmp_path):
    root = tmp_path / "c"
    clip(root / "a.wav")
    (root / "metadata.csv").write_bytes("file_name,label,speaker\na.wav,col\xe8re,s1\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"metadata.csv: not UTF-8 text \(byte 0xe8 .*iconv"):
        load_corpus("folder", root, cache_dir=tmp_path / "cache")

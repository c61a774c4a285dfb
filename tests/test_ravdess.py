import shutil
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from ser_hf import CorpusError, load_corpus
from ser_hf.corpora.ravdess import EMOTIONS, parse_ravdess_name

from .conftest import write_ravdess_tree


def test_complete_tree_loads_with_schema_and_counts(ravdess_dir, cache_dir):
    ds = load_corpus("ravdess", ravdess_dir, cache_dir=cache_dir)
    assert len(ds) == 1440
    assert len(set(ds["speaker"])) == 24
    assert ds.features["label"].names == EMOTIONS
    counts = Counter(ds.features["label"].int2str(v) for v in ds["label"])
    assert counts["neutral"] == 96 and all(counts[e] == 192 for e in EMOTIONS[1:])
    assert set(ds.column_names) >= {
        "id",
        "audio",
        "label",
        "speaker",
        "gender",
        "intensity",
        "statement",
        "repetition",
        "duration_s",
    }
    assert len(set(ds["id"])) == 1440
    row = ds[ds["id"].index("03-01-05-02-01-02-12")]
    assert row["speaker"] == "Actor_12" and row["gender"] == "female" and row["label"] == EMOTIONS.index("angry")
    assert row["intensity"] == "strong" and row["statement"] == "Kids are talking by the door"
    assert row["repetition"] == 2 and row["duration_s"] == pytest.approx(0.3, abs=1e-3)
    assert row["audio"].endswith("Actor_12/03-01-05-02-01-02-12.wav")


def test_flac_copy_with_same_stems_loads(tmp_path, cache_dir):
    write_ravdess_tree(tmp_path / "wav", actors=[3], seconds=0.2)
    for wav in (tmp_path / "wav").rglob("*.wav"):
        out = tmp_path / "flac" / wav.parent.name / (wav.stem + ".flac")
        out.parent.mkdir(parents=True, exist_ok=True)
        data, sr = sf.read(wav)
        sf.write(out, data, sr)
    ds = load_corpus("ravdess", tmp_path / "flac", cache_dir=cache_dir, verify_counts=False)
    assert len(ds) == 60 and set(ds["speaker"]) == {"Actor_03"}


@pytest.mark.parametrize(
    "name, message",
    [
        ("03-01-05-02-01-02.wav", "seven two-digit fields"),
        ("happy_actor1.wav", "not a RAVDESS file name"),
        ("01-01-05-02-01-02-12.wav", "modality is 01, expected 03"),
        ("03-01-09-02-01-02-12.wav", "emotion is 09"),
        ("03-01-05-03-01-02-12.wav", "intensity is 03"),
        ("03-01-05-02-01-02-25.wav", "actor is 25"),
        ("03-01-01-02-01-02-12.wav", "neutral .* no strong"),
    ],
)
def test_bad_names_raise_naming_the_file(name, message):
    with pytest.raises(CorpusError, match=message) as err:
        parse_ravdess_name(f"/data/Actor_12/{name}")
    assert name in str(err.value)


def test_bad_file_name_in_tree_raises(tmp_path, cache_dir):
    write_ravdess_tree(tmp_path, actors=[1], seconds=0.1)
    sf.write(tmp_path / "Actor_01" / "my_recording.wav", np.zeros(100), 16000)
    with pytest.raises(CorpusError, match="my_recording.wav"):
        load_corpus("ravdess", tmp_path, cache_dir=cache_dir, verify_counts=False)


def test_file_in_wrong_actor_folder_raises(tmp_path, cache_dir):
    write_ravdess_tree(tmp_path, actors=[1, 2], seconds=0.1)
    shutil.move(tmp_path / "Actor_02" / "03-01-03-01-01-01-02.wav", tmp_path / "Actor_01")
    with pytest.raises(CorpusError, match="actor 02 inside folder Actor_01"):
        load_corpus("ravdess", tmp_path, cache_dir=cache_dir, verify_counts=False)


def test_empty_directory_raises(tmp_path, cache_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no RAVDESS audio files"):
        load_corpus("ravdess", tmp_path / "empty", cache_dir=cache_dir)


def test_missing_directory_raises(tmp_path, cache_dir):
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        load_corpus("ravdess", tmp_path / "does_not_exist", cache_dir=cache_dir)


def test_incomplete_corpus_says_what_is_missing(tmp_path, cache_dir):
    write_ravdess_tree(tmp_path, actors=[a for a in range(1, 25) if a != 7], seconds=0.05)
    (tmp_path / "Actor_09" / "03-01-04-01-01-01-09.wav").unlink()
    with pytest.raises(CorpusError) as err:
        load_corpus("ravdess", tmp_path, cache_dir=cache_dir)
    msg = str(err.value)
    assert "1379 clips from 23 actors, expected 1440 from 24" in msg
    assert "Actor_07 missing" in msg and "Actor_09 has 59 clips, expected 60" in msg
    assert "verify_counts=False" in msg


def test_unknown_corpus_lists_valid_ones(tmp_path):
    valid = "anad, ased, emovdb, emovo, eyase, folder, nemo, ravdess, turevdb, urdu"
    with pytest.raises(ValueError, match=f"unknown corpus .iemocap.; valid corpora: {valid}"):
        load_corpus("iemocap", tmp_path)


def test_song_config_skips_speech_files(tmp_path, cache_dir):
    write_ravdess_tree(tmp_path, actors=[1], seconds=0.1)
    sf.write(tmp_path / "Actor_01" / "03-02-03-01-01-01-01.wav", np.full(4800, 0.1), 48000)
    ds = load_corpus("ravdess", tmp_path, config_name="song", cache_dir=cache_dir, verify_counts=False)
    assert ds["id"] == ["03-02-03-01-01-01-01"]


def test_corrupt_clip_in_tree_raises_naming_it(tmp_path, cache_dir):
    write_ravdess_tree(tmp_path, actors=[4], seconds=0.1)
    bad = tmp_path / "Actor_04" / "03-01-06-02-02-01-04.wav"
    bad.write_bytes(b"not a wav file at all" * 20)
    with pytest.raises(CorpusError, match="03-01-06-02-02-01-04.wav: cannot read audio header"):
        load_corpus("ravdess", tmp_path, cache_dir=cache_dir, verify_counts=False)


def test_zero_length_clip_in_tree_raises_naming_it(tmp_path, cache_dir):
    write_ravdess_tree(tmp_path, actors=[4], seconds=0.1)
    sf.write(tmp_path / "Actor_04" / "03-01-06-02-02-01-04.wav", np.zeros(0), 48000)
    with pytest.raises(CorpusError, match="03-01-06-02-02-01-04.wav: zero-length clip"):
        load_corpus("ravdess", tmp_path, cache_dir=cache_dir, verify_counts=False)

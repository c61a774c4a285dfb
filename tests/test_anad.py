"""ANAD builder: Kaggle layout (synthetic), labels CSV quirks, reported mismatches, video-independent folds."""

import logging

import numpy as np
import pytest
import soundfile as sf

from ser_hf import CorpusError, load_corpus, make_split
from ser_hf.corpora.anad import EMOTIONS, parse_anad_name
from ser_hf.folds import num_folds


def write_anad_tree(root, videos=8, turns=2, segments=3):
    """1-second 16-bit clips in 1sec_segmented_part1..3, ANAD.csv with the 'Emotion ' header quirk."""
    rows = []
    rng = np.random.default_rng(0)
    for v in range(1, videos + 1):
        part = root / f"1sec_segmented_part{1 + v % 3}"
        part.mkdir(parents=True, exist_ok=True)
        sep = "-" if v % 2 else "_"
        code = 1 + v % 3
        for t in range(1, turns + 1):
            for s in range(1, segments + 1):
                name = f"V{v}{sep}{t} ({s})"
                sf.write(part / f"{name}.wav", 0.1 * rng.standard_normal(16000), 16000, subtype="PCM_16")
                rows.append(f"{name}{'.wav' if s == 1 else ''},{EMOTIONS[code - 1]},{code}")
    (root / "ANAD.csv").write_text("name,Emotion ,Type\n" + "\n".join(rows) + "\n")
    return root


def test_kaggle_layout_loads_with_video_independent_folds(tmp_path, caplog):
    root = write_anad_tree(tmp_path / "anad")
    (root / "1sec_segmented_part1" / "V3-1 (1).wav").unlink()  # a label without its clip
    sf.write(root / "1sec_segmented_part2" / "V9_1 (1).wav", np.zeros(16000), 16000)  # a clip without label
    with caplog.at_level(logging.WARNING):
        ds = load_corpus("anad", root, cache_dir=tmp_path / "cache")
    assert "1 clips have no label" in caplog.text and "V9_1 (1)" in caplog.text
    assert "1 labels have no clip" in caplog.text and "V3-1 (1)" in caplog.text
    assert len(ds) == 8 * 2 * 3 - 1 and ds.features["label"].names == EMOTIONS
    row = ds.filter(lambda r: r["id"] == "V4_2 (3)")[0]
    assert row["speaker"] == "V4" and row["video"] == "V4" and row["turn"] == 2 and row["segment"] == 3
    assert EMOTIONS[row["label"]] == "surprised" and row["duration_s"] == pytest.approx(1.0)

    assert num_folds("anad", ds["speaker"]) == 5
    tested = []
    for k in range(5):
        split = make_split("anad", ds["speaker"], "folds", k, num_val_speakers=1)
        videos = [set(split.train_speakers), set(split.val_speakers), set(split.test_speakers)]
        assert not (videos[0] & videos[1] or videos[0] & videos[2] or videos[1] & videos[2])
        tested += split.test_speakers
    assert sorted(tested) == sorted({f"V{v}" for v in range(1, 9)})  # every video tested once


def test_label_file_errors(tmp_path):
    root = write_anad_tree(tmp_path / "a", videos=2)
    (root / "ANAD.csv").write_text("name,Emotion ,Type\nV1-1 (1),happy,4\n")
    with pytest.raises(CorpusError, match=r"ANAD.csv row 2: Type '4' is not 1 \(happy\), 2 \(surprised\) or 3"):
        load_corpus("anad", root, cache_dir=tmp_path / "c")
    (root / "ANAD.csv").write_text("name,Emotion ,Type\nV1-1 (1),angry,1\n")
    with pytest.raises(CorpusError, match=r"row 2: Type 1 \(happy\) disagrees with Emotion 'angry'"):
        load_corpus("anad", root, cache_dir=tmp_path / "c")
    (root / "ANAD.csv").write_text("file,Emotion \nV1-1 (1),angry\n")
    with pytest.raises(CorpusError, match=r"missing column\(s\) name, Type"):
        load_corpus("anad", root, cache_dir=tmp_path / "c")
    (root / "ANAD.csv").unlink()
    with pytest.raises(FileNotFoundError, match="ANAD label file not found"):
        load_corpus("anad", root, cache_dir=tmp_path / "c")
    assert parse_anad_name("V12-3 (45)") == ("V12", 3, 45)
    with pytest.raises(CorpusError, match="not an ANAD clip name"):
        parse_anad_name("clip_01")

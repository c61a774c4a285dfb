"""EmoV-DB builder: real layout (synthetic), the real sample clip when present, errors, LOSO folds."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_hf import CorpusError, load_corpus, make_split
from ser_hf.audio import load_audio
from ser_hf.corpora.emovdb import EMOTIONS, parse_emovdb_path
from ser_hf.folds import num_folds

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "emovdb-sample"
STYLES = {"Amused": "amused", "Angry": "anger", "Disgusted": "disgust", "Neutral": "neutral", "Sleepy": "sleepiness"}


def write_emovdb_tree(root: Path, per_style: int = 2) -> Path:
    """<speaker>_<Emotion>/<style>_1-28_NNNN.wav, 44.1 kHz mono 64-bit float, as the openslr archives."""
    rng = np.random.default_rng(0)
    for speaker in ("bea", "jenie", "josh", "sam"):
        for folder_emotion, style in STYLES.items():
            d = root / f"{speaker}_{folder_emotion}"
            d.mkdir(parents=True, exist_ok=True)
            for n in range(1, per_style + 1):
                wav = 0.1 * rng.standard_normal(4410)
                sf.write(d / f"{style}_1-28_{n:04d}.wav", wav, 44100, subtype="DOUBLE")
    return root


def test_synthetic_tree_loads_with_schema_and_loso_folds(tmp_path):
    root = write_emovdb_tree(tmp_path / "emovdb")
    ds = load_corpus("emovdb", root, cache_dir=tmp_path / "cache", verify_counts=False)
    assert len(ds) == 4 * 5 * 2 and ds.features["label"].names == EMOTIONS
    row = ds.filter(lambda r: r["id"] == "jenie_Sleepy/sleepiness_1-28_0002")[0]
    assert row["speaker"] == "jenie" and row["gender"] == "female" and EMOTIONS[row["label"]] == "sleepy"
    assert row["sentence_id"] == 2 and row["batch"] == "1-28" and row["duration_s"] == pytest.approx(0.1)
    assert num_folds("emovdb", ds["speaker"]) == 4
    tested = []
    for k in range(4):
        split = make_split("emovdb", ds["speaker"], "folds", k)
        sides = [set(split.train_speakers), set(split.val_speakers), set(split.test_speakers)]
        assert len(split.test_speakers) == 1 and len(split.val_speakers) == 1 and len(split.train_speakers) == 2
        assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
        tested += split.test_speakers
    assert sorted(tested) == ["bea", "jenie", "josh", "sam"]


def test_counts_and_layout_errors(tmp_path):
    root = write_emovdb_tree(tmp_path / "emovdb", per_style=1)
    with pytest.raises(CorpusError, match="bea has 5 clips, expected 1787.*verify_counts=False"):
        load_corpus("emovdb", root, cache_dir=tmp_path / "cache")
    with pytest.raises(CorpusError, match="file style 'anger' disagrees with folder emotion 'Amused'"):
        parse_emovdb_path(tmp_path / "bea_Amused" / "anger_1-28_0001.wav")
    with pytest.raises(CorpusError, match="speaker 'bob' is not one of bea, jenie, josh, sam"):
        parse_emovdb_path(tmp_path / "bob_Amused" / "amused_1-28_0001.wav")
    with pytest.raises(CorpusError, match=r"file name is not <style>_<a>-<b>_<NNNN>"):
        parse_emovdb_path(tmp_path / "bea_Amused" / "take1.wav")
    with pytest.raises(CorpusError, match="is not <speaker>_<Emotion>"):
        parse_emovdb_path(tmp_path / "misc" / "amused_1-28_0001.wav")


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/emovdb-sample not present")
def test_real_sample_clip(tmp_path):
    ds = load_corpus("emovdb", REAL, cache_dir=tmp_path / "cache", verify_counts=False, speakers=["bea"])
    (row,) = ds
    assert row["speaker"] == "bea" and EMOTIONS[row["label"]] == "amused" and row["sentence_id"] == 1
    assert sf.info(row["audio"]).samplerate == 44100 and sf.info(row["audio"]).subtype == "DOUBLE"
    assert row["duration_s"] == pytest.approx(4.385, abs=1e-3)
    wav = load_audio(row["audio"], 16000)
    assert wav.dtype == np.float32 and len(wav) == pytest.approx(row["duration_s"] * 16000, abs=2)


@pytest.mark.slow
def test_speaker_dependent_protocol_is_named_warned_and_used_by_training_and_evaluation(tmp_path):
    from ser_hf.evaluation import evaluate_checkpoint
    from ser_hf.folds import LeakageError
    from ser_hf.training import main as train

    from .conftest import TINY_MELCNN, quick_run_args

    root = write_emovdb_tree(tmp_path / "emovdb", per_style=4)
    ds = load_corpus("emovdb", root, cache_dir=tmp_path / "cache", verify_counts=False)
    with pytest.warns(UserWarning, match="NOT speaker-independent"):
        split = make_split("emovdb", ds["speaker"], "speaker_dependent", ids=ds["id"], labels=ds["label"], seed=1)
    utts = split.extra["utterances"]
    assert (len(utts["train"]), len(utts["validation"]), len(utts["test"])) == (64, 8, 8)
    assert set(utts["train"]) | set(utts["validation"]) | set(utts["test"]) == set(ds["id"])
    assert not set(utts["train"]) & set(utts["test"]) and split.train_speakers == ["bea", "jenie", "josh", "sam"]
    with pytest.raises(ValueError, match="needs the utterance ids"):
        make_split("emovdb", ds["speaker"], "speaker_dependent")
    assert make_split("emovdb", ds["speaker"]).protocol == "folds"  # the default stays speaker-independent

    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="NOT speaker-independent"):  # training says so too
        metrics = train(
            quick_run_args(
                "emovdb_melcnn.yaml",
                root,
                tmp_path / "cache",
                out,
                *"--protocol speaker_dependent --verify_counts false --max_steps 1".split(),
                *TINY_MELCNN,
            )
        )
    assert metrics["split"]["protocol"] == "speaker_dependent" and metrics["support"] and sum(metrics["support"]) == 8
    with pytest.raises(LeakageError):
        evaluate_checkpoint(str(out), "emovdb", str(root), cache_dir=str(tmp_path / "cache"), verify_counts=False)
    report = evaluate_checkpoint(
        str(out),
        "emovdb",
        str(root),
        allow_seen_speakers=True,
        cache_dir=str(tmp_path / "cache"),
        verify_counts=False,
        output_dir=tmp_path / "e",
    )
    assert report.num_clips == 8 and report.leakage["seen_speakers"] == ["bea", "jenie", "josh", "sam"]


def test_french_config_reads_the_non_english_speaker(tmp_path):
    root = write_emovdb_tree(tmp_path / "emovdb", per_style=1)
    d = root / "fr_Angry"
    d.mkdir()
    sf.write(d / "anger_1-28_0007.wav", np.zeros(4410), 44100, subtype="DOUBLE")
    fr = load_corpus("emovdb", root, "french", cache_dir=tmp_path / "cache")
    assert len(fr) == 1 and fr[0]["speaker"] == "fr" and fr[0]["gender"] == "male" and fr[0]["sentence_id"] == 7
    en = load_corpus("emovdb", root, cache_dir=tmp_path / "cache", verify_counts=False)
    assert "fr" not in set(en["speaker"]) and len(en) == 20

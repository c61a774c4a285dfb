"""EYASE, EMOVO and URDU builders on synthetic trees in their distributed layouts, their folds, EMOVO's channel
choice on a synthetic spaced-microphone pair, and the corpus facts cards and exports read."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_hf import CorpusError, load_corpus, make_split
from ser_hf.audio import AudioError, load_audio
from ser_hf.corpora import corpus_info, decode_channel, emovo, eyase, urdu
from ser_hf.data import decode_dataset
from ser_hf.folds import num_folds

SR = 16000


def clip(path: Path, seconds: float = 0.25, sr: int = SR, seed: int = 0, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = 0.1 * np.random.default_rng(seed).standard_normal((int(seconds * sr), channels))
    sf.write(path, wav, sr, subtype="PCM_16")


def write_eyase(root: Path, per_emotion: int = 1) -> Path:
    """Female01..03 / Male01..03 with 'fm01_ang (1).wav' names; Female02 keeps the fm01 prefix, as distributed."""
    n = 0
    for folder in eyase.SPEAKERS:
        prefix = "fm01" if folder == "Female02" else ("fm" if folder.startswith("F") else "ml") + folder[-2:]
        for code in eyase.CODES:
            for k in range(1, per_emotion + 1):
                clip(root / folder / f"{prefix}_{code} ({k}).wav", seed=(n := n + 1))
    return root


def write_emovo(root: Path, sentences=("b1", "n5")) -> Path:
    n = 0
    for actor in emovo.SPEAKERS:
        for code in emovo.CODES:
            for sent in sentences:
                clip(root / actor / f"{code}-{actor}-{sent}.wav", seed=(n := n + 1))
    return root


def write_urdu(root: Path) -> Path:
    """Two clips of every speaker token, in the emotion folder of the speaker's first emotion in the release."""
    first = {"A": ["SM1", "SM2", "SM3", "SM4"], "N": ["SM5", "SM20", "SM21", "SM22", "SF9"]}
    first["S"] = ["SM23", "SM24", "SM25", "SM26", "SM27", "SF10", "SF11"]
    letter = {s: e for e, spk in first.items() for s in spk}
    folders = {v: k for k, v in urdu.FOLDERS.items()}
    for n, speaker in enumerate(urdu.SPEAKERS):
        e = letter.get(speaker, "H")
        for k in (1, 2):
            clip(root / folders[e] / f"{speaker}_F{k}_{e}{n:02d}{k}.wav", seed=n * 2 + k)
    return root


@pytest.mark.parametrize(
    ("name", "writer", "labels", "speakers"),
    [
        ("eyase", write_eyase, ["angry", "happy", "neutral", "sad"], 6),
        ("emovo", write_emovo, ["neutral", "happy", "angry", "fearful", "sad", "disgust", "surprised"], 6),
        ("urdu", write_urdu, ["angry", "happy", "neutral", "sad"], 29),
    ],
)
def test_each_builder_reads_its_layout_into_the_schema(tmp_path, name, writer, labels, speakers):
    root = writer(tmp_path / name)
    ds = load_corpus(name, root, cache_dir=tmp_path / "cache", verify_counts=False)
    assert ds.features["label"].names == labels
    assert len(set(ds["speaker"])) == speakers and len(set(ds["id"])) == len(ds)
    assert set(ds["gender"]) == {"male", "female"}
    assert all(d == pytest.approx(0.25) for d in ds["duration_s"])
    with pytest.raises(CorpusError, match="Pass verify_counts=False"):  # a subset is not the documented corpus
        load_corpus(name, root, cache_dir=tmp_path / "cache2")


def test_eyase_folder_names_the_speaker_and_female02_keeps_its_fm01_prefix(tmp_path):
    ds = load_corpus("eyase", write_eyase(tmp_path / "e"), cache_dir=tmp_path / "c", verify_counts=False)
    row = ds.filter(lambda r: r["id"] == "Female02_hap_001")[0]
    assert row["speaker"] == "Female02" and row["gender"] == "female" and row["number"] == 1
    assert row["audio"].endswith("Female02/fm01_hap (1).wav") and ds.features["label"].names[row["label"]] == "happy"
    assert Counter(ds["speaker"]) == {s: 4 for s in eyase.SPEAKERS}


def test_emovo_and_urdu_rows_carry_their_name_fields(tmp_path):
    ds = load_corpus("emovo", write_emovo(tmp_path / "m"), cache_dir=tmp_path / "c", verify_counts=False)
    row = ds.filter(lambda r: r["id"] == "gio-m2-n5")[0]
    assert (row["speaker"], row["gender"], row["sentence"]) == ("m2", "male", "n5")
    assert ds.features["label"].names[row["label"]] == "happy"  # gio = joy
    ds = load_corpus("urdu", write_urdu(tmp_path / "u"), cache_dir=tmp_path / "c", verify_counts=False)
    row = ds.filter(lambda r: r["speaker"] == "SF9")[0]
    assert row["gender"] == "female" and ds.features["label"].names[row["label"]] == "neutral"
    assert row["file_number"] in (1, 2)


def test_every_bad_file_is_named_at_once(tmp_path):
    root = write_eyase(tmp_path / "e")
    clip(root / "Male01" / "fm02_ang (9).wav")  # female prefix in a male folder
    clip(root / "Female03" / "fm03_joy (1).wav")  # unknown emotion code
    (root / "Male02" / "ml02_sad (7).wav").write_bytes(b"RIFF" + bytes(10))  # unreadable header
    with pytest.raises(CorpusError) as err:
        load_corpus("eyase", root, cache_dir=tmp_path / "c", verify_counts=False)
    message = str(err.value)
    assert "fm02_ang (9).wav: file prefix 'fm' disagrees with the speaker folder Male01" in message
    assert "fm03_joy (1).wav: not an EYASE clip name" in message and "ml02_sad (7).wav" in message

    root = write_urdu(tmp_path / "u")
    clip(root / "Sad" / "SM1_F9_A099.wav")  # angry letter in the Sad folder
    clip(root / "Angry" / "SM1-F9-A098.wav")  # not the SGX_FYY_EZZ pattern
    with pytest.raises(CorpusError) as err:
        load_corpus("urdu", root, cache_dir=tmp_path / "c", verify_counts=False)
    assert "emotion letter A disagrees with the folder Sad" in str(err.value) and "SM1-F9-A098.wav" in str(err.value)

    root = write_emovo(tmp_path / "m")
    clip(root / "f1" / "rab-m1-b1.wav")  # actor m1 inside f1's folder
    clip(root / "f1" / "xxx-f1-b1.wav")
    with pytest.raises(CorpusError) as err:
        load_corpus("emovo", root, cache_dir=tmp_path / "c", verify_counts=False)
    assert "clip of actor m1 inside the folder of actor f1" in str(err.value) and "xxx-f1-b1.wav" in str(err.value)


def test_an_original_wav_beside_its_flac_copy_is_one_clip_twice(tmp_path):
    root = write_emovo(tmp_path / "m", sentences=("b1",))
    clip(root / "f1" / "neu-f1-b1.flac")
    with pytest.raises(CorpusError, match=r"neu-f1-b1\.(flac|wav): same clip as .*neu-f1-b1"):
        load_corpus("emovo", root, cache_dir=tmp_path / "c", verify_counts=False)


def test_count_errors_list_each_speaker_and_emotion_off_its_documented_count(tmp_path):
    root = write_eyase(tmp_path / "e")
    with pytest.raises(CorpusError) as err:
        load_corpus("eyase", root, cache_dir=tmp_path / "c")
    assert "speaker Male01: 4 clips, expected 117" in str(err.value)
    assert "emotion angry: 6 clips, expected 150" in str(err.value)


@pytest.mark.parametrize("name", ["eyase", "emovo", "urdu"])
def test_fixed_folds_are_speaker_disjoint_and_cover_every_speaker_once(name):
    module = {"eyase": eyase, "emovo": emovo, "urdu": urdu}[name]
    speakers = [s for s, n in module.SPEAKERS.items() for _ in range(n)]  # the documented release
    assert sorted(s for fold in module.FOLDS for s in fold) == sorted(module.SPEAKERS)
    k = num_folds(name, speakers)
    assert k == len(module.FOLDS)
    for fold in range(k):
        split = make_split(name, speakers, "folds", fold)  # raises LeakageError on any overlap
        assert split.test_speakers == sorted(module.FOLDS[fold])
        assert split.val_speakers == sorted(module.FOLDS[(fold + 1) % k][:2])
        assert len(split.train_speakers) >= 4


def test_folds_documented_in_the_modules_hold():
    # EMOVO: EmoBox's order; EYASE: genders alternate, so validation is always the other gender
    assert emovo.FOLDS == [["f2"], ["m3"], ["m2"], ["f3"], ["f1"], ["m1"]]
    genders = [fold[0][0] for fold in eyase.FOLDS]
    assert genders == ["F", "M", "F", "M", "F", "M"]
    # URDU: the test clip counts of the module docstring's table
    assert [sum(urdu.SPEAKERS[s] for s in fold) for fold in urdu.FOLDS] == [102, 104, 108, 86]
    assert sum(urdu.SPEAKERS.values()) == 400 and sum(eyase.SPEAKERS.values()) == 579


def spaced_pair(delay: int, sr: int = 48000, seconds: float = 1.0) -> np.ndarray:
    """White noise on two spaced microphones: the second channel hears it ``delay`` samples later."""
    x = 0.1 * np.random.default_rng(0).standard_normal(int(sr * seconds) + delay)
    return np.stack([x[delay:], x[:-delay]], axis=1).astype(np.float32)


def band_power(wav: np.ndarray, sr: int, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(wav)) ** 2
    freqs = np.fft.rfftfreq(len(wav), 1 / sr)
    return float(spectrum[(freqs >= lo) & (freqs < hi)].mean())


def test_a_spaced_stereo_pair_is_decoded_from_one_channel_not_averaged(tmp_path):
    pair = spaced_pair(delay=24)  # 0.5 ms at 48 kHz: the average has its first notch at 1 kHz
    sf.write(tmp_path / "pair.wav", pair, 48000, subtype="FLOAT")
    mixed = load_audio(tmp_path / "pair.wav", None)
    first = load_audio(tmp_path / "pair.wav", None, channel=0)
    np.testing.assert_array_equal(first, pair[:, 0])
    np.testing.assert_array_equal(load_audio(tmp_path / "pair.wav", None, channel=1), pair[:, 1])
    # the comb filter: the average loses >20 dB around 1 kHz against its own level at 2 kHz; one channel does not
    assert band_power(mixed, 48000, 950, 1050) < 0.01 * band_power(mixed, 48000, 1950, 2050)
    assert band_power(first, 48000, 950, 1050) > 0.3 * band_power(first, 48000, 1950, 2050)
    with pytest.raises(AudioError, match=r"pair.wav: channel 2 asked for, but the file has 2 channels"):
        load_audio(tmp_path / "pair.wav", None, channel=2)
    mono = tmp_path / "mono.wav"
    sf.write(mono, pair[:, 0], 48000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(mono, None, channel=0), pair[:, 0])  # mono: its only channel


def test_emovo_originals_decode_their_first_channel_everywhere(tmp_path):
    assert decode_channel("emovo") == 0 and decode_channel("ravdess") is None and decode_channel("folder") is None
    root = write_emovo(tmp_path / "m", sentences=("b1",))
    pair = spaced_pair(delay=20, seconds=0.3)
    sf.write(root / "f1" / "neu-f1-b1.wav", pair, 48000, subtype="PCM_16")  # the original format: 48 kHz stereo
    ds = load_corpus("emovo", root, cache_dir=tmp_path / "c", verify_counts=False)
    decoded = decode_dataset(ds, 48000, channel=decode_channel("emovo"))
    row = decoded.filter(lambda r: r["id"] == "neu-f1-b1")[0]
    np.testing.assert_array_equal(np.asarray(row["input_values"], np.float32), load_audio(row["audio"], None, 0))

    from ser_hf.export import _audio_bytes

    data, name, rate = _audio_bytes(row["audio"], None, decode_channel("emovo"))  # an export keeps channel 0 too
    stored, stored_rate = sf.read(__import__("io").BytesIO(data), dtype="float32")
    assert name == "neu-f1-b1.flac" and rate == stored_rate == 48000 and stored.ndim == 1
    np.testing.assert_allclose(stored, load_audio(row["audio"], None, 0), atol=1 / 32768)


@pytest.mark.parametrize("name", ["eyase", "emovo", "urdu"])
def test_corpus_facts_reach_model_and_dataset_cards(name):
    from ser_hf.reports.card import CardCorpus

    info = corpus_info(name)
    assert info.license_id == "other" and "research" in info.terms.lower() and info.citation.startswith("@")
    facts = CardCorpus.of(name)
    assert facts.language == list(info.languages) and facts.license == "other"
    assert info.terms in facts.description and facts.license_name == f"{name}-terms"
    assert "folds" in info.protocols
    assert corpus_info("ravdess").license_id == "cc-by-nc-sa-4.0" and CardCorpus.of("folder") is None


def test_export_of_a_research_only_corpus_states_its_terms(tmp_path):
    from ser_hf.export import export_dataset

    root = write_eyase(tmp_path / "e")
    summary = export_dataset("eyase", root, tmp_path / "x", cache_dir=tmp_path / "c", verify_counts=False)
    assert set(summary["configs"]) == {f"fold_{k}" for k in range(6)} | {"all"}
    assert summary["configs"]["fold_0"] == {"train": 16, "validation": 4, "test": 4}
    card = (tmp_path / "x" / "README.md").read_text()
    assert "license: other" in card and "language:\n- ar" in card and eyase.INFO.terms in card
    assert "leave one speaker out over the 6 actors" in card and "abdelhamid2020egyptian" in card


def test_download_prints_manual_steps_for_eyase_and_emovo(capsys, tmp_path):
    from ser_hf.cli import main as cli

    for name, expected in (("eyase", "Female02/fm01_ang (1).wav"), ("emovo", "f1/rab-f1-b1.wav")):
        assert cli(["download", name, "--to", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert expected in out and f'load_corpus("{name}", data_dir="{tmp_path / name}")' in out


def test_download_urdu_extracts_the_archive_and_refuses_a_corrupt_one(tmp_path, monkeypatch, capsys):
    import io
    import zipfile

    import ser_hf.download as dl
    from ser_hf.cli import main as cli

    from .test_download import Server

    tree = write_urdu(tmp_path / "tree")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # stored, not deflated: a flipped byte is found by the CRC alone
        for p in sorted(tree.rglob("*.wav")):
            z.write(p, f"URDU-Dataset-master/{p.relative_to(tree)}")
    server = Server()
    try:
        server.files["/urdu.zip"] = buf.getvalue()
        monkeypatch.setattr(dl, "URDU_URL", f"{server.url}/urdu.zip")
        assert cli(["download", "urdu", "--to", str(tmp_path / "d"), "--no_progress"]) == 0
        folder = tmp_path / "d" / "urdu"
        assert f"urdu: {folder}" in capsys.readouterr().out
        ds = load_corpus("urdu", folder, cache_dir=tmp_path / "c", verify_counts=False)
        assert len(ds) == 58 and len(set(ds["speaker"])) == 29

        data = bytearray(buf.getvalue())
        data[200] ^= 0xFF  # inside the first member's audio
        server.files["/urdu.zip"] = bytes(data)
        assert cli(["download", "urdu", "--to", str(tmp_path / "bad"), "--no_progress"]) == 2
        assert "fails its CRC-32 check" in capsys.readouterr().err
        assert not (tmp_path / "bad" / "urdu").exists()
    finally:
        server.httpd.shutdown()


@pytest.mark.slow
def test_cross_corpus_report_scores_each_checkpoint_on_the_other_corpora(tmp_path, capsys):
    from ser_hf.cli import main as cli
    from ser_hf.training import main as train

    from .conftest import TINY_MELCNN, quick_run_args

    data = {"eyase": write_eyase(tmp_path / "eyase"), "emovo": write_emovo(tmp_path / "emovo", sentences=("b1",))}
    runs = {}
    for name, root in data.items():
        runs[name] = tmp_path / "runs" / name
        args = quick_run_args(f"{name}_melcnn.yaml", root, tmp_path / "cache", runs[name], *TINY_MELCNN)
        train([*args, "--verify_counts", "false", "--fold", "1"])
    argv = [
        *("--system", f"eyase_cnn={runs['eyase']}", "--system", f"emovo_cnn={runs['emovo']}"),
        *("--corpus", f"eyase={data['eyase']}", "--corpus", f"emovo={data['emovo']}"),
        *("--output_dir", str(tmp_path / "report"), "--cache_dir", str(tmp_path / "cache")),
    ]
    argv += ["--verify_counts", "false"]  # the synthetic trees are subsets of the corpora
    assert cli(["cross-corpus", *argv]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    eyase_row, emovo_row = report["systems"]
    assert eyase_row["trained_on"] == "eyase" and eyase_row["fold"] == 1
    assert eyase_row["scores"]["eyase"]["scope"] == "test" and eyase_row["scores"]["emovo"]["scope"] == "all"
    # EYASE's 4 labels all exist in EMOVO; EMOVO's fear / disgust / surprise clips are left out
    assert eyase_row["scores"]["emovo"]["shared_labels"] == ["angry", "happy", "neutral", "sad"]
    assert eyase_row["scores"]["emovo"]["num_clips"] == 6 * 4
    assert emovo_row["scores"]["eyase"]["shared_labels"] == ["neutral", "happy", "angry", "sad"]
    assert eyase_row["scores"]["eyase"]["num_clips"] == 4  # Male01: fold 1's test speaker
    assert all(0 <= s["ua"] <= 1 for row in report["systems"] for s in row["scores"].values())
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| eyase_cnn (eyase, fold 1) | **" in md and "(1/4)" in md
    assert (runs["eyase"] / "eval_emovo_all" / "evaluation.json").is_file()  # written once, beside the checkpoint
    assert cli(["cross-corpus", *argv]) == 2  # never replaces a report unasked
    err = capsys.readouterr().err
    assert "already holds report.json, report.md; choose another --output_dir, or pass --overwrite_output_dir" in err
    (tmp_path / "report" / "mine.txt").write_text("notes")
    assert cli(["cross-corpus", *argv[:2], *argv[4:], "--overwrite_output_dir"]) == 0  # eyase_cnn alone
    again = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [row["system"] for row in again["systems"]] == ["eyase_cnn"]
    assert again["systems"][0]["scores"] == eyase_row["scores"]  # read back, not re-evaluated differently
    assert (tmp_path / "report" / "mine.txt").read_text() == "notes"  # nothing else there is touched


@pytest.mark.slow
def test_model_card_of_a_run_states_the_corpus_terms_languages_and_speech(tmp_path):
    from ser_hf.hub import build_model_card
    from ser_hf.training import main as train

    from .conftest import TINY_MELCNN, quick_run_args

    root = write_urdu(tmp_path / "urdu")
    run = tmp_path / "run"
    train(
        [*quick_run_args("urdu_melcnn.yaml", root, tmp_path / "cache", run, *TINY_MELCNN), "--verify_counts", "false"]
    )
    card = str(build_model_card(run, "user/urdu-cnn"))
    assert "license: other" in card and "license_name: urdu-terms" in card and "- ur\n" in card
    assert urdu.INFO.terms in card and "latif2018cross" in card
    assert "URDU is natural speech cut from Urdu TV talk shows" in card and "acted, read speech" not in card

"""ser-hf predict: clips in any format, folders, long-recording timelines, bad inputs."""

import csv
import json

import numpy as np
import pytest
import soundfile as sf
from transformers import Wav2Vec2FeatureExtractor

from ser_hf.audio import AudioError, load_audio, stream_audio
from ser_hf.cli import main as cli
from ser_hf.inference import audio_files, load_classifier, predict
from ser_hf.timeline import predict_timeline

from .conftest import save_tiny_melcnn

LABELS = ["neutral", "happy", "angry", "sad"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small mel-CNN with a sharpened classifier, so that labels have clear margins."""
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, do_normalize=False, return_attention_mask=True)
    return save_tiny_melcnn(tmp_path_factory.mktemp("model") / "m", LABELS, margin=40, feature_extractor=fe)


def tones(f0: float, seconds: float, sr: int) -> np.ndarray:
    """Harmonics below 3.5 kHz (so an 8 kHz twin keeps everything), with a slow amplitude envelope."""
    t = np.arange(int(seconds * sr)) / sr
    wav = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6) if f0 * k < 3500)
    return (0.2 * wav * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t))).astype(np.float32)


def test_formats_rates_and_channels_give_the_labels_of_the_16k_wav_twin(model_dir, tmp_path):
    clf, fe = load_classifier(str(model_dir), "cpu")
    margins = []
    for f0 in (110.0, 180.0, 260.0, 400.0):
        twins = {"ref.wav": (tones(f0, 1.5, 16000), 16000, "PCM_16")}
        twins["stereo44.wav"] = (np.stack([tones(f0, 1.5, 44100)] * 2, 1), 44100, "PCM_16")
        twins["mono8k.wav"] = (tones(f0, 1.5, 8000), 8000, "PCM_16")
        twins["x.flac"] = (tones(f0, 1.5, 16000), 16000, "PCM_16")
        twins["x.ogg"] = (tones(f0, 1.5, 16000), 16000, "VORBIS")
        folder = tmp_path / str(int(f0))
        folder.mkdir()
        for name, (wav, sr, subtype) in twins.items():
            sf.write(folder / name, wav, sr, subtype=subtype)
        results = {r.path.split("/")[-1]: r for r in predict(clf, [folder], feature_extractor=fe)}
        ref = results.pop("ref.wav")
        probs = sorted(ref.probabilities.values())
        margins.append(probs[-1] - probs[-2])
        for name, r in results.items():
            assert r.label == ref.label, (f0, name)
            assert max(abs(r.probabilities[k] - ref.probabilities[k]) for k in LABELS) < 0.1, (f0, name)
            assert r.duration_s == pytest.approx(1.5, abs=0.01)
    assert min(margins) > 0.15  # the labels are decided by clear margins, so agreement means something
    assert len({r for r in margins}) > 1


def test_bad_inputs(model_dir, tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="nothing.wav: no such file or directory"):
        audio_files([tmp_path / "nothing.wav"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio here")
    with pytest.raises(AudioError, match="empty: directory holds no audio files"):
        audio_files([tmp_path / "empty"])
    (tmp_path / "bad.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros(0, dtype=np.float32), 16000)
    clf, fe = load_classifier(str(model_dir), "cpu")
    with pytest.raises(AudioError, match="bad.wav: cannot decode audio"):
        predict(clf, [tmp_path / "bad.wav"], feature_extractor=fe)
    with pytest.raises(AudioError, match="zero.wav: zero-length audio"):
        predict(clf, [zero], feature_extractor=fe)
    with pytest.raises(AudioError, match="zero.wav: zero-length audio"):
        predict_timeline(clf, zero, feature_extractor=fe)
    with pytest.raises(ValueError, match="--hop_s 3.0 is longer than --window_s 2.0"):
        predict_timeline(clf, zero, window_s=2.0, hop_s=3.0, feature_extractor=fe)
    assert cli(["predict", str(model_dir), str(tmp_path / "empty")]) == 2
    assert "directory holds no audio files" in capsys.readouterr().err


def recording(path, sr=16000):
    """10 s tone, 10 s digital silence, 10.5 s tone."""
    wav = np.concatenate([tones(150, 10, sr), np.zeros(10 * sr, np.float32), tones(300, 10.5, sr)])
    sf.write(path, wav, sr, subtype="PCM_16")
    return wav


def test_timeline_windows_gate_and_blockwise_reading(model_dir, tmp_path):
    clf, fe = load_classifier(str(model_dir), "cpu")
    recording(tmp_path / "rec.wav")
    tl = predict_timeline(clf, tmp_path / "rec.wav", window_s=2.0, hop_s=1.0, feature_extractor=fe, block_s=3.3)
    starts = [s.start_s for s in tl.segments]
    assert starts[:29] == [float(k) for k in range(29)] and starts[-1] == pytest.approx(28.5)  # tail window
    assert tl.segments[-1].end_s == pytest.approx(30.5) and tl.duration_s == pytest.approx(30.5)
    silent = [s for s in tl.segments if 10 <= s.start_s and s.end_s <= 20]
    assert len(silent) == 9 and all(not s.speech and s.label is None and not s.probabilities for s in silent)
    assert all(s.speech and s.label in LABELS for s in tl.segments if s.end_s <= 10 or s.start_s >= 20)
    # reading in blocks of 3.3 s gives the same windows as reading everything at once
    whole = predict_timeline(clf, tmp_path / "rec.wav", feature_extractor=fe, block_s=1000)
    np.testing.assert_allclose(np.nan_to_num(tl.probabilities()), np.nan_to_num(whole.probabilities()), atol=1e-5)

    smooth = predict_timeline(clf, tmp_path / "rec.wav", smooth=3, feature_extractor=fe)
    raw = whole.probabilities()
    np.testing.assert_allclose(smooth.probabilities()[4], raw[3:6].mean(0), atol=1e-5)

    tl.to_csv(tmp_path / "t.csv")
    tl.to_jsonl(tmp_path / "t.jsonl")
    tl.plot(tmp_path / "t.png")
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert len(rows) == len(tl.segments) and rows[12]["speech"] == "0" and rows[12]["label"] == ""
    assert set(rows[0]) == {"start_s", "end_s", "speech", "label", "level_db", *LABELS}
    first = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[0])
    assert first["start_s"] == 0 and set(first["probabilities"]) == set(LABELS)
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


def test_streaming_resampler_matches_one_shot_decoding(tmp_path):
    wav = tones(200, 7.3, 44100)
    sf.write(tmp_path / "a.flac", np.stack([wav, wav], 1), 44100)
    blocks = list(stream_audio(tmp_path / "a.flac", 16000, block_s=0.7))
    assert max(len(b) for b in blocks) <= 0.7 * 16000 * 1.05  # bounded blocks (+ the resampler delay)
    streamed = np.concatenate(blocks)
    whole = load_audio(tmp_path / "a.flac", 16000)
    assert abs(len(streamed) - len(whole)) <= 1
    n = min(len(streamed), len(whole))
    assert np.max(np.abs(streamed[:n] - whole[:n])) < 2e-3


def test_window_longer_than_the_clip_gives_one_window(model_dir, tmp_path):
    clf, fe = load_classifier(str(model_dir), "cpu")
    sf.write(tmp_path / "short.wav", tones(200, 0.7, 16000), 16000)
    tl = predict_timeline(clf, tmp_path / "short.wav", window_s=2.0, hop_s=1.0, feature_extractor=fe)
    assert len(tl.segments) == 1
    assert tl.segments[0].start_s == 0 and tl.segments[0].end_s == pytest.approx(0.7)


def test_cli_clip_formats_and_timeline_files(model_dir, tmp_path, capsys):
    for i, f0 in enumerate((120, 250)):
        sf.write(tmp_path / f"c{i}.wav", tones(f0, 1.0, 16000), 16000)
    assert cli(["predict", str(model_dir), str(tmp_path / "c0.wav"), str(tmp_path / "c1.wav")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["path", "label"] and len(table) == 3
    assert cli(["predict", str(model_dir), str(tmp_path), "--format", "jsonl"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["path"].split("/")[-1] for x in lines] == ["c0.wav", "c1.wav"]
    assert (
        cli(
            [
                "predict",
                str(model_dir),
                str(tmp_path / "c0.wav"),
                "--format",
                "csv",
                "--output",
                str(tmp_path / "o.csv"),
            ]
        )
        == 0
    )
    assert next(csv.DictReader((tmp_path / "o.csv").open()))["label"] in LABELS
    assert cli(["predict", str(model_dir), str(tmp_path / "c0.wav"), "--output", str(tmp_path / "o.csv")]) == 2

    recording(tmp_path / "rec.wav")
    args = [
        "predict",
        str(model_dir),
        str(tmp_path / "rec.wav"),
        "--timeline",
        "--plot",
        "--output_dir",
        str(tmp_path / "tl"),
    ]
    assert cli(args) == 0
    assert "30 windows, 21 with speech" in capsys.readouterr().out
    assert (tmp_path / "tl" / "rec.timeline.csv").exists() and (tmp_path / "tl" / "rec.timeline.png").exists()
    assert cli(args) == 2  # never replaces an earlier timeline

import numpy as np
import pytest
import soundfile as sf

from ser_hf.audio import AudioError, load_audio, random_crop, resample
from ser_hf.models.mel_cnn.feature_extraction_mel_cnn import center_crop, trim_silence


def test_decodes_stereo_48k_int16_to_mono_16k_float32(tmp_path):
    sr = 48000
    left = 0.5 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)
    sf.write(tmp_path / "s.wav", np.stack([left, np.zeros_like(left)], axis=1), sr, subtype="PCM_16")
    wav = load_audio(tmp_path / "s.wav", 16000)
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) - 16000) <= 2
    assert np.abs(wav).max() == pytest.approx(0.25, abs=0.01)  # channel average of 0.5 and 0


def test_keeps_native_rate_when_asked(tmp_path):
    sf.write(tmp_path / "a.flac", np.zeros(800) + 0.1, 8000)
    assert load_audio(tmp_path / "a.flac", None).shape == (800,)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        load_audio(tmp_path / "nope.wav")


def test_corrupt_file_names_it(tmp_path):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00this is not audio" * 10)
    with pytest.raises(AudioError, match="corrupt.wav.*cannot decode"):
        load_audio(bad)


def test_truncated_file_names_it(tmp_path):
    good = tmp_path / "full.wav"
    sf.write(good, np.random.default_rng(0).uniform(-0.5, 0.5, 48000), 48000, subtype="PCM_16")
    data = good.read_bytes()
    cut = tmp_path / "truncated.wav"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="truncated.wav"):
        load_audio(cut)


def test_zero_length_clip_names_it(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), 16000)
    with pytest.raises(AudioError, match="empty.wav.*zero-length"):
        load_audio(empty)


def test_trim_silence_keeps_the_loud_part():
    sr = 16000
    wav = np.zeros(3 * sr, dtype=np.float32)
    wav[sr : 2 * sr] = 0.5 * np.sin(2 * np.pi * 200 * np.arange(sr) / sr)
    out = trim_silence(wav, top_db=30)
    assert sr - 400 <= len(out) <= sr + 800
    assert np.abs(out).max() == pytest.approx(0.5, abs=1e-3)
    silent = np.zeros(sr, dtype=np.float32)
    assert trim_silence(silent) is silent


def test_crops():
    wav = np.arange(100, dtype=np.float32)
    assert np.array_equal(center_crop(wav, 10), np.arange(45, 55))
    assert center_crop(wav, 200) is wav
    out = random_crop(wav, 10, np.random.default_rng(0))
    assert len(out) == 10 and np.all(np.diff(out) == 1)


def test_resample_length():
    assert resample(np.zeros(48000, np.float32), 48000, 16000).shape == (16000,)


def test_bytes_and_datasets_audio_dicts_decode_like_the_file(tmp_path):
    import soundfile as sf

    wav = (0.3 * np.sin(np.arange(4800) / 9)).astype(np.float32)
    path = tmp_path / "x.wav"
    sf.write(path, wav, 48000, subtype="PCM_16")
    from_file = load_audio(path, 16000)
    data = path.read_bytes()
    assert np.array_equal(load_audio(data, 16000), from_file)
    assert np.array_equal(load_audio({"bytes": data, "path": "x.wav"}, 16000), from_file)
    assert np.array_equal(load_audio({"bytes": None, "path": str(path)}, 16000), from_file)
    with pytest.raises(AudioError, match="y.wav: cannot decode audio"):
        load_audio({"bytes": b"not audio" * 20, "path": "y.wav"})
    with pytest.raises(AudioError, match="y.wav: truncated WAV"):
        load_audio({"bytes": data[: len(data) // 2], "path": "y.wav"})

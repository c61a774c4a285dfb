"""Reliability, round two (issue 26): bad files named everywhere, exports that refuse broken clips, reports that
are never replaced."""

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
    for rate in (None, 16000):
        out = tmp_path / f"export_{rate}"
        with pytest.raises(AudioError) as err:
            export_dataset("eyase", root, out, sampling_rate=rate, cache_dir=tmp_path / "c", verify_counts=False)
        assert "2 of 24 clips cannot be exported (nothing was written)" in str(err.value)
        assert "ml01_ang (1).wav: 1 NaN / infinite samples" in str(err.value)
        assert "fm03_sad (1).flac: cannot decode audio after its header" in str(err.value)
        assert not out.exists()

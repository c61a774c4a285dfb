import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification, pipeline

import ser_hf  # noqa: F401  (registers the Auto classes)
from ser_hf.training import ModelArguments, build_model

LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def tiny_model():
    torch.manual_seed(0)
    model, fe = build_model(ModelArguments(channels=[4, 8], n_mels=32), LABELS, 16000)
    return model.eval(), fe


def test_forward_shapes_and_loss():
    model, _ = tiny_model()
    out = model(torch.randn(3, 16000), labels=torch.tensor([0, 1, 2]), output_hidden_states=True)
    assert out.logits.shape == (3, 8)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.hidden_states[0].shape == (3, 2 * 8)


@pytest.mark.parametrize("freq_pooling", ["mean", "flatten"])
@pytest.mark.parametrize("normalize", ["utterance", "utterance_global", "none"])
def test_padding_does_not_change_logits(freq_pooling, normalize):
    """A clip padded into a batch scores as it does alone, whatever its length: the lengths below give odd frame
    counts after each of the 4 pooling stages (161 frames -> 80 -> 40 -> 20; 139 -> 69 -> 34 -> 17; 76 -> 38 ->
    19 -> 9; 101 -> 50 -> 25 -> 12), where a padded frame could leak into the next block's convolution."""
    torch.manual_seed(0)
    args = ModelArguments(channels=[4, 4, 8, 8], n_mels=32, freq_pooling=freq_pooling, normalize=normalize)
    model, fe = build_model(args, LABELS, 16000)
    model.eval()
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(n).astype(np.float32) for n in (25680, 22160, 12000, 16000, 40000)]
    fe.trim_db = None  # noise has no silence to trim; keep the lengths above
    batch = fe(clips, sampling_rate=16000, padding=True, return_tensors="pt")
    assert batch["attention_mask"].sum(-1).tolist() == [25680, 22160, 12000, 16000, 40000]
    with torch.no_grad():
        padded = model(**batch).logits
        for i, clip in enumerate(clips):
            single = model(**fe([clip], sampling_rate=16000, return_tensors="pt")).logits[0]
            assert torch.allclose(padded[i], single, atol=1e-4), (i, (padded[i] - single).abs().max())


def test_spec_augment_only_in_training():
    model, _ = tiny_model()
    x = torch.randn(2, 16000)
    with torch.no_grad():
        assert torch.equal(model(x).logits, model(x).logits)
        model.train()
        model.config.dropout = 0.0
        model.dropout.p = 0.0
        a, b = model(x).logits, model(x).logits
    assert not torch.equal(a, b)


def test_config_validation():
    with pytest.raises(ValueError, match="pooling 'sum'"):
        ser_hf.MelCNNConfig(pooling="sum")
    with pytest.raises(ValueError, match="win_length 1024 must be <= n_fft 512"):
        ser_hf.MelCNNConfig(win_length=1024)


def test_save_reload_identical_logits_and_pipeline(tmp_path):
    model, fe = tiny_model()
    model.save_pretrained(tmp_path)
    fe.save_pretrained(tmp_path)
    assert (tmp_path / "modeling_mel_cnn.py").exists()  # shipped for trust_remote_code users
    x = torch.randn(2, 20000)
    reloaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(model(x).logits, reloaded(x).logits)
    assert AutoConfig.from_pretrained(tmp_path).id2label[4] == "angry"
    assert AutoFeatureExtractor.from_pretrained(tmp_path).return_attention_mask

    clf = pipeline("audio-classification", model=str(tmp_path), top_k=None)
    out = clf(np.random.default_rng(1).standard_normal(16000).astype(np.float32))
    assert sorted(o["label"] for o in out) == sorted(LABELS)
    assert sum(o["score"] for o in out) == pytest.approx(1.0, abs=1e-4)


def test_utterance_global_normalisation_removes_gain_and_keeps_spectral_shape():
    torch.manual_seed(0)
    model, fe = build_model(ModelArguments(channels=[4, 8], n_mels=32, normalize="utterance_global"), LABELS, 16000)
    model.eval()
    x = torch.randn(1, 16000)
    with torch.no_grad():
        # a gain is a constant offset of the log-mel: one mean per utterance removes it
        torch.testing.assert_close(model(x).logits, model(4.0 * x).logits, atol=1e-4, rtol=1e-4)
        # per-band CMVN maps a tilted spectrum onto the flat one; the global standardisation does not
        tilt = torch.fft.irfft(torch.fft.rfft(x) * torch.linspace(0.1, 3.0, 8001), n=16000)
        assert not torch.allclose(model(x).logits, model(tilt).logits, atol=1e-3)


def test_freq_pooling_flatten_keeps_every_mel_bin_in_the_head():
    torch.manual_seed(0)
    model, _ = build_model(ModelArguments(channels=[4, 8], n_mels=32, freq_pooling="flatten"), LABELS, 16000)
    out = model.eval()(torch.randn(2, 16000), output_hidden_states=True)
    assert out.hidden_states[0].shape == (2, 2 * 8 * (32 // 4))  # meanmax x channels x mel bins left
    assert model.classifier.in_features == 2 * 8 * 8
    with pytest.raises(ValueError, match=r"needs n_mels >= 2 \*\* len\(channels\) = 16, got n_mels 8"):
        ser_hf.MelCNNConfig(n_mels=8, channels=[4, 4, 4, 4], freq_pooling="flatten")
    with pytest.raises(ValueError, match="freq_pooling 'sum'"):
        ser_hf.MelCNNConfig(freq_pooling="sum")
    with pytest.raises(ValueError, match="normalize 'cmvn'"):
        ser_hf.MelCNNConfig(normalize="cmvn")

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


def test_padding_does_not_change_logits():
    model, fe = tiny_model()
    short, long = np.random.default_rng(0).standard_normal((2, 24000)).astype(np.float32)
    short = short[:12000]
    batch = fe([short, long], sampling_rate=16000, padding=True, return_tensors="pt")
    alone = fe([short], sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        padded = model(**batch).logits[0]
        single = model(**alone).logits[0]
    assert torch.allclose(padded, single, atol=1e-5)


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

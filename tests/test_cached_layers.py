"""Cached-layers training (--adapt_top_layers): the split model equals the full one, the cache is keyed by what it
holds, and a cached run ships a full checkpoint that pipeline() loads and that scores what its record says."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForAudioClassification, pipeline

from ser_hf.data import featurize
from ser_hf.feature_cache import FeatureCache, backbone_hash, clip_hash
from ser_hf.models.cached import (
    CACHED_MODEL_TYPES,
    PooledLayersClassifier,
    TopLayersClassifier,
    bottom_states,
    cut_layer,
    pooled_layer_states,
)
from ser_hf.models.pretrained import FinetuneSettings, apply_finetune_mode, load_backbone
from ser_hf.training import main
from ser_hf.training.arguments import parse_args
from ser_hf.training.cached import CachedCollator, view_wave

from .conftest import quick_run_args

LABELS = ["neutral", "happy", "sad"]


@pytest.fixture(scope="module")
def deep_backbones(tmp_path_factory):
    """Tiny random checkpoints with 3 encoder layers (the shared ones have 2), for cuts inside the encoder."""

    from .conftest import tiny_backbone_config

    root = tmp_path_factory.mktemp("deep")
    out = {}
    for model_type in (*CACHED_MODEL_TYPES, "wavlm"):
        key = "encoder_layers" if model_type == "whisper" else "num_hidden_layers"
        torch.manual_seed(1)
        model = AutoModelForAudioClassification.from_config(tiny_backbone_config(model_type, **{key: 3}))
        model.save_pretrained(root / model_type)
        out[model_type] = root / model_type
    return out


def _load(backbones, model_type, weighted=False):
    import shutil

    folder = backbones[model_type]
    if not (folder / "preprocessor_config.json").exists():
        from .conftest import save_tiny_backbone

        fe_folder = folder.parent / f"{model_type}_fe"
        save_tiny_backbone(model_type, fe_folder)
        shutil.copy(fe_folder / "preprocessor_config.json", folder / "preprocessor_config.json")
    model, fe = load_backbone(str(folder), LABELS, weighted_layer_sum=weighted, whisper_window_s=1)
    return model.eval(), fe


def _waves(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(int(16000 * s)).astype(np.float32) * 0.1 for s in (0.6, 0.9, 0.75)[:n]]


@pytest.mark.parametrize("model_type", CACHED_MODEL_TYPES)
@pytest.mark.parametrize("k", [1, 2])
def test_top_layers_from_the_cut_equal_the_full_model(deep_backbones, tiny_backbones, model_type, k):
    model, fe = _load(deep_backbones, model_type)
    cut = cut_layer(model, k)
    top = TopLayersClassifier(model, cut).eval()
    for wave in _waves():  # one clip at a time: what pipeline() computes
        inputs = featurize(fe, [wave])
        with torch.no_grad():
            full = model(**inputs).logits
            split = top(bottom_states(model, inputs, cut)).logits
        assert torch.allclose(full, split, atol=1e-5), (model_type, k, full, split)


def test_padded_batch_with_frame_mask_equals_clips_alone(deep_backbones, tiny_backbones):
    model, fe = _load(deep_backbones, "wav2vec2")
    top = TopLayersClassifier(model, 1).eval()
    states = [bottom_states(model, featurize(fe, [w]), 1)[0] for w in _waves()]
    rows = [{"cache_rows": [i], "label": 0} for i in range(3)]

    class Store:
        def states(self, idx):
            return [states[i].numpy() for i in idx]

    batch = CachedCollator(Store(), train=False, pooled=False)(rows)
    assert batch["attention_mask"].sum(1).tolist() == [len(s) for s in states]
    with torch.no_grad():
        together = top(batch["hidden_states"], batch["attention_mask"]).logits
        alone = torch.cat([top(s[None]).logits for s in states])
    assert torch.allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("model_type", ["whisper", "wavlm"])
def test_pooled_layers_head_equals_the_weighted_layer_sum_model(tiny_backbones, model_type):
    model, fe = _load(tiny_backbones, model_type, weighted=True)
    with torch.no_grad():
        model.layer_weights.copy_(torch.tensor([0.3, -1.0, 2.0]))
    head = PooledLayersClassifier(model).eval()
    for wave in _waves(2):
        inputs = featurize(fe, [wave])
        inputs.pop("attention_mask", None)
        with torch.no_grad():
            assert torch.allclose(model(**inputs).logits, head(pooled_layer_states(model, inputs)).logits, atol=1e-5)


def test_lora_goes_only_into_the_top_layers(deep_backbones, tiny_backbones):
    model, _ = _load(deep_backbones, "whisper")
    peft_model = apply_finetune_mode(model, FinetuneSettings(mode="lora", adapt_top_layers=1))
    lora = {n.split(".layers.")[1].split(".")[0] for n, _ in peft_model.named_parameters() if "lora_" in n}
    assert lora == {"2"}
    full, _ = _load(deep_backbones, "hubert")
    apply_finetune_mode(full, FinetuneSettings(mode="full", adapt_top_layers=2))
    trained = {n for n, p in full.named_parameters() if p.requires_grad}
    assert any(".layers.1." in n for n in trained) and any(".layers.2." in n for n in trained)
    assert not any(".layers.0." in n or "feature_extractor" in n for n in trained)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "lora", "adapt_top_layers": 0}, "--finetune_mode frozen"),
        ({"mode": "frozen", "adapt_top_layers": 2}, "lora or full"),
        ({"mode": "lora", "adapt_top_layers": -1}, "0 or more"),
        ({"mode": "lora", "adapt_top_layers": 1, "weighted_layer_sum": True}, "weighted layer sum"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FinetuneSettings(**kwargs)


def test_more_layers_than_the_model_has_and_wavlm_cuts_are_refused(deep_backbones, tiny_backbones):
    model, _ = _load(deep_backbones, "whisper")
    with pytest.raises(ValueError, match="encoder has 3 layers; give 0..3"):
        cut_layer(model, 4)
    wavlm, _ = _load(tiny_backbones, "wavlm")
    with pytest.raises(ValueError, match="'wavlm' cannot be cut"):
        cut_layer(wavlm, 1)
    assert cut_layer(wavlm, 0) == 2


def test_cache_keys_change_with_model_clip_and_settings(tmp_path, deep_backbones, tiny_backbones):
    model, fe = _load(deep_backbones, "whisper")
    base = {"model_type": "whisper", "cut": "layer2", "backbone": backbone_hash(model), "fe": fe.to_dict()}
    cache = FeatureCache(tmp_path, base)
    wave = _waves(1)[0]
    key = clip_hash(wave)
    cache.write([key], [0], [np.ones((4, 3), np.float32)])
    assert cache.missing([(key, 0), (key, 1)]) == [(key, 1)]
    assert cache.states([0])[0].dtype == np.float32 and cache.states([0])[0].shape == (4, 3)
    # the same settings find the row again; another clip, cut, window or weights do not
    assert FeatureCache(tmp_path, dict(base)).missing([(key, 0)]) == []
    changed = wave.copy()
    changed[0] += 1e-3
    assert clip_hash(changed) != key
    for other in ({"cut": "layer1"}, {"fe": {**fe.to_dict(), "chunk_length": 2}}):
        assert FeatureCache(tmp_path, {**base, **other}).missing([(key, 0)]) == [(key, 0)]
    with torch.no_grad():
        model.encoder.layers[0].fc1.weight.add_(1e-3)
    assert backbone_hash(model) != base["backbone"]
    # a head trained anew or an adapter does not change the backbone's identity
    head_changed, _ = _load(deep_backbones, "whisper")
    with torch.no_grad():
        head_changed.classifier.weight.add_(1.0)
    assert backbone_hash(head_changed) == base["backbone"]
    # a folder whose settings.json was edited is refused, not read
    (cache.folder / "settings.json").write_text(json.dumps({**base, "cut": "layer9"}))
    with pytest.raises(ValueError, match="other settings than its name says"):
        FeatureCache(tmp_path, base)


def test_views_are_reproducible_and_differ_from_the_clip():
    wave = _waves(1)[0]
    recipe = {"augment": {"speed_factors": [0.9, 1.1], "noise_prob": 1.0}, "crop_samples": 8000}
    key = clip_hash(wave)
    one, again = view_wave(wave, 1, key, 16000, recipe), view_wave(wave, 1, key, 16000, recipe)
    assert np.array_equal(one, again) and len(one) == 8000
    assert not np.array_equal(one, view_wave(wave, 2, key, 16000, recipe))
    assert view_wave(wave, 0, key, 16000, recipe) is wave


def test_training_collator_draws_views_crops_and_masks():
    states = [np.full((50, 4), i + 1, np.float32) for i in range(6)]

    class Store:
        def states(self, idx):
            return [states[i] for i in idx]

    rows = [{"cache_rows": [0, 1, 2], "label": 1, "loss_weight": 2.0}] * 40
    collator = CachedCollator(Store(), train=True, pooled=False, crop_frames=20, mask_time_prob=0.5, seed=0)
    batch = collator(rows)
    assert batch["hidden_states"].shape == (40, 20, 4) and batch["loss_weights"][0] == 2.0
    drawn = {float(x[x != 0][0]) for x in batch["hidden_states"]}
    assert drawn == {1.0, 2.0, 3.0}  # every view is drawn
    masked = float((batch["hidden_states"] == 0).float().mean())
    assert 0.3 < masked < 0.7


def test_flags_are_checked(tmp_path):
    with pytest.raises(ValueError, match="--cache_views must be 1 or more"):
        parse_args(
            ["--model", "pretrained", "--corpus", "ravdess", "--output_dir", str(tmp_path), "--cache_views", "0"]
        )
    with pytest.raises(ValueError, match="--adapt_top_layers applies to --model pretrained"):
        parse_args(["--output_dir", str(tmp_path), "--adapt_top_layers", "1"])


def _cached_args(ravdess_dir, ravdess_cache, out, model_dir, *extra):
    return quick_run_args(
        "ravdess_wav2vec2_lora.yaml",
        ravdess_dir,
        ravdess_cache,
        out,
        "--model_name_or_path",
        str(model_dir),
        *"--per_device_train_batch_size 4 --warmup_steps 0 --learning_rate 0.01 --whisper_window_s 1".split(),
        "--feature_cache_dir",
        str(out.parent / "hidden"),
        *extra,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model_type", "extra"),
    [
        ("whisper", ["--adapt_top_layers", "1", "--cache_views", "2", "--cached_mask_time_prob", "0.2"]),
        ("wav2vec2", ["--adapt_top_layers", "1", "--finetune_mode", "full"]),
        ("whisper", ["--adapt_top_layers", "0", "--finetune_mode", "frozen"]),
    ],
)
def test_cached_run_ships_a_full_checkpoint_that_scores_what_it_records(
    ravdess_dir, ravdess_cache, tiny_backbones, tmp_path, model_type, extra
):
    out = tmp_path / "run"
    metrics = main(_cached_args(ravdess_dir, ravdess_cache, out, tiny_backbones[model_type], *extra))
    facts = metrics["runtime"]["feature_cache"]
    assert facts["rows_built"] > 0 and facts["bytes"] > 0 and facts["build_s"] >= 0
    assert facts["adapt_top_layers"] == int(extra[1])
    assert not (out / "adapter").exists() or (out / "adapter" / "adapter_config.json").exists()
    model = AutoModelForAudioClassification.from_pretrained(out)  # the whole encoder, adapters merged
    reference = AutoModelForAudioClassification.from_pretrained(tiny_backbones[model_type])
    assert (
        sum(p.numel() for p in model.base_model.parameters())
        >= sum(p.numel() for n, p in reference.named_parameters() if not n.startswith(("projector", "classifier")))
        - 1500 * 32
    )  # Whisper's positional table is cut to the window
    assert not any("lora_" in k for k in model.state_dict())
    # the bottom is the pretrained one; the adapted top layer (or, for K = 0, the layer weights) trained
    shipped, pretrained = model.state_dict(), reference.state_dict()
    layer = (
        "encoder.layers.{}.fc1.weight"
        if model_type == "whisper"
        else "wav2vec2.encoder.layers.{}.attention.q_proj.weight"
    )
    assert torch.equal(shipped[layer.format(0)], pretrained[layer.format(0)])
    if extra[1] == "0":
        assert torch.equal(shipped[layer.format(1)], pretrained[layer.format(1)])
        assert not torch.allclose(shipped["layer_weights"], torch.full_like(shipped["layer_weights"], 1 / 3))
    else:
        q = layer.format(1).replace("fc1", "self_attn.q_proj")
        assert not torch.equal(shipped[q], pretrained[q])
    # pipeline() on the raw test clips gives the recorded test scores
    clf = pipeline("audio-classification", model=str(out))
    assert clf(np.zeros(8000, dtype=np.float32), top_k=1)[0]["label"] in metrics["label_names"]
    from ser_hf.reports.card import build_model_card

    card = str(build_model_card(out, "someone/ser-test"))
    assert "Cached-layers training" in card and "the checkpoint is the full model" in card
    # a second run on the same clips reuses the cache instead of computing it again
    again = main(_cached_args(ravdess_dir, ravdess_cache, tmp_path / "run2", tiny_backbones[model_type], *extra))
    assert again["runtime"]["feature_cache"]["rows_built"] == 0
    assert again["runtime"]["feature_cache"]["rows_reused"] == facts["rows_built"] + facts["rows_reused"]

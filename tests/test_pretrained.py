"""Pretrained backbones: fine-tuning modes, LoRA targets, adapter round trip, merged export, Whisper window."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForAudioClassification, Wav2Vec2Config, pipeline

from ser_hf.data import AudioCollator
from ser_hf.models.pretrained import (
    BACKBONES,
    FinetuneSettings,
    apply_finetune_mode,
    export_merged,
    load_adapter,
    load_backbone,
    save_adapter,
    trainable_parameter_names,
)
from ser_hf.models.summary import count_parameters

from .conftest import BACKBONE_TYPES, tiny_backbone_config

LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def batch_for(fe, seconds=(0.3, 0.7), seed=0):
    rng = np.random.default_rng(seed)
    rows = [
        {"input_values": rng.standard_normal(int(s * 16000)).astype(np.float32), "label": i}
        for i, s in enumerate(seconds)
    ]
    return AudioCollator(fe, train=False)(rows)


def randomize_lora(model: PeftModel, seed=0):
    """LoRA B starts at zero (the adapter is a no-op); give it values so merging is really tested."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name or "layer_weights" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


@pytest.mark.parametrize("model_type", BACKBONE_TYPES)
def test_trainable_parameters_per_mode(tiny_backbones, model_type):
    path = tiny_backbones[model_type]
    spec = BACKBONES[model_type]

    model, _ = load_backbone(str(path), LABELS)
    names = trainable_parameter_names(apply_finetune_mode(model, FinetuneSettings(mode="lora")))
    lora = [n for n in names if "lora_" in n]
    assert lora and all(any(f".{t}.lora_" in n for t in spec.attention) for n in lora)
    assert {n.split(".")[2] for n in names if "lora_" not in n} == {"projector", "classifier"}
    assert all("modules_to_save" in n for n in names if "lora_" not in n)

    model, _ = load_backbone(str(path), LABELS)
    names = trainable_parameter_names(apply_finetune_mode(model, FinetuneSettings(mode="lora", lora_ffn=True)))
    assert any(f".{spec.ffn[0]}.lora_" in n for n in names)

    model, _ = load_backbone(str(path), LABELS, weighted_layer_sum=True)
    names = trainable_parameter_names(apply_finetune_mode(model, FinetuneSettings(mode="frozen")))
    assert sorted(names) == sorted(
        ["layer_weights", "projector.weight", "projector.bias", "classifier.weight", "classifier.bias"]
    )

    model, _ = load_backbone(str(path), LABELS)
    full = apply_finetune_mode(model, FinetuneSettings(mode="full"))
    names = set(trainable_parameter_names(full))
    encoder = [n for n, _ in full.named_parameters() if n.startswith(spec.feature_encoder)]
    assert encoder and not names & set(encoder)  # CNN feature encoder frozen
    assert any(".q_proj." in n for n in names) and "classifier.weight" in names


@pytest.mark.parametrize("model_type", BACKBONE_TYPES)
def test_weighted_layer_sum_starts_as_a_uniform_average(tiny_backbones, model_type):
    """A checkpoint saved without a weighted layer sum (every hub encoder) gets ``layer_weights`` = 1 / L.

    transformers 5 leaves them as uninitialised memory for wav2vec2, wavlm and data2vec-audio (NaN after one
    step on some machines), while hubert and whisper initialise them.
    """
    for _ in range(3):  # fresh allocations each time: uninitialised memory differs between loads
        model, _ = load_backbone(str(tiny_backbones[model_type]), LABELS, weighted_layer_sum=True)
        weights = model.layer_weights.detach()
        torch.testing.assert_close(weights, torch.full_like(weights, 1.0 / weights.numel()), rtol=0, atol=0)
    model, fe = load_backbone(str(tiny_backbones[model_type]), LABELS, weighted_layer_sum=True)
    assert torch.isfinite(model(**batch_for(fe)).logits).all()


def test_settings_are_validated_and_weighted_sum_defaults_by_mode():
    assert FinetuneSettings(mode="frozen").weighted_layer_sum is True
    assert FinetuneSettings(mode="lora").weighted_layer_sum is False
    with pytest.raises(ValueError, match="--finetune_mode 'adapter' is not valid; choose one of lora, full, frozen"):
        FinetuneSettings(mode="adapter")
    with pytest.raises(ValueError, match="--lora_rank must be at least 1, got 0"):
        FinetuneSettings(lora_rank=0)
    with pytest.raises(ValueError, match="--lora_dropout"):
        FinetuneSettings(lora_dropout=1.0)
    assert FinetuneSettings(lora_target_modules=["q_proj"]).target_modules("whisper") == ["q_proj"]


def test_unsupported_model_type_and_missing_checkpoint_are_clear_errors(tmp_path):
    from transformers import ASTConfig

    ASTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37).save_pretrained(
        tmp_path / "ast"
    )
    with pytest.raises(ValueError, match="model type 'audio-spectrogram-transformer' is not supported.*wav2vec2"):
        load_backbone(str(tmp_path / "ast"), LABELS)
    with pytest.raises(OSError, match="--model_name_or_path .*nowhere"):
        load_backbone(str(tmp_path / "nowhere"), LABELS)


def test_lora_on_a_wav2vec2_base_sized_model_trains_under_one_percent_of_the_backbone():
    model = AutoModelForAudioClassification.from_config(Wav2Vec2Config(num_labels=8))  # wav2vec2-base shape
    params = count_parameters(apply_finetune_mode(model, FinetuneSettings(mode="lora")))
    assert 90e6 < params["backbone"] < 100e6
    assert 0 < params["trainable_backbone_share"] <= 0.01
    assert params["trainable"] == params["trainable_backbone"] + params["head"]


@pytest.mark.parametrize("model_type", ["wav2vec2", "whisper"])
def test_adapter_round_trip_and_merged_export(tiny_backbones, tmp_path, model_type):
    path = tiny_backbones[model_type]
    model, fe = load_backbone(str(path), LABELS, weighted_layer_sum=True, whisper_window_s=2)
    model = apply_finetune_mode(model, FinetuneSettings(mode="lora"))
    randomize_lora(model)
    model.eval()
    batch = batch_for(fe)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        logits = model(**inputs).logits

    save_adapter(model, tmp_path / "adapter")
    base, _ = load_backbone(str(path), LABELS, weighted_layer_sum=True, whisper_window_s=2)
    reloaded = load_adapter(base, tmp_path / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, logits, atol=1e-5, rtol=0)

    diff = export_merged(reloaded, fe, tmp_path / "merged", batch)
    assert diff is not None and diff <= 1e-4
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    merged = AutoModelForAudioClassification.from_pretrained(tmp_path / "merged").eval()
    assert not isinstance(merged, PeftModel) and merged.config.id2label[7] == "surprised"
    with torch.no_grad():
        torch.testing.assert_close(merged(**inputs).logits, logits, atol=1e-4, rtol=0)

    clf = pipeline("audio-classification", model=str(tmp_path / "merged"))
    wav = batch["input_values"][0].numpy() if "input_values" in batch else np.zeros(8000, dtype=np.float32)
    out = clf(wav, top_k=None)
    assert {o["label"] for o in out} == set(LABELS)
    assert abs(sum(o["score"] for o in out) - 1) < 1e-4


def test_merged_export_loads_in_a_process_without_peft(tiny_backbones, tmp_path):
    model, fe = load_backbone(str(tiny_backbones["wav2vec2"]), LABELS)
    model = apply_finetune_mode(model, FinetuneSettings(mode="lora"))
    randomize_lora(model)
    export_merged(model, fe, tmp_path / "merged")
    code = (
        "import sys; sys.modules['peft'] = None; sys.modules['ser_hf'] = None\n"
        "import numpy as np\n"
        "from transformers import pipeline\n"
        f"clf = pipeline('audio-classification', model={str(tmp_path / 'merged')!r})\n"
        "print(clf(np.zeros(16000, dtype=np.float32))[0]['label'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] in LABELS


def test_whisper_window_shortens_padding_and_positions(tiny_backbones, tmp_path):
    model, fe = load_backbone(str(tiny_backbones["whisper"]), LABELS, whisper_window_s=3)
    assert fe.n_samples == 3 * 16000 and fe.nb_max_frames == 300
    assert model.config.max_source_positions == 150 and model.encoder.embed_positions.num_embeddings == 150
    full, full_fe = load_backbone(str(tiny_backbones["whisper"]), LABELS, whisper_window_s=0)  # 0: keep 30 s
    assert full_fe.n_samples == 30 * 16000
    torch.testing.assert_close(model.encoder.embed_positions.weight, full.encoder.embed_positions.weight[:150])

    # a 0.5 s clip is padded, a 5 s clip cropped, both to the 3 s window
    batch = batch_for(fe, seconds=(0.5, 5.0))
    assert batch["input_features"].shape == (2, 80, 300)
    model.eval()
    with torch.no_grad():
        logits = model(input_features=batch["input_features"]).logits
    assert logits.shape == (2, 8)

    model.save_pretrained(tmp_path / "w")
    fe.save_pretrained(tmp_path / "w")
    clf = pipeline("audio-classification", model=str(tmp_path / "w"))
    assert clf.feature_extractor.n_samples == 3 * 16000
    assert len(clf(np.zeros(16000 * 4, dtype=np.float32), top_k=2)) == 2
    with pytest.raises(ValueError, match="--whisper_window_s must be a whole number of seconds in 1..30, got 2.5"):
        load_backbone(str(tiny_backbones["whisper"]), LABELS, whisper_window_s=2.5)


def test_gradient_checkpointing_with_lora_gives_the_same_adapter_gradients(tiny_backbones):
    model, fe = load_backbone(str(tiny_backbones["wav2vec2"]), LABELS)
    model.config.layerdrop = 0.0  # no randomly skipped layers: every adapter must get a gradient
    model = apply_finetune_mode(model, FinetuneSettings(mode="lora"))
    randomize_lora(model)
    model.train()
    batch = batch_for(fe, seconds=(0.5, 0.5))

    def adapter_grads():
        model.zero_grad()
        torch.manual_seed(0)  # same dropout and SpecAugment time masks (drawn with numpy) in both runs
        np.random.seed(0)
        model(**batch).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and "lora_" in n}

    plain = adapter_grads()
    model.activation_checkpointing_enable()  # what TrainingArguments(gradient_checkpointing=True) calls
    assert model.get_base_model().is_gradient_checkpointing
    checkpointed = adapter_grads()
    assert plain.keys() == checkpointed.keys() and len(plain) == 16  # 2 layers x q/k/v/out x A/B
    for name, grad in plain.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(checkpointed[name], grad, atol=1e-6, rtol=1e-4)


def test_tiny_config_is_tiny():
    cfg = tiny_backbone_config("hubert")
    assert cfg.hidden_size == 32 and cfg.num_labels == 2

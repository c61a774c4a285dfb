"""scripts/finetune.py main() with pretrained backbones (tiny random checkpoints), one process and two."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForAudioClassification, pipeline

from ser_hf.training import main

from .conftest import BACKBONE_TYPES, quick_run_args

pytestmark = pytest.mark.slow  # trains real (tiny) models end to end

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "ravdess_wav2vec2_lora.yaml"


def args(data_dir, cache_dir, out, model_dir, *extra):
    return quick_run_args(
        CONFIG.name,
        data_dir,
        cache_dir,
        out,
        "--model_name_or_path",
        str(model_dir),
        *"--per_device_train_batch_size 4 --warmup_steps 0 --learning_rate 0.01 --whisper_window_s 1".split(),
        *extra,
    )


@pytest.mark.parametrize("model_type", BACKBONE_TYPES)
def test_lora_run_per_backbone_writes_adapter_and_merged_export(
    ravdess_dir, ravdess_cache, tiny_backbones, tmp_path, model_type
):
    out = tmp_path / "run"
    metrics = main(args(ravdess_dir, ravdess_cache, out, tiny_backbones[model_type]))
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "split.json", "metrics.json"):
        assert (out / name).exists(), name
    assert (out / "adapter" / "adapter_config.json").exists()
    assert (out / "adapter" / "adapter_model.safetensors").exists()
    assert metrics["model"]["finetune_mode"] == "lora" and metrics["model"]["lora"]["rank"] == 8
    assert 0 < metrics["parameters"]["trainable"] < metrics["parameters"]["total"]
    assert metrics["runtime"]["export_max_abs_logit_diff"] <= 1e-4
    assert json.loads((out / "metrics.json").read_text())["parameters"] == metrics["parameters"]
    model = AutoModelForAudioClassification.from_pretrained(out)
    assert model.config.model_type == model_type and model.config.id2label[4] == "angry"
    clf = pipeline("audio-classification", model=str(out))
    assert clf(np.zeros(8000, dtype=np.float32), top_k=1)[0]["label"] in metrics["label_names"]


@pytest.mark.parametrize(("model_type", "mode"), [("hubert", "full"), ("whisper", "frozen"), ("wavlm", "frozen")])
def test_full_and_frozen_modes_save_a_plain_checkpoint(
    ravdess_dir, ravdess_cache, tiny_backbones, tmp_path, model_type, mode
):
    out = tmp_path / "run"
    metrics = main(args(ravdess_dir, ravdess_cache, out, tiny_backbones[model_type], "--finetune_mode", mode))
    assert not (out / "adapter").exists()
    assert metrics["model"]["finetune_mode"] == mode
    assert metrics["model"]["weighted_layer_sum"] is (mode == "frozen")
    params = metrics["parameters"]
    if mode == "frozen":
        assert params["trainable"] == params["head"] and params["trainable_backbone"] == 0
    else:
        assert params["trainable_backbone"] > 0.5 * params["backbone"]
    model = AutoModelForAudioClassification.from_pretrained(out)
    assert model.config.use_weighted_layer_sum is (mode == "frozen")


def test_lora_with_weighted_layer_sum_keeps_the_layer_weights(ravdess_dir, ravdess_cache, tiny_backbones, tmp_path):
    out = tmp_path / "run"
    main(args(ravdess_dir, ravdess_cache, out, tiny_backbones["wav2vec2"], "--weighted_layer_sum", "true"))
    extra = load_file(out / "adapter" / "extra_trainable.safetensors")
    (name,) = extra
    assert name.endswith("layer_weights")
    trained = extra[name]
    assert not torch.allclose(trained, torch.full_like(trained, 1 / trained.numel()))  # moved from its init
    merged = AutoModelForAudioClassification.from_pretrained(out)
    torch.testing.assert_close(merged.layer_weights.detach(), trained)


def test_sampling_rate_mismatch_is_a_clear_error(ravdess_dir, ravdess_cache, tiny_backbones, tmp_path):
    with pytest.raises(ValueError, match=r"--sampling_rate 8000 does not match the feature extractor .* \(16000 Hz\)"):
        main(args(ravdess_dir, ravdess_cache, tmp_path / "run", tiny_backbones["wav2vec2"], "--sampling_rate", "8000"))


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate CLI not on PATH")
@pytest.mark.parametrize("cached", [False, True], ids=["today", "cached_layers"])
def test_two_process_cpu_run_with_gloo(ravdess_dir, ravdess_cache, tiny_backbones, tmp_path, cached):
    """The distributed path: accelerate starts 2 CPU processes that train together over gloo (DDP); with
    --adapt_top_layers the main process fills the hidden-state cache and the other reads it."""
    out = tmp_path / "run"
    extra = ["--adapt_top_layers", "1", "--feature_cache_dir", str(tmp_path / "hidden")] if cached else []
    cmd = [
        "accelerate",
        "launch",
        "--config_file",
        str(ROOT / "configs" / "accelerate" / "cpu_2proc.yaml"),
        str(ROOT / "scripts" / "finetune.py"),
        *args(ravdess_dir, ravdess_cache, out, tiny_backbones["whisper"]),
        "--use_cpu",
        "true",
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["runtime"]["world_size"] == 2
    # both processes trained (each logged its fold header), only the main process exported
    assert done.stderr.count("ser_hf.training.fold: fold 0: train 1080") == 2
    assert done.stderr.count("merged LoRA export") == 1
    assert (out / "adapter" / "adapter_model.safetensors").exists()
    if cached:  # one process built the rows, the other found them all
        built = [line for line in done.stderr.splitlines() if "rows built in" in line]
        assert len(built) == 2 and sum(" 0 rows built" in line for line in built) == 1, built

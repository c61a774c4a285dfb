"""What a model is, for the run record and the model card: parameter counts, model and preprocessing descriptions.

These read the model and its feature extractor (peft's adapter config included, through
:mod:`ser_hf.models.pretrained`), so training and the record never reach into peft or transformers internals.
"""

from __future__ import annotations

import torch

from ..audio import fixed_window
from .pretrained import HEAD_MODULES, FinetuneSettings, lora_settings


def count_parameters(model: torch.nn.Module) -> dict:
    """Parameter counts: ``trainable``, ``total``, ``trainable_share`` (trainable / total), and the split
    between the classification head (projector, classifier, layer weights) and the backbone:
    ``head``, ``backbone``, ``trainable_backbone``, ``trainable_backbone_share`` (trainable backbone / backbone).

    A model without those head modules (the mel-CNN) counts everything as backbone; peft's frozen copies of the
    original head (``original_module``) are not counted, as the exported model does not hold them.
    """

    def is_head(name: str) -> bool:
        name = name.removeprefix("base_model.model.")
        return name.split(".")[0] in (*HEAD_MODULES, "layer_weights")

    counts = {"trainable": 0, "total": 0, "head": 0, "backbone": 0, "trainable_backbone": 0}
    for name, p in model.named_parameters():
        if ".original_module." in name:
            continue
        n = p.numel()
        counts["total"] += n
        counts["trainable"] += n if p.requires_grad else 0
        if is_head(name):
            counts["head"] += n
        else:
            counts["backbone"] += n
            counts["trainable_backbone"] += n if p.requires_grad else 0
    counts["trainable_share"] = counts["trainable"] / max(counts["total"], 1)
    counts["trainable_backbone_share"] = counts["trainable_backbone"] / max(counts["backbone"], 1)
    return counts


MEL_CNN_SETTINGS = ("n_mels", "channels", "normalize", "pooling", "freq_pooling", "dropout")
"""The mel-CNN's architecture and feature settings that a run record keeps (and ``--resume_folds`` compares)."""


def mel_cnn_settings(config) -> dict:
    """:data:`MEL_CNN_SETTINGS` of a ``MelCNNConfig`` or of the training arguments (``freq_pooling`` ``"mean"``
    for checkpoints made before it existed)."""
    defaults = {"freq_pooling": "mean"}
    return {k: getattr(config, k, defaults.get(k)) for k in MEL_CNN_SETTINGS}


def describe_model(
    model: torch.nn.Module, base_model: str | None = None, finetune: FinetuneSettings | None = None
) -> dict:
    """``family`` (``mel_cnn`` or ``pretrained``), ``model_type`` and, for a pretrained backbone, ``base_model``
    (the hub id or folder it was loaded from), ``finetune_mode``, ``weighted_layer_sum`` and the LoRA settings
    actually applied (rank, alpha, dropout, target modules, read from the adapter config)."""
    config = getattr(model, "config", None) or model.get_base_model().config
    if config.model_type == "mel_cnn":
        frames = {"win_length": config.win_length, "hop_length": config.hop_length}  # samples, for the card
        return {"family": "mel_cnn", "model_type": "mel_cnn", **mel_cnn_settings(config), **frames}
    desc = {"family": "pretrained", "model_type": config.model_type, "base_model": base_model}
    if finetune is not None:
        desc.update(finetune_mode=finetune.mode, weighted_layer_sum=finetune.weighted_layer_sum)
        if finetune.adapt_top_layers is not None:
            desc["adapt_top_layers"] = finetune.adapt_top_layers
    lora = lora_settings(model)
    if lora is not None:
        desc["lora"] = lora
    return desc


def describe_preprocessing(feature_extractor) -> dict:
    """What is done to a clip before the model sees it at evaluation time, as its feature extractor (saved in
    ``preprocessor_config.json``, read by ``pipeline``) does it: ``sampling_rate`` (Hz; inputs are mono),
    ``trim_db`` (silence trim, dB below the peak, or ``None``), ``center_crop_s`` (seconds, or ``None``),
    ``window_s`` (fixed input window of Whisper-type extractors: shorter clips are padded, longer ones keep
    their first ``window_s`` seconds; ``None`` for variable-length inputs) and ``feature_extractor`` (class)."""
    fe = feature_extractor
    fixed = fixed_window(fe)
    return {
        "feature_extractor": type(fe).__name__,
        "sampling_rate": int(fe.sampling_rate),
        "trim_db": getattr(fe, "trim_db", None),
        "center_crop_s": getattr(fe, "center_crop_s", None),
        "window_s": fixed / fe.sampling_rate if fixed else None,
    }

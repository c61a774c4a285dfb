"""Cached-layers training: a pretrained encoder split at a cut layer, the bottom run once per clip, the top trained.

With ``--adapt_top_layers K`` an encoder of ``N`` layers is cut at layer ``c = N - K``: the bottom (the CNN or
log-mel front end, the positional embedding and layers ``0 .. c-1``) is frozen, run once per clip and augmentation
view, and its output (the input of layer ``c``, ``(num_frames, hidden_size)``) cached
(:mod:`ser_hf.feature_cache`); training runs only layers ``c .. N-1`` (LoRA or fully trained), the final layer norm
where the model has one, and the head. Sampath et al., ICASSP 2025 (https://arxiv.org/abs/2503.03756) trained only
the last layers of a speech transformer from cached hidden states and matched full fine-tuning.

``K = 0`` is a head over the frozen encoder: a learned softmax-weighted sum of every hidden layer (SUPERB: Yang et
al. 2021; EmoBox: Ma et al. 2024, https://arxiv.org/abs/2406.07162), projector, mean pooling and classifier. The
projector is linear and pooling is a mean, so the head over each layer's mean over frames,
``(num_layers + 1, hidden_size)`` per clip, gives exactly the logits of the head over the frame sequences: the
cache holds the pooled layers.

The modules trained here are the full model's own (shared, not copied), so after training the full model holds the
trained weights and is saved as today: LoRA merged, a plain transformers checkpoint that ``pipeline()`` loads.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

CACHED_MODEL_TYPES = ("whisper", "wav2vec2", "hubert", "data2vec-audio")
"""Model types whose encoder layers can be run from a cached hidden state (``K >= 1``). WavLM is left out: its
layers pass a relative position bias computed in the first layer from one to the next, which the cut would have to
cache as well. ``K = 0`` (pooled layers) works for every backbone of :data:`ser_hf.models.pretrained.BACKBONES`."""


def base_of(model) -> nn.Module:
    """The transformers model under a peft wrapper (``model`` itself otherwise)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def encoder_of(model) -> nn.Module:
    """The transformer encoder (the module holding ``layers``) of an audio classification model."""
    base = base_of(model)
    if base.config.model_type == "whisper":
        return base.encoder
    return getattr(base, base.base_model_prefix).encoder


def num_encoder_layers(model) -> int:
    """Number of transformer layers ``N`` of the model's encoder."""
    return len(encoder_of(model).layers)


def cut_layer(model, adapt_top_layers: int) -> int:
    """The index ``c = N - K`` of the first adapted layer (``N`` for ``K = 0``).

    Raises:
        ValueError: ``K`` is negative or above ``N``, or ``K >= 1`` for a model type outside
            :data:`CACHED_MODEL_TYPES` (the message names the flag, the value and what is valid).
    """
    n = num_encoder_layers(model)
    model_type = base_of(model).config.model_type
    if not 0 <= adapt_top_layers <= n:
        raise ValueError(f"--adapt_top_layers {adapt_top_layers}: the encoder has {n} layers; give 0..{n}")
    if adapt_top_layers and model_type not in CACHED_MODEL_TYPES:
        raise ValueError(
            f"--adapt_top_layers {adapt_top_layers}: model type {model_type!r} cannot be cut above its first layer "
            f"(supported for K >= 1: {', '.join(CACHED_MODEL_TYPES)}); use --adapt_top_layers 0 or leave it unset"
        )
    return n - adapt_top_layers


def final_norm(model) -> nn.Module | None:
    """The encoder's layer norm after its last layer: Whisper's and the stable-layer-norm wav2vec2 family's
    (``do_stable_layer_norm``); ``None`` for the others, whose ``encoder.layer_norm`` runs before the first layer."""
    base = base_of(model)
    if base.config.model_type == "whisper" or getattr(base.config, "do_stable_layer_norm", False):
        return encoder_of(model).layer_norm
    return None


class _Stop(Exception):
    """Raised by the hook that captured the cut layer's input, to skip the layers above it."""


@torch.no_grad()
def bottom_states(model, inputs: dict, cut: int) -> torch.Tensor:
    """The input of encoder layer ``cut``: what the frozen bottom computes, in evaluation mode (no dropout).

    The model's own forward runs (front end, positions, layers ``0 .. cut-1``) and stops once layer ``cut`` is
    reached (a forward pre-hook), so no layer above the cut is computed.

    Args:
        inputs: model inputs of the feature extractor (``input_features`` ``(batch_size, n_mels, num_frames)`` or
            ``input_values`` ``(batch_size, num_samples)``, ``attention_mask``).
        cut: ``0 .. N-1``.

    Returns:
        ``(batch_size, num_frames, hidden_size)`` float32.
    """
    layer = encoder_of(model).layers[cut]
    captured = {}

    def hook(module, args, kwargs):
        captured["states"] = args[0] if args else kwargs["hidden_states"]
        raise _Stop

    handle = layer.register_forward_pre_hook(hook, with_kwargs=True)
    was_training = model.training
    model.eval()
    try:
        base_of(model)(**inputs)
    except _Stop:
        pass
    finally:
        handle.remove()
        model.train(was_training)
    return captured["states"].float()


@torch.no_grad()
def pooled_layer_states(model, inputs: dict) -> torch.Tensor:
    """Every hidden layer of the frozen encoder averaged over frames, in evaluation mode.

    Returns:
        ``(batch_size, num_layers + 1, hidden_size)`` float32: the embedding output and each layer's output (the
        last after the final layer norm where the model has one), as ``output_hidden_states`` returns them.
        Clips of a batch must not be padded (one clip at a time for variable-length inputs).
    """
    base = base_of(model)
    was_training = model.training
    model.eval()
    try:
        if base.config.model_type == "whisper":
            out = base.encoder(inputs["input_features"], output_hidden_states=True)
        else:
            out = getattr(base, base.base_model_prefix)(**inputs, output_hidden_states=True)
    finally:
        model.train(was_training)
    return torch.stack([h.mean(dim=1) for h in out.hidden_states], dim=1).float()


def _loss(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
    return None if labels is None else nn.functional.cross_entropy(logits, labels)


class TopLayersClassifier(nn.Module):
    """Encoder layers ``cut .. N-1`` (and the final layer norm where the model has one) plus the head, run from the
    cached input of layer ``cut``. Its modules are the full model's own (shared): training this trains the full
    model. LayerDrop applies to the top layers in training, as in the full model.

    Args:
        model: the full audio classification model (plain or a peft ``PeftModel``).
        cut: first adapted layer, ``1 .. N-1`` (``0`` too: the embedding output is cached).
    """

    def __init__(self, model, cut: int):
        super().__init__()
        base = base_of(model)
        encoder = encoder_of(model)
        self.config = base.config
        self.model_type = base.config.model_type
        self.layers = nn.ModuleList(list(encoder.layers)[cut:])
        self.final_norm = final_norm(model)
        self.projector, self.classifier = base.projector, base.classifier
        self.layerdrop = float(getattr(base.config, "encoder_layerdrop", getattr(base.config, "layerdrop", 0.0)) or 0)
        self.encoder_config = encoder.config

    def forward(self, hidden_states, frame_mask=None, labels=None, **kwargs) -> SequenceClassifierOutput:
        """Args:
        hidden_states: cached input of layer ``cut``, ``(batch_size, num_frames, hidden_size)``.
        frame_mask: ``(batch_size, num_frames)`` 1 for real frames, 0 for padding (``None``: no padding).
        labels: ``(batch_size,)`` class indices, for the loss.
        """
        mask4d = None
        if frame_mask is not None:
            from transformers.masking_utils import create_bidirectional_mask

            frame_mask = frame_mask.bool()
            hidden_states = hidden_states.masked_fill(~frame_mask.unsqueeze(-1), 0.0)
            mask4d = create_bidirectional_mask(
                config=self.encoder_config, inputs_embeds=hidden_states, attention_mask=frame_mask.long()
            )
        for layer in self.layers:
            if self.training and self.layerdrop > 0 and torch.rand([]) < self.layerdrop:
                continue
            if self.model_type == "whisper":
                hidden_states = layer(hidden_states, None)
            else:
                hidden_states = layer(hidden_states, attention_mask=mask4d)
        if self.final_norm is not None:
            hidden_states = self.final_norm(hidden_states)
        hidden_states = self.projector(hidden_states)
        if frame_mask is None:
            pooled = hidden_states.mean(dim=1)
        else:  # the masked mean of Wav2Vec2ForSequenceClassification
            weights = frame_mask.unsqueeze(-1).to(hidden_states.dtype)
            pooled = (hidden_states * weights).sum(dim=1) / weights.sum(dim=1)
        logits = self.classifier(pooled)
        return SequenceClassifierOutput(loss=_loss(logits, labels), logits=logits)


class PooledLayersClassifier(nn.Module):
    """The weighted-layer-sum head of a frozen encoder (``K = 0``) over cached pooled layers: ``softmax(layer_weights)``
    over the layers, the projector and the classifier; the full model's own modules (shared).

    Raises:
        ValueError: the model was not built with ``use_weighted_layer_sum`` (``--weighted_layer_sum``).
    """

    def __init__(self, model):
        super().__init__()
        base = base_of(model)
        if not getattr(base.config, "use_weighted_layer_sum", False):
            raise ValueError("--adapt_top_layers 0 trains a weighted layer sum: the model needs --weighted_layer_sum")
        self.config = base.config
        self.layer_weights = base.layer_weights
        self.projector, self.classifier = base.projector, base.classifier

    def forward(self, layer_states, labels=None, **kwargs) -> SequenceClassifierOutput:
        """Args:
        layer_states: ``(batch_size, num_layers + 1, hidden_size)`` per-layer means over frames.
        labels: ``(batch_size,)`` class indices, for the loss.
        """
        weights = nn.functional.softmax(self.layer_weights, dim=-1)
        pooled = (layer_states * weights.view(1, -1, 1)).sum(dim=1)
        logits = self.classifier(self.projector(pooled))
        return SequenceClassifierOutput(loss=_loss(logits, labels), logits=logits)


def cached_classifier(model, adapt_top_layers: int) -> nn.Module:
    """The module trained from the cache: :class:`PooledLayersClassifier` for ``K = 0``, else
    :class:`TopLayersClassifier` from layer ``N - K``."""
    cut = cut_layer(model, adapt_top_layers)
    return PooledLayersClassifier(model) if adapt_top_layers == 0 else TopLayersClassifier(model, cut)


def restrict_to_top_layers(model, adapt_top_layers: int) -> None:
    """``--finetune_mode full`` with ``--adapt_top_layers K``: only layers ``N-K .. N-1``, the final layer norm and
    the head keep ``requires_grad`` (in place)."""
    base = base_of(model)
    cut = cut_layer(model, adapt_top_layers)
    keep = [*list(encoder_of(model).layers)[cut:], base.projector, base.classifier]
    norm = final_norm(model)
    if norm is not None:
        keep.append(norm)
    model.requires_grad_(False)
    for module in keep:
        module.requires_grad_(True)

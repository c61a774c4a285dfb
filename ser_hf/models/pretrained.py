"""Pretrained speech transformers (wav2vec2, HuBERT, WavLM, data2vec-audio, Whisper encoder) for emotion
classification, fine-tuned in one of three modes, with LoRA adapters from ``peft``.

Modes (``finetune_mode``):

- ``lora``: low-rank adapters (Hu et al. 2021, https://arxiv.org/abs/2106.09685) on the attention projections
  (optionally the feed-forward layers too, as PEFT-SER does: Feng & Narayanan 2023,
  https://arxiv.org/abs/2306.05350); the projector, classifier (and layer weights) are trained in full; every
  other weight, the CNN feature encoder included, is frozen.
- ``full``: every weight except the CNN feature encoder is trained.
- ``frozen``: only the head is trained (projector, classifier and, by default, a learned softmax-weighted sum
  of all hidden layers as in SUPERB: Yang et al. 2021, https://arxiv.org/abs/2105.01051; and EmoBox: Ma et al.
  2024, https://arxiv.org/abs/2406.07162).

peft traps handled here: no ``task_type`` (peft's ``SEQ_CLS`` feeds ``input_ids``, which audio models do not
take); ``target_modules`` named per model type; the head in ``modules_to_save``. peft's ``modules_to_save``
cannot hold a bare parameter, so the weighted-layer-sum weights (``layer_weights``) are saved beside the
adapter in :data:`EXTRA_WEIGHTS_NAME` and restored by :func:`load_adapter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification, WhisperFeatureExtractor

FINETUNE_MODES = ("lora", "full", "frozen")
HEAD_MODULES = ("projector", "classifier")
EXTRA_WEIGHTS_NAME = "extra_trainable.safetensors"

_ATTENTION = ("q_proj", "k_proj", "v_proj", "out_proj")
_W2V_FFN = ("intermediate_dense", "output_dense")


@dataclass(frozen=True)
class BackboneSpec:
    """Where LoRA goes in one model type and what its CNN feature encoder is.

    Args:
        attention: names (suffixes) of the self-attention projections.
        ffn: names of the feed-forward layers.
        feature_encoder: attribute paths of the convolutional front end, frozen in ``lora`` and ``full``.
    """

    attention: tuple[str, ...]
    ffn: tuple[str, ...]
    feature_encoder: tuple[str, ...]


BACKBONES: dict[str, BackboneSpec] = {
    "wav2vec2": BackboneSpec(_ATTENTION, _W2V_FFN, ("wav2vec2.feature_extractor",)),
    "hubert": BackboneSpec(_ATTENTION, _W2V_FFN, ("hubert.feature_extractor",)),
    "wavlm": BackboneSpec(_ATTENTION, _W2V_FFN, ("wavlm.feature_extractor",)),
    "data2vec-audio": BackboneSpec(_ATTENTION, _W2V_FFN, ("data2vec_audio.feature_extractor",)),
    "whisper": BackboneSpec(_ATTENTION, ("fc1", "fc2"), ("encoder.conv1", "encoder.conv2")),
}


@dataclass
class FinetuneSettings:
    """How a pretrained backbone is adapted (validated on creation).

    Args:
        mode: one of :data:`FINETUNE_MODES`.
        lora_rank / lora_alpha / lora_dropout: LoRA rank r, scaling alpha (update scaled by alpha / r) and
            dropout on the adapter input.
        lora_target_modules: module names to adapt; ``None`` uses the model type's attention projections (plus
            its feed-forward layers when ``lora_ffn``).
        lora_ffn: add the feed-forward layers to the default targets.
        weighted_layer_sum: classify a learned softmax-weighted sum of all hidden layers instead of the last
            one; ``None`` means on for ``frozen`` and off otherwise.
        freeze_feature_encoder: keep the CNN front end frozen in ``full`` mode (always frozen otherwise).
        adapt_top_layers: cached-layers training (:mod:`ser_hf.models.cached`): only the top ``K`` encoder layers
            are adapted (LoRA in ``lora`` mode, every weight in ``full``), the layers below stay frozen; ``0`` is
            the ``frozen`` mode's weighted-layer-sum head. ``None``: every layer as the mode says.

    Raises:
        ValueError: an unknown mode, a rank below 1, an alpha not above 0, a dropout outside [0, 1), a negative
            ``adapt_top_layers``, ``0`` with another mode than ``frozen``, ``K >= 1`` with ``frozen``, or ``K >= 1``
            with a weighted layer sum (the layers below the cut are not run in training).
    """

    mode: str = "lora"
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | None = None
    lora_ffn: bool = False
    weighted_layer_sum: bool | None = None
    freeze_feature_encoder: bool = True
    adapt_top_layers: int | None = None

    def __post_init__(self):
        if self.mode not in FINETUNE_MODES:
            raise ValueError(f"--finetune_mode {self.mode!r} is not valid; choose one of {', '.join(FINETUNE_MODES)}")
        if self.lora_rank < 1:
            raise ValueError(f"--lora_rank must be at least 1, got {self.lora_rank}")
        if self.lora_alpha <= 0:
            raise ValueError(f"--lora_alpha must be positive, got {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"--lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.weighted_layer_sum is None:
            self.weighted_layer_sum = self.mode == "frozen"
        k = self.adapt_top_layers
        if k is None:
            return
        if k < 0:
            raise ValueError(f"--adapt_top_layers must be 0 or more (layers counted from the top), got {k}")
        if k == 0 and self.mode != "frozen":
            raise ValueError(
                f"--adapt_top_layers 0 trains only the head over the frozen encoder: pass --finetune_mode frozen "
                f"(got {self.mode!r})"
            )
        if k > 0 and self.mode == "frozen":
            raise ValueError(f"--adapt_top_layers {k} adapts layers: pass --finetune_mode lora or full, not frozen")
        if k > 0 and self.weighted_layer_sum:
            raise ValueError(
                f"--adapt_top_layers {k} runs only the top {k} layers in training: a weighted layer sum over every "
                "layer needs them all; leave --weighted_layer_sum off (or use --adapt_top_layers 0)"
            )

    def target_modules(self, model_type: str) -> list[str]:
        """LoRA target module names for ``model_type`` (see :data:`BACKBONES`)."""
        if self.lora_target_modules:
            return list(self.lora_target_modules)
        spec = backbone_spec(model_type)
        return list(spec.attention + (spec.ffn if self.lora_ffn else ()))


def backbone_spec(model_type: str) -> BackboneSpec:
    """The :class:`BackboneSpec` of a transformers ``model_type``.

    Raises:
        ValueError: the model type is not one of :data:`BACKBONES` (the message lists them).
    """
    if model_type not in BACKBONES:
        raise ValueError(
            f"model type {model_type!r} is not supported for emotion fine-tuning; supported: {', '.join(BACKBONES)}"
        )
    return BACKBONES[model_type]


def whisper_feature_extractor(fe: WhisperFeatureExtractor, window_s: int) -> WhisperFeatureExtractor:
    """A copy of a Whisper feature extractor that pads / truncates to ``window_s`` seconds instead of 30 s.

    Whisper's encoder expects exactly ``max_source_positions * 2`` mel frames; its feature extractor pads
    every input to 30 s (3000 frames). A 3 s emotion clip then costs 10x its own compute and the mean pooling
    of WhisperForAudioClassification averages mostly padding. With a shorter window the encoder's positional
    table is cut to match (:func:`shorten_whisper_window`); inputs longer than the window are truncated.

    Raises:
        ValueError: ``window_s`` is not a whole number of seconds in 1..30.
    """
    if int(window_s) != window_s or not 1 <= window_s <= 30:
        raise ValueError(f"--whisper_window_s must be a whole number of seconds in 1..30, got {window_s}")
    return WhisperFeatureExtractor(
        feature_size=fe.feature_size,
        sampling_rate=fe.sampling_rate,
        hop_length=fe.hop_length,
        chunk_length=int(window_s),
        n_fft=fe.n_fft,
        padding_value=fe.padding_value,
        dither=getattr(fe, "dither", 0.0),
        return_attention_mask=fe.return_attention_mask,
    )


def shorten_whisper_window(model, fe: WhisperFeatureExtractor) -> None:
    """Cut a Whisper encoder's positional table to the frames ``fe`` produces (in place).

    The encoder's two convolutions (strides 1 and 2) map ``fe.nb_max_frames`` mel frames to half as many
    positions; the sinusoidal embeddings of the first positions are kept unchanged, and
    ``config.max_source_positions`` is updated so the saved checkpoint reloads with the same shape.

    Raises:
        ValueError: the window needs more positions than the checkpoint has.
    """
    encoder = model.encoder
    positions = fe.nb_max_frames // (encoder.conv1.stride[0] * encoder.conv2.stride[0])
    old = encoder.embed_positions
    if positions > old.num_embeddings:
        raise ValueError(
            f"a {fe.chunk_length} s window needs {positions} positions; the model has {old.num_embeddings}"
        )
    new = torch.nn.Embedding(positions, old.embedding_dim, device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(old.weight[:positions])
    new.requires_grad_(False)
    encoder.embed_positions = new
    encoder.max_source_positions = positions
    encoder.config.max_source_positions = positions
    model.config.max_source_positions = positions


def set_head_config(config, label_names: list[str], weighted_layer_sum: bool, classifier_proj_size: int | None):
    """Give a backbone config the emotion head's settings: the labels (``id2label`` / ``label2id``), the weighted
    layer sum (with LayerDrop off) and the projector width."""
    id2label = dict(enumerate(label_names))
    config.num_labels = len(label_names)
    config.id2label = id2label
    config.label2id = {v: k for k, v in id2label.items()}
    config.use_weighted_layer_sum = bool(weighted_layer_sum)
    if weighted_layer_sum:
        # LayerDrop skips layers in training, and transformers 5 then returns fewer hidden states than the
        # weighted sum has weights (a shape error): a weighted layer sum needs every layer
        for key in ("layerdrop", "encoder_layerdrop"):
            if getattr(config, key, 0):
                setattr(config, key, 0.0)
    if classifier_proj_size:
        config.classifier_proj_size = classifier_proj_size


def load_backbone(
    name_or_path: str,
    label_names: list[str],
    weighted_layer_sum: bool = False,
    whisper_window_s: int = 8,
    classifier_proj_size: int | None = None,
    **from_pretrained_kwargs,
):
    """Load a pretrained audio encoder with a new emotion head, and its feature extractor.

    Args:
        name_or_path: hub id (``facebook/wav2vec2-base``) or local folder of any supported model type.
        label_names: class names; stored as ``id2label`` / ``label2id`` in the model config.
        weighted_layer_sum: see :class:`FinetuneSettings`; it turns LayerDrop off (every layer is summed).
        whisper_window_s: Whisper only: input window in whole seconds; ``0`` keeps the checkpoint's 30 s (the
            one "off" value, as for ``--whisper_window_s``).
        classifier_proj_size: width of the projector before the classifier (``None``: the config's).

    Returns:
        ``(model, feature_extractor)``: an ``AutoModelForAudioClassification`` model in float32 and its
        ``AutoFeatureExtractor``.

    Raises:
        OSError: ``name_or_path`` is neither a folder with a checkpoint nor a reachable hub id.
        ValueError: the model type is not supported (:data:`BACKBONES`).
    """
    if whisper_window_s < 0:
        raise ValueError(
            f"--whisper_window_s must be 0 (keep 30 s) or a whole number of seconds, got {whisper_window_s}"
        )
    if Path(name_or_path).is_dir() and not (Path(name_or_path) / "config.json").is_file():
        raise OSError(
            f"--model_name_or_path {name_or_path}: a folder without config.json, so not a checkpoint (a data folder? "
            "the corpus goes to --data_dir)"
        )
    try:
        config = AutoConfig.from_pretrained(name_or_path, **from_pretrained_kwargs)
    except (OSError, ValueError) as e:
        raise OSError(
            f"--model_name_or_path {name_or_path!r}: no checkpoint found (a local folder with config.json, or a "
            f"hub id reachable from here): {e}"
        ) from e
    backbone_spec(config.model_type)
    set_head_config(config, label_names, weighted_layer_sum, classifier_proj_size)
    # ignore_mismatched_sizes: a checkpoint that already has a classifier for another label set gets a new one
    try:
        model, info = AutoModelForAudioClassification.from_pretrained(
            name_or_path,
            config=config,
            dtype=torch.float32,
            ignore_mismatched_sizes=True,
            output_loading_info=True,
            **from_pretrained_kwargs,
        )
    except SafetensorError as e:  # a weights file cut short (an interrupted copy or download)
        raise OSError(
            f"--model_name_or_path {name_or_path}: its weights file cannot be read ({e}); copy it again"
        ) from e
    if weighted_layer_sum and "layer_weights" in info["missing_keys"]:
        # transformers 5 builds the model on the meta device and re-initialises only what each model's
        # _init_weights knows: wav2vec2 / wavlm / data2vec-audio leave a missing layer_weights as torch.empty
        # memory (e.g. 1e36, then NaN after one step). Set the value their __init__ gives: a uniform average.
        with torch.no_grad():
            model.layer_weights.fill_(1.0 / model.layer_weights.numel())
    fe = AutoFeatureExtractor.from_pretrained(name_or_path, **from_pretrained_kwargs)
    if config.model_type == "whisper" and whisper_window_s:
        fe = whisper_feature_extractor(fe, whisper_window_s)
        shorten_whisper_window(model, fe)
    return model, fe


def _freeze_feature_encoder(model, model_type: str) -> None:
    for path in backbone_spec(model_type).feature_encoder:
        model.get_submodule(path).requires_grad_(False)


def apply_finetune_mode(model, settings: FinetuneSettings):
    """Set what trains according to ``settings.mode``; returns the model to train (a ``PeftModel`` for ``lora``).

    Raises:
        ValueError: a LoRA target module name matches nothing in the model (from peft, naming the modules).
    """
    model_type = model.config.model_type
    head = list(HEAD_MODULES)
    top = None  # the adapted layers' indices (cached-layers training), None: every layer
    if settings.adapt_top_layers:
        from .cached import cut_layer, num_encoder_layers

        top = list(range(cut_layer(model, settings.adapt_top_layers), num_encoder_layers(model)))
    if settings.mode == "lora":
        config = LoraConfig(
            r=settings.lora_rank,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules=settings.target_modules(model_type),
            modules_to_save=head,
            bias="none",
            layers_to_transform=top,
            layers_pattern="layers" if top else None,
        )  # no task_type: peft's SEQ_CLS would pass input_ids to an audio model
        model = get_peft_model(model, config)
    elif settings.mode == "frozen":
        model.requires_grad_(False)
        for name in head:
            model.get_submodule(name).requires_grad_(True)
    elif top:
        from .cached import restrict_to_top_layers

        restrict_to_top_layers(model, settings.adapt_top_layers)
    elif settings.freeze_feature_encoder:
        _freeze_feature_encoder(model, model_type)
    layer_weights = getattr(_base(model), "layer_weights", None)
    if layer_weights is not None:
        layer_weights.requires_grad_(True)
    return model


def _base(model):
    return model.get_base_model() if isinstance(model, PeftModel) else model


def is_adapter_model(model) -> bool:
    """Whether ``model`` carries peft adapters (a ``PeftModel``)."""
    return isinstance(model, PeftModel)


def lora_settings(model) -> dict | None:
    """``{"rank", "alpha", "dropout", "target_modules"}`` of a LoRA ``PeftModel`` (``None`` for other models)."""
    if not isinstance(model, PeftModel):
        return None
    cfg = model.peft_config["default"]
    return {
        "rank": cfg.r,
        "alpha": cfg.lora_alpha,
        "dropout": cfg.lora_dropout,
        "target_modules": sorted(cfg.target_modules),
    }


def trainable_parameter_names(model) -> list[str]:
    """Names of the parameters that require gradients, in ``named_parameters`` order."""
    return [n for n, p in model.named_parameters() if p.requires_grad]


def extra_trainable_state(model) -> dict[str, torch.Tensor]:
    """Trainable parameters of a ``PeftModel`` that peft's adapter file does not hold (``layer_weights``)."""
    if not isinstance(model, PeftModel):
        return {}
    return {
        n: p.detach().cpu().contiguous()
        for n, p in model.named_parameters()
        if p.requires_grad and "lora_" not in n and "modules_to_save" not in n
    }


def save_adapter(model: PeftModel, directory: str | Path) -> None:
    """Save the adapter-only artifact: peft's ``adapter_config.json`` + ``adapter_model.safetensors``, plus
    :data:`EXTRA_WEIGHTS_NAME` when the model has trainable parameters outside peft's reach."""
    model.save_pretrained(str(directory))
    save_extra_weights(model, directory)


def save_extra_weights(model, directory: str | Path) -> None:
    """Write :func:`extra_trainable_state` to ``directory`` (nothing when it is empty)."""
    extra = extra_trainable_state(model)
    if extra:
        save_file(extra, str(Path(directory) / EXTRA_WEIGHTS_NAME))


def load_extra_weights(model, directory: str | Path) -> None:
    """Load :data:`EXTRA_WEIGHTS_NAME` from ``directory`` into ``model`` if the file exists.

    Raises:
        KeyError: the file names a parameter the model does not have.
    """
    path = Path(directory) / EXTRA_WEIGHTS_NAME
    if not path.exists():
        return
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in load_file(str(path)).items():
            if name not in params:
                raise KeyError(f"{path}: parameter {name!r} is not in the model")
            params[name].copy_(value)


def load_adapter(base_model, directory: str | Path) -> PeftModel:
    """Attach a saved adapter (see :func:`save_adapter`) to a freshly loaded base model, for inference."""
    model = PeftModel.from_pretrained(base_model, str(directory))
    load_extra_weights(model, directory)
    return model


def export_merged(model, feature_extractor, directory: str | Path, batch: dict | None = None) -> float | None:
    """Save a plain transformers checkpoint to ``directory``: LoRA merged into the base weights, the head
    unwrapped, ``model.safetensors`` + ``config.json`` (with ``id2label``) + the feature extractor. It loads in
    ``pipeline("audio-classification")`` without peft.

    A ``PeftModel`` is merged in place (it is unusable as an adapter model afterwards: save the adapter first).

    Args:
        batch: model inputs (``input_values`` / ``input_features`` ``(batch_size, ...)``); when given, the
            logits before and after merging are compared.

    Returns:
        The largest absolute logit difference between the adapted and the merged model on ``batch`` (``None``
        without a batch).
    """
    was_training = model.training
    model.eval()
    diff = None
    inputs = {k: v for k, v in (batch or {}).items() if k != "labels"}
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in inputs.items()}
    with torch.no_grad():
        before = model(**inputs).logits if inputs else None
        merged = model.merge_and_unload() if isinstance(model, PeftModel) else model
        if before is not None:
            diff = float((merged(**inputs).logits - before).abs().max())
    merged.train(was_training)
    merged.save_pretrained(str(directory))
    feature_extractor.save_pretrained(str(directory))
    return diff

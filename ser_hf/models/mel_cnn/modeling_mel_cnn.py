"""Log-mel CNN for audio classification (self-contained: shipped with checkpoints as remote code)."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.audio_utils import mel_filter_bank
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_mel_cnn import MelCNNConfig


class LogMel(nn.Module):
    """Waveform ``(batch_size, num_samples)`` -> log-mel ``(batch_size, n_mels, num_frames)``.

    ``num_frames = num_samples // hop_length + 1`` (centred STFT, zero-padded at the edges so that a clip
    padded with zeros in a batch gives the same frames as the clip alone). Power spectrogram, Slaney mel
    filter bank from ``transformers.audio_utils.mel_filter_bank``, natural log with a 1e-6 floor.
    """

    def __init__(self, config: MelCNNConfig):
        super().__init__()
        self.n_fft, self.hop, self.win = config.n_fft, config.hop_length, config.win_length
        fbank = mel_filter_bank(
            num_frequency_bins=config.n_fft // 2 + 1,
            num_mel_filters=config.n_mels,
            min_frequency=config.f_min,
            max_frequency=config.f_max or config.sampling_rate / 2,
            sampling_rate=config.sampling_rate,
            norm="slaney",
            mel_scale="slaney",
        )
        self.register_buffer("fbank", torch.tensor(fbank, dtype=torch.float32).T)  # (n_mels, n_freq)
        self.register_buffer("window", torch.hann_window(config.win_length))

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        return torch.div(num_samples, self.hop, rounding_mode="floor") + 1

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        spec = (
            torch.stft(
                wav.float(),
                self.n_fft,
                self.hop,
                self.win,
                self.window,
                center=True,
                pad_mode="constant",
                return_complex=True,
            )
            .abs()
            .pow(2)
        )  # (batch, n_fft // 2 + 1, frames)
        return torch.log(torch.matmul(self.fbank, spec) + 1e-6)  # (batch, n_mels, frames)


class MelCNNPreTrainedModel(PreTrainedModel):
    config_class = MelCNNConfig
    base_model_prefix = "mel_cnn"
    main_input_name = "input_values"

    def _init_weights(self, module):
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class MelCNNForAudioClassification(MelCNNPreTrainedModel):
    r"""Log-mel front end, conv blocks (3x3 conv, batch norm, ReLU, 2x2 max pool), masked global pooling over
    time, dropout and a linear classifier. SpecAugment is applied in training mode only."""

    def __init__(self, config: MelCNNConfig):
        super().__init__(config)
        self.frontend = LogMel(config)
        blocks, c_in = [], 1
        for c_out in config.channels:
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
                )
            )
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.MaxPool2d(2)
        bins = config.n_mels // 2 ** len(config.channels) if config.freq_pooling == "flatten" else 1
        pooled = c_in * bins * (2 if config.pooling == "meanmax" else 1)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(pooled, config.num_labels)
        self.post_init()

    def _spec_augment(self, feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        # feats: (batch, n_mels, frames); masks set to 0 (the normalised mean)
        b, n_mels, t = feats.shape
        c, dev = self.config, feats.device
        keep = torch.ones_like(feats, dtype=torch.bool)
        bins, steps = torch.arange(n_mels, device=dev), torch.arange(t, device=dev)
        for _ in range(c.num_freq_masks):
            width = torch.randint(0, c.freq_mask_width + 1, (b, 1), device=dev)
            start = (torch.rand(b, 1, device=dev) * (n_mels - width + 1)).long()
            keep &= ~((bins >= start) & (bins < start + width))[:, :, None]
        for _ in range(c.num_time_masks):
            width = torch.minimum(torch.randint(0, c.time_mask_width + 1, (b, 1), device=dev), frames[:, None] // 5)
            start = (torch.rand(b, 1, device=dev) * (frames[:, None] - width + 1)).long()
            keep &= ~((steps >= start) & (steps < start + width))[:, None, :]
        return feats * keep

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        r"""
        Args:
            input_values (`torch.FloatTensor` of shape `(batch_size, num_samples)`): mono waveforms at
                `config.sampling_rate`, zero-padded to the longest in the batch.
            attention_mask (`torch.LongTensor` of shape `(batch_size, num_samples)`, *optional*): 1 for real
                samples, 0 for padding; padded frames are left out of normalisation and pooling.
            labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*): class indices; when given, the
                cross-entropy loss is returned.

        Returns:
            `SequenceClassifierOutput` with `logits` of shape `(batch_size, num_labels)`, `loss` when labels are
            given, and `hidden_states` = `(pooled,)` of shape `(batch_size, pooled_size)` when asked for.
        """
        batch, num_samples = input_values.shape
        if attention_mask is None:
            lengths = torch.full((batch,), num_samples, device=input_values.device)
        else:
            lengths = attention_mask.sum(-1)
        feats = self.frontend(input_values)  # (batch, n_mels, frames)
        frames = self.frontend.num_frames(lengths).clamp(max=feats.shape[-1])
        valid = (torch.arange(feats.shape[-1], device=feats.device)[None] < frames[:, None])[:, None, :]
        if self.config.normalize == "utterance":
            n = frames[:, None, None].to(feats.dtype)
            mean = (feats * valid).sum(-1, keepdim=True) / n
            var = (((feats - mean) * valid) ** 2).sum(-1, keepdim=True) / n
            feats = (feats - mean) / torch.sqrt(var + 1e-5)
        elif self.config.normalize == "utterance_global":
            n = (frames * feats.shape[1])[:, None, None].to(feats.dtype)
            mean = (feats * valid).sum((1, 2), keepdim=True) / n
            var = (((feats - mean) * valid) ** 2).sum((1, 2), keepdim=True) / n
            feats = (feats - mean) / torch.sqrt(var + 1e-5)
        feats = feats * valid
        if self.training and self.config.spec_augment:
            feats = self._spec_augment(feats, frames)
        # a clip shorter than the pooling stack (16 frames, 0.15 s at 10 ms hop for 4 blocks) is zero-padded in
        # time; the padding is masked out of pooling below, so longer clips are unaffected
        min_frames = 2 ** len(self.blocks)
        if feats.shape[-1] < min_frames:
            feats = nn.functional.pad(feats, (0, min_frames - feats.shape[-1]))

        x, t_len = feats[:, None], frames  # (batch, 1, n_mels, frames)
        for block in self.blocks:
            # channels-last layout (same values): oneDNN's convolution and pooling run faster on CPU than in NCHW
            x = block(x).contiguous(memory_format=torch.channels_last)  # (batch, channels, mels, time)
            x = self.pool(x)  # (batch, channels, mels / 2, time / 2)
            t_len = torch.div(t_len, 2, rounding_mode="floor").clamp(min=1)
            # zero every frame past the clip's own pooled length, so that the next block's convolution sees what
            # it sees for the clip alone (its zero padding); this includes the frame that pooled a clip's odd
            # last frame with the batch padding, which the clip alone drops
            x = x * (torch.arange(x.shape[-1], device=x.device)[None] < t_len[:, None])[:, None, None, :]
        if self.config.freq_pooling == "flatten":
            x = x.flatten(1, 2)  # (batch, channels * mel bins, time)
        else:
            x = x.mean(2)  # (batch, channels, time)
        t_len = t_len.clamp(max=x.shape[-1])
        mask = (torch.arange(x.shape[-1], device=x.device)[None] < t_len[:, None])[:, None, :]
        pooled = []
        if self.config.pooling in ("mean", "meanmax"):
            pooled.append((x * mask).sum(-1) / t_len[:, None].to(x.dtype))
        if self.config.pooling in ("max", "meanmax"):
            pooled.append(x.masked_fill(~mask, torch.finfo(x.dtype).min).amax(-1))
        pooled = torch.cat(pooled, dim=-1)  # (batch, pooled_size)
        logits = self.classifier(self.dropout(pooled))  # (batch, num_labels)

        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=(pooled,) if output_hidden_states else None
        )

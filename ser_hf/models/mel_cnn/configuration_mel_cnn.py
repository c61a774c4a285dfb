"""Configuration of the log-mel CNN baseline (self-contained: shipped with checkpoints as remote code)."""

from transformers import PretrainedConfig


class MelCNNConfig(PretrainedConfig):
    r"""Configuration of [`MelCNNForAudioClassification`], a 2D CNN over log-mel spectrograms.

    Args:
        sampling_rate (`int`, 16000): input sampling rate in Hz.
        n_fft (`int`, 512): FFT size in samples.
        win_length (`int`, 400): analysis window in samples (25 ms at 16 kHz), Hann.
        hop_length (`int`, 160): frame step in samples (10 ms at 16 kHz).
        n_mels (`int`, 64): mel bands (Slaney mel scale and area normalisation, as librosa's default).
        f_min (`float`, 20.0) / f_max (`float`, None): mel range in Hz (``None``: Nyquist).
        normalize (`str`, "utterance"): ``"utterance"`` standardises every mel band over the utterance's
            valid frames (per-utterance CMVN: removes the utterance's long-term spectrum, e.g. the spectral tilt of
            vocal effort); ``"utterance_global"`` standardises the whole log-mel of the utterance with one mean and
            one standard deviation (removes the recording gain, keeps the spectral shape); ``"none"`` keeps the raw
            log-mel.
        channels (`list[int]`): output channels of the conv blocks (3x3 conv, batch norm, ReLU, 2x2 max pool).
        dropout (`float`, 0.3): dropout before the classifier.
        pooling (`str`, "meanmax"): global time pooling over valid frames: ``"mean"``, ``"max"`` or
            ``"meanmax"`` (both, concatenated).
        freq_pooling (`str`, "mean"): what the head does with the frequency axis left after the conv blocks
            (``n_mels // 2 ** len(channels)`` bins): ``"mean"`` averages it away; ``"flatten"`` keeps every bin as
            its own feature (``channels[-1] * bins`` per frame), so the head knows where in frequency a pattern
            sits (pitch, formants).
        spec_augment (`bool`, True): SpecAugment masks during training only (Park et al. 2019,
            https://arxiv.org/abs/1904.08779).
        freq_mask_width / time_mask_width (`int`): largest mask width in mel bands / frames.
        num_freq_masks / num_time_masks (`int`): masks per utterance.

    Raises:
        ValueError: a value outside its valid range (the message names the field).
    """

    model_type = "mel_cnn"

    def __init__(
        self,
        sampling_rate=16000,
        n_fft=512,
        win_length=400,
        hop_length=160,
        n_mels=64,
        f_min=20.0,
        f_max=None,
        normalize="utterance",
        channels=(32, 64, 128, 128),
        dropout=0.3,
        pooling="meanmax",
        freq_pooling="mean",
        spec_augment=True,
        freq_mask_width=8,
        time_mask_width=20,
        num_freq_masks=2,
        num_time_masks=2,
        **kwargs,
    ):
        if win_length > n_fft:
            raise ValueError(f"win_length {win_length} must be <= n_fft {n_fft}")
        if normalize not in ("utterance", "utterance_global", "none"):
            raise ValueError(f"normalize {normalize!r} must be 'utterance', 'utterance_global' or 'none'")
        if pooling not in ("mean", "max", "meanmax"):
            raise ValueError(f"pooling {pooling!r} must be 'mean', 'max' or 'meanmax'")
        if freq_pooling not in ("mean", "flatten"):
            raise ValueError(f"freq_pooling {freq_pooling!r} must be 'mean' or 'flatten'")
        if not channels:
            raise ValueError("channels must list at least one conv block")
        if freq_pooling == "flatten" and n_mels // 2 ** len(channels) < 1:
            raise ValueError(
                f"freq_pooling 'flatten' needs n_mels >= 2 ** len(channels) = {2 ** len(channels)}, got n_mels {n_mels}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout {dropout} must be in [0, 1)")
        self.sampling_rate = sampling_rate
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.f_min = f_min
        self.f_max = f_max
        self.normalize = normalize
        self.channels = list(channels)
        self.dropout = dropout
        self.pooling = pooling
        self.freq_pooling = freq_pooling
        self.spec_augment = spec_augment
        self.freq_mask_width = freq_mask_width
        self.time_mask_width = time_mask_width
        self.num_freq_masks = num_freq_masks
        self.num_time_masks = num_time_masks
        super().__init__(**kwargs)

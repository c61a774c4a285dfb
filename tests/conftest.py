"""Shared fixtures: synthetic corpora in the real layouts (tests never need ../shared)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

RAVDESS_SR = 48000
CONFIGS = Path(__file__).resolve().parents[1] / "configs"

QUICK_RUN = (
    "--max_steps 2 --eval_strategy steps --eval_steps 1 --save_strategy steps --save_steps 1 "
    "--disable_tqdm true --max_duration_s 0.25 --per_device_eval_batch_size 64"
).split()
"""Flags that shrink a training run to a 2-step smoke run (later flags override these)."""
TINY_MELCNN = ["--channels", "4", "8", "--n_mels", "32"]


def quick_run_args(config: str, data_dir, cache_dir, out, *extra) -> list[str]:
    """``scripts/finetune.py`` arguments for a 2-step run of ``configs/<config>`` on ``data_dir``."""
    return [
        str(CONFIGS / config),
        "--data_dir",
        str(data_dir),
        "--cache_dir",
        str(cache_dir),
        "--output_dir",
        str(out),
        *QUICK_RUN,
        *extra,
    ]


def ravdess_names(actors=range(1, 25)):
    """All 60 official speech stems per actor: 8 emotions x intensities x 2 statements x 2 repetitions."""
    for actor in actors:
        for emotion in range(1, 9):
            for intensity in (1,) if emotion == 1 else (1, 2):
                for statement in (1, 2):
                    for rep in (1, 2):
                        yield (
                            actor,
                            emotion,
                            f"03-01-{emotion:02d}-{intensity:02d}-{statement:02d}-{rep:02d}-{actor:02d}",
                        )


def tone(emotion: int, seconds: float, sr: int, seed: int) -> np.ndarray:
    """A short emotion-dependent harmonic tone with noise, int16-safe float in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 110.0 * (1 + 0.25 * emotion)
    wav = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3)) * 0.2
    return (wav + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def write_ravdess_tree(
    root: Path, actors=range(1, 25), seconds: float = 0.3, silence_s: float = 0.0, sr: int = RAVDESS_SR
) -> Path:
    """Write RAVDESS speech in the official zip layout: Actor_XX/*.wav, 48 kHz 16-bit, one stereo file.

    ``silence_s`` > 0 puts that much near-silence (noise 50-60 dB below the tone) before and after every tone,
    with a length that varies by clip, as in the real recordings."""
    for i, (actor, emotion, stem) in enumerate(ravdess_names(actors)):
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        wav = tone(emotion, seconds, sr, i)
        if silence_s:
            rng = np.random.default_rng(10_000 + i)
            lead, tail = (int(sr * silence_s * f) for f in rng.uniform(0.5, 1.5, 2))
            quiet = [(3e-4 * rng.standard_normal(n)).astype(np.float32) for n in (lead, tail)]
            wav = np.concatenate([quiet[0], wav, quiet[1]])
        if stem == "03-01-02-01-01-02-01":  # stereo in the real corpus too
            wav = np.stack([wav, 0.5 * wav], axis=1)
        sf.write(folder / f"{stem}.wav", wav, sr, subtype="PCM_16")
    return root


@pytest.fixture(scope="session")
def ravdess_dir(tmp_path_factory) -> Path:
    """A complete (1440-clip, 24-actor) synthetic RAVDESS speech tree of 0.3 s clips."""
    return write_ravdess_tree(tmp_path_factory.mktemp("ravdess"))


@pytest.fixture(scope="session")
def ravdess_cache(tmp_path_factory) -> Path:
    """The ``datasets`` cache of :func:`ravdess_dir`, shared by every test that only reads that tree (as a user's
    one Hugging Face cache is): the corpus is built and decoded once per sampling rate, not once per test.
    Tests of building, decoding or caching itself take their own :func:`cache_dir`."""
    return tmp_path_factory.mktemp("ravdess_cache")


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    """A fresh, empty ``datasets`` cache for this test alone."""
    return tmp_path / "hf_cache"


BACKBONE_TYPES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper")


def tiny_backbone_config(model_type: str, **overrides):
    """A tiny randomly initialised config of ``model_type`` (2 layers, hidden size 32), as transformers' tests."""
    from transformers import CONFIG_MAPPING

    if model_type == "whisper":
        kwargs = dict(
            d_model=32,
            encoder_layers=2,
            encoder_attention_heads=2,
            encoder_ffn_dim=37,
            decoder_layers=1,
            decoder_attention_heads=2,
            decoder_ffn_dim=37,
            num_mel_bins=80,
            max_source_positions=1500,
        )
    else:
        kwargs = dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=37,
            conv_dim=(16, 16),
            conv_stride=(5, 4),
            conv_kernel=(10, 8),
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
        )
    kwargs.update(classifier_proj_size=8, num_labels=2)
    kwargs.update(overrides)
    return CONFIG_MAPPING[model_type](**kwargs)


def save_tiny_backbone(model_type: str, path: Path) -> Path:
    """Save a tiny random ``model_type`` audio classifier and its feature extractor to ``path`` (a "checkpoint")."""
    import torch
    from transformers import AutoModelForAudioClassification, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

    torch.manual_seed(0)
    AutoModelForAudioClassification.from_config(tiny_backbone_config(model_type)).save_pretrained(path)
    if model_type == "whisper":
        fe = WhisperFeatureExtractor(feature_size=80)
    else:  # group-norm wav2vec2-base style: no attention mask
        fe = Wav2Vec2FeatureExtractor(return_attention_mask=model_type == "wavlm", do_normalize=True)
    fe.save_pretrained(path)
    return path


def save_tiny_melcnn(
    path: Path, labels=("neutral", "happy"), channels=(4, 8), margin: float | None = None, feature_extractor=None
) -> Path:
    """Save a tiny random mel-CNN checkpoint (seed 0, 32 mel bands) to ``path``: the one home of the tests'
    untrained mel-CNN models. ``margin`` multiplies the classifier's weights, so that labels have clear margins;
    ``feature_extractor`` defaults to a plain :class:`MelCNNFeatureExtractor`."""
    import torch

    from ser_hf.models import MelCNNConfig, MelCNNFeatureExtractor, MelCNNForAudioClassification

    torch.manual_seed(0)
    config = MelCNNConfig(n_mels=32, channels=list(channels), num_labels=len(labels), id2label=dict(enumerate(labels)))
    config.label2id = {n: i for i, n in enumerate(labels)}
    model = MelCNNForAudioClassification(config).eval()
    if margin is not None:
        with torch.no_grad():
            model.classifier.weight.mul_(margin)
    model.save_pretrained(path)
    (feature_extractor or MelCNNFeatureExtractor()).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_backbones(tmp_path_factory) -> dict[str, Path]:
    """``{model_type: folder}`` of tiny random checkpoints for every supported backbone type."""
    root = tmp_path_factory.mktemp("backbones")
    return {t: save_tiny_backbone(t, root / t) for t in BACKBONE_TYPES}


@pytest.fixture(scope="session")
def checkpoint(ravdess_dir, ravdess_cache, tmp_path_factory):
    """A mel-CNN trained once per session for 2 steps on fold 0 of the synthetic RAVDESS (test actors 1-4,
    validation 5-6), with its datasets cache: ``(run_dir, cache_dir)``. Tests may add evaluations to it, never
    change what is there."""
    from ser_hf.training import main as train

    out = tmp_path_factory.mktemp("ckpt") / "run"
    train(quick_run_args("ravdess_melcnn.yaml", ravdess_dir, ravdess_cache, out, *TINY_MELCNN))
    return out, ravdess_cache


@pytest.fixture(autouse=True)
def _training_tests_are_marked_slow(request, monkeypatch):
    """docs/benchmarks.md promises that ``-m "not slow"`` leaves out the tests that train: a test whose body starts
    a ``transformers.Trainer`` training without the ``slow`` marker fails, naming the marker. (Session fixtures that
    train once for many tests, such as :func:`checkpoint`, are set up before this runs and are not counted.)"""
    if request.node.get_closest_marker("slow") is not None:
        return
    import functools

    from transformers import Trainer

    @functools.wraps(Trainer.train)  # the signature stays what tests/test_trainer_contract.py inspects
    def refuse(*args, **kwargs):
        raise AssertionError(f"{request.node.nodeid} trains a model: mark it @pytest.mark.slow")

    monkeypatch.setattr(Trainer, "train", refuse)

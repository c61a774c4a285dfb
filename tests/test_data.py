import numpy as np
import torch
from transformers import Wav2Vec2FeatureExtractor

from ser_hf import load_corpus, make_split
from ser_hf.data import AudioCollator, WaveformAugment, batches_exactly, decode_dataset, select_side
from ser_hf.models import MelCNNFeatureExtractor


def fe(mask=True):
    return Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=False, return_attention_mask=mask
    )


def rows(lengths):
    rng = np.random.default_rng(0)
    return [{"input_values": rng.standard_normal(n).astype(np.float32), "label": i} for i, n in enumerate(lengths)]


def test_train_collator_crops_and_pads_with_mask():
    batch = AudioCollator(fe(), train=True, max_duration_s=0.5, augment=WaveformAugment(), seed=0)(rows([16000, 4000]))
    assert batch["input_values"].shape == (2, 8000)
    assert batch["attention_mask"].sum(-1).tolist()[1] <= 4400  # speed perturbation may stretch by 1.1
    assert batch["labels"].tolist() == [0, 1]


def test_eval_collator_is_deterministic_and_uncropped():
    collate = AudioCollator(fe(), train=False)
    a, b = collate(rows([16000, 4000])), collate(rows([16000, 4000]))
    assert torch.equal(a["input_values"], b["input_values"])
    assert a["input_values"].shape == (2, 16000)
    # the evaluation crop belongs to the checkpoint's feature extractor
    cropping = MelCNNFeatureExtractor(center_crop_s=0.5)
    assert AudioCollator(cropping, train=False)(rows([16000]))["input_values"].shape == (1, 8000)


def silence_padded(n_speech: int, n_silence: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    speech = 0.3 * rng.standard_normal(n_speech).astype(np.float32)
    quiet = 1e-4 * rng.standard_normal(n_silence).astype(np.float32)
    return np.concatenate([quiet, speech, quiet])


def test_collators_trim_with_the_extractor_settings():
    wav = silence_padded(8000, 8000)  # 0.5 s speech between 0.5 s of near-silence
    trimming = MelCNNFeatureExtractor(trim_db=30)
    evaluated = AudioCollator(trimming, train=False)([{"input_values": wav, "label": 0}])
    assert 8000 <= evaluated["input_values"].shape[1] <= 8800  # trimmed to the speech (+ one frame per edge)
    # training trims first, then crops: a 0.25 s crop is taken from the speech, never from the silence
    train = AudioCollator(trimming, train=True, max_duration_s=0.25, seed=3)
    for _ in range(5):
        crop = train([{"input_values": wav, "label": 0}])["input_values"][0]
        assert crop.shape[0] == 4000 and float(crop.abs().mean()) > 0.1
    untrimmed = AudioCollator(MelCNNFeatureExtractor(), train=False)([{"input_values": wav, "label": 0}])
    assert untrimmed["input_values"].shape[1] == 24000


def test_batching_is_exact_only_with_a_mask_or_a_fixed_window():
    from transformers import WhisperFeatureExtractor

    assert batches_exactly(fe(mask=True)) and not batches_exactly(fe(mask=False))
    assert batches_exactly(WhisperFeatureExtractor(feature_size=80))


def test_no_attention_mask_for_group_norm_style_extractors():
    batch = AudioCollator(fe(mask=False), train=False)(rows([1000, 2000]))
    assert "attention_mask" not in batch


def test_decode_and_select_sides(ravdess_dir, cache_dir):
    ds = load_corpus("ravdess", ravdess_dir, cache_dir=cache_dir)
    decoded = decode_dataset(ds.select(range(0, 1440, 60)), 16000)  # one clip per actor
    wav = decoded.with_format("numpy")[0]["input_values"]
    assert wav.dtype == np.float32 and abs(len(wav) - 4800) <= 2  # 0.3 s at 16 kHz
    split = make_split("ravdess", ds["speaker"], "folds", 1)
    test = select_side(decoded, split, "test")
    assert sorted(test["speaker"]) == ["Actor_05", "Actor_06", "Actor_07", "Actor_08"]


def test_trainer_evaluates_with_the_deterministic_collator(tmp_path):
    import datasets
    from transformers import TrainingArguments

    from ser_hf.training import ModelArguments, SERTrainer, build_model

    model, extractor = build_model(ModelArguments(channels=[4]), ["a", "b"], 16000)
    ds = datasets.Dataset.from_dict({"input_values": [np.ones(16000, np.float32)] * 2, "label": [0, 1]}).with_format(
        "numpy"
    )
    trainer = SERTrainer(
        model=model,
        args=TrainingArguments(
            str(tmp_path),
            per_device_train_batch_size=2,
            per_device_eval_batch_size=2,
            remove_unused_columns=False,
            report_to="none",
        ),
        train_dataset=ds,
        eval_dataset=ds,
        data_collator=AudioCollator(extractor, train=True, max_duration_s=0.25),
        eval_data_collator=AudioCollator(extractor, train=False),
    )
    assert next(iter(trainer.get_train_dataloader()))["input_values"].shape == (2, 4000)
    assert next(iter(trainer.get_eval_dataloader()))["input_values"].shape == (2, 16000)
    assert next(iter(trainer.get_test_dataloader(ds)))["input_values"].shape == (2, 16000)
    assert next(iter(trainer.get_train_dataloader()))["input_values"].shape == (2, 4000)


def test_evaluation_batches_bound_padded_samples():
    from ser_hf.data import length_batches

    lengths = [16000] * 40 + [16000 * 600]  # 40 one-second clips and one 10-minute recording
    batches = length_batches(lengths, max_batch=32, max_samples=32 * 30 * 16000)
    assert sorted(i for b in batches for i in b) == list(range(41))
    assert [40] in batches  # the long recording is scored alone
    assert max(len(b) * max(lengths[i] for i in b) for b in batches) <= 16000 * 600
    assert all(len(b) <= 32 for b in batches)

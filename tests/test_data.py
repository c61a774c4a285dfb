import numpy as np
import torch
from transformers import Wav2Vec2FeatureExtractor

from ser_hf import load_corpus, make_split
from ser_hf.data import AudioCollator, WaveformAugment, decode_dataset, select_side


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
    assert AudioCollator(fe(), train=False, max_eval_duration_s=0.5)(rows([16000]))["input_values"].shape == (1, 8000)


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

"""ser-hf export-dataset: Parquet fold configs that load with datasets.load_dataset, offline round trip, push."""

import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import yaml

import ser_hf.hub as hub
from ser_hf import load_audio, load_corpus, make_split
from ser_hf.cli import main as cli
from ser_hf.export import ExportError, export_dataset
from ser_hf.hub import PushError, push_dataset

from .conftest import write_ravdess_tree
from .test_hub import fake_api  # noqa: F401  (HfApi stand-in)


@pytest.fixture(scope="module")
def corpus16k(tmp_path_factory):
    return write_ravdess_tree(tmp_path_factory.mktemp("r16"), seconds=0.2, sr=16000)


@pytest.fixture(scope="module")
def exported(corpus16k, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "ravdess"
    summary = export_dataset("ravdess", corpus16k, out, cache_dir=tmp_path_factory.mktemp("cache"))
    return out, summary


def test_every_fold_config_round_trips_to_load_corpus_and_make_split(corpus16k, exported, tmp_path):
    out, summary = exported
    ds = load_corpus("ravdess", corpus16k, cache_dir=tmp_path / "c")
    assert summary["num_clips"] == 1440 and summary["num_shards"] == 12  # 2 actors share each side pattern
    for fold in range(6):
        loaded = datasets.load_dataset(str(out), f"fold_{fold}", cache_dir=str(tmp_path / "hf"))
        split = make_split("ravdess", ds["speaker"], "folds", fold)
        for side, name in (("train", "train"), ("validation", "validation"), ("test", "test")):
            part = loaded[name]
            assert sorted(set(part["speaker"])) == split.speakers(side)
            wanted = ds.select([i for i, s in enumerate(ds["speaker"]) if s in set(split.speakers(side))])
            assert sorted(zip(part["id"], part["label"], strict=True)) == sorted(
                zip(wanted["id"], wanted["label"], strict=True)
            )
        assert set(loaded["validation"]["speaker"]).isdisjoint(loaded["train"]["speaker"])
    everything = datasets.load_dataset(str(out), "all", cache_dir=str(tmp_path / "hf"))["train"]
    assert len(everything) == 1440 and len(set(everything["id"])) == 1440
    features = everything.features
    assert isinstance(features["audio"], datasets.Audio) and features["audio"].sampling_rate == 16000
    assert features["label"].names == ds.features["label"].names
    assert {"intensity", "statement", "repetition", "gender"} <= set(features)


def test_audio_bytes_decode_with_ser_hf_and_match_the_files(corpus16k, exported, tmp_path):
    out, _ = exported
    test = datasets.load_dataset(str(out), "fold_0", split="test", cache_dir=str(tmp_path / "hf"))
    raw = test.cast_column("audio", datasets.Audio(decode=False))
    row = raw[0]
    from_bytes = load_audio(row["audio"], 16000)
    from_file = load_audio(corpus16k / row["speaker"] / row["audio"]["path"], 16000)
    assert np.array_equal(from_bytes, from_file)  # the original bytes are stored when no resampling is asked


def test_card_declares_configs_features_splits_license_and_citation(exported):
    out, summary = exported
    text = (out / "README.md").read_text()
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["license"] == "cc-by-nc-sa-4.0" and meta["task_categories"] == ["audio-classification"]
    assert [c["config_name"] for c in meta["configs"]] == [f"fold_{k}" for k in range(6)] + ["all"]
    info = {i["config_name"]: {s["name"]: s["num_examples"] for s in i["splits"]} for i in meta["dataset_info"]}
    assert info["fold_0"] == {"train": 1080, "validation": 120, "test": 240} == summary["configs"]["fold_0"]
    assert "non-commercial" in text and "share-alike" in text and "@article{livingstone2018ravdess" in text
    assert "Actor_01, Actor_02, Actor_03, Actor_04" in text  # the protocol in words


def test_resampled_export_and_refusals(tmp_path):
    corpus = write_ravdess_tree(tmp_path / "r48", actors=range(1, 5), seconds=0.2)  # 48 kHz, one stereo file
    with pytest.raises(ExportError, match="'speakers': export writes fold configs"):
        export_dataset("ravdess", corpus, tmp_path / "x", protocol="speakers", verify_counts=False)
    out = tmp_path / "out"
    summary = export_dataset(
        "ravdess", corpus, out, protocol="loso", sampling_rate=16000, cache_dir=tmp_path / "c", verify_counts=False
    )
    assert set(summary["configs"]) == {"fold_0", "fold_1", "fold_2", "fold_3", "all"}
    loaded = datasets.load_dataset(str(out), "all", split="train", cache_dir=str(tmp_path / "hf"))
    row = loaded.cast_column("audio", datasets.Audio(decode=False))[0]
    assert row["audio"]["path"].endswith(".flac") and load_audio(row["audio"], None).shape == (3200,)
    with pytest.raises(ExportError, match="exists and is not empty"):
        export_dataset("ravdess", corpus, out, verify_counts=False)


def test_push_dataset_at_the_api_boundary(exported, fake_api, monkeypatch):  # noqa: F811
    out, _ = exported
    result = push_dataset(out, "someone/ravdess-folds", private=True)
    names = [c[0] for c in fake_api.calls]
    assert names == ["init", "create_repo", "upload_folder"]
    assert fake_api.calls[1][1] == {
        "repo_id": "someone/ravdess-folds",
        "repo_type": "dataset",
        "private": True,
        "exist_ok": True,
    }
    assert fake_api.calls[2][1]["files"] == ["README.md", "data"] and result["url"].endswith("/commit/abc")
    assert set(result["validation"]["configs"]) == {f"fold_{k}" for k in range(6)} | {"all"}
    with pytest.raises(PushError, match="not a valid repo id"):
        push_dataset(out, "no-slash")
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(hub, "get_token", lambda: None)
    with pytest.raises(PushError, match="no Hugging Face token"):
        push_dataset(out, "someone/x")


def test_cli_export_dry_run(corpus16k, tmp_path, capsys):
    out = tmp_path / "e"
    rc = cli(["export-dataset", "ravdess", "--data_dir", str(corpus16k), "--to", str(out), "--dry-run"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "exported 1440 clips into 12 shards" in printed and "fold_0: train 1080, validation 120, test 240" in printed
    assert "every config loads" in printed
    assert json.loads(json.dumps(sorted(p.name for p in Path(out).iterdir()))) == ["README.md", "data"]


@pytest.mark.slow
def test_training_from_the_export_matches_training_from_the_raw_corpus(corpus16k, exported, tmp_path):
    from safetensors.numpy import load_file

    from ser_hf.training import main as train

    from .conftest import TINY_MELCNN, quick_run_args

    out, _ = exported
    extra = [*TINY_MELCNN, "--max_steps", "4", "--fold", "0"]
    raw = train(quick_run_args("ravdess_melcnn.yaml", corpus16k, tmp_path / "c1", tmp_path / "raw", *extra))
    args = quick_run_args("ravdess_melcnn.yaml", corpus16k, tmp_path / "c2", tmp_path / "exp", *extra)
    args[args.index("--data_dir") : args.index("--data_dir") + 2] = [
        "--dataset",
        str(out),
        "--dataset_config",
        "fold_0",
    ]
    from_export = train(args)
    assert from_export["split"] == raw["split"]
    for key in ("wa", "ua", "macro_f1", "confusion_matrix"):
        assert from_export[key] == raw[key]
    a, b = load_file(tmp_path / "raw" / "model.safetensors"), load_file(tmp_path / "exp" / "model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="--dataset needs --dataset_config"):
        train([*args[: args.index("--dataset_config")], "--output_dir", str(tmp_path / "x")])


def test_datasets_own_audio_decoding_where_torchcodec_is_installed(exported, tmp_path):
    pytest.importorskip("torchcodec", reason="datasets decodes Audio only through torchcodec (not installed here)")
    out, _ = exported
    test = datasets.load_dataset(str(out), "fold_0", split="test", cache_dir=str(tmp_path / "hf"))
    decoded = test[0]["audio"]
    raw = test.cast_column("audio", datasets.Audio(decode=False))[0]["audio"]
    samples = decoded["array"] if isinstance(decoded, dict) else decoded.get_all_samples().data.numpy().mean(0)
    assert np.allclose(samples, load_audio(raw, 16000), atol=1e-4)


def test_folder_corpus_export_has_its_group_k_fold_configs(tmp_path):
    from .test_folder import clip

    root = tmp_path / "mine"
    rows = []
    for s in range(6):
        for i, label in enumerate(("angry", "happy", "neutral")):
            name = f"clips/spk{s}_{i}.wav"
            clip(root / name, sr=16000)
            rows.append(f"{name},{label},spk{s},{'female' if s % 2 else 'male'},{i}")
    (root / "metadata.csv").write_text("file_name,label,speaker,gender,session\n" + "\n".join(rows) + "\n")
    summary = export_dataset("folder", root, tmp_path / "out", cache_dir=tmp_path / "c")
    ds = load_corpus("folder", root, cache_dir=tmp_path / "c2")
    assert set(summary["configs"]) == {f"fold_{k}" for k in range(5)} | {"all"}
    for k in range(5):
        loaded = datasets.load_dataset(str(tmp_path / "out"), f"fold_{k}", cache_dir=str(tmp_path / "hf"))
        split = make_split("folder", ds["speaker"], "folds", k)
        assert {side: sorted(set(loaded[side]["speaker"])) for side in ("train", "validation", "test")} == {
            "train": split.train_speakers,
            "validation": split.val_speakers,
            "test": split.test_speakers,
        }
    assert "session" in loaded["train"].features


@pytest.mark.slow
def test_a_run_trained_from_an_export_records_the_exported_corpus(tmp_path, capsys):
    from ser_hf.cli import main as cli
    from ser_hf.export import export_identity
    from ser_hf.training import main as train

    from .conftest import TINY_MELCNN, quick_run_args
    from .test_folder import clip

    root = tmp_path / "mine"
    rows = []
    for s in range(4):
        for i, label in enumerate(("angry", "happy", "neutral", "sad")):
            clip(root / f"spk{s}_{i}.wav", sr=16000)
            rows.append(f"spk{s}_{i}.wav,{label},spk{s}")
    (root / "metadata.csv").write_text("file_name,label,speaker\n" + "\n".join(rows) + "\n")
    export_dataset("folder", root, tmp_path / "fc", cache_dir=tmp_path / "c", num_val_speakers=1)
    assert export_identity(str(tmp_path / "fc")) == {
        "corpus": "folder",
        "labels": ["angry", "happy", "neutral", "sad"],
        "protocol": "folds",
    }
    # the RAVDESS config's corpus: ravdess must not leak into the run: the export says what it holds
    args = quick_run_args("ravdess_melcnn.yaml", root, tmp_path / "c2", tmp_path / "run", *TINY_MELCNN)
    i = args.index("--data_dir")
    args[i : i + 2] = ["--dataset", str(tmp_path / "fc"), "--dataset_config", "fold_0"]
    result = train(args)
    assert result["split"]["corpus"] == "folder" and result["label_names"] == ["angry", "happy", "neutral", "sad"]
    assert cli(["push", str(tmp_path / "run"), "--repo-id", "u/fc", "--dry-run"]) == 0
    card = (tmp_path / "run.hub" / "README.md").read_text()
    assert "RAVDESS" not in card and "- ravdess" not in card and "angry, happy, neutral, sad" in card
    with pytest.raises(ValueError, match="--dataset .* and --data_dir .*: give one"):
        train([*args, "--data_dir", str(root)])

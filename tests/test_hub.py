"""ser-hf push: upload folder, model card, validation without ser_hf, the HfApi boundary and its failures."""

import json
import shutil
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import ModelCard
from huggingface_hub.errors import HfHubHTTPError

import ser_hf.hub as hub
from ser_hf.cli import main as cli
from ser_hf.hub import PushError, build_model_card, push_to_hub
from ser_hf.train_command import main as train

from .conftest import quick_run_args

ROOT = Path(__file__).resolve().parents[1]
SECRET = "hf_SECRETtoken1234567890"


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


class FakeApi:
    """Stands in for huggingface_hub.HfApi: records calls, optionally fails at one of them."""

    calls: list = []
    fail_at: str | None = None
    error: Exception | None = None

    def __init__(self, token=None):
        FakeApi.calls.append(("init", {"token_given": token is not None}))

    def _call(self, name, **kwargs):
        FakeApi.calls.append((name, kwargs))
        if FakeApi.fail_at == name:
            raise FakeApi.error

    def create_repo(self, repo_id, **kwargs):
        self._call("create_repo", repo_id=repo_id, **kwargs)

    def create_branch(self, repo_id, **kwargs):
        self._call("create_branch", repo_id=repo_id, **kwargs)

    def upload_folder(self, repo_id, folder_path, **kwargs):
        files = sorted(p.name for p in Path(folder_path).iterdir())
        self._call("upload_folder", repo_id=repo_id, files=files, **kwargs)
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"})()


@pytest.fixture
def fake_api(monkeypatch):
    FakeApi.calls, FakeApi.fail_at, FakeApi.error = [], None, None
    monkeypatch.setattr(hub, "HfApi", FakeApi)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    return FakeApi


@pytest.fixture
def no_validation(monkeypatch):
    """For tests of the API boundary: the real validation is exercised by the dry-run test."""
    monkeypatch.setattr(hub, "validate_upload_folder", lambda folder: {"prediction": [{"label": "x", "score": 1.0}]})


MELCNN_FILES = [
    "README.md",
    "config.json",
    "configuration_mel_cnn.py",
    "confusion_matrix.png",
    "feature_extraction_mel_cnn.py",
    "metrics.json",
    "model.safetensors",
    "modeling_mel_cnn.py",
    "preprocessor_config.json",
    "split.json",
]


def test_dry_run_builds_a_valid_folder_that_loads_without_ser_hf(checkpoint, tmp_path, capsys):
    run, _ = checkpoint
    before = snapshot(run)
    rc = cli(["push", str(run), "--repo-id", "someone/ser-melcnn", "--dry-run", "--output_dir", str(tmp_path / "up")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "dry run: nothing uploaded" in out and "pipeline without ser_hf answers" in out
    assert sorted(p.name for p in (tmp_path / "up").iterdir()) == MELCNN_FILES
    assert snapshot(run) == before  # the run directory is untouched

    card = ModelCard.load(tmp_path / "up" / "README.md")
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "audio-classification" and data["library_name"] == "transformers"
    assert data["license"] == "cc-by-nc-sa-4.0" and data["datasets"] == ["ravdess"]
    metrics = json.loads((run / "metrics.json").read_text())
    values = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert values == {
        "UA (this checkpoint, fold 0)": round(metrics["ua"], 4),
        "WA (this checkpoint, fold 0)": round(metrics["wa"], 4),
        "macro-F1 (this checkpoint, fold 0)": round(metrics["macro_f1"], 4),
    }  # the measured numbers, and only those
    assert f"| UA (%) | {100 * metrics['ua']:.1f} |" in card.text
    assert "trust_remote_code=True" in card.text and "Not for decisions about people" in card.text
    assert "@article{livingstone2018ravdess" in card.text
    assert "Weights: exponential moving average (decay 0.99) as training ended" in card.text
    assert f"scored UA {100 * metrics['ua']:.1f} % on this checkpoint's test fold" in card.text  # what users get

    with pytest.raises(PushError, match="already exists and is not empty"):
        push_to_hub(run, "someone/ser-melcnn", dry_run=True, output_dir=tmp_path / "up")


def test_push_calls_the_hub_api_with_repo_files_and_message(checkpoint, fake_api, no_validation, capsys):
    run, _ = checkpoint
    result = push_to_hub(run, "someone/ser-melcnn", private=True, revision="v1")
    names = [c[0] for c in fake_api.calls]
    assert names == ["init", "create_repo", "create_branch", "upload_folder"]
    assert fake_api.calls[0][1] == {"token_given": True}
    assert fake_api.calls[1][1] == {
        "repo_id": "someone/ser-melcnn",
        "repo_type": "model",
        "private": True,
        "exist_ok": True,
    }
    assert fake_api.calls[2][1] == {
        "repo_id": "someone/ser-melcnn",
        "branch": "v1",
        "repo_type": "model",
        "exist_ok": True,
    }
    upload = fake_api.calls[3][1]
    assert upload["repo_id"] == "someone/ser-melcnn" and upload["revision"] == "v1"
    assert upload["files"] == MELCNN_FILES
    assert upload["commit_message"].startswith("ser_hf: ravdess fold 0 checkpoint (test UA ")
    assert result["url"] == "https://huggingface.co/someone/ser-melcnn/commit/abc"
    assert not Path(result["folder"]).exists()  # the temporary upload folder is cleaned up
    assert SECRET not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, r"rejected the token \(401\).*hf auth login"),
        (403, r"may not write to someone/ser-melcnn \(403\)"),
        (404, r"not found \(404\)"),
        (None, r"could not reach the Hub \(ConnectError"),
    ],
)
def test_hub_failures_are_clear_and_lose_nothing(checkpoint, fake_api, no_validation, capsys, status, message):
    run, _ = checkpoint
    before = snapshot(run)
    if status is None:
        fake_api.error = httpx2.ConnectError("connection refused")
    else:
        request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
        fake_api.error = HfHubHTTPError("boom", response=httpx2.Response(status, request=request))
    fake_api.fail_at = "create_repo" if status != 404 else "upload_folder"
    with pytest.raises(PushError, match=message) as info:
        push_to_hub(run, "someone/ser-melcnn")
    assert "nothing in" in str(info.value) and SECRET not in str(info.value)
    assert snapshot(run) == before
    assert SECRET not in capsys.readouterr().out


def test_no_token_and_bad_repo_ids(checkpoint, monkeypatch, tmp_path):
    run, _ = checkpoint
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(hub, "get_token", lambda: None)
    with pytest.raises(PushError, match="no Hugging Face token: set HF_TOKEN or run `hf auth login`"):
        push_to_hub(run, "someone/ser-melcnn")
    for bad in ("someone/ser melcnn", "no-namespace", "a/b/c"):
        with pytest.raises(PushError, match=f"--repo-id '{bad}' is not a valid repo id.*expected USER/NAME"):
            push_to_hub(run, bad, dry_run=True, output_dir=tmp_path / "x")
    assert cli(["push", str(run), "--repo-id", "someone/ser-melcnn"]) == 2


@pytest.mark.slow
def test_lora_export_and_finetune_push_to_hub(ravdess_dir, ravdess_cache, tiny_backbones, fake_api, tmp_path):
    out = tmp_path / "lora"
    train(
        quick_run_args(
            "ravdess_wav2vec2_lora.yaml",
            ravdess_dir,
            ravdess_cache,
            out,
            *f"--model_name_or_path {tiny_backbones['wav2vec2']} --max_steps 1".split(),
            *"--base_model_id facebook/wav2vec2-base".split(),  # the local folder stands for this hub model
            *"--push_to_hub true --hub_model_id someone/ser-lora".split(),
        )
    )
    upload = [c for c in fake_api.calls if c[0] == "upload_folder"][0][1]
    assert upload["repo_id"] == "someone/ser-lora"
    card = build_model_card(out, "someone/ser-lora")
    assert card.data.base_model == "facebook/wav2vec2-base" and str(tiny_backbones["wav2vec2"]) not in str(card)
    with pytest.raises(ValueError, match="--base_model_id '../x' is not a hub id"):
        train([str(ROOT / "configs" / "ravdess_wav2vec2_lora.yaml"), "--data_dir", "x", "--base_model_id", "../x"])
    assert "adapter_model.safetensors" not in upload["files"] and "model.safetensors" in upload["files"]
    assert not any(f.endswith((".bin", ".py")) for f in upload["files"])
    with pytest.raises(ValueError, match="--push_to_hub true needs --hub_model_id"):
        train([str(ROOT / "configs" / "ravdess_wav2vec2_lora.yaml"), "--data_dir", "x", "--push_to_hub", "true"])


def test_push_never_runs_or_publishes_code_that_ser_hf_did_not_ship(checkpoint, tmp_path):
    import shutil

    run, _ = checkpoint
    tampered = tmp_path / "run"
    shutil.copytree(run, tampered)
    marker = tmp_path / "executed"
    code = tampered / "modeling_mel_cnn.py"
    code.write_text(code.read_text() + f"\nopen({str(marker)!r}, 'w').write('ran')\n")
    with pytest.raises(PushError, match="modeling_mel_cnn.py is not ser_hf's own"):
        push_to_hub(tampered, "someone/x", dry_run=True, output_dir=tmp_path / "up")
    assert not marker.exists() and not (tmp_path / "up").exists()


def test_push_dot_from_inside_the_run_leaves_the_run_unchanged(checkpoint, tmp_path, monkeypatch):
    import shutil

    run, _ = checkpoint
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = snapshot(copy)
    monkeypatch.chdir(copy)
    result = push_to_hub(".", "someone/x", dry_run=True)
    assert snapshot(copy) == before
    assert result["folder"] == str(tmp_path / "run.hub")


def test_card_of_a_seeds_grid_fold_shows_the_spread_over_seeds(checkpoint, tmp_path):
    run, _ = checkpoint
    grid = tmp_path / "grid"
    fold = grid / "seed_7" / "fold_0"
    shutil.copytree(run, fold)
    cv = {k: {"mean": 0.6, "std": 0.05} for k in ("ua", "wa", "macro_f1")} | {"num_folds": 1}
    (fold.parent / "cv_results.json").write_text(json.dumps(cv))
    over = {k: {"mean": 0.58, "std": 0.01} for k in ("ua", "wa", "macro_f1")}
    (grid / "seeds_results.json").write_text(json.dumps({"seeds": [7, 8], "per_fold": {"0": {}}, "overall": over}))
    text = build_model_card(fold, "someone/x").text
    assert "mean over folds, +- std over 2 seeds" in text and "| UA (%) | 60.0 +- 5.0 | 58.0 +- 1.0 |" in text
    assert "the same recipe trained with seeds [7, 8]" in text and "chosen by its validation UA" in text

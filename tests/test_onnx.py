"""ONNX export, onnxruntime inference without PyTorch, and the Gradio demo (issue 49), on tiny random models."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from .conftest import save_tiny_backbone, save_tiny_melcnn

LABELS = ["angry", "happy", "neutral", "sad"]


def mel_cnn_checkpoint(path: Path, trim_db=30.0, center_crop_s=None) -> Path:
    """A small mel-CNN with a silence-trimming feature extractor, saved as a checkpoint folder."""
    from ser_hf.models import MelCNNFeatureExtractor

    fe = MelCNNFeatureExtractor(trim_db=trim_db, center_crop_s=center_crop_s)
    return save_tiny_melcnn(path, LABELS, margin=20, feature_extractor=fe)


def speech_like(path: Path, seconds: float, sr: int = 16000, lead_s: float = 0.3) -> Path:
    """Harmonic tones with a moving pitch between near-silent edges (so that the trim has work to do)."""
    rng = np.random.default_rng(int(seconds * 100))
    t = np.arange(int(seconds * sr)) / sr
    wav = sum(np.sin(2 * np.pi * (150 + 60 * np.sin(t) * k) * k * t) / k for k in (1, 2, 3)) * 0.2
    quiet = 1e-4 * rng.standard_normal(int(lead_s * sr))
    sf.write(path, np.concatenate([quiet, wav, quiet]).astype(np.float32), sr)
    return path


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """ONNX exports of a mel-CNN, a Whisper encoder classifier and a wav2vec2 classifier, with their sources."""
    from ser_hf.onnx_export import export_onnx

    root = tmp_path_factory.mktemp("onnx")
    sources = {
        "mel_cnn": mel_cnn_checkpoint(root / "mel_cnn"),
        "whisper": save_tiny_backbone("whisper", root / "whisper"),
        "wav2vec2": save_tiny_backbone("wav2vec2", root / "wav2vec2"),
    }
    out = {}
    for name, source in sources.items():
        summary = export_onnx(source, root / f"{name}_onnx")
        out[name] = (source, root / f"{name}_onnx", summary)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("family", ["mel_cnn", "whisper", "wav2vec2"])
def test_export_layout_equal_logits_and_a_smaller_int8_copy(exports, family):
    source, folder, summary = exports[family]
    for name in ("onnx/model.onnx", "onnx/model_quantized.onnx", "config.json", "preprocessor_config.json"):
        assert (folder / name).is_file(), name  # the layout transformers.js reads
    settings = json.loads((folder / "ser_hf_onnx.json").read_text())
    assert settings["family"] == family and settings["exporter"].startswith("torch.onnx.export(dynamo=True)")
    assert summary["max_abs_logit_diff_fp32"] < 1e-4
    assert summary["files"]["onnx/model_quantized.onnx"] < summary["files"]["onnx/model.onnx"]
    with pytest.raises(FileExistsError, match="already holds files"):
        from ser_hf.onnx_export import export_onnx

        export_onnx(source, folder)


def test_the_numpy_preprocessing_equals_the_checkpoints_feature_extractors():
    from transformers import WhisperFeatureExtractor

    from ser_hf.models import MelCNNFeatureExtractor
    from ser_hf.onnx_backend import trim_silence, whisper_log_mel

    rng = np.random.default_rng(0)
    fe = MelCNNFeatureExtractor(trim_db=30)
    whisper = WhisperFeatureExtractor(chunk_length=4)
    for n in (300, 16000, 40000, 70000):
        wav = np.concatenate([1e-4 * rng.standard_normal(3000), 0.3 * rng.standard_normal(n)]).astype(np.float32)
        assert np.array_equal(trim_silence(wav, 30, fe.trim_frame_length, fe.trim_hop_length), fe.trim(wav))
        ours = whisper_log_mel(wav, whisper.mel_filters, whisper.n_samples, whisper.n_fft, whisper.hop_length)
        theirs = whisper(wav, sampling_rate=16000, return_tensors="np")["input_features"][0]
        assert ours.shape == theirs.shape and np.abs(ours - theirs).max() < 1e-4


@pytest.mark.slow
def test_predict_on_an_export_imports_no_torch_and_gives_pytorchs_answers(exports, tmp_path):
    from ser_hf.inference import predict

    source, folder, _ = exports["mel_cnn"]
    clips = [speech_like(tmp_path / f"c{k}.wav", 1.0 + k) for k in range(3)]
    long = speech_like(tmp_path / "long.wav", 14.0)
    code = f"""
import json, sys
from ser_hf.cli import main
import ser_hf
clips = {[str(c) for c in clips]!r}
rc = main(["predict", {str(folder)!r}, *clips, "--format", "jsonl", "--output", {str(tmp_path / "out.jsonl")!r}])
rc |= main(["predict", {str(folder)!r}, {str(long)!r}, "--timeline", "--output_dir", {str(tmp_path / "tl")!r}])
api = ser_hf.predict({str(folder)!r}, clips, backend="onnx")
timeline = ser_hf.predict_timeline({str(folder)!r}, {str(long)!r})
print(json.dumps({{"rc": rc, "torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules,
                  "api": [p.probabilities for p in api], "windows": len(timeline.segments)}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0 and not result["torch"] and not result["transformers"]
    assert result["windows"] >= 10 and (tmp_path / "tl" / "long.timeline.csv").exists()
    reference = predict(str(source), clips)  # the PyTorch checkpoint, as pipeline() runs it
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    for ref, line, api in zip(reference, lines, result["api"], strict=True):
        assert line["label"] == ref.label
        for label in LABELS:
            assert abs(line["probabilities"][label] - ref.probabilities[label]) < 1e-4
            assert abs(api[label] - ref.probabilities[label]) < 1e-4
    quantized = predict(str(folder), clips, backend="onnx", quantized=True)
    assert [p.label for p in quantized] == [p.label for p in reference]
    with pytest.raises(ValueError, match="is not an ONNX export"):
        predict(str(source), clips, backend="onnx")


@pytest.mark.slow
def test_the_demo_api_answers_through_gradio_client_and_keeps_nothing(exports, tmp_path):
    import socket

    from gradio_client import Client, handle_file

    from ser_hf.demo import build_demo, classifier_for

    _, folder, _ = exports["mel_cnn"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    page = build_demo(classifier_for(str(folder)))
    page.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        label, plot, message = client.predict(handle_file(speech_like(tmp_path / "a.wav", 3.0)), api_name="/analyse")
        assert label["label"] in LABELS and {c["label"] for c in label["confidences"]} == set(LABELS)
        assert plot is None and "scored as one clip" in message
        label, plot, message = client.predict(handle_file(speech_like(tmp_path / "b.wav", 14.0)), api_name="/analyse")
        assert label["label"] in LABELS and Path(plot).suffix == ".png" and "windows of" in message
        sf.write(tmp_path / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)
        label, plot, message = client.predict(handle_file(tmp_path / "silent.wav"), api_name="/analyse")
        assert message.startswith("Silence") and not label.get("confidences")
        (tmp_path / "bad.wav").write_bytes(b"RIFF not really audio")
        _, _, message = client.predict(handle_file(tmp_path / "bad.wav"), api_name="/analyse")
        assert message.startswith("Cannot use this recording") and "bad.wav" in message
    finally:
        page.close()


def test_analyse_refuses_a_very_long_recording_and_deletes_nothing_it_should_keep(tmp_path, monkeypatch):
    from ser_hf import demo
    from ser_hf.audio import AudioError

    clip = speech_like(tmp_path / "c.wav", 3.0)

    class Fake:
        sampling_rate = 16000
        labels = LABELS

    model = demo.Model(Fake(), None, LABELS, None, "fake")
    monkeypatch.setattr(demo, "MAX_DEMO_S", 2.0)
    with pytest.raises(AudioError, match=r"lasts 4 s; this page takes up to 2 s"):
        demo.analyse(model, clip)
    assert clip.exists()  # analyse itself never deletes: the page's handler removes the upload


@pytest.mark.slow
def test_a_space_folder_runs_its_export_without_torch(exports, tmp_path):
    from ser_hf.demo import write_space

    _, folder, _ = exports["whisper"]
    space = write_space(folder, tmp_path / "space", model_repo="user/model")
    assert {p.name for p in space.iterdir()} == {"app.py", "requirements.txt", "README.md", "model", "ser_hf"}
    readme = (space / "README.md").read_text()
    assert readme.startswith("---\n") and "sdk: gradio" in readme and "- user/model" in readme
    assert "onnxruntime" in (space / "requirements.txt").read_text()
    clip = speech_like(tmp_path / "c.wav", 2.0)
    code = (
        "import sys\nfrom ser_hf.demo import analyse, classifier_for\n"
        f"probs, png, message = analyse(classifier_for('model'), {str(clip)!r})\n"
        "import json, ser_hf\n"
        "print(json.dumps([sorted(probs), 'torch' in sys.modules, ser_hf.__file__]))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=space, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    labels, torch_loaded, package = json.loads(done.stdout.strip().splitlines()[-1])
    assert labels == ["LABEL_0", "LABEL_1"] and not torch_loaded and package.startswith(str(space))
    with pytest.raises(FileExistsError):
        write_space(folder, space)


@pytest.mark.slow
def test_push_uploads_the_onnx_export_with_the_model_and_the_card_shows_it(tmp_path):
    from ser_hf.hub import PushError, push_to_hub
    from ser_hf.onnx_export import export_onnx
    from ser_hf.training import main as train

    from .conftest import TINY_MELCNN, quick_run_args
    from .test_eyase_emovo_urdu import write_eyase

    root = write_eyase(tmp_path / "eyase")
    run = tmp_path / "run"
    train(quick_run_args("eyase_melcnn.yaml", root, tmp_path / "c", run, *TINY_MELCNN, "--verify_counts", "false"))
    export_onnx(run, tmp_path / "export")
    result = push_to_hub(run, "user/eyase-mel-cnn", dry_run=True, onnx=tmp_path / "export", space="user/eyase-demo")
    assert {"onnx/model.onnx", "onnx/model_quantized.onnx", "ser_hf_onnx.json"} <= set(result["files"])
    card = (Path(result["folder"]) / "README.md").read_text()
    assert 'OnnxClassifier(snapshot_download("user/eyase-mel-cnn"))' in card
    assert "https://huggingface.co/spaces/user/eyase-demo" in card
    assert "transformers.js has no audio-classification model for `mel_cnn`" in card
    other = save_tiny_backbone("wav2vec2", tmp_path / "other")
    export_onnx(other, tmp_path / "other_export")
    with pytest.raises(PushError, match="an export of another checkpoint"):
        push_to_hub(run, "user/x", dry_run=True, onnx=tmp_path / "other_export", output_dir=tmp_path / "up2")

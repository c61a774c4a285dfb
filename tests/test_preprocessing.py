"""What you evaluate is what you ship: a checkpoint scores the same through ``pipeline("audio-classification")`` on
raw files (clips with leading and trailing silence) as in its own ``metrics.json``, for the mel-CNN (whose feature
extractor trims silence, with and without ser_hf) and for a transformer LoRA merged export (trained untrimmed)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from transformers import Wav2Vec2FeatureExtractor, pipeline

import ser_hf
from ser_hf.folds import SplitDefinition
from ser_hf.inference import load_classifier
from ser_hf.metrics import unweighted_average_recall
from ser_hf.models import MelCNNFeatureExtractor
from ser_hf.run import RunRecord, RunRecordError
from ser_hf.training import main as train

from .conftest import quick_run_args, write_ravdess_tree

pytestmark = pytest.mark.slow  # trains real (tiny) models end to end

# enough steps for tiny models to give clip-dependent answers
LONGER_RUN = (
    "--max_steps 150 --eval_steps 50 --save_steps 50 --max_duration_s 0.3 --warmup_steps 0 --learning_rate 0.01"
).split()


@pytest.fixture(scope="module")
def silent_edges_corpus(tmp_path_factory):
    """Synthetic RAVDESS at 16 kHz: 0.4 s tones between 0.15-0.45 s of near-silence on each side."""
    return write_ravdess_tree(tmp_path_factory.mktemp("ravdess_silence"), seconds=0.4, silence_s=0.3, sr=16000)


@pytest.fixture(scope="module")
def melcnn_run(silent_edges_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("melcnn") / "run"
    cache = tmp_path_factory.mktemp("cache")
    # per-band utterance normalisation flattens a steady tone to zeros: without it the pitch classes are learnable
    tiny = ["--channels", "8", "16", "--n_mels", "32", "--normalize", "none"]
    train(quick_run_args("ravdess_melcnn.yaml", silent_edges_corpus, cache, out, *tiny, *LONGER_RUN))
    return out


@pytest.fixture(scope="module")
def whisper_run(silent_edges_corpus, tmp_path_factory):
    """A LoRA run on a tiny random Whisper whose weights are large enough (init std 0.2, not 0.02) for its answers
    to depend on the clip; at 0.02 the positional embeddings drown the audio and every clip scores alike."""
    import torch
    from transformers import AutoModelForAudioClassification, WhisperFeatureExtractor

    from .conftest import tiny_backbone_config

    base = tmp_path_factory.mktemp("whisper_base")
    torch.manual_seed(0)
    AutoModelForAudioClassification.from_config(tiny_backbone_config("whisper", init_std=0.2)).save_pretrained(base)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(base)
    out = tmp_path_factory.mktemp("whisper") / "run"
    cache = tmp_path_factory.mktemp("cache")
    args = ["--model_name_or_path", str(base), "--whisper_window_s", "1"]
    args += ["--per_device_train_batch_size", "8"]
    train(quick_run_args("ravdess_wav2vec2_lora.yaml", silent_edges_corpus, cache, out, *args, *LONGER_RUN))
    return out


def side_clips(corpus: Path, record: RunRecord) -> tuple[list[Path], list[str]]:
    """The test side of ``record``'s split: files and reference labels (RAVDESS emotion codes in the names)."""
    names = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    files = sorted(p for a in record.split.test_speakers for p in (corpus / a).glob("*.wav"))
    return files, [names[int(p.stem.split("-")[2]) - 1] for p in files]


def pipeline_ua(run: Path, files: list[Path], refs: list[str]) -> tuple[float, list[dict]]:
    """UA of ``pipeline("audio-classification")`` fed the raw files read with soundfile, as a Hub user does, and
    its top answer per clip."""
    clf = pipeline("audio-classification", model=str(run), device="cpu")
    preds = []
    for f in files:
        wav, sr = sf.read(f, dtype="float32")
        wav = wav.mean(axis=1) if wav.ndim == 2 else wav  # the pipeline takes mono: users downmix
        preds.append(clf({"raw": wav, "sampling_rate": sr}, top_k=1)[0])
    return unweighted_average_recall(np.array([p["label"] for p in preds]), np.array(refs)), preds


@pytest.mark.parametrize("family", ["mel_cnn", "whisper_lora"])
def test_pipeline_on_raw_files_scores_what_the_report_says(family, melcnn_run, whisper_run, silent_edges_corpus):
    run = melcnn_run if family == "mel_cnn" else whisper_run
    record = RunRecord.load(run)
    files, refs = side_clips(silent_edges_corpus, record)
    assert len(files) == 240
    ua, preds = pipeline_ua(run, files, refs)
    assert abs(ua - record.ua) <= 0.005, (ua, record.ua)
    scores = np.array([p["score"] for p in preds])
    assert np.ptp(scores) > 1e-3  # the answers depend on the clip, so agreeing means the same input reached it
    assert len({p["label"] for p in preds}) > 1
    # ser_hf.predict gives every clip the pipeline's label and score
    ours = ser_hf.predict(str(run), files)
    assert [p.label for p in ours] == [p["label"] for p in preds]
    assert np.abs(np.array([p.score for p in ours]) - scores).max() < 1e-5
    if family == "mel_cnn":
        assert record.preprocessing.trim_db == 30
        assert json.loads((run / "preprocessor_config.json").read_text())["trim_db"] == 30
    else:  # the merged export keeps its stock extractor and was trained on untrimmed audio
        assert record.preprocessing.trim_db is None and record.preprocessing.window_s == 1.0
        assert record.model.lora["rank"] == 8


def test_the_trim_matters_and_ships_with_the_checkpoint(melcnn_run, silent_edges_corpus):
    """Without the checkpoint's trim the same model answers differently: the equality above is not luck."""
    record = RunRecord.load(melcnn_run)
    files, _ = side_clips(silent_edges_corpus, record)
    clf, fe = load_classifier(str(melcnn_run), "cpu")
    assert isinstance(fe, MelCNNFeatureExtractor) and fe.trim_db == 30
    plain = Wav2Vec2FeatureExtractor(feature_size=1, do_normalize=False, return_attention_mask=True)
    waves = [ser_hf.load_audio(f, 16000) for f in files[:40]]
    trimmed = ser_hf.inference.batch_probabilities(clf, fe, waves)
    untrimmed = ser_hf.inference.batch_probabilities(clf, plain, waves)
    assert np.abs(trimmed - untrimmed).max() > 0.01


_NO_SER_HF = r"""
import sys, json
sys.modules["ser_hf"] = None
sys.modules["peft"] = None
import soundfile as sf
from transformers import pipeline
clf = pipeline("audio-classification", model=sys.argv[1], trust_remote_code=True, device="cpu")
out = []
for path in sys.argv[2:]:
    wav, sr = sf.read(path, dtype="float32")
    wav = wav.mean(axis=1) if wav.ndim == 2 else wav
    out.append({d["label"]: d["score"] for d in clf({"raw": wav, "sampling_rate": sr}, top_k=None)})
print(json.dumps(out))
"""


def test_hub_users_without_ser_hf_get_the_same_trim(melcnn_run, silent_edges_corpus, tmp_path):
    record = RunRecord.load(melcnn_run)
    files, _ = side_clips(silent_edges_corpus, record)
    files = files[::24]
    done = subprocess.run(
        [sys.executable, "-c", _NO_SER_HF, str(melcnn_run), *map(str, files)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": "", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    remote = json.loads(done.stdout.strip().splitlines()[-1])
    local = ser_hf.predict(str(melcnn_run), files)
    for r, p in zip(remote, local, strict=True):
        assert max(abs(r[k] - p.probabilities[k]) for k in r) < 1e-5


def make_legacy(run: Path, dest: Path, trim_db) -> Path:
    """A run directory as ser_hf wrote it before the record: plain extractor, trim in split.json only."""
    shutil.copytree(run, dest)
    for extra in dest.glob("feature_extraction_*.py"):
        extra.unlink()
    record = json.loads((dest / "metrics.json").read_text())
    split = SplitDefinition(**record["split"])
    split.extra.update(trim_db=trim_db, sampling_rate=16000, max_eval_duration_s=None)
    split.save(dest / "split.json")
    legacy = {k: record[k] for k in ("wa", "ua", "macro_f1", "confusion_matrix", "label_names")}
    legacy.update(split=record["split"], model=record["model"], train_wall_time_s=1.0, device="cpu")
    (dest / "metrics.json").write_text(json.dumps(legacy))
    return dest


def test_legacy_mel_cnn_runs_load_with_the_trim_of_their_split_json(melcnn_run, silent_edges_corpus, tmp_path, caplog):
    legacy = make_legacy(melcnn_run, tmp_path / "legacy", 30)
    Wav2Vec2FeatureExtractor(feature_size=1, do_normalize=False, return_attention_mask=True).save_pretrained(legacy)
    record = RunRecord.load(legacy)
    assert record.legacy and record.preprocessing.trim_db == 30 and record.runtime.device == "cpu"
    _, fe = load_classifier(str(legacy), "cpu")
    assert isinstance(fe, MelCNNFeatureExtractor) and fe.trim_db == 30
    assert "predates storing the preprocessing" in caplog.text
    files, _ = side_clips(silent_edges_corpus, record)
    old = [p.label for p in ser_hf.predict(str(legacy), files[:30])]
    assert old == [p.label for p in ser_hf.predict(str(melcnn_run), files[:30])]


def test_legacy_transformer_runs_trained_on_trimmed_clips_are_refused(whisper_run, tmp_path):
    legacy = make_legacy(whisper_run, tmp_path / "legacy", 30)
    with pytest.raises(RunRecordError, match="train it again with the current config"):
        load_classifier(str(legacy), "cpu")
    untrimmed = make_legacy(whisper_run, tmp_path / "legacy_untrimmed", None)
    load_classifier(str(untrimmed), "cpu")  # nothing to replay: loads as is


def test_transformers_refuse_trim_and_crop_flags(silent_edges_corpus, tiny_backbones, tmp_path):
    base = quick_run_args(
        "ravdess_wav2vec2_lora.yaml",
        silent_edges_corpus,
        tmp_path / "c",
        tmp_path / "o",
        "--model_name_or_path",
        str(tiny_backbones["wav2vec2"]),
    )
    with pytest.raises(ValueError, match="--trim_db is for the mel-CNN only"):
        train([*base, "--trim_db", "30"])
    with pytest.raises(ValueError, match="--max_eval_duration_s is for the mel-CNN only"):
        train([*base, "--max_eval_duration_s", "2"])
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_run_record_round_trip(melcnn_run, tmp_path):
    record = RunRecord.load(melcnn_run)
    assert not record.legacy and record.family == "mel_cnn" and record.runtime.threads >= 1
    record.save(tmp_path)
    again = RunRecord.load(tmp_path)
    assert again == record
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(RunRecordError, match="metrics.json: not valid JSON"):
        RunRecord.load(tmp_path)
    with pytest.raises(RunRecordError, match="missing"):
        RunRecord.load(tmp_path / "nothing")


def test_feature_extractor_refuses_bad_input_and_settings():
    fe = MelCNNFeatureExtractor(trim_db=30)
    with pytest.raises(ValueError, match="NaN / infinite"):
        fe(np.array([0.1, np.nan, 0.2], dtype=np.float32))
    with pytest.raises(ValueError, match="8000 Hz but this model takes 16000 Hz"):
        fe(np.zeros(100, dtype=np.float32), sampling_rate=8000)
    with pytest.raises(ValueError, match="trim_db must be a positive"):
        MelCNNFeatureExtractor(trim_db=-5)

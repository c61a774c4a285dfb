"""The write-ups' classic system under this toolkit's protocol: utterance statistics of MFCC, chroma and log-mel
features into a small multilayer perceptron (scikit-learn), as in ``../shared/seeds/001_ravdess_mlp.md`` (which
reported 73 % accuracy on a random utterance split, where every test speaker was also trained on).

    ser-hf classic --data_dir ../shared/data/ravdess-16k --output_dir runs/ravdess_classic_mlp \\
        --all_folds --seeds 42 43 44

Features per clip (librosa 0.10+ defaults: 2048-sample FFT, 512-sample hop, at 16 kHz), after the same 30 dB
silence trim as the mel-CNN: the mean over frames of 40 MFCCs, 12 chroma bins and 128 log-mel bands (dB), 180
values. Model: ``StandardScaler`` then ``MLPClassifier`` (one hidden layer of 300 ReLU units, L2 0.01, Adam with
batch 256, up to 500 epochs), the seeds' settings. Same speaker-independent folds, same metrics.

Every fold writes a run directory that ``ser-hf compare`` reads like a trained checkpoint's: ``metrics.json`` /
``split.json`` (:class:`ser_hf.run.RunRecord`), ``model.joblib`` (the fitted scikit-learn pipeline) and
``eval_<corpus>_test/`` (``evaluation.json`` with inference timing, ``predictions.jsonl``), the evaluation report of
:func:`ser_hf.evaluation.evaluate_checkpoint`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .environment import machine_facts
from .run import ModelDescription, Preprocessing, RunRecord, Runtime, TrainingSettings

logger = logging.getLogger(__name__)

FEATURES = {"mfcc": 40, "chroma": 12, "log_mel": 128}
"""Feature groups and their sizes (utterance means)."""


@dataclass
class ClassicSettings:
    """The classic system's recipe (the seeds' values by default).

    Args:
        trim_db: silence trim in dB below the peak before feature extraction (``None``: none).
        hidden_units: units of the MLP's hidden layer.
        alpha: L2 penalty of ``MLPClassifier``.
        batch_size: Adam mini-batch size.
        max_iter: most training epochs.

    Raises:
        ValueError: a non-positive value (named).
    """

    trim_db: float | None = 30.0
    hidden_units: int = 300
    alpha: float = 0.01
    batch_size: int = 256
    max_iter: int = 500

    def __post_init__(self):
        for name in ("hidden_units", "batch_size", "max_iter"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if self.trim_db is not None and not self.trim_db > 0:
            raise ValueError(f"trim_db must be a positive number of dB below the peak, got {self.trim_db}")


def utterance_features(wav: np.ndarray, sampling_rate: int, trim_db: float | None = 30.0) -> np.ndarray:
    """Mean over frames of 40 MFCCs, 12 chroma bins and 128 log-mel bands (dB) of one clip.

    Args:
        wav: mono waveform ``(num_samples,)`` at ``sampling_rate`` Hz.
        trim_db: trim leading / trailing silence this many dB below the peak first (``None``: keep all).

    Returns:
        ``(180,)`` float32: MFCC, then chroma, then log-mel means.
    """
    try:
        import librosa
    except ImportError as err:
        raise ImportError(
            "the classic system computes MFCC / chroma with librosa: pip install 'ser_hf[classic]'"
        ) from err

    from .models.mel_cnn.feature_extraction_mel_cnn import trim_silence

    wav = np.asarray(wav, dtype=np.float32)
    if trim_db is not None:
        wav = trim_silence(wav, trim_db)
    power = np.abs(librosa.stft(wav)) ** 2  # (1025, frames)
    mel = librosa.feature.melspectrogram(S=power, sr=sampling_rate, n_mels=FEATURES["log_mel"])
    log_mel = librosa.power_to_db(mel)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=FEATURES["mfcc"])
    chroma = librosa.feature.chroma_stft(S=power, sr=sampling_rate, n_chroma=FEATURES["chroma"])
    return np.concatenate([mfcc.mean(1), chroma.mean(1), log_mel.mean(1)]).astype(np.float32)


def make_pipeline(settings: ClassicSettings, seed: int):
    """The scikit-learn pipeline: ``StandardScaler`` -> ``MLPClassifier``."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline as sk_pipeline
    from sklearn.preprocessing import StandardScaler

    return sk_pipeline(
        StandardScaler(),
        MLPClassifier(
            hidden_layer_sizes=(settings.hidden_units,),
            alpha=settings.alpha,
            batch_size=settings.batch_size,
            learning_rate="adaptive",
            max_iter=settings.max_iter,
            random_state=seed,
        ),
    )


def run_fold(features, rows, label_names, split, settings: ClassicSettings, seed: int, out: Path) -> RunRecord:
    """Fit on ``split``'s train side, score validation and test, write the run directory ``out``.

    Args:
        features: ``(num_clips, 180)`` from :func:`utterance_features`, in corpus order.
        rows: the corpus columns ``id``, ``speaker``, ``label``, ``num_samples`` as lists, ``feature_s`` (seconds of
            feature extraction per clip) and ``sampling_rate`` (Hz).
        split: :class:`ser_hf.folds.SplitDefinition` of the fold.

    Returns:
        The fold's :class:`ser_hf.run.RunRecord`.
    """
    import joblib
    import torch

    from .metrics import compute_ser_metrics, plot_confusion_matrix

    speakers_of = {s: set(split.speakers(s)) for s in ("train", "validation", "test")}
    side = {s: np.array([spk in wanted for spk in rows["speaker"]]) for s, wanted in speakers_of.items()}
    labels = np.asarray(rows["label"])
    model = make_pipeline(settings, seed)
    start = time.perf_counter()
    model.fit(features[side["train"]], labels[side["train"]])
    wall = time.perf_counter() - start
    mlp = model[-1]
    num_params = int(sum(w.size for w in mlp.coefs_) + sum(b.size for b in mlp.intercepts_))

    def score(mask):
        return compute_ser_metrics(model.predict(features[mask]), labels[mask], len(label_names))

    validation = {k: float(v) for k, v in score(side["validation"]).items() if k in ("ua", "wa", "macro_f1")}
    test_idx = np.flatnonzero(side["test"])
    start = time.perf_counter()
    probs = model.predict_proba(features[test_idx])  # (num_test, num_labels)
    inference_s = time.perf_counter() - start  # the MLP alone; feature extraction is counted below
    pred = probs.argmax(1)
    test = compute_ser_metrics(pred, labels[test_idx], len(label_names))
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    record = RunRecord(
        split=split,
        label_names=list(label_names),
        test=test,
        preprocessing=Preprocessing(trim_db=settings.trim_db, features=dict(FEATURES), statistic="mean over frames"),
        model=ModelDescription(
            family="classic_mlp", model_type="sklearn MLPClassifier", hidden_units=settings.hidden_units
        ),
        parameters={"trainable": num_params, "total": num_params},
        training=TrainingSettings(
            seed=seed, alpha=settings.alpha, batch_size=settings.batch_size, max_iter=settings.max_iter
        ),
        runtime=Runtime(
            train_wall_time_s=wall,
            validation=validation,
            best_validation=validation["ua"],
            select_best_by="last",
            device="cpu",
            threads=torch.get_num_threads(),
            machine=machine_facts(),
            train_clips=int(side["train"].sum()),
            epochs_run=int(mlp.n_iter_),
        ),
    )
    record.save(out)
    plot_confusion_matrix(test["confusion_matrix"], label_names, out / "confusion_matrix.png")

    write_test_report(out, split.corpus, rows, test_idx, test, probs, list(label_names), inference_s)
    return record


def write_test_report(out: Path, corpus: str, rows, test_idx, test: dict, probs, label_names, inference_s: float):
    """The evaluation report of a fold's test side that ``ser-hf compare`` collects, into
    ``out/eval_<corpus>_test/`` (the same record as :func:`ser_hf.evaluation.evaluate_checkpoint` writes).

    Args:
        test_idx: ``(num_test,)`` row indices of the test clips; test: their scores; probs: ``(num_test,
            num_labels)``; inference_s: seconds the MLP took (the clips' feature extraction time is added).
    """
    from .evaluation import group_ua, inference_timing, write_evaluation_report
    from .reports.evaluation_report import EvaluationReport

    labels = np.asarray(rows["label"])[test_idx]
    feature_s = float(np.sum(np.asarray(rows["feature_s"])[test_idx]))
    audio_s = float(np.sum(np.asarray(rows["num_samples"])[test_idx]) / rows["sampling_rate"])
    speakers = [rows["speaker"][i] for i in test_idx]
    report = EvaluationReport(
        **test,
        model=str(out),
        corpus=corpus,
        scope="test",
        num_clips=len(test_idx),
        label_names=label_names,
        speakers=sorted(set(speakers)),
        per_speaker=group_ua(probs.argmax(1), labels, speakers),
        inference=inference_timing(inference_s + feature_s, audio_s, "cpu", len(test_idx)),
        data_dir=rows.get("data_dir"),
        data_fingerprint=rows.get("data_fingerprint"),
    )
    title = f"{out.name} on {corpus} test: UA {test['ua']:.3f}"
    ids = [rows["id"][i] for i in test_idx]
    write_evaluation_report(out / f"eval_{corpus}_test", report, ids, speakers, labels, probs, label_names, title)


def classic_parser():
    """The flags of ``ser-hf classic`` (corpus, folds, seeds, and the :class:`ClassicSettings` fields)."""
    import argparse

    from transformers.hf_argparser import string_to_bool

    from .corpora import CORPORA

    parser = argparse.ArgumentParser(prog="ser-hf classic", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", required=True, help="corpus folder in its documented layout")
    parser.add_argument("--corpus", default="ravdess", choices=list(CORPORA), help="corpus name (folder: your clips)")
    parser.add_argument("--corpus_config", default=None)
    parser.add_argument("--cache_dir", default=None, help="datasets cache folder")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--protocol", default="folds")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--all_folds", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--num_val_speakers", type=int, default=2)
    parser.add_argument("--sampling_rate", type=int, default=16000)
    parser.add_argument("--overwrite_output_dir", action="store_true")
    parser.add_argument(
        "--verify_counts",
        type=string_to_bool,
        default=True,
        help="check the corpus's documented counts (false: a subset)",
    )
    defaults = ClassicSettings()
    for name in ("trim_db", "hidden_units", "alpha", "batch_size", "max_iter"):
        kind = int if name in ("hidden_units", "batch_size", "max_iter") else float
        parser.add_argument(f"--{name}", type=kind, default=getattr(defaults, name))
    return parser


def main(argv: list[str] | None = None) -> dict:
    """``ser-hf classic``: fit and score the classic system on one fold or every fold, once per seed.

    Returns:
        One seed and fold: the fold's record; otherwise :class:`ser_hf.grid.SeedGrid` as a dict (also written to
        ``OUTPUT_DIR/seeds_results.json``, with ``cv_results.json`` per seed for ``--all_folds``).

    Raises:
        FileExistsError: ``--output_dir`` already holds runs (``--overwrite_output_dir`` replaces only run files).
    """
    import torch

    from .corpora import decode_channel, load_corpus
    from .data import clip_list_fingerprint, decode_dataset
    from .environment import configure_logging
    from .folds import make_split, num_folds
    from .grid import CrossValidation, SeedGrid, check_output_dir, fold_dir, seed_dir

    args = classic_parser().parse_args(argv)
    configure_logging()
    settings = ClassicSettings(
        **{k: getattr(args, k) for k in ("trim_db", "hidden_units", "alpha", "batch_size", "max_iter")}
    )
    if len(set(args.seeds)) != len(args.seeds):
        raise ValueError(f"--seeds {args.seeds}: each seed once")
    root = Path(args.output_dir)
    check_output_dir(
        root,
        args.overwrite_output_dir,
        {"--data_dir": args.data_dir, "--cache_dir": args.cache_dir},
        resume_hint=None,
        overwrite_hint="--overwrite_output_dir",
    )

    ds = load_corpus(
        args.corpus,
        args.data_dir,
        args.corpus_config,
        args.cache_dir,
        **({} if args.verify_counts else {"verify_counts": False}),
    )
    decoded = decode_dataset(ds, args.sampling_rate, channel=decode_channel(args.corpus)).with_format("numpy")
    features, feature_s = [], []
    for wav in decoded["input_values"]:
        start = time.perf_counter()
        features.append(utterance_features(wav, args.sampling_rate, settings.trim_db))
        feature_s.append(time.perf_counter() - start)
    features = np.stack(features)  # (num_clips, 180)
    rows = {k: list(ds[k]) for k in ("id", "speaker", "label")}
    rows |= {"num_samples": list(decoded["num_samples"]), "feature_s": feature_s, "sampling_rate": args.sampling_rate}
    rows |= {"data_dir": str(args.data_dir), "data_fingerprint": clip_list_fingerprint(ds)}
    label_names = ds.features["label"].names
    folds = range(num_folds(args.corpus, rows["speaker"], args.protocol)) if args.all_folds else [args.fold]
    logger.info(
        "classic: %d features of %d clips; %d threads", features.shape[1], len(features), torch.get_num_threads()
    )

    per_seed = {}
    for seed in args.seeds:
        seed_root = seed_dir(root, seed)
        per_seed[seed] = {}
        for k in folds:
            split = make_split(args.corpus, rows["speaker"], args.protocol, k, args.num_val_speakers, seed=seed)
            out = fold_dir(seed_root, k) if args.all_folds else seed_root
            per_seed[seed][k] = run_fold(features, rows, label_names, split, settings, seed, out)
            logger.info("classic seed %s fold %s: UA %.4f", seed, k, per_seed[seed][k].ua)
        if args.all_folds:
            CrossValidation.of(per_seed[seed]).save(seed_root)
    grid = SeedGrid.of({s: {k: r.scores for k, r in runs.items()} for s, runs in per_seed.items()})
    grid.save(root)
    summary = grid.to_dict()
    ua = summary["overall"]["ua"]
    logger.info("classic over seeds %s: UA %.4f (mean over folds)", args.seeds, ua["mean"])
    return summary

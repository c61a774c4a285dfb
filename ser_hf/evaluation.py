"""Evaluate any saved checkpoint on any corpus: in-corpus folds, whole corpora, cross-corpus transfer.

``ser-hf evaluate MODEL --corpus NAME --data_dir DIR [--fold K | --split test|all]`` runs
:func:`evaluate_checkpoint`. Scores are computed on the labels the model and the corpus share
(:mod:`ser_hf.labels`): the model's probabilities are renormalised over the shared labels, clips of labels the
model cannot predict are left out, and both dropped sets are named in the report.

Every clip goes through the checkpoint's own feature extractor (:func:`ser_hf.inference.batch_probabilities`), the
one definition of its preprocessing (silence trim, crop, window), exactly as ``pipeline("audio-classification")``
runs it: an evaluation never re-decides how clips are trimmed.

Leakage guard: every ser_hf checkpoint carries ``split.json`` (corpus, speakers per side). Scoring a model on
speakers of its own training or validation side raises :class:`ser_hf.folds.LeakageError` unless
``allow_seen_speakers`` is set; the report then lists the seen speakers under ``leakage``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from .corpora import decode_channel, load_corpus
from .data import clip_list_fingerprint, decode_dataset
from .environment import machine_facts
from .folds import LeakageError, SplitDefinition, make_split
from .inference import load_classifier, predict_probabilities
from .labels import CANONICAL, shared_label_plan
from .metrics import compute_ser_metrics, per_group_scores, plot_confusion_matrix, unweighted_average_recall
from .models.summary import describe_preprocessing
from .reports.evaluation_report import PREDICTIONS_FILE, EvaluationReport, is_report_dir

logger = logging.getLogger(__name__)

SPLITS = ("test", "all")


def load_checkpoint_split(model: str) -> SplitDefinition | None:
    """The ``split.json`` stored with a checkpoint (local folder or hub repo), or ``None`` when it has none."""
    local = Path(model) / "split.json"
    if local.is_file():
        return SplitDefinition.load(local)
    if Path(model).exists():
        return None
    try:
        from huggingface_hub import hf_hub_download

        return SplitDefinition.load(hf_hub_download(model, "split.json"))
    except Exception:  # no such file in the repo, or the hub is unreachable: no guard information
        return None


def group_ua(pred: np.ndarray, ref: np.ndarray, groups: list[str]) -> dict[str, dict]:
    """UA (mean recall over the classes present in the group) and clip count per group, e.g. per speaker."""
    groups_arr = np.asarray(groups)
    out = {}
    for g in sorted(set(groups)):
        m = groups_arr == g
        out[g] = {"ua": unweighted_average_recall(pred[m], ref[m]), "clips": int(m.sum())}
    return out


def scores_by_corpus(model, fe, side, corpora: list[str], batch_size: int = 16) -> dict[str, dict]:
    """:func:`ser_hf.metrics.per_group_scores` of ``model`` on one side (e.g. the validation side of a multi-corpus
    run) through its feature extractor ``fe``, as ``pipeline()`` runs it: ``{corpus: {wa, ua, macro_f1, clips}}``, plus
    ``mean`` ``{ua, wa, macro_f1}``, the unweighted mean over the corpora (each corpus counts once, as the
    in-corpus comparisons count them).

    Args:
        side: rows ``{"input_values": (num_samples,) float32 at fe's rate, "label": int}``.
        corpora: the corpus of every row, shape ``(num_rows,)``.
    """
    waves = [np.asarray(w, dtype=np.float32) for w in side["input_values"]]
    pred = predict_probabilities(model, fe, waves, batch_size).argmax(-1)
    out = per_group_scores(pred, np.asarray(side["label"]), corpora, model.config.num_labels)
    return out | {"mean": {k: float(np.mean([v[k] for v in out.values()])) for k in ("ua", "wa", "macro_f1")}}


def scored_speakers(corpus, speakers, saved, trained, fold, split, protocol) -> tuple[list[str], str]:
    """The speakers an evaluation scores and its scope name: fold ``K``'s test side (``fold{K}``), the
    checkpoint's own test side of this corpus (``test``) or every speaker (``all``).

    Args:
        saved: the checkpoint's split as seen from ``corpus`` (:meth:`SplitDefinition.for_corpus`), or ``None``.
        trained: the checkpoint's whole split, or ``None`` (named in errors).

    Raises:
        ValueError: ``split="test"`` without a split for this corpus.
    """
    if fold is not None:
        proto = protocol or (saved.protocol if saved is not None and saved.protocol != "loco" else "folds")
        return make_split(corpus, speakers, proto, fold).test_speakers, f"fold{fold}"
    if split == "test":
        if saved is None:
            raise ValueError(
                f"--split test needs the checkpoint's split.json for corpus {corpus!r}"
                + (f" (it was trained on {trained.corpus!r})" if trained else " (the checkpoint has none)")
                + "; use --fold K or --split all"
            )
        return saved.test_speakers, "test"
    return sorted(set(speakers)), "all"


def check_leakage(model, corpus: str, chosen: list[str], saved, allow_seen_speakers: bool) -> dict:
    """The report's ``leakage`` block: whether the checkpoint's split could be checked, and the scored speakers it
    trained or validated on.

    Raises:
        LeakageError: such speakers are scored and ``allow_seen_speakers`` is off.
    """
    leakage = {"checked": saved is not None, "seen_speakers": []}
    if saved is None:
        return leakage
    seen = sorted(set(chosen) & (set(saved.train_speakers) | set(saved.val_speakers)))
    leakage["seen_speakers"] = seen
    if seen and not allow_seen_speakers:
        raise LeakageError(
            f"{model} was trained / validated on speakers {seen} of {corpus}, which this evaluation would "
            "score; choose another fold or split, or pass --allow_seen_speakers to score them anyway "
            "(the report will flag it)"
        )
    if seen:
        logger.warning("scoring speakers the model has seen in training / validation: %s", seen)
    return leakage


def label_plan(clf, ds, corpus: str, label_aliases: dict[str, str] | None, labels: list[str] | None = None):
    """How the model's labels meet the corpus's (:func:`ser_hf.labels.shared_label_plan`), kept to ``labels``
    when given.

    Raises:
        ValueError: fewer than two shared labels (a score over one label is trivially perfect), or a label of
            ``labels`` that model and corpus do not share.
    """
    model_labels = [clf.config.id2label[i] for i in range(clf.config.num_labels)]
    plan = shared_label_plan(model_labels, ds.features["label"].names, label_aliases, only=labels)
    if len(plan.shared) < 2:
        raise ValueError(
            f"the model and {corpus} share only the label {plan.shared}: renormalised over one label every clip "
            "would be scored correct; map more labels with --label_alias, or use `ser-hf predict` to see the "
            "model's answers over all its labels"
        )
    return plan


def clips_to_score(ds, chosen: list[str], scope: str, saved, plan, corpus: str) -> tuple[list[int], list[bool]]:
    """Rows of ``ds`` to score: clips of the ``chosen`` speakers (of the utterance-level test side for a
    ``speaker_dependent`` checkpoint) whose label the model shares; and which rows were in scope at all.

    Raises:
        ValueError: no clip is left.
    """
    keep_label = set(plan.corpus_index)
    wanted = set(chosen)
    in_scope = [s in wanted for s in ds["speaker"]]
    if scope == "test" and saved.protocol == "speaker_dependent":  # utterance-level test side
        test_ids = set(saved.extra["utterances"]["test"])
        in_scope = [u in test_ids for u in ds["id"]]
    rows = [i for i, (ok, y) in enumerate(zip(in_scope, ds["label"], strict=True)) if ok and y in keep_label]
    if not rows:
        raise ValueError(f"no clip of {corpus} is left to score: {len(wanted)} speakers, shared labels {plan.shared}")
    return rows, in_scope


def score_clips(clf, fe, subset, plan, batch_size: int):
    """Predict decoded clips through the checkpoint's feature extractor, renormalised over the shared labels.

    Returns:
        ``(pred, ref, probs, inference)``: predicted and reference indices into ``plan.shared``, shape
        ``(num_clips,)``; probabilities ``(num_clips, len(plan.shared))``; the report's ``inference`` block.
    """
    keep_label = {c: k for k, c in enumerate(plan.corpus_index)}
    waves = [np.asarray(w, dtype=np.float32) for w in subset.with_format("numpy")["input_values"]]
    start = time.perf_counter()
    probs = predict_probabilities(clf, fe, waves, batch_size)[:, plan.model_index]
    inference_s = time.perf_counter() - start
    audio_s = sum(len(w) for w in waves) / fe.sampling_rate
    probs = probs / probs.sum(axis=1, keepdims=True)  # renormalised over the shared labels
    ref = np.array([keep_label[y] for y in subset["label"]])
    inference = inference_timing(inference_s, audio_s, str(next(clf.parameters()).device), batch_size)
    return probs.argmax(1), ref, probs, inference


def report_of(pred, ref, subset, plan, fe, facts: dict, leakage: dict, inference: dict, trained) -> EvaluationReport:
    """The evaluation report: :func:`ser_hf.metrics.compute_ser_metrics` over the shared labels, then ``facts``
    (model, corpus, scope, speakers, clip count), the preprocessing, the label plan, per-speaker and per-gender
    UA, the leakage check, inference timing and what the checkpoint was trained on."""
    return EvaluationReport(
        **compute_ser_metrics(pred, ref, len(plan.shared)),
        **facts,
        preprocessing=describe_preprocessing(fe),
        label_names=plan.shared,
        shared_labels=plan.shared,
        dropped_model_labels=plan.dropped_model,
        dropped_corpus_labels=plan.dropped_corpus,
        per_speaker=group_ua(pred, ref, subset["speaker"]),
        per_gender=group_ua(pred, ref, subset["gender"]) if all(subset["gender"]) else {},
        leakage=leakage,
        inference=inference,
        trained_on=None
        if trained is None
        else {"corpus": trained.corpus, "protocol": trained.protocol, "fold": trained.fold},
    )


def checkpoint_sides(model: str, corpus: str, fold: int | None, split: str | None):
    """The checkpoint's ``split.json`` (``None`` if it has none), its sides as seen from ``corpus`` (a member of a
    multi-corpus split included; ``None`` for a corpus it never saw), and the ``split`` to score (default:
    ``test`` for a corpus it has sides on, else ``all``).

    Raises:
        ValueError: an unknown ``split``, or both ``fold`` and ``split="all"``.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"--split {split!r} is not valid; choose one of {', '.join(SPLITS)}")
    if fold is not None and split == "all":
        raise ValueError("give either --fold or --split all, not both")
    trained = load_checkpoint_split(model)
    saved = trained.for_corpus(corpus) if trained is not None else None
    if fold is None and split is None:
        split = "test" if saved is not None else "all"
    return trained, saved, split


def evaluate_checkpoint(
    model: str,
    corpus: str,
    data_dir: str,
    fold: int | None = None,
    split: str | None = None,
    protocol: str | None = None,
    corpus_config: str | None = None,
    allow_seen_speakers: bool = False,
    output_dir: str | None = None,
    cache_dir: str | None = None,
    batch_size: int = 16,
    label_aliases: dict[str, str] | None = None,
    labels: list[str] | None = None,
    **corpus_kwargs,
) -> EvaluationReport:
    """Score a checkpoint on a corpus and write the report folder (:mod:`ser_hf.reports.evaluation_report`:
    ``evaluation.json``, ``predictions.jsonl``, ``confusion_matrix.png``).

    Args:
        model: checkpoint folder or hub id (anything ``AutoModelForAudioClassification`` loads; ser_hf's
            mel-CNN included).
        corpus / data_dir / corpus_config: the corpus to score on (see :func:`ser_hf.load_corpus`).
        fold: score the test side of this fold of ``protocol`` (default: the checkpoint's protocol when it was
            trained on the same corpus, else ``folds``).
        split: ``test`` (the checkpoint's own test speakers; needs its ``split.json`` for this corpus) or ``all``
            (every clip). Default: ``test`` for the corpus the model was trained on, ``all`` for others.
        allow_seen_speakers: score speakers the model was trained or validated on, flagged in the report.
        output_dir: where the report goes (default: :func:`default_report_dir`, which names ``labels`` when
            given). An existing report is not overwritten.
        label_aliases: extra ``alias -> canonical`` label mappings (see :mod:`ser_hf.labels`); for a folder corpus
            they also merge labels written differently in its metadata (``Angry`` beside ``angry``).
        labels: score only these of the shared labels (e.g. ``["angry", "happy", "neutral", "sad"]``, EmoBox's
            cross-corpus four): the probabilities are renormalised over them and clips of other labels are not
            scored. Default: every shared label.
        **corpus_kwargs: builder config fields (``metadata=...`` for a folder corpus).

    Returns:
        The :class:`ser_hf.reports.evaluation_report.EvaluationReport` written to ``evaluation.json``: WA, UA, macro-F1,
        per-class precision / recall / F1, confusion matrix (shared labels, model order), per-speaker and
        per-gender UA, shared and dropped labels, the leakage check, clip counts, and inference timing (``rtf``:
        wall seconds per second of audio, after decoding). ``predictions.jsonl`` beside it holds one line per
        clip: id, speaker, reference, prediction and the renormalised probabilities.

    Raises:
        LeakageError: evaluated speakers were seen in training / validation and ``allow_seen_speakers`` is off.
        ValueError: bad ``split`` or ``fold`` choice, a label of ``labels`` the model and corpus do not share,
            fewer than two shared labels (a score over one label is trivially perfect), no clip left to score.
        FileExistsError: ``output_dir`` already holds a report.
    """
    trained, saved, split = checkpoint_sides(model, corpus, fold, split)
    if corpus == "folder" and label_aliases:  # the same mapping merges differently written labels of the folder
        corpus_kwargs.setdefault("label_aliases", dict(label_aliases))
    ds = load_corpus(corpus, data_dir, corpus_config, cache_dir, **corpus_kwargs)
    speakers = ds["speaker"]
    chosen, scope = scored_speakers(corpus, speakers, saved, trained, fold, split, protocol)
    leakage = check_leakage(model, corpus, chosen, saved, allow_seen_speakers)
    clf, fe = load_classifier(model)
    plan = label_plan(clf, ds, corpus, label_aliases, labels)
    rows, in_scope = clips_to_score(ds, chosen, scope, saved, plan, corpus)
    subset = decode_dataset(ds.select(rows), fe.sampling_rate, channel=decode_channel(corpus))
    pred, ref, probs, inference = score_clips(clf, fe, subset, plan, batch_size)

    facts = {"model": str(model), "corpus": corpus, "corpus_config": corpus_config, "data_dir": str(data_dir)}
    facts |= {"scope": scope, "speakers": sorted(set(chosen) & set(subset["speaker"])), "num_clips": len(rows)}
    report = report_of(pred, ref, subset, plan, fe, facts, leakage, inference, trained)
    report.clips_dropped_for_labels = int(sum(in_scope) - len(rows))
    # what it was computed on, so that a later call reuses it only for the same clips and checkpoint
    report.data_fingerprint = clip_list_fingerprint(ds)
    report.checkpoint_fingerprint = checkpoint_fingerprint(model)
    warn_dropped_labels(plan)
    out = (
        Path(output_dir)
        if output_dir is not None
        else default_report_dir(model, corpus, corpus_config, scope, plan.shared if labels else None)
    )
    title = f"{Path(str(model)).name} on {corpus} {scope}: UA {report.ua:.3f}"
    write_evaluation_report(out, report, subset["id"], subset["speaker"], ref, probs, plan.shared, title=title)
    return report


def warn_dropped_labels(plan) -> None:
    """Log the labels the scoring leaves out (of the model and of the corpus), when there are any."""
    if plan.dropped_model or plan.dropped_corpus:
        logger.warning(
            "scored on the shared labels %s; model labels dropped: %s; corpus labels dropped: %s",
            plan.shared,
            plan.dropped_model,
            plan.dropped_corpus,
        )


def evaluation_of(
    run: str | Path, corpus: str, data_dir: str, scope: str, labels: list[str] | None = None, **eval_kwargs
) -> EvaluationReport:
    """The evaluation of checkpoint ``run`` on ``corpus`` (``scope`` ``test`` or ``all``; only ``labels`` of the
    shared labels when given, canonical names), computed once into :func:`default_report_dir` and read back
    from there on later calls (``compare``, ``cross-corpus``) when it was computed on the same clips and the same
    checkpoint (:func:`check_stored_evaluation`).

    Raises:
        ValueError: a stored evaluation of another corpus folder's clips or of another checkpoint (named, with
            what to do); ser_hf.corpora.CorpusError: ``data_dir`` is not a ``corpus`` folder.
    """
    out = default_report_dir(str(run), corpus, None, scope, labels)
    if not is_report_dir(out):
        if Path(run).is_dir() and not has_weights(run):
            raise FileNotFoundError(
                f"{run}: no weights (model.safetensors) to score and no stored evaluation {out.name}/ of {corpus} "
                f"({scope}); a copy made by ser_hf.grid.copy_records is reported only from the evaluations it holds"
            )
        evaluate_checkpoint(str(run), corpus, data_dir, split=scope, output_dir=str(out), labels=labels, **eval_kwargs)
        return EvaluationReport.load(out)
    stored = EvaluationReport.load(out)
    corpus_kwargs = {k: v for k, v in eval_kwargs.items() if k not in ("cache_dir", "batch_size", "label_aliases")}
    ds = load_corpus(corpus, data_dir, None, eval_kwargs.get("cache_dir"), **corpus_kwargs)
    check_stored_evaluation(stored, str(run), ds, data_dir)
    return stored


WEIGHT_FILES = ("*.safetensors", "pytorch_model*.bin", "model.joblib")


def has_weights(folder: str | Path) -> bool:
    """Whether a local checkpoint folder holds model weights (a run's records copied without them does not)."""
    return any(any(Path(folder).glob(pattern)) for pattern in WEIGHT_FILES)


def checkpoint_fingerprint(model: str) -> str | None:
    """A hash of a local checkpoint's config and weight files (names, sizes, modification times); ``None`` for a
    hub id, and for a folder without weights (records kept by :func:`ser_hf.grid.copy_records`: there is no
    checkpoint to check a stored evaluation against). A run trained again in the same folder gets another one."""
    folder = Path(model)
    if not folder.is_dir() or not has_weights(folder):
        return None
    h = hashlib.sha256()
    for path in sorted(folder.glob("*")):
        if path.is_file() and path.suffix in (".json", ".safetensors", ".bin") and path.name != "metrics.json":
            st = path.stat()
            h.update(f"{path.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def check_stored_evaluation(stored: EvaluationReport, model: str, ds, data_dir: str) -> None:
    """Refuse to reuse a stored evaluation that was computed on other clips (:func:`ser_hf.data.
    clip_list_fingerprint` of the corpus as loaded from ``data_dir`` now) or on another checkpoint
    (:func:`checkpoint_fingerprint`). A report written before fingerprints were stored is reused only for the same
    data folder (with a warning: its clips cannot be checked).

    Raises:
        ValueError: naming the stored report, what it was computed on and what is asked now.
    """
    where = stored.output_dir
    fix = f"remove {where} to score it again, or pass the data folder it was computed on"
    now_fp = clip_list_fingerprint(ds)
    then_fp = stored.data_fingerprint
    if then_fp is None:
        same = stored.data_dir and Path(stored.data_dir).expanduser().resolve() == Path(data_dir).expanduser().resolve()
        if not same:
            raise ValueError(
                f"{where}: this stored evaluation scored {stored.corpus} in {stored.data_dir}, not in {data_dir} "
                f"(it predates clip fingerprints, so it cannot be checked against the clips there); {fix}"
            )
        logger.warning("%s: written before clip fingerprints were stored; reused for the same folder", where)
    elif then_fp != now_fp:
        raise ValueError(
            f"{where}: this stored evaluation scored other clips ({stored.num_clips} clips of {stored.data_dir}, "
            f"clip-list fingerprint {then_fp}) than {stored.corpus} in {data_dir} holds now ({len(ds)} clips, "
            f"fingerprint {now_fp}); {fix}"
        )
    then_ckpt, now_ckpt = stored.checkpoint_fingerprint, checkpoint_fingerprint(model)
    if then_ckpt is not None and now_ckpt is not None and then_ckpt != now_ckpt:
        raise ValueError(
            f"{where}: this stored evaluation scored another checkpoint than the one now in {model} (its weights or "
            f"config changed since); remove {where} to score the current one"
        )


def default_report_dir(
    model: str, corpus: str, corpus_config: str | None, scope: str, labels: list[str] | None = None
) -> Path:
    """``<model>/eval_<corpus>[_<config>]_<scope>[_<labels>]`` for a local checkpoint, else that folder name in the
    working directory; ``labels`` (canonical names, of an evaluation kept to them) joined by ``-`` in
    :data:`ser_hf.labels.CANONICAL` order, so one label set always names one folder."""
    base = Path(model) if Path(model).is_dir() else Path.cwd()
    name = f"eval_{corpus}{'_' + corpus_config if corpus_config else ''}_{scope}"
    if labels:
        rank = {c: n for n, c in enumerate(CANONICAL)}
        name += "_" + "-".join(sorted(labels, key=lambda c: (rank.get(c, len(rank)), c)))
    return base / name


def inference_timing(wall_s: float, audio_s: float, device: str, batch_size: int) -> dict:
    """The ``inference`` block of an evaluation report.

    Args:
        wall_s: seconds spent predicting (what a user waits for; feature extraction included where the system
            computes features itself).
        audio_s: seconds of audio scored.

    Returns:
        ``wall_s``, ``audio_s``, ``rtf`` (real-time factor: wall_s / audio_s, below 1 is faster than real
        time), ``device``, ``threads`` (torch's intra-op threads), ``batch_size`` and ``machine``
        (:func:`ser_hf.environment.machine_facts`: CPU model or GPU name, library versions).
    """
    return {
        "wall_s": wall_s,
        "audio_s": audio_s,
        "rtf": wall_s / max(audio_s, 1e-9),
        "device": device,
        "threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "machine": machine_facts(),
    }


def write_evaluation_report(
    out: Path,
    report: EvaluationReport,
    ids: list[str],
    speakers: list[str],
    ref: np.ndarray,
    probs: np.ndarray,
    label_names: list[str],
    title: str | None = None,
) -> None:
    """Write an evaluation report folder: ``evaluation.json``, ``predictions.jsonl`` and ``confusion_matrix.png``.

    The one writer of the files ``ser-hf compare`` reads, for checkpoints (:func:`evaluate_checkpoint`) and for
    the classic system (:func:`ser_hf.classic.run_fold`).

    Args:
        out: the report directory (created).
        report: what was measured (its ``output_dir`` is set to ``out``).
        ids, speakers: per clip, in the order of ``ref`` and ``probs``.
        ref: ``(num_clips,)`` reference label indices into ``label_names``.
        probs: ``(num_clips, num_labels)`` predicted probabilities; the prediction is their argmax.

    Raises:
        FileExistsError: ``out`` already holds a report (reports are never replaced).
    """
    report.save(out)
    pred = probs.argmax(1)
    with (out / PREDICTIONS_FILE).open("w") as f:
        for i, (clip, speaker) in enumerate(zip(ids, speakers, strict=True)):
            line = {
                "id": clip,
                "speaker": speaker,
                "reference": label_names[ref[i]],
                "prediction": label_names[pred[i]],
            }
            line["probabilities"] = dict(zip(label_names, np.round(probs[i], 6).tolist(), strict=True))
            f.write(json.dumps(line) + "\n")
    plot_confusion_matrix(report.confusion_matrix, label_names, out / "confusion_matrix.png", title=title)

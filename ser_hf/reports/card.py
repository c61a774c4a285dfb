"""The model card of a run: its facts, read from the run record (:class:`ser_hf.run.RunRecord`), the grid it
belongs to (:mod:`ser_hf.grid`) and its corpus modules (:func:`ser_hf.corpora.corpus_info`), then rendered through
``model_cards/template.md``, which holds the card's text. No number on a card is typed by hand: each one is a
measurement of the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..grid import cross_validation_of
from ..metrics import format_mean_std
from ..run import ModelDescription, RunRecord
from .rows import LocoRow

TEMPLATE = Path(__file__).parents[1] / "model_card_template.md"  # a link to model_cards/template.md
SCORES = (("ua", "recall", "UA"), ("wa", "accuracy", "WA"), ("macro_f1", "f1", "macro-F1"))
"""Each reported score: record key, Hub metric type, name on the card."""


@dataclass(frozen=True)
class CardCorpus:
    """What a model card says of its training corpus, or of the corpora of a multi-corpus run, read from the corpus
    modules (:func:`ser_hf.corpora.corpus_info`).

    Attributes:
        license: the Hub license id (``other`` for a corpus without a standard license, with ``license_name`` and
            ``license_link``; for several corpora the most restrictive).
        description: for the card, with the license terms where the license is not a standard one.
        terms_note: what the multi-corpus card quotes of this corpus's terms.
    """

    name: str
    dataset_ids: list[str]
    license: str
    language: list[str]
    description: str
    terms_note: str
    language_note: str
    speech: str
    citations: list[str]
    protocol: dict[str, str]
    license_name: str | None = None
    license_link: str | None = None

    @property
    def dataset_id(self) -> str:
        return "+".join(self.dataset_ids)

    @classmethod
    def of(cls, corpus: str) -> CardCorpus | None:
        """The card facts of ``corpus`` (``a+b+c``: several, :meth:`together`); ``None`` for a user's folder."""
        from ..corpora import corpus_info

        if "+" in corpus:
            return cls.together([m for m in (cls.of(n) for n in corpus.split("+")) if m])
        info = corpus_info(corpus)
        if info is None:
            return None
        other = info.license_id == "other"
        return cls(
            name=info.name,
            dataset_ids=[info.dataset_id],
            license=info.license_id,
            language=list(info.languages),
            description=info.description + (f" License terms: {info.terms}" if other else ""),
            terms_note=info.terms if other else info.description,
            language_note=info.language_note,
            speech=info.speech,
            citations=[info.citation],
            protocol=dict(info.protocols),
            license_name=f"{info.dataset_id}-terms" if other else None,
            license_link=info.homepage if other else None,
        )

    @classmethod
    def together(cls, members: list[CardCorpus]) -> CardCorpus:
        """The card facts of a model trained on several corpora (:mod:`ser_hf.multicorpus`): every language,
        dataset and citation; each corpus's license terms; and, as the card's license, the most restrictive
        (``license: other``: research, non-commercial use, as the research-only corpora among them demand, and the
        share-alike and credit terms of the others)."""
        licenses = {m.license for m in members}
        license = licenses.pop() if len(licenses) == 1 else "other"
        plain = [m.description.split(" License terms: ")[0] for m in members]
        return cls(
            name=" + ".join(m.name for m in members),
            dataset_ids=[i for m in members for i in m.dataset_ids],
            license=license,
            language=sorted({lang for m in members for lang in m.language}),
            description=f"{len(members)} corpora together: "
            + " ".join(f"({k + 1}) {d}" for k, d in enumerate(plain))
            + " License: the terms of every corpus apply together, so the most restrictive rule: research and "
            "non-commercial use only. Per corpus: " + "; ".join(f"{m.name}: {m.license}" for m in members) + ".",
            terms_note=" ".join(f"{m.name}: {m.terms_note}" for m in members),
            language_note=" ".join(m.language_note for m in members),
            speech=f"a mix of {len(members)} corpora: "
            + " ".join(f"({k + 1}) {m.name}: {m.speech.rstrip('.')}." for k, m in enumerate(members)),
            citations=[c for m in members for c in m.citations],
            protocol={
                "folds": "fold K of every corpus's own speaker-independent protocol together (ser_hf.multicorpus): "
                + "; ".join(f"{m.name}: {m.protocol.get('folds', 'folds')}" for m in members),
                "loco": "leave one corpus out (EmoBox's cross-corpus setting, Ma et al. 2024): the other corpora "
                "train and validate, every clip of the left-out corpus is tested",
            },
            license_name="research-non-commercial-most-restrictive-of-corpora" if license == "other" else None,
        )


BASE_MODEL_CITATIONS = {
    "whisper": """@inproceedings{radford2023whisper,
  title={Robust Speech Recognition via Large-Scale Weak Supervision},
  author={Radford, Alec and Kim, Jong Wook and Xu, Tao and Brockman, Greg and McLeavey, Christine and Sutskever, Ilya},
  booktitle={ICML}, year={2023}}""",
    "wav2vec2": """@inproceedings{baevski2020wav2vec,
  title={wav2vec 2.0: A Framework for Self-Supervised Learning of Speech Representations},
  author={Baevski, Alexei and Zhou, Henry and Mohamed, Abdelrahman and Auli, Michael},
  booktitle={NeurIPS}, year={2020}}""",
    "hubert": """@article{hsu2021hubert,
  title={HuBERT: Self-Supervised Speech Representation Learning by Masked Prediction of Hidden Units},
  author={Hsu, Wei-Ning and others}, journal={IEEE/ACM TASLP}, year={2021}}""",
    "wavlm": """@article{chen2022wavlm,
  title={WavLM: Large-Scale Self-Supervised Pre-Training for Full Stack Speech Processing},
  author={Chen, Sanyuan and others}, journal={IEEE JSTSP}, year={2022}}""",
    "data2vec-audio": """@inproceedings{baevski2022data2vec,
  title={data2vec: A General Framework for Self-supervised Learning in Speech, Vision and Language},
  author={Baevski, Alexei and others}, booktitle={ICML}, year={2022}}""",
}


def pct(x: float) -> str:
    """A score in [0, 1] as a percentage with one decimal (``0.5685`` -> ``"56.9"``)."""
    return f"{100 * x:.1f}"


def pct_mean_std(m: dict) -> str:
    """``{"mean", "std"}`` of scores in [0, 1] as percentages with one decimal (``"56.9 +- 2.1"``)."""
    return format_mean_std(m, digits=1, scale=100)


def base_model_of(record: RunRecord, base_model: str | None) -> str | None:
    """The hub id a pretrained run was fine-tuned from: ``base_model`` if given, else the run's
    ``--base_model_id``, else its ``--model_name_or_path`` when that is a hub id (a local folder is no hub id)."""
    model = record.model
    if base_model is not None or model.family != "pretrained":
        return base_model
    name = model.base_model_id or model.base_model or ""
    return name if name and not Path(name).exists() and name.count("/") == 1 else None


def eval_results(record: RunRecord, info: CardCorpus | None, cv: dict | None) -> list[EvalResult]:
    """The card's ``model-index``: WA / UA / macro-F1 of the cross-validation (mean over folds) when the run is a
    fold of one, and of this checkpoint's test fold."""
    split, fold = record.split, record.split.fold
    results = []
    for key, mtype, mname in SCORES:
        args = {
            "task_type": "audio-classification",
            "dataset_type": info.dataset_id if info else split.corpus,
            "dataset_name": f"{info.name if info else split.corpus} ({split.protocol} protocol)",
            "metric_type": mtype,
        }
        if cv:
            results.append(
                EvalResult(
                    **args,
                    metric_value=round(cv[key]["mean"], 4),
                    metric_name=f"{mname} (mean of {cv['num_folds']} folds)",
                    dataset_split=f"test ({cv['num_folds']}-fold speaker-independent cross-validation)",
                )
            )
        results.append(
            EvalResult(
                **args,
                metric_value=round(record.test[key], 4),
                metric_name=f"{mname} (this checkpoint, fold {fold})",
                dataset_split=f"test speakers of fold {fold}",
            )
        )
    return results


def card_data(
    record: RunRecord, info: CardCorpus | None, cv: dict | None, repo_id: str, base_model, license
) -> ModelCardData:
    """The card's YAML metadata: languages, license (the corpus's, or ``license``), datasets, base model, tags and
    the ``model-index`` of :func:`eval_results`."""
    model = record.model
    tags = ["audio-classification", "speech-emotion-recognition", "ser_hf", model.model_type or ""]
    if model.family == "pretrained":
        tags.append(model.finetune_mode or "")
    own_license = {}
    if info and not license:
        own_license = {k: v for k, v in (("license_name", info.license_name), ("license_link", info.license_link)) if v}
    return ModelCardData(
        language=info.language if info else None,
        license=license or (info.license if info else "other"),
        **own_license,
        library_name="transformers",
        pipeline_tag="audio-classification",
        tags=[t for t in tags if t],
        datasets=info.dataset_ids if info else [record.split.corpus],
        base_model=base_model,
        metrics=["accuracy", "recall", "f1"],
        model_name=repo_id.split("/")[-1],
        eval_results=eval_results(record, info, cv),
    )


def results_table(record: RunRecord, cv: dict | None) -> dict:
    """The results table of the card: its header, separator and rows (percentages), cross-validated (with the
    spread over seeds of a seed grid) when the run is a fold of a cross-validation."""
    fold, metrics = record.split.fold, record.test
    names = (("ua", "UA (%)"), ("wa", "WA (%)"), ("macro_f1", "macro-F1 (%)"))
    if cv:
        header = f"{cv['num_folds']}-fold cross-validation, mean +- std over folds"
        if cv.get("seeds"):
            header += f" | mean over folds, +- std over {len(cv['seeds'])} seeds"
        header += f" | this checkpoint (fold {fold} test)"
        rows = [
            f"{name} | {pct_mean_std(cv[k])} | "
            + (f"{pct_mean_std(cv['over_seeds'][k])} | " if cv.get("seeds") else "")
            + pct(metrics[k])
            for k, name in names
        ]
    else:
        header = f"fold {fold} test"
        rows = [f"{name} | {pct(metrics[k])}" for k, name in names]
    return {"results_header": header, "results_sep": "|---" * (1 + header.count("|") + 1) + "|", "results_rows": rows}


def card_facts(
    run_dir: str | Path,
    repo_id: str,
    base_model: str | None = None,
    license: str | None = None,
    loco: tuple[str, list[LocoRow]] | None = None,
    deploy: dict | None = None,
):
    """Everything the card says, as facts: ``(card_data, fields)``, ``fields`` being the template's variables.

    ``loco``: the reference's name and the leave-one-corpus-out rows of a ``ser-hf multicorpus-report`` summary
    (:func:`ser_hf.reports.multicorpus.read_loco_rows`); the card lists those of the same model type and base model
    as this run (the same recipe, trained without one corpus). ``deploy``: ``{"onnx": family or None, "space":
    Space repo id or None}``: the card shows the ONNX / transformers.js usage and links the Space.

    Raises:
        ser_hf.run.RunRecordError: the run has no (readable) record.
    """
    record = RunRecord.load(run_dir)
    info = CardCorpus.of(record.split.corpus)
    model = record.model
    base_model = base_model_of(record, base_model)
    cv = cross_validation_of(Path(run_dir))
    split, prep = asdict(record.split), record.preprocessing
    model_type = model.kind
    citations = list(info.citations) if info else []
    if model.family == "pretrained" and model_type in BASE_MODEL_CITATIONS:
        citations.append(BASE_MODEL_CITATIONS[model_type])
    fields = {
        "model_name": repo_id.split("/")[-1],
        "repo_id": repo_id,
        "num_labels": len(record.label_names),
        "label_list": ", ".join(record.label_names),
        "labels": list(enumerate(record.label_names)),
        "model": model,
        "pretrained": model.family == "pretrained",
        "base_model": base_model,
        "base_model_folder": model.base_model_name,
        "parameters": record.parameters,
        "training": record.training.to_dict(),
        "runtime": record.runtime,
        "test": record.test,
        "ua": pct(record.test["ua"]),
        "cv": cv,
        "cv_ua": pct_mean_std(cv["ua"]) if cv else None,
        "split": split,
        "sampling_rate": prep.sampling_rate or 16000,
        "window": int(prep.window_s) if model_type == "whisper" and prep.window_s else None,
        "trim_db": prep.trim_db,
        "crop_s": prep.center_crop_s,
        "corpus": info.name if info else record.split.corpus,
        "dataset_description": info.description if info else f"corpus `{record.split.corpus}`",
        "speech_note": info.speech
        if info
        else "the user's own recordings; check what they cover before trusting the scores.",
        "protocol_description": (info.protocol if info else {}).get(
            record.split.protocol, f"protocol `{record.split.protocol}`"
        ),
        "per_corpus": per_corpus_rows(record, cv),
        "language_note": info.language_note if info else "",
        "citations": citations,
        "loco": same_recipe_rows(loco, model),
        "onnx": (deploy or {}).get("onnx"),
        "space": (deploy or {}).get("space"),
        **results_table(record, cv),
    }
    return card_data(record, info, cv, repo_id, base_model, license), fields


def per_corpus_rows(record: RunRecord, cv: dict | None) -> list[tuple[str, str, int, str | None]]:
    """``(corpus, UA %, clips, cross-validation UA "mean +- std" % or None)`` of each corpus of a multi-corpus
    run's test side; empty for one corpus."""
    by_corpus = (cv or {}).get("per_corpus", {})

    def over_folds(name: str) -> str | None:
        return pct_mean_std(by_corpus[name]) if name in by_corpus else None

    return [(name, pct(s["ua"]), s["clips"], over_folds(name)) for name, s in record.test.get("per_corpus", {}).items()]


def same_recipe_rows(loco: tuple[str, list[LocoRow]] | None, model: ModelDescription) -> list[dict]:
    """The template's leave-one-corpus-out rows: those of runs with the model's type and base model, with the
    reference's name and UAs as percentages."""
    if not loco:
        return []
    reference, rows = loco
    return [
        {**r.to_dict(), "reference": reference, "ua_pct": pct(r.ua), "reference_ua_pct": pct(r.reference_ua)}
        for r in rows
        if r.model_type == model.kind and r.base_model == model.base_model_name
    ]


def build_model_card(
    run_dir: str | Path,
    repo_id: str,
    base_model: str | None = None,
    license: str | None = None,
    loco: tuple[str, list[LocoRow]] | None = None,
    deploy: dict | None = None,
):
    """Render the model card of a run: :func:`card_facts` through ``model_cards/template.md``.

    Returns:
        ``huggingface_hub.ModelCard``.

    Raises:
        ser_hf.run.RunRecordError: the run has no (readable) record.
    """
    data, fields = card_facts(run_dir, repo_id, base_model, license, loco, deploy)
    return ModelCard.from_template(data, template_path=str(TEMPLATE), **fields)

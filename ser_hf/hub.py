"""Publish a run to the Hugging Face Hub: model card, upload folder, validation, push.

``ser-hf push RUN_DIR --repo-id USER/NAME [--private] [--revision BRANCH] [--dry-run]``:

1. :func:`prepare_upload_folder` writes exactly what will be uploaded: the merged weights
   (``model.safetensors`` only, never pickles), ``config.json`` with ``id2label``, the feature extractor,
   the mel-CNN's modeling code (for ``trust_remote_code=True`` users without ser_hf), ``metrics.json``,
   ``split.json``, ``confusion_matrix.png`` and ``README.md``: the card rendered from
   ``model_cards/template.md`` with :func:`build_model_card`, holding only numbers measured by the run.
2. :func:`validate_upload_folder` re-reads the card and its metadata (model-index included) and, in a fresh
   Python process in which ``ser_hf`` and ``peft`` cannot be imported, loads the folder with
   ``pipeline("audio-classification")`` and classifies a clip.
3. :func:`push_to_hub` (not with ``--dry-run``) creates the repo (``exist_ok=True``), the branch if asked,
   and uploads the folder with ``HfApi.upload_folder``.

The token comes from ``HF_TOKEN`` or the login cache (``huggingface_hub.get_token``) and is never printed or
written. Every failure raises :class:`PushError` with what to do; the run directory is never modified.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import httpx2  # huggingface_hub's HTTP client
from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.utils import validate_repo_id

from .metrics import format_mean_std
from .run import RunRecord, RunRecordError

TEMPLATE = Path(__file__).with_name("model_card_template.md")  # a link to model_cards/template.md
UPLOADED = ("config.json", "model.safetensors", "preprocessor_config.json", "metrics.json", "split.json")
OPTIONAL = ("confusion_matrix.png",)


def corpus_card_facts(corpus: str) -> dict:
    """What a model card says of the training corpus, read from its corpus module
    (:func:`ser_hf.corpora.corpus_info`): ``name``, ``dataset_id``, ``license`` (Hub id), ``license_name`` /
    ``license_link`` for corpora without a standard license, ``language``, ``description`` (with the license terms),
    ``language_note``, ``citation``, ``protocol``; ``{}`` for a user's folder."""
    from .corpora import corpus_info

    info = corpus_info(corpus)
    if info is None:
        return {}
    facts = {
        "name": info.name,
        "dataset_id": info.dataset_id,
        "license": info.license_id,
        "language": list(info.languages),
        "description": info.description + ("" if info.license_id != "other" else f" License terms: {info.terms}"),
        "language_note": info.language_note,
        "speech": info.speech,
        "citation": info.citation,
        "protocol": dict(info.protocols),
    }
    if info.license_id == "other":
        facts.update(license_name=f"{info.dataset_id}-terms", license_link=info.homepage)
    return facts


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


class PushError(RuntimeError):
    """A publish step failed; the message says what to do. Nothing in the run directory was changed."""


def _load_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def cross_validation_of(run_dir: Path) -> dict | None:
    """Cross-validated scores of the grid this run belongs to: ``cv_results.json`` of ``run_dir/..`` (``wa`` /
    ``ua`` / ``macro_f1`` as mean +- std over folds, ``num_folds``), extended with ``seeds`` and ``over_seeds``
    (mean +- std over seeds of each seed's mean over folds) when ``run_dir/../..`` holds the ``seeds_results.json``
    of a ``--seeds`` grid; ``None`` for a lone run."""
    cv = _load_json(run_dir.parent / "cv_results.json")
    if not cv:
        return None
    seeds = _load_json(run_dir.parent.parent / "seeds_results.json")
    if seeds and len(seeds.get("per_fold", {})) == cv.get("num_folds"):
        cv = {**cv, "seeds": seeds["seeds"], "over_seeds": seeds["overall"]}
    return cv


def _fmt(x: float) -> str:
    return f"{100 * x:.1f}"


def build_model_card(run_dir: str | Path, repo_id: str, base_model: str | None = None, license: str | None = None):
    """Render the model card of a run from ``model_cards/template.md``; every number comes from the run's
    ``metrics.json`` and, when the run is a fold of a cross-validation, its ``cv_results.json``.

    Returns:
        ``huggingface_hub.ModelCard``.

    Raises:
        PushError: the run has no ``metrics.json`` or ``config.json``.
    """
    run = Path(run_dir)
    config = _load_json(run / "config.json")
    try:
        record = RunRecord.load(run)
    except RunRecordError as err:
        raise PushError(f"{run}: not a finished ser_hf run ({err})") from None
    if not config:
        raise PushError(f"{run}: not a finished ser_hf run (config.json is needed)")
    metrics = record.test
    split = asdict(record.split)
    corpus = split.get("corpus", "unknown")
    info = corpus_card_facts(corpus)
    labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    model = record.model or {"family": "mel_cnn"}
    family = model.get("family", "mel_cnn")
    model_type = config.get("model_type", "")
    if base_model is None and family == "pretrained":  # --base_model, else the run's --base_model_id, else a hub id
        name = model.get("base_model_id") or model.get("base_model", "")
        base_model = name if name and not Path(name).exists() and name.count("/") == 1 else None
    cv = cross_validation_of(run)
    fold = split.get("fold")
    corpus_name = info.get("name", corpus)
    dataset_name = f"{info.get('name', corpus)} ({split.get('protocol', '')} protocol)"

    eval_results = []
    for key, mtype, mname in (("ua", "recall", "UA"), ("wa", "accuracy", "WA"), ("macro_f1", "f1", "macro-F1")):
        args = {
            "task_type": "audio-classification",
            "dataset_type": info.get("dataset_id", corpus),
            "dataset_name": dataset_name,
            "metric_type": mtype,
        }
        if cv:
            eval_results.append(
                EvalResult(
                    **args,
                    metric_value=round(cv[key]["mean"], 4),
                    metric_name=f"{mname} (mean of {cv['num_folds']} folds)",
                    dataset_split=f"test ({cv['num_folds']}-fold speaker-independent cross-validation)",
                )
            )
        eval_results.append(
            EvalResult(
                **args,
                metric_value=round(metrics[key], 4),
                metric_name=f"{mname} (this checkpoint, fold {fold})",
                dataset_split=f"test speakers of fold {fold}",
            )
        )
    tags = ["audio-classification", "speech-emotion-recognition", "ser_hf", model_type]
    if family == "pretrained":
        tags.append(model.get("finetune_mode", ""))
    card_data = ModelCardData(
        language=info.get("language"),
        license=license or info.get("license", "other"),
        **(
            {"license_name": info["license_name"], "license_link": info["license_link"]}
            if not license and "license_name" in info
            else {}
        ),
        library_name="transformers",
        pipeline_tag="audio-classification",
        tags=[t for t in tags if t],
        datasets=[info.get("dataset_id", corpus)],
        base_model=base_model,
        metrics=["accuracy", "recall", "f1"],
        model_name=repo_id.split("/")[-1],
        eval_results=eval_results,
    )

    params = record.parameters
    if family == "pretrained":
        lora = model.get("lora")
        summary = (
            f"A {model_type} encoder ({base_model or 'base model: ' + Path(str(model.get('base_model'))).name}) "
            "fine-tuned in "
            f"`{model.get('finetune_mode')}` mode"
            + (" with LoRA adapters merged into its weights" if lora else "")
            + "."
        )
        hyper = [f"- Fine-tuning mode: `{model.get('finetune_mode')}`"]
        if lora:
            hyper.append(f"- LoRA rank {lora['rank']}, alpha {lora['alpha']}, dropout {lora['dropout']}")
        hyper.append(f"- Weighted layer sum: {model.get('weighted_layer_sum')}")
    else:
        summary = "A log-mel CNN (ser_hf's mel-CNN baseline); its modeling code ships in this repository."
        hyper = [
            f"- Log-mel front end: {config.get('n_mels')} bands, {config.get('win_length')} / "
            f"{config.get('hop_length')} samples window / hop; conv channels {config.get('channels')}, "
            f"{config.get('pooling')} pooling, dropout {config.get('dropout')}"
        ]
    hyper.append(
        f"- Trainable parameters: {params.get('trainable', 0):,} of {params.get('total', 0):,} "
        f"({100 * params.get('trainable_share', 0):.2f} %)"
    )
    for key, label in (
        ("num_train_epochs", "Epochs"),
        ("learning_rate", "Learning rate"),
        ("per_device_train_batch_size", "Batch size per device"),
        ("seed", "Seed"),
    ):
        if key in record.training:
            hyper.append(f"- {label}: {record.training[key]}")
    runtime = record.runtime
    ema = record.training.get("ema_decay")
    if runtime.get("select_best_by") == "last":
        hyper.append(
            "- Weights: "
            + (f"exponential moving average (decay {ema}) " if ema else "")
            + "as training ended (no checkpoint selection)"
        )
    else:
        averaged = f" (of the exponential moving average of the weights, decay {ema})" if ema else ""
        hyper.append(f"- Checkpoint selection: best validation {runtime.get('select_best_by', 'ua').upper()}{averaged}")
    hyper.append(f"- Training time: {runtime.get('train_wall_time_s', 0):.0f} s on {runtime.get('device')}")

    if cv:
        header = f"{cv['num_folds']}-fold cross-validation, mean +- std over folds"
        if cv.get("seeds"):
            header += f" | mean over folds, +- std over {len(cv['seeds'])} seeds"
        header += f" | this checkpoint (fold {fold} test)"
        rows = [
            f"{name} | {format_mean_std(cv[k], digits=1, scale=100)} | "
            + (f"{format_mean_std(cv['over_seeds'][k], digits=1, scale=100)} | " if cv.get("seeds") else "")
            + _fmt(metrics[k])
            for k, name in (("ua", "UA (%)"), ("wa", "WA (%)"), ("macro_f1", "macro-F1 (%)"))
        ]
        intro = (
            f"Measured by ser_hf on the test speakers of each fold ({cv['num_folds']} folds; standard deviation "
            "with ddof=1)"
            + (f", the same recipe trained with seeds {cv['seeds']}" if cv.get("seeds") else "")
            + f". The checkpoint published here is the one of fold {fold} (seed {record.training.get('seed')}), "
            "chosen by its validation UA, never by test scores."
        )
    else:
        header = f"fold {fold} test"
        rows = [
            f"{name} | {_fmt(metrics[k])}"
            for k, name in (("ua", "UA (%)"), ("wa", "WA (%)"), ("macro_f1", "macro-F1 (%)"))
        ]
        intro = f"Measured by ser_hf on the {len(split.get('test_speakers', []))} test speakers of fold {fold} only."
    citations = [info["citation"]] if "citation" in info else []
    if family == "pretrained" and model_type in BASE_MODEL_CITATIONS:
        citations.append(BASE_MODEL_CITATIONS[model_type])
    remote = family != "pretrained"
    fe = _load_json(run / "preprocessor_config.json")
    window = fe.get("chunk_length") if model_type == "whisper" else None
    prep = record.preprocessing
    trim, crop = prep.get("trim_db"), prep.get("center_crop_s")
    card = ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_name=repo_id.split("/")[-1],
        repo_id=repo_id,
        num_labels=len(labels),
        label_list=", ".join(labels),
        labels=list(enumerate(labels)),
        model_summary=summary,
        trust_remote_code_arg=", trust_remote_code=True" if remote else "",
        usage_note=(
            "The mel-CNN's modeling code is in this repository: `trust_remote_code=True` loads it without "
            "ser_hf installed (read the code first, as for any remote code)."
            if remote
            else "A plain transformers checkpoint: no peft and no ser_hf needed."
        )
        + f"\n\nWhat to expect: on speakers it never heard, {corpus_name} clips fed raw to this pipeline scored "
        f"UA {_fmt(metrics['ua'])} % on this checkpoint's test fold"
        + (f" ({format_mean_std(cv['ua'], digits=1, scale=100)} % over the {cv['num_folds']} folds)" if cv else "")
        + ". The results below are measured exactly that way: the checkpoint loaded back from its folder, raw clips "
        "through its own feature extractor.",
        sampling_rate=fe.get("sampling_rate", 16000),
        input_note=f"Whisper input window: {window} s (longer audio is truncated by the feature extractor)."
        if window
        else "",
        dataset_description=info.get("description", f"corpus `{corpus}`"),
        dataset_short=info.get("name", corpus),
        speech_note=info.get("speech", "the user's own recordings; check what they cover before trusting the scores."),
        protocol_description=info.get("protocol", {}).get(split.get("protocol"), f"protocol `{split.get('protocol')}`"),
        checkpoint_description=(
            f"fold {fold}: trained on {len(split.get('train_speakers', []))} speakers, checkpoint selected on "
            f"{split.get('val_speakers')}, tested on {split.get('test_speakers')}"
        ),
        preprocessing=f"mono, {fe.get('sampling_rate', 16000)} Hz"
        + (f", leading / trailing silence more than {trim:g} dB below the loudest frame trimmed" if trim else "")
        + (f", centre-cropped to {crop:g} s" if crop else "")
        + (f", padded to a {window} s window (longer audio keeps its first {window} s)" if window else "")
        + (
            " (all done by the feature extractor shipped here, so `pipeline()` applies it to raw audio)"
            if trim or crop
            else " (raw audio as `pipeline()` receives it; no silence trimming)"
        ),
        hyperparameters="\n".join(hyper),
        results_intro=intro,
        results_header=header,
        results_sep="|---" * (1 + header.count("|") + 1) + "|",
        results_rows=rows,
        results_note="Acted-speech benchmarks overstate real-world accuracy (see limitations).",
        language_note=info.get("language_note", ""),
        citations=citations,
    )
    return card


def prepare_upload_folder(
    run_dir: str | Path, folder: str | Path, repo_id: str, base_model: str | None = None, license: str | None = None
) -> list[str]:
    """Write the upload folder of a run (see module docstring) and return its file names.

    Raises:
        PushError: the run lacks ``model.safetensors`` (only safetensors are published) or another required
            file, or ``folder`` already exists and is not empty.
    """
    run, folder = Path(run_dir), Path(folder)
    missing = [n for n in UPLOADED if not (run / n).is_file()]
    if missing:
        raise PushError(
            f"{run}: missing {', '.join(missing)}; push a finished ser_hf run directory (only model.safetensors "
            "weights are published, never pickled .bin files)"
        )
    if folder.exists() and any(folder.iterdir()):
        raise PushError(f"{folder} already exists and is not empty; choose another --output_dir or remove it")
    card = build_model_card(run, repo_id, base_model, license)
    code = own_remote_code(run)  # checked before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    names = list(UPLOADED) + [n for n in OPTIONAL if (run / n).is_file()]
    for name in names:
        shutil.copy2(run / name, folder / name)
    for own in code:
        shutil.copyfile(own, folder / own.name)
    names += [own.name for own in code]
    card.save(str(folder / "README.md"))
    return sorted([*names, "README.md"])


def own_remote_code(run: Path) -> list[Path]:
    """ser_hf's own sources of the mel-CNN remote code a run directory holds: what the upload folder gets, never
    the run's files.

    The ``.py`` files a run directory holds are only checked: each must be byte-identical to ser_hf's source of
    the same name (``ser_hf/models/mel_cnn/``), so that validation (which executes the folder's code with
    ``trust_remote_code=True``) and Hub users run ser_hf's code, not whatever a run directory was given.

    Raises:
        PushError: a ``.py`` file of the run differs from ser_hf's or is not one of its modules.
    """
    return [_own_code(code) for code in sorted(run.glob("*.py"))]


def _own_code(code: Path) -> Path:
    own = Path(__file__).parent / "models" / "mel_cnn" / code.name
    if not own.is_file() or own.read_bytes() != code.read_bytes():
        raise PushError(
            f"{code} is not ser_hf's own {code.name} (it differs, or ser_hf has no such module); ser_hf only "
            "publishes and runs its own modeling code: train the run again with this ser_hf, or remove the file"
        )
    return own


_VALIDATE = r"""
import sys
sys.modules["ser_hf"] = None  # prove the folder works without ser_hf (and without peft)
sys.modules["peft"] = None
import json
import numpy as np
from transformers import pipeline
folder, remote = sys.argv[1], sys.argv[2] == "1"
clf = pipeline("audio-classification", model=folder, trust_remote_code=remote)
sr = clf.feature_extractor.sampling_rate
t = np.arange(sr) / sr
wav = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
print(json.dumps(clf({"raw": wav, "sampling_rate": sr}, top_k=None)))
"""


def validate_upload_folder(folder: str | Path) -> dict:
    """Check an upload folder as a Hub user would meet it.

    The card must parse, with license, library_name, pipeline_tag and a model-index of evaluation results;
    the folder must load with ``pipeline("audio-classification")`` in a fresh Python process where ``ser_hf``
    and ``peft`` cannot be imported (the mel-CNN through ``trust_remote_code=True``) and classify a 1 s clip.
    That process executes the folder's ``.py`` files, so each must first be byte-identical to ser_hf's own module
    of that name: validation never runs code that ser_hf did not ship.

    Returns:
        ``{"card": card metadata dict, "prediction": [{"label", "score"}, ...]}``.

    Raises:
        PushError: naming what failed.
    """
    folder = Path(folder)
    try:
        card = ModelCard.load(str(folder / "README.md"))
    except Exception as err:  # noqa: BLE001 - any parse failure is reported the same way
        raise PushError(f"{folder / 'README.md'}: the model card does not parse: {err}") from err
    data = card.data.to_dict()
    for key in ("license", "library_name", "pipeline_tag", "model-index"):
        if not data.get(key):
            raise PushError(f"{folder / 'README.md'}: card metadata lacks {key!r}")
    if not card.data.eval_results:
        raise PushError(f"{folder / 'README.md'}: the model-index holds no evaluation results")
    for code in folder.glob("*.py"):
        _own_code(code)
    remote = any(folder.glob("*.py"))
    env = {**os.environ, "PYTHONPATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", _VALIDATE, str(folder.resolve()), "1" if remote else "0"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    if done.returncode != 0:
        raise PushError(
            f"{folder} does not load in pipeline('audio-classification') without ser_hf:\n{done.stderr[-2000:]}"
        )
    prediction = json.loads(done.stdout.strip().splitlines()[-1])
    return {"card": data, "prediction": prediction}


def _explain(err: Exception, repo_id: str) -> str:
    status = getattr(getattr(err, "response", None), "status_code", None)
    if status == 401:
        return "the Hub rejected the token (401): log in again with `hf auth login` or set a valid HF_TOKEN"
    if status == 403:
        return (
            f"the token may not write to {repo_id} (403): use a token with write access, or a namespace "
            "(user or organisation) you can write to"
        )
    if status == 404:
        return f"{repo_id} or its namespace was not found (404): check the user / organisation name"
    if status is not None:
        return f"the Hub answered {status}: {err}"
    return f"could not reach the Hub ({type(err).__name__}: {err}); check the network (and HF_HUB_OFFLINE)"


def _check_repo_id(repo_id: str) -> None:
    try:
        validate_repo_id(repo_id)
        if repo_id.count("/") != 1:
            raise HFValidationError("expected exactly one '/'")
    except HFValidationError as err:
        raise PushError(f"--repo-id {repo_id!r} is not a valid repo id ({err}); expected USER/NAME") from None


def check_push_target(repo_id: str, dry_run: bool, unchanged: str, token: str | None = None) -> None:
    """The checks of a push that need no upload (the repo id's form, a token unless ``dry_run``), for commands that
    build something first: they run these before spending the time.

    Raises:
        PushError: an invalid repo id or no token (the message says ``unchanged``).
    """
    _check_repo_id(repo_id)
    _token(token, dry_run, unchanged)


def _token(token: str | None, dry_run: bool, unchanged: str) -> str | None:
    token = token or get_token()
    if not dry_run and not token:
        raise PushError(
            "no Hugging Face token: set HF_TOKEN or run `hf auth login` (or use --dry-run to only build the "
            f"folder); nothing was uploaded and {unchanged}"
        )
    return token


def _upload(folder, repo_id, repo_type, private, revision, message, token, unchanged) -> str:
    """``create_repo`` (exist_ok), ``create_branch`` when asked, ``upload_folder``; HTTP and network errors become
    a :class:`PushError` that says what to do. Returns the commit URL."""
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id, repo_type=repo_type, folder_path=str(folder), revision=revision, commit_message=message
        )
    except (HfHubHTTPError, OSError, httpx2.HTTPError) as err:  # OfflineModeIsEnabled is an OSError
        raise PushError(_explain(err, repo_id) + f"; {unchanged}") from None
    return getattr(info, "commit_url", None) or str(info)


def validate_dataset_folder(folder: str | Path) -> dict:
    """Check an exported dataset folder (:mod:`ser_hf.export`) as a ``load_dataset`` user would meet it: the card
    parses with license, task category, configs and ``dataset_info``, and every config loads with
    ``datasets.load_dataset(folder, config)`` with the split sizes the card declares.

    Returns:
        ``{"card": card metadata, "configs": {config: {split: rows}}}``.

    Raises:
        PushError: naming what failed.
    """
    import datasets
    from huggingface_hub import DatasetCard

    folder = Path(folder)
    try:
        data = DatasetCard.load(str(folder / "README.md")).data.to_dict()
    except Exception as err:  # noqa: BLE001 - any parse failure is reported the same way
        raise PushError(f"{folder / 'README.md'}: the dataset card does not parse: {err}") from err
    for key in ("license", "task_categories", "configs", "dataset_info"):
        if not data.get(key):
            raise PushError(f"{folder / 'README.md'}: card metadata lacks {key!r}")
    declared = {
        info["config_name"]: {sp["name"]: sp["num_examples"] for sp in info["splits"]} for info in data["dataset_info"]
    }
    found = {}
    with tempfile.TemporaryDirectory(prefix="ser_hf_dataset_check_") as cache:
        for cfg in data["configs"]:
            name = cfg["config_name"]
            try:
                loaded = datasets.load_dataset(str(folder), name, cache_dir=cache)
            except Exception as err:  # noqa: BLE001
                raise PushError(f"{folder}: config {name!r} does not load with datasets.load_dataset: {err}") from err
            found[name] = {split: len(ds) for split, ds in loaded.items()}
            if found[name] != declared.get(name):
                raise PushError(
                    f"{folder}: config {name!r} loads {found[name]} rows, the card declares {declared.get(name)}"
                )
    return {"card": data, "configs": found}


def push_dataset(
    folder: str | Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
) -> dict:
    """Validate an exported dataset folder and (unless ``dry_run``) upload it as a dataset repo
    (``create_repo(repo_type="dataset")``, ``upload_folder``), with the same checks and error messages as model
    pushes. The folder is never changed.

    Returns:
        ``{"folder", "validation", "url" (None for a dry run), "commit_message"}``.

    Raises:
        PushError: invalid repo id, no token, HTTP 401 / 403 / 404, network errors, or a folder that fails
            :func:`validate_dataset_folder`.
    """
    folder = Path(folder).resolve()
    _check_repo_id(repo_id)
    token = _token(token, dry_run, f"{folder} is unchanged")
    validation = validate_dataset_folder(folder)
    message = commit_message or f"ser_hf: dataset export ({', '.join(validation['configs'])})"
    url = None
    if not dry_run:
        url = _upload(folder, repo_id, "dataset", private, revision, message, token, f"{folder} is unchanged")
    return {"folder": str(folder), "validation": validation, "url": url, "commit_message": message}


def push_to_hub(
    run_dir: str | Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    output_dir: str | Path | None = None,
    base_model: str | None = None,
    license: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
) -> dict:
    """Prepare, validate and (unless ``dry_run``) upload a run; see the module docstring.

    Args:
        output_dir: where the upload folder is written. Default: ``RUN_DIR.hub`` beside the run for a dry
            run, a temporary folder otherwise.

    Returns:
        ``{"folder", "files", "validation", "url" (None for a dry run), "commit_message"}``.

    Raises:
        PushError: invalid repo id, no token, HTTP 401 / 403 / 404, network errors, a run that cannot be
            published or a folder that fails validation; the run directory is left as it was.
    """
    run = Path(run_dir).resolve()  # `ser-hf push .` must not put RUN.hub inside the run
    _check_repo_id(repo_id)
    token = _token(token, dry_run, f"{run} is unchanged")
    try:
        record = RunRecord.load(run)
    except RunRecordError as err:
        raise PushError(f"{run}: not a finished ser_hf run ({err})") from None
    message = commit_message or (
        f"ser_hf: {record.split.corpus} fold {record.split.fold} checkpoint (test UA {record.ua:.4f})"
    )
    tmp = None
    if output_dir is None:
        if dry_run:
            output_dir = run.parent / f"{run.name}.hub"
        else:
            tmp = tempfile.TemporaryDirectory(prefix="ser_hf_push_")
            output_dir = Path(tmp.name) / "upload"
    try:
        files = prepare_upload_folder(run, output_dir, repo_id, base_model, license)
        validation = validate_upload_folder(output_dir)
        url = None
        if not dry_run:
            url = _upload(
                output_dir, repo_id, "model", private, revision, message, token, f"nothing in {run} was changed"
            )
        return {
            "folder": str(output_dir),
            "files": files,
            "validation": validation,
            "url": url,
            "commit_message": message,
        }
    finally:
        if tmp is not None:
            tmp.cleanup()

"""Publish a run to the Hugging Face Hub: model card, upload folder, validation, push.

``ser-hf push RUN_DIR --repo-id USER/NAME [--private] [--revision BRANCH] [--dry-run]``:

1. :func:`prepare_upload_folder` writes exactly what will be uploaded: the merged weights
   (``model.safetensors`` only, never pickles), ``config.json`` with ``id2label``, the feature extractor,
   the mel-CNN's modeling code (for ``trust_remote_code=True`` users without ser_hf), ``metrics.json``,
   ``split.json``, ``confusion_matrix.png`` and ``README.md``: the card rendered from
   ``model_cards/template.md`` with :func:`ser_hf.reports.card.build_model_card`, holding only numbers measured by
   the run.
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
from pathlib import Path

import httpx2  # huggingface_hub's HTTP client
from huggingface_hub import HfApi, ModelCard, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.utils import validate_repo_id

from .reports import card
from .run import RunRecord, RunRecordError

UPLOADED = ("config.json", "model.safetensors", "preprocessor_config.json", "metrics.json", "split.json")
OPTIONAL = ("confusion_matrix.png",)


class PushError(RuntimeError):
    """A publish step failed; the message says what to do. Nothing in the run directory was changed."""


def _load_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def build_model_card(
    run_dir: str | Path,
    repo_id: str,
    base_model: str | None = None,
    license: str | None = None,
    loco: tuple[str, list] | None = None,
    deploy: dict | None = None,
):
    """:func:`ser_hf.reports.card.build_model_card`, for publishing.

    Raises:
        PushError: the run is not a finished ser_hf run (no readable record).
    """
    try:
        return card.build_model_card(run_dir, repo_id, base_model, license, loco, deploy)
    except RunRecordError as err:
        raise PushError(f"{run_dir}: not a finished ser_hf run ({err})") from None


def prepare_upload_folder(
    run_dir: str | Path,
    folder: str | Path,
    repo_id: str,
    base_model: str | None = None,
    license: str | None = None,
    loco: tuple[str, list] | None = None,
    onnx: str | Path | None = None,
    space: str | None = None,
) -> list[str]:
    """Write the upload folder of a run (see module docstring) and return its file names. With ``onnx`` (an
    export of this run by ``ser-hf export-onnx``) its ``onnx/`` folder and ``ser_hf_onnx.json`` are added, so that
    onnxruntime and transformers.js users load it from the same repository; ``space`` (a Space repo id) is linked.

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
    family = check_onnx_export(run, onnx) if onnx is not None else None
    card = build_model_card(run, repo_id, base_model, license, loco, {"onnx": family, "space": space})
    code = own_remote_code(run)  # checked before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    names = list(UPLOADED) + [n for n in OPTIONAL if (run / n).is_file()]
    for name in names:
        shutil.copy2(run / name, folder / name)
    for own in code:
        shutil.copyfile(own, folder / own.name)
    names += [own.name for own in code]
    if onnx is not None:
        shutil.copytree(Path(onnx) / "onnx", folder / "onnx")
        shutil.copy2(Path(onnx) / "ser_hf_onnx.json", folder / "ser_hf_onnx.json")
        names += ["ser_hf_onnx.json", *sorted(f"onnx/{p.name}" for p in (folder / "onnx").iterdir())]
    card.save(str(folder / "README.md"))
    return sorted([*names, "README.md"])


def check_onnx_export(run: Path, onnx: str | Path) -> str:
    """The family of ``onnx``, an export of ``run``'s checkpoint (same labels and config).

    Raises:
        PushError: ``onnx`` is not an ONNX export, or one of other weights (:func:`ser_hf.onnx_export.weights_digest`).
    """
    from .onnx_backend import CONFIG_FILE, is_onnx_export

    if not is_onnx_export(onnx):
        raise PushError(f"--onnx {onnx}: not an ONNX export; make one with ser-hf export-onnx {run} --to DIR")
    from .onnx_export import weights_digest

    settings = _load_json(Path(onnx) / CONFIG_FILE)
    if settings.get("source_weights_sha256") != weights_digest(run):
        raise PushError(
            f"--onnx {onnx}: an export of another checkpoint than {run} (its source weights differ); export this "
            f"run with ser-hf export-onnx {run} --to DIR"
        )
    return settings["family"]


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
    loco_summary: str | Path | None = None,
    onnx: str | Path | None = None,
    space: str | None = None,
) -> dict:
    """Prepare, validate and (unless ``dry_run``) upload a run; see the module docstring.

    Args:
        loco_summary: a ``ser-hf multicorpus-report`` ``summary.json``: the card adds the leave-one-corpus-out
            results of the same recipe (:func:`ser_hf.reports.card.same_recipe_rows`).
        onnx / space: an ONNX export of the run to upload with it, a Space to link (:func:`prepare_upload_folder`).
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
        loco = None
        if loco_summary is not None:
            from .reports.multicorpus import read_loco_rows

            loco = read_loco_rows(loco_summary)
        files = prepare_upload_folder(run, output_dir, repo_id, base_model, license, loco, onnx, space)
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

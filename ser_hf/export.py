"""Export a corpus as a Hub-style Parquet dataset with one config per speaker-independent fold.

``ser-hf export-dataset CORPUS --data_dir DIR --to OUT [--protocol folds|loso] [--sampling_rate SR]
[--repo-id USER/NAME [--private] | --dry-run]`` writes::

    OUT/README.md                    dataset card: YAML (configs, features, splits with counts, license,
                                     citation, task category), the protocol in words, the license terms
    OUT/data/group-NNN.parquet       the clips (audio bytes in an ``Audio`` column, ``ClassLabel`` label,
                                     speaker, gender, every metadata column of the builder)

Each clip is stored once. Speakers are grouped by the side they take in every fold (speakers with the same
train / validation / test pattern across folds share a shard), so a fold config's ``train``, ``validation``
and ``test`` splits are lists of whole shards: exactly the sides :func:`ser_hf.folds.make_split` defines, with
speaker-disjoint validation. The ``all`` config holds every clip in one ``train`` split.

``datasets.load_dataset(OUT, "fold_0")`` then gives the same clips, labels, speakers and sides as
:func:`ser_hf.load_corpus` + :func:`ser_hf.make_split`. ``datasets`` 5 decodes ``Audio`` only through
torchcodec; without it, ``ds.cast_column("audio", datasets.Audio(decode=False))`` gives the bytes, which
:func:`ser_hf.load_audio` decodes.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio import load_audio
from .lock import disk_full_hint

logger = logging.getLogger(__name__)

SIDE_SPLITS = {"train": "train", "validation": "validation", "test": "test"}
"""Split name of each side of a :class:`ser_hf.folds.SplitDefinition`."""


class ExportError(ValueError):
    """The export cannot be written (an existing non-empty folder, a protocol without folds); names it."""


def _audio_bytes(path: str, sampling_rate: int | None, channel: int | None = None) -> tuple[bytes, str, int]:
    """The clip's bytes as stored: the original file when no resampling is asked (bit-exact), else 16-bit FLAC
    of the mono clip at ``sampling_rate`` Hz (the file's own rate when ``None``). A multi-channel file of a corpus
    that keeps one ``channel`` (EMOVO's spaced microphones) is always stored as that channel alone, so no reader
    of the export can average the pair. Returns ``(bytes, file name, sampling rate)``."""
    info = sf.info(path)
    keep_channel = channel is not None and info.channels > 1
    if not keep_channel and (sampling_rate is None or (info.samplerate == sampling_rate and info.channels == 1)):
        return Path(path).read_bytes(), Path(path).name, info.samplerate
    rate = sampling_rate or info.samplerate
    wav = load_audio(path, rate, channel)
    buf = io.BytesIO()
    sf.write(buf, np.clip(wav, -1.0, 1.0), rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue(), Path(path).with_suffix(".flac").name, rate


def check_decodes(paths: list[str], channel: int | None = None) -> None:
    """Decode every clip as training would (:func:`ser_hf.load_audio`), so that no export stores a clip that
    cannot be used.

    Raises:
        AudioError: listing every clip that is missing, corrupt, truncated, empty or holds NaN / infinite samples
            (first 20 named, then a count).
    """
    from .audio import AudioError

    bad = []
    for path in paths:
        try:
            load_audio(path, None, channel)
        except (OSError, AudioError) as err:
            bad.append(str(err))
    if bad:
        shown = "\n  ".join(bad[:20]) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else "")
        raise AudioError(f"{len(bad)} of {len(paths)} clips cannot be exported (nothing was written):\n  {shown}")


def shard_groups(speakers: list[str], splits: list) -> dict[tuple, list[str]]:
    """Speakers grouped by their side in every fold: ``{(side in fold 0, side in fold 1, ...): speakers}``."""
    groups: dict[tuple, list[str]] = defaultdict(list)
    for speaker in sorted(set(speakers)):
        groups[tuple(split.side_of(speaker) for split in splits)].append(speaker)
    return dict(groups)


def export_dataset(
    corpus: str,
    data_dir: str | Path,
    out: str | Path,
    protocol: str = "folds",
    sampling_rate: int | None = None,
    corpus_config: str | None = None,
    cache_dir: str | Path | None = None,
    num_val_speakers: int = 2,
    **corpus_kwargs,
) -> dict:
    """Write ``out`` (see module docstring) and return a summary.

    Args:
        corpus / data_dir / corpus_config / corpus_kwargs: as :func:`ser_hf.load_corpus`.
        protocol: ``folds`` or ``loso`` (speaker-independent protocols with numbered folds).
        sampling_rate: store every clip as mono 16-bit FLAC at this rate (Hz); ``None`` keeps the files as they
            are (same bytes, same rate).

    Returns:
        ``{"out", "configs": {name: {split: num_examples}}, "num_clips", "bytes", "seconds"}``.

    Raises:
        ExportError: ``out`` exists and is not empty (nothing is overwritten), or an unsupported protocol.
        FileNotFoundError / CorpusError: from loading the corpus.
        AudioError: clips that do not decode (all listed; nothing is written).
    """
    import datasets

    from .corpora import decode_channel, load_corpus
    from .folds import make_split, num_folds

    if protocol not in ("folds", "loso"):
        raise ExportError(f"--protocol {protocol!r}: export writes fold configs for 'folds' or 'loso'")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} exists and is not empty; choose another --to (exports never overwrite)")
    if sampling_rate is not None and sampling_rate <= 0:
        raise ExportError(f"--sampling_rate {sampling_rate}: expected a rate in Hz above 0, e.g. 16000")
    source = Path(data_dir).expanduser().resolve() if data_dir is not None else None
    if source is not None and (source == out.resolve() or source in out.resolve().parents):
        raise ExportError(
            f"--to {out} lies inside the corpus folder --data_dir {data_dir}: a later build of the corpus would read "
            "the export's files; choose a folder outside it"
        )
    start = time.perf_counter()
    ds = load_corpus(corpus, data_dir, corpus_config, cache_dir, **corpus_kwargs)
    speakers = ds["speaker"]
    splits = [
        make_split(corpus, speakers, protocol, k, num_val_speakers, ids=ds["id"], labels=ds["label"])
        for k in range(num_folds(corpus, speakers, protocol))
    ]
    groups = shard_groups(speakers, splits)
    channel = decode_channel(corpus)
    check_decodes(ds["audio"], channel)  # before anything is written: a push must never publish a broken clip

    features = ds.features.copy()
    rate = sampling_rate
    if rate is None:  # the files' own rate, when they share one
        rates = {sf.info(p).samplerate for p in ds["audio"]}
        rate = rates.pop() if len(rates) == 1 else None
    features["audio"] = datasets.Audio(sampling_rate=rate)
    # written under a temporary name beside OUT and renamed when complete: an export cut short (a full disk, a kill)
    # is never found at OUT looking finished
    work = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        summary = _write_export(
            corpus, ds, splits, groups, features, sampling_rate, channel, rate, protocol, work, speakers
        )
    except BaseException as err:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(err, OSError):
            raise OSError(f"writing the export {out} failed: {disk_full_hint(out, err)}; nothing was left") from err
        raise
    if out.exists():
        out.rmdir()  # empty (checked above)
    work.rename(out)
    summary.update(out=str(out), num_clips=len(ds), seconds=time.perf_counter() - start)
    logger.info("exported %s: %s", corpus, json.dumps(summary))
    return summary


def _write_export(corpus, ds, splits, groups, features, sampling_rate, channel, rate, protocol, out, speakers) -> dict:
    """The shards and card of an export, written into ``out`` (the temporary folder of :func:`export_dataset`)."""
    (out / "data").mkdir(parents=True, exist_ok=True)
    shard_of: dict[str, str] = {}
    total_bytes = 0
    for n, members in enumerate(sorted(groups.values())):
        name = f"data/group-{n:03d}.parquet"
        wanted = set(members)
        rows = ds.select([i for i, s in enumerate(speakers) if s in wanted])

        def encode(example):
            data, fname, _ = _audio_bytes(example["audio"], sampling_rate, channel)
            return {"audio": {"bytes": data, "path": fname}}

        shard = rows.map(encode, features=features, desc=f"encode {name}")
        shard.to_parquet(str(out / name))
        total_bytes += (out / name).stat().st_size
        for s in members:
            shard_of[s] = name

    configs = {}
    for split in splits:
        configs[f"fold_{split.fold}"] = {
            SIDE_SPLITS[side]: sorted({shard_of[s] for s in split.speakers(side)}) for side in SIDE_SPLITS
        }
    configs["all"] = {"train": sorted(set(shard_of.values()))}
    counts = {
        name: {split: sum(1 for s in speakers if shard_of[s] in set(files)) for split, files in cfg.items()}
        for name, cfg in configs.items()
    }
    sizes = {
        name: {split: sum((out / f).stat().st_size for f in files) for split, files in cfg.items()}
        for name, cfg in configs.items()
    }
    card = dataset_card(corpus, ds.info, features, configs, counts, sizes, splits, protocol, rate)
    (out / "README.md").write_text(card)
    return {"configs": counts, "num_shards": len(groups), "bytes": total_bytes}


LICENSE_IDS = {"CC BY-NC-SA 4.0": "cc-by-nc-sa-4.0", "CC BY 4.0": "cc-by-4.0", "CC BY-SA 4.0": "cc-by-sa-4.0"}
LICENSE_NOTES = {
    "cc-by-nc-sa-4.0": "CC BY-NC-SA 4.0: **non-commercial** use only, credit the authors (cite below), and share "
    "anything built from it under the same license (**share-alike**). This copy is a format conversion, "
    "redistributed under the same terms.",
}


def dataset_card(corpus, info, features, configs, counts, sizes, splits, protocol, rate) -> str:
    """The ``README.md`` of an export: YAML metadata (license, task category, configs with their shard lists,
    ``dataset_info`` with features and split counts) and the protocol, license and citation in words."""
    import yaml

    from .corpora import corpus_info

    facts = corpus_info(corpus)
    license_id = facts.license_id if facts else LICENSE_IDS.get(info.license or "", "other")
    meta = dataset_card_meta(corpus, info, features, configs, counts, sizes, protocol, facts, license_id)
    body = dataset_card_body(corpus, info, features, counts, splits, protocol, rate, facts, license_id)
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n" + body


def dataset_card_meta(corpus, info, features, configs, counts, sizes, protocol, facts, license_id) -> dict:
    """The YAML metadata of an export's card: languages, license, ser_hf's corpus identity, configs with their
    shards, and ``dataset_info`` with features and split sizes."""
    meta = {
        **({"language": list(facts.languages)} if facts else {}),
        "license": license_id,
        # the corpus identity a run trained on this export records (split.json, model card): never a guess
        "ser_hf": {"corpus": corpus, "labels": list(features["label"].names), "protocol": protocol},
        "task_categories": ["audio-classification"],
        "tags": ["speech-emotion-recognition", "speaker-independent", "ser_hf"],
        "pretty_name": f"{corpus} (speaker-independent folds, ser_hf export)",
        "configs": [
            {
                "config_name": name,
                "data_files": [{"split": split, "path": files} for split, files in cfg.items()],
                **({"default": True} if name == "fold_0" else {}),
            }
            for name, cfg in configs.items()
        ],
        "dataset_info": [
            {
                "config_name": name,
                "features": features._to_yaml_list(),
                "splits": [
                    {"name": split, "num_bytes": sizes[name][split], "num_examples": n}
                    for split, n in counts[name].items()
                ],
            }
            for name in configs
        ],
    }
    if license_id == "other" and info.license:
        meta["license_name"] = f"{corpus}-terms"
        meta["license_link"] = info.homepage or None
    return meta


def dataset_card_body(corpus, info, features, counts, splits, protocol, rate, facts, license_id) -> str:
    """The text of an export's card: the protocol with each fold's speakers and clip counts, the columns, how to
    load it, the license and the citation."""
    folds = "\n".join(
        f"| fold_{s.fold} | {', '.join(s.test_speakers)} | {', '.join(s.val_speakers)} | "
        f"{counts[f'fold_{s.fold}']['train']} / {counts[f'fold_{s.fold}']['validation']} / "
        f"{counts[f'fold_{s.fold}']['test']} |"
        for s in splits
    )
    words = {
        "folds": "the corpus's fixed speaker folds (RAVDESS: the 6 EmoBox folds of 4 actors, Ma et al. 2024, "
        "arXiv:2406.07162; corpora without fixed folds: scikit-learn GroupKFold over speakers)",
        "loso": "leave-one-speaker-out",
    }[protocol]
    if facts and protocol in facts.protocols:
        words = facts.protocols[protocol]
    body = f"""
# {corpus}: speaker-independent folds

Exported by ser_hf (`ser-hf export-dataset {corpus} --protocol {protocol}`) from the
original files. {info.description.strip().splitlines()[0] if info.description else ""}

## Protocol

Every `fold_K` config has three splits whose **speakers never overlap**: `test` holds the fold's test speakers,
`validation` the speakers that select the checkpoint (the first {len(splits[0].val_speakers)} of the next fold),
and `train` everyone else. Folds follow {words}. Use `validation` for model selection and report `test` only.
The `all` config holds every clip once (`train` split), for your own protocol: never split it at random by
utterance, since every speaker recorded many clips.

| config | test speakers | validation speakers | train / validation / test clips |
|---|---|---|---|
{folds}

## Columns

`id` (stable utterance id), `audio` ({f"{rate} Hz" if rate else "the original rate of each file"}), `label`
(ClassLabel: {", ".join(features["label"].names)}), `speaker`, `gender`, `duration_s`, and the corpus's own
metadata columns ({
        ", ".join(k for k in features if k not in ("id", "audio", "label", "speaker", "gender", "duration_s")) or "none"
    }).

```python
from datasets import load_dataset, Audio
ds = load_dataset("REPO_OR_FOLDER", "fold_0")
# without torchcodec: keep the bytes and decode them with soundfile (ser_hf.load_audio does)
ds = ds.cast_column("audio", Audio(decode=False))
```

## License

{
        LICENSE_NOTES.get(license_id)
        or (facts.terms if facts else f"License of the original corpus: {info.license or 'see its homepage'}.")
    }
Homepage: {info.homepage or "-"}

## Citation

```bibtex
{(info.citation or "").strip()}
```
"""
    return body


def export_identity(dataset: str) -> dict | None:
    """The ``ser_hf`` block of an export's dataset card (``corpus``, ``labels``, ``protocol``), read from the local
    folder's ``README.md`` or the Hub repo's card; ``None`` for an export written before it was recorded, or a
    card that cannot be read."""
    try:
        from huggingface_hub import DatasetCard

        local = Path(dataset) / "README.md"
        card = DatasetCard.load(local if local.is_file() else dataset)
        block = card.data.to_dict().get("ser_hf")
    except Exception:  # no card, or the Hub is out of reach: the caller falls back to its --corpus
        return None
    return block if isinstance(block, dict) and block.get("corpus") else None


def load_export(
    dataset: str,
    config: str,
    sampling_rate: int,
    corpus: str | None,
    cache_dir: str | None = None,
    num_proc: int | None = None,
    seed: int | None = None,
):
    """A fold config of an exported dataset (local folder or hub id) ready for training: ``(decoded, label_names,
    split)``, where ``decoded`` holds every row of the config's three splits with ``input_values`` (mono float32 at
    ``sampling_rate`` Hz, decoded from the stored bytes with soundfile) and ``num_samples``, and ``split`` is the
    :class:`ser_hf.folds.SplitDefinition` of its speaker sides (fold ``K`` of protocol ``folds`` for config
    ``fold_K``), so training, the run record and the leakage guard see the same split as from the raw corpus. The
    split's corpus is the one the export's card records (:func:`export_identity`), ``corpus`` only for an export
    that records none.

    Raises:
        ValueError: a config without ``train``, ``validation`` and ``test`` splits.
        ser_hf.folds.LeakageError: the splits share a speaker.
        ser_hf.audio.AudioError: clips that cannot be decoded (all listed).
    """
    import datasets

    from .data import decode_dataset
    from .folds import SplitDefinition

    try:
        loaded = datasets.load_dataset(dataset, config, cache_dir=cache_dir)
    except datasets.exceptions.DatasetGenerationError as err:  # e.g. a Parquet shard cut short
        cause = err.__cause__ or err
        raise ValueError(
            f"--dataset {dataset} --dataset_config {config}: its data files cannot be read ({type(cause).__name__}: "
            f"{cause}); export or download it again"
        ) from None
    missing = [s for s in SIDE_SPLITS.values() if s not in loaded]
    if missing:
        raise ValueError(
            f"--dataset {dataset} --dataset_config {config}: no {missing} split(s) (found {list(loaded)}); use a "
            "fold_K config of a ser_hf export"
        )
    identity = export_identity(dataset)
    if identity is not None:
        if corpus not in (None, identity["corpus"]):
            logger.warning(
                "--dataset %s holds corpus %r: recorded as such (not %r)", dataset, identity["corpus"], corpus
            )
        corpus = identity["corpus"]
    elif corpus is None:
        raise ValueError(f"--dataset {dataset}: its card does not say which corpus it holds; pass --corpus NAME")
    sides = {side: sorted(set(loaded[name]["speaker"])) for side, name in SIDE_SPLITS.items()}
    fold = int(config.split("_", 1)[1]) if config.startswith("fold_") and config[5:].isdigit() else None
    split = SplitDefinition(
        corpus,
        "folds" if fold is not None else "speakers",
        fold,
        sides["train"],
        sides["validation"],
        sides["test"],
        seed,
    )
    rows = datasets.concatenate_datasets([loaded[name] for name in SIDE_SPLITS.values()])
    rows = rows.cast_column("audio", datasets.Audio(decode=False))
    label_names = rows.features["label"].names
    decoded = decode_dataset(rows, sampling_rate, num_proc)  # load_audio reads the stored bytes
    return decoded.remove_columns("audio"), label_names, split

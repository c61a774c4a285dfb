"""The hidden-state cache of cached-layers training (:mod:`ser_hf.models.cached`): a ``datasets`` store (Arrow,
memory-mapped), float16, one row per clip and augmentation view.

A cache folder is named by a key over everything that decides what its rows hold: the backbone's weights (a hash
of every backbone tensor: the head and adapters excluded), the cut layer (or ``pooled`` for a frozen encoder's
pooled layers), the feature extractor's settings (sampling rate, window, normalisation) and the recipe of the
augmented views. Inside, each row is keyed by the clip's content (a hash of its decoded float32 samples) and the
view index. A changed clip, model or setting therefore never reads a stale row: it reads another key. The cache
does not depend on the fold, the seed or the split, so one cache serves every fold, seed and leave-one-corpus-out
split of a grid.

Layout::

    ROOT/<model_type>-<cut>-<key>/settings.json     what the key was computed from (for people, and checked)
    ROOT/<model_type>-<cut>-<key>/shard-<n>/        datasets.save_to_disk folders: clip, view, frames, states

Shards are written whole to a temporary folder and then renamed, so an interrupted build keeps every finished
shard (a rerun computes only the missing rows) and never leaves a half-written one in use.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

HEAD_PARAMETERS = ("projector.", "classifier.", "layer_weights")
"""Parameter name prefixes of the classification head: not part of the backbone hash (a fresh head per seed)."""


def backbone_hash(model) -> str:
    """A hash of every backbone tensor (parameters and buffers) of ``model``, head and LoRA adapters excluded,
    names normalised across peft wrappers; 16 hex digits."""
    from .models.cached import base_of

    base = base_of(model)
    h = hashlib.sha256()
    tensors = {**dict(base.named_parameters()), **dict(base.named_buffers())}
    for name in sorted(tensors):
        clean = name.replace(".base_layer.", ".")
        if clean.startswith(HEAD_PARAMETERS) or "lora_" in clean or "modules_to_save" in clean:
            continue
        t = tensors[name].detach().to("cpu", torch.float32).contiguous()
        h.update(clean.encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def clip_hash(wave: np.ndarray) -> str:
    """The identity of a decoded clip: a hash of its float32 samples ``(num_samples,)``; 16 hex digits."""
    return hashlib.sha1(np.ascontiguousarray(wave, dtype=np.float32).tobytes()).hexdigest()[:16]


def settings_key(settings: dict) -> str:
    """16 hex digits over ``settings`` (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


class FeatureCache:
    """One cache folder: rows ``{clip, view, frames, states}`` with ``states`` float16 ``(num_frames, hidden_size)``
    (or ``(num_layers + 1, hidden_size)`` for pooled layers).

    Args:
        root: the folder holding every cache (``--feature_cache_dir``).
        settings: what decides the rows (see the module docstring); must hold ``model_type`` and ``cut``.

    Raises:
        ValueError: the folder of this key holds a ``settings.json`` with other settings (edited by hand, or a
            hash collision): nothing is read from it.
    """

    def __init__(self, root: str | Path, settings: dict):
        self.settings = json.loads(json.dumps(settings, sort_keys=True, default=str))
        name = f"{settings['model_type']}-{settings['cut']}-{settings_key(self.settings)}"
        self.folder = Path(root).expanduser() / name
        self.folder.mkdir(parents=True, exist_ok=True)
        stored = self.folder / "settings.json"
        if stored.exists():
            if json.loads(stored.read_text()) != self.settings:
                raise ValueError(
                    f"{stored}: this cache folder was made with other settings than its name says; move it away"
                )
        else:
            tmp = stored.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(self.settings, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, stored)
        self._dataset = None
        self._index = None

    def shards(self) -> list[Path]:
        """The finished shard folders, in name order."""
        return sorted(p for p in self.folder.glob("shard-*") if p.is_dir() and not p.name.endswith(".tmp"))

    def dataset(self):
        """Every row as one memory-mapped ``datasets.Dataset`` (numpy format), ``None`` while the cache is empty."""
        if self._dataset is None:
            import datasets

            parts = [datasets.load_from_disk(str(p)) for p in self.shards()]
            if parts:
                self._dataset = datasets.concatenate_datasets(parts).with_format("numpy", columns=["states"])
        return self._dataset

    def index(self) -> dict[tuple[str, int], int]:
        """``{(clip_hash, view): row}`` of :meth:`dataset` (the first row of a key written twice)."""
        if self._index is None:
            ds = self.dataset()
            self._index = {}
            if ds is not None:
                table = ds.with_format(None).select_columns(["clip", "view"])[:]
                for row, key in enumerate(zip(table["clip"], table["view"])):
                    self._index.setdefault((key[0], int(key[1])), row)
        return self._index

    def missing(self, wanted: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """The keys of ``wanted`` that have no row yet (in order, without repeats)."""
        have = self.index()
        return list(dict.fromkeys(k for k in wanted if k not in have))

    def write(self, clips: list[str], views: list[int], states: list[np.ndarray]) -> Path:
        """Add rows as a new shard (written to a temporary folder, then renamed); returns its folder.

        Args:
            states: ``(num_frames, hidden_size)`` arrays, stored as float16.
        """
        import datasets

        width = int(states[0].shape[-1])
        features = datasets.Features(
            {
                "clip": datasets.Value("string"),
                "view": datasets.Value("int32"),
                "frames": datasets.Value("int32"),
                "states": datasets.Array2D(shape=(None, width), dtype="float16"),
            }
        )
        rows = {
            "clip": list(clips),
            "view": [int(v) for v in views],
            "frames": [int(s.shape[0]) for s in states],
            "states": [np.asarray(s, dtype=np.float16) for s in states],
        }
        number = len(list(self.folder.glob("shard-*")))
        final = self.folder / f"shard-{number:05d}-{os.getpid()}"
        tmp = self.folder / f"{final.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp))
        os.replace(tmp, final)
        self._dataset = self._index = None
        return final

    def states(self, rows: list[int]) -> list[np.ndarray]:
        """The stored states of ``rows`` (float32 arrays)."""
        got = self.dataset()[[int(r) for r in rows]]["states"]
        return [np.asarray(s, dtype=np.float32) for s in got]

    def nbytes(self) -> int:
        """Bytes on disk of every shard."""
        return sum(f.stat().st_size for p in self.shards() for f in p.rglob("*") if f.is_file())

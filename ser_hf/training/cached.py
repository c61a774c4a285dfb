"""Cached-layers training of one fold (``--adapt_top_layers K``): fill the hidden-state cache for the fold's train
and validation clips, and give the Trainer the top of the model with batches read from the cache.

What is cached per clip (:class:`ser_hf.feature_cache.FeatureCache`): view 0 is the clip as evaluation and
``pipeline()`` see it (the checkpoint's feature extractor: Whisper's window, wav2vec2's whole clip); views
``1 .. V-1`` (``--cache_views``) are augmented like today's training batches (:class:`ser_hf.data.WaveformAugment`
with ``--augment``, then a random crop to ``--max_duration_s`` and the window), drawn once, with a generator seeded
by the view and the clip (not by the run's seed, so every seed and fold shares them). Each time training draws a
clip it takes one of its V views at random; ``--cached_mask_time_prob`` also masks spans of the cached states in
time (as wav2vec2's ``mask_time_prob`` / ``mask_time_length`` do). Variable-length models (the wav2vec2 family)
are cropped at random to ``--max_duration_s`` in frames.

Validation during training reads view 0 from the cache; the test side, and the validation scores of a multi-corpus
run, are scored as before: the saved full checkpoint on raw audio through its own feature extractor.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict

import numpy as np
import torch

from ..audio import fixed_window, random_crop
from ..data import WaveformAugment, featurize, training_crop_samples
from ..feature_cache import FeatureCache, backbone_hash, clip_hash
from ..models.cached import base_of, bottom_states, cached_classifier, cut_layer, pooled_layer_states

logger = logging.getLogger(__name__)

VIEW_SEED = 20250317
"""Seed of the augmented views' generators (with the view index and the clip's hash): fixed, so that views do not
depend on the run's seed and one cache serves every seed."""
WRITE_EVERY = 256
"""Rows per cache shard written while building (a killed build keeps the shards already written)."""


def view_recipe(data_args, fe) -> dict:
    """How views ``1 ..`` are made: the augmentation's settings (``None`` without ``--augment``) and the crop in
    samples (``--max_duration_s``, at most a fixed window)."""
    crop = training_crop_samples(fe, data_args.max_duration_s)
    return {"augment": asdict(WaveformAugment()) if data_args.augment else None, "crop_samples": crop}


def cache_settings(model, fe, cut: int | None, views: dict) -> dict:
    """What decides a cache's rows (:class:`ser_hf.feature_cache.FeatureCache`): backbone weights, cut (the encoder
    layer whose input is cached, :func:`ser_hf.models.cached.cut_layer`; ``None`` for every layer averaged over
    frames), the feature extractor's settings and the views' recipe."""
    return {
        "model_type": base_of(model).config.model_type,
        "cut": "pooled" if cut is None else f"layer{cut}",
        "backbone": backbone_hash(model),
        "feature_extractor": fe.to_dict(),
        "views": views,
        "view_seed": VIEW_SEED,
    }


def view_wave(wave: np.ndarray, view: int, key: str, sampling_rate: int, recipe: dict) -> np.ndarray:
    """The waveform of ``view`` of a clip: the clip itself for view 0, else augmented and cropped with a generator
    seeded by ``(VIEW_SEED, view, clip hash)``."""
    if view == 0:
        return wave
    rng = np.random.default_rng([VIEW_SEED, view, int(key, 16)])
    if recipe["augment"] is not None:
        wave = WaveformAugment(**{k: tuple(v) if isinstance(v, list) else v for k, v in recipe["augment"].items()})(
            wave, sampling_rate, rng
        )
    if recipe["crop_samples"]:
        wave = random_crop(wave, recipe["crop_samples"], rng)
    return wave


def fill_cache(
    cache: FeatureCache, model, fe, waves, keys, views: int, recipe: dict, batch_size: int, device, *, cut: int | None
) -> dict:
    """Compute the rows of ``views`` views of every clip that the cache lacks, with a progress bar.

    Args:
        waves: mono float32 waveforms ``(num_samples,)`` at the extractor's rate; keys: their :func:`clip_hash`.
        cut: the encoder layer whose input is cached (:func:`ser_hf.models.cached.cut_layer`), ``None`` for the
            frame-averaged hidden states of every layer (``--adapt_top_layers 0``).

    Returns:
        ``{"rows_built", "rows_reused", "build_s"}`` (seconds of wall time).
    """
    from tqdm.auto import tqdm

    wave_of = dict(zip(keys, waves))
    wanted = [(k, v) for k in keys for v in range(views)]
    todo = cache.missing(wanted)
    pooled = cut is None
    batch = batch_size if fixed_window(fe) else 1  # variable-length inputs: one clip at a time, no padding
    start = time.time()
    model.to(device)
    pending: tuple[list, list, list] = ([], [], [])
    for i in tqdm(range(0, len(todo), batch), desc="hidden-state cache", disable=not todo):
        chunk = todo[i : i + batch]
        inputs = featurize(fe, [view_wave(wave_of[k], v, k, fe.sampling_rate, recipe) for k, v in chunk])
        inputs = {k: t.to(device) for k, t in inputs.items()}
        states = pooled_layer_states(model, inputs) if pooled else bottom_states(model, inputs, cut)
        for (key, view), s in zip(chunk, states.cpu().numpy()):
            pending[0].append(key)
            pending[1].append(view)
            pending[2].append(s)
        if len(pending[0]) >= WRITE_EVERY:
            cache.write(*pending)
            pending = ([], [], [])
    if pending[0]:
        cache.write(*pending)
    return {"rows_built": len(todo), "rows_reused": len(set(wanted)) - len(todo), "build_s": time.time() - start}


def cached_side(side, keys: list[str], cache: FeatureCache, views: int):
    """A side as the cached Trainer reads it: ``cache_rows`` (the rows of each clip's views), ``label`` and
    ``loss_weight`` where the side has one."""
    import datasets

    index = cache.index()
    columns = {"cache_rows": [[index[(k, v)] for v in range(views)] for k in keys], "label": list(side["label"])}
    if "loss_weight" in side.column_names:
        columns["loss_weight"] = list(side["loss_weight"])
    return datasets.Dataset.from_dict(columns)


class CachedCollator:
    """Batch rows of :func:`cached_side` into inputs of :class:`ser_hf.models.cached.TopLayersClassifier`
    (``hidden_states`` ``(batch_size, num_frames, hidden_size)``, ``attention_mask`` over frames when clips differ
    in length) or :class:`~ser_hf.models.cached.PooledLayersClassifier` (``layer_states``), plus ``labels`` and
    ``loss_weights``.

    Args:
        train: draw a view per clip, crop and mask; otherwise view 0, whole.
        crop_frames: random crop length in frames (variable-length models), ``None`` for none.
        mask_time_prob / mask_time_length: share of frames to mask (zero) in spans of ``mask_time_length`` frames.
    """

    def __init__(
        self,
        cache: FeatureCache,
        train: bool,
        pooled: bool,
        crop_frames: int | None = None,
        mask_time_prob: float = 0.0,
        mask_time_length: int = 10,
        seed: int = 0,
    ):
        self.cache, self.train, self.pooled = cache, train, pooled
        self.crop_frames, self.mask_prob, self.mask_length = crop_frames, mask_time_prob, mask_time_length
        self.rng = np.random.default_rng(seed)

    def _frames(self, s: np.ndarray) -> np.ndarray:
        if self.crop_frames and len(s) > self.crop_frames:
            start = int(self.rng.integers(0, len(s) - self.crop_frames + 1))
            s = s[start : start + self.crop_frames]
        if self.mask_prob > 0:
            s = s.copy()
            spans = int(self.mask_prob * len(s) / self.mask_length + self.rng.random())
            for start in self.rng.integers(0, max(1, len(s) - self.mask_length + 1), size=spans):
                s[start : start + self.mask_length] = 0.0
        return s

    def __call__(self, rows: list[dict]) -> dict:
        picks = [int(self.rng.integers(len(r["cache_rows"]))) if self.train else 0 for r in rows]
        states = self.cache.states([r["cache_rows"][p] for r, p in zip(rows, picks)])
        out = {"labels": torch.tensor([int(r["label"]) for r in rows], dtype=torch.long)}
        if "loss_weight" in rows[0]:
            out["loss_weights"] = torch.tensor([float(r["loss_weight"]) for r in rows], dtype=torch.float32)
        if self.pooled:
            out["layer_states"] = torch.from_numpy(np.stack(states))
            return out
        if self.train:
            states = [self._frames(s) for s in states]
        longest = max(len(s) for s in states)
        batch = np.zeros((len(states), longest, states[0].shape[-1]), dtype=np.float32)
        mask = np.zeros((len(states), longest), dtype=np.int64)
        for i, s in enumerate(states):
            batch[i, : len(s)], mask[i, : len(s)] = s, 1
        out["hidden_states"] = torch.from_numpy(batch)
        if not mask.all():
            out["attention_mask"] = torch.from_numpy(mask)
        return out


def prepare(model, fe, sides: dict, model_args, data_args, training_args) -> tuple:
    """Fill the cache for the train and validation sides and build what the Trainer needs.

    Returns:
        ``(classifier, cached_sides, train_collator, eval_collator, facts)``: the module to train (its modules are
        ``model``'s own), the sides as :func:`cached_side` rows, the two collators, and the cache facts for the run
        record (folder, bytes on disk, build seconds, rows built and reused, views, cut layer).
    """
    k = model_args.adapt_top_layers
    views, recipe = data_args.cache_views, view_recipe(data_args, fe)
    cut = None if k == 0 else cut_layer(model, k)
    cache = FeatureCache(data_args.feature_cache_root(), cache_settings(model, fe, cut, recipe))
    keys = {s: [clip_hash(np.asarray(w, dtype=np.float32)) for w in sides[s]["input_values"]] for s in sides}
    facts = {"rows_built": 0, "rows_reused": 0, "build_s": 0.0}
    batch_size, device = training_args.per_device_eval_batch_size, training_args.device
    with training_args.main_process_first(desc="hidden-state cache"):
        for s in ("train", "validation"):
            waves = [np.asarray(w, dtype=np.float32) for w in sides[s]["input_values"]]
            side_views = views if s == "train" else 1
            got = fill_cache(cache, model, fe, waves, keys[s], side_views, recipe, batch_size, device, cut=cut)
            facts = {key: facts[key] + got[key] for key in facts}
    classifier = cached_classifier(model, k)
    cached = {
        "train": cached_side(sides["train"], keys["train"], cache, views),
        "validation": cached_side(sides["validation"], keys["validation"], cache, 1),
    }
    pooled = k == 0
    crop = None
    if not pooled and not fixed_window(fe) and data_args.max_duration_s:
        per_frame = int(np.prod(base_of(model).config.conv_stride))  # samples per frame of the CNN front end
        crop = training_crop_samples(fe, data_args.max_duration_s) // per_frame
    train_collator = CachedCollator(
        cache, True, pooled, crop, data_args.cached_mask_time_prob, data_args.cached_mask_time_length,
        training_args.seed,
    )  # fmt: skip
    facts.update(
        folder=str(cache.folder),
        bytes=cache.nbytes(),
        views=views,
        adapt_top_layers=k,
        cut_layer=cache.settings["cut"],
    )
    logger.info(
        "hidden-state cache %s: %d rows built in %.1f s, %d reused, %.1f MB on disk",
        cache.folder, facts["rows_built"], facts["build_s"], facts["rows_reused"], facts["bytes"] / 1e6,
    )  # fmt: skip
    return classifier, cached, train_collator, CachedCollator(cache, False, pooled), facts

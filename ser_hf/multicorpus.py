"""Several corpora as one training set: ``--corpus ravdess,emovo,eyase,urdu``.

Each corpus is loaded by its own builder, its labels are mapped to the canonical vocabulary of
:mod:`ser_hf.labels`, and its speakers and clip ids are prefixed with the corpus name (``emovo/f1``), so that no
two corpora share a speaker. Every clip keeps its ``corpus`` and ``language``. The label set is the union of the
corpora's labels (in :data:`ser_hf.labels.CANONICAL` order) or ``--labels``; clips outside it are dropped and
counted per corpus.

Protocols (the split's ``corpus`` is the members joined by ``+``, e.g. ``ravdess+emovo``):

- ``folds``: fold K takes fold K of each corpus's own speaker-independent protocol (:data:`ser_hf.folds.CORPUS_FOLDS`),
  so every test speaker is unseen and every validation speaker disjoint from both. Corpora have different fold
  counts (RAVDESS, EYASE and EMOVO 6, URDU 4): a multi-corpus run has as many folds as the corpus with the
  fewest, so that every fold tests every corpus and no speaker is tested twice; the other corpora's last folds
  are not tested (they train in every fold).
- ``loco`` (leave one corpus out, as EmoBox's cross-corpus protocol, Ma et al. 2024,
  https://arxiv.org/abs/2406.07162): ``--test_corpus NAME`` is the whole test side; the other corpora train and
  validate with the sides of their fold 0 (its test speakers train).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import datasets

from .corpora import SEPARATOR, corpus_info, decode_channel, load_corpus
from .folds import SplitDefinition, make_split, num_folds
from .labels import CANONICAL, canonical_label

logger = logging.getLogger(__name__)

COLUMNS = ("id", "audio", "label", "speaker", "gender", "duration_s")
"""Columns every corpus has (:func:`ser_hf.corpora.common.ser_features`); the combined set adds ``corpus`` and
``language``."""


@dataclass
class MultiCorpus:
    """Corpora combined into one dataset.

    Attributes:
        dataset: columns :data:`COLUMNS` plus ``corpus`` and ``language``; ``label`` is a ``ClassLabel`` over
            ``label_names``; speakers and ids are prefixed ``<corpus>/``.
        label_names: the label set, in :data:`ser_hf.labels.CANONICAL` order (or the order of ``--labels``).
        names: the member corpora, in ``--corpus`` order.
        clips: ``{corpus: clips kept}``.
        dropped: ``{corpus: {label: clips dropped}}`` for labels outside the label set.
    """

    dataset: datasets.Dataset
    label_names: list[str]
    names: list[str]
    clips: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The name a split of these corpora records: the members joined by ``+``."""
        return SEPARATOR.join(self.names)


def _canonical_names(ds: datasets.Dataset, name: str) -> list[str]:
    out = []
    for label in ds.features["label"].names:
        canon = canonical_label(label)
        if canon is None:
            raise ValueError(f"corpus {name}: label {label!r} is not in the canonical vocabulary (ser_hf.labels)")
        out.append(canon)
    return out


def load_corpora(
    names: list[str],
    dirs: dict[str, str | None],
    labels: list[str] | None = None,
    cache_dir: str | None = None,
    verify_counts: bool = True,
    label_from: list[str] | None = None,
) -> MultiCorpus:
    """Load every corpus of ``names`` and combine them (see the module docstring).

    Args:
        labels: the label set (canonical names; aliases are accepted); default: the union of the labels of the
            corpora of ``label_from``.
        label_from: the corpora whose labels make the default label set (default: all; ``loco`` passes the
            training corpora, so that the model has no class it never saw, and the left-out corpus loses the
            clips of labels no training corpus has).

    Raises:
        ValueError: a label of ``labels`` is unknown to the vocabulary, or fewer than two labels remain.
        ser_hf.corpora.CorpusError: a corpus folder does not match its layout or counts.
    """
    loaded = {}
    for name in names:
        kwargs = {} if verify_counts else {"verify_counts": False}
        loaded[name] = load_corpus(name, dirs.get(name), cache_dir=cache_dir, **kwargs)
    canon = {name: _canonical_names(ds, name) for name, ds in loaded.items()}
    if labels:
        wanted = [canonical_label(label) for label in labels]
        if None in wanted:
            raise ValueError(f"--labels {labels}: {labels[wanted.index(None)]!r} is not a known emotion label")
        label_names = list(dict.fromkeys(wanted))
    else:
        union = {c for name in (label_from or names) for c in canon[name]}
        label_names = [c for c in CANONICAL if c in union]
    if len(label_names) < 2:
        raise ValueError(f"--corpus {','.join(names)}: the label set {label_names} has fewer than two labels")
    index = {c: i for i, c in enumerate(label_names)}
    parts, clips, dropped = [], {}, {}
    for name, ds in loaded.items():
        own = [canon[name][y] for y in ds["label"]]
        keep = [i for i, c in enumerate(own) if c in index]
        dropped[name] = dict(Counter(c for c in own if c not in index))
        clips[name] = len(keep)
        part = ds.select(keep).select_columns(list(COLUMNS))
        language = (corpus_info(name).languages or [""])[0] if corpus_info(name) else ""
        new = {
            "id": [f"{name}/{i}" for i in part["id"]],
            "speaker": [f"{name}/{s}" for s in part["speaker"]],
            "label": [index[own[i]] for i in keep],
            "corpus": [name] * len(part),
            "language": [language] * len(part),
        }
        part = part.remove_columns(["id", "speaker", "label"])
        for column, values in new.items():
            part = part.add_column(column, values)
        features = part.features.copy()
        features["label"] = datasets.ClassLabel(names=label_names)
        parts.append(part.cast(features).select_columns([*COLUMNS, "corpus", "language"]))
        if dropped[name]:
            logger.info(
                "%s: %d clips kept, dropped for labels outside %s: %s", name, len(keep), label_names, dropped[name]
            )
    check_label_clips(names, label_names, canon, clips, label_from or names, labels)
    return MultiCorpus(datasets.concatenate_datasets(parts), label_names, list(names), clips, dropped)


def check_label_clips(names, label_names, canon, clips, label_from, labels) -> None:
    """Every corpus keeps clips under the label set, and every label has clips in the training corpora
    (``label_from``).

    Raises:
        ValueError: naming the corpus left without clips (with its labels) or the labels without a clip.
    """
    flag = f"--labels {' '.join(labels)}" if labels else "the label set"
    for name in names:
        if clips[name] == 0:
            raise ValueError(
                f"{flag} leaves no clip of corpus {name} (its labels: {sorted(set(canon[name]))}); drop {name} from "
                "--corpus, or add one of its labels"
            )
    empty = [c for c in label_names if not any(c in canon[n] for n in label_from)]
    if empty:
        raise ValueError(
            f"{flag}: no clip of {empty} in {', '.join(label_from)}; a class without training clips can never be "
            "learnt: remove it from --labels"
        )


def decode_corpora(multi: MultiCorpus, sampling_rate: int, num_proc: int | None = None) -> datasets.Dataset:
    """:func:`ser_hf.data.decode_dataset` of each member with its own decode channel
    (:func:`ser_hf.corpora.decode_channel`), in the rows' order."""
    from .data import decode_dataset

    ds, parts = multi.dataset, []
    corpus_of = ds["corpus"]
    for name in multi.names:
        rows = [i for i, c in enumerate(corpus_of) if c == name]
        parts.append(decode_dataset(ds.select(rows), sampling_rate, num_proc, decode_channel(name)))
    return datasets.concatenate_datasets(parts)


def _members(ds: datasets.Dataset, names: list[str]) -> dict[str, list[str]]:
    """``{corpus: speakers (unprefixed), one entry per clip}``."""
    out: dict[str, list[str]] = {n: [] for n in names}
    for corpus, speaker in zip(ds["corpus"], ds["speaker"], strict=True):
        out[corpus].append(speaker.split("/", 1)[1])
    return out


def multi_num_folds(ds: datasets.Dataset, names: list[str], protocol: str = "folds") -> int:
    """Folds of a multi-corpus run: the fewest of any member's (see the module docstring); 1 for ``loco``."""
    if protocol == "loco":
        return 1
    members = _members(ds, names)
    return min(num_folds(n, members[n], protocol) for n in names)


def make_multi_split(
    ds: datasets.Dataset,
    names: list[str],
    protocol: str = "folds",
    fold: int = 0,
    num_val_speakers: int = 2,
    test_corpus: str | None = None,
    seed: int | None = None,
) -> SplitDefinition:
    """The speaker-independent split of several corpora (see the module docstring); ``extra["corpora"]`` records
    each member's protocol, fold and role.

    Raises:
        ValueError: ``loco`` without a ``test_corpus`` among ``names``, a fold out of range, or a protocol other
            than ``folds`` / ``loso`` / ``loco``.
    """
    if protocol not in ("folds", "loso", "loco"):
        raise ValueError(f"--protocol {protocol!r} is not valid for several corpora; choose folds, loso or loco")
    if protocol == "loco" and test_corpus not in names:
        raise ValueError(f"--protocol loco needs --test_corpus, one of {names}; got {test_corpus!r}")
    if protocol != "loco" and test_corpus is not None:
        raise ValueError("--test_corpus is for --protocol loco")
    n = multi_num_folds(ds, names, protocol)
    if not 0 <= fold < n:
        raise ValueError(f"--fold {fold} is out of range for {'+'.join(names)}/{protocol}; expected 0..{n - 1}")
    members = _members(ds, names)
    sides = {"train": [], "validation": [], "test": []}
    record = {}
    for name in names:
        if name == test_corpus:
            sides["test"] += [f"{name}/{s}" for s in sorted(set(members[name]))]
            record[name] = {"role": "test corpus"}
            continue
        own = "folds" if protocol == "loco" else protocol
        k = 0 if protocol == "loco" else fold
        split = make_split(name, members[name], own, k, num_val_speakers, seed=seed)
        test_side = "train" if protocol == "loco" else "test"
        sides["train"] += [f"{name}/{s}" for s in split.train_speakers]
        sides["validation"] += [f"{name}/{s}" for s in split.val_speakers]
        sides[test_side] += [f"{name}/{s}" for s in split.test_speakers]
        record[name] = {"protocol": own, "fold": k, "role": "train" if protocol == "loco" else "all sides"}
    return SplitDefinition(
        SEPARATOR.join(names),
        protocol,
        fold,
        sides["train"],
        sides["validation"],
        sides["test"],
        seed,
        extra={"corpora": record, **({"test_corpus": test_corpus} if test_corpus else {})},
    )


def corpus_sample_weights(corpora: list[str], alpha: float):
    """Per-clip sampling weights that draw corpus ``c`` with probability ``n_c ** alpha / sum_d n_d ** alpha``
    (``n_c``: clips of ``c`` in ``corpora``): each clip weighs ``n_c ** (alpha - 1)``. The temperature sampling of
    multilingual models (Conneau & Lample 2019, XLM, https://arxiv.org/abs/1901.07291; Arivazhagan et al. 2019):
    ``alpha = 1`` keeps the natural proportions, ``0`` draws every corpus equally often.

    Args:
        corpora: the corpus of every training clip, shape ``(num_clips,)``.

    Returns:
        ``np.ndarray`` of float64, shape ``(num_clips,)``, summing to 1.
    """
    import numpy as np

    counts = Counter(corpora)
    weights = np.array([counts[c] ** (alpha - 1.0) for c in corpora], dtype=np.float64)
    return weights / weights.sum()


def corpus_class_weight_table(corpora: list[str], labels) -> dict[tuple[str, int], float]:
    """Loss weights that balance the classes within each corpus (``--class_weights_by_corpus``): a clip of class
    ``y`` from corpus ``c`` weighs ``n_c / (K_c * n_cy)`` (``n_c``: clips of ``c``; ``n_cy``: those of class ``y``;
    ``K_c``: classes present in ``c``). Within every corpus the weights average 1, so a corpus keeps its share of
    the loss (set by the sampling), while its classes count equally, as its UA counts them. The inverse class
    frequency of the usual class-weighted loss (King & Zeng 2001, "Logistic regression in rare events data"),
    taken per corpus instead of over the union, where a class that several corpora share (``neutral``) weighs
    less than one only a single corpus has (RAVDESS's ``calm``), which moves that corpus's decision boundary.

    Args:
        corpora: the corpus of every training clip, shape ``(num_clips,)``.
        labels: the label index of every training clip, shape ``(num_clips,)``.

    Returns:
        ``{(corpus, label): weight}`` for every pair present.

    Raises:
        ValueError: ``corpora`` and ``labels`` differ in length.
    """
    labels = [int(y) for y in labels]
    if len(corpora) != len(labels):
        raise ValueError(f"corpus_class_weight_table: {len(corpora)} corpus names for {len(labels)} labels")
    pairs = Counter(zip(corpora, labels))
    sizes = Counter(corpora)
    classes = Counter(c for c, _ in pairs)
    return {(c, y): sizes[c] / (classes[c] * n) for (c, y), n in pairs.items()}

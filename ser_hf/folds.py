"""Speaker-independent splits: fixed folds, leave-one-speaker-out (LOSO) and explicit speaker lists.

Every split has three speaker-disjoint sides: ``train``, ``validation`` (checkpoint selection) and ``test``.
A split in which any speaker sits on two sides raises :class:`LeakageError`.

RAVDESS folds follow EmoBox (Ma et al. 2024, "EmoBox: Multilingual Multi-corpus Speech Emotion Recognition
Toolkit and Benchmark", https://arxiv.org/abs/2406.07162): 6 folds of 4 consecutive actors (1-4, 5-8, ...,
21-24); EMOVO uses EmoBox's 6 one-actor folds, EYASE leave-one-speaker-out and URDU 4 hand-balanced speaker folds
(each corpus module documents its folds and why). For fold ``k`` the validation speakers are the first
``num_val_speakers`` speakers of the next fold (``(k + 1) % num_folds``); for RAVDESS that is one male and one
female actor. For LOSO the validation speakers are the ``num_val_speakers`` speakers that follow the test
speaker in sorted order (cyclically).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

from .corpora import REGISTRY
from .corpora.folder import UNKNOWN_SPEAKER_PREFIX


class LeakageError(ValueError):
    """Raised when a speaker appears on two sides of a split."""


SIDES = ("train", "validation", "test")
"""The three speaker-disjoint sides of every split."""

PROTOCOLS = ("folds", "loso", "speakers", "speaker_dependent", "loco")
"""``folds``: the corpus's fixed speaker folds; ``loso``: leave-one-speaker-out; ``speakers``: explicit lists;
``loco``: leave one corpus out, for several corpora (:mod:`ser_hf.multicorpus`);
``speaker_dependent``: a random utterance split (80 / 10 / 10, stratified by label) in which every speaker is
on every side, as EmoBox uses for EmoV-DB. It is never a default: its scores are not speaker-independent and
are optimistic (every model reaches 93-99 % on EmoV-DB with it)."""
SPEAKER_DEPENDENT = "speaker_dependent"

CORPUS_FOLDS: dict[str, list[list[str]]] = {
    name: c.info.folds for name, c in REGISTRY.items() if c.info is not None and c.info.folds
}
"""Fixed speaker folds per corpus (test speakers of each fold), each defined and documented in its corpus module
(:attr:`ser_hf.corpora.CorpusInfo.folds`, read through the registry)."""

DEFAULT_NUM_FOLDS = 5
"""Folds of protocol ``folds`` for a corpus without fixed folds (fewer when it has fewer speakers)."""


def speaker_folds(corpus: str, speakers: list[str]) -> list[list[str]]:
    """Test speakers of each fold of protocol ``folds``.

    A corpus in :data:`CORPUS_FOLDS` uses its fixed folds. Any other corpus (a user's folder) gets
    ``min(DEFAULT_NUM_FOLDS, number of speakers)`` folds from scikit-learn's ``GroupKFold`` over the
    utterances grouped by speaker (folds of similar utterance counts; deterministic).

    Args:
        speakers: the speaker of every utterance (repeats give the group sizes).
    """
    if corpus in CORPUS_FOLDS:
        return CORPUS_FOLDS[corpus]
    groups = np.asarray(speakers)
    distinct = sorted(set(speakers))
    k = min(DEFAULT_NUM_FOLDS, len(distinct))
    if k < 2:
        raise ValueError(f"corpus {corpus!r} has {len(distinct)} speaker(s); folds need at least 2")
    folds = GroupKFold(n_splits=k).split(groups, groups=groups)
    return [sorted(set(groups[test].tolist())) for _, test in folds]


@dataclass
class SplitDefinition:
    """Which speakers sit on which side of a split; stored with every checkpoint as ``split.json``.

    Args:
        corpus: corpus name.
        protocol: one of :data:`PROTOCOLS`.
        fold: fold index (``folds``/``loso``), ``None`` for explicit speaker lists.
        train_speakers / val_speakers / test_speakers: sorted speaker ids of each side.
        seed: training seed of the run that used the split (informational).

    Raises:
        LeakageError: a speaker is on two sides, or a side is empty.
    """

    corpus: str
    protocol: str
    fold: int | None
    train_speakers: list[str]
    val_speakers: list[str]
    test_speakers: list[str]
    seed: int | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if self.protocol == SPEAKER_DEPENDENT:  # utterance-level sides (extra["utterances"]); speakers repeat
            utts = self.extra.get("utterances", {})
            if any(not utts.get(side) for side in SIDES):
                raise ValueError("a speaker_dependent split needs utterance ids for every side in extra['utterances']")
            return
        sides = {side: self.speakers(side) for side in SIDES}
        for side, speakers in sides.items():
            # one corpus of a ``loco`` split seen alone (for_corpus) has only a test side (the left-out corpus) or
            # none (a training corpus)
            if not speakers and self.protocol != "loco":
                raise LeakageError(f"split {self.corpus}/{self.protocol}/{self.fold}: {side} side has no speakers")
        names = list(sides)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                both = sorted(set(sides[a]) & set(sides[b]))
                if both:
                    raise LeakageError(f"speakers {both} appear in both {a} and {b}; splits must be speaker-disjoint")
        self.train_speakers, self.val_speakers, self.test_speakers = (
            sorted(self.train_speakers),
            sorted(self.val_speakers),
            sorted(self.test_speakers),
        )

    def speakers(self, side: str) -> list[str]:
        """Speaker ids on ``side``, one of :data:`SIDES`.

        Raises:
            ValueError: ``side`` is not one of :data:`SIDES`.
        """
        if side not in SIDES:
            raise ValueError(f"side {side!r} is not one of {', '.join(SIDES)}")
        return {"train": self.train_speakers, "validation": self.val_speakers, "test": self.test_speakers}[side]

    def side_of(self, speaker: str) -> str | None:
        """``"train"``, ``"validation"``, ``"test"`` or ``None`` for a speaker outside the split."""
        return next((side for side in SIDES if speaker in self.speakers(side)), None)

    @property
    def corpora(self) -> list[str]:
        """The corpora the split covers: one, or the members of a multi-corpus split (:mod:`ser_hf.multicorpus`)."""
        return self.corpus.split("+")

    def for_corpus(self, corpus: str) -> SplitDefinition | None:
        """The split as seen from one corpus: itself for its own corpus; for a member of a multi-corpus split, that
        member's speakers on each side (unprefixed, protocol and fold of the member); ``None`` for any other.

        This is what the leakage guard compares an evaluation with: scoring a member corpus of a multi-corpus
        model on its training or validation speakers is refused like scoring a single-corpus model's.
        """
        if corpus == self.corpus:
            return self
        if corpus not in self.corpora or len(self.corpora) < 2:
            return None
        member = self.extra.get("corpora", {}).get(corpus, {})
        prefix = f"{corpus}/"

        def own(side):
            return [s[len(prefix) :] for s in self.speakers(side) if s.startswith(prefix)]

        protocol = "loco" if self.protocol == "loco" else member.get("protocol", self.protocol)
        return SplitDefinition(
            corpus,
            protocol,
            member.get("fold", self.fold),
            own("train"),
            own("validation"),
            own("test"),
            self.seed,
            extra={"multi_corpus": self.corpus},
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> SplitDefinition:
        return cls(**json.loads(Path(path).read_text()))


def num_folds(corpus: str, speakers: list[str], protocol: str = "folds") -> int:
    """Number of folds of ``protocol`` for ``corpus`` given its ``speakers``."""
    if protocol == "folds":
        return len(speaker_folds(corpus, speakers))
    if protocol == "loso":
        return LeaveOneGroupOut().get_n_splits(groups=speakers)
    if protocol == SPEAKER_DEPENDENT:
        return 1
    return 1


def make_split(
    corpus: str,
    speakers: list[str],
    protocol: str = "folds",
    fold: int | None = 0,
    num_val_speakers: int = 2,
    test_speakers: list[str] | None = None,
    val_speakers: list[str] | None = None,
    seed: int | None = None,
    ids: list[str] | None = None,
    labels: list | None = None,
) -> SplitDefinition:
    """Build the speaker-independent split ``fold`` of ``protocol`` over the corpus's speakers.

    Args:
        corpus: corpus name (selects the fixed folds of :data:`CORPUS_FOLDS`).
        speakers: the speaker of every utterance (repeats allowed), or the list of distinct speakers.
        protocol: ``folds``, ``loso`` or ``speakers`` (then ``test_speakers`` and ``val_speakers`` are given).
        fold: fold index, ``0 <= fold < num_folds``.
        num_val_speakers: validation speakers taken as described in the module docstring.
        seed: recorded in the split definition (and the random state of ``speaker_dependent``).
        ids / labels: utterance ids and labels, needed by ``speaker_dependent`` only.

    Raises:
        ValueError: unknown protocol, fold out of range, or speakers missing from the corpus.
        LeakageError: the resulting sides are not speaker-disjoint.
    """
    distinct = sorted(set(speakers))
    if protocol == SPEAKER_DEPENDENT:
        return speaker_dependent_split(corpus, speakers, ids, labels, seed)
    if distinct and all(s.startswith(UNKNOWN_SPEAKER_PREFIX) for s in distinct):
        warnings.warn(
            f"corpus {corpus!r}: speakers are unknown, so this split is an utterance-level random split and NOT "
            "speaker-independent; scores will be optimistic if speakers repeat",
            stacklevel=2,
        )
    if protocol not in PROTOCOLS:
        raise ValueError(f"--protocol {protocol!r} is not valid; choose one of {', '.join(PROTOCOLS)}")
    if protocol == "loco":
        raise ValueError(f"--protocol loco leaves one of several corpora out; --corpus {corpus!r} names one")
    if protocol == "speakers":
        if not test_speakers or not val_speakers:
            raise ValueError("protocol 'speakers' needs both --test_speakers and --val_speakers")
        unknown = sorted((set(test_speakers) | set(val_speakers)) - set(distinct))
        if unknown:
            raise ValueError(f"speakers {unknown} are not in corpus {corpus!r}; known: {distinct}")
        train = [s for s in distinct if s not in set(test_speakers) | set(val_speakers)]
        return SplitDefinition(corpus, protocol, None, train, list(val_speakers), list(test_speakers), seed)

    n = num_folds(corpus, list(speakers), protocol)
    if fold is None or not 0 <= fold < n:
        raise ValueError(f"--fold {fold} is out of range for {corpus}/{protocol}; expected 0..{n - 1}")
    if protocol == "folds":
        groups = speaker_folds(corpus, list(speakers))
        missing = sorted({s for g in groups for s in g} - set(distinct))
        if missing:
            raise ValueError(
                f"{corpus}: fold speakers {missing} have no utterances in the data: its documented folds need every "
                f"speaker, and this data holds {len(distinct)} of them (a subset of the corpus, or clips removed by "
                "--labels); use --protocol loso (leave one speaker out), which works on any subset"
            )
        test = groups[fold]
        unknown = all(v.startswith(UNKNOWN_SPEAKER_PREFIX) for v in distinct)
        # pseudo-speakers are single clips: then the whole next fold validates
        val = groups[(fold + 1) % n] if unknown else groups[(fold + 1) % n][:num_val_speakers]
    else:
        _, test_idx = list(LeaveOneGroupOut().split(distinct, groups=distinct))[fold]
        test = [distinct[i] for i in test_idx]
        start = distinct.index(test[0])
        val = [distinct[(start + j) % len(distinct)] for j in range(1, num_val_speakers + 1)]
    train = [s for s in distinct if s not in set(test) | set(val)]
    return SplitDefinition(corpus, protocol, fold, train, val, test, seed)


def speaker_dependent_split(corpus: str, speakers, ids, labels=None, seed: int | None = None) -> SplitDefinition:
    """The ``speaker_dependent`` protocol: utterances split 80 / 10 / 10 at random (scikit-learn
    ``train_test_split``, stratified by ``labels`` when given, ``random_state=seed or 0``).

    Warns (``UserWarning``) that the split is not speaker-independent.

    Raises:
        ValueError: no utterance ids, or ids and speakers of different lengths.
    """
    from sklearn.model_selection import train_test_split

    if ids is None or len(ids) != len(speakers):
        raise ValueError("protocol 'speaker_dependent' needs the utterance ids of the corpus, one per speaker entry")
    warnings.warn(
        f"corpus {corpus!r}, protocol 'speaker_dependent': every speaker is in train, validation and test; the "
        "scores are NOT speaker-independent and are optimistic",
        stacklevel=3,
    )
    ids = list(ids)
    state = seed or 0
    train, rest, _, rest_labels = train_test_split(
        ids, labels if labels is not None else ids, test_size=0.2, random_state=state, stratify=labels
    )
    val, test = train_test_split(
        rest, test_size=0.5, random_state=state, stratify=rest_labels if labels is not None else None
    )
    by_id = dict(zip(ids, speakers, strict=True))

    def spk(side):
        return sorted({by_id[i] for i in side})

    return SplitDefinition(
        corpus,
        SPEAKER_DEPENDENT,
        None,
        spk(train),
        spk(val),
        spk(test),
        seed,
        extra={"utterances": {"train": sorted(train), "validation": sorted(val), "test": sorted(test)}},
    )

"""A common emotion vocabulary across corpora, with the aliases corpora and checkpoints use.

Cross-corpus evaluation compares a model's labels with another corpus's labels through this vocabulary:
both sides are mapped to canonical names, only the labels both have are scored, and the model's
probabilities are renormalised over those (:func:`shared_label_plan`).

Canonical names and the corpora that use them (names as in each corpus's documentation):

==========  ===========================================================================================
canonical   aliases
==========  ===========================================================================================
neutral     neu, neutral, neutrality (RAVDESS 01, EmoV-DB, CREMA-D NEU, IEMOCAP neu, TESS neutral)
calm        calm (RAVDESS 02 only)
happy       hap, happy, happiness, joy, joyful (RAVDESS 03, CREMA-D HAP, IEMOCAP hap, ANAD 1)
sad         sad, sadness (RAVDESS 04, CREMA-D SAD, IEMOCAP sad, TESS sad)
angry       ang, anger, angry (RAVDESS 05, EmoV-DB, CREMA-D ANG, IEMOCAP ang, ANAD 3, TESS angry)
fearful     fea, fear, fearful, afraid, scared (RAVDESS 06, CREMA-D FEA, TESS fear)
disgust     dis, disgust, disgusted (RAVDESS 07, EmoV-DB disgusted, CREMA-D DIS, TESS disgust)
surprised   sur, surprise, surprised, ps, pleasant_surprise, pleasant_surprised (RAVDESS 08, ANAD 2,
            TESS ps / pleasant_surprise)
amused      amused, amusement (EmoV-DB)
sleepy      sleepy, sleepiness (EmoV-DB)
excited     exc, excited, excitement (IEMOCAP exc)
frustrated  fru, frustrated, frustration (IEMOCAP fru)
contempt    con, contempt (MSP-Podcast C)
==========  ===========================================================================================

Kept apart on purpose: ``amused`` is not ``happy`` and ``calm`` is not ``neutral`` (the corpora define them
as different categories); merging them is a modelling choice a user can make with ``extra_aliases``.
"""

from __future__ import annotations

from dataclasses import dataclass

CANONICAL = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
    "amused",
    "sleepy",
    "excited",
    "frustrated",
    "contempt",
)

ALIASES: dict[str, str] = {
    **{a: "neutral" for a in ("neu", "neutral", "neutrality")},
    "calm": "calm",
    **{a: "happy" for a in ("hap", "happy", "happiness", "joy", "joyful")},
    **{a: "sad" for a in ("sad", "sadness")},
    **{a: "angry" for a in ("ang", "anger", "angry")},
    **{a: "fearful" for a in ("fea", "fear", "fearful", "afraid", "scared")},
    **{a: "disgust" for a in ("dis", "disgust", "disgusted")},
    **{
        a: "surprised"
        for a in ("sur", "surprise", "surprised", "ps", "pleasant_surprise", "pleasant_surprised", "pleasant surprise")
    },
    **{a: "amused" for a in ("amused", "amusement")},
    **{a: "sleepy" for a in ("sleepy", "sleepiness")},
    **{a: "excited" for a in ("exc", "excited", "excitement")},
    **{a: "frustrated" for a in ("fru", "frustrated", "frustration")},
    **{a: "contempt" for a in ("con", "contempt")},
}


def canonical_label(label: str, extra_aliases: dict[str, str] | None = None) -> str | None:
    """The canonical name of ``label`` (case, surrounding spaces, ``-`` and ``_`` ignored), or ``None`` when
    the vocabulary does not know it. ``extra_aliases`` (alias -> canonical) take precedence."""
    key = str(label).strip().lower().replace("-", "_")
    for table in (extra_aliases or {}, ALIASES):
        if key in table:
            return table[key]
        if key.replace("_", " ") in table:
            return table[key.replace("_", " ")]
    return None


@dataclass
class SharedLabelPlan:
    """How a model's classes meet a corpus's classes.

    Attributes:
        shared: canonical labels both sides have, in the model's class order.
        model_index: for each shared label, the model's class index.
        corpus_index: for each shared label, the corpus's class index.
        dropped_model: model labels with no counterpart in the corpus (their probability is removed).
        dropped_corpus: corpus labels the model cannot predict (their clips are not scored).
    """

    shared: list[str]
    model_index: list[int]
    corpus_index: list[int]
    dropped_model: list[str]
    dropped_corpus: list[str]

    @property
    def identical(self) -> bool:
        """Both sides have exactly the same labels (in-corpus evaluation)."""
        return not self.dropped_model and not self.dropped_corpus


def shared_label_plan(
    model_labels: list[str],
    corpus_labels: list[str],
    extra_aliases: dict[str, str] | None = None,
    only: list[str] | None = None,
) -> SharedLabelPlan:
    """Match a model's labels (``config.id2label`` order) with a corpus's labels (``ClassLabel`` order).

    Labels the vocabulary does not know are matched by their exact lower-cased name. ``only`` keeps a subset of
    the shared labels (any spelling the vocabulary knows), e.g. ``angry happy neutral sad``, the four emotions of
    EmoBox's cross-corpus track (Ma et al. 2024; emo-box/EmoBox ``data/track2``); the others are dropped on both
    sides, as labels the other side lacks are.

    Raises:
        ValueError: no label is shared (the message lists both label sets), two labels of one side map to the
            same canonical label, or a label of ``only`` is not shared by both sides.
    """

    def canon(labels, side):
        out = {}
        for i, name in enumerate(labels):
            c = canonical_label(name, extra_aliases) or str(name).strip().lower()
            if c in out:
                raise ValueError(
                    f"{side} labels {labels[out[c]]!r} and {name!r} both mean {c!r}; "
                    "merge them in the data or pass different aliases"
                )
            out[c] = i
        return out

    m, c = canon(model_labels, "model"), canon(corpus_labels, "corpus")
    shared = [name for name in m if name in c]
    if only is not None:
        wanted = [canonical_label(name, extra_aliases) or str(name).strip().lower() for name in only]
        missing = [name for name, w in zip(only, wanted, strict=True) if w not in shared]
        if missing:
            raise ValueError(f"labels {missing} are not among the labels the model and the corpus share: {shared}")
        shared = [name for name in shared if name in wanted]
    if not shared:
        raise ValueError(
            f"the model's labels {list(model_labels)} and the corpus's labels {list(corpus_labels)} share no "
            "emotion (see ser_hf.labels.ALIASES)"
        )
    return SharedLabelPlan(
        shared=shared,
        model_index=[m[s] for s in shared],
        corpus_index=[c[s] for s in shared],
        dropped_model=[model_labels[i] for name, i in m.items() if name not in shared],
        dropped_corpus=[corpus_labels[i] for name, i in c.items() if name not in shared],
    )

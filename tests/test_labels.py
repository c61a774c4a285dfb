import pytest

from ser_hf.corpora.ravdess import EMOTIONS
from ser_hf.labels import ALIASES, CANONICAL, canonical_label, shared_label_plan

EMOVDB = ["amused", "angry", "disgusted", "neutral", "sleepy"]
ANAD = ["happy", "surprised", "angry"]


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("ang", "angry"),
        ("Anger", "angry"),
        (" angry ", "angry"),
        ("fear", "fearful"),
        ("ps", "surprised"),
        ("pleasant_surprise", "surprised"),
        ("Pleasant-Surprise", "surprised"),
        ("surprised", "surprised"),
        ("NEU", "neutral"),
        ("disgusted", "disgust"),
    ],
)
def test_aliases(alias, canonical):
    assert canonical_label(alias) == canonical


def test_vocabulary_is_closed_and_unknown_labels_are_none():
    assert set(ALIASES.values()) <= set(CANONICAL)
    assert all(canonical_label(c) == c for c in CANONICAL)
    assert canonical_label("bored") is None
    assert canonical_label("amused", {"amused": "happy"}) == "happy"


def test_ravdess_model_on_emovdb_keeps_neutral_angry_disgust():
    plan = shared_label_plan(EMOTIONS, EMOVDB)
    assert plan.shared == ["neutral", "angry", "disgust"]
    assert plan.model_index == [0, 4, 6] and plan.corpus_index == [3, 1, 2]
    assert plan.dropped_model == ["calm", "happy", "sad", "fearful", "surprised"]
    assert plan.dropped_corpus == ["amused", "sleepy"] and not plan.identical


def test_ravdess_model_on_anad_and_on_itself():
    plan = shared_label_plan(EMOTIONS, ANAD)
    assert plan.shared == ["happy", "angry", "surprised"] and plan.dropped_corpus == []
    assert shared_label_plan(EMOTIONS, EMOTIONS).identical


def test_only_keeps_a_subset_of_the_shared_labels_and_drops_the_rest_on_both_sides():
    emovo = ["neutral", "disgust", "fear", "joy", "anger", "surprise", "sadness"]
    plan = shared_label_plan(EMOTIONS, emovo, only=["Anger", "happy", "neutral", "sad"])
    assert plan.shared == ["neutral", "happy", "sad", "angry"]  # the model's order, whatever the order asked
    assert plan.model_index == [0, 2, 3, 4] and plan.corpus_index == [0, 3, 6, 4]
    assert plan.dropped_model == ["calm", "fearful", "disgust", "surprised"]
    assert plan.dropped_corpus == ["disgust", "fear", "surprise"]
    with pytest.raises(ValueError, match=r"labels \['calm'\] are not among the labels the model and the corpus"):
        shared_label_plan(EMOTIONS, emovo, only=["angry", "calm"])


def test_no_shared_label_and_ambiguous_labels_raise():
    with pytest.raises(ValueError, match="share no emotion"):
        shared_label_plan(["calm"], ["sleepy"])
    with pytest.raises(ValueError, match="corpus labels 'ang' and 'anger' both mean 'angry'"):
        shared_label_plan(EMOTIONS, ["ang", "anger"])

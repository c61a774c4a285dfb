import pytest

from ser_hf.folds import CORPUS_FOLDS, LeakageError, SplitDefinition, make_split, num_folds

SPEAKERS = [f"Actor_{a:02d}" for a in range(1, 25)]


@pytest.mark.parametrize("fold", range(6))
def test_ravdess_fold_test_side_is_exactly_its_four_actors(fold):
    split = make_split("ravdess", SPEAKERS * 3, "folds", fold)
    assert split.test_speakers == [f"Actor_{a:02d}" for a in range(4 * fold + 1, 4 * fold + 5)]
    assert len(split.val_speakers) == 2 and len(split.train_speakers) == 18
    assert not set(split.train_speakers) & set(split.val_speakers)
    assert not set(split.train_speakers) & set(split.test_speakers)
    assert not set(split.val_speakers) & set(split.test_speakers)
    assert sorted(split.train_speakers + split.val_speakers + split.test_speakers) == SPEAKERS
    # one male (odd) and one female (even) validation actor
    assert sorted(int(s[-2:]) % 2 for s in split.val_speakers) == [0, 1]


def test_every_actor_is_tested_exactly_once_across_folds():
    tested = [s for k in range(6) for s in make_split("ravdess", SPEAKERS, "folds", k).test_speakers]
    assert sorted(tested) == SPEAKERS
    assert len(CORPUS_FOLDS["ravdess"]) == num_folds("ravdess", SPEAKERS) == 6


def test_loso():
    assert num_folds("ravdess", SPEAKERS, "loso") == 24
    split = make_split("ravdess", SPEAKERS, "loso", 23)
    assert split.test_speakers == ["Actor_24"] and split.val_speakers == ["Actor_01", "Actor_02"]
    assert len(split.train_speakers) == 21


def test_explicit_speakers():
    split = make_split("ravdess", SPEAKERS, "speakers", None, test_speakers=["Actor_05"], val_speakers=["Actor_06"])
    assert split.fold is None and len(split.train_speakers) == 22
    with pytest.raises(ValueError, match="Actor_99"):
        make_split("ravdess", SPEAKERS, "speakers", None, test_speakers=["Actor_99"], val_speakers=["Actor_06"])
    with pytest.raises(ValueError, match="needs both"):
        make_split("ravdess", SPEAKERS, "speakers", None, test_speakers=["Actor_05"])


def test_speaker_on_two_sides_raises():
    with pytest.raises(LeakageError, match=r"\['Actor_02'\] appear in both train and test"):
        SplitDefinition("ravdess", "speakers", None, ["Actor_01", "Actor_02"], ["Actor_03"], ["Actor_02"])
    with pytest.raises(LeakageError, match="validation side has no speakers"):
        SplitDefinition("ravdess", "speakers", None, ["Actor_01"], [], ["Actor_02"])


def test_bad_fold_and_protocol():
    with pytest.raises(ValueError, match="--fold 6 is out of range .* expected 0..5"):
        make_split("ravdess", SPEAKERS, "folds", 6)
    with pytest.raises(ValueError, match="choose one of folds, loso, speakers"):
        make_split("ravdess", SPEAKERS, "random", 0)
    with pytest.raises(ValueError, match="fold speakers .*Actor_24"):
        make_split("ravdess", SPEAKERS[:-1], "folds", 0)


def test_split_round_trip(tmp_path):
    split = make_split("ravdess", SPEAKERS, "folds", 2, seed=7)
    split.save(tmp_path / "split.json")
    assert SplitDefinition.load(tmp_path / "split.json") == split
    assert split.side_of("Actor_09") == "test" and split.side_of("Actor_13") == "validation"
    assert split.side_of("Actor_01") == "train" and split.side_of("nobody") is None
    assert split.speakers("test") == ["Actor_09", "Actor_10", "Actor_11", "Actor_12"]
    with pytest.raises(ValueError, match="side 'dev' is not one of train, validation, test"):
        split.speakers("dev")

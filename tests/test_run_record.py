"""The run record's typed sections (ser_hf.run): every section survives a write and a read unchanged, keys a newer
writer added are kept, and the validation UA of older records is still found."""

import json

import pytest

from ser_hf.run import Preprocessing, RunRecord, Runtime


@pytest.mark.parametrize(
    "section",
    [
        Preprocessing(feature_extractor="WhisperFeatureExtractor", sampling_rate=16000, window_s=4.0),
        Preprocessing(trim_db=30.0, features={"mfcc": 40}, statistic="mean over frames"),
        Runtime(train_wall_time_s=12.5, device="cpu", threads=1, world_size=1, validation={"ua": 0.5}),
        Runtime(select_best_by="last", epochs_run=3.0, export_max_abs_logit_diff=1e-6, extra={"new_fact": 1}),
    ],
)
def test_every_section_round_trips_through_json(section):
    again = type(section).from_dict(json.loads(json.dumps(section.to_dict())))
    assert again == section
    assert None not in section.to_dict().values()  # unset facts are left out, not written as null


def test_keys_a_newer_writer_added_are_kept_and_written_back():
    data = {"sampling_rate": 16000, "loudness_lufs": -23.0}
    prep = Preprocessing.from_dict(data)
    assert prep.sampling_rate == 16000 and prep.extra == {"loudness_lufs": -23.0} and prep.to_dict() == data


def test_validation_ua_of_new_and_older_runtime_records():
    assert Runtime(validation={"ua": 0.61}, best_validation=0.2, select_best_by="loss").validation_ua == 0.61
    assert Runtime(best_validation=0.55, select_best_by="ua").validation_ua == 0.55  # before `validation` existed
    assert Runtime(best_validation=0.55).validation_ua == 0.55  # before select_best_by: UA chose
    assert Runtime(best_validation=1.3, select_best_by="loss").validation_ua is None


def test_a_record_saved_and_loaded_keeps_its_typed_sections(tmp_path):
    from ser_hf.folds import make_split

    split = make_split("ravdess", [f"Actor_{a:02d}" for a in range(1, 25)], "folds", 0)
    test = {"wa": 0.5, "ua": 0.4, "macro_f1": 0.3, "confusion_matrix": [[1]]}
    record = RunRecord(
        split=split,
        label_names=["neutral"],
        test=test,
        preprocessing=Preprocessing(sampling_rate=16000, trim_db=30.0),
        runtime=Runtime(train_wall_time_s=3.0, threads=2, validation={"ua": 0.7}),
    )
    record.save(tmp_path)
    loaded = RunRecord.load(tmp_path)
    assert loaded.preprocessing == record.preprocessing and loaded.runtime == record.runtime
    assert loaded.scores == {"wa": 0.5, "ua": 0.4, "macro_f1": 0.3} and loaded.validation_ua == 0.7
    # sections given as plain dicts (as older callers did) become typed
    assert RunRecord(split=split, label_names=["neutral"], test=test, runtime={"threads": 1}).runtime == Runtime(
        threads=1
    )


def test_an_evaluation_report_round_trips_and_older_report_folders_still_load(tmp_path):
    from ser_hf.reports.evaluation_report import EvaluationReport, is_report_dir

    report = EvaluationReport(
        wa=0.5, ua=0.4, macro_f1=0.3, label_names=["neutral", "angry"], confusion_matrix=[[1, 0], [1, 1]],
        corpus="urdu", scope="all", num_clips=3, inference={"rtf": 0.01}, extra={"added_later": True},
    )  # fmt: skip
    report.save(tmp_path / "new")
    assert (tmp_path / "new" / "evaluation.json").is_file() and report.output_dir == str(tmp_path / "new")
    loaded = EvaluationReport.load(tmp_path / "new")
    assert loaded == report and loaded.extra == {"added_later": True}
    with pytest.raises(FileExistsError, match="already holds an evaluation report"):
        report.save(tmp_path / "new")  # never replaced
    # a report folder written before evaluation.json: the same content as metrics.json
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.json").write_text(json.dumps(report.to_dict()))
    assert is_report_dir(tmp_path / "old") and EvaluationReport.load(tmp_path / "old").ua == 0.4
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "evaluation.json").write_text(json.dumps({"ua": 0.4}))
    with pytest.raises(ValueError, match=r"bad/evaluation.json: not an evaluation report .*'wa'"):
        EvaluationReport.load(tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match="no evaluation report"):
        EvaluationReport.load(tmp_path)


def test_a_key_the_file_held_is_written_back_even_when_null():
    from ser_hf.run import ModelDescription, TrainingSettings

    data = {"family": "pretrained", "model_type": "whisper", "base_model": None, "lora": {"rank": 8}}
    model = ModelDescription.from_dict(data)
    assert model.to_dict() == data and model.kind == "whisper" and model.base_model_name is None
    assert ModelDescription(family="pretrained").to_dict() == {"family": "pretrained"}  # unset: left out
    training = TrainingSettings.from_dict({"seed": 3, "ema_decay": None, "future_flag": 1})
    assert training.to_dict() == {"seed": 3, "ema_decay": None, "future_flag": 1}


def test_cross_validation_summarises_each_corpus_every_fold_scored_and_round_trips(tmp_path):
    from ser_hf.folds import make_split
    from ser_hf.grid import CrossValidation

    split = make_split("ravdess", [f"Actor_{a:02d}" for a in range(1, 25)], "folds", 0)

    def record(ua, per_corpus):
        test = {"wa": ua, "ua": ua, "macro_f1": ua, "per_corpus": per_corpus}
        return RunRecord(split=split, label_names=["neutral"], test=test)

    folds = {
        0: record(0.6, {"ravdess": {"ua": 0.8, "clips": 240}, "urdu": {"ua": 0.3, "clips": 80}}),
        1: record(0.7, {"ravdess": {"ua": 0.6, "clips": 240}, "urdu": {"ua": 0.5, "clips": 104}, "emovo": {"ua": 1}}),
    }
    cv = CrossValidation.of(folds)
    assert set(cv.per_corpus) == {"ravdess", "urdu"}  # emovo: scored by one fold only, not summarised
    assert cv.per_corpus["ravdess"]["mean"] == pytest.approx(0.7) and cv.per_corpus["urdu"]["per_fold"] == [0.3, 0.5]
    cv.save(tmp_path)
    assert CrossValidation.load(tmp_path) == cv
    # one corpus: the summary keeps its earlier form (no per_corpus key)
    single = CrossValidation.of(
        {0: RunRecord(split=split, label_names=["neutral"], test={"wa": 1, "ua": 1, "macro_f1": 1})}
    )
    assert single.per_corpus == {} and "per_corpus" not in single.to_dict()


def test_the_card_gives_each_corpus_its_cross_validation_ua_beside_this_checkpoints():
    from ser_hf.folds import make_split
    from ser_hf.reports.card import per_corpus_rows

    split = make_split("ravdess", [f"Actor_{a:02d}" for a in range(1, 25)], "folds", 0)
    test = {"wa": 1, "ua": 1, "macro_f1": 1, "per_corpus": {"ravdess": {"ua": 0.691, "clips": 240}}}
    record = RunRecord(split=split, label_names=["neutral"], test=test)
    cv = {"per_corpus": {"ravdess": {"mean": 0.736, "std": 0.085}}}
    assert per_corpus_rows(record, cv) == [("ravdess", "69.1", 240, "73.6 +- 8.5")]
    assert per_corpus_rows(record, None) == [("ravdess", "69.1", 240, None)]

"""Several corpora as one training set (ser_hf.multicorpus): the combined schema, the label set, the folds and
leave-one-corpus-out, corpus-balanced sampling, training end to end, and evaluation of a member corpus through
the leakage guard."""

import importlib.util
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ser_hf.corpora import corpus_list, data_dirs
from ser_hf.folds import LeakageError, make_split
from ser_hf.multicorpus import (
    corpus_class_weight_table,
    corpus_sample_weights,
    decode_corpora,
    load_corpora,
    make_multi_split,
    multi_num_folds,
)

from .conftest import TINY_MELCNN, quick_run_args
from .test_eyase_emovo_urdu import write_emovo, write_eyase, write_urdu


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    return {
        "eyase": write_eyase(root / "eyase"),
        "emovo": write_emovo(root / "emovo", sentences=("b1",)),
        "urdu": write_urdu(root / "urdu"),
    }


@pytest.fixture(scope="module")
def combined(trees, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return load_corpora(list(trees), dict(trees), cache_dir=str(cache), verify_counts=False)


def test_corpus_and_folder_lists_are_checked_with_the_valid_choices():
    assert corpus_list("ravdess,emovo") == ["ravdess", "emovo"] and corpus_list("urdu") == ["urdu"]
    with pytest.raises(ValueError, match=r"unknown corpus \['iemocap'\]; valid corpora: anad, ased, emovdb"):
        corpus_list("ravdess,iemocap")
    with pytest.raises(ValueError, match="each corpus once"):
        corpus_list("emovo,emovo")
    assert data_dirs(["ravdess", "emovo"], "emovo=/data/emovo") == {"ravdess": None, "emovo": "/data/emovo"}
    with pytest.raises(ValueError, match=r"'eyase=/x' is not NAME=DIR for one of the corpora"):
        data_dirs(["ravdess", "emovo"], "emovo=/e,eyase=/x")
    with pytest.raises(ValueError, match=r"needs NAME=DIR for \['emovo'\]"):
        data_dirs(["ravdess", "emovo"], None)


def test_combined_corpora_share_the_schema_with_prefixed_speakers_and_the_union_of_labels(combined):
    ds = combined.dataset
    # union in the canonical order: EMOVO brings fear, disgust and surprise to the four of EYASE and URDU
    assert combined.label_names == ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    assert ds.features["label"].names == combined.label_names
    assert combined.clips == {"eyase": 24, "emovo": 42, "urdu": 58} and len(ds) == 124
    assert all(v == {} for v in combined.dropped.values())
    assert dict(zip(ds["corpus"], ds["language"])) == {"eyase": "ar", "emovo": "it", "urdu": "ur"}
    assert all(s.startswith(f"{c}/") for c, s in zip(ds["corpus"], ds["speaker"]))
    assert len(set(ds["id"])) == len(ds)
    names = ds.features["label"].names
    # EMOVO's 'gio' is happy, read through the canonical vocabulary
    emovo_happy = [i for i, (c, y) in enumerate(zip(ds["corpus"], ds["label"])) if c == "emovo" and names[y] == "happy"]
    assert len(emovo_happy) == 6 and all(ds[i]["id"].startswith("emovo/gio-") for i in emovo_happy)


def test_labels_outside_the_chosen_set_are_dropped_and_counted_per_corpus(trees, tmp_path):
    labels = ["angry", "Happiness", "neutral", "sad"]
    multi = load_corpora(["eyase", "emovo"], dict(trees), labels, str(tmp_path), verify_counts=False)
    assert multi.label_names == ["angry", "happy", "neutral", "sad"]
    assert multi.clips == {"eyase": 24, "emovo": 24}
    assert multi.dropped == {"eyase": {}, "emovo": {"fearful": 6, "disgust": 6, "surprised": 6}}
    with pytest.raises(ValueError, match="'boredom' is not a known emotion label"):
        load_corpora(["eyase", "emovo"], dict(trees), ["angry", "boredom"], str(tmp_path), verify_counts=False)


def test_the_log_names_each_corpus_own_dropped_labels(trees, tmp_path, caplog):
    caplog.set_level("INFO", logger="ser_hf.multicorpus")
    load_corpora(["emovo", "eyase"], dict(trees), ["angry", "happy", "neutral"], str(tmp_path), verify_counts=False)
    lines = {r.getMessage().split(":")[0]: r.getMessage() for r in caplog.records if "clips kept" in r.getMessage()}
    assert set(lines) == {"emovo", "eyase"}
    assert lines["eyase"].endswith("{'sad': 6}") and "fearful" not in lines["eyase"]
    assert "'fearful': 6" in lines["emovo"] and "eyase" not in lines["emovo"]


def test_fold_k_takes_fold_k_of_every_corpus_and_loco_tests_one_whole_corpus(combined):
    ds, names = combined.dataset, combined.names
    assert multi_num_folds(ds, names) == 4  # URDU has 4 folds, EYASE and EMOVO 6
    by_corpus = {n: [s.split("/", 1)[1] for c, s in zip(ds["corpus"], ds["speaker"]) if c == n] for n in names}
    for k in range(4):
        split = make_multi_split(ds, names, "folds", k)
        assert split.corpus == "eyase+emovo+urdu" and split.corpora == names
        for name in names:
            own = make_split(name, by_corpus[name], "folds", k)
            view = split.for_corpus(name)
            assert (view.train_speakers, view.val_speakers, view.test_speakers) == (
                own.train_speakers,
                own.val_speakers,
                own.test_speakers,
            )
    with pytest.raises(ValueError, match=r"--fold 4 is out of range for eyase\+emovo\+urdu/folds; expected 0..3"):
        make_multi_split(ds, names, "folds", 4)

    loco = make_multi_split(ds, names, "loco", 0, test_corpus="emovo")
    assert loco.test_speakers == sorted(f"emovo/{s}" for s in set(by_corpus["emovo"]))
    eyase0 = make_split("eyase", by_corpus["eyase"], "folds", 0)
    assert {f"eyase/{s}" for s in eyase0.test_speakers} <= set(loco.train_speakers)  # fold 0's test side trains
    assert loco.for_corpus("emovo").train_speakers == [] and loco.for_corpus("emovo").protocol == "loco"
    assert loco.for_corpus("ravdess") is None
    with pytest.raises(ValueError, match="needs --test_corpus, one of"):
        make_multi_split(ds, names, "loco", 0)


def test_corpus_balanced_sampling_draws_corpora_in_proportion_to_n_to_the_alpha():
    corpora = ["a"] * 900 + ["b"] * 100
    for alpha, share_a in ((1.0, 0.9), (0.0, 0.5), (0.5, 30 / 40)):
        w = corpus_sample_weights(corpora, alpha)
        assert w.shape == (1000,) and w.sum() == pytest.approx(1.0)
        assert w[:900].sum() == pytest.approx(share_a)


def test_class_weights_by_corpus_balance_the_classes_within_each_corpus():
    corpora = ["a"] * 6 + ["b"] * 4
    labels = [0, 0, 0, 0, 1, 1] + [0, 2, 2, 2]
    table = corpus_class_weight_table(corpora, np.array(labels))
    assert table == {("a", 0): 6 / 8, ("a", 1): 6 / 4, ("b", 0): 4 / 2, ("b", 2): 4 / 6}
    w = np.array([table[c, y] for c, y in zip(corpora, labels)])
    assert w[:6].mean() == pytest.approx(1.0) and w[6:].mean() == pytest.approx(1.0)  # each corpus keeps its share
    for rows in ([0, 1, 2, 3], [4, 5]), ([6], [7, 8, 9]):  # within a corpus every class weighs the same in all
        assert w[rows[0]].sum() == pytest.approx(w[rows[1]].sum())
    with pytest.raises(ValueError, match="3 corpus names for 2 labels"):
        corpus_class_weight_table(["a", "a", "b"], [0, 1])


def test_class_weights_by_corpus_need_the_class_weighted_loss_and_several_corpora(tmp_path):
    from ser_hf.training import DataArguments

    dirs = f"eyase={tmp_path},urdu={tmp_path}"
    with pytest.raises(ValueError, match="--class_weights_by_corpus true goes with --class_weighted_loss true"):
        DataArguments(corpus="eyase,urdu", data_dir=dirs, class_weights_by_corpus=True)
    with pytest.raises(ValueError, match="several corpora"):
        DataArguments(data_dir=str(tmp_path), class_weighted_loss=True, class_weights_by_corpus=True)
    args = DataArguments(corpus="eyase,urdu", data_dir=dirs, class_weighted_loss=True, class_weights_by_corpus=True)
    assert args.class_weights_by_corpus


def test_decoding_keeps_each_corpus_channel_and_the_row_order(combined):
    decoded = decode_corpora(combined, 16000)
    assert decoded["id"] == combined.dataset["id"] and all(n == 4000 for n in decoded["num_samples"])


@pytest.mark.slow  # trains tiny models end to end
def test_training_on_several_corpora_records_the_sides_per_corpus_and_scores_each(trees, tmp_path):
    from ser_hf.evaluation import evaluate_checkpoint
    from ser_hf.run import RunRecord
    from ser_hf.training import main as train

    run = tmp_path / "loco"
    dirs = ",".join(f"{k}={v}" for k, v in trees.items())
    base = quick_run_args("eyase_melcnn.yaml", trees["eyase"], tmp_path / "cache", run, *TINY_MELCNN)
    base[base.index("--data_dir") + 1] = dirs
    base += ["--corpus", "eyase,emovo,urdu", "--verify_counts", "false", "--corpus_sampling_alpha", "0.5"]
    base += ["--class_weighted_loss", "true", "--class_weights_by_corpus", "true"]
    train([*base, "--protocol", "loco", "--test_corpus", "urdu"])
    record = RunRecord.load(run)
    assert record.split.corpus == "eyase+emovo+urdu" and record.split.extra["test_corpus"] == "urdu"
    assert record.split.extra["corpora"]["urdu"] == {"role": "test corpus"}
    assert record.split.extra["clips"] == {"eyase": 24, "emovo": 42, "urdu": 58}
    assert set(record.test["per_corpus"]) == {"urdu"} and record.test["per_corpus"]["urdu"]["clips"] == 58
    assert record.recipe["corpus_sampling_alpha"] == 0.5 and record.recipe["test_corpus"] == "urdu"
    assert record.recipe["class_weights_by_corpus"] and record.training.class_weights_by_corpus
    # the shipped checkpoint on each training corpus's validation speakers, and the mean over the corpora
    val = record.runtime.validation_per_corpus
    assert set(val) == {"eyase", "emovo", "mean"} and val["emovo"]["clips"] == 7
    assert val["mean"]["ua"] == pytest.approx((val["eyase"]["ua"] + val["emovo"]["ua"]) / 2)
    # benchmarks/validation_by_corpus.py recomputes it from the run directory and the corpora
    path = Path(__file__).parents[1] / "benchmarks" / "validation_by_corpus.py"
    spec = importlib.util.spec_from_file_location("validation_by_corpus", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    (row,) = bench.main([str(run), "--data_dir", dirs, "--cache_dir", str(tmp_path / "c3"), "--no_verify_counts"])
    assert row["per_corpus"] == {c: val[c]["ua"] for c in ("eyase", "emovo")} and row["mean_ua"] == val["mean"]["ua"]
    # the left-out corpus, evaluated on its own: every clip, nothing seen in training
    report = evaluate_checkpoint(
        str(run), "urdu", str(trees["urdu"]), cache_dir=str(tmp_path / "c2"), verify_counts=False
    )
    assert report.scope == "test" and report.num_clips == 58 and report.leakage["checked"]
    assert report.shared_labels == ["neutral", "happy", "sad", "angry"] and report.clips_dropped_for_labels == 0
    # a member corpus it trained on: its training speakers are refused by the leakage guard
    with pytest.raises(LeakageError, match="trained / validated on speakers"):
        evaluate_checkpoint(
            str(run), "eyase", str(trees["eyase"]), split="all", cache_dir=str(tmp_path / "c3"), verify_counts=False
        )

    folds_run = tmp_path / "folds"
    base[base.index("--output_dir") + 1] = str(folds_run)
    train([*base, "--fold", "1"])
    record = RunRecord.load(folds_run)
    per_corpus = record.test["per_corpus"]
    assert set(per_corpus) == {"eyase", "emovo", "urdu"}
    assert sum(v["clips"] for v in per_corpus.values()) == sum(record.test["support"])
    # one language each here (Arabic, Italian, Urdu): the language rows are the corpus rows under their codes
    by_language = {"ar": "eyase", "it": "emovo", "ur": "urdu"}
    assert record.test["per_language"] == {lang: per_corpus[c] for lang, c in by_language.items()}
    split = json.loads((folds_run / "split.json").read_text())
    assert Counter(s.split("/")[0] for s in split["test_speakers"]) == Counter({"eyase": 1, "emovo": 1, "urdu": 4})
    assert np.isfinite(record.ua)

    # compare scores a multi-corpus run on one member's test side (the speakers of that corpus's fold 1) ...
    from ser_hf.reports.compare import compare_systems

    report = compare_systems(
        {"multi": str(folds_run)},
        "eyase",
        str(trees["eyase"]),
        str(tmp_path / "cmp"),
        num_bootstrap=50,
        cache_dir=str(tmp_path / "c4"),
        verify_counts=False,
    )
    scored = json.loads((folds_run / "eval_eyase_test" / "evaluation.json").read_text())
    assert scored["speakers"] == ["Male01"] and scored["num_clips"] == 4 and report.systems
    # ... and refuses a leave-one-corpus-out run on a corpus it trained on whole
    with pytest.raises(ValueError, match="was trained on 'eyase\\+emovo\\+urdu', all of it, so it has no test side"):
        compare_systems({"loco": str(run)}, "eyase", str(trees["eyase"]), str(tmp_path / "cmp2"), verify_counts=False)


@pytest.mark.slow  # trains tiny models end to end
def test_cross_corpus_report_scores_a_left_out_corpus_against_a_single_corpus_reference(trees, tmp_path):
    from ser_hf.reports.crosscorpus import cross_corpus
    from ser_hf.training import main as train

    runs = {"eyase_only": tmp_path / "eyase_only", "loco_urdu": tmp_path / "loco", "loco_3": tmp_path / "loco3"}
    single = quick_run_args("eyase_melcnn.yaml", trees["eyase"], tmp_path / "cache", runs["eyase_only"], *TINY_MELCNN)
    train([*single, "--verify_counts", "false"])
    for name, labels in (("loco_urdu", []), ("loco_3", ["--labels", "angry", "happy", "sad"])):
        multi = quick_run_args("eyase_melcnn.yaml", "", tmp_path / "cache", runs[name], *TINY_MELCNN)
        multi[multi.index("--data_dir") + 1] = ",".join(f"{k}={v}" for k, v in trees.items())
        train(
            [*multi, "--corpus", "eyase,emovo,urdu", "--verify_counts", "false", "--protocol", "loco"]
            + ["--test_corpus", "urdu", *labels]
        )
    corpora = {"urdu": str(trees["urdu"]), "eyase": str(trees["eyase"])}
    report = cross_corpus(
        {k: str(v) for k, v in runs.items()},
        corpora,
        str(tmp_path / "report"),
        reference="eyase_only",
        num_bootstrap=200,
        cache_dir=str(tmp_path / "c"),
        verify_counts=False,
    )
    single_row, loco_row, loco3_row = report.to_dict()["systems"]  # the JSON the report wrote
    assert loco_row["scores"]["eyase"] is None  # trained on all of EYASE: nothing unseen to score
    urdu = loco_row["scores"]["urdu"]
    assert urdu["scope"] == "test" and urdu["num_clips"] == 58 == single_row["scores"]["urdu"]["num_clips"]
    diff = urdu["vs_reference"]
    assert diff["ua_difference"] == pytest.approx(urdu["ua"] - single_row["scores"]["urdu"]["ua"])
    assert diff["ci95_low"] <= diff["ua_difference"] <= diff["ci95_high"] and diff["num_units"] == 29
    assert "labels" not in diff  # the same four labels: no rescoring
    # a model of three labels: the reference is scored again on those three, so both score the same clips
    urdu3 = loco3_row["scores"]["urdu"]
    assert urdu3["shared_labels"] == ["angry", "happy", "sad"] and urdu3["num_clips"] < urdu["num_clips"]
    diff3 = urdu3["vs_reference"]
    again = json.loads((runs["eyase_only"] / "eval_urdu_all_happy-sad-angry" / "evaluation.json").read_text())
    assert again["shared_labels"] == ["angry", "happy", "sad"] and again["num_clips"] == urdu3["num_clips"]
    assert diff3["labels"] == urdu3["shared_labels"] and diff3["reference_ua"] == pytest.approx(again["ua"])
    assert diff3["ua"] == urdu3["ua"] and diff3["ua_difference"] == pytest.approx(urdu3["ua"] - again["ua"])
    from ser_hf.reports.multicorpus import loco_rows

    row3 = {r.system: r for r in loco_rows(report)}["loco_3"]  # the summary reads both on the common labels
    assert row3.labels == diff3["labels"] and row3.clips == again["num_clips"] == diff3["num_clips"]
    assert row3.reference_ua == pytest.approx(again["ua"]) and row3.ua == urdu3["ua"]
    md = (tmp_path / "report" / "report.md").read_text()
    assert "trained on all of it" in md and "UA minus that of **eyase_only** on the same clips" in md
    assert "| loco_urdu (eyase + emovo + urdu, urdu left out) | **" in md and " on 3 labels, CI [" in md


@pytest.mark.slow  # trains tiny models end to end
def test_model_card_of_a_multi_corpus_run_lists_every_corpus_and_the_most_restrictive_terms(trees, tmp_path):
    from ser_hf.corpora import emovo, eyase, urdu
    from ser_hf.hub import build_model_card
    from ser_hf.training import main as train

    run = tmp_path / "run"
    args = quick_run_args("eyase_melcnn.yaml", "", tmp_path / "cache", run, *TINY_MELCNN)
    args[args.index("--data_dir") + 1] = ",".join(f"{k}={v}" for k, v in trees.items())
    train([*args, "--corpus", "eyase,emovo,urdu", "--verify_counts", "false", "--fold", "2"])
    card = str(build_model_card(run, "user/multi"))
    assert "license: other" in card and "license_name: research-non-commercial-most-restrictive-of-corpora" in card
    assert all(f"- {lang}\n" in card for lang in ("ar", "it", "ur"))
    assert all(f"- {d}\n" in card for d in ("eyase", "emovo", "urdu"))
    for info in (eyase.INFO, emovo.INFO, urdu.INFO):
        assert info.citation.split("{")[1].split(",")[0] in card  # every corpus cited
    assert "research and non-commercial use only" in card
    assert "This checkpoint's test side by corpus: emovo: UA" in card and "urdu: UA" in card
    # the limitations name each corpus's kind of speech, numbered like the training data
    note = next(line for line in card.splitlines() if line.startswith("- **Training speech.**"))
    assert "is a mix of 3 corpora: (1) EYASE: semi-natural" in note and "(3) URDU: natural speech" in note


def test_report_spec_names_what_is_wrong(tmp_path):
    from ser_hf.reports.multicorpus import MulticorpusReportSpec

    dirs = {"eyase": "E", "urdu": "U"}
    with pytest.raises(ValueError, match="data_dir: unknown corpus 'klingon'"):
        MulticorpusReportSpec(data_dir={"klingon": "K"}, loco={"x": "r"}, loco_reference={"y": "r"})
    with pytest.raises(ValueError, match="in_corpus 'mel': corpus 'emovo' has no data_dir entry"):
        MulticorpusReportSpec(data_dir=dirs, in_corpus=[{"name": "mel", "multi": "m", "single": {"emovo": "s"}}])
    with pytest.raises(ValueError, match="loco needs exactly one loco_reference"):
        MulticorpusReportSpec(data_dir=dirs, loco={"loco_urdu": "r"})
    with pytest.raises(ValueError, match="nothing to report"):
        MulticorpusReportSpec(data_dir=dirs)
    spec = tmp_path / "spec.yaml"
    spec.write_text("data_dir: {urdu: U}\nloco: {a: r}\nloco_refrence: {b: r}\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['loco_refrence'\]; expected data_dir"):
        MulticorpusReportSpec.from_yaml(spec)


@pytest.mark.slow  # trains tiny models end to end
def test_multicorpus_report_compares_on_the_same_test_speakers_and_against_the_reference(trees, tmp_path, capsys):
    from ser_hf.cli import main as cli
    from ser_hf.training import main as train

    single = tmp_path / "eyase_only"
    multi = tmp_path / "multi"
    dirs = ",".join(f"{k}={v}" for k, v in trees.items())
    for k in (0, 1):
        args = quick_run_args(
            "eyase_melcnn.yaml", trees["eyase"], tmp_path / "cache", single / f"fold_{k}", *TINY_MELCNN
        )
        train([*args, "--verify_counts", "false", "--fold", str(k)])
    args = quick_run_args("eyase_melcnn.yaml", dirs, tmp_path / "cache", multi / "fold_1", *TINY_MELCNN)
    train([*args, "--corpus", "eyase,emovo,urdu", "--verify_counts", "false", "--fold", "1"])
    args[args.index("--output_dir") + 1] = str(tmp_path / "loco_urdu")
    train([*args, "--corpus", "eyase,emovo,urdu", "--verify_counts", "false", "--protocol", "loco"] + [
        "--test_corpus", "urdu"])  # fmt: skip
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        json.dumps(  # YAML is a superset of JSON
            {
                "data_dir": {k: str(v) for k, v in trees.items()},
                "in_corpus": [{"name": "mel_cnn", "multi": str(multi), "single": {"eyase": str(single)}}],
                "loco_reference": {"eyase_only": str(single)},
                "loco": {"loco_urdu": str(tmp_path / "loco_urdu")},
                "commands": ["python scripts/finetune.py ..."],
                "notes": ["Tiny runs on synthetic trees."],
            }
        )
    )
    out = tmp_path / "results"
    argv = ["multicorpus-report", str(spec), "--output_dir", str(out), "--num_bootstrap", "50"]
    assert cli([*argv, "--cache_dir", str(tmp_path / "c"), "--verify_counts", "false"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    (row,) = summary["in_corpus"]
    assert row["folds"] == [1]  # the only fold both have: the same EYASE test speaker
    fold_1 = json.loads((single / "fold_1" / "eval_eyase_test" / "evaluation.json").read_text())
    multi_1 = json.loads((multi / "fold_1" / "eval_eyase_test" / "evaluation.json").read_text())
    assert fold_1["speakers"] == multi_1["speakers"] == ["Male01"]
    assert row["single_ua"] == pytest.approx(fold_1["ua"]) and row["multi_ua"] == pytest.approx(multi_1["ua"])
    assert row["mean_difference"] == pytest.approx(multi_1["ua"] - fold_1["ua"])
    (loco,) = summary["loco"]
    assert loco["corpus"] == "urdu" and loco["clips"] == 58 and loco["system"] == "loco_urdu"
    assert loco["bootstrap"]["ua_difference"] == pytest.approx(loco["ua"] - loco["reference_ua"])
    readme = (out / "README.md").read_text()
    assert f"| [mel_cnn](in_corpus/mel_cnn/eyase/report.md) | eyase | 1 | {row['single_ua']:.3f} |" in readme
    assert f"| loco_urdu | urdu (58) | {loco['reference_ua']:.3f} | {loco['ua']:.3f} |" in readme
    assert "- Tiny runs on synthetic trees.\n\n## The runs\n\n```bash\npython scripts/finetune.py ...\n```" in readme
    assert (out / "in_corpus" / "mel_cnn" / "eyase" / "report.md").is_file() and (out / "loco" / "report.md").is_file()
    # a second call refuses to replace the reports unless told to, and then reproduces them
    assert cli([*argv, "--cache_dir", str(tmp_path / "c"), "--verify_counts", "false"]) == 2
    assert "already holds report.json, report.md, ua_per_fold.png" in capsys.readouterr().err
    assert cli([*argv, "--overwrite_output_dir", "--verify_counts", "false", "--cache_dir", str(tmp_path / "c")]) == 0
    assert json.loads((out / "summary.json").read_text())["in_corpus"] == summary["in_corpus"]
    # the card of the multi-corpus checkpoint carries the leave-one-corpus-out result of its recipe
    from ser_hf.hub import build_model_card
    from ser_hf.reports.multicorpus import read_loco_rows

    card = str(build_model_card(multi / "fold_1", "user/multi", loco=read_loco_rows(out / "summary.json")))
    ua, ref = 100 * loco["ua"], 100 * loco["reference_ua"]
    assert (
        "Leave one corpus out (the same recipe" in card
        and f"urdu UA {ua:.1f} % (58 clips; {ref:.1f} % for eyase_only)" in card
    )


def test_readme_names_the_labels_a_reference_was_scored_again_on():
    from ser_hf.reports.multicorpus import readme_lines
    from ser_hf.reports.rows import Bootstrap, LocoRow, MulticorpusSummary

    boot = Bootstrap(
        ua_difference=0.1, ci95_low=0.05, ci95_high=0.15, num_bootstrap=50, resample="speakers", num_units=6,
        num_clips=336, seeds=[1, 1], share_above_zero=1.0,
    )  # fmt: skip

    def summary(labels):
        row = LocoRow(
            system="loco4", run_dir="r", model_type="whisper", base_model="tiny", corpus="emovo", clips=336,
            reference_ua=0.4, ua=0.5, labels=labels, bootstrap=boot,
        )  # fmt: skip
        return MulticorpusSummary(command="c", loco=[row], loco_reference="ref")

    plain = "\n".join(readme_lines(summary(None)))
    lines = readme_lines(summary(["angry", "happy", "neutral", "sad"]))
    assert "| loco4 | emovo (336) | 0.400 | 0.500 | +0.100 [+0.050, +0.150] |" in lines and "scored again" not in plain
    assert (
        "- loco4: it and ref share different labels with emovo; both scored on the 4 they have in common (angry, "
        "happy, neutral, sad), so that both score the same clips." in lines
    )


def test_loco_runs_that_differ_only_by_seed_get_a_mean_and_std_over_seeds():
    from ser_hf.reports.multicorpus import loco_seed_lines, loco_seed_rows
    from ser_hf.reports.rows import LocoRow

    def row(system, seed, corpus="urdu", ua=0.5, run_labels=("angry", "sad"), labels=None):
        return LocoRow(
            system=system, run_dir="r", seed=seed, corpus=corpus, clips=400, reference_ua=0.4, ua=ua,
            model_type="whisper", base_model="tiny", run_labels=list(run_labels), labels=labels, bootstrap=None,
        )  # fmt: skip

    rows = [
        row("a42", 42, ua=0.52),
        row("a43", 43, ua=0.46),  # one group of two seeds
        row("e42", 42, corpus="eyase"),  # one seed only: no row
        row("four42", 42, ua=0.6, run_labels=("sad",)),  # another label set: another group, of one seed
    ]
    (mean,) = loco_seed_rows(rows)
    assert mean.systems == ["a42", "a43"] and mean.seeds == [42, 43] and mean.corpus == "urdu"
    assert mean.ua.mean == pytest.approx(0.49) and mean.ua.std == pytest.approx(np.std([0.52, 0.46], ddof=1))
    assert mean.difference.mean == pytest.approx(0.09) and mean.difference.std == pytest.approx(mean.ua.std)
    lines = loco_seed_lines([mean])
    assert "| urdu (400) | a42, a43 | 42, 43 | 0.400 | 0.490 +- 0.042 | +0.090 +- 0.042 |" in lines
    below = loco_seed_rows([row("b42", 42, ua=0.36), row("b43", 43, ua=0.37)])
    assert "| urdu (400) | b42, b43 | 42, 43 | 0.400 | 0.365 +- 0.007 | -0.035 +- 0.007 |" in loco_seed_lines(below)
    assert loco_seed_lines([]) == []
    with pytest.raises(ValueError, match=r"a42 \(seed 42\), again \(seed 42\) differ by nothing"):
        loco_seed_rows([row("a42", 42), row("again", 42)])


REPORT_SPECS = Path(__file__).parents[1] / "configs" / "reports"  # the committed ser-hf multicorpus-report specs


def test_the_committed_report_spec_parses():
    from ser_hf.reports.multicorpus import MulticorpusReportSpec

    spec = MulticorpusReportSpec.from_yaml(REPORT_SPECS / "multicorpus.yaml")
    families = {f.name: set(f.single) for f in spec.in_corpus}
    assert families == {
        "whisper_tiny_lora": set(spec.data_dir),
        "whisper_base_lora": set(spec.data_dir) - {"ravdess"},  # the RAVDESS-only base runs were not kept
        "mel_cnn": set(spec.data_dir),
    }
    assert len(spec.loco_reference) == 1


def test_the_committed_mel_cnn_spec_parses_and_its_families_differ_by_their_flags_only():
    from ser_hf.reports.multicorpus import MulticorpusReportSpec

    spec = MulticorpusReportSpec.from_yaml(REPORT_SPECS / "multicorpus_melcnn.yaml")
    natural = spec.in_corpus[0]
    assert [f.name for f in spec.in_corpus] == ["mel_cnn", "mel_cnn_balanced", "mel_cnn_corpus_class_weights"]
    assert not spec.loco and set(natural.single) == set(spec.data_dir) == {"ravdess", "emovo", "eyase", "urdu"}
    flags = {  # the config now takes weights within each corpus: the union-weight families say false
        "mel_cnn": "--class_weights_by_corpus false",
        "mel_cnn_balanced": "--class_weights_by_corpus false --corpus_sampling_alpha 0",
        "mel_cnn_corpus_class_weights": "--class_weights_by_corpus true",
    }
    templates = set()
    for family in spec.in_corpus:  # the same single-corpus twins; the same command but for the family's flags
        assert family.single == natural.single
        (cmd,) = [c for c in spec.commands if f"--output_dir {family.multi}/" in c]
        assert f"--data_dir $ALL {flags[family.name]} --fold" in cmd
        templates.add(cmd.replace(f" {flags[family.name]}", "").replace(family.multi, "RUNS"))
    assert len(templates) == 1


def test_the_committed_four_label_spec_adds_only_the_labels_to_the_leave_one_corpus_out_commands():
    from ser_hf.reports.multicorpus import MulticorpusReportSpec

    base = MulticorpusReportSpec.from_yaml(REPORT_SPECS / "multicorpus.yaml")
    four = MulticorpusReportSpec.from_yaml(REPORT_SPECS / "loco_four_labels.yaml")
    assert four.loco_reference == base.loco_reference and four.data_dir == base.data_dir and not four.in_corpus
    tiny = {k: v for k, v in base.loco.items() if k.endswith("_whisper_tiny_lora")}
    rerun = {k: v for k, v in four.loco.items() if not k.endswith("_4labels")}
    assert rerun.items() <= tiny.items() and len(rerun) == 2  # all labels: the same folders, EMOVO's not rerun
    assert {k.replace("_4labels", "") for k in four.loco if k not in rerun} == set(tiny)
    (old,) = [c for c in base.commands if "runs/multi_whisper_tiny_loco_$c" in c]
    (new,) = [c for c in four.commands if "runs/loco4/" in c]
    (again,) = [c for c in four.commands if "runs/multi_whisper_tiny_loco_$c" in c]
    assert again == old.replace("for c in urdu emovo eyase", "for c in eyase urdu")
    assert new == old.replace("for c in urdu emovo eyase", "for c in eyase urdu emovo").replace(
        " --output_dir runs/multi_whisper_tiny_loco_$c",
        " --labels angry happy neutral sad --output_dir runs/loco4/multi_whisper_tiny_4labels_loco_$c",
    )


def test_the_committed_loco_seed_spec_repeats_the_tiny_commands_with_seed_43():
    from ser_hf.reports.multicorpus import MulticorpusReportSpec

    base = MulticorpusReportSpec.from_yaml(REPORT_SPECS / "multicorpus.yaml")
    seeds = MulticorpusReportSpec.from_yaml(REPORT_SPECS / "loco_seeds.yaml")
    assert seeds.loco_reference == base.loco_reference and seeds.data_dir == base.data_dir and not seeds.in_corpus
    tiny = {k: v for k, v in base.loco.items() if k.endswith("_whisper_tiny_lora")}
    assert {k: v for k, v in seeds.loco.items() if k.endswith("_seed42")} == {f"{k}_seed42": v for k, v in tiny.items()}
    assert {k: v for k, v in seeds.loco.items() if k.endswith("_seed43")} == {
        f"{k}_seed43": v.replace("runs/", "runs/seed43/") for k, v in tiny.items()
    }
    (old,) = [c for c in base.commands if "runs/multi_whisper_tiny_loco_$c" in c]
    (again,) = [c for c in seeds.commands if "runs/multi_whisper_tiny_loco_$c" in c]
    (new,) = [c for c in seeds.commands if "runs/seed43/" in c]
    assert again == old.replace("for c in urdu emovo eyase", "for c in eyase urdu emovo")
    assert new == old.replace("for c in urdu emovo eyase", "for c in urdu eyase emovo").replace(
        " --output_dir runs/", " --seed 43 --output_dir runs/seed43/"
    )


def test_the_committed_seed_spec_repeats_the_mel_cnn_commands_over_three_seeds():
    from ser_hf.reports.multicorpus import MulticorpusReportSpec

    base = MulticorpusReportSpec.from_yaml(REPORT_SPECS / "multicorpus_melcnn.yaml")
    seeds = MulticorpusReportSpec.from_yaml(REPORT_SPECS / "multicorpus_melcnn_seeds.yaml")
    assert [f.name for f in seeds.in_corpus] == ["mel_cnn", "mel_cnn_corpus_class_weights", "mel_cnn_shuffled_batches"]
    assert set(seeds.data_dir) == set(base.data_dir) and not seeds.loco

    def seeded(command: str, old_dir: str, new_dir: str) -> str:  # one seed-42 loop, run over the three seeds
        command = command.replace("--fold $k", "--fold $k --seed $s").replace(
            f"{old_dir}/fold_$k", f"{new_dir}/seed_$s/fold_$k"
        )
        return "for s in 42 43 44; do " + command + "; done"

    pairs = [(f.multi, g.multi) for f in base.in_corpus for g in seeds.in_corpus if f.name == g.name]
    pairs.append(("runs/${c}_melcnn", "runs/seeds_melcnn/${c}_melcnn"))
    twins = seeds.in_corpus[0].single
    assert all(g.single == twins for g in seeds.in_corpus)
    assert twins == {c: f"runs/seeds_melcnn/{c}_melcnn" for c in base.data_dir}
    for old_dir, new_dir in pairs:
        (old,) = [c for c in base.commands if f"--output_dir {old_dir}/fold_$k" in c]
        (new,) = [c for c in seeds.commands if f"--output_dir {new_dir}/seed_$s/fold_$k" in c]
        assert new == seeded(old, old_dir, new_dir), old
    # shuffled batches: the within-corpus-weights loop with one flag more, nothing else
    by_dir = {f.multi: c for f in seeds.in_corpus for c in seeds.commands if f"--output_dir {f.multi}/" in c}
    weighted, shuffled = (by_dir[f"runs/seeds_melcnn/{d}"] for d in ("multi_melcnn_cw", "multi_melcnn_cw_random"))
    assert shuffled == weighted.replace(" --fold", " --train_sampling_strategy random --fold").replace(
        "multi_melcnn_cw/", "multi_melcnn_cw_random/"
    )


def test_the_multi_corpus_mel_cnn_config_weighs_classes_within_each_corpus_and_old_runs_say_false(tmp_path):
    from ser_hf.reports.multicorpus import MulticorpusReportSpec
    from ser_hf.training.arguments import parse_args

    config = str(REPORT_SPECS.parent / "multicorpus_melcnn.yaml")
    dirs = ",".join(f"{c}={tmp_path / c}" for c in ("ravdess", "emovo", "eyase", "urdu"))
    _, data_args, _ = parse_args([config, "--data_dir", dirs])
    assert data_args.class_weighted_loss and data_args.class_weights_by_corpus
    _, data_args, _ = parse_args([config, "--data_dir", dirs, "--class_weights_by_corpus", "false"])
    assert not data_args.class_weights_by_corpus
    # the main report's mel-CNN runs were trained with the weights over the union: its commands must say so
    spec = MulticorpusReportSpec.from_yaml(REPORT_SPECS / "multicorpus.yaml")
    mel = [c for c in spec.commands if "configs/multicorpus_melcnn.yaml" in c]
    assert len(mel) == 3 and all("--class_weights_by_corpus false" in c for c in mel)


def test_scores_per_group_pool_the_corpora_of_one_language():
    from ser_hf.metrics import per_group_scores

    # labels 0-2; RAVDESS and EmoV-DB are both English: one "en" row over their 5 clips, UA over its classes
    pred = np.array([0, 1, 1, 2, 0, 2])
    ref = np.array([0, 1, 2, 2, 0, 1])
    corpora = ["ravdess", "ravdess", "emovdb", "emovdb", "emovdb", "eyase"]
    languages = ["en", "en", "en", "en", "en", "ar"]
    by_corpus = per_group_scores(pred, ref, corpora, 3)
    by_language = per_group_scores(pred, ref, languages, 3)
    assert {k: v["clips"] for k, v in by_corpus.items()} == {"emovdb": 3, "eyase": 1, "ravdess": 2}
    assert {k: v["clips"] for k, v in by_language.items()} == {"ar": 1, "en": 5}
    assert by_corpus["ravdess"]["ua"] == 1.0 and by_corpus["emovdb"]["wa"] == pytest.approx(2 / 3)
    # en: class 0 2/2, class 1 1/1, class 2 1/2 -> UA (1 + 1 + 0.5) / 3; WA 4/5
    assert by_language["en"]["ua"] == pytest.approx(2.5 / 3) and by_language["en"]["wa"] == pytest.approx(0.8)
    assert by_language["ar"]["wa"] == 0.0  # class 1 said as 2


@pytest.mark.slow  # trains tiny models end to end
def test_cached_layers_train_a_loco_split_with_corpus_weights_and_share_the_cache_over_seeds(
    trees, tmp_path, tiny_backbones
):
    from ser_hf.training import main as train

    run = tmp_path / "cached_loco"
    dirs = ",".join(f"{k}={v}" for k, v in trees.items())
    base = quick_run_args("multicorpus_wav2vec2_lora.yaml", trees["eyase"], tmp_path / "cache", run)
    base[base.index("--data_dir") + 1] = dirs
    base += ["--corpus", "eyase,emovo,urdu", "--verify_counts", "false", "--corpus_sampling_alpha", "0.5"]
    base += ["--class_weighted_loss", "true", "--class_weights_by_corpus", "true", "--whisper_window_s", "1"]
    base += ["--model_name_or_path", str(tiny_backbones["whisper"]), "--adapt_top_layers", "1"]
    base += ["--feature_cache_dir", str(tmp_path / "hidden"), "--protocol", "loco", "--test_corpus", "urdu"]
    summary = train([*base, "--seeds", "42", "43"])
    first, second = (json.loads((run / f"seed_{s}" / "metrics.json").read_text()) for s in (42, 43))
    built, again = first["runtime"]["feature_cache"], second["runtime"]["feature_cache"]
    assert built["rows_built"] > 0  # the eyase and emovo clips (rows are keyed by content: equal clips share one)
    assert again["rows_built"] == 0  # the second seed reads the first one's cache
    assert again["rows_reused"] == built["rows_built"] + built["rows_reused"]
    assert set(first["per_corpus"]) == {"urdu"}
    assert summary and second["recipe"]["adapt_top_layers"] == 1

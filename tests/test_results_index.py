"""ser-hf results-index: the index of docs/results and the README's generated tables (ser_hf.reports.index)."""

import json

import pytest

from ser_hf.reports.index import HEADLINE_BEGIN, HEADLINE_END, headline_lines, index_markdown, write_results_index


def compare_report(folder, corpus, best="b", ua=0.61):
    """A ``report.json`` of two systems over folds 0-1 (the shape ``ser-hf compare`` writes)."""
    from ser_hf.reports.rows import BestSystem, CompareReport, Stat, SystemSummary

    def system(name):
        stat = Stat(mean=ua, std=0.02, per_fold={0: ua - 0.02, 1: ua + 0.02})
        return SystemSummary(
            name=name, folds=[0, 1], num_folds=2, seeds_per_fold={0: [42], 1: [42]}, ua=stat, wa=stat, macro_f1=stat,
            per_class_recall={}, validation_ua=None, parameters=None, model={}, preprocessing={},
            train_wall_time_s_per_run=None, train_wall_time_s=1.0, train_device=["cpu"], train_threads=[1],
            inference_rtf=0.01, inference_device=["cpu (1 threads)"], run_dirs=[],
        )  # fmt: skip

    best_system = BestSystem(
        name=best, validation_ua=0.5, folds=[0, 1], by_system={"a": 0.4, best: 0.5}, run_dir="r", run_validation_ua=0.5,
        run_fold=0,
    )  # fmt: skip
    report = CompareReport(
        corpus=corpus, command=f"ser-hf compare --corpus {corpus}", reference="a", systems=[system("a"), system(best)],
        paired={}, best_system=best_system, published=[],
        machine={"cpu": "Some CPU", "threads": 1, "gpu": None, "versions": {}},
    )  # fmt: skip
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps(report.to_dict()))


def test_the_headline_reads_each_corpus_report_and_names_the_caveats(tmp_path):
    compare_report(tmp_path / "ased", "ased", ua=0.9)
    compare_report(tmp_path / "emovo", "emovo")
    compare_report(tmp_path / "mine", "folder")  # not a registry corpus folder: not a headline row
    lines = headline_lines(tmp_path, link_prefix="")
    rows = [line for line in lines if line.startswith("| [")]
    assert rows == [
        "| [EMOVO](emovo/report.md) | it | 2 | b | 0.610 +- 0.020 (2) | - |",  # registry order: emovo before ased
        "| [ASED](ased/report.md) | am | 2 | b | 0.900 +- 0.020 (2) | - |",
    ]
    assert any(line.startswith("\nASED: 25 of its 27 sentences") for line in lines)
    index = index_markdown(tmp_path)
    row = "| [emovo/](emovo/) | EMOVO: a, b over its speaker-independent folds | `ser-hf compare --corpus emovo` |"
    assert row in index
    assert "Some CPU, 1 threads" in index


def test_write_refuses_a_readme_without_markers_and_a_missing_folder(tmp_path):
    compare_report(tmp_path / "r" / "emovo", "emovo")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n")
    with pytest.raises(ValueError, match="lacks the marker lines"):
        write_results_index(tmp_path / "r", readme)
    with pytest.raises(FileNotFoundError, match="--results_dir .*nope: no such folder"):
        write_results_index(tmp_path / "nope")
    readme.write_text(f"# x\n{HEADLINE_BEGIN}\nold\n{HEADLINE_END}\n")
    with pytest.raises(ValueError, match="corpora: generated"):  # the corpus block's markers are missing
        write_results_index(tmp_path / "r", readme)

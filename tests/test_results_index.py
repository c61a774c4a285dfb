"""ser-hf results-index: the index of docs/results and the README's generated tables (ser_hf.reports.index)."""

import json

import pytest

from ser_hf.reports.index import HEADLINE_BEGIN, HEADLINE_END, headline_lines, index_markdown, write_results_index


def compare_report(folder, corpus, best="b", ua=0.61):
    folder.mkdir(parents=True)
    system = {"folds": [0, 1], "seeds_per_fold": {"0": [42], "1": [42]}, "ua": {"mean": ua, "std": 0.02}}
    report = {
        "corpus": corpus,
        "command": f"ser-hf compare --corpus {corpus}",
        "systems": [{"name": "a", **system}, {"name": best, **system}],
        "best_system": {"name": best, "validation_ua": 0.5},
        "machine": {"cpu": "Some CPU", "threads": 1, "gpu": None, "versions": {}},
    }
    (folder / "report.json").write_text(json.dumps(report))


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

"""Typed report rows: every report under docs/results reads into them and writes back byte for byte."""

import json
from pathlib import Path

import pytest

from ser_hf.reports.rows import CompareReport, CrossCorpusReport, MulticorpusSummary

ROOT = Path(__file__).resolve().parents[1]
COMPARE_REPORTS = sorted(
    p for p in (ROOT / "docs" / "results").rglob("report.json") if "corpus" in json.loads(p.read_text())
)


def test_there_are_reports_to_read():
    assert len(COMPARE_REPORTS) >= 40


@pytest.mark.parametrize("path", COMPARE_REPORTS, ids=lambda p: str(p.relative_to(ROOT / "docs" / "results")))
def test_every_compare_report_round_trips_byte_for_byte(path):
    text = path.read_text()
    report = CompareReport.from_dict(json.loads(text))
    assert json.dumps(report.to_dict(), indent=2) + "\n" == text
    assert report.system(report.systems[0].name) is report.systems[0]
    assert all(isinstance(k, int) for s in report.systems for k in s.ua.per_fold)  # fold numbers as ints


def test_an_unknown_system_is_named_with_the_ones_there_are():
    report = CompareReport.from_dict(json.loads(COMPARE_REPORTS[0].read_text()))
    with pytest.raises(KeyError, match="no system 'nope' in the .* report; systems:"):
        report.system("nope")


SUMMARIES = sorted((ROOT / "docs" / "results").glob("*/summary.json"))


@pytest.mark.parametrize("path", SUMMARIES, ids=lambda p: p.parent.name)
def test_every_multicorpus_summary_round_trips_byte_for_byte(path):
    text = path.read_text()
    assert json.dumps(MulticorpusSummary.from_dict(json.loads(text)).to_dict(), indent=2) + "\n" == text


CROSS_REPORTS = sorted(
    p for p in (ROOT / "docs" / "results").rglob("report.json") if "corpus" not in json.loads(p.read_text())
)


@pytest.mark.parametrize("path", CROSS_REPORTS, ids=lambda p: str(p.parent.relative_to(ROOT / "docs" / "results")))
def test_every_cross_corpus_report_round_trips_byte_for_byte(path):
    text = path.read_text()
    report = CrossCorpusReport.from_dict(json.loads(text))
    assert json.dumps(report.to_dict(), indent=2) + "\n" == text
    assert report.system(report.systems[0].system) is report.systems[0]

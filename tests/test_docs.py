"""The documentation's relative links resolve (README, docs/, model_cards/)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), ROOT / "model_cards" / "README.md"]
# (model_cards/template.md is not a page: its links resolve in the upload folder it is rendered into)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no {dest})")
        elif anchor and dest.suffix == ".md" and anchor not in heading_anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


def test_the_readme_stays_short_and_holds_its_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 135
    ci = (ROOT / ".ci" / "run").read_text()
    tests_command = 'pip install torch==2.13.0 && pip install -e ".[dev]" && python -m pytest -q tests'
    assert tests_command in text and tests_command in ci


def test_the_readme_has_no_number_outside_its_generated_blocks():
    from ser_hf.reports.index import CORPORA_BEGIN, CORPORA_END, HEADLINE_BEGIN, HEADLINE_END

    text = (ROOT / "README.md").read_text()
    for begin, end in ((HEADLINE_BEGIN, HEADLINE_END), (CORPORA_BEGIN, CORPORA_END)):
        head, rest = text.split(begin, 1)
        text = head + rest.split(end, 1)[1]
    scores = re.findall(r"(?<![\d.=])\d\.\d{2,}(?![\d.])", text)  # 0.701, not a version such as 2.13.0
    assert not scores, f"{scores}: scores belong in the generated tables or docs/results"


def test_the_generated_tables_are_what_results_index_writes(tmp_path):
    import shutil

    from ser_hf.reports.index import write_results_index

    readme = tmp_path / "README.md"
    readme.write_text((ROOT / "README.md").read_text())
    results = tmp_path / "docs" / "results"
    shutil.copytree(ROOT / "docs" / "results", results)
    write_results_index(results, readme)
    assert readme.read_text() == (ROOT / "README.md").read_text(), "run: ser-hf results-index"
    ours = (ROOT / "docs" / "results" / "README.md").read_text().splitlines()
    fresh = (results / "README.md").read_text().splitlines()
    strip_date = [re.sub(r"\| [\d-]+ \|$", "| |", line) for line in ours]  # the copy is outside git: no dates
    assert [re.sub(r"\| [\d-]+ \|$", "| |", line) for line in fresh] == strip_date, "run: ser-hf results-index"

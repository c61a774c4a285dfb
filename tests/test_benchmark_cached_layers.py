"""benchmarks/cached_layers.py: the fold totals and speed-ups recomputed from saved rows (no training)."""

import importlib.util
import json
from pathlib import Path

import pytest

PATH = Path(__file__).parents[1] / "benchmarks" / "cached_layers.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_cached_layers", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(recipe: str, per_epoch: float, build: float) -> dict:
    """A saved row: CPU seconds are wall seconds plus 1 an epoch, plus 2 for a build; 10 epochs a fold."""
    return {
        "recipe": recipe,
        "epochs": 1.0,
        "wall_s_per_epoch": per_epoch,
        "cpu_s_per_epoch": per_epoch + 1,
        "cache_build_s": build,
        "cache_build_cpu_s": build + 2 if build else 0.0,
        "num_train_epochs": 10.0,
    }


def _rows_file(tmp_path: Path, *rows: dict) -> str:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


SUMMARY = {"summary": True, "adapt_top_layers": 2, "cache_views": 3}


def test_rows_are_recomputed_at_the_cached_recipes_epochs(bench, tmp_path, capsys):
    rows = _rows_file(tmp_path, _row("today", 500.0, 0.0), _row("cached", 100.0, 300.0), SUMMARY)

    today, cached, out = bench.main(["--rows", rows, "--cached_epochs", "7"])

    assert today["fold_cpu_s"] == 5010.0 and today["fold_wall_s"] == 5000.0
    assert cached["num_train_epochs"] == 7.0
    assert cached["fold_wall_s"] == 300.0 + 7 * 100.0 and cached["fold_cpu_s"] == 302.0 + 7 * 101.0
    assert out["speedup_fold_cpu"] == pytest.approx(5010.0 / 1009.0)
    assert out["speedup_epoch_wall"] == 5.0 and out["cached_num_train_epochs"] == 7.0
    assert (out["adapt_top_layers"], out["cache_views"]) == (2, 3)
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == [today, cached, out]


def test_without_cached_epochs_the_saved_epochs_are_kept(bench, tmp_path):
    rows = _rows_file(tmp_path, _row("today", 500.0, 0.0), _row("cached", 100.0, 300.0), SUMMARY)

    out = bench.main(["--rows", rows])[-1]
    assert bench.main(["--cached_epochs", "10", f"--rows={rows}"])[-1] == out  # --rows anywhere, either spelling

    assert out["cached_num_train_epochs"] == 10.0
    assert out["speedup_fold_cpu"] == pytest.approx(5010.0 / (302.0 + 1010.0))


def test_rows_without_both_recipes_are_refused(bench, tmp_path):
    rows = _rows_file(tmp_path, _row("today", 500.0, 0.0), SUMMARY)

    with pytest.raises(ValueError, match=r"rows.jsonl: expected a 'today' row, a 'cached' row .* got \['today'\]"):
        bench.main(["--rows", rows])

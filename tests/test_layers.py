"""The package's floors, as the imports really are: every ser_hf-internal import (relative or absolute, lazy ones
inside functions included) goes to a strictly lower floor, no import goes sideways unless :data:`SIDEWAYS` names it,
and every unit sits on the lowest floor its imports allow, so the map below is the house, not a wish.

A unit is a module (``data``, ``reports.card``), or one of the packages in :data:`PACKAGES` taken whole (imports
inside such a package are its own business).
``""`` is ``ser_hf/__init__.py``, which re-exports lazily by name and sits on top.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ser_hf"

PACKAGES = ["models.mel_cnn", "corpora", "models", "training"]
"""Packages counted as one unit (``models.mel_cnn`` apart from ``models``: it ships with checkpoints as remote code
and imports nothing else of ser_hf)."""

LAYERS = [
    # dependency-free helpers and the self-contained mel-CNN
    [
        "models.mel_cnn",
        "audio",
        "labels",
        "lock",
        "metrics",
        "download",
        "environment",
        "specs",
        "onnx_backend",
        "reports",
        "reports.folder",
        "reports.rows",
    ],
    ["corpora", "models", "reports.compare_report", "reports.evaluation_report"],
    ["folds", "reports.index", "cli_args", "feature_cache"],
    ["data", "run"],
    ["export", "grid", "inference", "multicorpus"],
    ["evaluation", "onnx_export", "timeline", "reports.card"],
    ["training", "classic", "demo", "predict_command", "reports.compare"],
    ["deploy_command", "reports.crosscorpus"],
    ["reports.multicorpus"],
    ["hub", "report_command"],  # publishing reads reports; no report imports it
    ["train_command"],  # trains, then publishes: training itself never does
    ["cli", ""],
]

SIDEWAYS: set[tuple[str, str]] = set()
"""Imports allowed between two units of one floor: none today."""

NEVER = [("training", "hub"), ("training", "train_command")] + [
    (f"reports.{name}", "hub") for name in ("card", "compare", "compare_report", "crosscorpus", "multicorpus", "index")
]
"""Imports that must not exist at any floor: training never publishes, reports never import publishing."""


def unit_of(module: str) -> str:
    """The unit of a dotted module name relative to ser_hf (``corpora.ravdess`` -> ``corpora``; ``reports.card``
    stays itself; a name inside a module, ``run.RunRecord``, is its module)."""
    for name in PACKAGES:
        if module == name or module.startswith(name + "."):
            return name
    while module and module not in MODULES:
        module = module.rpartition(".")[0]
    return module


def floor_of(unit: str) -> int:
    for k, names in enumerate(LAYERS):
        if unit in names:
            return k
    raise AssertionError(f"ser_hf unit {unit!r} is on no floor of LAYERS: add it")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p) for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ser_hf-internal import of a file (relative, ``from ser_hf.x import``,
    ``import ser_hf.x``), as a dotted name relative to ser_hf."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    package = parts[:-1]  # the package the file sits in (for __init__.py: its own)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package[: len(package) - (node.level - 1)]
            if node.module:
                module = ".".join([*base, node.module])
                found.append((node.lineno, module))
                found += [(node.lineno, f"{module}.{a.name}") for a in node.names if f"{module}.{a.name}" in MODULES]
            else:
                found += [(node.lineno, ".".join([*base, a.name])) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ser_hf":
            module = node.module[len("ser_hf") :].lstrip(".")
            found += [(node.lineno, module)] if module else [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name[len("ser_hf.") :]) for a in node.names if a.name.startswith("ser_hf.")]
    return found


def unit_edges() -> dict[str, set[str]]:
    """Unit -> the other units it imports."""
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        unit = unit_of(module_name(path))
        edges.setdefault(unit, set())
        edges[unit] |= {unit_of(m) for _, m in imports_of(path)} - {unit}
    return edges


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_from_its_own_or_a_higher_floor(path):
    own_unit = unit_of(module_name(path))
    own = floor_of(own_unit)
    bad = [
        (line, m)
        for line, m in imports_of(path)
        if unit_of(m) != own_unit and floor_of(unit_of(m)) >= own and (own_unit, unit_of(m)) not in SIDEWAYS
    ]
    assert not bad, f"ser_hf/{path.relative_to(PACKAGE)} (floor {own}) imports its own or higher floors: {bad}"


def test_every_unit_sits_on_the_lowest_floor_its_imports_allow():
    edges = unit_edges()
    assert sorted(u for names in LAYERS for u in names) == sorted(edges), "LAYERS must name every unit once"
    for unit, deps in edges.items():
        if unit == "":  # the package's lazy re-exports sit on top by definition
            continue
        lowest = 1 + max((floor_of(d) for d in deps), default=-1)
        assert floor_of(unit) == lowest, f"{unit!r} is on floor {floor_of(unit)}, its imports allow floor {lowest}"


def test_publishing_is_imported_by_no_training_or_report_code():
    edges = unit_edges()
    found = [(a, b) for a, b in NEVER if b in edges.get(a, set())]
    assert not found, f"forbidden imports: {found}"


def run_python(code: str) -> str:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_the_ground_floor_loads_neither_torch_nor_transformers():
    code = "import sys, ser_hf.audio, ser_hf.labels\nprint(sorted({'torch', 'transformers'} & set(sys.modules)))"
    assert run_python(code) == "[]"


@pytest.mark.parametrize("order", ["import ser_hf\nimport transformers", "import transformers\nimport ser_hf"])
def test_importing_ser_hf_registers_the_mel_cnn_whichever_comes_first(order):
    code = order + "\nfrom transformers import AutoConfig\nprint(type(AutoConfig.for_model('mel_cnn')).__name__)"
    assert run_python(code) == "MelCNNConfig"

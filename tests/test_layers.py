"""The package's floors: a module imports modules of its own floor or lower ones, never higher (lazy imports inside
functions included), so that the ground floor stays usable without what is built on it."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ser_hf"

LAYERS = [
    # self-contained (the mel-CNN's code ships with checkpoints as remote code) or dependency-free helpers
    ["models.mel_cnn", "labels", "logs", "lock", "metrics", "download", "environment", "specs", "onnx_backend"],
    ["audio"],
    ["models", "corpora", "folds", "run", "evaluation_report"],
    ["data", "grid", "multicorpus", "card"],
    ["inference", "timeline", "evaluation"],
    [
        "training",
        "classic",
        "compare",
        "compare_report",
        "crosscorpus",
        "multicorpus_report",
        "export",
        "onnx_export",
        "demo",
        "hub",
    ],
    ["cli", "predict_command", "deploy_command", ""],  # "": ser_hf/__init__.py
]


def layer_of(module: str) -> int:
    """Floor of a dotted module name inside ser_hf (longest matching prefix of :data:`LAYERS`)."""
    best, floor = -1, None
    for k, names in enumerate(LAYERS):
        for name in names:
            if (module == name or (name and module.startswith(name + "."))) and len(name) > best:
                best, floor = len(name), k
    assert floor is not None, f"ser_hf.{module} is on no floor of LAYERS: add it"
    return floor


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ser_hf-internal import of a file, as a dotted name relative to ser_hf."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    package = parts[:-1]  # the package the file sits in (for __init__.py: its own)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package[: len(package) - (node.level - 1)]
            if node.module:
                found.append((node.lineno, ".".join([*base, node.module])))
            else:
                found += [(node.lineno, ".".join([*base, a.name])) for a in node.names]
    return found


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_from_a_higher_floor(path):
    own = layer_of(module_name(path))
    upward = [(line, m) for line, m in imports_of(path) if layer_of(m) > own]
    assert not upward, f"ser_hf/{path.relative_to(PACKAGE)} (floor {own}) imports higher floors: {upward}"


def test_the_floor_map_knows_every_module():
    for path in PACKAGE.rglob("*.py"):
        layer_of(module_name(path))


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

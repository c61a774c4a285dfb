"""Layered YAML: one recipe per model family, corpus files hold only what differs (ser_hf.specs.read_layered_yaml)."""

from pathlib import Path

import pytest

from ser_hf.specs import read_layered_yaml
from ser_hf.training.arguments import parse_args, yaml_to_argv

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_a_file_overrides_its_base_and_null_drops_a_key(tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "r.yaml").write_text("a: 1\nb: [1, 2]\nc: x\n")
    (tmp_path / "c.yaml").write_text("base: recipes/r.yaml\nb: [3]\nc: null\nd: 4\n")
    assert read_layered_yaml(tmp_path / "c.yaml", "x") == {"a": 1, "b": [3], "c": None, "d": 4}
    assert yaml_to_argv(tmp_path / "c.yaml") == ["--a", "1", "--b", "3", "--d", "4"]


@pytest.mark.parametrize(
    "text,error",
    [
        ("base: missing.yaml\n", r"c.yaml: base 'missing.yaml' does not exist"),
        ("base: c.yaml\n", r"c.yaml: base 'c.yaml' includes itself"),
        ("base: {a: 1}\n", r"c.yaml: base is \{'a': 1\}; expected a path relative to"),
    ],
)
def test_bad_bases_are_one_line_errors_naming_the_file(tmp_path, text, error):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises((ValueError, FileNotFoundError), match=error):
        read_layered_yaml(tmp_path / "c.yaml", "x")


def test_bases_that_include_each_other_are_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ValueError, match="includes itself"):
        read_layered_yaml(tmp_path / "a.yaml", "x")


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_training_config_builds_on_its_family_recipe_and_parses(config, tmp_path):
    family = "mel_cnn" if config.name.endswith("_melcnn.yaml") else "transformer_lora"
    raw = config.read_text()
    assert f"base: recipes/{family}.yaml" in raw
    assert "learning_rate" not in raw  # the optimiser settings live in the recipe only
    data_dir = "ravdess=a,emovo=b,eyase=c,urdu=d" if config.name.startswith("multicorpus") else "x"
    model, data, training = parse_args([str(config), "--output_dir", str(tmp_path / "o"), "--data_dir", data_dir])
    assert data.corpus and model.model == ("mel_cnn" if family == "mel_cnn" else "pretrained")


def test_report_specs_become_the_commands_flags_and_the_command_line_overrides_them(tmp_path):
    from ser_hf.specs import spec_argv

    (tmp_path / "data.yaml").write_text("data_dir: {ravdess: R, urdu: U}\n")
    spec = tmp_path / "c.yaml"
    spec.write_text("base: data.yaml\ncorpus: urdu\nsystems: {a: runs/a, b: runs/b}\nreference: b\n")
    argv = spec_argv([str(spec), "--reference", "a"], {"systems": "--system"}, pick={"data_dir": "corpus"})
    assert argv == ["--data_dir", "U", "--corpus", "urdu", "--system", "a=runs/a", "--system", "b=runs/b",
                    "--reference", "b", "--reference", "a"]  # fmt: skip
    cross = spec_argv([str(spec)], {"systems": "--system", "data_dir": "--corpus"})
    assert cross[:4] == ["--corpus", "ravdess=R", "--corpus", "urdu=U"]
    assert spec_argv(["--corpus", "x"], {}) == ["--corpus", "x"]  # no spec: the command line as it is


@pytest.mark.parametrize(
    "text,error",
    [
        ("corpus: eyase\nsystems: [a, b]\n", r"c.yaml: systems is \['a', 'b'\]; expected a mapping of names"),
        ("corpus: eyase\ndata_dir: {urdu: U}\n", r"c.yaml: data_dir has no entry for corpus 'eyase'; it has"),
        ("reference: [a]\n", r"c.yaml: reference is \['a'\]; expected one value"),
        ("- a\n", r"c.yaml: expected a mapping of flag names to values, got list"),
    ],
)
def test_a_bad_report_spec_is_a_one_line_error(tmp_path, text, error):
    from ser_hf.specs import spec_argv

    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ValueError, match=error):
        spec_argv([str(tmp_path / "c.yaml")], {"systems": "--system"}, pick={"data_dir": "corpus"})


@pytest.mark.parametrize("command,spec", [("compare", "ravdess_compare.yaml"), ("cross-corpus", "cross_corpus.yaml")])
def test_the_committed_compare_and_cross_corpus_specs_reach_the_runs(command, spec, tmp_path, capsys):
    from ser_hf.cli import main as cli

    # the runs are not in a fresh checkout: the command reads the spec, then names the first missing run folder
    rc = cli([command, str(CONFIGS / "reports" / spec), "--output_dir", str(tmp_path / "r")])
    assert rc == 2 and "runs/" in capsys.readouterr().err
